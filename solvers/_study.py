"""A configured study: every point of the sweep through each requested solver,
gathered into one dataset with one dimension per swept parameter.

Variable names of a study dataset (units in their attributes):

- ``perturbative``: ``relative_gap_change_exact`` (exact linear response of the
  gap equation), ``relative_gap_change_gl`` (Ginzburg-Landau form),
  ``delta_n_first_order`` (tau_in I[n_F], paper eq. (14)), ``gap_perturbative``;
- ``steady``: ``relative_gap_change_nonlinear``, ``gap_nonlinear``,
  ``delta_n_nonlinear``, ``n_qp_nonlinear``, ``steady_residual``,
  ``steady_iterations``;
- ``evolve``: the `evolve` variables over ``time`` (``gap``,
  ``relative_gap_change``, ``n``, ``delta_n``, ``n_qp``, ``energy``) and the value
  of every time-dependent bath parameter at the save times (``<bath>_<field>``);
- always: ``delta0`` (the equilibrium gap of each point) and, per kind,
  ``<kind>_status`` ("success" or "failed") and ``<kind>_message``.
"""

from __future__ import annotations

import json
import time as _time
import warnings

import numpy as np
import xarray as xr

import kinetics
from kinetics._profiles import AbstractProfile, value_at

from ._config import (
    _DIMENSIONS,
    Config,
    _sweep_target,
    axis_values,
    bath_names,
    build_model,
    config_hash,
    save_times,
    sweep_points,
)
from ._dataset import SolverError
from ._evolve import Interrupted, evolve
from ._perturbative import perturbative
from ._steady import steady_state

_RENAME = {
    "perturbative": {
        "relative_gap_change": "relative_gap_change_exact",
        "relative_gap_change_gl": "relative_gap_change_gl",
        "delta_n_first_order": "delta_n_first_order",
        "gap": "gap_perturbative",
    },
    "steady": {
        "relative_gap_change": "relative_gap_change_nonlinear",
        "gap": "gap_nonlinear",
        "delta_n": "delta_n_nonlinear",
        "n_qp": "n_qp_nonlinear",
    },
}
_UNITS = {
    "energy": "k_B T_c",
    "temperature": "k_B T_c",
    "time": "hbar/(k_B T_c)",
    "rate": "k_B T_c/hbar",
    "coupling": "1",
}


def dim_name(key: str) -> str:
    """Sweep key -> dimension name: ``"cavity.omega0"`` -> ``"cavity_omega0"``."""
    return key.replace(".", "_")


def _solve(
    kind: str, model: kinetics.Model, cfg: Config, t_save, checkpoint=None
) -> tuple[xr.Dataset | None, str, str]:
    """One point through one solver: (dataset or partial or None, status, message)."""
    try:
        if kind == "perturbative":
            ds = perturbative(model)
        elif kind == "steady":
            s = cfg.steady
            ds = steady_state(
                model,
                start=s.start,
                method=s.method,
                tol=s.tol,
                max_iter=s.max_iter,
                continuation_steps=s.continuation_steps,
                solver=s.solver,
            )
        else:
            e = cfg.evolve
            ds = evolve(
                model,
                t_save,
                solver=e.solver,
                rtol=e.rtol,
                atol=e.atol,
                max_steps=e.max_steps,
                progress=False,
                checkpoint=checkpoint["path"] if checkpoint else None,
                checkpoint_every=e.checkpoint_every,
                config=checkpoint["config"] if checkpoint else None,
            )
    except Interrupted:
        raise
    except SolverError as err:
        return err.partial, "failed", str(err)
    except kinetics.CavityEliashbergError as err:
        return None, "failed", str(err)
    return ds, "success", ""


def _point_dataset(
    kind: str, ds: xr.Dataset | None, model: kinetics.Model, cfg: Config
) -> xr.Dataset:
    if ds is None:
        out = xr.Dataset()
    elif kind == "evolve":
        out = ds.drop_vars(["quasiparticle_energy"], errors="ignore")
        out = out.assign(_profiles(model, ds.time.values, cfg))
    else:
        keep = {k: v for k, v in _RENAME[kind].items() if k in ds}
        out = ds[list(keep)].rename(keep)
        if kind == "steady":
            out["steady_residual"] = float(ds.attrs.get("solver.residual", np.nan))
            out["steady_iterations"] = int(ds.attrs.get("solver.iterations", -1))
    out.attrs = {}
    return out


def _profiles(model: kinetics.Model, times, cfg: Config) -> dict:
    """Every time-dependent bath parameter at the save times (for the figures)."""
    out = {}
    for name, bath in zip(bath_names(cfg), model.baths):
        for field, v in bath.parameters().items():
            if isinstance(v, AbstractProfile):
                values = np.asarray([float(value_at(v, t)) for t in times])
                out[f"{name}_{field}"] = xr.DataArray(
                    values,
                    dims=("time",),
                    attrs={
                        "long_name": f"{name}.{field}(t)",
                        "units": _UNITS.get(_DIMENSIONS.get(field), "1"),
                    },
                )
    return out


def run_study(
    cfg: Config, raw: dict, *, progress: bool = True, checkpoint: str | None = None
) -> xr.Dataset:
    """Run every requested solver at every sweep point; one dataset back.

    A point whose solver fails keeps what it computed (the partial result) and
    is marked ``<kind>_status = "failed"`` with its message; the other points
    are unaffected.
    """
    from tqdm import tqdm

    points = sweep_points(cfg)
    t_save = save_times(cfg, raw=raw) if "evolve" in cfg.compute else None
    keys = list(cfg.sweep)
    shape = [len(cfg.sweep[k].points()) for k in keys]
    clock = _time.perf_counter()
    per_kind = {}
    wall = {}
    total = len(points) * len(cfg.compute)
    show = progress and (total > 1 or "evolve" not in cfg.compute)
    with (
        warnings.catch_warnings(),
        tqdm(total=total, disable=not show, desc=cfg.title or "study") as bar,
    ):
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        models = [build_model(cfg, p, raw=raw) for p in points]
        for kind in cfg.compute:
            start = _time.perf_counter()
            rows = []
            for model in models:
                ck = None
                if checkpoint is not None and kind == "evolve" and len(models) == 1:
                    ck = {"path": checkpoint, "config": _resume_info(raw)}
                ds, status, message = _solve(kind, model, cfg, t_save, ck)
                row = _point_dataset(kind, ds, model, cfg)
                row[f"{kind}_status"] = status
                row[f"{kind}_message"] = message
                rows.append(row)
                bar.update()
            per_kind[kind] = rows
            wall[kind] = _time.perf_counter() - start
    merged = []
    for k, model in enumerate(models):
        parts = [per_kind[kind][k] for kind in cfg.compute]
        ds = xr.merge(parts, compat="override", join="outer")
        ds["delta0"] = float(model.delta0)
        merged.append(ds)
    out = _stack(merged, keys, shape)
    for key in keys:
        _label_axis(out, cfg, key)
        internal = np.asarray([_internal_value(cfg, m, key) for m in models]).reshape(shape)
        out[f"{dim_name(key)}_internal"] = ([dim_name(k) for k in keys], internal)
        out[f"{dim_name(key)}_internal"].attrs.update(
            long_name=f"{key} in internal units",
            units=out[dim_name(key)].attrs["units"]
            if out[dim_name(key)].attrs["units"] in _UNITS.values()
            else "internal (physics.md section 1)",
        )
    out = _annotate(out, cfg, raw, models[0], wall, _time.perf_counter() - clock)
    if cfg.figure.per_unit_coupling:
        scale = _internal_value(cfg, models[0], cfg.figure.per_unit_coupling)
        out.attrs["figure.coupling_tau_in"] = scale * float(models[0].tau_in)
    return out


def _resume_info(raw: dict) -> dict:
    """What `cavity-eliashberg resume` needs: the configuration after overrides."""
    return {"study": {k: v for k, v in raw.items() if not k.startswith("_")},
            "base_dir": raw.get("_base_dir", ""), "outputs": raw.get("_outputs", [])}


def _internal_value(cfg: Config, model: kinetics.Model, key: str) -> float:
    where, bath, field = _sweep_target(cfg, key)
    if where == "model":
        return float(getattr(model, field))
    b = model.baths[bath_names(cfg).index(bath)]
    name, _, sub = field.partition(".")
    v = b.parameters()[name]
    return float(getattr(v, sub) if sub else v)


def _stack(rows: list[xr.Dataset], keys: list[str], shape: list[int]) -> xr.Dataset:
    if not keys:
        return rows[0]

    def nest(items, dims):
        if len(dims) == 1:
            return list(items)
        step = len(items) // dims[0]
        return [nest(items[k * step : (k + 1) * step], dims[1:]) for k in range(dims[0])]

    nested = nest(rows, shape)
    dims = [dim_name(k) for k in keys]
    out = xr.combine_nested(
        nested,
        concat_dim=dims,
        join="outer",
        combine_attrs="drop",
        coords="minimal",
        compat="override",
    )
    return out.transpose(*dims, ...)


def _label_axis(ds: xr.Dataset, cfg: Config, key: str) -> None:
    dim = dim_name(key)
    ax = cfg.sweep[key]
    ds.coords[dim] = (dim, axis_values(cfg, key))
    where, _, field = _sweep_target(cfg, key)
    dimension = _DIMENSIONS.get(field.split(".")[0], "temperature" if field == "t_qp" else "time")
    if where == "bath" and "." in field and field.split(".")[1] in ("t_on", "t0", "t1", "sigma"):
        dimension = "time"
    ds.coords[dim].attrs.update(long_name=key, units=ax.unit or _UNITS.get(dimension, "1"))


def _annotate(
    ds: xr.Dataset, cfg: Config, raw: dict, model: kinetics.Model, wall: dict, total: float
) -> xr.Dataset:
    from ._dataset import VARIABLES, _versions, model_attributes

    for name in ds.variables:
        if name in VARIABLES and "units" not in ds[name].attrs:
            ds[name].attrs.update(long_name=VARIABLES[name][0], units=VARIABLES[name][1])
    labels = {
        "relative_gap_change_exact": (
            "delta Delta / Delta_0, perturbative, exact linear response",
            "1",
        ),
        "relative_gap_change_gl": (
            "delta Delta / Delta_0, perturbative, Ginzburg-Landau form",
            "1",
        ),
        "relative_gap_change_nonlinear": (
            "delta Delta / Delta_0, full nonlinear steady state",
            "1",
        ),
        "delta_n_first_order": ("tau_in sum_b I_b[n_F] at Delta_0 (paper eq. (14))", "1"),
        "delta_n_nonlinear": ("n - n_F at the steady state's own gap", "1"),
        "gap_perturbative": ("Delta_0 (1 + delta Delta/Delta_0), perturbative", "k_B T_c"),
        "gap_nonlinear": ("steady-state gap", "k_B T_c"),
        "n_qp_nonlinear": ("steady-state quasiparticle density 4 integral dxi n", "nu_F k_B T_c"),
        "steady_residual": ("Newton residual max|dn/dt| tau_in", "1"),
        "steady_iterations": ("Newton iterations", "1"),
        "delta0": ("equilibrium gap Delta_0 at T_qp on the grid", "k_B T_c"),
    }
    for name, (long_name, units) in labels.items():
        if name in ds:
            ds[name].attrs.update(long_name=long_name, units=units)
    if "xi" in ds.coords:
        ds["xi"].attrs.update(long_name="normal-state energy xi", units="k_B T_c")
    if "time" in ds.coords:
        ds["time"].attrs.update(long_name="time", units="hbar / (k_B T_c)")
    public = {k: v for k, v in raw.items() if not k.startswith("_")}
    attrs = {
        "title": cfg.title or "cavity-eliashberg study",
        "kind": "study",
        "compute": ",".join(cfg.compute),
        "sweep": ",".join(cfg.sweep),
        "units": "hbar = k_B = 1; energies in k_B T_c, times in hbar/(k_B T_c)",
        "config": json.dumps(public, sort_keys=True, default=str),
        "config_hash": config_hash(raw),
        "config_source": str(raw.get("_source", "")),
        "figure.kind": cfg.figure.kind or default_figure(cfg),
        "wall_time_s": total,
    }
    if cfg.figure.x:
        attrs["figure.x"] = dim_name(cfg.figure.x)
    if cfg.figure.per_unit_coupling:
        attrs["figure.per_unit_coupling"] = dim_name(cfg.figure.per_unit_coupling)
    attrs["figure.log_x"] = int(cfg.figure.log_x)
    if cfg.figure.snapshots:
        from ._config import _convert, references

        refs = references(cfg)
        attrs["figure.snapshots"] = [
            _convert(v, name="figure.snapshots", dimension="time", t_c=refs["t_c"], refs=refs)
            for v in cfg.figure.snapshots
        ]
    for kind, w in wall.items():
        attrs[f"wall_time_s.{kind}"] = w
    base = model_attributes(model)
    if cfg.sweep:  # parameters that vary over the sweep are the coordinates; keep the rest
        names = bath_names(cfg)
        swept = set()
        for key in cfg.sweep:
            where, bath, field = _sweep_target(cfg, key)
            swept.add(
                f"model.{field}"
                if where == "model"
                else f"baths.{names.index(bath)}.{field.split('.')[0]}"
            )
        base = {k: v for k, v in base.items() if k not in swept and k != "model.delta0"}
    attrs.update(base)
    attrs["baths.names"] = ",".join(bath_names(cfg))
    for k, v in _versions().items():
        attrs[f"version.{k}"] = v
    if (t_c := raw.get("model", {}).get("t_c")) is not None:
        attrs["model.t_c"] = str(t_c)
    ds.attrs = attrs
    return ds


def default_figure(cfg: Config) -> str:
    if "evolve" in cfg.compute:
        return "transient"
    if len(cfg.sweep) >= 1:
        return "gap_change"
    return "delta_n"

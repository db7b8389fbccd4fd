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

import functools
import json
import time as _time
import warnings

import numpy as np
import xarray as xr

import kinetics
from kinetics import AbstractProfile, value_at
from solvers import (
    VARIABLES,
    Interrupted,
    SolverError,
    add_observables,
    evolve,
    model_attributes,
    package_versions,
    perturbation_warnings,
    perturbative,
    steady_state,
    study_names,
    sweep,
    variable_attributes,
)

from ._analyses import apply_analyses, sweep_options
from ._config import (
    Config,
    ConfigError,
    _axis_dimension,
    _sweep_target,
    _with_unit,
    axis_values,
    bath_names,
    build_model,
    config_hash,
    dim_name,
    figure_axis,
    number_parameters,
    observables_options,
    refined_axis,
    save_times,
    sweep_points,
)

_UNITS = {
    "energy": "k_B T_c",
    "temperature": "k_B T_c",
    "time": "hbar/(k_B T_c)",
    "rate": "k_B T_c/hbar",
    "coupling": "1",
}


def _solve(
    kind: str, model: kinetics.Model, cfg: Config, t_save, checkpoint=None, progress=False
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
                progress=progress,
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


def _study_part(kind: str, ds: xr.Dataset) -> xr.Dataset:
    """A solver's dataset (single point or sweep) -> the study's variables of that kind:
    the names ``solvers.VARIABLES`` gives them in a study (``Variable.study``)."""
    keep = {k: v for k, v in study_names(kind).items() if k in ds}
    out = ds[list(keep)].rename(keep)
    out.attrs = {}
    return out


def _point_dataset(
    kind: str, ds: xr.Dataset | None, model: kinetics.Model, cfg: Config
) -> xr.Dataset:
    if ds is None:
        return xr.Dataset()
    stats = {}
    if kind == "steady":
        stats = {"residual": float(ds.attrs.get("solver.residual", np.nan)),
                 "iterations": int(ds.attrs.get("solver.iterations", -1))}
    out = _study_part(kind, ds.assign(stats))
    if kind == "evolve":
        out = out.assign(_profiles(model, ds.time.values, cfg))
    return out


def _profiles(model: kinetics.Model, times, cfg: Config) -> dict:
    """Every time-dependent bath parameter at the save times (for the figures)."""
    out = {}
    for name, bath in zip(bath_names(cfg), model.baths, strict=True):
        dimensions = number_parameters(type(bath))
        for field, v in bath.parameters().items():
            if isinstance(v, AbstractProfile):
                values = np.asarray([float(value_at(v, t)) for t in times])
                out[f"{name}_{field}"] = xr.DataArray(
                    values,
                    dims=("time",),
                    attrs={
                        "long_name": f"{name}.{field}(t)",
                        "units": _UNITS.get(dimensions.get(field), "1"),
                    },
                )
    return out


def run_study(
    cfg: Config,
    raw: dict,
    *,
    progress: bool = True,
    checkpoint: str | None = None,
    store: str | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
) -> xr.Dataset:
    """Run every requested solver at every sweep point; one dataset back.

    Without a ``[sweep]`` the single-point solvers run (`perturbative`,
    `steady_state`, `evolve` with an optional `checkpoint`). With one, each kind
    runs through `solvers.sweep` (compiled once per shape; `store` is the resumable
    result store of the sweep, `scheduler`/`workers` send it to dask.distributed).
    A point whose solver fails keeps what it computed and is marked
    ``<kind>_status = "failed"`` with its message; the other points are unaffected.
    """
    points = sweep_points(cfg)
    t_save = save_times(cfg, raw=raw) if "evolve" in cfg.compute else None
    keys = list(cfg.sweep)
    shape = [len(cfg.sweep[k].points()) for k in keys]
    clock = _time.perf_counter()
    wall = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        models = [build_model(cfg, p, raw=raw) for p in points]
    parts = []
    solver_attrs = {}
    for kind in cfg.compute:
        start = _time.perf_counter()
        if keys:
            kind_store = None if store is None else f"{store}.{kind}.nc"
            parts.append(_swept(kind, cfg, raw, models, t_save, kind_store, scheduler, workers,
                                overwrite, progress))
        else:
            ck = None
            if checkpoint is not None and kind == "evolve":
                ck = {"path": checkpoint, "config": _resume_info(raw)}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", kinetics.PhysicsWarning)
                ds, status, message = _solve(kind, models[0], cfg, t_save, ck, progress)
            if ds is not None and kind in _OBSERVED and cfg.observables is not None:
                ds = add_observables(ds, models[0], **observables_options(cfg))
            row = _point_dataset(kind, ds, models[0], cfg)
            if ds is not None:  # the solver's settings and statistics, for `show`
                solver_attrs.update({f"{kind}.{k}": v for k, v in ds.attrs.items()
                                     if k.startswith("solver.")})
            row[f"{kind}_status"] = status
            row[f"{kind}_message"] = message
            parts.append(row)
        wall[kind] = _time.perf_counter() - start
    out = xr.merge(parts, compat="override", join="outer", combine_attrs="drop")
    dims = [dim_name(k) for k in keys]
    out["delta0"] = (dims, np.asarray([float(m.delta0) for m in models]).reshape(shape))
    for key in keys:
        _label_axis(out, cfg, key)
        internal = np.asarray([_internal_value(cfg, m, key) for m in models]).reshape(shape)
        out[f"{dim_name(key)}_internal"] = (dims, internal)
        out[f"{dim_name(key)}_internal"].attrs.update(
            long_name=f"{key} in internal units",
            units=out[dim_name(key)].attrs["units"]
            if out[dim_name(key)].attrs["units"] in _UNITS.values()
            else "internal (docs/physics.md section 1)",
        )
    for name in _HYSTERESIS:  # attributes of the sweep's hysteresis, in the axis's unit
        kept = [p[name].attrs for p in parts if name in p]
        if name in out and kept:
            out[name].attrs = dict(kept[0])
            if name != "hysteresis_points" and cfg.steady.continuation is not None:
                out[name].attrs["units"] = out[dim_name(cfg.steady.continuation)].attrs["units"]
    fine_attrs = {k: v for p in parts for k, v in p.attrs.items() if k.startswith("figure.")}
    fine = fine_attrs.get("figure.fine_x")
    if fine is not None:
        coarse = fine[: -len("_fine")]
        out.coords[fine].attrs.update(out[coarse].attrs)
        out.coords[fine].attrs["long_name"] += " (refined for the perturbative curves)"
    if dims:
        out = out.transpose(*dims, ...)
    out = _annotate(out, cfg, raw, models[0], wall, _time.perf_counter() - clock)
    out.attrs.update(fine_attrs)
    out.attrs.update(solver_attrs)
    if cfg.figure.per_unit_coupling:
        scale = _internal_value(cfg, models[0], cfg.figure.per_unit_coupling)
        out.attrs["figure.coupling_tau_in"] = scale * float(models[0].tau_in)
    if "relative_gap_change_exact" in out:
        exact = out["relative_gap_change_exact"]
        if fine is not None:  # the coarse points are every refine-th fine one
            refine = int(fine_attrs["figure.refine"])
            exact = exact.isel({fine: slice(None, None, refine)}).rename({fine: coarse})
        nonlinear = out.get("relative_gap_change_nonlinear")
        if nonlinear is not None and "branch" in nonlinear.dims:
            # the up branch: the one continued from the first values, where the
            # perturbative start is (the comparison is a check of small drives)
            nonlinear = nonlinear.sel(branch="up", drop=True)
        exact = exact.transpose(*dims) if dims else exact  # the order of `models`
        problems = perturbation_warnings(
            models, exact.values,
            None if nonlinear is None else nonlinear.transpose(*exact.dims).values,
        )
        if problems:  # stored with the result and shown on the terminal
            out.attrs["warnings"] = " | ".join(problems)
            for message in problems:
                warnings.warn(message, kinetics.PhysicsWarning, stacklevel=2)
    return apply_analyses(out, cfg, raw, models)  # the [[analyses]] (cavity_eliashberg._analyses)


def config_model(study: str, base_dir: str, keys: dict, **values) -> kinetics.Model:
    """The sweep factory of a configuration: one point's Model (picklable via partial).

    - `study`: the configuration as JSON; `keys`: dimension name -> (sweep key, unit);
      `values`: dimension name -> value in the axis unit.
    """
    cfg = _parsed(study)
    point = {keys[d][0]: _with_unit(float(v), keys[d][1]) for d, v in values.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        return build_model(cfg, point, raw={"_base_dir": base_dir})


@functools.lru_cache(maxsize=8)
def _parsed(study: str) -> Config:
    return Config.model_validate(json.loads(study))


def _swept(kind, cfg, raw, models, t_save, store, scheduler, workers, overwrite, progress):
    """One kind over the sweep through `solvers.sweep`, renamed to the study's variables."""
    keys = {dim_name(k): (k, cfg.sweep[k].unit) for k in cfg.sweep}
    public = {k: v for k, v in raw.items() if not k.startswith("_")}
    factory = functools.partial(
        config_model, json.dumps(public, sort_keys=True), raw.get("_base_dir", ""), keys
    )
    params = {d: axis_values(cfg, k) for d, (k, _) in keys.items()}
    fine = None
    if kind == "perturbative" and cfg.perturbative.refine > 1:
        fine = dim_name(figure_axis(cfg))
        params[fine] = refined_axis(params[fine], cfg.perturbative.refine)
    units = {d: (k, u or "internal") for d, (k, u) in keys.items()}
    extra = sweep_options(kind, cfg)
    options = dict(extra.pop("options", {}))
    if kind == "steady":
        s = cfg.steady
        if s.method != "newton":
            raise ConfigError(
                "steady.method = 'integrate' is not available in a sweep; use 'newton'."
            )
        options.update(tol=s.tol, max_iter=s.max_iter, start=s.start,
                       continuation_steps=s.continuation_steps)
    elif kind == "evolve":
        e = cfg.evolve
        options.update(t_save=t_save, solver=e.solver, rtol=e.rtol, atol=e.atol,
                       max_steps=e.max_steps)
    ds = sweep(factory, params, kind=kind, options=options, units=units, output=store,
               overwrite=overwrite, scheduler=scheduler, workers=workers, progress=progress,
               keep_n=True, **extra)
    dims = list(params)
    ds = ds.transpose(*dims, ...)
    # [steady] direction = "both": every per-point variable also over `branch` (after the
    # swept dimensions), and the hysteresis between the branches (solvers.hysteresis)
    point_dims = dims + (["branch"] if "branch" in ds.dims else [])
    if kind in _OBSERVED and cfg.observables is not None:
        # the models of the points in the sweep's order (the product of the axes)
        shaped = np.empty([len(params[d]) for d in dims], dtype=object)
        flat = shaped.reshape(-1)
        for k, m in enumerate(models):
            flat[k] = m
        if "branch" in ds.dims:  # the same model on both branches
            shaped = np.stack([shaped] * ds.sizes["branch"], axis=-1)
        ds = add_observables(ds, shaped, **observables_options(cfg))
    out = _study_part(kind, ds)
    for name in _HYSTERESIS:
        if name in ds:
            out[name] = ds[name]
    status = ds["status"].transpose(*point_dims).values
    out[f"{kind}_status"] = (point_dims, np.where(status == "success", "success", "failed"))
    out[f"{kind}_message"] = (point_dims,
                              ds["message"].transpose(*point_dims).values.astype(str))
    for k, v in ds.attrs.items():
        if k.startswith(("sweep.", "hysteresis.")):
            out.attrs[f"{kind}.{k}"] = v
    if fine is not None:  # the fine axis is its own dimension beside the coarse one
        out = out.rename({fine: f"{fine}_fine"})
        out.attrs["figure.fine_x"] = f"{fine}_fine"
        out.attrs["figure.refine"] = cfg.perturbative.refine
    return out


_OBSERVED = ("steady", "evolve")  # the kinds whose states give observables
# what a sweep with direction "both" adds beside its per-point variables
_HYSTERESIS = ("hysteresis_turning_point", "hysteresis_interval", "hysteresis_points")


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
    if name == "dynamic":
        return float(getattr(b.dynamic, sub))
    v = b.parameters()[name]
    return float(getattr(v, sub) if sub else v)


def _label_axis(ds: xr.Dataset, cfg: Config, key: str) -> None:
    dim = dim_name(key)
    ax = cfg.sweep[key]
    ds.coords[dim] = (dim, axis_values(cfg, key))
    dimension = _axis_dimension(cfg, key)
    ds.coords[dim].attrs.update(long_name=key, units=ax.unit or _UNITS.get(dimension, "1"))


def _annotate(
    ds: xr.Dataset, cfg: Config, raw: dict, model: kinetics.Model, wall: dict, total: float
) -> xr.Dataset:
    for name in ds.data_vars:
        known = _study_attributes(name)
        if known or "units" not in ds[name].attrs:
            ds[name].attrs.update(known or variable_attributes(name))
    for name in ds.coords:  # the sweep axes carry their own units (_label_axis)
        if "units" not in ds[name].attrs:
            ds[name].attrs.update(variable_attributes(name))
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
    if cfg.observables is not None:
        obs = observables_options(cfg)
        attrs["observables.alpha"] = obs["alpha"]
        attrs["observables.material"] = obs["material"].name
        attrs["observables.t_c_kelvin"] = obs["t_c_kelvin"]
        if obs["r_sq"] is not None:
            attrs["observables.r_sq_ohm"] = obs["r_sq"]
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
    for k, v in package_versions().items():
        attrs[f"version.{k}"] = v
    if (t_c := raw.get("model", {}).get("t_c")) is not None:
        attrs["model.t_c"] = str(t_c)
    ds.attrs = attrs
    return ds


_QUALIFIER = {"perturbative": "perturbative", "steady": "full nonlinear steady state", "evolve": ""}


def _study_attributes(name: str) -> dict:
    """long_name and units of a study variable, from the solvers' one variable table
    ({} for a name the table does not give a study name)."""
    for base, v in VARIABLES.items():
        for kind, study_name in v.study.items():
            if study_name == name:
                qualifier = _QUALIFIER[kind] if study_name != base else ""
                long_name = f"{v.long_name}, {qualifier}" if qualifier else v.long_name
                return {"long_name": long_name, "units": v.units}
    return {}


def default_figure(cfg: Config) -> str:
    if "evolve" in cfg.compute:
        return "transient"
    if len(cfg.sweep) >= 1:
        return "gap_change"
    return "delta_n"

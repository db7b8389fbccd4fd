"""One dataset builder for every solver, and atomic netCDF input/output.

Every result is an ``xarray.Dataset`` with the same coordinate names, units and
attributes: the model's parameters (namespaced ``model.*``, ``baths.<k>.*``),
the solver's settings and statistics (``solver.*``), package versions and the
creation time. ``save`` writes netCDF (engine netcdf4) to a temporary file in
the target folder, fsyncs it and renames it, so a half-written file never
appears under the final name; ``load`` reads it back identical.
"""

from __future__ import annotations

import datetime
import functools
import json
import os
import platform
import tempfile
from importlib import metadata

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from kinetics import (
    PROCESSES,
    AbstractProfile,
    Material,
    Model,
    ParameterError,
    complex_conductivity,
    effective_temperature,
    equilibrium_conductivity,
    kinetic_inductance,
    quasiparticle_density_um3,
    quasiparticle_fraction,
    resonator_response,
    thermal_distribution,
    to_microelectronvolt,
    to_nanoseconds,
)

from ._variables import attributes


def package_versions() -> dict:
    """The versions of Python and the packages a result depends on (a new dict).

    Looked up once per process: ``importlib.metadata`` parses each package's metadata
    file on every call (8-25 ms for the six, measured), which every dataset paid."""
    return dict(_package_versions())


@functools.cache
def _package_versions() -> tuple:
    out = {"python": platform.python_version()}
    for pkg in ("cavity-eliashberg", "jax", "diffrax", "equinox", "numpy", "xarray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return tuple(out.items())


def _attr_value(v):
    if isinstance(v, AbstractProfile):
        return repr(v).replace("\n", " ")
    if v is None:
        return "none"
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, str):
        return v
    arr = np.asarray(v)
    if arr.ndim == 0:
        return float(arr) if np.issubdtype(arr.dtype, np.floating) else arr.item()
    return arr.astype(float)


def model_attributes(model: Model) -> dict:
    """Every model parameter as a flat, netCDF-safe attribute dict."""
    g = model.grid
    attrs = {
        "model.t_qp": _attr_value(model.t_qp),
        "model.tau_in": _attr_value(model.tau_in),
        "model.delta0": float(model.delta0),
        "model.grid.n": g.n,
        "model.grid.xi_max": g.xi_max,
        "model.grid.core": g.core,
        "model.n_baths": len(model.baths),
        "model.gap_mode": model.gap_mode,
    }
    for k, b in enumerate(model.baths):
        attrs[f"baths.{k}.type"] = type(b).__name__
        attrs[f"baths.{k}.coupling"] = b.coupling
        for name, v in b.parameters().items():
            attrs[f"baths.{k}.{name}"] = _attr_value(v)
        bg = (model.omega_grids or (None,) * len(model.baths))[k]
        if bg is not None:
            attrs[f"baths.{k}.dynamic.omega_grid.first"] = bg.nodes[0]
            attrs[f"baths.{k}.dynamic.omega_grid.last"] = bg.nodes[-1]
            attrs[f"baths.{k}.dynamic.omega_grid.nodes"] = len(bg.nodes)
            attrs[f"baths.{k}.dynamic.omega_grid.focus"] = bg.focus
            attrs[f"baths.{k}.dynamic.omega_grid.core"] = bg.core
    return attrs


@eqx.filter_jit
def _rates(model: Model, n, t):
    return model.process_rates(n, t)


def _energy_matched_temperature(omega, c, energy):
    """T with sum_k c_k Omega_k n_B(Omega_k / T) = energy (bisection in ln T), per row."""
    energy = np.atleast_1d(energy)
    lo = np.full(energy.shape, np.log(1e-4))
    hi = np.full(energy.shape, np.log(1e3))

    def e_of(lt):
        x = omega[None, :] / np.exp(lt)[:, None]
        return np.sum(c * omega * np.exp(-x) / -np.expm1(-x), axis=-1)

    for _ in range(200):
        mid = 0.5 * (lo + hi)
        low = e_of(mid) < energy
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    return np.where(energy > 0, np.exp(0.5 * (lo + hi)), 0.0)


def _boson_variables(model: Model, bosons, time: bool) -> tuple[dict, dict]:
    """Variables and coordinates of the dynamic baths (empty for a static model)."""
    if not model.dynamic:
        return {}, {}
    odims = ("time", "omega") if time else ("omega",)
    bdims = ("time", "dynamic_bath") if time else ("dynamic_bath",)
    omegas, owner, rho, res, temps, energies = [], [], [], [], [], []
    reservoir = model.boson_state()
    for j, (k, nb) in enumerate(zip(model.dynamic, bosons, strict=True)):
        om = model.omega_grids[k].state_omega
        c = np.asarray(model.boson_heat_capacity(k))
        nb = np.asarray(nb)
        en = np.sum(c * om * nb, axis=-1)
        omegas.append(om)
        owner.append(np.full(om.shape, k))
        rho.append(np.asarray(model.boson_mode_density(k, jnp.asarray(om))))
        res.append(np.asarray(reservoir[j]))
        energies.append(en)
        temps.append(_energy_matched_temperature(om, c, en).reshape(np.shape(en)))
    nb_all = np.concatenate([np.asarray(b) for b in bosons], axis=-1)
    with np.errstate(divide="ignore"):
        om_all = np.concatenate(omegas)[(None,) * (nb_all.ndim - 1)]
        mode_t = om_all / np.log1p(1.0 / np.maximum(nb_all, 1e-300))
    data = {
        "boson_occupation": (odims, nb_all),
        "boson_mode_temperature": (odims, mode_t),
        "boson_reservoir_occupation": (("omega",), np.concatenate(res)),
        "mode_density": (("omega",), np.concatenate(rho)),
        "boson_temperature": (bdims, np.stack(temps, axis=-1)),
        "boson_energy": (bdims, np.stack(energies, axis=-1)),
    }
    coords = {
        "omega": ("omega", np.concatenate(omegas)),
        "omega_bath": ("omega", np.concatenate(owner)),
        "dynamic_bath": (
            "dynamic_bath",
            [f"{k}:{type(model.baths[k]).__name__}" for k in model.dynamic],
        ),
    }
    return data, coords


_thermal_rows = jax.jit(jax.vmap(thermal_distribution, in_axes=(None, 0, None)), static_argnums=0)


def state_variables(model: Model, y, gap, *, time: bool = False) -> tuple[dict, dict]:
    """The variables every result derives from its states, and their coordinates.

    The one place where n, delta_n (against n_F at the state's own gap), gap,
    relative_gap_change, n_qp, energy, E_xi and the dynamic baths' variables are computed
    from a state: single-point datasets and sweeps both call it.

    - `y`: the state(s), shape (state_size,) or (n_time, state_size) with `time`.
    - `gap`: Delta [T_c], scalar or (n_time,).
    Returns ``({name: (dims, values)}, {coord: (dim, values)})``.
    """
    g = model.grid
    y = np.asarray(y, dtype=np.float64)
    n, bosons = model.split(y)
    gap = np.asarray(gap, dtype=np.float64)
    delta0 = float(model.delta0)
    gaps = np.atleast_1d(gap)
    e = np.sqrt(g.xi[None, :] ** 2 + gaps[:, None] ** 2).reshape(gap.shape + (g.n,))
    # n_F at the state's own gap (NaN where the state is missing)
    safe = np.where(np.isfinite(gaps), gaps, 0.0)
    nf = np.asarray(_thermal_rows(g, jnp.asarray(safe), model.t_qp))
    nf = np.where(np.isfinite(gaps)[:, None], nf, np.nan).reshape(gap.shape + (g.n,))
    w = g.weights
    dims = ("time", "xi") if time else ("xi",)
    sdims = ("time",) if time else ()
    data = {
        "n": (dims, n),
        "delta_n": (dims, n - nf),
        "gap": (sdims, gap),
        "relative_gap_change": (sdims, (gap - delta0) / delta0 if delta0 > 0 else gap * np.nan),
        "n_qp": (sdims, 4.0 * np.sum(w * n, axis=-1)),
        "energy": (sdims, 4.0 * np.sum(w * e * n, axis=-1)),
        "quasiparticle_energy": (dims, e),
        "delta0": ((), delta0),
    }
    coords = {"xi": ("xi", g.xi)}
    boson_data, boson_coords = _boson_variables(model, bosons, time)
    data.update(boson_data)
    coords.update(boson_coords)
    return data, coords


_H_EV_S = 4.135667696e-15  # Planck constant [eV s] (CODATA 2018, exact)
_ROWS = 32  # states per compiled conductivity call (a fixed shape: one compilation)


@functools.partial(jax.jit, static_argnums=0)
def _conductivity_rows(grid, ns, gaps, hbar_omega):
    return jax.vmap(lambda n, d: complex_conductivity(grid, n, d, hbar_omega))(ns, gaps)


def _conductivities(grid, ns: np.ndarray, gaps: np.ndarray, hbar_omega: np.ndarray):
    """sigma_1, sigma_2 [sigma_N] of every row of `ns` (rows, grid.n) at its gap, shape
    (rows, probes); NaN for a row whose state or gap is not finite (a failed point)."""
    ok = np.isfinite(gaps) & np.all(np.isfinite(ns), axis=-1) & (gaps >= 0)
    rows = ns.shape[0]
    pad = (-rows) % _ROWS
    safe_n = np.where(ok[:, None], ns, 0.0)
    safe_d = np.where(ok, gaps, 1.0)
    safe_n = np.concatenate([safe_n, np.zeros((pad, ns.shape[1]))])
    safe_d = np.concatenate([safe_d, np.ones(pad)])
    w = jnp.asarray(hbar_omega, dtype=jnp.float64)
    s1, s2 = [], []
    for k in range(0, rows + pad, _ROWS):
        a, b = _conductivity_rows(
            grid, jnp.asarray(safe_n[k : k + _ROWS]), jnp.asarray(safe_d[k : k + _ROWS]), w
        )
        s1.append(np.asarray(a))
        s2.append(np.asarray(b))
    s1 = np.concatenate(s1)[:rows]
    s2 = np.concatenate(s2)[:rows]
    return np.where(ok[:, None], s1, np.nan), np.where(ok[:, None], s2, np.nan)


def add_observables(
    ds: xr.Dataset,
    model,
    hbar_omega,
    *,
    alpha: float,
    material: Material | None = None,
    t_c_kelvin: float | None = None,
    r_sq: float | None = None,
) -> xr.Dataset:
    """The dataset with what a resonator and a density measurement see of its states
    (docs/physics.md section 11; the formulas are kinetics' ``resonator_response``,
    ``effective_temperature``, ...). Works on a steady or evolve result of
    ``build_dataset`` and on a sweep of them (any leading dimensions), from its ``n`` and
    ``gap`` (and ``n_qp``).

    - `model`: the `Model` of the result, or for a sweep an object array of Models with
      the shape of the sweep's dimensions (the leading dimensions of ``gap`` without
      ``time``, in that order); every model must share one grid. The reference of the
      frequency shift is each model's equilibrium film at T_qp (thermal n_F with the
      self-consistent gap on the grid).
    - `hbar_omega`: the probe (resonance) photon energies [k_B T_c], scalar or 1-D.
    - `alpha`: the kinetic-inductance fraction, 0 < alpha <= 1.
    - `material`: gives N_0 for ``n_qp_um3`` (and T_c when `t_c_kelvin` is None).
    - `t_c_kelvin`: T_c [K] for the physical units (``gap_uev``, ``t_star_mk``,
      ``time_ns``, ``probe_frequency`` in GHz); default the material's.
    - `r_sq`: normal-state sheet resistance [ohm]: adds ``kinetic_inductance`` [pH].

    Adds ``sigma1``, ``sigma2``, ``frequency_shift``, ``inverse_q_qp`` (over the ``probe``
    dimension), ``sigma1_equilibrium``, ``sigma2_equilibrium``, ``x_qp``, ``t_star`` and,
    with T_c, ``gap_uev``, ``t_star_mk``, ``n_qp_um3`` (with a material); names, long names
    and units from ``solvers.VARIABLES``; the settings as ``observables.*`` attributes.
    Failed (NaN) states give NaN observables.
    """
    w = np.atleast_1d(np.asarray(hbar_omega, dtype=np.float64))
    if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w) & (w > 0)):
        raise ParameterError(
            f"add_observables: hbar_omega must be one or more finite energies > 0 [T_c]; "
            f"got {hbar_omega!r}."
        )
    if "n" not in ds or "gap" not in ds:
        raise ParameterError(
            "add_observables: the dataset needs the states 'n' and their 'gap' (a sweep "
            "must keep n: keep_n=True)."
        )
    gap = ds["gap"]
    lead = [d for d in gap.dims if d != "time"]
    models = np.asarray(model, dtype=object) if not isinstance(model, Model) else None
    if models is not None and models.shape != tuple(ds.sizes[d] for d in lead):
        raise ParameterError(
            f"add_observables: {models.shape} models for a dataset of shape "
            f"{tuple(ds.sizes[d] for d in lead)} ({lead})."
        )
    flat_models = [model] if models is None else list(models.reshape(-1))
    grid = flat_models[0].grid
    if any(m.grid != grid for m in flat_models):
        raise ParameterError("add_observables: the models of a sweep must share one grid.")
    t_c = t_c_kelvin if t_c_kelvin is not None else (material.t_c if material else None)

    # the equilibrium reference of each model (one evaluation per distinct T_qp)
    refs = {}
    for m in flat_models:
        t = float(m.t_qp)
        if t not in refs:
            s1, s2 = equilibrium_conductivity(grid, t, w)
            refs[t] = (np.asarray(s1), np.asarray(s2))
    ref1 = np.stack([refs[float(m.t_qp)][0] for m in flat_models])
    ref2 = np.stack([refs[float(m.t_qp)][1] for m in flat_models])
    lead_shape = tuple(ds.sizes[d] for d in lead)
    ref1 = ref1.reshape(lead_shape + (w.size,))
    ref2 = ref2.reshape(lead_shape + (w.size,))

    dims = tuple(gap.dims)
    n = ds["n"].transpose(*dims, "xi").values.reshape(-1, grid.n)
    gaps = gap.transpose(*dims).values.reshape(-1)
    s1, s2 = _conductivities(grid, n, gaps, w)
    shape = tuple(ds.sizes[d] for d in dims) + (w.size,)
    s1, s2 = s1.reshape(shape), s2.reshape(shape)
    # the reference broadcast against the states: a time axis sits after the sweep axes
    ref2_b = ref2 if "time" not in dims else np.expand_dims(ref2, dims.index("time"))
    shift, inv_q = resonator_response(s1, s2, ref2_b, alpha)
    pdims = (*dims, "probe")
    n_qp = (
        ds["n_qp"].transpose(*dims).values
        if "n_qp" in ds
        else 4.0 * np.sum(np.asarray(grid.weights) * ds["n"].transpose(*dims, "xi").values, -1)
    )
    data = {
        "sigma1": (pdims, s1),
        "sigma2": (pdims, s2),
        "frequency_shift": (pdims, np.asarray(shift)),
        "inverse_q_qp": (pdims, np.asarray(inv_q)),
        "sigma1_equilibrium": ((*lead, "probe"), ref1),
        "sigma2_equilibrium": ((*lead, "probe"), ref2),
        "x_qp": (dims, quasiparticle_fraction(n_qp)),
        "t_star": (dims, effective_temperature(grid, n_qp, gap.transpose(*dims).values)),
    }
    coords = {"probe_energy": ("probe", w)}
    attrs = {"observables.alpha": float(alpha)}
    if t_c is not None:
        data["gap_uev"] = (dims, to_microelectronvolt(gap.transpose(*dims).values, t_c))
        data["t_star_mk"] = (dims, data["t_star"][1] * t_c * 1e3)
        coords["probe_frequency"] = ("probe", to_microelectronvolt(w, t_c) * 1e-6 / _H_EV_S * 1e-9)
        if "time" in ds.coords:
            coords["time_ns"] = ("time", to_nanoseconds(ds["time"].values, t_c))
        attrs["observables.t_c_kelvin"] = float(t_c)
    if material is not None:
        data["n_qp_um3"] = (dims, quasiparticle_density_um3(n_qp, material, t_c))
        attrs["observables.material"] = material.name
        attrs["observables.nu_f"] = float(material.nu_f)
    if r_sq is not None:
        if t_c is None:
            raise ParameterError("add_observables: r_sq needs T_c (a material or t_c_kelvin).")
        data["kinetic_inductance"] = (pdims, kinetic_inductance(s2, w, r_sq, t_c) * 1e12)
        attrs["observables.r_sq_ohm"] = float(r_sq)
    out = ds.assign_coords(coords).assign(
        {k: xr.Variable(d, v) for k, (d, v) in data.items()}
    )
    for name in (*data, *coords):
        out[name].attrs.update(attributes(name))
    out.attrs.update(attrs)
    return out


def annotate(ds: xr.Dataset) -> xr.Dataset:
    """Give every variable and coordinate its long name and units from the one table
    (``solvers.VARIABLES``); variables that already carry units keep theirs."""
    for name in ds.variables:
        if "units" not in ds[name].attrs:
            ds[name].attrs.update(attributes(name))
    return ds


def build_dataset(
    model: Model,
    n,
    gap,
    *,
    kind: str,
    time=None,
    solver: dict | None = None,
    extra: dict | None = None,
    config: dict | None = None,
    rates_at: float | None = None,
) -> xr.Dataset:
    """Model + solution -> Dataset (the one builder for all solvers).

    - `n`: occupations, shape (n_xi,) or (n_time, n_xi); with dynamic baths the
      full state (last axis ``model.state_size``): the bosons go to the variables
      ``boson_occupation`` (over the ``omega`` coordinate), ``boson_temperature``...
    - `gap`: Delta [T_c], scalar or (n_time,).
    - `kind`: "perturbative", "steady" or "evolve".
    - `time`: save times [hbar/(k_B T_c)] when `n` has a time axis.
    - `solver`: settings and statistics, stored as ``solver.*`` attributes.
    - `extra`: further variables, name -> (dims, values) (units from the variable table).
    - `config`: the configuration that produced the result (stored as JSON).
    - `rates_at`: for a single state, the time [hbar/(k_B T_c)] at which to evaluate
      each bath's process rates (variable ``process_rate(bath, process)``).
    """
    y = np.asarray(n, dtype=np.float64)
    data, coords = state_variables(model, y, gap, time=time is not None)
    del data["delta0"]  # a model attribute of a single point
    if rates_at is not None and time is None and model.baths:
        data["process_rate"] = (
            ("bath", "process"), np.asarray(_rates(model, jnp.asarray(y), rates_at))
        )
        coords["bath"] = ("bath", [f"{k}:{type(b).__name__}" for k, b in enumerate(model.baths)])
        coords["process"] = ("process", list(PROCESSES))
    for name, (d, v) in (extra or {}).items():
        data[name] = (d, np.asarray(v))
    if time is not None:
        coords["time"] = ("time", np.asarray(time, dtype=np.float64))
    ds = annotate(xr.Dataset(data, coords=coords))
    attrs = {
        "title": f"cavity-eliashberg {kind} result",
        "kind": kind,
        "units": "hbar = k_B = 1; energies in k_B T_c, times in hbar/(k_B T_c)",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    attrs.update(model_attributes(model))
    for k, v in (solver or {}).items():
        attrs[f"solver.{k}"] = _attr_value(v)
    for k, v in package_versions().items():
        attrs[f"version.{k}"] = v
    if config is not None:
        attrs["config"] = json.dumps(config, sort_keys=True, default=str)
    ds.attrs.update(attrs)
    return ds


def save(ds: xr.Dataset, path, *, overwrite: bool = False) -> str:
    """Write `ds` to netCDF at `path` atomically (temporary file, fsync, rename).

    An existing file is kept unless ``overwrite=True``. Returns the path.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder {folder} does not exist.")
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".nc", dir=folder)
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load(path) -> xr.Dataset:
    """Read a dataset written by `save` fully into memory (the file is closed)."""
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return ds.load()


__all__ = ["build_dataset", "state_variables", "annotate", "add_observables", "save", "load"]

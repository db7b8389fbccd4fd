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

from kinetics import CavityEliashbergError, Model
from kinetics._gap import thermal_distribution
from kinetics._model import PROCESSES
from kinetics._profiles import AbstractProfile

# name -> (long_name, units): the table every variable of every result follows
VARIABLES = {
    "n": ("quasiparticle occupation n(xi)", "1"),
    "delta_n": ("n - n_F(E_xi(Delta)/T_qp) at the state's own gap", "1"),
    "gap": ("superconducting gap Delta", "k_B T_c"),
    "relative_gap_change": ("(Delta - Delta_0) / Delta_0", "1"),
    "relative_gap_change_gl": ("delta Delta / Delta_0, Ginzburg-Landau form", "1"),
    "n_qp": ("quasiparticle density 4 integral dxi n", "nu_F k_B T_c"),
    "energy": ("quasiparticle energy 4 integral dxi E n", "nu_F (k_B T_c)^2"),
    "quasiparticle_energy": ("E_xi = sqrt(xi^2 + Delta^2)", "k_B T_c"),
    "boson_occupation": ("occupation N_b(Omega) of the dynamic baths' modes", "1"),
    "boson_reservoir_occupation": ("reservoir occupation n_B(Omega / T_b) at t = 0", "1"),
    "boson_mode_temperature": ("mode temperature Omega / ln(1 + 1/N_b)", "k_B T_c"),
    "boson_temperature": (
        "effective boson temperature: the Bose distribution with the same energy "
        "integral dOmega rho_b Omega N_b on the Omega grid",
        "k_B T_c",
    ),
    "boson_energy": ("boson energy integral dOmega rho_b Omega N_b", "4 nu_F (k_B T_c)^2"),
    "mode_density": ("boson modes per unit energy rho_b(Omega)", "4 nu_F"),
    "process_rate": (
        "quasiparticles per unit time scattered out / created by pair breaking / lost by "
        "recombination, 4 integral dxi, per bath",
        "nu_F k_B T_c x k_B T_c / hbar",
    ),
}
COORDS = {
    "xi": ("normal-state energy xi", "k_B T_c"),
    "omega": ("boson energy Omega (state nodes of every dynamic bath, in bath order)", "k_B T_c"),
    "omega_bath": ("index of the bath each omega node belongs to", "1"),
    "dynamic_bath": ("dynamic bath", "1"),
    "time": ("time", "hbar / (k_B T_c)"),
}


class SolverError(CavityEliashbergError, RuntimeError):
    """A solver failed; ``partial`` holds the dataset of what was computed before."""

    def __init__(self, message: str, partial: xr.Dataset | None = None):
        super().__init__(message)
        self.partial = partial


def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("cavity-eliashberg", "jax", "diffrax", "equinox", "numpy", "xarray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


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


def _boson_variables(model: Model, bosons, time) -> tuple[dict, dict]:
    """Variables and coordinates of the dynamic baths (empty for a static model)."""
    from kinetics._dynamic import heat_capacity, mode_density

    if not model.dynamic:
        return {}, {}
    odims = ("time", "omega") if time is not None else ("omega",)
    bdims = ("time", "dynamic_bath") if time is not None else ("dynamic_bath",)
    omegas, owner, rho, res, temps, energies = [], [], [], [], [], []
    for k, nb in zip(model.dynamic, bosons, strict=True):
        bath, bg = model.baths[k], model.omega_grids[k]
        om = bg.state_omega
        c = np.asarray(heat_capacity(bath, bg))
        nb = np.asarray(nb)
        en = np.sum(c * om * nb, axis=-1)
        omegas.append(om)
        owner.append(np.full(om.shape, k))
        rho.append(np.asarray(mode_density(bath, jnp.asarray(om))))
        res.append(np.asarray(model.boson_state()[model.dynamic.index(k)]))
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
    - `extra`: further variables, name -> (dims, values) (units from VARIABLES).
    - `config`: the configuration that produced the result (stored as JSON).
    - `rates_at`: for a single state, the time [hbar/(k_B T_c)] at which to evaluate
      each bath's process rates (variable ``process_rate(bath, process)``).
    """
    g = model.grid
    y = np.asarray(n, dtype=np.float64)
    n, bosons = model.split(y)
    gap = np.asarray(gap, dtype=np.float64)
    delta0 = float(model.delta0)
    t_qp = model.t_qp

    gaps = np.atleast_1d(gap)[:, None]
    e = np.sqrt(g.xi[None, :] ** 2 + gaps**2).reshape(gap.shape + (g.n,))
    nf = np.asarray(_thermal_rows(g, jnp.asarray(gaps[:, 0]), t_qp)).reshape(gap.shape + (g.n,))
    w = g.weights
    dims = ("time", "xi") if time is not None else ("xi",)
    sdims = ("time",) if time is not None else ()
    data = {
        "n": (dims, n),
        "delta_n": (dims, n - nf),
        "gap": (sdims, gap),
        "relative_gap_change": (sdims, (gap - delta0) / delta0 if delta0 > 0 else gap * np.nan),
        "n_qp": (sdims, 4.0 * np.sum(w * n, axis=-1)),
        "energy": (sdims, 4.0 * np.sum(w * e * n, axis=-1)),
        "quasiparticle_energy": (dims, e),
    }
    coords = {"xi": ("xi", g.xi)}
    boson_data, boson_coords = _boson_variables(model, bosons, time)
    data.update(boson_data)
    coords.update(boson_coords)
    if rates_at is not None and time is None and model.baths:
        data["process_rate"] = (("bath", "process"), np.asarray(_rates(model, jnp.asarray(y), rates_at)))
        coords["bath"] = ("bath", [f"{k}:{type(b).__name__}" for k, b in enumerate(model.baths)])
        coords["process"] = ("process", list(PROCESSES))
    for name, (d, v) in (extra or {}).items():
        data[name] = (d, np.asarray(v))
    if time is not None:
        coords["time"] = ("time", np.asarray(time, dtype=np.float64))
    ds = xr.Dataset(data, coords=coords)
    for name in ds.variables:
        long_name, units = VARIABLES.get(name, COORDS.get(name, (name, "1")))
        ds[name].attrs.update(long_name=long_name, units=units)
    attrs = {
        "title": f"cavity-eliashberg {kind} result",
        "kind": kind,
        "units": "hbar = k_B = 1; energies in k_B T_c, times in hbar/(k_B T_c)",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
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


__all__ = ["build_dataset", "save", "load", "SolverError"]

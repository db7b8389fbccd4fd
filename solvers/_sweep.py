"""Parameter sweeps: compiled once per problem shape, in-process or on dask.distributed.

``sweep(model_factory, {"omega0": [...], "t_cav": [...]}, kind="steady")`` solves
the model ``model_factory(omega0=..., t_cav=...)`` at every point of the outer
product of the parameter values and returns one ``xarray.Dataset`` with one
dimension per swept parameter.

How the work is organised
-------------------------

- The points still to compute are cut into *chunks* (the unit of work, of
  streaming and of resumption). A chunk runs :func:`_run_chunk`: it builds the
  models, groups the points whose models share a structure (grid, bath types, every
  static setting: only float64 parameter values differ) and solves each group with
  *one* compiled program, kept in a per-process cache, so a process compiles once
  per problem shape and never again (changing parameter values never recompiles:
  they are traced arrays). ``batch="vmap"`` runs a group as one ``jax.vmap``-ed
  program over the stacked models (padded to the chunk size, so that the last
  chunk reuses the program); ``batch="loop"`` calls the single-point program once
  per point. "auto" picks "loop" on CPU, where XLA already spreads one point's
  N x N kernels and N^3 LU over the cores and a batch only adds lock-step work
  (benchmarks/sweep.py), and "vmap" on accelerators.
- Without ``output`` the results stay in memory. With ``output="map.nc"``, every
  chunk's results are written, as they arrive, to ``map.nc.parts/`` (atomic netCDF
  files, one per chunk, and a manifest of the sweep); a rerun of the same sweep
  computes only the points not in that folder. When every point is there they are
  merged into ``map.nc`` (atomic) and the folder is removed. A rerun of a finished
  sweep returns the file.
- ``scheduler="tcp://host:8786"`` sends the chunks as tasks to a dask.distributed
  cluster; each worker keeps its compiled programs across tasks. Without an
  address, a ``distributed.LocalCluster`` is started when it helps (``workers`` > 1,
  or ``workers=None`` with >= 4 cores and dask installed), else the chunks run in
  this process. dask is optional: ``pip install "cavity-eliashberg[distributed]"``.

The store records *what* is computed (factory, parameter values, kind, options),
not *where* or *how*: a sweep started in-process may be resumed on a cluster, with
another ``chunk_size`` or ``batch``. ``compilation_cache=FOLDER`` points JAX's
persistent compilation cache of every process at FOLDER, so that a worker that
finds a program there loads it instead of compiling it.

A point that cannot be built or solved is marked in the dataset (``status``
"failed" or "error", ``message`` says why) and never stops the sweep.

The model factory
-----------------

Any callable ``model_factory(**values) -> kinetics.Model`` whose keyword arguments
are the swept parameter names; each value is a Python float in the unit stated by
``units`` (coordinates carry it). For a cluster it must be picklable: a module-level
function, or ``functools.partial`` of one to fix the other settings::

    def cavity(omega0, t_cav, *, eta, grid_n=400):
        grid = kinetics.Grid(n=grid_n)
        bath = kinetics.MultimodeCavity(omega0=omega0, t_cav=t_cav, eta=eta)
        return kinetics.Model(t_qp=0.9, tau_in=1000.0, baths=[bath], grid=grid)

    factory = functools.partial(cavity, eta=0.0155 / 1000.0)
    ds = solvers.sweep(factory, {"omega0": [1.0, 2.0], "t_cav": [0.0, 0.45]})

The resumable store is keyed by the factory's name (module, qualified name and the
arguments of a partial), the parameter values, ``kind`` and the solver options: if
the factory's *code* changes, pass ``overwrite=True`` or another ``output``.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
import os
import shutil
import socket
import time as _time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from kinetics import Model, ParameterError
from kinetics._perturbative import perturbative_delta_n

from ._bdf import interior_jumps
from ._dataset import _attr_value, load, model_attributes, package_versions, save
from ._evolve import SOLVERS, _gershgorin, _solve, choose_solver
from ._perturbative import _first_order
from ._rhs import blas_single_thread
from ._steady import _newton, steady_state

KINDS = ("steady", "evolve", "perturbative")
BATCH_MODES = ("auto", "vmap", "loop")

# kind -> option -> default (the solver settings a sweep accepts, as in the solvers)
DEFAULT_OPTIONS = {
    "steady": {
        "tol": 1e-11,
        "max_iter": 50,
        "start": "perturbative",
        "continuation_steps": 8,
        "t": 0.0,
    },
    "evolve": {
        "t_save": None,
        "solver": "auto",
        "rtol": 1e-8,
        "atol": 1e-12,
        "max_steps": 200_000,
    },
    "perturbative": {"t": 0.0},
}

# parameter name -> (long_name, units) for the usual factory arguments
PARAMETER_UNITS = {
    "omega0": ("cavity frequency omega_0", "k_B T_c"),
    "t_cav": ("photon temperature T_cav", "k_B T_c"),
    "t_qp": ("quasiparticle temperature T_qp", "k_B T_c"),
    "t_ph": ("phonon temperature T_ph", "k_B T_c"),
    "t_bath": ("bath temperature", "k_B T_c"),
    "eta": ("cavity coupling eta", "1"),
    "eta_tau_in": ("eta * tau_in", "hbar / (k_B T_c)"),
    "kappa": ("cavity half width kappa", "k_B T_c"),
    "tau_in": ("inelastic relaxation time tau_in", "hbar / (k_B T_c)"),
    "tau0": ("electron-phonon time tau_0", "hbar / (k_B T_c)"),
    "omega_d": ("drive frequency omega_d", "k_B T_c"),
    "power": ("drive power P", "k_B T_c"),
    "omega0_ratio": ("omega_0 / Delta_0", "1"),
    "t_cav_ratio": ("T_cav / T_qp", "1"),
}

# result variable -> (long_name, units); "*" in long_name is filled per kind
RESULT_VARIABLES = {
    "gap": ("superconducting gap Delta", "k_B T_c"),
    "relative_gap_change": ("(Delta - Delta_0) / Delta_0", "1"),
    "relative_gap_change_gl": ("delta Delta / Delta_0, Ginzburg-Landau form", "1"),
    "delta0": ("equilibrium gap Delta_0 = Delta(T_qp) on the model's grid", "k_B T_c"),
    "n_qp": ("quasiparticle density 4 integral dxi n", "nu_F k_B T_c"),
    "energy": ("quasiparticle energy 4 integral dxi E n", "nu_F (k_B T_c)^2"),
    "n": ("quasiparticle occupation n(xi)", "1"),
    "status": ("'success', 'failed' (solver did not converge) or 'error' (raised)", ""),
    "message": ("why the point failed ('' on success)", ""),
    "warnings": ("warnings raised while building and solving the point", ""),
    "converged": ("the solver reached its tolerance", "1"),
    "residual": ("Newton residual max|dn/dt| tau_in (steady); NaN otherwise", "1"),
    "iterations": ("*", "1"),
    "wall_time": ("wall time of the point (its share of a batched group)", "s"),
    "sweep_run": ("id of the sweep run that computed the point", ""),
}
_ITERATIONS = {
    "steady": "Newton iterations (summed over continuation stages)",
    "evolve": "integrator steps (diffrax num_steps)",
    "perturbative": "iterations (none: closed form)",
}
_COORDS = {
    "xi": ("normal-state energy xi", "k_B T_c"),
    "time": ("time", "hbar / (k_B T_c)"),
}
_STRINGS = ("status", "message", "warnings", "sweep_run")
_SCALARS = ("gap", "relative_gap_change", "delta0", "n_qp", "energy")

# Bytes per point and per grid point squared (float64 N x N arrays alive at once in
# the Newton step: kernels, Jacobian, its LU, line-search copies; XLA's temporaries
# for one Jacobian are ~19 N^2 x 8 bytes, benchmarks/README.md). Generous on purpose.
_BYTES_PER_N2 = 64 * 8
_MAX_CHUNK = 64


# ---------------------------------------------------------------------------
# argument checks (before any work)
# ---------------------------------------------------------------------------


def _check_parameters(parameters) -> dict[str, np.ndarray]:
    if not isinstance(parameters, Mapping) or not parameters:
        raise ParameterError(
            "sweep: parameters must be a non-empty mapping name -> sequence of values, e.g. "
            f"{{'omega0': [1.0, 2.0]}}; got {parameters!r}."
        )
    out = {}
    for name, values in parameters.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ParameterError(
                f"sweep: parameter names must be Python identifiers (they are passed to the "
                f"factory as keyword arguments); got {name!r}."
            )
        if name in ("xi", "time", "point") or name in RESULT_VARIABLES:
            raise ParameterError(
                f"sweep: parameter name {name!r} is reserved for a dataset variable; rename "
                "the factory argument."
            )
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(
                f"sweep: parameters[{name!r}] must be a sequence of real numbers; got {values!r}."
            ) from None
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1 or arr.size == 0:
            raise ParameterError(
                f"sweep: parameters[{name!r}] must be a non-empty 1-D sequence; got shape "
                f"{arr.shape}."
            )
        if not np.all(np.isfinite(arr)):
            raise ParameterError(f"sweep: parameters[{name!r}] must be finite; got {arr.tolist()}.")
        if np.unique(arr).size != arr.size:
            raise ParameterError(
                f"sweep: parameters[{name!r}] has repeated values (a coordinate must not); got "
                f"{arr.tolist()}."
            )
        out[name] = arr
    return out


def _check_units(names, units) -> dict[str, tuple[str, str]]:
    units = dict(units or {})
    for k in units:
        if k not in names:
            raise ParameterError(
                f"sweep: units names {k!r}, which is not a swept parameter ({', '.join(names)})."
            )
    out = {}
    for name in names:
        if name in units:
            u = units[name]
            if isinstance(u, str):
                out[name] = (PARAMETER_UNITS.get(name, (name, ""))[0], u)
            elif (
                isinstance(u, (tuple, list)) and len(u) == 2 and all(isinstance(s, str) for s in u)
            ):
                out[name] = (u[0], u[1])
            else:
                raise ParameterError(
                    f"sweep: units[{name!r}] must be a unit string or (long_name, units); "
                    f"got {u!r}."
                )
        elif name in PARAMETER_UNITS:
            out[name] = PARAMETER_UNITS[name]
        else:
            raise ParameterError(
                f"sweep: the unit of parameter {name!r} is not known; pass units={{{name!r}: "
                f"'k_B T_c'}} (or (long_name, units)). Known: {', '.join(sorted(PARAMETER_UNITS))}."
            )
    return out


def _check_options(kind: str, options) -> dict:
    opts = dict(DEFAULT_OPTIONS[kind])
    for k, v in (options or {}).items():
        if k not in opts:
            raise ParameterError(
                f"sweep: option {k!r} is not a {kind} setting; allowed: {', '.join(opts)}."
            )
        opts[k] = v
    if kind == "steady":
        if opts["start"] not in ("perturbative", "thermal"):
            raise ParameterError(
                "sweep: options['start'] must be 'perturbative' or 'thermal'; got "
                f"{opts['start']!r}."
            )
        tol = opts["tol"]
        if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
            raise ParameterError(f"sweep: options['tol'] must be > 0; got {tol!r}.")
        for k in ("max_iter", "continuation_steps"):
            v = opts[k]
            if (
                not isinstance(v, (int, np.integer))
                or isinstance(v, bool)
                or v < (1 if k == "max_iter" else 0)
            ):
                raise ParameterError(
                    f"sweep: options[{k!r}] must be an integer >= {1 if k == 'max_iter' else 0}; "
                    f"got {v!r}."
                )
        opts["tol"], opts["max_iter"] = float(tol), int(opts["max_iter"])
        opts["continuation_steps"] = int(opts["continuation_steps"])
    if kind in ("steady", "perturbative"):
        t = opts["t"]
        if not (isinstance(t, (int, float)) and math.isfinite(t)):
            raise ParameterError(
                f"sweep: options['t'] must be a finite time [hbar/(k_B T_c)]; got {t!r}."
            )
        opts["t"] = float(t)
    if kind == "evolve":
        if opts["t_save"] is None:
            raise ParameterError(
                "sweep: kind='evolve' needs options={'t_save': [...]}: increasing save times "
                "[hbar/(k_B T_c)]."
            )
        ts = np.asarray(opts["t_save"], dtype=np.float64).reshape(-1)
        if ts.size < 1 or not np.all(np.isfinite(ts)) or np.any(np.diff(ts) <= 0):
            raise ParameterError("sweep: options['t_save'] must be finite and strictly increasing.")
        opts["t_save"] = tuple(float(x) for x in ts)
        if opts["solver"] != "auto" and opts["solver"] not in SOLVERS:
            raise ParameterError(
                f"sweep: options['solver'] must be 'auto' or one of {sorted(SOLVERS)}; got "
                f"{opts['solver']!r}."
            )
        for k in ("rtol", "atol"):
            v = opts[k]
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"sweep: options[{k!r}] must be > 0; got {v!r}.")
            opts[k] = float(v)
        v = opts["max_steps"]
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ParameterError(
                f"sweep: options['max_steps'] must be a positive integer; got {v!r}."
            )
        opts["max_steps"] = int(v)
    return opts


def _check_factory(model_factory, names):
    if not callable(model_factory):
        raise ParameterError(
            f"sweep: model_factory must be a callable returning a kinetics.Model; got "
            f"{type(model_factory).__name__}."
        )
    try:
        sig = inspect.signature(model_factory)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(**{n: 0.0 for n in names})
    except TypeError as err:
        raise ParameterError(
            f"sweep: model_factory{sig} cannot be called with the swept parameters "
            f"({', '.join(names)}) as keyword arguments: {err}."
        ) from None


def factory_name(model_factory) -> str:
    """A stable description of a factory (module.qualname, and a partial's arguments)."""
    if isinstance(model_factory, functools.partial):
        inner = factory_name(model_factory.func)
        kw = ", ".join(f"{k}={v!r}" for k, v in sorted(model_factory.keywords.items()))
        args = ", ".join(repr(a) for a in model_factory.args)
        return f"partial({inner}, {args}; {kw})"
    mod = getattr(model_factory, "__module__", None) or type(model_factory).__module__
    qual = getattr(model_factory, "__qualname__", None) or type(model_factory).__qualname__
    return f"{mod}.{qual}"


# ---------------------------------------------------------------------------
# the numerics of one chunk (runs on a worker)
# ---------------------------------------------------------------------------


def _steady_core(model: Model, t, tol, max_iter, perturbative_start):
    """steady_state's first Newton stage, traceable (same start, scale and loop).

    The state y is n, followed by the dynamic baths' N_b when there are any."""
    if perturbative_start and model.tau_in is not None:
        y0 = jnp.clip(model.thermal_state() + perturbative_delta_n(model, t), 0.0, 1.0)
        y0 = model.join(y0, model.boson_state(t))
    else:
        y0 = model.initial_state(t)
    scale = model.tau_in if model.tau_in is not None else 1.0 / _gershgorin(model, y0, t)
    y, res, it = _newton(model, y0, t, scale, tol, max_iter)
    return {"n": y, "residual": res, "iterations": it, "gap": model.gap(y), "delta0": model.delta0}


def _evolve_core(model: Model, t_save, name, rtol, atol, max_steps, jumps):
    """evolve's integration from its default initial state, traceable."""
    ts = jnp.asarray(t_save)
    t1 = t_save[-1] if len(t_save) > 1 else t_save[0]
    sol = _solve(
        model,
        model.initial_state(),
        t_save[0],
        t1,
        ts,
        name,
        rtol,
        atol,
        max_steps,
        None,
        jumps,
        False,
    )
    ys = sol.ys
    done = jnp.all(jnp.isfinite(ys), axis=1)
    gaps = jax.vmap(model.gap)(jnp.where(done[:, None], ys, 0.0))
    return {
        "n": ys,
        "gap": jnp.where(done, gaps, jnp.nan),
        "result": sol.result._value,
        "iterations": sol.stats["num_steps"],
        "delta0": model.delta0,
    }


def _perturbative_core(model: Model, t):
    dn, rel, rel_gl = _first_order(model, t)
    d0 = model.delta0
    return {
        "n": model.thermal_state() + dn,
        "gap": d0 * (1.0 + rel),
        "relative_gap_change_gl": rel_gl,
        "delta0": d0,
    }


# (kind, options, structure, batch size) -> (compiled program, compile seconds)
_COMPILED: dict = {}


def _structure_key(model: Model):
    dyn, static = eqx.partition(model, eqx.is_array)
    leaves, treedef = jax.tree.flatten(dyn)
    s_leaves, s_treedef = jax.tree.flatten(static)
    shapes = tuple((x.shape, str(x.dtype), bool(getattr(x, "weak_type", False))) for x in leaves)
    key = (treedef, s_treedef, shapes, tuple(s_leaves))
    try:
        hash(key)
    except TypeError:
        key = ("unhashable", id(model))
    return key


def _core_fn(kind: str, options_key: tuple):
    opts = dict(options_key)
    if kind == "steady":
        return lambda m: _steady_core(
            m, opts["t"], opts["tol"], opts["max_iter"], opts["start"] == "perturbative"
        )
    if kind == "evolve":
        return lambda m: _evolve_core(
            m,
            opts["t_save"],
            opts["solver"],
            opts["rtol"],
            opts["atol"],
            opts["max_steps"],
            opts["jumps"],
        )
    return lambda m: _perturbative_core(m, opts["t"])


def _program(kind, options_key, static, dyn, size):
    """The compiled program of a group, cached per process (size None: one point,
    else a vmap over `size` stacked points); returns (program, compile seconds)."""
    one = dyn if size is None else jax.tree.map(lambda x: x[0], dyn)
    key = (kind, options_key, _structure_key(eqx.combine(one, static)), size)
    if key in _COMPILED:
        return _COMPILED[key][0], 0.0
    core = _core_fn(kind, options_key)

    def one_point(d):
        return core(eqx.combine(d, static))

    fn = jax.jit(one_point if size is None else jax.vmap(one_point))
    clock = _time.perf_counter()
    compiled = fn.lower(dyn).compile()
    seconds = _time.perf_counter() - clock
    _COMPILED[key] = (compiled, seconds)
    return compiled, seconds


@dataclass(frozen=True)
class _Task:
    kind: str
    factory: Callable
    names: tuple
    points: tuple  # ((flat index, (value, ...)), ...)
    options: tuple  # sorted (name, value) pairs
    batch: str
    pad_to: int
    keep_n: bool
    run_id: str
    compilation_cache: str | None = None


@dataclass
class _Point:
    index: int
    status: str = "error"
    message: str = ""
    warnings: str = ""
    converged: bool = False
    residual: float = math.nan
    iterations: int = 0
    wall_time: float = math.nan
    values: dict = field(default_factory=dict)  # result name -> array
    xi: np.ndarray | None = None
    model: Model | None = None


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _build_model(task: _Task, index, values) -> _Point:
    p = _Point(index=index)
    kwargs = dict(zip(task.names, (float(v) for v in values), strict=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = task.factory(**kwargs)
            if not isinstance(model, Model):
                raise ParameterError(
                    f"model_factory returned {type(model).__name__}, expected a kinetics.Model."
                )
            p.model = model
        except Exception as err:  # a failing point is recorded, never raised
            args = ", ".join(f"{k}={v:g}" for k, v in kwargs.items())
            p.message = f"model_factory({args}) raised {_describe(err)}"
    p.warnings = " | ".join(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
    return p


def _finish(kind, opts, p: _Point, out: dict):
    """Fill a point's results from the core's outputs (numpy, one point)."""
    model = p.model
    grid = model.grid
    w = grid.weights
    n = np.asarray(out["n"], dtype=np.float64)[..., : grid.n]  # without dynamic baths' N_b
    gap = np.asarray(out["gap"], dtype=np.float64)
    d0 = float(out["delta0"])
    e = np.sqrt(grid.xi**2 + gap[..., None] ** 2)
    p.values = {
        "gap": gap,
        "relative_gap_change": (gap - d0) / d0 if d0 > 0 else gap * np.nan,
        "delta0": np.asarray(d0),
        "n_qp": 4.0 * np.sum(w * n, axis=-1),
        "energy": 4.0 * np.sum(w * e * n, axis=-1),
        "n": n,
    }
    p.xi = grid.xi
    if kind == "steady":
        p.residual = float(out["residual"])
        p.iterations = int(out["iterations"])
        p.converged = bool(p.residual <= opts["tol"])
        p.status = "success" if p.converged else "failed"
    elif kind == "evolve":
        code = int(out["result"])
        p.iterations = int(out["iterations"])
        p.converged = code == 0
        p.status = "success" if p.converged else "failed"
        if not p.converged:
            msg = diffrax.RESULTS._index_to_message[code]
            p.message = (
                f"evolve stopped: {msg} (solver {opts['solver']}, rtol {opts['rtol']:g}). Try "
                "larger max_steps, looser tolerances, a finer grid or another solver."
            )
    else:
        p.values["relative_gap_change_gl"] = np.asarray(
            out["relative_gap_change_gl"], dtype=np.float64
        )
        p.converged = True
        p.status = "success"


def _steady_fallback(opts, p: _Point):
    """Points the fast Newton stage left unconverged: steady_state's full recipe."""
    if opts["continuation_steps"] == 0 and p.status == "failed":
        p.message = (
            f"steady_state did not converge: residual {p.residual:.3g} > tol {opts['tol']:g} after "
            f"{p.iterations} iterations (newton, 1 stage(s))."
        )
        return
    clock = _time.perf_counter()
    try:
        ds = steady_state(
            p.model,
            start=opts["start"],
            t=opts["t"],
            tol=opts["tol"],
            max_iter=opts["max_iter"],
            continuation_steps=opts["continuation_steps"],
        )
        p.message = ""
    except Exception as err:
        ds = getattr(err, "partial", None)
        p.message = _describe(err)
        if ds is None:
            p.status = "error"
            return
    first_iterations = p.iterations
    _finish(
        "steady",
        opts,
        p,
        {
            "n": ds.n.values,
            "gap": ds.gap.values,
            "delta0": ds.attrs["model.delta0"],
            "residual": ds.attrs["solver.residual"],
            "iterations": ds.attrs["solver.iterations"],
        },
    )
    p.iterations += first_iterations
    p.wall_time = (
        (p.wall_time if math.isfinite(p.wall_time) else 0.0) + _time.perf_counter() - clock
    )


def _solve_group(task: _Task, opts, options_key, group: list[_Point]) -> float:
    """Solve points of one structure with one compiled program; returns compile seconds."""
    parts = [eqx.partition(p.model, eqx.is_array) for p in group]
    static = parts[0][1]
    compile_s = 0.0
    if task.batch == "vmap":
        size = max(task.pad_to, len(group))
        dyns = [d for d, _ in parts] + [parts[-1][0]] * (size - len(group))
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *dyns)
        program, compile_s = _program(task.kind, options_key, static, stacked, size)
        clock = _time.perf_counter()
        with blas_single_thread():  # XLA's CPU LU calls OpenBLAS (see _rhs)
            out = jax.device_get(program(stacked))
        share = (_time.perf_counter() - clock) / len(group)
        for k, p in enumerate(group):
            p.wall_time = share
            _finish(task.kind, opts, p, {name: v[k] for name, v in out.items()})
    else:
        for p, (dyn, _) in zip(group, parts, strict=True):
            program, c = _program(task.kind, options_key, static, dyn, None)
            compile_s += c
            clock = _time.perf_counter()
            with blas_single_thread():
                out = jax.device_get(program(dyn))
            p.wall_time = _time.perf_counter() - clock
            _finish(task.kind, opts, p, out)
    return compile_s


def _run_chunk(task: _Task) -> dict:
    """Solve the points of one chunk; returns plain numpy results (picklable)."""
    if task.compilation_cache is not None:
        _use_compilation_cache(task.compilation_cache)
    opts = dict(task.options)
    points = [_build_model(task, i, v) for i, v in task.points]
    groups: dict = {}
    for p in points:
        if p.model is None:
            continue
        extra = ()
        if task.kind == "evolve":
            ts = opts["t_save"]
            try:
                name = opts["solver"]
                if name == "auto":
                    name = choose_solver(p.model, p.model.initial_state(), ts[-1] - ts[0], ts[0])
                jumps = interior_jumps(p.model.jump_times(), ts[0], ts[-1])
            except Exception as err:
                p.message = _describe(err)
                continue
            extra = (("solver", name), ("jumps", jumps))
        groups.setdefault((_structure_key(p.model), extra), []).append(p)
    compile_s = 0.0
    for (_, extra), group in groups.items():
        o = dict(opts)
        o.update(extra)
        options_key = tuple(sorted(o.items()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                compile_s += _solve_group(task, o, options_key, group)
            except Exception:
                # one bad point must not sink its group: solve them one by one
                for p in group:
                    try:
                        compile_s += _solve_group(_replace_batch(task), o, options_key, [p])
                    except Exception as err:
                        p.status, p.message = "error", f"solver raised {_describe(err)}"
            if task.kind == "steady":
                for p in group:
                    if p.status == "failed" or (p.status == "error" and p.values):
                        _steady_fallback(o, p)
    results = []
    for p in points:
        keep = {k: v for k, v in p.values.items() if task.keep_n or k != "n"}
        results.append(
            {
                "index": p.index,
                "status": p.status,
                "message": p.message,
                "warnings": p.warnings,
                "converged": p.converged,
                "residual": p.residual,
                "iterations": p.iterations,
                "wall_time": p.wall_time,
                "values": keep,
                "xi": p.xi,
            }
        )
    return {
        "points": results,
        "compile_s": compile_s,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "run_id": task.run_id,
    }


def _use_compilation_cache(folder: str) -> None:
    """Point JAX's persistent compilation cache of this process at `folder` (once)."""
    if jax.config.jax_compilation_cache_dir == folder:
        return
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", folder)
    # our programs take seconds to compile; cache every one of them
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    compilation_cache.reset_cache()  # an earlier compile may have fixed the old setting


def _replace_batch(task: _Task) -> _Task:
    return _Task(**{**task.__dict__, "batch": "loop"})


# ---------------------------------------------------------------------------
# results: chunk files, merging
# ---------------------------------------------------------------------------


def _part_dataset(result: dict, kind: str, t_save) -> xr.Dataset:
    pts = result["points"]
    idx = np.asarray([p["index"] for p in pts], dtype=np.int64)
    data = {
        "status": ("point", np.asarray([p["status"] for p in pts], dtype=object)),
        "message": ("point", np.asarray([p["message"] for p in pts], dtype=object)),
        "warnings": ("point", np.asarray([p["warnings"] for p in pts], dtype=object)),
        "sweep_run": ("point", np.asarray([result["run_id"]] * len(pts), dtype=object)),
        "converged": ("point", np.asarray([p["converged"] for p in pts], dtype=np.int8)),
        "residual": ("point", np.asarray([p["residual"] for p in pts], dtype=np.float64)),
        "iterations": ("point", np.asarray([p["iterations"] for p in pts], dtype=np.int64)),
        "wall_time": ("point", np.asarray([p["wall_time"] for p in pts], dtype=np.float64)),
    }
    coords = {"point": ("point", idx)}
    tdims = ("time",) if kind == "evolve" else ()
    tshape = (len(t_save),) if kind == "evolve" else ()
    names = list(_SCALARS) + (["relative_gap_change_gl"] if kind == "perturbative" else [])
    for name in names:
        trailing = () if name == "delta0" else tshape
        arr = np.full((len(pts),) + trailing, np.nan)
        for k, p in enumerate(pts):
            if name in p["values"]:
                arr[k] = p["values"][name]
        data[name] = (("point",) + (() if name == "delta0" else tdims), arr)
    xis = [p["xi"] for p in pts if p["xi"] is not None and "n" in p["values"]]
    if xis and all(x.shape == xis[0].shape and np.array_equal(x, xis[0]) for x in xis):
        arr = np.full((len(pts),) + tshape + xis[0].shape, np.nan)
        for k, p in enumerate(pts):
            if "n" in p["values"]:
                arr[k] = p["values"]["n"]
        data["n"] = (("point",) + tdims + ("xi",), arr)
        coords["xi"] = ("xi", xis[0])
    if kind == "evolve":
        coords["time"] = ("time", np.asarray(t_save))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"compile_s": result["compile_s"], "worker": result["worker"]})
    return ds


def _spec(kind, params, opts, keep_n, factory) -> dict:
    return {
        "kind": kind,
        "parameters": {k: v.tolist() for k, v in params.items()},
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(opts.items())},
        "keep_n": bool(keep_n),
        "factory": factory_name(factory),
    }


def _spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class _Store:
    """``<output>.parts/``: manifest.json + one atomic netCDF file per finished chunk."""

    def __init__(self, output: str, spec: dict, overwrite: bool):
        self.output = output
        self.folder = output + ".parts"
        self.spec = spec
        self.digest = _spec_hash(spec)
        manifest = os.path.join(self.folder, "manifest.json")
        if overwrite and os.path.isdir(self.folder):
            shutil.rmtree(self.folder)
        if os.path.isdir(self.folder):
            try:
                with open(manifest) as fh:
                    old = json.load(fh)
            except (OSError, ValueError):
                old = None
            if old is None or old.get("digest") != self.digest:
                differ = (
                    "unreadable manifest"
                    if old is None
                    else ", ".join(
                        k
                        for k in spec
                        if old.get("spec", {}).get(k) != json.loads(json.dumps(spec))[k]
                    )
                )
                raise ParameterError(
                    f"sweep: {self.folder} holds the partial results of a different sweep "
                    f"(differs in: {differ}). Pass overwrite=True to discard them, or choose "
                    f"another output."
                )
        else:
            os.makedirs(self.folder)
            tmp = manifest + f".tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "w") as fh:
                json.dump({"digest": self.digest, "spec": spec}, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, manifest)

    def parts(self) -> list[str]:
        return sorted(
            os.path.join(self.folder, f)
            for f in os.listdir(self.folder)
            if f.startswith("part-") and f.endswith(".nc")
        )

    def done(self) -> set[int]:
        out: set[int] = set()
        for path in self.parts():
            with xr.open_dataset(path, engine="netcdf4") as ds:
                out.update(int(i) for i in ds.point.values)
        return out

    def write(self, part: xr.Dataset) -> str:
        first = int(part.point.values.min())
        name = f"part-{first:09d}-{uuid.uuid4().hex[:8]}.nc"
        return save(part, os.path.join(self.folder, name))


def _merge(parts: list[xr.Dataset], kind, params, t_save) -> xr.Dataset:
    """Chunk datasets -> arrays over the flat point index (first result of a point wins)."""
    n_points = int(np.prod([v.size for v in params.values()]))
    shape = tuple(v.size for v in params.values())
    seen = np.zeros(n_points, dtype=bool)
    out: dict = {}
    xi = None
    n_ok = True
    for part in parts:
        if "n" in part:
            if xi is None:
                xi = part.xi.values
            elif not (part.xi.shape == xi.shape and np.array_equal(part.xi.values, xi)):
                n_ok = False
    for part in parts:
        idx = part.point.values.astype(np.int64)
        fresh = ~seen[idx]
        seen[idx[fresh]] = True
        for name, da in part.data_vars.items():
            if name == "n" and not n_ok:
                continue
            if name not in out:
                trailing = da.shape[1:]
                if da.dtype == object or da.dtype.kind in "US":
                    arr = np.full((n_points,) + trailing, "", dtype=object)
                elif name == "status":
                    arr = np.full((n_points,) + trailing, "", dtype=object)
                elif da.dtype.kind in "iub":
                    arr = np.zeros((n_points,) + trailing, dtype=da.dtype)
                else:
                    arr = np.full((n_points,) + trailing, np.nan)
                out[name] = (da.dims[1:], arr)
            out[name][1][idx[fresh]] = da.values[fresh]
    dims = tuple(params)
    data = {}
    for name, (trailing_dims, arr) in out.items():
        data[name] = (dims + trailing_dims, arr.reshape(shape + arr.shape[1:]))
    if "status" in data:
        data["status"][1][~seen.reshape(shape)] = "missing"
    coords = {k: (k, v) for k, v in params.items()}
    if xi is not None and n_ok and "n" in data:
        coords["xi"] = ("xi", xi)
    if kind == "evolve":
        coords["time"] = ("time", np.asarray(t_save))
    ds = xr.Dataset(data, coords=coords)
    if "converged" in ds:
        ds["converged"] = ds.converged.astype(bool)
    return ds


# ---------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------


def _import_distributed():
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            "sweep on a cluster needs dask.distributed, which is not installed: "
            "pip install 'cavity-eliashberg[distributed]' (or 'dask[distributed]')."
        ) from err
    return distributed


def _dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _available_memory() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def default_chunk_size(
    n_pending: int, grid_n: int, workers: int, batch: str, n_save: int = 1
) -> int:
    """Points per chunk: >= 4 chunks per worker (load balance, streaming), at most 64,
    and, for ``batch="vmap"``, at most what fits in half the available memory
    (~64 N^2 float64 per point, plus the saved states)."""
    target = math.ceil(n_pending / (4 * max(1, workers)))
    cap = _MAX_CHUNK
    if batch == "vmap":
        per_point = _BYTES_PER_N2 * grid_n**2 + 8 * grid_n * n_save * 4
        cap = min(cap, max(1, int(0.5 * _available_memory() // per_point)))
    return int(max(1, min(target, cap)))


def sweep(
    model_factory: Callable[..., Model],
    parameters: Mapping[str, Sequence[float]],
    *,
    kind: str = "steady",
    options: Mapping | None = None,
    units: Mapping[str, str | tuple[str, str]] | None = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    batch: str = "auto",
    keep_n: bool = True,
    compilation_cache: str | os.PathLike | None = None,
    progress: bool = True,
    config: dict | None = None,
) -> xr.Dataset:
    """Solve a model over the outer product of parameter values; one dataset back.

    **Main arguments:**

    - `model_factory`: ``model_factory(**{name: value}) -> kinetics.Model``; each value is
      a Python float in the unit of its coordinate (see the module docstring; picklable
      for a cluster: a module-level function or a ``functools.partial`` of one).
    - `parameters`: name -> 1-D sequence of distinct finite values. The dataset has one
      dimension per name, in this order.
    - `kind`: "steady" (nonlinear steady state, as ``steady_state``), "evolve" (time
      evolution from the thermal state, as ``evolve``) or "perturbative" (as
      ``perturbative``).
    - `options`: solver settings, as the solver's keyword arguments. steady: `tol`
      (residual max|dn/dt| tau_in, 1e-11), `max_iter` (50), `start` ("perturbative"),
      `continuation_steps` (8), `t` (0.0 [hbar/(k_B T_c)]); evolve: `t_save` (required,
      [hbar/(k_B T_c)]), `solver` ("auto"), `rtol` (1e-8), `atol` (1e-12), `max_steps`;
      perturbative: `t`.
    - `units`: name -> unit string or (long_name, units) of a swept parameter; needed for
      names outside ``PARAMETER_UNITS`` (omega0, t_cav, eta, ... [k_B T_c], ...).

    **Where and how:**

    - `output`: netCDF path of the result. Chunks are written as they finish to
      ``<output>.parts/`` and a rerun resumes from them (no point computed twice); the
      merged file is written atomically at the end, and the folder removed. A rerun of a
      finished sweep returns the file. Without `output`, nothing is written.
    - `overwrite`: discard an existing result or partial results at `output`.
    - `scheduler`: address of a dask.distributed scheduler ("tcp://host:8786"); chunks
      become tasks and every worker compiles once.
    - `workers`: without `scheduler`: 1 runs in this process; k > 1 starts a
      ``distributed.LocalCluster`` of k single-threaded worker processes on loopback;
      None starts one (of cores // 2 workers) only with >= 4 cores and dask installed.
    - `chunk_size`: points per task (default: `default_chunk_size`).
    - `batch`: "vmap" (a group of points as one vectorized program), "loop" (the
      single-point program once per point) or "auto" ("loop" on CPU, "vmap" on GPU/TPU).
    - `keep_n`: store each point's occupation n(xi) (evolve: n(time, xi)).
    - `compilation_cache`: a folder for JAX's persistent compilation cache, used by this
      process and every worker (on a cluster: a path all nodes see). A process that
      finds a program there loads it instead of compiling it (steady state: ~20 s ->
      ~3 s of tracing), which helps workers that join late, reruns and resumed sweeps.
    - `progress`: a tqdm bar of finished points with the estimated time left.
    - `config`: the configuration that produced the sweep (stored as JSON).

    Returns a dataset with coordinates = the swept parameters (with units), results
    `gap` [k_B T_c], `relative_gap_change`, `delta0`, `n_qp`, `energy` (evolve: over
    `time` as well; perturbative adds `relative_gap_change_gl`), optionally `n`, and
    per-point statistics: `status` ("success", "failed": did not converge, "error":
    raised; "missing": a chunk was lost), `message`, `warnings`, `converged`, `residual`,
    `iterations`, `wall_time` [s], `sweep_run`. Attributes ``sweep.*`` give the totals
    (points computed in this run and resumed, compile time per worker, backend);
    ``model.*``/``baths.*`` are those of the first point.
    """
    # ---- checks, before any work ----
    if kind not in KINDS:
        raise ParameterError(f"sweep: kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    if batch not in BATCH_MODES:
        raise ParameterError(
            f"sweep: batch must be one of {', '.join(BATCH_MODES)}; got {batch!r}."
        )
    params = _check_parameters(parameters)
    names = tuple(params)
    _check_factory(model_factory, names)
    coord_units = _check_units(names, units)
    opts = _check_options(kind, options)
    if chunk_size is not None and (
        not isinstance(chunk_size, (int, np.integer))
        or isinstance(chunk_size, bool)
        or chunk_size < 1
    ):
        raise ParameterError(
            f"sweep: chunk_size must be a positive integer or None; got {chunk_size!r}."
        )
    if workers is not None and (
        not isinstance(workers, (int, np.integer)) or isinstance(workers, bool) or workers < 1
    ):
        raise ParameterError(f"sweep: workers must be a positive integer or None; got {workers!r}.")
    if scheduler is not None and not isinstance(scheduler, str):
        raise ParameterError(
            f"sweep: scheduler must be an address string such as 'tcp://10.0.0.1:8786'; got "
            f"{scheduler!r}."
        )
    if scheduler is not None and workers is not None:
        raise ParameterError(
            "sweep: pass either scheduler (an existing cluster) or workers, not both."
        )
    if output is not None:
        output = os.fspath(output)
        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):
            raise ParameterError(f"sweep: the folder of output, {folder}, does not exist.")
    if batch == "auto":
        batch = "loop" if jax.default_backend() == "cpu" else "vmap"
    use_cluster = scheduler is not None or (workers is not None and workers > 1)
    if workers is None and scheduler is None:
        use_cluster = (os.cpu_count() or 1) >= 4 and _dask_available()
        n_local = max(2, (os.cpu_count() or 1) // 2)
    else:
        n_local = workers or 1
    if use_cluster:
        _import_distributed()
        import cloudpickle

        try:
            cloudpickle.dumps(model_factory)
        except Exception as err:
            raise ParameterError(
                "sweep: model_factory must be picklable to run on a cluster (a module-level "
                f"function or functools.partial of one); pickling failed: {_describe(err)}."
            ) from None

    cache_dir = None if compilation_cache is None else os.path.abspath(os.fspath(compilation_cache))
    spec = _spec(kind, params, opts, keep_n, model_factory)
    t_save = opts.get("t_save")
    shape = tuple(v.size for v in params.values())
    n_points = int(np.prod(shape))
    grid_values = [dict(zip(names, vals, strict=True)) for vals in _outer(params)]

    # ---- what is already done ----
    store = None
    if output is not None:
        if os.path.exists(output) and not overwrite:
            old = load(output)
            if old.attrs.get("sweep.digest") == _spec_hash(spec):
                return old
            raise ParameterError(
                f"sweep: {output} exists and holds another sweep; pass overwrite=True or choose "
                "another output."
            )
        store = _Store(output, spec, overwrite)
    done = store.done() if store is not None else set()
    pending = [i for i in range(n_points) if i not in done]

    # a probe model for the chunk size and the attributes
    probe = _probe(model_factory, grid_values[pending[0] if pending else 0])
    grid_n = probe.grid.n if probe is not None else 400

    run_id = f"{_time.strftime('%Y%m%dT%H%M%S', _time.gmtime())}-{uuid.uuid4().hex[:6]}"
    clock = _time.perf_counter()
    compile_by_worker: dict[str, float] = {}
    parts_here: list[xr.Dataset] = []
    lost: list[str] = []

    def collect(result: dict):
        part = _part_dataset(result, kind, t_save)
        if store is not None:
            store.write(part)
        else:
            parts_here.append(part)
        w = result["worker"]
        compile_by_worker[w] = compile_by_worker.get(w, 0.0) + result["compile_s"]

    backend = "in-process"
    if pending:
        n_workers = 1
        cluster = client = None
        if use_cluster:
            distributed = _import_distributed()
            if scheduler is not None:
                client = distributed.Client(scheduler)
                backend = f"dask.distributed scheduler {scheduler}"
            else:
                cluster = distributed.LocalCluster(
                    n_workers=n_local,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
                client = distributed.Client(cluster)
                backend = f"dask.distributed LocalCluster ({n_local} workers)"
            n_workers = max(1, len(client.scheduler_info().get("workers", {})) or n_local)
        size = chunk_size or default_chunk_size(
            len(pending), grid_n, n_workers, batch, len(t_save) if t_save else 1
        )
        tasks = [
            _Task(
                kind=kind,
                factory=model_factory,
                names=names,
                points=tuple(
                    (i, tuple(grid_values[i][k] for k in names)) for i in pending[s : s + size]
                ),
                options=tuple(sorted(opts.items())),
                batch=batch,
                pad_to=size,
                keep_n=keep_n,
                run_id=run_id,
                compilation_cache=cache_dir,
            )
            for s in range(0, len(pending), size)
        ]
        from tqdm.auto import tqdm

        with tqdm(
            total=n_points,
            initial=len(done),
            unit="point",
            desc=f"sweep ({kind})",
            disable=not progress,
        ) as bar:
            try:
                if client is None:
                    for task in tasks:
                        try:
                            result = _run_chunk(task)
                        except Exception as err:  # a bug in one chunk must not sink the sweep
                            lost.append(_describe(err))
                            continue
                        collect(result)
                        bar.update(len(task.points))
                else:
                    futures = {client.submit(_run_chunk, t, pure=False): t for t in tasks}
                    for fut in distributed.as_completed(list(futures)):
                        try:
                            result = fut.result()
                        except Exception as err:
                            lost.append(_describe(err))
                            continue
                        collect(result)
                        bar.update(len(futures[fut].points))
                        fut.release()
            finally:
                if client is not None:
                    client.close()
                if cluster is not None:
                    cluster.close()
    wall = _time.perf_counter() - clock

    # ---- merge ----
    parts = [load(p) for p in store.parts()] if store is not None else parts_here
    ds = _merge(parts, kind, params, t_save)
    computed_here = int(sum(int(np.sum(p.sweep_run.values == run_id)) for p in parts))
    for name in ds.variables:
        if name in params:
            long_name, unit = coord_units[name]
        elif name in _COORDS:
            long_name, unit = _COORDS[name]
        else:
            long_name, unit = RESULT_VARIABLES.get(name, (name, "1"))
            if name == "iterations":
                long_name = _ITERATIONS[kind]
        ds[name].attrs.update(long_name=long_name, units=unit)
    attrs = {
        "title": f"cavity-eliashberg {kind} sweep over {', '.join(names)}",
        "kind": f"sweep:{kind}",
        "units": "hbar = k_B = 1; energies in k_B T_c, times in hbar/(k_B T_c)",
        "created": _time.strftime("%Y-%m-%dT%H:%M:%S+00:00", _time.gmtime()),
        "sweep.parameters": ", ".join(names),
        "sweep.factory": factory_name(model_factory),
        "sweep.points": n_points,
        "sweep.points_computed": computed_here,
        "sweep.points_resumed": len(done),
        "sweep.points_failed": int(np.sum(ds.status.values != "success")) if "status" in ds else 0,
        "sweep.chunks_lost": len(lost),
        "sweep.backend": backend,
        "sweep.batch": batch,
        "sweep.wall_time_s": wall,
        "sweep.compile_time_per_worker_s": json.dumps(compile_by_worker, sort_keys=True),
        "sweep.run_id": run_id,
        "sweep.digest": _spec_hash(spec),
        "sweep.note": "model.* and baths.* attributes are those of the first point",
    }
    for k, v in opts.items():
        attrs[f"solver.{k}"] = _attr_value(list(v) if isinstance(v, tuple) else v)
    if probe is not None:
        attrs.update(model_attributes(probe))
    for k, v in package_versions().items():
        attrs[f"version.{k}"] = v
    if config is not None:
        attrs["config"] = json.dumps(config, sort_keys=True, default=str)
    ds.attrs.update(attrs)
    missing = int(np.sum(ds.status.values == "missing")) if "status" in ds else n_points
    if lost or missing:
        warnings.warn(
            f"sweep: {missing} point(s) were not computed ({len(lost)} chunk(s) lost: "
            f"{'; '.join(lost[:3])}). "
            + (
                f"Rerun the same sweep to compute only them (partial results in {store.folder})."
                if store is not None
                else "Rerun with output=... to be able to resume."
            ),
            RuntimeWarning,
            stacklevel=2,
        )
        return ds
    if store is not None:
        save(ds, output, overwrite=True)
        shutil.rmtree(store.folder, ignore_errors=True)
    return ds


def _outer(params: dict[str, np.ndarray]):
    grids = np.meshgrid(*params.values(), indexing="ij")
    return list(zip(*(g.reshape(-1).tolist() for g in grids), strict=True))


def _probe(model_factory, values: dict) -> Model | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            m = model_factory(**values)
        except Exception:
            return None
    return m if isinstance(m, Model) else None


__all__ = ["sweep", "default_chunk_size", "factory_name", "PARAMETER_UNITS"]

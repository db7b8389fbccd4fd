"""What a worker does with one chunk of a sweep: build the models, group the points that
share a compiled program, run the solver cores, and return plain numpy results.

The cores are the solvers' own (``steady_start``/``steady_core`` and the continuation
fallback ``continue_steady``, ``evolve_core``, ``perturbative_core``): a sweep point and a
single-point call compute the same thing. Programs are compiled once per process and
problem structure (only float64 parameter values differ between the points of a group)
and kept in a bounded cache.
"""

from __future__ import annotations

import collections
import math
import os
import socket
import time as _time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from kinetics import Model, ParameterError

from ._bdf import interior_jumps, linear_solver_of
from ._dataset import state_variables
from ._evolve import choose_solver, evolve_core, result_reason
from ._occupations import physical_problem
from ._perturbative import check_perturbative, perturbative_core
from ._rhs import blas_single_thread
from ._steady import continue_steady, linear_kind, steady_core, steady_start

# (kind, options, structure, batch size) -> (compiled program, compile seconds); bounded,
# since every compiled XLA program holds memory mappings for the life of the process
_COMPILED: collections.OrderedDict = collections.OrderedDict()
_MAX_PROGRAMS = 32


def structure_key(model: Model):
    """What decides the compiled program of a model: everything but its array values."""
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


def _initial_state(model: Model, excess):
    """The thermal state with n scaled by (1 + excess), bosons at their reservoirs."""
    return model.join(model.thermal_state() * (1.0 + excess), model.boson_state())


def _core_fn(kind: str, options_key: tuple, warm: bool):
    """The solver core of one point as a function of the model (and, `warm`, of a start)."""
    o = dict(options_key)
    # the resolved linear solver of the group ("dense", "krylov", "krylov-jvp"; see
    # _linear_of): part of options_key, hence of the compiled program's cache key
    linear = o.get("linear_solver", "dense")
    if kind == "steady":
        if warm:
            return lambda m, y0: steady_core(m, y0, o["t"], o["tol"], o["max_iter"], linear)
        return lambda m: steady_core(
            m, steady_start(m, o["start"], o["t"], o["tol"], o["max_iter"], linear), o["t"],
            o["tol"], o["max_iter"], linear,
        )
    if kind == "evolve":
        ts = o["t_save"]

        def evolve_point(m):
            t1 = ts[-1] if len(ts) > 1 else ts[0]
            return evolve_core(
                m, _initial_state(m, o["n0_excess"]), ts[0], t1, jnp.asarray(ts), o["solver"],
                o["rtol"], o["atol"], o["max_steps"], None, jnp.asarray(o["jumps"]), False,
                linear,
            )

        return evolve_point
    return lambda m: perturbative_core(m, o["t"])


def _program(kind, options_key, static, dyn, size, y0=None):
    """The compiled program of a group, cached per process (size None: one point, else a
    vmap over `size` stacked points); returns (program, compile seconds)."""
    one = dyn if size is None else jax.tree.map(lambda x: x[0], dyn)
    warm = y0 is not None
    key = (kind, options_key, structure_key(eqx.combine(one, static)), size, warm)
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        return _COMPILED[key][0], 0.0
    core = _core_fn(kind, options_key, warm)
    if warm:
        fn = jax.jit(lambda d, y: core(eqx.combine(d, static), y))
        args = (dyn, y0)
    else:
        one_point = lambda d: core(eqx.combine(d, static))  # noqa: E731
        fn = jax.jit(one_point if size is None else jax.vmap(one_point))
        args = (dyn,)
    clock = _time.perf_counter()
    compiled = fn.lower(*args).compile()
    seconds = _time.perf_counter() - clock
    _COMPILED[key] = (compiled, seconds)
    while len(_COMPILED) > _MAX_PROGRAMS:
        _COMPILED.popitem(last=False)
    return compiled, seconds


@dataclass(frozen=True)
class Task:
    """One chunk of work, picklable (it travels to dask workers)."""

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
    # continuation: for each point, the position in `points` of the point it starts from
    # (-1: its own start); the points come in order along each line
    previous: tuple | None = None


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
    values: dict = field(default_factory=dict)  # name -> (dims, array)
    coords: dict = field(default_factory=dict)  # name -> (dim, array)
    model: Model | None = None
    y: np.ndarray | None = None  # the final state (continuation starts from it)
    gave_up: bool = False  # evolve: the Krylov BDF's GMRES failed too often (rerun dense)


def describe_error(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _build_model(task: Task, index, values) -> _Point:
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
            if task.kind == "perturbative":
                check_perturbative(model)
            p.model = model
        except Exception as err:  # a failing point is recorded, never raised
            args = ", ".join(f"{k}={v:g}" for k, v in kwargs.items())
            p.message = f"model_factory({args}) raised {describe_error(err)}"
    p.warnings = " | ".join(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))
    return p


def _finish(kind, opts, p: _Point, out: dict):
    """Fill a point's results from its core's outputs (numpy, one point)."""
    model = p.model
    y = np.asarray(out["y"], dtype=np.float64)
    p.y = y
    data, coords = state_variables(model, y, out["gap"], time=kind == "evolve")
    del data["quasiparticle_energy"]
    if kind == "perturbative":
        for name in ("relative_gap_change_gl", "delta_n_first_order"):
            v = np.asarray(out[name], dtype=np.float64)
            data[name] = (("xi",) if v.ndim else (), v)
    p.values, p.coords = data, coords
    if kind == "steady":
        p.residual = float(out["residual"])
        p.iterations = int(out["iterations"])
        p.converged = bool(p.residual <= opts["tol"])
        problem = physical_problem(model, y) if p.converged else ""
        if problem:
            p.converged, p.message = False, f"steady_state: {problem}"
        p.status = "success" if p.converged else "failed"
    elif kind == "evolve":
        reason, message = result_reason(int(out["result"]))
        if not reason:
            rows = y[np.all(np.isfinite(y), axis=-1)]
            problem = physical_problem(model, rows, opts["atol"], opts["rtol"])
            if problem:
                reason, message = "unphysical", problem
        p.iterations = int(out["stats"]["num_steps"])
        p.gave_up = bool(int(out["stats"].get("gmres_gave_up", 0)))
        p.converged = not reason
        p.status = "success" if p.converged else "failed"
        if not p.converged:
            p.message = (
                f"evolve stopped: {message} (solver {opts['solver']}, rtol {opts['rtol']:g}). "
                "Try larger max_steps, looser tolerances, a finer grid or another solver."
            )
    else:
        p.converged = True
        p.status = "success"


def _linear_of(opts, model: Model) -> tuple:
    """The resolved linear solver of a point as options ((("linear_solver", kind),) or ()
    for the dense LU, so that dense programs keep their cache keys): steady points by
    ``linear_kind``, evolve points by ``linear_solver_of`` (after the solver choice)."""
    asked = opts.get("linear_solver", "dense")
    if asked == "dense":
        return ()
    if "t_save" in opts:  # evolve: opts["solver"] is already resolved here
        kind = linear_solver_of(model, opts["solver"], asked)
    else:
        kind = linear_kind(model, asked)
    return () if kind == "dense" else (("linear_solver", kind),)


def _steady_fallback(opts, p: _Point):
    """A point the first Newton stage left unconverged: the continuation fallback that
    single points use too (``continue_steady``), on the dense path (a point whose Krylov
    Newton failed is redone with the LU, as ``solve_steady`` does first)."""
    if opts["continuation_steps"] == 0:
        p.message = (
            f"steady_state did not converge: residual {p.residual:.3g} > tol {opts['tol']:g} after "
            f"{p.iterations} iterations (newton, 1 stage(s))."
        )
        return
    clock = _time.perf_counter()
    t, tol = opts["t"], opts["tol"]
    try:
        out = continue_steady(p.model, t, tol, opts["max_iter"], opts["continuation_steps"],
                              "dense")
    except Exception as err:
        p.message = describe_error(err)
        return
    first_iterations = p.iterations
    _finish("steady", opts, p, jax.device_get(out))
    p.message = "" if p.converged else (
        f"steady_state did not converge: residual {p.residual:.3g} > tol {opts['tol']:g} "
        f"(newton with {opts['continuation_steps']} continuation stages)."
    )
    p.iterations += first_iterations
    p.wall_time = (p.wall_time if math.isfinite(p.wall_time) else 0.0) + (
        _time.perf_counter() - clock
    )


def _run_point(task: Task, opts, options_key, p: _Point, static, dyn, y0=None) -> float:
    program, seconds = _program(task.kind, options_key, static, dyn, None, y0)
    clock = _time.perf_counter()
    out = jax.device_get(program(dyn) if y0 is None else program(dyn, y0))
    p.wall_time = _time.perf_counter() - clock
    _finish(task.kind, opts, p, out)
    return seconds


def _solve_group(task: Task, opts, options_key, group: list[_Point], starts=None) -> float:
    """Solve points of one structure with one compiled program; returns compile seconds.

    `starts`: per point, a state to start from (continuation) or None."""
    parts = [eqx.partition(p.model, eqx.is_array) for p in group]
    static = parts[0][1]
    if task.batch == "vmap" and starts is None:
        size = max(task.pad_to, len(group))
        dyns = [d for d, _ in parts] + [parts[-1][0]] * (size - len(group))
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *dyns)
        program, compile_s = _program(task.kind, options_key, static, stacked, size)
        clock = _time.perf_counter()
        out = jax.device_get(program(stacked))
        share = (_time.perf_counter() - clock) / len(group)
        for k, p in enumerate(group):
            p.wall_time = share
            _finish(task.kind, opts, p, jax.tree.map(lambda v, k=k: v[k], out))
        return compile_s
    compile_s = 0.0
    for k, (p, (dyn, _)) in enumerate(zip(group, parts, strict=True)):
        y0 = None if starts is None else starts[k]
        compile_s += _run_point(task, opts, options_key, p, static, dyn, y0)
    return compile_s


def _evolve_extra(p: _Point, opts) -> tuple:
    """The static settings of an evolve point: its solver choice and its jump times."""
    ts = opts["t_save"]
    name = opts["solver"]
    if name == "auto":
        y0 = _initial_state(p.model, opts["n0_excess"])
        name = choose_solver(p.model, y0, ts[-1] - ts[0], ts[0])
    jumps = interior_jumps(p.model.jump_times(), ts[0], ts[-1])
    return (("solver", name), ("jumps", jumps))


def _run_continuation(task: Task, opts, points: list[_Point]) -> float:
    """Points in order along their lines, each started from its predecessor's state."""
    compile_s = 0.0
    base = {k: v for k, v in opts.items() if k != "linear_solver"}
    for k, p in enumerate(points):
        if p.model is None:
            continue
        try:
            o = dict(base, **dict(_linear_of(opts, p.model)))
        except Exception as err:
            p.status, p.message = "error", describe_error(err)
            continue
        options_key = tuple(sorted(o.items()))
        prev = points[task.previous[k]] if task.previous[k] >= 0 else None
        start = None
        if prev is not None and prev.status == "success" and prev.y is not None:
            if prev.y.shape == (p.model.state_size,):
                start = jnp.asarray(prev.y)
        try:
            start_s = 0.0
            if start is None and not p.model.dynamic:
                # a line's first point: its cold start, then the warm program the other
                # points use (one Newton program per structure instead of two: compiling
                # one is most of a short sweep's time)
                clock = _time.perf_counter()
                start, seconds = _cold_start(o, options_key, p.model)
                compile_s += seconds
                start_s = _time.perf_counter() - clock - seconds
            compile_s += _solve_group(task, o, options_key, [p],
                                      None if start is None else [start])
            p.wall_time += start_s
        except Exception as err:
            p.status, p.message = "error", f"solver raised {describe_error(err)}"
        if p.status == "failed":
            _steady_fallback(o, p)
    return compile_s


def _cold_start(opts, options_key, model: Model):
    """`steady_start` of a static model as its own (small, cached) program: the thermal
    state, or n_F + tau_in I[n_F] for start "perturbative"; returns (state, compile s)."""
    dyn, static = eqx.partition(model, eqx.is_array)
    key = ("start", options_key, structure_key(model))
    seconds = 0.0
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        program = _COMPILED[key][0]
    else:
        o = dict(options_key)
        fn = jax.jit(lambda d: steady_start(eqx.combine(d, static), o["start"], o["t"],
                                            o["tol"], o["max_iter"],
                                            o.get("linear_solver", "dense")))
        clock = _time.perf_counter()
        program = fn.lower(dyn).compile()
        seconds = _time.perf_counter() - clock
        _COMPILED[key] = (program, seconds)
        while len(_COMPILED) > _MAX_PROGRAMS:
            _COMPILED.popitem(last=False)
    return program(dyn), seconds


def run_chunk(task: Task) -> dict:
    """Solve the points of one chunk; returns plain numpy results (picklable)."""
    if task.compilation_cache is not None:
        use_compilation_cache(task.compilation_cache)
    opts = dict(task.options)
    points = [_build_model(task, i, v) for i, v in task.points]
    compile_s = 0.0
    # XLA's CPU LU calls OpenBLAS: one thread for the whole chunk (see _rhs), entered once
    # per chunk rather than per point
    with warnings.catch_warnings(), blas_single_thread():
        warnings.simplefilter("ignore")
        if task.previous is not None:
            compile_s = _run_continuation(task, opts, points)
        else:
            compile_s = _run_groups(task, opts, points)
    results = []
    for p in points:
        keep = {
            k: v for k, v in p.values.items()
            if task.keep_n or not ({"xi", "omega"} & set(v[0]))
        }
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
                "coords": p.coords,
            }
        )
    out = {
        "points": results,
        "compile_s": compile_s,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "run_id": task.run_id,
    }
    if task.kind == "evolve":
        out["time"] = np.asarray(opts["t_save"])
    return out


def _run_groups(task: Task, opts, points: list[_Point]) -> float:
    groups: dict = {}
    base = {k: v for k, v in opts.items() if k != "linear_solver"}
    for p in points:
        if p.model is None:
            continue
        extra = ()
        try:
            if task.kind == "evolve":
                extra = _evolve_extra(p, opts)
            if task.kind != "perturbative":
                extra = extra + _linear_of({**opts, **dict(extra)}, p.model)
        except Exception as err:
            p.message = describe_error(err)
            continue
        groups.setdefault((structure_key(p.model), extra), []).append(p)
    compile_s = 0.0
    for (_, extra), group in groups.items():
        o = dict(base)
        o.update(extra)
        options_key = tuple(sorted(o.items()))
        try:
            compile_s += _solve_group(task, o, options_key, group)
        except Exception:
            # one bad point must not sink its group: solve them one by one
            for p in group:
                try:
                    compile_s += _solve_group(_one_by_one(task), o, options_key, [p])
                except Exception as err:
                    p.status, p.message = "error", f"solver raised {describe_error(err)}"
        if task.kind == "steady":
            for p in group:
                if p.status == "failed":
                    _steady_fallback(o, p)
        elif task.kind == "evolve" and "linear_solver" in o:
            # GMRES failed too often (the Krylov BDF stopped): that point again with the
            # LU, as evolve redoes such a segment
            dense = {k: v for k, v in o.items() if k != "linear_solver"}
            for p in group:
                if p.gave_up:
                    first = p.wall_time if math.isfinite(p.wall_time) else 0.0
                    try:
                        compile_s += _solve_group(_one_by_one(task), dense,
                                                  tuple(sorted(dense.items())), [p])
                    except Exception as err:
                        p.status, p.message = "error", f"solver raised {describe_error(err)}"
                    p.wall_time = first + (p.wall_time if math.isfinite(p.wall_time) else 0.0)
    return compile_s


def _one_by_one(task: Task) -> Task:
    return Task(**{**task.__dict__, "batch": "loop"})


def use_compilation_cache(folder: str) -> None:
    """Point JAX's persistent compilation cache of this process at `folder` (once)."""
    if jax.config.jax_compilation_cache_dir == folder:
        return
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", folder)
    # our programs take seconds to compile; cache every one of them
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    compilation_cache.reset_cache()  # an earlier compile may have fixed the old setting

"""Time evolution of the kinetic equation with a self-consistent gap.

``evolve_core`` is the traceable core (one integration between save points, diffrax or
the project's BDF, with the gap of every saved state and a result code); single points
(``evolve``, in checkpointed segments) and sweeps (``solvers.sweep``) both call it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time as _time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from kinetics import Model, ParameterError

from ._bdf import bdf_krylov_options, bdf_solve, interior_jumps, linear_solver_of
from ._dataset import build_dataset, load, model_attributes, save
from ._errors import Interrupted, SolverError
from ._occupations import _curvature, from_z, scale, to_z, z_jacobian, z_rhs
from ._options import EVOLVE
from ._resources import check_resources
from ._rhs import blas_single_thread, vector_field, z_vector_field

DIFFRAX_SOLVERS = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "kvaerno3": diffrax.Kvaerno3,
    "kvaerno4": diffrax.Kvaerno4,
    "kvaerno5": diffrax.Kvaerno5,
}
# The implicit solvers integrate the log-odds of the occupations (``_occupations``): n
# stays in (0, 1) and tiny occupations keep their relative accuracy. The explicit ones
# integrate n itself: in z a tiny occupation filled from outside grows like ln(rate t),
# a stiff mode (eigenvalue -dz/dt) that explicit steps would have to resolve (measured:
# the paper's corner at eta tau_in = 0.3 did not finish in 10 min instead of seconds).
# Explicit solvers are for T_qp near T_c, where occupations are far from 0 (``_diagnose``
# stops any run whose n leaves [0, 1]).
EXPLICIT = frozenset({"tsit5", "dopri5", "dopri8"})
# every solver evolve offers; "bdf" is solvers._bdf (Jacobian and LU kept across steps)
SOLVERS = {**DIFFRAX_SOLVERS, "bdf": bdf_solve}
# explicit steps are limited to |lambda| dt < ~3, so Tsit5's cost grows like |lambda| T
# while bdf's (~200 steps, ~20 LUs at rtol 1e-8) barely does. Measured on regime (a) at
# N = 500 with the span stretched (README: solver choice): |lambda| T = 45 / 135 / 450 /
# 1351: tsit5 0.71 / 0.88 / 1.14 / 4.24 s, bdf 0.85 / 1.32 / 1.51 / 1.58 s
_STIFFNESS_THRESHOLD = 1000.0


def gershgorin(model: Model, n, t):
    """Gershgorin bound of the largest |eigenvalue| of the Jacobian at n (traceable)."""
    return jnp.max(jnp.sum(jnp.abs(model.jacobian(t, n)), axis=1))


_gershgorin = eqx.filter_jit(gershgorin)


def stiffness_estimate(model: Model, n, t=0.0) -> float:
    """Largest |eigenvalue| of the Jacobian at n [k_B T_c / hbar] (Gershgorin bound)."""
    return float(_gershgorin(model, jnp.asarray(n), t))


# below this T_qp the occupations near the gap edge (n ~ e^{-Delta/T} < 1e-3) are within
# reach of an explicit step's rounding and error: "auto" integrates the log-odds (bdf)
_LOW_TEMPERATURE = 0.3


def choose_solver(model: Model, n0, t_span: float, t0: float = 0.0) -> str:
    """'tsit5' when |lambda|_max * t_span is small enough for explicit steps and T_qp is
    not low (>= 0.3 T_c), else 'bdf'."""
    if float(model.t_qp) < _LOW_TEMPERATURE:
        return "bdf"
    stiff = stiffness_estimate(model, n0, t0) * t_span
    return "tsit5" if stiff < _STIFFNESS_THRESHOLD else "bdf"


def initial_state(model: Model, n0):
    """Check and convert a user's initial state: (y0, time it was saved at or None,
    whether the dynamic baths' occupations were given).

    `n0`: None (the thermal state), n (shape (grid.n,)), the full state y (shape
    (state_size,)), or a dataset of an earlier run (its last state). Rounding-level
    negatives (a Newton iterate: |n| below 1e-12) are clipped to 0.
    """
    if n0 is None:
        return model.initial_state(), None, True
    bosons = None
    t_start = None
    if isinstance(n0, xr.Dataset):
        ds = n0
        n = ds["n"].values
        if "time" in ds["n"].dims:
            t_start = float(ds["time"].values[-1])
        if n.ndim == 2:
            n = n[-1]
        if "boson_occupation" in ds and model.dynamic:
            b = ds["boson_occupation"].values
            bosons = b[-1] if b.ndim == 2 else b
        n0 = n
    n0 = np.asarray(n0, dtype=np.float64)
    size = model.state_size
    if n0.shape == (size,):
        n0, bosons = n0[: model.grid.n], n0[model.grid.n :]
    elif n0.shape != (model.grid.n,):
        extra = (
            f" or ({size},) (n followed by the dynamic baths' N_b)" if size != model.grid.n else ""
        )
        raise ParameterError(
            f"n0 must have shape ({model.grid.n},) (one value per grid point){extra}; "
            f"got {n0.shape}."
        )
    if not np.all(np.isfinite(n0)) or np.any(n0 < -1e-12) or np.any(n0 > 1):
        raise ParameterError("n0 must be finite and within [0, 1].")
    n0 = np.maximum(n0, 0.0)
    if not model.dynamic:
        return jnp.asarray(n0), t_start, True
    given = bosons is not None
    if bosons is None:
        bosons = np.concatenate([np.asarray(b) for b in model.boson_state()])
    bosons = np.asarray(bosons, dtype=np.float64)
    if (bosons.shape != (size - model.grid.n,) or not np.all(np.isfinite(bosons))
            or np.any(bosons < -1e-12)):
        raise ParameterError(
            f"the boson occupations of n0 must be finite, >= 0 and of shape "
            f"({size - model.grid.n},); got shape {bosons.shape}, minimum {np.min(bosons):g}."
        )
    bosons = np.maximum(bosons, 0.0)  # rounding-level negatives (a Newton iterate)
    return jnp.concatenate([jnp.asarray(n0), jnp.asarray(bosons)]), t_start, given


def evolve(
    model: Model,
    t_save,
    *,
    n0=None,
    solver: str = EVOLVE["solver"],
    rtol: float = EVOLVE["rtol"],
    atol: float = EVOLVE["atol"],
    max_steps: int = EVOLVE["max_steps"],
    dt0: float | None = None,
    progress: bool = True,
    throw: bool = True,
    config: dict | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    max_memory_gb: float | None = None,
    linear_solver: str = "auto",
) -> xr.Dataset:
    """Integrate d n / d t (paper eq. (6)) from ``t_save[0]`` and save at ``t_save``.

    **Main arguments:**

    - `model`: the physical situation.
    - `t_save`: increasing save times [hbar/(k_B T_c)]; integration starts at t_save[0].

    **Other arguments:**

    - `n0`: initial occupations (shape (grid.n,)), or a dataset of an earlier run
      (its last state); default: thermal at T_qp with the equilibrium gap. With
      dynamic baths also the full state (shape (model.state_size,)); given n only,
      the bosons start at their reservoir occupation.
    - `solver`: "auto" (explicit Tsit5 unless the stiffness estimate |lambda| T is
      large, then "bdf"), or one of "tsit5", "dopri5", "dopri8", "kvaerno3/4/5"
      (diffrax) or "bdf" (variable-order BDF that keeps its Jacobian and LU across
      steps, ``solvers._bdf``). Implicit solvers use the structured O(N^2) Jacobian.
    - `rtol`, `atol`: tolerances of the PID step-size controller.
    - `max_steps`: bound on the number of steps.
    - `progress`: show a tqdm progress bar of simulated time (on by default).
    - `throw`: raise `SolverError` on failure (its ``partial`` attribute holds the
      dataset up to the failure); with False, return that dataset, marked
      ``solver.status != "success"``.
    - `checkpoint`: a netCDF path. The integration runs in segments of
      `checkpoint_every` save intervals (default: a tenth of the run); after each the
      state so far is written there atomically, and SIGINT/SIGTERM stop the run after
      the current segment (raising `Interrupted`, a `SolverError`, with the partial
      dataset). If the file exists and belongs to the same run (model, save times,
      initial state, solver), the run continues from it; on success it is removed.
    - `max_memory_gb`: refuse (``ResourceError``, before any work) a run whose estimated
      memory exceeds this (default: 80 % of the memory available now).
    - `linear_solver`: the BDF's Newton systems (solver "bdf"): "dense" (LU), "krylov"
      (Jacobi-scaled GMRES with the stored Jacobian; a segment whose GMRES fails too
      often is redone with the LU, ``solver.dense_rerun``) or "auto" (as
      ``steady_state``: "krylov" from ``KRYLOV["bdf_auto_size"]`` state variables on).

    Failures (step-size collapse, max_steps, a non-finite state, n leaving [0, 1])
    stop the run with the time, the cause and a hint. A gap reaching zero is not one:
    the film goes normal and may recover (docs/physics.md, "Through the normal state").

    Returns a dataset over (time, xi) with n, delta_n, gap, relative_gap_change,
    n_qp, energy, and the intervals in which the film was normal (``went_normal_at``,
    ``recovered_at`` over ``normal_interval``; see ``normal_intervals``). Parameter
    jumps of time-dependent baths are passed to the step-size controller so that steps
    stop exactly there.
    """
    t_save = np.asarray(t_save, dtype=np.float64).reshape(-1)
    if t_save.size < 1 or not np.all(np.isfinite(t_save)) or np.any(np.diff(t_save) <= 0):
        raise ParameterError("evolve: t_save must be finite and strictly increasing.")
    if solver != "auto" and solver not in SOLVERS:
        raise ParameterError(
            f"evolve: solver must be 'auto' or one of {sorted(SOLVERS)}; got {solver!r}."
        )
    for name, v in (("rtol", rtol), ("atol", atol)):
        if not (np.isfinite(v) and v > 0):
            raise ParameterError(f"evolve: {name} must be > 0; got {v!r}.")
    if not (isinstance(max_steps, int) and max_steps > 0):
        raise ParameterError(f"evolve: max_steps must be a positive integer; got {max_steps!r}.")
    if checkpoint_every is not None and not (
        isinstance(checkpoint_every, int) and checkpoint_every >= 1
    ):
        raise ParameterError(
            f"evolve: checkpoint_every must be a positive integer (save points per segment); "
            f"got {checkpoint_every!r}."
        )
    y0, t_prev, _ = initial_state(model, n0)
    t0 = float(t_save[0])
    t1 = float(t_save[-1]) if t_save.size > 1 else t0
    check_resources(model, "evolve", solver, max_memory_gb=max_memory_gb, what="evolve",
                    linear_solver=linear_solver)
    name = choose_solver(model, y0, t1 - t0, t0) if solver == "auto" else solver
    settings = {"name": name, "rtol": rtol, "atol": atol, "max_steps": max_steps}
    linear = linear_solver_of(model, name, linear_solver)
    if linear != "dense":
        settings["linear_solver"] = linear
    fingerprint = _fingerprint(model, t_save, y0, settings)

    # save-point index ranges [a, b] integrated in one compiled call each; with a
    # checkpoint the state is written after each and a signal stops between them
    size = t_save.size
    every = checkpoint_every or (max(1, (size - 1) // 10) if checkpoint is not None else size)
    edges = list(range(0, size - 1, every)) + [size - 1]
    if size == 1:
        edges = [0, 0]
    ys = np.full((size, y0.shape[0]), np.nan)
    ys[0] = np.asarray(y0)
    gaps = np.full(size, np.nan)
    gaps[0] = float(model.gap(y0))
    done_to, stats, wall = 0, {}, 0.0
    if checkpoint is not None and os.path.exists(checkpoint):
        ys, gaps, done_to, stats, wall = _read_checkpoint(checkpoint, fingerprint, ys, gaps)
    ok, message, reason = True, "success", ""
    from tqdm import tqdm

    bar = tqdm(total=size - 1, initial=done_to, unit="save", desc="evolve",
               disable=not progress or checkpoint is None)
    with _StopOnSignal(enabled=checkpoint is not None) as stop, bar, blas_single_thread():
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            if b <= done_to:
                continue
            a = max(a, done_to)
            start = _time.perf_counter()
            seg = t_save[a : b + 1]
            # an array, not a tuple of floats: new jump times (a swept t_on) must not
            # recompile the integrator; only their number is part of the program
            jumps = jnp.asarray(interior_jumps(model.jump_times(), seg[0], seg[-1]), jnp.float64)
            args = (model, jnp.asarray(ys[a]), jnp.asarray(seg[0]), jnp.asarray(seg[-1]),
                    jnp.asarray(seg), name, rtol, atol, max_steps, dt0, jumps,
                    progress and checkpoint is None)
            out = _core_jit(*args, linear)
            if linear != "dense" and int(out["stats"].get("gmres_gave_up", 0)):
                # GMRES failed too often (solvers._bdf): this segment again with the LU
                # (the Krylov attempt's GMRES counts are kept, its steps are not)
                for k in ("gmres_solves", "gmres_iterations", "gmres_failures"):
                    stats[k] = stats.get(k, 0) + int(out["stats"][k])
                stats["dense_rerun"] = stats.get("dense_rerun", 0) + 1
                out = _core_jit(*args, "dense")
            wall += _time.perf_counter() - start
            for k, v in out["stats"].items():
                stats[k] = stats.get(k, 0) + int(v)
            rows = np.asarray(out["y"])
            ys[a : b + 1] = rows
            gaps[a : b + 1] = np.asarray(out["gap"])
            reason, message = result_reason(int(out["result"]))
            ok = not reason
            if ok:
                reason, message = _diagnose(model, rows, seg, atol, rtol)
                ok = not reason
            finite = np.all(np.isfinite(rows), axis=1)
            done_to = a + int(np.argmin(finite)) - 1 if not finite.all() else b
            if not ok:
                break
            bar.update(b - a)
            if checkpoint is not None:
                _write_checkpoint(checkpoint, model, ys, gaps, t_save, done_to, fingerprint,
                                  settings, stats, wall, config)
            if stop.signal is not None and b < size - 1:
                ds = _dataset(model, ys, gaps, t_save, settings, "interrupted",
                              f"stopped by {stop.signal}", stats, wall, t_prev, config)
                raise Interrupted(
                    f"evolve: stopped by {stop.signal} at t = {t_save[b]:g}; the state is saved in "
                    f"{checkpoint}. Run the same call (or `cavity-eliashberg resume {checkpoint}`) "
                    "to continue from there.",
                    partial=ds, signal_name=stop.signal,
                )
    ds = _dataset(model, ys, gaps, t_save, settings, "success" if ok else "failed",
                  message if not ok else "success", stats, wall, t_prev, config)
    if ok and checkpoint is not None and os.path.exists(checkpoint):
        os.remove(checkpoint)  # the run is complete: the result replaces the checkpoint
    if not ok:
        last = t_save[: done_to + 1][-1]
        msg = (
            f"evolve stopped: {message} (solver {name}, rtol {rtol:g}); states up to "
            f"t = {last:g} are in the partial result. Try larger max_steps, looser "
            f"tolerances, a finer grid or another solver (e.g. 'bdf' for stiff problems)."
        )
        if throw:
            raise SolverError(msg, partial=ds, reason=reason)
    return ds


class _StopOnSignal:
    """Turn SIGINT/SIGTERM into a flag checked between segments (main thread only)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signal = None
        self._old = {}

    def _handler(self, signum, frame):
        self.signal = signal.Signals(signum).name

    def __enter__(self):
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def result_reason(code: int) -> tuple[str, str]:
    """A diffrax ``RESULTS`` code -> (``SolverError.reason``, message); ("", "") on success."""
    if code == diffrax.RESULTS.successful._value:
        return "", ""
    message = diffrax.RESULTS._index_to_message[code]
    if code == diffrax.RESULTS.max_steps_reached._value:
        return "max_steps", message
    if code == diffrax.RESULTS.dt_min_reached._value:
        return "step_size", message
    return "failed", message


def _diagnose(model: Model, rows, times, atol: float = 0.0,
              rtol: float = 0.0) -> tuple[str, str]:
    """A physical failure in integrated states, as (reason, message); ("", "") if none:
    non-finite, n outside [0, 1] by more than the accuracy asked for (atol + rtol max n of
    the state; the implicit solvers cannot leave [0, 1], an explicit step can). A gap
    reaching zero is not a failure: ``normal_intervals`` records it."""
    n = rows[:, : model.grid.n]
    finite = np.all(np.isfinite(rows), axis=1)
    if not finite.all():
        k = int(np.argmin(finite))
        return "nonfinite", f"a non-finite value in the state at t = {times[k]:g}"
    slack = atol + rtol * np.max(np.abs(n), axis=1, keepdims=True)
    bad = np.any((n < -slack) | (n > 1.0 + slack), axis=1)
    if bad.any():
        k = int(np.argmax(bad))
        return "left_unit_interval", (
            f"n left [0, 1] at t = {times[k]:g} (min {n[k].min():.3g}, max {n[k].max():.3g}): "
            "the step is too large for the coupling; tighten rtol/atol or use 'bdf'"
        )
    return "", ""


def _dataset(model, ys, gaps, t_save, settings, status, message, stats, wall, t_prev, config):
    done = np.all(np.isfinite(ys), axis=1)
    info = {
        **settings,
        "status": status,
        "message": message,
        "wall_time_s": wall,
        "saved_points_completed": int(done.sum()),
        **stats,
    }
    if t_prev is not None:
        info["restarted_from_time"] = t_prev
    gaps = np.where(done, gaps, np.nan)
    ds = build_dataset(model, ys, gaps, kind="evolve", time=t_save, solver=info, config=config)
    return _with_normal_intervals(ds, t_save, gaps)


# A gap below this [k_B T_c] counts as zero (the film normal). On the grid the node at
# xi = 0 stands for the Cooper logarithm: a distribution with n_0 = 1/2 - eps keeps a root
# Delta ~ 2 w_0 eps / |H| linear in eps, where the continuum's is ~exp(-1/eps), i.e. 0.
# A thermal normal state has eps ~ 1e-16 (roots ~1e-11, docs/physics.md "Through the
# normal state"); a driven one cooling back through the transition keeps roots of
# 1e-5 - 5e-5 for tens of ns (runs/pump_probe.toml, quick grid), then the gap opens within
# two saves to 4e-4 and 0.1. 1e-3 k_B T_c (6e-4 Delta(0), ~0.1 ueV in aluminium) is above those
# artefacts and below any gap a measurement resolves; on a thermal ramp through T_c the
# BCS gap passes from 1e-3 to 0 within 1e-7 of T_c.
NORMAL_GAP = 1e-3


def normal_intervals(times, gaps, threshold: float = NORMAL_GAP):
    """Intervals in which the film was normal (gap <= `threshold` [k_B T_c]) in a saved
    gap series: arrays (went_normal_at, recovered_at) [hbar/(k_B T_c)], NaN where the
    record does not show the crossing (normal from the first save, or still normal at
    the last). A crossing between two saves is placed where Delta^2, close to linear in
    time near a transition (Delta^2 ~ the distance to it), extrapolated from the two saves
    on the superconducting side, reaches zero (kept between the two saves that bracket
    it; with one superconducting save there, linear interpolation of Delta^2)."""
    times = np.asarray(times, dtype=np.float64)
    gaps = np.asarray(gaps, dtype=np.float64)
    ok = np.isfinite(gaps)
    times, gaps = times[ok], gaps[ok]
    normal = gaps <= threshold
    if not normal.any():
        return np.zeros(0), np.zeros(0)

    sq = gaps**2

    def crossing(k):  # between saves k and k + 1, where `normal` changes
        # s: the superconducting save beside the crossing, s2 the next one away from it
        s, s2 = (k, k - 1) if normal[k + 1] else (k + 1, k + 2)
        if 0 <= s2 < sq.size and not normal[s2] and sq[s2] != sq[s]:
            slope = (sq[s] - sq[s2]) / (times[s] - times[s2])
            t = times[s] - sq[s] / slope
        else:
            x = sq[k] / (sq[k] - sq[k + 1]) if sq[k] != sq[k + 1] else 0.5
            t = times[k] + x * (times[k + 1] - times[k])
        return float(np.clip(t, times[k], times[k + 1]))

    change = np.flatnonzero(np.diff(normal.astype(np.int8)))
    starts = [np.nan] if normal[0] else []
    ends = []
    for k in change:
        (starts if normal[k + 1] else ends).append(crossing(k))
    if normal[-1]:
        ends.append(np.nan)
    return np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)


def _with_normal_intervals(ds, times, gaps):
    went, back = normal_intervals(times, gaps)
    doc = "crossing times interpolated in Delta^2 between saves; NaN: not seen in the record"
    ds["went_normal_at"] = ("normal_interval", went, {
        "units": "hbar/(k_B T_c)",
        "long_name": "time at which the gap fell to zero (the film went normal)",
        "description": f"gap <= {NORMAL_GAP:g} k_B T_c counts as zero; {doc}",
    })
    ds["recovered_at"] = ("normal_interval", back, {
        "units": "hbar/(k_B T_c)",
        "long_name": "time at which the gap came back (the film recovered)",
        "description": doc,
    })
    return ds


def _fingerprint(model, t_save, y0, settings) -> str:
    """What a checkpoint must match to be continued: model, save times, start, solver."""
    h = hashlib.sha256()
    h.update(json.dumps(model_attributes(model), sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(t_save).tobytes())
    h.update(np.ascontiguousarray(np.asarray(y0)).tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def _write_checkpoint(path, model, ys, gaps, t_save, done_to, fingerprint, settings, stats, wall,
                      config):
    ds = _dataset(model, ys, gaps, t_save, settings, "incomplete",
                  f"checkpoint at t = {t_save[done_to]:g}", stats, wall, None, config)
    ds["state"] = (("time", "state_index"), ys)
    ds.attrs.update({"checkpoint.fingerprint": fingerprint, "checkpoint.done_to": int(done_to)})
    save(ds, path, overwrite=True)


def _read_checkpoint(path, fingerprint, ys, gaps):
    ds = load(path)
    if ds.attrs.get("checkpoint.fingerprint") != fingerprint:
        raise ParameterError(
            f"evolve: the checkpoint {path} belongs to another run (model, save times, initial "
            "state or solver differ); remove it or pass another checkpoint path."
        )
    done_to = int(ds.attrs["checkpoint.done_to"])
    ys[: done_to + 1] = ds["state"].values[: done_to + 1]
    gaps[: done_to + 1] = ds["gap"].values[: done_to + 1]
    stats = {k.split(".", 1)[1]: int(v) for k, v in ds.attrs.items()
             if k.startswith("solver.num_") and isinstance(v, (int, np.integer))}
    return ys, gaps, done_to, stats, float(ds.attrs.get("solver.wall_time_s", 0.0))


def _shifted(field, shift):
    def shifted(s, y, args):
        return field(s + shift, y, args)

    return shifted


class TimeProgress(diffrax.TqdmProgressMeter):
    """diffrax's tqdm meter with a label, and the share of the time span done as its unit.

    No time-left estimate: the share of simulated time is not the share of work (a stiff
    or log-spaced run spends most steps early), so such an estimate misleads."""

    label: str = "evolve"

    def _init_bar(self):
        import tqdm

        return tqdm.tqdm(
            total=100, unit="% of t", desc=self.label,
            bar_format="{desc}: {percentage:5.1f}% of the time span |{bar}| {elapsed} elapsed",
        )


def evolve_core(model, y0, t0, t1, ts, name, rtol, atol, max_steps, dt0, jumps, progress,
                linear_solver="dense") -> dict:
    """Integrate from (t0, y0) to t1 and save at `ts` (traceable; single points and sweeps
    both call it).

    `name`: a key of ``SOLVERS`` (not "auto"); `jumps`: times of parameter jumps inside
    (t0, t1) (an array: new jump times do not recompile); `linear_solver`: the BDF's,
    "dense" or "krylov" (``bdf_solve``). Returns arrays: ``y`` (saved
    states, inf/NaN rows where the run did not get to), ``gap`` of each saved state
    (NaN there), ``result`` (a diffrax ``RESULTS`` code) and ``stats`` (counters).
    """
    if name in EXPLICIT:
        sol = _integrate(model, y0, t0, t1, ts, name, rtol, atol, max_steps, dt0, jumps, progress)
        ys = sol.ys
    else:
        z0 = to_z(model, y0)
        sol = _integrate(model, z0, t0, t1, ts, name, rtol, atol, max_steps, dt0, jumps, progress,
                         linear_solver)
        reached = jnp.all(jnp.isfinite(sol.ys), axis=1)[:, None]
        ys = jnp.where(reached, jax.vmap(lambda z: from_z(model, z))(sol.ys), jnp.inf)
    done = jnp.all(jnp.isfinite(ys), axis=1)
    gaps = jax.vmap(model.gap)(jnp.where(done[:, None], ys, 0.0))
    # counters only: diffrax's stats also echo the max_steps setting, which summed over
    # checkpoint segments read as 10 x max_steps in the dataset
    stats = {k: v for k, v in sol.stats.items() if jnp.ndim(v) == 0 and k != "max_steps"}
    return {"y": ys, "gap": jnp.where(done, gaps, jnp.nan), "result": sol.result._value,
            "stats": stats}


_core_jit = eqx.filter_jit(evolve_core)


class OccupationErrors(diffrax.AbstractAdaptiveStepSizeController):
    """diffrax's PID controller for the log-odds z of the occupations, with each step's
    error measured as the error of the occupation it stands for, |dy| = D(z) |dz|,
    against atol + rtol |y| (so `rtol` is relative to every occupation, however small,
    and `atol` an absolute floor below which occupations are resolved only to
    Z_ERROR_CAP relative). The implicit
    solvers' Newton iterations see tolerances in z: an error rtol in z is a relative
    error rtol of the occupation."""

    inner: diffrax.PIDController
    model: Model

    @property
    def rtol(self):
        return 0.0

    @property
    def atol(self):
        return self.inner.rtol

    @property
    def norm(self):
        return self.inner.norm

    def wrap(self, direction):
        return eqx.tree_at(lambda c: c.inner, self, self.inner.wrap(direction))

    def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
        return self.inner.init(terms, t0, t1, y0, dt0, args, func, error_order)

    def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order,
                        controller_state):
        if y_error is not None:
            y1 = from_z(self.model, y1_candidate)
            floor = (self.inner.atol + self.inner.rtol * y1) / Z_ERROR_CAP
            y_error = y_error * jnp.maximum(scale(self.model, y1_candidate), floor)
        return self.inner.adapt_step_size(
            t0, t1, from_z(self.model, y0), from_z(self.model, y1_candidate), args, y_error,
            error_order, controller_state,
        )


# the largest error of z = ln(n/(1-n)) any step may make, whatever atol allows: an
# occupation below atol is still kept within 10 % (a larger error in z is not an error
# of y any more, and lets an uncontrolled tail wander to n ~ 1; measured: bdf through a
# cavity switch-on at atol = 1e-13 reached the minimum step size)
Z_ERROR_CAP = 0.1


def _error_scale(model, rtol, atol):
    """The BDF's error weights for z: (atol + rtol y) / D, i.e. errors of y, capped at
    Z_ERROR_CAP."""
    def weights(z):
        return jnp.minimum((atol + rtol * from_z(model, z)) / scale(model, z), Z_ERROR_CAP)

    return weights


def z_jacobian_into(model, t, z, old):
    """``_occupations.z_jacobian`` (same expressions) written into the buffer of `old`, the
    Jacobian it replaces (``Model.jacobian``'s `out` and `scale`: row blocks and scatters
    in place): the BDF then holds one N x N array where it held J and built the next
    beside it (XLA temporaries of the Krylov BDF at N = 4000, regime (b): 3.08 -> 1.14
    N^2 x 8 B; dense BDF 4.05; tests/test_krylov.py)."""
    d = scale(model, z)
    f = z_rhs(model, t, z)
    jac = model.jacobian(t, from_z(model, z), scale=d, out=old)
    idx = jnp.arange(z.shape[0])
    return jac.at[idx, idx].add(-f * _curvature(model, z))


def _integrate(model, z0, t0, t1, ts, name, rtol, atol, max_steps, dt0, jumps, progress,
               linear_solver="dense"):
    """One integration; `z0` is the log-odds state (``_occupations``) for the implicit
    solvers and the occupations themselves for the explicit ones (see ``EXPLICIT``)."""
    if name == "bdf":  # stops at the jumps itself; dt0 is its own first-step choice
        meter = TimeProgress(refresh_steps=5, label=f"evolve ({name})") if progress else None
        return bdf_solve(
            lambda t, z: z_rhs(model, t, z), lambda t, z: z_jacobian(model, t, z), t0, t1, z0,
            ts, rtol=rtol, atol=atol, max_steps=max_steps, jumps=jumps, progress_meter=meter,
            error_scale=_error_scale(model, rtol, atol), linear_solver=linear_solver,
            krylov=bdf_krylov_options(),
            jac_into=lambda t, z, old: z_jacobian_into(model, t, z, old),
        )
    if name in EXPLICIT:
        field = vector_field(model)
        controller = diffrax.PIDController(rtol=rtol, atol=atol)
    else:
        field = z_vector_field(model)
        controller = OccupationErrors(diffrax.PIDController(rtol=rtol, atol=atol), model)
    jumps = jnp.asarray(jumps, dtype=jnp.float64).reshape(-1)  # a tuple from sweeps
    if jumps.shape[0]:
        # Clipping at a jump steps to nextafter(jump); at a jump exactly at t = 0 that
        # is a denormal and the step size collapses (measured: max_steps reached with
        # every step accepted). Integrate in s = t - t0 + (t1 - t0) > 0 instead.
        shift = t0 - (t1 - t0)
        field = _shifted(field, shift)
        t0, t1, ts = t0 - shift, t1 - shift, ts - shift
        controller = diffrax.ClipStepSizeController(controller, jump_ts=jumps - shift)
    meter = (
        TimeProgress(refresh_steps=20, label=f"evolve ({name})")
        if progress
        else diffrax.NoProgressMeter()
    )
    return diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        DIFFRAX_SOLVERS[name](),
        t0=t0,
        t1=t1,
        dt0=dt0,
        y0=z0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
        progress_meter=meter,
    )

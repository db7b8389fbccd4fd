"""Time evolution of the kinetic equation with a self-consistent gap (diffrax)."""

from __future__ import annotations

import time as _time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from kinetics import Model, ParameterError

from ._dataset import SolverError, build_dataset
from ._rhs import vector_field

SOLVERS = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "kvaerno3": diffrax.Kvaerno3,
    "kvaerno4": diffrax.Kvaerno4,
    "kvaerno5": diffrax.Kvaerno5,
}
_IMPLICIT = {"kvaerno3", "kvaerno4", "kvaerno5"}
# explicit steps are limited to |lambda| dt < ~3; beyond this many forced steps an
# implicit method (a handful of LU factorizations) is cheaper (README: solver choice)
_STIFFNESS_THRESHOLD = 3000.0


@eqx.filter_jit
def _gershgorin(model: Model, n, t):
    return jnp.max(jnp.sum(jnp.abs(model.jacobian(t, n)), axis=1))


@eqx.filter_jit
def gaps_of(model: Model, ns):
    """Self-consistent Delta[n] for each row of `ns` [T_c]."""
    return jax.vmap(model.gap)(ns)


def stiffness_estimate(model: Model, n, t=0.0) -> float:
    """Largest |eigenvalue| of the Jacobian at n [k_B T_c / hbar] (Gershgorin bound)."""
    return float(_gershgorin(model, jnp.asarray(n), t))


def choose_solver(model: Model, n0, t_span: float, t0: float = 0.0) -> str:
    """'tsit5' when |lambda|_max * t_span is small enough for explicit steps, else 'kvaerno5'."""
    stiff = stiffness_estimate(model, n0, t0) * t_span
    return "tsit5" if stiff < _STIFFNESS_THRESHOLD else "kvaerno5"


def _initial_state(model: Model, n0):
    if n0 is None:
        return model.initial_state(), None
    bosons = None
    if isinstance(n0, xr.Dataset):
        ds = n0
        n = ds["n"].values
        t_start = float(ds["time"].values[-1]) if "time" in ds["n"].dims else None
        if n.ndim == 2:
            n = n[-1]
        if "boson_occupation" in ds and model.dynamic:
            b = ds["boson_occupation"].values
            bosons = b[-1] if b.ndim == 2 else b
        n0 = n
    else:
        t_start = None
    n0 = np.asarray(n0, dtype=np.float64)
    size = model.state_size
    if n0.shape == (size,):
        n0, bosons = n0[: model.grid.n], n0[model.grid.n :]
    elif n0.shape != (model.grid.n,):
        extra = (
            f" or ({size},) (n followed by the dynamic baths' N_b)" if size != model.grid.n else ""
        )
        raise ParameterError(
            f"evolve: n0 must have shape ({model.grid.n},) (one value per grid point){extra}; "
            f"got {n0.shape}."
        )
    if not np.all(np.isfinite(n0)) or np.any(n0 < 0) or np.any(n0 > 1):
        raise ParameterError("evolve: n0 must be finite and within [0, 1].")
    if not model.dynamic:
        return jnp.asarray(n0), t_start
    if bosons is None:
        bosons = np.concatenate([np.asarray(b) for b in model.boson_state()])
    bosons = np.asarray(bosons, dtype=np.float64)
    if bosons.shape != (size - model.grid.n,) or not np.all(np.isfinite(bosons)) or np.any(bosons < -1e-12):
        raise ParameterError(
            f"evolve: the boson occupations of n0 must be finite, >= 0 and of shape "
            f"({size - model.grid.n},); got shape {bosons.shape}, minimum {np.min(bosons):g}."
        )
    bosons = np.maximum(bosons, 0.0)  # rounding-level negatives (a Newton iterate)
    return jnp.concatenate([jnp.asarray(n0), jnp.asarray(bosons)]), t_start


def evolve(
    model: Model,
    t_save,
    *,
    n0=None,
    solver: str = "auto",
    rtol: float = 1e-8,
    atol: float = 1e-12,
    max_steps: int = 200_000,
    dt0: float | None = None,
    progress: bool = True,
    throw: bool = True,
    config: dict | None = None,
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
      large, then Kvaerno5), or one of "tsit5", "dopri5", "dopri8", "kvaerno3/4/5".
      Implicit solvers use the structured O(N^2) Jacobian.
    - `rtol`, `atol`: tolerances of the PID step-size controller.
    - `max_steps`: bound on the number of steps.
    - `progress`: show a tqdm progress bar of simulated time (on by default).
    - `throw`: raise `SolverError` on failure (its ``partial`` attribute holds the
      dataset up to the failure); with False, return that dataset, marked
      ``solver.status != "success"``.

    Returns a dataset over (time, xi) with n, delta_n, gap, relative_gap_change,
    n_qp, energy. Parameter jumps of time-dependent baths are passed to the
    step-size controller so that steps stop exactly there.
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
    y0, t_prev = _initial_state(model, n0)
    t0 = float(t_save[0])
    t1 = float(t_save[-1])
    if t_save.size == 1:
        t1 = t0
    name = choose_solver(model, y0, t1 - t0, t0) if solver == "auto" else solver
    jumps = [t for t in model.jump_times() if t0 < t < t1]

    start = _time.perf_counter()
    sol = _solve(
        model, y0, t0, t1, jnp.asarray(t_save), name, rtol, atol, max_steps, dt0, tuple(jumps), progress
    )
    wall = _time.perf_counter() - start
    ok = bool(sol.result == diffrax.RESULTS.successful)
    ys = np.asarray(sol.ys)
    done = np.all(np.isfinite(ys), axis=1)
    gaps = np.asarray(gaps_of(model, jnp.where(done[:, None], ys, 0.0)[:, : model.grid.n]))
    gaps = np.where(done, gaps, np.nan)
    stats = {k: int(v) for k, v in sol.stats.items() if np.ndim(v) == 0}
    message = "success" if ok else diffrax.RESULTS[sol.result]
    info = {
        "name": name,
        "rtol": rtol,
        "atol": atol,
        "max_steps": max_steps,
        "status": "success" if ok else "failed",
        "message": message,
        "wall_time_s": wall,
        "saved_points_completed": int(done.sum()),
        **stats,
    }
    if t_prev is not None:
        info["restarted_from_time"] = t_prev
    ds = build_dataset(model, ys, gaps, kind="evolve", time=t_save, solver=info, config=config)
    if not ok:
        last = t_save[done][-1] if done.any() else t0
        msg = (
            f"evolve stopped: {message} (solver {name}, rtol {rtol:g}); states up to "
            f"t = {last:g} are in the partial result. Try larger max_steps, looser "
            f"tolerances, a finer grid or another solver (e.g. 'kvaerno5' for stiff problems)."
        )
        if throw:
            raise SolverError(msg, partial=ds)
    return ds


def _shifted(field, shift):
    def shifted(s, y, args):
        return field(s + shift, y, args)

    return shifted


@eqx.filter_jit
def _solve(model, y0, t0, t1, ts, name, rtol, atol, max_steps, dt0, jumps, progress):
    field = vector_field(model)
    controller = diffrax.PIDController(rtol=rtol, atol=atol)
    if jumps:
        # Clipping at a jump steps to nextafter(jump); at a jump exactly at t = 0 that
        # is a denormal and the step size collapses (measured: max_steps reached with
        # every step accepted). Integrate in s = t - t0 + (t1 - t0) > 0 instead.
        shift = t0 - (t1 - t0)
        field = _shifted(field, shift)
        t0, t1, ts = t0 - shift, t1 - shift, ts - shift
        jumps = tuple(j - shift for j in jumps)
        controller = diffrax.ClipStepSizeController(controller, jump_ts=jnp.asarray(jumps))
    meter = diffrax.TqdmProgressMeter(refresh_steps=20) if progress else diffrax.NoProgressMeter()
    return diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        SOLVERS[name](),
        t0=t0,
        t1=t1,
        dt0=dt0,
        y0=y0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
        progress_meter=meter,
    )

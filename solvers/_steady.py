"""Steady states: Newton's method on the right-hand side, and integrate-until-steady.

``steady_start`` and ``steady_core`` are the traceable core (a pure function of the model
and options returning arrays); ``solve_steady`` adds the continuation fallback. Single
points (``steady_state``) and sweeps (``solvers.sweep``) both go through them.
"""

from __future__ import annotations

import time as _time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import xarray as xr

from kinetics import Model, ParameterError, perturbative_delta_n

from ._dataset import build_dataset
from ._errors import SolverError
from ._evolve import DIFFRAX_SOLVERS, gershgorin, initial_state
from ._options import STEADY
from ._perturbative import compiled_core as perturbative_compiled
from ._perturbative import perturbation_warnings, perturbative_core, warn_all
from ._resources import check_resources
from ._rhs import blas_single_thread, vector_field


def _residual_weights(model: Model, y, t, scale):
    """Per-component residual weights, or None for a static model (then rhs * scale).

    n: scale (tau_in), i.e. the change of n per relaxation time, as always. A dynamic
    bath's N_k: min(scale, 1 / |dF_k/dN_k|) at the starting point, i.e. the change of N_k
    over the node's own fastest time (escape or exchange with the quasiparticles): an
    occupation error like n's. (Weighting by tau_in alone leaves rounding x exchange rate
    ~ 1/r_cav above any tolerance; by the mode density rho, a tiny r_cav hides a wrong N.)
    """
    if not model.dynamic:
        return None
    nn = model.grid.n
    diag = jnp.abs(jnp.diagonal(model.jacobian(t, y)))[nn:]
    w_b = 1.0 / jnp.maximum(diag, 1.0 / scale)
    return jnp.concatenate([jnp.full((nn,), scale), w_b])


def _newton(model: Model, n0, t, scale, tol, max_iter):
    """Damped Newton with the structured Jacobian; every loop is bounded.

    Convergence: max |F(n)| * scale < tol, with scale = tau_in (or the fastest
    relaxation time when there is no tau_in), i.e. the residual measured as a
    change of n per relaxation time, *and* the estimated distance to the root
    max |J^-1 F(n)| below tol (over n, not the bosons; J of the iteration, so it costs
    one triangular solve with its LU). The distance is right whatever the stiffness: a
    residual test alone stops too early on slow modes (without tau_in, a phonon bath's
    gap mode relaxes ~1e4 times slower than the fastest rate that sets the scale;
    measured: delta Delta / Delta_0 wrong by 1.2e-4 relative after one iteration at
    N = 250, benchmarks regime (b)). Each iteration builds one Jacobian and halves the
    step (at most 12 times) until the rms residual falls.
    """

    weights = _residual_weights(model, n0, t, scale)  # None for a static model

    def residual(n):
        if weights is None:
            fn = model.rhs(t, n) * scale
        else:
            fn = model.rhs(t, n) * weights
        return fn, jnp.max(jnp.abs(fn)), jnp.sqrt(jnp.mean(fn * fn))

    def cond(state):
        n, fn, res, merit, it, ok, distance = state
        return ((res > tol) | (distance > tol)) & (it < max_iter) & ok

    def body(state):
        n, fn, res, merit, it, ok, _ = state
        if weights is None:
            jac = model.jacobian(t, n) * scale
        else:
            jac = model.jacobian(t, n) * weights[:, None]
        lu = jax.scipy.linalg.lu_factor(jac)
        step = jax.scipy.linalg.lu_solve(lu, -fn)

        # backtracking on the rms residual (the max norm can be held up by one node)
        def ls_cond(s):
            lam, n_new, f_new, r_new, m_new, k = s
            return (m_new >= merit) & (k < 13)

        def ls_body(s):
            lam, _, _, _, _, k = s
            n_new = n + lam * step
            f_new, r_new, m_new = residual(n_new)
            return 0.5 * lam, n_new, f_new, r_new, m_new, k + 1

        inf = jnp.asarray(jnp.inf)
        _, n_new, f_new, r_new, m_new, _ = jax.lax.while_loop(
            ls_cond, ls_body, (jnp.asarray(1.0), n, fn, inf, inf, 0)
        )
        ok = jnp.all(jnp.isfinite(f_new)) & (m_new < merit)
        keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
        # distance still to go, over n (in [0, 1]: an absolute measure on every grid); no
        # decrease at the rounding floor ends the loop too
        far = jnp.max(jnp.abs(jax.scipy.linalg.lu_solve(lu, f_new))[: model.grid.n])
        distance = jnp.where(ok, far, 0.0)
        return (keep(n_new, n), keep(f_new, fn), keep(r_new, res), keep(m_new, merit), it + 1,
                ok, distance)

    f0, res0, merit0 = residual(n0)
    inf = jnp.asarray(jnp.inf)
    n, _, res, _, it, _, _ = jax.lax.while_loop(
        cond, body, (n0, f0, res0, merit0, 0, jnp.asarray(True), inf)
    )
    return n, res, it


def _relax_bosons(model: Model, y, t, iters: int = 8):
    """Newton on the dynamic baths' block alone, at fixed n: a starting point for the full
    Newton (bosons at their reservoir are far from the state the quasiparticles impose
    when exchange beats escape, and the full Newton from there fails)."""
    nn = model.grid.n

    def body(i, y):
        f = model.rhs(t, y)[nn:]
        jac = model.boson_jacobian(t, y)
        step = jnp.linalg.solve(jac, -f)
        new = jnp.maximum(y[nn:] + step, 0.0)
        ok = jnp.all(jnp.isfinite(new))
        return y.at[nn:].set(jnp.where(ok, new, y[nn:]))

    return jax.lax.fori_loop(0, iters, body, y)


def residual_scale(model: Model, y0, t):
    """The time that turns a rate into an occupation change [hbar/(k_B T_c)] (traceable):
    tau_in, or without it the fastest relaxation time 1 / |lambda|_max at y0."""
    if model.tau_in is not None:
        return jnp.asarray(model.tau_in, dtype=jnp.float64)
    return 1.0 / gershgorin(model, y0, t)


def scaled_model(model: Model, s):
    """The model with every bath's coupling multiplied by s (for continuation)."""
    return eqx.tree_at(lambda m: m.baths, model, tuple(b.scaled(s) for b in model.baths))


def steady_start(model: Model, start: str, t, tol, max_iter):
    """The starting state of the Newton iteration (traceable).

    - "perturbative" (with tau_in): n_F + tau_in I[n_F], clipped to [0, 1];
    - "thermal" (or no tau_in): n_F at Delta_0;
    - a model with dynamic baths and start "perturbative": the steady state of its static
      version (bosons fixed at their reservoirs), first Newton stage;
    then, with dynamic baths, the bosons relaxed at fixed n (a Newton on their block alone:
    bosons at their reservoir are far from what the quasiparticles impose when exchange
    beats escape, and the full Newton from there fails).
    """
    if model.dynamic and start == "perturbative":
        static = model.static_version()
        n = steady_core(static, steady_start(static, start, t, tol, max_iter), t, tol, max_iter)
        y0 = model.join(n["y"], model.boson_state(t))
    elif start == "perturbative" and model.tau_in is not None:
        n = jnp.clip(model.thermal_state() + perturbative_delta_n(model, t), 0.0, 1.0)
        y0 = model.join(n, model.boson_state(t))
    else:
        y0 = model.initial_state(t)
    if model.dynamic:
        y0 = _relax_bosons(model, y0, t)
    return y0


def steady_core(model: Model, y0, t, tol, max_iter) -> dict:
    """One Newton solve from y0, traceable: the core that single points and sweeps call.

    Returns arrays: ``y`` (the last iterate), ``gap``, ``residual``, ``iterations``,
    ``delta0``; converged when residual <= tol.
    """
    scale = residual_scale(model, y0, t)
    y, res, it = _newton(model, y0, t, scale, tol, max_iter)
    return {"y": y, "gap": model.gap(y), "residual": res, "iterations": it, "delta0": model.delta0}


_newton_jit = eqx.filter_jit(_newton)
_start_jit = eqx.filter_jit(steady_start)
_core_jit = eqx.filter_jit(steady_core)
_relax_jit = eqx.filter_jit(_relax_bosons)
_scale_jit = eqx.filter_jit(residual_scale)


def _compares_with_perturbation_theory(model: Model) -> bool:
    return model.tau_in is not None and not model.dynamic


@eqx.filter_jit
def _start_and_reference(model: Model, start: str, t, tol, max_iter: int):
    """The start state and the perturbative delta Delta / Delta_0 beside it, in one program
    (the perturbative start computes the same tau_in I[n_F]: XLA shares it)."""
    y0 = steady_start(model, start, t, tol, max_iter)
    if not _compares_with_perturbation_theory(model):
        return y0, jnp.asarray(jnp.nan)
    first = perturbative_core(model, t)
    return y0, (first["gap"] - first["delta0"]) / first["delta0"]


def start_state(model: Model, start: str, t, tol, max_iter: int):
    """``steady_start``, compiled (a Python entry point for single points and fallbacks)."""
    with blas_single_thread():
        return _start_jit(model, start, jnp.asarray(t, jnp.float64),
                          jnp.asarray(tol, jnp.float64), max_iter)


def continue_steady(model: Model, t, tol, max_iter, steps: int, y_start) -> dict:
    """The fallback when Newton fails (shared by single points and sweeps): continuation
    in the coupling, ramped up geometrically from 1e-3 over `steps` stages, each Newton
    solve started from the previous stage's state; the residual is scaled as for a solve
    from `y_start`. Returns the core's outputs, iterations summed over the stages."""
    t, tol = jnp.asarray(t, jnp.float64), jnp.asarray(tol, jnp.float64)
    scale = _scale_jit(model, y_start, t)
    y = model.initial_state(t)
    if model.dynamic:
        y = _relax_jit(model, y, t)
    total = 0
    for s in np.geomspace(1e-3, 1.0, steps):
        with blas_single_thread():
            y, res, it = _newton_jit(scaled_model(model, float(s)), y, t, scale, tol, max_iter)
        total += int(it)
    return {"y": y, "gap": model.gap(y), "residual": res, "iterations": total,
            "delta0": model.delta0}


def solve_steady(model: Model, y0, t, tol, max_iter, continuation_steps: int) -> tuple[dict, int]:
    """Newton from y0 and, when it fails, the continuation fallback: the whole recipe of a
    steady state, for single points and sweeps alike. Returns (outputs as numpy, stages)."""
    t, tol = jnp.asarray(t, jnp.float64), jnp.asarray(tol, jnp.float64)
    with blas_single_thread():  # XLA's LU calls OpenBLAS: keep it off XLA's cores
        out = _core_jit(model, y0, t, tol, max_iter)
    stages = 1
    if not float(out["residual"]) <= float(tol) and continuation_steps > 0:
        out = continue_steady(model, t, tol, max_iter, continuation_steps, y0)
        stages = continuation_steps
    return jax.device_get(out), stages


def steady_state(
    model: Model,
    *,
    start: str = STEADY["start"],
    n0=None,
    t: float = STEADY["t"],
    method: str = STEADY["method"],
    tol: float = STEADY["tol"],
    max_iter: int = STEADY["max_iter"],
    continuation_steps: int = STEADY["continuation_steps"],
    solver: str = STEADY["solver"],
    throw: bool = True,
    max_memory_gb: float | None = None,
    config: dict | None = None,
) -> xr.Dataset:
    """Steady state of the kinetic equation with a self-consistent gap.

    **Main arguments:**

    - `model`: the physical situation (time-dependent parameters are frozen at `t`).
    - `start`: "perturbative" (n_F + tau_in I[n_F], needs tau_in) or "thermal"
      (see ``steady_start``).
    - `method`: "newton" (damped Newton with the structured Jacobian; when it
      fails, continuation in the coupling: the couplings are ramped up
      geometrically over `continuation_steps` stages, each started from the
      previous solution) or "integrate" (diffrax Kvaerno5 until the right-hand
      side is steady, a cross-check).

    **Other arguments:**

    - `n0`: explicit initial guess (overrides `start`): n, the full state y with dynamic
      baths, or a dataset of an earlier run (its last state). Bosons not given start at
      their reservoir and are first relaxed at fixed n (a Newton on their block alone).
    - `tol`: residual tolerance: max |dn/dt| times tau_in (or times the fastest
      relaxation time without tau_in); a dynamic bath's N_k counts as |dN_k/dt| over
      the node's own fastest time (``_residual_weights``).
    - `max_iter`: Newton iterations per stage.
    - `solver`: the diffrax solver for ``method="integrate"`` (see `evolve`).
    - `max_memory_gb`: refuse (``ResourceError``, before any work) a solve whose
      estimated memory exceeds this (default: 80 % of the memory available now).
    - `throw`: raise `SolverError` (reason "not_converged", the last iterate in its
      ``partial``) when the tolerance is not reached; with False return that dataset,
      marked ``solver.status = "failed"``.

    The dataset's attributes ``solver.residual``, ``solver.iterations`` and
    ``solver.status`` report the outcome.
    """
    if start not in ("perturbative", "thermal"):
        raise ParameterError(f"steady_state: start must be 'perturbative' or 'thermal'; got {start!r}.")
    if method not in ("newton", "integrate"):
        raise ParameterError(f"steady_state: method must be 'newton' or 'integrate'; got {method!r}.")
    if not (np.isfinite(tol) and tol > 0):
        raise ParameterError(f"steady_state: tol must be > 0; got {tol!r}.")
    if method == "integrate" and solver not in DIFFRAX_SOLVERS:
        raise ParameterError(
            f"steady_state: solver must be one of {sorted(DIFFRAX_SOLVERS)} (a diffrax "
            f"solver: the steady-state event is diffrax's); got {solver!r}."
        )
    check_resources(model, "steady" if method == "newton" else "evolve",
                    None if method == "newton" else solver, max_memory_gb=max_memory_gb,
                    what="steady_state")
    t_arr, tol_arr = jnp.asarray(t, jnp.float64), jnp.asarray(tol, jnp.float64)
    if n0 is not None:
        y0, _, bosons_given = initial_state(model, n0)
        if model.dynamic and not bosons_given:
            y0 = _relax_jit(model, y0, t_arr)
        reference = None
    else:
        with blas_single_thread():
            y0, reference = _start_and_reference(model, start, t_arr, tol_arr, max_iter)
    clock = _time.perf_counter()
    if method == "integrate":
        n, res, iters, stages = _integrate_to_steady(model, y0, t, tol, solver)
    else:
        out, stages = solve_steady(model, y0, t_arr, tol_arr, max_iter, continuation_steps)
        n, res, iters = out["y"], out["residual"], out["iterations"]
    wall = _time.perf_counter() - clock
    res = float(res)
    ok = res <= tol
    gap = float(model.gap(jnp.asarray(n)))
    info = {
        "name": method if method == "newton" else f"integrate ({solver})",
        "start": start if n0 is None else "given",
        "tol": tol,
        "residual": res,
        "iterations": int(iters),
        "continuation_stages": stages,
        "status": "success" if ok else "failed",
        "wall_time_s": wall,
        "time_parameters_frozen_at": t,
    }
    ds = build_dataset(
        model, np.asarray(n), gap, kind="steady", solver=info, config=config, rates_at=t
    )
    if ok and _compares_with_perturbation_theory(model) and float(model.delta0) > 0:
        # the perturbative result beside it (one collision evaluation): a nonlinear state
        # far from it means the coupling is not perturbative
        if reference is None:  # a given start: computed apart
            first = perturbative_compiled(model, jnp.asarray(t, jnp.float64))
            reference = (first["gap"] - first["delta0"]) / first["delta0"]
        problems = perturbation_warnings(
            model, float(reference), float(ds["relative_gap_change"])
        )
        if problems:
            ds.attrs["warnings"] = " | ".join(problems)
            warn_all(problems)
    if not ok and throw:
        raise SolverError(
            f"steady_state did not converge: residual {res:.3g} > tol {tol:g} after {int(iters)} "
            f"iterations ({method}, {stages} stage(s)). The last iterate is in the partial "
            f"result. Try method='integrate', a finer grid, or a smaller coupling.",
            partial=ds,
            reason="not_converged",
        )
    return ds


def _integrate_to_steady(model: Model, y0, t, tol, solver):
    scale = float(residual_scale(model, y0, t))
    sol = _integrate(model, y0, t, tol / scale, solver)
    n = sol.ys[-1]
    weights = _residual_weights(model, n, t, scale)
    f = model.rhs(t, n) * (scale if weights is None else weights)
    res = float(jnp.max(jnp.abs(f)))
    return n, res, int(sol.stats["num_steps"]), 1


@eqx.filter_jit
def _integrate(model, y0, t, atol_rate, solver):
    field = vector_field(model)
    frozen = lambda s, n, args: field(t, n)  # noqa: E731
    # max norm, as the residual reported; a margin of 2 since the event is checked
    # on the last accepted step's vector field
    event = diffrax.Event(
        diffrax.steady_state_event(rtol=0.0, atol=0.5 * atol_rate, norm=optx.max_norm)
    )
    return diffrax.diffeqsolve(
        diffrax.ODETerm(frozen),
        DIFFRAX_SOLVERS[solver](),
        t0=0.0,
        t1=jnp.inf,
        dt0=None,
        y0=y0,
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-14),
        event=event,
        max_steps=100_000,
        throw=False,
    )

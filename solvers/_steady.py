"""Steady states: Newton's method on the right-hand side, and integrate-until-steady."""

from __future__ import annotations

import time as _time
import warnings

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import xarray as xr

from kinetics import Model, ParameterError
from kinetics._perturbative import perturbative_delta_n

from ._dataset import SolverError, build_dataset
from ._evolve import DIFFRAX_SOLVERS, _initial_state, stiffness_estimate
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


@eqx.filter_jit
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


@eqx.filter_jit
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


def _residual_scale(model: Model, n, t) -> float:
    if model.tau_in is not None:
        return float(model.tau_in)
    return 1.0 / stiffness_estimate(model, n, t)


def _scaled_model(model: Model, s):
    """The model with every bath's coupling multiplied by s (for continuation)."""
    return eqx.tree_at(lambda m: m.baths, model, tuple(b.scaled(s) for b in model.baths))


def steady_state(
    model: Model,
    *,
    start: str = "perturbative",
    n0=None,
    t: float = 0.0,
    method: str = "newton",
    tol: float = 1e-11,
    max_iter: int = 50,
    continuation_steps: int = 8,
    solver: str = "kvaerno5",
    throw: bool = True,
    config: dict | None = None,
) -> xr.Dataset:
    """Steady state of the kinetic equation with a self-consistent gap.

    **Main arguments:**

    - `model`: the physical situation (time-dependent parameters are frozen at `t`).
    - `start`: "perturbative" (n_F + tau_in I[n_F], needs tau_in) or "thermal".
    - `method`: "newton" (damped Newton with the structured Jacobian; when it
      fails, continuation in the coupling: the couplings are ramped up
      geometrically over `continuation_steps` stages, each started from the
      previous solution) or "integrate" (diffrax Kvaerno5 until the right-hand
      side is steady, a cross-check).

    **Other arguments:**

    - `n0`: explicit initial guess (overrides `start`): n, or with dynamic baths the
      full state y. Bosons not given start at their reservoir and are first relaxed
      at fixed n (a Newton on their block alone).
    - `tol`: residual tolerance: max |dn/dt| times tau_in (or times the fastest
      relaxation time without tau_in); a dynamic bath's N_k counts as |dN_k/dt| over
      the node's own fastest time (``_residual_weights``).
    - `max_iter`: Newton iterations per stage.
    - `solver`: the diffrax solver for ``method="integrate"`` (see `evolve`).

    The dataset's attributes ``solver.residual``, ``solver.iterations`` and
    ``solver.status`` report the outcome.
    """
    if start not in ("perturbative", "thermal"):
        raise ParameterError(f"steady_state: start must be 'perturbative' or 'thermal'; got {start!r}.")
    if method not in ("newton", "integrate"):
        raise ParameterError(f"steady_state: method must be 'newton' or 'integrate'; got {method!r}.")
    if not (np.isfinite(tol) and tol > 0):
        raise ParameterError(f"steady_state: tol must be > 0; got {tol!r}.")
    given_bosons = n0 is not None and np.shape(n0) == (model.state_size,) or (
        isinstance(n0, xr.Dataset) and "boson_occupation" in n0
    )
    if n0 is not None:
        y0, _ = _initial_state(model, n0)
    elif model.dynamic and method == "newton" and start == "perturbative":
        # start from the static-bath steady state, bosons relaxed to it at fixed n
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the model's own warnings were given already
            static = model.static_version()
            ds = steady_state(static, start=start, t=t, tol=tol, max_iter=max_iter,
                              continuation_steps=continuation_steps, throw=False)
        y0 = model.join(jnp.asarray(ds.n.values), model.boson_state(t))
    elif start == "perturbative" and model.tau_in is not None:
        y0 = jnp.clip(model.thermal_state() + perturbative_delta_n(model, t), 0.0, 1.0)
        y0 = model.join(y0, model.boson_state(t))
    else:
        y0 = model.initial_state(t)
    if model.dynamic and not given_bosons:
        y0 = _relax_bosons(model, y0, t)
    clock = _time.perf_counter()
    if method == "integrate":
        if solver not in DIFFRAX_SOLVERS:
            raise ParameterError(
                f"steady_state: solver must be one of {sorted(DIFFRAX_SOLVERS)} (a diffrax "
                f"solver: the steady-state event is diffrax's); got {solver!r}."
            )
        n, res, iters, stages = _integrate_to_steady(model, y0, t, tol, solver)
    else:
        # an array, not a Python float: a float would be a static argument of the
        # jitted Newton and every new tau_in would recompile it (~10 s)
        scale = jnp.asarray(_residual_scale(model, y0, t), dtype=jnp.float64)
        # likewise the tolerance and the time the parameters are frozen at
        t_arr, tol_arr = jnp.asarray(t, jnp.float64), jnp.asarray(tol, jnp.float64)
        with blas_single_thread():  # XLA's LU calls OpenBLAS: keep it off XLA's cores
            n, res, iters = _newton(model, y0, t_arr, scale, tol_arr, max_iter)
        stages = 1
        if not float(res) <= tol and continuation_steps > 0:
            n = model.initial_state(t)
            if model.dynamic:
                n = _relax_bosons(model, n, t)
            iters_total = 0
            for s in np.geomspace(1e-3, 1.0, continuation_steps):
                with blas_single_thread():
                    n, res, iters = _newton(
                        _scaled_model(model, float(s)), n, t_arr, scale, tol_arr, max_iter
                    )
                iters_total += int(iters)
            iters, stages = iters_total, continuation_steps
    wall = _time.perf_counter() - clock
    res = float(res)
    ok = res <= tol
    gap = float(model.gap(n))
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
    if not ok and throw:
        raise SolverError(
            f"steady_state did not converge: residual {res:.3g} > tol {tol:g} after {int(iters)} "
            f"iterations ({method}, {stages} stage(s)). The last iterate is in the partial "
            f"result. Try method='integrate', a finer grid, or a smaller coupling.",
            partial=ds,
        )
    return ds


def _integrate_to_steady(model: Model, y0, t, tol, solver):
    scale = _residual_scale(model, y0, t)
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

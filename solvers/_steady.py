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
import xarray as xr

from kinetics import Model, ParameterError, perturbative_delta_n

from ._bdf import bdf_solve
from ._dataset import build_dataset
from ._errors import SolverError
from ._evolve import DIFFRAX_SOLVERS, EXPLICIT, initial_state
from ._krylov import KrylovSystem as _KrylovSystem
from ._occupations import (
    N_FLOOR,
    Z_FLOOR,
    at_floor,
    from_z,
    physical_problem,
    scaled_jacobian,
    to_z,
    z_rhs,
)
from ._options import KRYLOV, LINEAR_SOLVERS, STEADY
from ._perturbative import compiled_core as perturbative_compiled
from ._perturbative import perturbation_warnings, perturbative_core, warn_all
from ._resources import check_resources
from ._rhs import blas_single_thread

# Largest change of one occupation per Newton iteration, as a factor (a trust region in
# ln n): a linear step that would make n negative, or multiply it by 1e100, is cut to this.
_MAX_FACTOR = 1e8


def _step(model: Model, z, u, lam):
    """z after the Newton step lam * u, u = D^{-1} dy the Newton direction of y in relative
    units: n -> n + lam dy exactly (so an affine problem converges in one step) unless that
    would change n or 1 - n by more than the factor _MAX_FACTOR (e.g. make it negative):
    then n moves by that factor, and stays in (0, 1). Bosons the same with N."""
    nn = model.grid.n
    lo, hi = 1.0 / _MAX_FACTOR, _MAX_FACTOR
    n = from_z(model, z)[:nn]
    s = lam * u
    up = jnp.clip(1.0 + s[:nn] * (1.0 - n), lo, hi)  # n_new / n
    down = jnp.clip(1.0 - s[:nn] * n, lo, hi)  # (1 - n_new) / (1 - n)
    zn = z[:nn] + jnp.log(up) - jnp.log(down)
    if z.shape[0] == nn:
        return zn
    zb = z[nn:] + jnp.log(jnp.clip(1.0 + s[nn:], lo, hi))
    return jnp.concatenate([zn, zb])


def _relaxation_times(model: Model, jac):
    """tau_i = 1 / |J_ii| (each occupation's own relaxation time at this state: bounded for
    every physical state, unlike a Gershgorin bound of the whole matrix), floored at 1e-12
    of the fastest quasiparticle rate so that an isolated node cannot make it infinite.

    The floor is set by the quasiparticles alone: a dynamic boson node whose occupation
    sits decades below its neighbour's (a cell wider than the temperature) has a diagonal
    rate of ~ e^{dOmega / T} (1e87 measured at N ~ 1e-87), and a floor taken from it made
    every quasiparticle residual vanish (a static state was returned as the dynamic one).
    """
    return _times_of_diagonal(model, jnp.diagonal(jac))


def _times_of_diagonal(model: Model, diag):
    """``_relaxation_times`` from the Jacobian's diagonal alone (the Krylov path)."""
    rate = jnp.abs(diag)
    return 1.0 / jnp.maximum(rate, 1e-12 * jnp.max(rate[: model.grid.n]))


def _residuals(model: Model, z, f, tau):
    """|dz_i/dt| tau_i: each component's relative distance to the root (Jacobi), 0 for
    components resting at the occupation floor whose equation asks to go lower."""
    return jnp.where(at_floor(model, z, f), 0.0, jnp.abs(f) * tau)


# Pseudo-transient continuation (_newton): a backward-Euler step may let the largest
# relative residual grow by this factor (moving the slow number mode excites the fast ones,
# which the next steps relax), and a contracting Newton correction must shrink by this one.
_PTC_GROWTH = 10.0
_CONTRACTION = 0.75
_PTC_TRIES = 16  # pseudo time steps shortened (x 1/4) before an iteration gives up


def _newton(model: Model, z0, t, tol, max_iter, linear: str = "dense",
            krylov: tuple = (), with_stats: bool = False):
    """Newton's method on rhs(y) = 0 in the solver variables z (``_occupations``),
    globalized by pseudo-transient continuation.

    Each iteration first tries the full Newton step: solve (D^{-1} J D) u = -rhs / D with
    the structured Jacobian J (linear algebra in relative units: accurate for occupations
    of 1e-200 beside 0.1), step y by D u (``_step``: positivity kept by construction), and
    keep it when the Newton correction contracts (the next correction, from the same LU,
    is at most 3/4 of this one in rms: Deuflhard's natural monotonicity test, invariant
    under scalings of the equations). Otherwise it takes a pseudo-time step instead:
    backward Euler with a step sigma^{-1} tau_i for each occupation (its own relaxation
    time, so that every node relaxes at the same pace), i.e. (J - diag(sigma / tau)) u =
    -rhs. A step is kept when the largest residual grows at most 10x or the correction
    contracts; otherwise sigma is multiplied by 4 (shorter steps). After a kept step
    sigma falls by at least 2 (by 10 after a contracting one), so the iteration ends in
    Newton's quadratic convergence.

    Why not a line search on the residual (the method until 2026-12): at low temperature
    (T = 0.085 T_c, dynamic phonons) the quasiparticle number relaxes 1e8-1e12 times
    slower than the fastest rates (recombination ~ 1e-13 against ~1e-5). Its residual is
    tiny while the state is still far from the root (30 % in n_qp measured), and the
    Newton step that fixes it first raises the residual of the fast modes: a descent
    test on the residual rejects it, and damped Newton stalls (residual 7.9, line search
    exhausted). The contraction test accepts it, and the pseudo-time steps bring a far
    start (a drive heating the film 70-fold) to where Newton converges. Measured on
    Fischer & Catelani's set-up (dynamic phonons, N = 200): 0.1 K at T*/Delta = 0.35 in
    45 iterations, 0.5 in 42 (both failed before); 0.15 K at 0.5 in 7 (failed before);
    0.2 K at 0.35 in 5 (22 before).

    Convergence, both in relative units, so that they mean the same at T = 0.9 T_c and at
    0.05 T_c, for n and for the bosons:
    - residual: max_i |dy_i/dt| tau_i / y_i, with tau_i = 1 / |J_ii| the occupation's own
      relaxation time (a Jacobi estimate of the relative distance to the root);
    - distance: the next Newton correction max_i |dy_i| / y_i, after a Newton step. The
      residual alone stops too early on slow modes (above: 30 % off at a residual 2e-8).
    Both must be <= tol. A Newton step that no longer contracts while the residual is
    below tol and the correction below sqrt(tol) is at the rounding floor (the condition
    number along the slow mode, ~1e12, times the rounding of the rates): the iteration
    ends there, converged. Components resting at the occupation floor whose equation asks
    to go lower are left out (``at_floor``).
    """
    nn = model.grid.n

    def rms(u):
        return jnp.sqrt(jnp.mean(u * u))

    def trial(z, fz, jac, tau, res, sigma, stats):
        """The step from z with pseudo-time parameter sigma (0: Newton), its residual,
        and whether it contracts (Newton) or keeps the residual bounded (PTC). `jac`:
        the dense scaled Jacobian, or a ``_KrylovSystem`` (two GMRES solves instead of
        one LU, each falling back to the LU when GMRES does not converge)."""
        if linear == "dense":
            lu = jax.scipy.linalg.lu_factor(jac - jnp.diag(sigma / tau))
            solve = lambda b, st: (jax.scipy.linalg.lu_solve(lu, b), st)  # noqa: E731
        else:
            solve = lambda b, st: jac.solve(sigma / tau, b, st)  # noqa: E731
        u, stats = solve(-fz, stats)
        u = jnp.where(at_floor(model, z, u), 0.0, u)
        z_new = _step(model, z, u, 1.0)
        f_new = z_rhs(model, t, z_new)
        u_next, stats = solve(-f_new, stats)
        u_next = jnp.where(at_floor(model, z_new, u_next), 0.0, u_next)
        r_new = jnp.max(_residuals(model, z_new, f_new, tau))
        finite = jnp.isfinite(r_new) & jnp.all(jnp.isfinite(u_next))
        contracts = finite & (rms(u_next) <= _CONTRACTION * rms(u))
        bounded = finite & (r_new <= _PTC_GROWTH * res)
        rel = jnp.abs(u_next).at[:nn].multiply(1.0 - from_z(model, z_new)[:nn])
        return (z_new, f_new, r_new, contracts, bounded, jnp.max(rel), jnp.max(jnp.abs(u)),
                stats)

    def pseudo_time_step(z, fz, jac, tau, res, sigma, stats):
        def cond(s):
            return ~s[-1] & (s[-3] < _PTC_TRIES)

        def body(s):
            sig = s[0]
            z_new, f_new, r_new, contracts, bounded, _, _, st = trial(
                z, fz, jac, tau, res, sig, s[-2])
            kept = contracts | bounded
            after = jnp.where(contracts, sig / 10.0,
                              sig / jnp.clip(res / r_new, 2.0, 10.0))
            return (jnp.where(kept, after, jnp.maximum(4.0 * sig, 1e-12)), z_new, f_new, r_new,
                    s[-3] + 1, st, kept)

        sig, z_new, f_new, r_new, _, stats, kept = jax.lax.while_loop(
            cond, body, (sigma, z, fz, res, 0, stats, jnp.asarray(False)))
        keep = lambda new, old: jnp.where(kept, new, old)  # noqa: E731
        return sig, keep(z_new, z), keep(f_new, fz), keep(r_new, res), kept, stats

    def cond(state):
        z, fz, res, it, ok, done, distance, sigma, _ = state
        return ~done & ok & (it < max_iter)

    def body(state):
        z, fz, _, it, _, _, _, sigma, stats = state
        if linear == "dense":
            jac = scaled_jacobian(model, t, z)
            tau = _relaxation_times(model, jac)
        else:
            jac = _KrylovSystem(model, t, z, linear, krylov)
            tau = _times_of_diagonal(model, jac.diag)
        res = jnp.max(_residuals(model, z, fz, tau))
        z_n, f_n, r_n, contracts, _, distance, step, stats = trial(
            z, fz, jac, tau, res, 0.0, stats)
        floor = ~contracts & (res <= tol) & (step <= jnp.sqrt(tol))
        sig_p, z_p, f_p, r_p, kept, stats = jax.lax.cond(
            contracts | floor,
            lambda: (sigma, z, fz, res, jnp.asarray(True), stats),
            lambda: pseudo_time_step(z, fz, jac, tau, res, sigma, stats),
        )
        z_new = jnp.where(contracts, z_n, z_p)
        f_new = jnp.where(contracts, f_n, f_p)
        r_new = jnp.where(contracts, r_n, r_p)
        done = floor | (contracts & (r_n <= tol) & (distance <= tol))
        sigma_new = jnp.where(contracts, sigma / 10.0, sig_p)
        distance = jnp.where(contracts, distance, jnp.where(floor, 0.0, jnp.inf))
        r_out = jnp.where(floor, res, r_new)
        return z_new, f_new, r_out, it + 1, kept, done, distance, sigma_new, stats

    f0 = z_rhs(model, t, z0)
    inf = jnp.asarray(jnp.inf)
    stats0 = jnp.zeros((3,), jnp.int32)
    z, _, res, it, _, _, distance, _, stats = jax.lax.while_loop(
        cond, body, (z0, f0, inf, 0, jnp.asarray(True), jnp.asarray(False), inf,
                     jnp.asarray(1.0), stats0)
    )
    if with_stats:
        return z, jnp.maximum(res, distance), it, stats
    return z, jnp.maximum(res, distance), it


def _relax_bosons_bdf(model: Model, y, t, span: float = 1e6):
    """The dynamic baths' block relaxed at fixed n: a starting point for the full Newton
    (bosons at their reservoir are far from the state the quasiparticles impose when
    exchange beats escape, and the full Newton from there fails).

    The boson block's own dynamics at fixed n, integrated in ln N with the BDF over `span`
    [hbar/(k_B T_c)] (steps grow geometrically: a few hundred). At low temperature the
    boson occupations span 100 decades and depend on their neighbours through the
    ln-interpolated event occupations (kinetics' beta = ln(1 + 1/N)): Newton steps from the
    reservoir overshoot by decades and diverge (measured at T = 0.17 T_c: a plain Newton in
    N clipped occupations to 0, then diverged; one in ln N oscillated), while this
    dissipative block relaxes."""
    nn = model.grid.n
    n = y[:nn]

    def state(zb):
        return jnp.concatenate([n, jnp.exp(jnp.maximum(zb, Z_FLOOR))])

    def fun(s, zb):
        yy = state(zb)
        return model.rhs(t, yy)[nn:] / yy[nn:]

    def jac(s, zb):
        yy = state(zb)
        d = yy[nn:]
        return model.boson_jacobian(t, yy) * (d[None, :] / d[:, None]) - jnp.diag(fun(s, zb))

    zb0 = jnp.log(jnp.maximum(y[nn:], N_FLOOR))
    sol = bdf_solve(fun, jac, 0.0, span, zb0, jnp.array([0.0, span]), rtol=1e-6, atol=1e-6,
                    max_steps=5000, error_scale=lambda zb: jnp.full_like(zb, 1e-6))
    zb = sol.ys[-1]
    ok = jnp.all(jnp.isfinite(zb))
    return jnp.where(ok, state(zb), y)


def _relax_bosons_newton(model: Model, y, t, iters: int = 8):
    """Newton on the dynamic baths' block at fixed n, in N (negative steps clipped to the
    floor): converges in a few steps where the block is nearly linear (fast escape)."""
    nn = model.grid.n

    def body(i, y):
        f = model.rhs(t, y)[nn:]
        step = jnp.linalg.solve(model.boson_jacobian(t, y), -f)
        new = jnp.maximum(y[nn:] + step, N_FLOOR)
        return y.at[nn:].set(jnp.where(jnp.all(jnp.isfinite(new)), new, y[nn:]))

    return jax.lax.fori_loop(0, iters, body, y)


def _boson_residual(model: Model, y, t):
    """max over the boson nodes of |dN/dt| / (N |J_ii|) (relative, Jacobi)."""
    nn = model.grid.n
    f = model.rhs(t, y)[nn:]
    d = jnp.abs(jnp.diagonal(model.boson_jacobian(t, y)))
    r = jnp.max(jnp.abs(f) / (y[nn:] * jnp.maximum(d, 1e-300)))
    return jnp.where(jnp.isfinite(r), r, jnp.inf)


def _relax_bosons(model: Model, y, t):
    """The dynamic baths' block relaxed at fixed n (the start of the full Newton): Newton
    in N (fast where the block is nearly linear: fast escape, high temperature) and the
    BDF in ln N (robust where occupations span 100 decades), or no change: whichever
    leaves the smallest relative residual."""
    candidates = (y, _relax_bosons_newton(model, y, t), _relax_bosons_bdf(model, y, t))
    res = jnp.stack([_boson_residual(model, c, t) for c in candidates])
    return jnp.stack(candidates)[jnp.argmin(res)]


def scaled_model(model: Model, s):
    """The model with every bath's coupling multiplied by s (for continuation)."""
    return eqx.tree_at(lambda m: m.baths, model, tuple(b.scaled(s) for b in model.baths))


def _start_residual(model: Model, y, t):
    """The relative residual of ``_newton`` at y (max |F| tau over all components)."""
    z = to_z(model, y)
    f = z_rhs(model, t, z)
    r = jnp.max(jnp.abs(f) * _relaxation_times(model, scaled_jacobian(model, t, z)))
    return jnp.where(jnp.isfinite(r), r, jnp.inf)


def steady_start(model: Model, start: str, t, tol, max_iter, linear_solver: str = "dense"):
    """The starting state of the Newton iteration (traceable).

    - "perturbative" (with tau_in): n_F + tau_in I[n_F], clipped to [0, 1];
    - "thermal" (or no tau_in): n_F at Delta_0;
    - a model with dynamic baths and start "perturbative": the steady state of its static
      version (bosons fixed at their reservoirs), first Newton stage, or the thermal
      state, whichever is nearer the root after the bosons are relaxed;
    then, with dynamic baths, the bosons relaxed at fixed n (a Newton on their block alone:
    bosons at their reservoir are far from what the quasiparticles impose when exchange
    beats escape, and the full Newton from there fails).
    """
    if model.dynamic and start == "perturbative":
        static = model.static_version()
        n = steady_core(static, steady_start(static, start, t, tol, max_iter, linear_solver),
                        t, tol, max_iter, linear_solver)
        static_start = _relax_bosons(model, model.join(n["y"], model.boson_state(t)), t)
        thermal_start = _relax_bosons(model, model.initial_state(t), t)
        # whichever is nearer the root in the relative residual of _newton: from the static
        # steady state the quasiparticle tail can sit far below what the dynamic bosons give
        # (measured: a photon node relaxed to 1e-231 that Newton then climbed 5 decades per
        # iteration), from the thermal state the bosons can sit far from the static one
        res = jnp.stack([_start_residual(model, c, t) for c in (static_start, thermal_start)])
        return jnp.where(res[0] <= res[1], static_start, thermal_start)
    elif start == "perturbative" and model.tau_in is not None:
        nf = model.thermal_state()
        dn = perturbative_delta_n(model, t)
        # where delta n < 0 it may exceed n_F (a non-perturbative tail, e.g. fast phonon
        # emission at high energy): n_F e^{dn/n_F}, equal to first order and positive, and
        # at most a factor e^5 below n_F (the true tail is a balance of rates, not
        # e^{-500} n_F; Newton corrects the rest)
        ratio = dn / jnp.maximum(nf, 1e-300)
        n = jnp.where(dn >= 0, nf + dn, nf * jnp.exp(jnp.maximum(ratio, -5.0)))
        y0 = model.join(jnp.minimum(n, 1.0), model.boson_state(t))
    else:
        y0 = model.initial_state(t)
    if model.dynamic:
        y0 = _relax_bosons(model, y0, t)
    return y0


def linear_kind(model: Model, linear_solver: str) -> str:
    """The Newton's linear solver for this model: "dense" (LU), "krylov" (GMRES with the
    structured matrix) or "krylov-jvp" (GMRES, matrix-free products); "auto" is "dense"
    below ``KRYLOV["auto_size"]`` state variables and "krylov" from there on (measured
    crossover, see ``_options.KRYLOV``)."""
    if linear_solver not in LINEAR_SOLVERS:
        raise ParameterError(
            f"steady_state: linear_solver must be one of {', '.join(map(repr, LINEAR_SOLVERS))}; "
            f"got {linear_solver!r}.")
    if linear_solver == "auto":
        return "krylov" if model.state_size >= KRYLOV["auto_size"] else "dense"
    return linear_solver


def _krylov_options() -> tuple:
    return (KRYLOV["rtol"], KRYLOV["restart"], KRYLOV["max_cycles"])


def steady_core(model: Model, y0, t, tol, max_iter, linear_solver: str = "dense") -> dict:
    """One Newton solve from y0, traceable: the core that single points and sweeps call.

    Returns arrays: ``y`` (the last iterate), ``gap``, ``residual``, ``iterations``,
    ``delta0``; converged when residual <= tol (the larger of the relative residual and the
    relative distance to the root, see ``_newton``). With a Krylov `linear_solver` also
    ``linear``: [GMRES solves, GMRES iterations, solves that did not converge].
    """
    kind = linear_kind(model, linear_solver)
    z, res, it, stats = _newton(model, to_z(model, y0), t, tol, max_iter, kind,
                                _krylov_options(), with_stats=True)
    y = from_z(model, z)
    out = {"y": y, "gap": model.gap(y), "residual": res, "iterations": it,
           "delta0": model.delta0}
    if kind != "dense":
        out["linear"] = stats
    return out


_newton_jit = eqx.filter_jit(_newton)
_start_jit = eqx.filter_jit(steady_start)
_core_jit = eqx.filter_jit(steady_core)
_relax_jit = eqx.filter_jit(_relax_bosons)


def _compares_with_perturbation_theory(model: Model) -> bool:
    # (a gap held fixed has no delta Delta to compare)
    return (model.tau_in is not None and not model.dynamic
            and model.gap_mode == "self_consistent")


@eqx.filter_jit
def _start_and_reference(model: Model, start: str, t, tol, max_iter: int,
                         linear_solver: str = "dense"):
    """The start state and the perturbative delta Delta / Delta_0 beside it, in one program
    (the perturbative start computes the same tau_in I[n_F]: XLA shares it)."""
    y0 = steady_start(model, start, t, tol, max_iter, linear_solver)
    if not _compares_with_perturbation_theory(model):
        return y0, jnp.asarray(jnp.nan)
    first = perturbative_core(model, t)
    return y0, (first["gap"] - first["delta0"]) / first["delta0"]


def continue_steady(model: Model, t, tol, max_iter, steps: int,
                    linear_solver: str = "dense") -> dict:
    """The fallback when Newton fails (shared by single points and sweeps): continuation
    in the coupling, ramped up geometrically from 1e-3 over `steps` stages, each Newton
    solve started from the previous stage's state. Returns the core's outputs, iterations
    summed over the stages."""
    t, tol = jnp.asarray(t, jnp.float64), jnp.asarray(tol, jnp.float64)
    y = model.initial_state(t)
    if model.dynamic:
        y = _relax_jit(model, y, t)
    z = to_z(model, y)
    total = 0
    kind = linear_kind(model, linear_solver)
    stats = np.zeros(3, np.int64)
    for s in np.geomspace(1e-3, 1.0, steps):
        with blas_single_thread():
            z, res, it, st = _newton_jit(scaled_model(model, float(s)), z, t, tol, max_iter,
                                         kind, _krylov_options(), with_stats=True)
        total += int(it)
        stats += np.asarray(st)
    y = from_z(model, z)
    out = {"y": y, "gap": model.gap(y), "residual": res, "iterations": total,
           "delta0": model.delta0}
    if kind != "dense":
        out["linear"] = stats
    return out


def solve_steady(model: Model, y0, t, tol, max_iter, continuation_steps: int,
                 linear_solver: str = "dense") -> tuple[dict, int]:
    """Newton from y0 and, when it fails, the continuation fallback: the whole recipe of a
    steady state, for single points and sweeps alike. Returns (outputs as numpy, stages)."""
    t, tol = jnp.asarray(t, jnp.float64), jnp.asarray(tol, jnp.float64)
    with blas_single_thread():  # XLA's LU calls OpenBLAS: keep it off XLA's cores
        out = _core_jit(model, y0, t, tol, max_iter, linear_solver)
    stages = 1
    if "linear" in out and not float(out["residual"]) <= float(tol):
        # the Krylov Newton failed (e.g. GMRES did not converge even on the short pseudo
        # time steps): the dense LU from the same start, before any continuation
        krylov = np.asarray(out["linear"])
        with blas_single_thread():
            out = dict(_core_jit(model, y0, t, tol, max_iter, "dense"))
        out["linear"], out["dense_rerun"] = krylov, 1
    if not float(out["residual"]) <= float(tol) and continuation_steps > 0:
        out = continue_steady(model, t, tol, max_iter, continuation_steps, linear_solver)
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
    linear_solver: str = KRYLOV["linear_solver"],
    throw: bool = True,
    max_memory_gb: float | None = None,
    config: dict | None = None,
) -> xr.Dataset:
    """Steady state of the kinetic equation with a self-consistent gap.

    **Main arguments:**

    - `model`: the physical situation (time-dependent parameters are frozen at `t`).
    - `start`: "perturbative" (n_F + tau_in I[n_F], needs tau_in) or "thermal"
      (see ``steady_start``).
    - `method`: "newton" (Newton with the structured Jacobian, globalized by
      pseudo-transient continuation, see ``_newton``; when it fails, continuation in
      the coupling: the couplings are ramped up
      geometrically over `continuation_steps` stages, each started from the
      previous solution) or "integrate" (diffrax Kvaerno5 until the right-hand
      side is steady, a cross-check).

    **Other arguments:**

    - `n0`: explicit initial guess (overrides `start`): n, the full state y with dynamic
      baths, or a dataset of an earlier run (its last state). Bosons not given start at
      their reservoir and are first relaxed at fixed n (a Newton on their block alone).
    - `tol`: relative tolerance, the same for n and the bosons' N at any temperature:
      both the residual max_i |dy_i/dt| tau_i / y_i (tau_i = 1 / |J_ii| the occupation's
      own relaxation time) and the distance to the root (the next Newton step, max_i
      |dy_i| / y_i) must be below it (``_newton``). Newton works in z = ln(n / (1 - n))
      and ln N, so no occupation can leave (0, 1) (resp. become negative).
    - `max_iter`: iterations per stage (each a Newton or a pseudo-time step).
    - `solver`: the diffrax solver for ``method="integrate"`` (see `evolve`).
    - `linear_solver`: the Newton's linear solves: "dense" (LU of the structured
      Jacobian, 2 N^3 / 3 flops), "krylov" (Jacobi-scaled GMRES with products of the
      structured Jacobian, O(N^2) each, no LU: a GMRES solve that does not converge
      within ``KRYLOV["restart"] x KRYLOV["max_cycles"]`` iterations rejects its trial
      step, and a Newton that fails is redone with the dense LU), "krylov-jvp" (the same
      with matrix-free products, ``solvers._krylov``), or "auto" (default: "dense" below
      ``KRYLOV["auto_size"]`` variables, else "krylov"). The dataset's
      ``solver.gmres_iterations``, ``solver.gmres_failures`` and ``solver.dense_rerun``
      report the Krylov work.
    - `max_memory_gb`: refuse (``ResourceError``, before any work) a solve whose
      estimated memory exceeds this (default: 80 % of the memory available now).
    - `throw`: raise `SolverError` (reason "not_converged", the last iterate in its
      ``partial``) when the tolerance is not reached; with False return that dataset,
      marked ``solver.status = "failed"``.

    The dataset's attributes ``solver.residual``, ``solver.iterations`` and
    ``solver.status`` report the outcome.
    """
    if start not in ("perturbative", "thermal"):
        raise ParameterError(
            f"steady_state: start must be 'perturbative' or 'thermal'; got {start!r}.")
    if method not in ("newton", "integrate"):
        raise ParameterError(
            f"steady_state: method must be 'newton' or 'integrate'; got {method!r}.")
    if not (np.isfinite(tol) and tol > 0):
        raise ParameterError(f"steady_state: tol must be > 0; got {tol!r}.")
    implicit = sorted(set(DIFFRAX_SOLVERS) - EXPLICIT)
    if method == "integrate" and solver not in implicit:
        raise ParameterError(
            f"steady_state: solver must be one of {implicit} for method='integrate' (an "
            f"implicit diffrax solver: it integrates the log-odds of the occupations, whose "
            f"tiny ones make explicit steps crawl); got {solver!r}."
        )
    kind = linear_kind(model, linear_solver)
    if method == "newton" and linear_solver in ("krylov", "krylov-jvp"):
        # the Krylov path holds ~2-3 N x N arrays (the structured Jacobian while it is
        # built, no LU unless GMRES fails; benchmarks/krylov.py) and factors nothing
        # (_resources: 3 arrays, no LU time), not the dense Newton's 11. ("auto" keeps
        # the dense estimate: a fallback LU may need it; asked explicitly, the Krylov
        # path runs N = 16000 on a 24 GB machine.)
        check_resources(model, "steady", max_memory_gb=max_memory_gb, what="steady_state",
                        linear_solver=linear_solver)
    else:
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
            y0, reference = _start_and_reference(model, start, t_arr, tol_arr, max_iter, kind)
    clock = _time.perf_counter()
    if method == "integrate":
        n, res, iters, stages = _integrate_to_steady(model, y0, t, tol, solver)
    else:
        out, stages = solve_steady(model, y0, t_arr, tol_arr, max_iter, continuation_steps,
                                   kind)
        n, res, iters = out["y"], out["residual"], out["iterations"]
        linear = out.get("linear")
    wall = _time.perf_counter() - clock
    res = float(res)
    problem = physical_problem(model, n)
    ok = res <= tol and not problem
    gap = float(model.gap(jnp.asarray(n)))
    info = {
        "name": method if method == "newton" else f"integrate ({solver})",
        "start": start if n0 is None else "given",
        "tol": tol,
        "residual": res,
        "iterations": int(iters),
        "continuation_stages": stages,
        "status": "success" if ok else "failed",
        "message": "success" if ok else (problem or f"residual {res:.3g} > tol {tol:g}"),
        "wall_time_s": wall,
        "time_parameters_frozen_at": t,
    }
    if method == "newton":
        info["linear_solver"] = kind
        if kind != "dense" and linear is not None:
            info["gmres_solves"] = int(linear[0])
            info["gmres_iterations"] = int(linear[1])
            info["gmres_failures"] = int(linear[2])
            info["dense_rerun"] = int(out.get("dense_rerun", 0))
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
    if problem and throw:
        raise SolverError(f"steady_state: {problem}. The state is in the partial result.",
                          partial=ds, reason="unphysical")
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
    """Integrate the solver variables until the residual of ``_newton`` is below tol/2
    (relative rates times each occupation's relaxation time at the start)."""
    z0 = to_z(model, jnp.asarray(y0))
    tau = _relaxation_times_jit(model, z0, t)
    sol = _integrate(model, z0, t, tau, tol, solver)
    z = sol.ys[-1]
    f = z_rhs(model, t, z)
    res = float(jnp.max(_residuals(model, z, f, tau)))
    return from_z(model, z), res, int(sol.stats["num_steps"]), 1


@eqx.filter_jit
def _relaxation_times_jit(model, z, t):
    return _relaxation_times(model, scaled_jacobian(model, t, z))


@eqx.filter_jit
def _integrate(model, z0, t, tau, tol, solver):
    field = lambda s, z, args: z_rhs(model, t, z)  # noqa: E731

    def steady(t_, z, args, **kwargs):
        f = z_rhs(model, t, z)
        return jnp.max(_residuals(model, z, f, tau)) < 0.5 * tol

    return diffrax.diffeqsolve(
        diffrax.ODETerm(field),
        DIFFRAX_SOLVERS[solver](),
        t0=0.0,
        t1=jnp.inf,
        dt0=None,
        y0=z0,
        saveat=diffrax.SaveAt(t1=True),
        stepsize_controller=diffrax.PIDController(rtol=0.0, atol=1e-10),
        event=diffrax.Event(steady),
        max_steps=100_000,
        throw=False,
    )

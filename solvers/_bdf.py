"""Variable-order BDF integrator that keeps its Jacobian and LU across steps.

Why it exists: diffrax's implicit solvers (Kvaerno, ESDIRK with a chord iteration)
build one Jacobian and one LU per step attempt. On the stiff problems of this
project (phonon baths, |lambda|_max T ~ 1e5) a Jacobian costs several right-hand
sides and an LU O(N^3), and that cost per step made Kvaerno5 ~8x slower than
SUNDIALS CVODE, which reuses both over many steps (benchmarks/README.md). This
module is the same class of method as CVODE's BDF, inside one compiled
``lax.while_loop`` (no host round trip per step, same code on CPU and GPU).

The method is the variable-order (1-5), quasi-constant step size NDF/BDF of
Shampine & Reichelt (SIAM J. Sci. Comput. 18, 1 (1997); MATLAB's ode15s), in the
form of ``scipy.integrate.BDF`` (backward differences D, Newton on the corrector
with the modified-Newton matrix I - c J, c = h / alpha_k), written again here for
JAX. Its reuse policy:

- the Jacobian J is kept from step to step; it is re-evaluated only when the
  Newton iteration fails to converge with a J that is not fresh (then the same
  step is retried), and a failure with a fresh J halves the step (scipy, CVODE);
- by default (``reuse=True``, CVODE's rules) the LU of I - c J is kept while c stays
  within 30% of the c it was built for, and step size and order change only when the
  step can grow 1.5x; with ``reuse=False`` (scipy's rules) the LU is rebuilt whenever
  the step size changes, which happens only after k + 1 equal steps at order k, on a
  convergence failure or at a stop; an error-test rejection keeps it (the Newton
  matrix is only an approximation: a slightly wrong c slows convergence, it does not
  change the answer).

Tests (tests/test_bdf.py) check it step for step against scipy's BDF (same steps,
function, Jacobian and LU counts on a stiff test problem) and against exact
solutions. Save points are filled by the method's own interpolating polynomial;
parameter jumps stop the integration exactly before the jump and restart it at
order 1 from the jump.
"""

from __future__ import annotations

from collections.abc import Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from kinetics import ParameterError

from ._krylov import gmres
from ._options import KRYLOV, LINEAR_SOLVERS

MAX_ORDER = 5
NEWTON_MAXITER = 4
MIN_FACTOR = 0.2
MAX_FACTOR = 10.0
_ROWS = MAX_ORDER + 3  # backward differences kept: D^0 ... D^{k+2}
# a stretch ends this far below a jump, relative to max(|jump|, t1 - t0); callers
# pass only jumps farther than that from t0, t1 and each other (``interior_jumps``)
JUMP_MARGIN = 4.0 * np.finfo(np.float64).eps

# NDF coefficients (Shampine & Reichelt 1997, table 1): kappa_k, gamma_k = sum 1/j,
# alpha_k = (1 - kappa_k) gamma_k, error constant kappa_k gamma_k + 1/(k+1)
_KAPPA = np.array([0.0, -0.1850, -1.0 / 9.0, -0.0823, -0.0415, 0.0])
_GAMMA = np.hstack((0.0, np.cumsum(1.0 / np.arange(1, MAX_ORDER + 1))))
_ALPHA = (1.0 - _KAPPA) * _GAMMA
_ERROR_CONST = _KAPPA * _GAMMA + 1.0 / np.arange(1, MAX_ORDER + 2)
_GAMMA_ROWS = np.pad(_GAMMA, (0, _ROWS - MAX_ORDER - 1))  # gamma_k for each row of D


def _rms(x):
    return jnp.sqrt(jnp.mean(x * x))


def _compute_r(order, factor):
    """scipy's compute_R at the full size MAX_ORDER + 1; its top-left (order+1) block is
    the matrix of that order (the cumulative product only runs down the rows)."""
    i = jnp.arange(1, MAX_ORDER + 1, dtype=jnp.float64)[:, None]
    j = jnp.arange(1, MAX_ORDER + 1, dtype=jnp.float64)[None, :]
    m = jnp.zeros((MAX_ORDER + 1, MAX_ORDER + 1)).at[0].set(1.0)
    m = m.at[1:, 1:].set((i - 1.0 - factor * j) / i)
    return jnp.cumprod(m, axis=0)


def _change_d(d, order, factor):
    """Rescale the differences of the interpolating polynomial to step size h * factor."""
    k = jnp.arange(MAX_ORDER + 1)
    keep = k <= order
    r = _compute_r(order, factor) * keep[None, :]
    u = _compute_r(order, 1.0) * keep[:, None]
    ru = r @ u
    a = jnp.where(keep[:, None] & keep[None, :], ru.T, jnp.eye(MAX_ORDER + 1))
    return d.at[: MAX_ORDER + 1].set(a @ d[: MAX_ORDER + 1])


def _update_differences(d, order, dy):
    """After an accepted step with correction dy (= D^{k+1} y_n): the new differences."""
    d = d.at[order + 2].set(dy - d[order + 1])
    d = d.at[order + 1].set(dy)
    i = jnp.arange(_ROWS)[:, None]
    j = jnp.arange(_ROWS)[None, :]
    # D^i += D^{i+1} for i = order ... 0, i.e. D^i <- sum_{j = i}^{order + 1} D^j
    tri = ((i <= order) & (j >= i) & (j <= order + 1)) | ((i > order) & (i == j))
    return tri.astype(d.dtype) @ d


def _interpolate(d, order, t_new, h, t):
    """The step's interpolating polynomial at t in [t_new - h, t_new] (Newton form)."""
    m = jnp.arange(MAX_ORDER, dtype=jnp.float64)
    x = (t - (t_new - h * m)) / (h * (1.0 + m))
    p = jnp.cumprod(x) * (jnp.arange(1, MAX_ORDER + 1) <= order)
    return d[0] + p @ d[1 : MAX_ORDER + 1]


# tries of the initial step's trial Euler step, each 100x shorter than the last
_TRIAL_SHRINKS = 8


def _initial_step(fun, t0, y0, f0, span, error_scale):
    """scipy's select_initial_step for order 1 (Hairer, Norsett & Wanner II.4), with its
    trial Euler step shortened until the right-hand side is finite there.

    Why the shortening: the guess h0 = 0.01 |y0| / |f0| assumes |y0| is a scale of y. For
    the solvers' log-odds z it is not (|z| ~ 30 at low temperature, against weights
    ~1e-8): at 0.25 T_c under a drive the guess was h0 = 19, the trial step moved z by
    3000, n reached 1, the rhs was infinite, and h = sqrt(0.01 / inf) = 0 stopped the run
    before its first step."""
    scale = error_scale(y0)
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / jnp.where(d1 > 0, d1, 1.0))
    h0 = jnp.minimum(h0, span)

    def trial(c):
        k, h, _ = c
        h = jnp.where(k > 0, 0.01 * h, h)
        return k + 1, h, fun(t0 + h, y0 + h * f0)

    def bad(c):
        k, _, f1 = c
        return (k == 0) | ((k <= _TRIAL_SHRINKS) & ~jnp.all(jnp.isfinite(f1)))

    _, h0, f1 = jax.lax.while_loop(bad, trial, (0, h0, f0))
    d2 = _rms((f1 - f0) / scale) / h0
    big = jnp.maximum(d1, d2)
    h1 = jnp.where(
        (d1 <= 1e-15) & (d2 <= 1e-15),
        jnp.maximum(1e-6, h0 * 1e-3),
        jnp.sqrt(0.01 / jnp.where(big > 0, big, 1.0)),
    )
    return jnp.minimum(jnp.minimum(100.0 * h0, h1), span)


def interior_jumps(jumps, t0: float, t1: float) -> tuple[float, ...]:
    """The jumps strictly inside (t0, t1), sorted, without any within a few rounding
    units of t0, t1 or the previous jump (there a restart would step by ~0)."""
    out: list[float] = []
    for j in sorted(float(x) for x in jumps):
        close = 16.0 * JUMP_MARGIN * max(abs(j), abs(t1 - t0), 1e-300)
        if t0 + close < j < t1 - close and (not out or j - out[-1] > close):
            out.append(j)
    return tuple(out)


def linear_solver_of(model, solver: str, linear_solver: str) -> str:
    """The BDF's linear solver for ``evolve(solver=..., linear_solver=...)``: "dense" or
    "krylov" ("dense" for every solver but "bdf"); "auto" is "krylov" from
    ``KRYLOV["bdf_auto_size"]`` state variables on. ("krylov-jvp", matrix-free
    products, is a steady-state option only.)"""
    if linear_solver not in LINEAR_SOLVERS or linear_solver == "krylov-jvp":
        raise ParameterError(
            f"evolve: linear_solver must be one of 'auto', 'dense', 'krylov'; "
            f"got {linear_solver!r}.")
    if solver != "bdf":
        return "dense"
    if linear_solver == "auto":
        return "krylov" if model.state_size >= KRYLOV["bdf_auto_size"] else "dense"
    return linear_solver


def bdf_krylov_options() -> tuple:
    """(rtol, restart, max_cycles, max_failures) of ``bdf_solve``'s Krylov path."""
    return (KRYLOV["bdf_rtol"], KRYLOV["bdf_restart"], KRYLOV["bdf_max_cycles"],
            KRYLOV["bdf_max_failures"])


class BDFSolution(eqx.Module):
    """What ``bdf_solve`` returns: save-point states ``ys`` (NaN rows where the run did
    not get to), a diffrax ``RESULTS`` value ``result``, and counters ``stats``."""

    ys: jax.Array
    result: diffrax.RESULTS
    stats: dict


def bdf_solve(
    fun: Callable,
    jac: Callable,
    t0,
    t1,
    y0,
    ts,
    *,
    rtol: float,
    atol: float,
    max_steps: int,
    jumps=(),
    progress_meter=None,
    reuse: bool = True,
    error_scale: Callable | None = None,
    linear_solver: str = "dense",
    krylov: tuple = (1e-6, 20, 2, 8),
    jac_into: Callable | None = None,
) -> BDFSolution:
    """Integrate y' = fun(t, y) from t0 to t1 >= t0, saving at ``ts`` (ts[0] = t0).

    **Arguments:**

    - `fun(t, y)`: the right-hand side; `jac(t, y)`: its dense Jacobian (N x N).
    - `rtol`, `atol`: the local error of each step, in the rms norm weighted by
      atol + rtol |y| (as scipy and CVODE), must stay below 1.
    - `error_scale(y)`: the weights of that norm instead (per component); the solvers
      integrate log-odds of occupations and weigh their errors as occupations
      (``solvers._occupations``).
    - `max_steps`: bound on step attempts (accepted + rejected).
    - `jumps`: increasing times in (t0, t1) where the right-hand side is discontinuous
      (see ``interior_jumps``): the integration stops just before each (a relative
      4 eps below it) and restarts at it at order 1.
    - `progress_meter`: a diffrax progress meter (default: none).
    - `reuse`: CVODE's economies on top of scipy's method (default). The LU of
      I - c J is kept while c = h / alpha_k stays within 30% of the c it was built
      with (the Newton correction is then scaled by 2 / (1 + c / c_LU), as CVODE
      does); after k + 1 equal steps the step size and order change only if the
      step can grow by at least 1.5x (CVODE's threshold: a smaller change would
      cost an LU for little); a Newton iteration may stop after its first pass when
      the convergence rate of the previous step says it is converged, to CVODE's
      tolerance (3% of the local error allowed, not scipy's sqrt(rtol)); the
      Jacobian is refreshed after a jump. With False, the iteration is scipy's
      ``BDF`` step for step (tests/test_bdf.py).
    - `linear_solver`: "dense" (the LU of I - c J, kept while it serves) or "krylov":
      each Newton system (I - c J) dy = r solved by Jacobi-scaled restarted GMRES
      (``_krylov.gmres``) with products by the stored J, at the attempt's own c (so no
      LU, no c window and no correction factor; the Jacobian is still kept across
      steps and refreshed by the same rules). Memory: J and O(N restart), no LU.
      A solve that does not converge counts as a diverged Newton iteration (a fresh
      Jacobian, then a halved step, whose system is closer to the identity).
    - `jac_into(t, y, old)`: optional, the same Jacobian as `jac` written into the buffer
      of `old` (the Jacobian it replaces; its values are ignored): the refreshes inside
      the loop use it, so that the run holds one N x N Jacobian, not the old one and the
      new one side by side (``solvers._evolve.z_jacobian_into``).
    - `krylov`: (rtol, restart, max_cycles, max_failures) of the Krylov path: GMRES
      stops at ||r - A dy||_2 <= rtol ||r||_2 of the Jacobi-scaled system (the modified
      Newton converges to the corrector's root whatever the solves' accuracy; rtol only
      sets its contraction); after `max_failures` solves that did not converge the run
      stops (result ``nonlinear_divergence``, stat gmres_gave_up = 1) so that the caller
      can redo it with the dense LU (``solvers.evolve`` does).

    Traceable (jit, vmap). Stats: num_steps (attempts), num_accepted_steps,
    num_rejected_steps, num_rhs, num_jacobian, num_lu; with "krylov" also
    gmres_solves, gmres_iterations, gmres_failures and gmres_gave_up (num_lu then
    counts the Jacobian's uses, no factorization).
    """
    if linear_solver not in ("dense", "krylov"):
        raise ValueError(f"bdf_solve: linear_solver must be 'dense' or 'krylov'; "
                         f"got {linear_solver!r}")
    use_krylov = linear_solver == "krylov"
    k_rtol, k_restart, k_cycles, k_max_failures = krylov
    meter = diffrax.NoProgressMeter() if progress_meter is None else progress_meter
    if error_scale is None:
        def error_scale(y):
            return atol + rtol * jnp.abs(y)
    t0 = jnp.asarray(t0, dtype=jnp.float64)
    t1 = jnp.asarray(t1, dtype=jnp.float64)
    ts = jnp.asarray(ts, dtype=jnp.float64)
    y0 = jnp.asarray(y0, dtype=jnp.float64)
    n = y0.shape[0]
    jumps = jnp.asarray(jumps, dtype=jnp.float64).reshape(-1)
    n_jumps = jumps.shape[0]
    stops = jnp.concatenate([jumps, t1[None]])
    span = t1 - t0
    eye = None if use_krylov else jnp.eye(n, dtype=jnp.float64)
    if reuse:
        # CVODE's convergence test (nlscoef 0.1 of the error-test tolerance) in scipy's
        # terms: the corrector's remaining error is at most 3% of the local error the
        # error test allows (error_norm <= 1 in the same norm). scipy's sqrt(rtol) (1e-4
        # at rtol 1e-8) forces second Newton passes and, in regime (a), Jacobian
        # refreshes: measured 217 -> 166 rhs, 7 -> 1 Jacobians, same answer to 3e-7
        newton_tol = 0.03
    else:
        newton_tol = max(10.0 * np.finfo(np.float64).eps / rtol, min(0.03, rtol**0.5))
    gamma, alpha, error_const = (jnp.asarray(a) for a in (_GAMMA_ROWS, _ALPHA, _ERROR_CONST))

    def newton(t_new, y_predict, c, psi, lu, scale, correction, rate_guess):
        """Modified Newton on the corrector (scipy's solve_bdf_system). `correction`
        scales each step (an LU built for another c); `rate_guess` is the convergence
        rate assumed for the first pass (>= 1: the first pass never converges)."""

        def cond(s):
            k, _, _, _, converged, diverged, _, _ = s
            return (k < NEWTON_MAXITER) & ~converged & ~diverged

        def body(s):
            k, y, d, dy_norm_old, _, _, _, lin = s
            f = fun(t_new, y)
            if use_krylov:
                dy, lin = krylov_solve(lu, c, c * f - psi - d, lin)
            else:
                dy = correction * jsl.lu_solve(lu, c * f - psi - d)
            dy_norm = _rms(dy / scale)
            has_rate = k > 0
            rate = jnp.where(has_rate, dy_norm / dy_norm_old, rate_guess)
            diverged = (~jnp.all(jnp.isfinite(f))) | ~jnp.isfinite(dy_norm)
            diverged = diverged | (
                has_rate
                & (
                    (rate >= 1.0)
                    | (rate ** (NEWTON_MAXITER - k) / (1.0 - rate) * dy_norm > newton_tol)
                )
            )
            y = jnp.where(diverged, y, y + dy)
            d = jnp.where(diverged, d, d + dy)
            converged = ~diverged & (
                (dy_norm == 0.0) | ((rate < 1.0) & (rate / (1.0 - rate) * dy_norm < newton_tol))
            )
            return (k + 1, y, d, dy_norm, converged, diverged,
                    jnp.where(has_rate, rate, jnp.nan), lin)

        inf = jnp.asarray(jnp.inf)
        init = (0, y_predict, jnp.zeros_like(y_predict), inf, False, False, jnp.asarray(jnp.nan),
                jnp.zeros((3,), jnp.int32))
        k, y, d, _, converged, _, rate, lin = jax.lax.while_loop(cond, body, init)
        return converged, k, y, d, rate, lin

    def krylov_solve(system, c, r, lin):
        """(I - c J) dy = r by Jacobi-scaled GMRES; `system` = (J, diag J). A solve that
        does not converge returns NaN (the Newton reads it as divergence). `lin` counts
        [solves, iterations, failures]."""
        jmat, jdiag = system
        a_diag = 1.0 - c * jdiag
        p = 1.0 / jnp.where(a_diag != 0.0, a_diag, 1.0)

        def matvec(u):
            return p * (u - c * (jmat @ u))

        dy, its, ok, _ = gmres(matvec, p * r, rtol=k_rtol, restart=k_restart,
                               max_cycles=k_cycles)
        dy = jnp.where(ok, dy, jnp.nan)
        return dy, lin + jnp.stack([1, its, (~ok).astype(jnp.int32)]).astype(jnp.int32)

    def start_differences(t, y, t_end):
        """Order-1 history at (t, y): D^0 = y, D^1 = h f, with scipy's first step."""
        f = fun(t, y)
        h = _initial_step(fun, t, y, f, t_end - t, error_scale)
        d = jnp.zeros((_ROWS, n)).at[0].set(y).at[1].set(h * f)
        return d, h

    def t_stop_of(k):
        # stop just below a jump (its own value belongs to the next stretch); not at the
        # float below it: below a jump at 0 that is a denormal, which XLA flushes to 0
        s = stops[k]
        return jnp.where(k < n_jumps, s - JUMP_MARGIN * jnp.maximum(jnp.abs(s), span), s)

    def next_step(s):
        """The next attempt's end t_new, step h and c = h / alpha_k, the step shortened
        onto the next stop (cross) where it would pass it (scalars only)."""
        t, h = s["t"], s["h"]
        t_stop = t_stop_of(s["stop"])
        cross = t + h > t_stop
        t_new = jnp.where(cross, t_stop, t + h)
        return t_new, t_new - t, (t_new - t) / alpha[s["order"]], cross

    def prepare(s):
        """The next attempt: next_step, with the differences rescaled to the shortened
        step and the predictor."""
        d, order = s["d"], s["order"]
        t_new, h, c, cross = next_step(s)
        d = jnp.where(cross, _change_d(d, order, h / s["h"]), d)
        k = jnp.arange(_ROWS)
        y_predict = jnp.sum(jnp.where((k <= order)[:, None], d, 0.0), axis=0)
        return d, t_new, h, y_predict, c, cross

    d_init, h_init = start_differences(t0, y0, t_stop_of(0))
    state = dict(
        t=t0,
        d=d_init,
        h=h_init,
        order=jnp.asarray(1),
        n_equal=jnp.asarray(0),
        c_lu=jnp.asarray(1.0),
        need_lu=jnp.asarray(True),  # the LU must be rebuilt before the next attempt
        fresh=jnp.asarray(False),  # the LU was just built: the next attempt uses it
        rate=jnp.asarray(1.0),  # the last Newton convergence rate (reuse only)
        jac_current=jnp.asarray(False),
        need_jac=jnp.asarray(False),
        restart=jnp.asarray(False),  # a jump was reached: restart before the next step
        stop=jnp.asarray(0),
        save=jnp.asarray(1),
        ys=jnp.full((ts.shape[0], n), jnp.nan).at[0].set(y0),
        status=jnp.asarray(0),  # 0 running/ok, 1 step size too small
        attempts=jnp.asarray(0),
        accepted=jnp.asarray(0),
        rejected=jnp.asarray(0),
        nfev=jnp.asarray(2),
        njev=jnp.asarray(1),
        nlu=jnp.asarray(0),
        lin=jnp.zeros((3,), jnp.int32),  # GMRES solves, iterations, failures (krylov)
        meter=meter.init(),
    )

    def running(s):
        return (s["status"] == 0) & (s["t"] < t1) & (s["attempts"] < max_steps)

    def lu_serves(s):
        """Whether the current LU may be used for the next attempt."""
        if use_krylov:  # (no factorization: every attempt solves at its own c)
            return s["fresh"] | ~s["need_lu"]
        _, _, c, cross = next_step(s)
        if reuse:  # an LU for a c within 30% serves (CVODE's dgmax)
            ok = jnp.abs(c / s["c_lu"] - 1.0) <= 0.3
        else:  # scipy: a new LU whenever the step is shortened onto a stop
            ok = ~cross
        return s["fresh"] | (~s["need_lu"] & ok)

    def attempt(s, lu):
        """One step attempt with a fixed LU (closed over, not carried)."""
        order = s["order"]
        d, t_new, h, y_predict, c, cross = prepare(s)
        n_equal = jnp.where(cross, 0, s["n_equal"])
        k = jnp.arange(_ROWS)
        scale = error_scale(y_predict)
        psi = jnp.where((k >= 1) & (k <= order), gamma, 0.0) @ d / alpha[order]
        jac_current = s["jac_current"]
        c_lu = s["c_lu"]
        if reuse:
            correction = 1.0 if use_krylov else 2.0 / (1.0 + c / c_lu)
            rate_guess = jnp.where(s["fresh"], 1.0, s["rate"])
        else:
            correction, rate_guess = 1.0, 1.0
        converged, n_iter, y_new, dy, rate, lin = newton(
            t_new, y_predict, c, psi, lu, scale, correction, rate_guess
        )
        lin = s["lin"] + lin
        # too many GMRES failures: stop (status 2) for a rerun with the dense LU
        gave_up = (lin[2] >= k_max_failures) if use_krylov else False

        safety = 0.9 * (2 * NEWTON_MAXITER + 1) / (2 * NEWTON_MAXITER + n_iter)
        scale_new = error_scale(y_new)
        error_norm = _rms(error_const[order] * dy / scale_new)
        accept = converged & (error_norm <= 1.0)
        retry_jac = ~converged & ~jac_current  # same step again, with a fresh Jacobian
        halve = ~converged & jac_current
        shrink = converged & ~accept
        err_factor = jnp.maximum(MIN_FACTOR, safety * error_norm ** (-1.0 / (order + 1.0)))

        # ---- accepted: new differences, save points, maybe a new order and step
        d_acc = _update_differences(d, order, dy)
        t_stop = t_stop_of(s["stop"])
        at_jump = accept & (t_new == t_stop) & (s["stop"] < n_jumps)
        t_reach = jnp.where(at_jump, stops[s["stop"]], t_new)

        def fill(carry):
            ys, idx = carry
            ti = jnp.minimum(ts[idx], t_new)
            return ys.at[idx].set(_interpolate(d_acc, order, t_new, h, ti)), idx + 1

        def more(carry):
            _, idx = carry
            last = ts.shape[0] - 1
            return accept & (idx <= last) & (ts[jnp.minimum(idx, last)] <= t_reach)

        ys, save = jax.lax.while_loop(more, fill, (s["ys"], s["save"]))

        n_equal_acc = n_equal + 1
        change = accept & (n_equal_acc >= order + 1)
        em = jnp.where(order > 1, _rms(error_const[order - 1] * d_acc[order] / scale_new), jnp.inf)
        ep = jnp.where(
            order < MAX_ORDER,
            _rms(error_const[jnp.minimum(order + 1, MAX_ORDER)] * d_acc[order + 2] / scale_new),
            jnp.inf,
        )
        norms = jnp.stack([em, error_norm, ep])
        factors = norms ** (-1.0 / (order + jnp.arange(3.0)))
        new_order = order + jnp.argmax(factors) - 1
        order_factor = jnp.minimum(MAX_FACTOR, safety * jnp.max(factors))
        if reuse:  # CVODE's THRESH: keep h and k unless the step can grow 1.5x
            change = change & (safety * jnp.max(factors) >= 1.5)

        # ---- the next state
        order_next = jnp.where(change, new_order, order)
        factor = jnp.where(
            halve, 0.5, jnp.where(shrink, err_factor, jnp.where(change, order_factor, 1.0))
        )
        factor = jnp.where(at_jump, 1.0, factor)  # the restart sets the next step
        d_next = jnp.where(accept, d_acc, d)  # (D^0 = y_new after an accepted step)
        d_next = jnp.where(factor != 1.0, _change_d(d_next, order_next, factor), d_next)
        h_next = h * factor
        t_next = jnp.where(accept, t_reach, s["t"])
        # a new LU is forced by scipy's rules, or (reuse) only by a jump / new Jacobian;
        # otherwise `lu_serves` decides from c
        forced = at_jump | retry_jac if reuse else halve | change | at_jump | retry_jac
        meter_state = jax.lax.cond(
            accept,
            lambda m: meter.step(m, (t_next - t0) / jnp.where(span > 0, span, 1.0)),
            lambda m: m,
            s["meter"],
        )
        # at t = 0 the spacing is a denormal that XLA flushes to 0 (a step of 0 would
        # then never stop the run): at least the smallest normal float
        tiny = jnp.maximum(10.0 * jnp.abs(jnp.nextafter(t_next, jnp.inf) - t_next),
                           jnp.finfo(jnp.float64).tiny)
        return s | dict(
            t=t_next,
            d=d_next,
            h=h_next,
            order=order_next,
            n_equal=jnp.where(
                accept,
                jnp.where(change | at_jump, 0, n_equal_acc),
                jnp.where(retry_jac, n_equal, 0),
            ),
            need_lu=forced,
            fresh=jnp.asarray(False),
            rate=jnp.where(jnp.isfinite(rate), jnp.maximum(0.3 * s["rate"], rate), s["rate"])
            if reuse
            else s["rate"],
            jac_current=jac_current & ~accept,
            need_jac=retry_jac | (at_jump & reuse),
            restart=at_jump,
            stop=s["stop"] + at_jump,
            save=save,
            ys=ys,
            # 1: the next step cannot move t; 2: GMRES failed too often (krylov)
            status=jnp.where(gave_up, 2, jnp.where(~at_jump & (h_next < tiny), 1, 0)),
            lin=lin,
            attempts=s["attempts"] + 1,
            accepted=s["accepted"] + accept,
            rejected=s["rejected"] + (halve | shrink),
            nfev=s["nfev"] + n_iter,
            meter=meter_state,
        )

    def factorize(carry):
        """Outer loop: a new Jacobian (when asked for) and LU, then steps while they serve.
        J and LU are constants of the inner loop, so no step copies them."""
        s, jmat = carry

        def restart(s):  # at a jump: order 1 from the state reached, first step anew
            d, h = start_differences(s["t"], s["d"][0], t_stop_of(s["stop"]))
            return s | dict(
                d=d,
                h=h,
                order=jnp.ones_like(s["order"]),
                n_equal=jnp.zeros_like(s["n_equal"]),
                restart=jnp.asarray(False),
                nfev=s["nfev"] + 2,
            )

        # here, not in the step loop: under vmap a lax.cond runs both branches, and the
        # outer loop runs only once per factorization
        s = jax.lax.cond(s["restart"], restart, lambda s: s, s)
        _, t_new, _, y_predict, c, _ = prepare(s)
        need_jac = s["need_jac"]
        if jac_into is None:
            jmat = jax.lax.cond(need_jac, lambda j: jac(t_new, y_predict), lambda j: j, jmat)
        else:
            jmat = jax.lax.cond(need_jac, lambda j: jac_into(t_new, y_predict, j), lambda j: j,
                                jmat)
        lu = (jmat, jnp.diagonal(jmat)) if use_krylov else jsl.lu_factor(eye - c * jmat)
        s = s | dict(
            c_lu=c,
            need_lu=jnp.asarray(False),
            fresh=jnp.asarray(True),
            need_jac=jnp.asarray(False),
            jac_current=s["jac_current"] | need_jac,
            njev=s["njev"] + need_jac,
            nlu=s["nlu"] + 1,
        )
        s = jax.lax.while_loop(lambda s: running(s) & lu_serves(s), lambda s: attempt(s, lu), s)
        return s, jmat

    jac0 = jac(t0, y0) if jac_into is None else jac_into(t0, y0, jnp.zeros((n, n), y0.dtype))
    final, _ = jax.lax.while_loop(lambda carry: running(carry[0]), factorize, (state, jac0))
    meter.close(final["meter"])
    result = diffrax.RESULTS.where(
        final["t"] >= t1,
        diffrax.RESULTS.successful,
        diffrax.RESULTS.where(
            final["status"] == 1,
            diffrax.RESULTS.dt_min_reached,
            diffrax.RESULTS.where(final["status"] == 2, diffrax.RESULTS.nonlinear_divergence,
                                  diffrax.RESULTS.max_steps_reached),
        ),
    )
    stats = {
        "num_steps": final["attempts"],
        "num_accepted_steps": final["accepted"],
        "num_rejected_steps": final["rejected"],
        "num_rhs": final["nfev"],
        "num_jacobian": final["njev"],
        "num_lu": final["nlu"],
    }
    if use_krylov:
        stats |= {"gmres_solves": final["lin"][0], "gmres_iterations": final["lin"][1],
                  "gmres_failures": final["lin"][2],
                  "gmres_gave_up": (final["status"] == 2).astype(jnp.int32)}
    return BDFSolution(final["ys"], result, stats)

"""The BCS gap equation in cutoff-free form (docs/physics.md section 2).

    G(Delta; n) = integral_0^inf dxi [ (1 - 2 n(xi)) / E_xi - tanh(xi / 2) / xi ] = 0    (T_c = 1)

On the grid the integral runs to xi_max; the rest, with n ~ 0 and tanh ~ 1, is
added in closed form: integral_{xi_max}^inf (1/E - 1/xi) dxi
= ln(2 xi_max / (xi_max + sqrt(xi_max^2 + Delta^2))) (about -Delta^2 / (4 xi_max^2)).

``gap(grid, n)`` is the positive root Delta[n] (0 when there is none), found to
machine precision by safeguarded Newton steps in ln(Delta), and differentiable:
its JVP is the implicit-function one, dDelta = -(dG/dn . dn) / (dG/dDelta).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._distributions import fermi
from ._errors import ParameterError
from ._grid import Grid

_DELTA_MIN = 1e-12  # below this the state is taken as normal (Delta = 0)
_DELTA_MAX = 6.0  # far above the T = 0 gap 1.764: the root is always below
_MAXITER = 100


def _tail(grid: Grid, delta):
    xm = grid.xi_max
    return jnp.log(2.0 * xm / (xm + jnp.sqrt(xm * xm + delta * delta)))


def _dtail(grid: Grid, delta):
    xm = grid.xi_max
    r = jnp.sqrt(xm * xm + delta * delta)
    return -delta / (r * (xm + r))


@functools.cache
def _reference_term(grid: Grid) -> float:
    """integral_0^xi_max tanh(xi/2)/xi dxi on the grid (the T_c = 1 normalization)."""
    xi = grid.xi
    f = np.where(xi > 0, np.tanh(xi / 2.0) / np.where(xi > 0, xi, 1.0), 0.5)
    return float(np.sum(grid.weights * f))


def gap_function(grid: Grid, n, delta):
    """G(Delta; n) of docs/physics.md section 2 with its analytic tail [dimensionless].

    - `n`: occupations n(xi_j), shape (grid.n,).
    - `delta`: gap Delta [T_c], scalar.
    """
    e = grid.energies(delta)
    return jnp.sum(jnp.asarray(grid.weights) * (1.0 - 2.0 * n) / e) - _reference_term(
        grid
    ) + _tail(grid, delta)


def gap_function_ddelta(grid: Grid, n, delta):
    """Partial derivative dG/dDelta at fixed n(xi)."""
    e = grid.energies(delta)
    return -jnp.sum(jnp.asarray(grid.weights) * (1.0 - 2.0 * n) * delta / e**3) + _dtail(
        grid, delta
    )


def gap_function_dn(grid: Grid, delta):
    """Gradient dG/dn_j = -2 w_j / E_j (independent of n), shape (grid.n,).

    In the normal state E_0 = 0 and the entry is infinite; it is set to 0 there
    (the gap's derivative is 0 in the normal state anyway), so that no inf * 0
    reaches reverse-mode derivatives.
    """
    e = grid.energies(delta)
    return jnp.where(e > 0, -2.0 * jnp.asarray(grid.weights) / jnp.where(e > 0, e, 1.0), 0.0)


def _decreasing_root(f, df, guess):
    """Root of a function decreasing in Delta on (_DELTA_MIN, _DELTA_MAX), or 0.

    Newton steps in x = ln(Delta), where G is close to linear, kept inside a
    bracket that bisection shrinks; a fixed iteration bound makes it total.
    """
    lo0, hi0 = jnp.log(_DELTA_MIN), jnp.log(_DELTA_MAX)
    has_root = f(jnp.exp(lo0)) > 0

    def body(state):
        x, lo, hi, dx_prev, i = state
        d = jnp.exp(x)
        g = f(d)
        lo = jnp.where(g > 0, x, lo)
        hi = jnp.where(g > 0, hi, x)
        slope = df(d) * d  # dG/dx
        newton = x - g / jnp.where(slope < 0, slope, -1.0)
        ok = (slope < 0) & (newton > lo) & (newton < hi)
        x_new = jnp.where(ok, newton, 0.5 * (lo + hi))
        x_new = jnp.where(g == 0, x, x_new)
        return x_new, lo, hi, x_new - x, i + 1

    def cond(state):
        x, lo, hi, dx, i = state
        return (jnp.abs(dx) > 4e-16 * jnp.maximum(1.0, jnp.abs(x))) & (i < _MAXITER)

    x0 = jnp.clip(jnp.log(jnp.clip(guess, _DELTA_MIN, _DELTA_MAX)), lo0, hi0)
    x, *_ = jax.lax.while_loop(cond, body, (x0, lo0, hi0, jnp.asarray(1.0), 0))
    return jnp.where(has_root, jnp.exp(x), 0.0)


@functools.cache
def _gap_solver(grid: Grid):
    @jax.custom_jvp
    def solve(n, guess):
        return _decreasing_root(
            lambda d: gap_function(grid, n, d),
            lambda d: gap_function_ddelta(grid, n, d),
            jax.lax.stop_gradient(guess),
        )

    @solve.defjvp
    def solve_jvp(primals, tangents):
        n, guess = primals
        dn, _ = tangents
        delta = solve(n, guess)
        dg_dd = gap_function_ddelta(grid, n, delta)
        dg_dn_dot = jnp.sum(gap_function_dn(grid, delta) * dn)
        safe = jnp.where(delta > 0, dg_dd, -1.0)
        return delta, jnp.where(delta > 0, -dg_dn_dot / safe, 0.0)

    return solve


@functools.partial(jax.jit, static_argnums=0)
def gap(grid: Grid, n, guess=1.0):
    """Self-consistent gap Delta[n] [T_c]: the positive root of G(Delta; n), or 0.

    - `n`: occupations on the grid, shape (grid.n,).
    - `guess`: starting value (e.g. the previous gap); it only affects the cost.

    Differentiable in `n` by the implicit-function theorem (docs/physics.md section 8).
    """
    return _gap_solver(grid)(jnp.asarray(n), jnp.asarray(guess, dtype=jnp.float64))


def gap_guess(t):
    """Interpolation formula Delta(T) ~ 1.764 tanh(1.74 sqrt(1/T - 1)) (a few % accurate).

    A cheap starting point for the root finder: the right-hand side must not pay
    for an equilibrium-gap solve at every evaluation.
    """
    x = jnp.sqrt(jnp.clip(1.0 / jnp.maximum(t, 1e-3) - 1.0, 1e-6, None))
    return 1.764 * jnp.tanh(1.74 * x)


@functools.partial(jax.jit, static_argnums=0)
def thermal_distribution(grid: Grid, delta, t):
    """n_F(E_xi / T) on the grid for gap `delta` and temperature `t` [T_c] (t >= 0)."""
    e = grid.energies(delta)
    safe_t = jnp.where(t > 0, t, 1.0)
    return jnp.where(t > 0, fermi(e / safe_t), 0.0)


def equilibrium_gap_function(grid: Grid, delta, t):
    """G_eq(Delta) = G(Delta; n_F(E(Delta)/T)): the gap function of the thermal state."""
    return gap_function(grid, thermal_distribution(grid, delta, t), delta)


def equilibrium_gap_slope(grid: Grid, delta, t):
    """Total derivative d G_eq / d Delta (n_F follows E(Delta)); negative."""
    return jax.grad(equilibrium_gap_function, argnums=1)(grid, delta, t)


_REFERENCE_GRID = Grid(n=3000, xi_max=80.0, core=2.0)


@functools.partial(jax.jit, static_argnums=0)
def equilibrium_gap_on(grid: Grid, t):
    """Equilibrium BCS gap Delta(T) [T_c] as the root of G_eq on `grid` (JAX, traceable)."""
    f = functools.partial(equilibrium_gap_function, grid, t=t)
    return _decreasing_root(
        f, jax.grad(f), jnp.asarray(1.76 * jnp.sqrt(jnp.clip(1.0 - t, 1e-6, 1.0)))
    )


@functools.partial(jax.jit, static_argnums=0)
def _equilibrium_gaps(grid: Grid, ts):
    return jax.vmap(lambda tt: equilibrium_gap_on(grid, tt))(ts)


def equilibrium_gap(t, grid: Grid | None = None):
    """The equilibrium BCS gap Delta(T) in units of T_c, for T in units of T_c.

    Delta(0) = pi exp(-gamma_E) = 1.763877; Delta = 0 for T >= 1. `t` may be a
    scalar or an array; computed on a fine reference grid unless `grid` is given
    (a model uses its own grid, so that its thermal state is an exact fixed point).
    """
    grid = _REFERENCE_GRID if grid is None else grid
    t_arr = np.asarray(t, dtype=np.float64)
    bad = t_arr[~np.isfinite(t_arr) | (t_arr < 0)]
    if bad.size:
        raise ParameterError(
            f"equilibrium_gap: t must be finite and >= 0 [T_c]; got {float(bad.flat[0])!r}."
        )
    out = _equilibrium_gaps(grid, jnp.asarray(t_arr.reshape(-1)))
    out = np.asarray(out).reshape(t_arr.shape)
    return float(out) if out.ndim == 0 else out

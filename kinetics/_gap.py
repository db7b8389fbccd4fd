"""The BCS gap equation in cutoff-free form (docs/physics.md section 2).

    G(Delta; n) = integral_0^inf dxi [ (1 - 2 n(xi)) / E_xi - tanh(xi / 2) / xi ] = 0    (T_c = 1)

On the grid the integral runs to xi_max (trapezoid rule in the grid parameter u);
what lies beyond is added exactly, with the occupation beyond the grid taken
thermal at a tail temperature T_tail (T_qp for a model; 0 means n = 0 there):

    integral_{xi_max}^inf [ (1 - 2 n_F(E/T_tail)) / E - tanh(xi/2) / xi ] dxi
      =   ln(2 xi_max / (xi_max + sqrt(xi_max^2 + Delta^2)))          [(1/E - 1/xi)]
        + 2 sum_k (-1)^(k+1) E1(k xi_max)                             [(1 - tanh(xi/2)) / xi]
        - 2 integral_{xi_max}^inf n_F(E/T_tail) / E dxi               [Gauss-Laguerre]

The first is ~ -Delta^2 / (4 xi_max^2). The second, ~ 2 e^{-xi_max} / xi_max, was
left out before and cost -2 E1(xi_max) of Delta (7e-4 at xi_max = 6, 7.5e-3 at 4).
The third is ~ 2 T e^{-xi_max/T} / xi_max: small on any grid a Model accepts
(xi_max >= 20 T_qp) but amplified near T_c, where delta Delta / Delta ~ dG / (0.21 Delta^2),
so it is added rather than bounded (24 Gauss-Laguerre nodes: exact to rounding).

The trapezoid rule in u is spectrally accurate at u = 0 (the u-integrand is even there)
for a thermal state, or for Delta well above the spacing there; otherwise the peak of 1/E
at xi = 0 is integrated exactly (``_occupied_sum``). It is only O(h^2) at u = 1, where
the integrand ~ -Delta^2 / (2 xi^3) does not vanish: ~2e-8 of Delta on the default grid
(N = 400, xi_max = 30). The Euler-Maclaurin end terms -(h^2/12) g'(1) + (h^4/720) g'''(1)
of the u-integrand g(u) = f(xi(u)) dxi/du,
evaluated by autodiff with the same thermal occupation as the tail, remove it; what
remains at u = 1 is O(h^6) plus the deviation of the actual n from thermal at xi_max,
where n itself is ~ e^{-20} by the reach rule.

``gap(grid, n)`` is the largest positive root Delta[n] (0 when there is none; a scan
of G over Delta brackets it), found to machine precision by safeguarded Newton steps
in ln(Delta), and differentiable:
its JVP is the implicit-function one, dDelta = -(dG/dn . dn + dG/dT_tail dT_tail) / (dG/dDelta).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import exp1

from ._distributions import fermi
from ._errors import ParameterError
from ._grid import Grid

_DELTA_MIN = 1e-12  # below this the state is taken as normal (Delta = 0)
_DELTA_MAX = 6.0  # far above the T = 0 gap 1.764: the root is always below
_MAXITER = 100


# Gauss-Laguerre nodes for integral_0^inf e^{-s} h(s) ds: the n_F tail beyond the grid
# (h is smooth and slowly varying there); 24 nodes reach rounding for every T_tail.
_GL_S, _GL_W = np.polynomial.laguerre.laggauss(24)


def _log_tail(grid: Grid, delta):
    """integral_{xi_max}^inf (1/E - 1/xi) dxi in closed form."""
    xm = grid.xi_max
    return jnp.log(2.0 * xm / (xm + jnp.sqrt(xm * xm + delta * delta)))


@functools.cache
def _tanh_tail(grid: Grid) -> float:
    """integral_{xi_max}^inf (1 - tanh(xi/2)) / xi dxi = 2 sum_k (-1)^(k+1) E1(k xi_max)."""
    xm = grid.xi_max
    k = np.arange(1, max(2, int(np.ceil(745.0 / xm))) + 1)  # E1(x) underflows for x > ~745
    terms = np.where(k % 2 == 1, 1.0, -1.0) * exp1(k * xm)
    return float(2.0 * np.sum(terms[::-1]))  # smallest first


def _occupation_tail(grid: Grid, delta, t):
    """-2 integral_{xi_max}^inf n_F(E/T) / E dxi: the thermal occupation beyond the grid.

    With xi = xi_max + T s the integrand is e^{-s} h(s), h = T e^{s} n_F(E/T) / E
    smooth and slowly varying; 0 for T = 0."""
    xm = grid.xi_max
    pos = t > 0
    ts = jnp.where(pos, t, 1.0)
    s = jnp.asarray(_GL_S)
    xi = xm + ts * s
    e = jnp.sqrt(xi * xi + delta * delta)
    h = ts * jnp.exp(s - e / ts) / (1.0 + jnp.exp(-e / ts)) / e
    return jnp.where(pos, -2.0 * jnp.sum(jnp.asarray(_GL_W) * h), 0.0)


def _integrand(delta, t, xi):
    """(1 - 2 n_F(E/T)) / E - tanh(xi/2) / xi at xi > 0 (T = 0: n_F = 0)."""
    e = jnp.sqrt(xi * xi + delta * delta)
    pos = t > 0
    occ = jnp.where(pos, jnp.tanh(e / (2.0 * jnp.where(pos, t, 1.0))), 1.0)
    return occ / e - jnp.tanh(xi / 2.0) / xi


def _end_correction(grid: Grid, delta, t):
    """Euler-Maclaurin end term of the trapezoid rule at u = 1 (the grid end): exact =
    trapezoid - (h^2/12) g'(1) + O(h^4), g(u) = f(xi(u)) dxi/du with f the thermal
    integrand at T. The end u = 0 needs none (g is even there). The next term,
    (h^4/720) g'''(1) ~ h^4 a^4 Delta^2 / xi_max^2, is < 1e-12 from N = 100 on."""
    a, c, h = grid._a, grid.core, grid.du

    def g(u):
        return _integrand(delta, t, c * jnp.sinh(a * u)) * c * a * jnp.cosh(a * u)

    return -(h * h / 12.0) * jax.grad(g)(jnp.ones(()))


def _tail(grid: Grid, delta, t=0.0):
    """What G adds to the trapezoid sum on the grid: the three tails beyond xi_max and
    the end correction at xi_max (module docstring) [dimensionless]."""
    return (
        _log_tail(grid, delta)
        + _tanh_tail(grid)
        + _occupation_tail(grid, delta, t)
        + _end_correction(grid, delta, t)
    )


def _dtail(grid: Grid, delta, t=0.0):
    """d _tail / d Delta."""
    return jax.grad(_tail, argnums=1)(grid, jnp.asarray(delta, jnp.float64), t)


@functools.cache
def _reference_term(grid: Grid) -> float:
    """integral_0^xi_max tanh(xi/2)/xi dxi on the grid (the T_c = 1 normalization)."""
    xi = grid.xi
    f = np.where(xi > 0, np.tanh(xi / 2.0) / np.where(xi > 0, xi, 1.0), 0.5)
    return float(np.sum(grid.weights * f))


# The peak of 1/E at xi = 0 (docs/physics.md section 2, "The cell at xi = 0"): the
# smoothing width b in grid spacings there.
_CELL_WIDTHS = 5.0


def _smoothing(grid: Grid) -> float:
    """b = _CELL_WIDTHS grid spacings at xi = 0 [T_c]: the trapezoid rule integrates
    1/sqrt(xi^2 + Delta^2 + b^2) to ~exp(-2 pi _CELL_WIDTHS) ~ 1e-14 for any Delta."""
    return _CELL_WIDTHS * grid.core * grid._a * grid.du


def _peak_integral(grid: Grid, delta):
    """K(Delta) = integral_0^xi_max p dxi - sum_{j >= 1} w_j p(xi_j), with
    p = 1/E - 1/sqrt(E^2 + b^2) the peak of 1/E at xi = 0 (width Delta) less a smooth
    part; for Delta > 0 (infinite, as ln(1/Delta), at Delta -> 0)."""
    xm = grid.xi_max
    b = _smoothing(grid)
    xi = jnp.asarray(grid.xi[1:])
    w = jnp.asarray(grid.weights[1:])
    e2 = xi * xi + delta * delta
    p = 1.0 / jnp.sqrt(e2) - 1.0 / jnp.sqrt(e2 + b * b)
    exact = jnp.arcsinh(xm / delta) - jnp.arcsinh(xm / jnp.sqrt(delta * delta + b * b))
    a, c, h = grid._a, grid.core, grid.du

    def pu(u):  # p dxi/du: its end term at u = 1 (~h^2 b^2 a^2 / xi_max^2) is not the peak's
        x = c * jnp.sinh(a * u)
        e2u = x * x + delta * delta
        return (1.0 / jnp.sqrt(e2u) - 1.0 / jnp.sqrt(e2u + b * b)) * c * a * jnp.cosh(a * u)

    end = (h * h / 12.0) * jax.grad(pu)(jnp.ones(()))
    return exact - jnp.sum(w * p) + end


def _even_part_weights(grid: Grid, delta):
    """(L1, L2) / Delta: the quadratic q(E) through (E_j, g_j), j = 0, 1, 2 (E_0 = Delta)
    gives g_0 - (g_0 + q(-Delta)) / 2 = [L1 (g_0 - g_1) + L2 (g_0 - g_2)] / 2, with
    L_j the Lagrange weights of q at -Delta. Differences of E from differences of
    xi^2 (E_i^2 - E_j^2 = xi_i^2 - xi_j^2): no cancellation as Delta -> 0 or >> xi_2."""
    x1, x2 = float(grid.xi[1]), float(grid.xi[2])
    e1 = jnp.sqrt(x1 * x1 + delta * delta)
    e2 = jnp.sqrt(x2 * x2 + delta * delta)
    e1_e0 = x1 * x1 / (e1 + delta)  # E_1 - E_0
    e2_e0 = x2 * x2 / (e2 + delta)
    e1_e2 = (x1 * x1 - x2 * x2) / (e1 + e2)
    # L1 = (-D - E0)(-D - E2) / ((E1 - E0)(E1 - E2)) with -D - E0 = -2 Delta; / Delta:
    l1 = -2.0 * (-delta - e2) / (e1_e0 * e1_e2)
    l2 = -2.0 * (-delta - e1) / (e2_e0 * (-e1_e2))
    return l1, l2


def _occupied_sum(grid: Grid, n, delta, t_ref=0.0):
    """integral_0^xi_max (1 - 2 n) / E dxi on the grid, for Delta > 0.

    Near xi = 0, 1/E is a peak of width Delta, which the trapezoid rule resolves only
    for Delta >> the spacing there: node 0 alone gives w_0 g_0 / Delta (g = 1 - 2 n),
    a pole where the continuum has a logarithm. Only the part of g even in E (as a
    function on E in (-inf, inf)) meets the peak: an odd part makes g/E analytic in xi
    (the thermal g = tanh(E/2T) is odd), which the rule integrates spectrally. So the
    even part A at E = Delta of d = g - tanh(E/2 t_ref) (the deviation from the
    thermal state at t_ref, 0 for a thermal state there; d = g for t_ref = 0), from the
    quadratic through nodes 0-2 extrapolated to -Delta, weighs the peak
    p = 1/E - 1/sqrt(E^2 + b^2) integrated exactly (``_peak_integral``):

        sum_{j>=1} w_j g_j / E_j + w_0 [(g_0 - A) / Delta + A / sqrt(Delta^2 + b^2)] + A K,

    the plain sum plus A (exact - trapezoid) of p. Without it a state with n_0 just
    below 1/2, the even part of a driven film above T_c, had the spurious root
    Delta ~ w_0 A / |G| (docs/physics.md section 2, "The cell at xi = 0").
    """
    g = 1.0 - 2.0 * n
    e = jnp.asarray(grid.energies(delta))
    pos_t = t_ref > 0
    ts = jnp.where(pos_t, t_ref, 1.0)
    g_th = jnp.where(pos_t, jnp.tanh(e[:3] / (2.0 * ts)), 0.0)
    d = g[:3] - g_th
    l1, l2 = _even_part_weights(grid, delta)
    b = _smoothing(grid)
    # (d_0 - A) / Delta; the extrapolation to -Delta amplifies the fit's error as
    # (Delta / spacing)^4, so it is switched off smoothly where the peak is resolved
    # (there A multiplies a trapezoid error ~exp(-2 pi Delta / spacing))
    on = jnp.exp(-((delta * _CELL_WIDTHS / (3.0 * b)) ** 2))
    odd_over_delta = on * 0.5 * (l1 * (d[0] - d[1]) + l2 * (d[0] - d[2]))
    even = d[0] - delta * odd_over_delta  # A
    w = np.asarray(grid.weights)
    node0 = w[0] * (g_th[0] / delta + odd_over_delta + even / jnp.sqrt(delta * delta + b * b))
    rest = jnp.sum(jnp.asarray(w[1:]) * g[1:] / e[1:])
    return rest + node0 + even * _peak_integral(grid, delta)


def _normal_sum(grid: Grid, n):
    """integral_0^xi_max (1 - 2 n) / E dxi at Delta = 0: + inf for n_0 < 1/2 (the
    continuum's ln(1/Delta)), without the xi = 0 node where n_0 = 1/2."""
    g = 1.0 - 2.0 * n
    xi = np.asarray(grid.xi[1:])
    rest = jnp.sum(jnp.asarray(grid.weights[1:] / xi) * g[1:])
    return jnp.where(g[0] == 0, rest, jnp.sign(g[0]) * jnp.inf)


def gap_function(grid: Grid, n, delta, t_tail=0.0):
    """G(Delta; n) of docs/physics.md section 2 with its analytic tail [dimensionless].

    - `n`: occupations n(xi_j), shape (grid.n,).
    - `delta`: gap Delta [T_c], scalar.
    - `t_tail`: temperature [T_c] of the thermal occupation assumed beyond the grid
      (and at its end, for the end correction); 0 (the default) means n = 0 there.
      A model passes T_qp.
    """
    pos = delta > 0
    occupied = jnp.where(
        pos, _occupied_sum(grid, n, jnp.where(pos, delta, 1.0), t_tail), _normal_sum(grid, n)
    )
    return occupied - _reference_term(grid) + _tail(grid, delta, t_tail)


def gap_function_ddelta(grid: Grid, n, delta, t_tail=0.0):
    """Partial derivative dG/dDelta at fixed n(xi) (the tail's occupation at fixed T_tail),
    for Delta > 0."""
    d = jnp.asarray(delta, jnp.float64)
    return jax.grad(_occupied_sum, argnums=2)(grid, n, d, t_tail) + _dtail(grid, d, t_tail)


def gap_function_dn(grid: Grid, delta):
    """Gradient dG/dn_j (independent of n: G is linear in n), shape (grid.n,):
    -2 w_j / E_j from node 3 on; nodes 0-2 carry the peak at xi = 0 as well
    (``_occupied_sum``). In the normal state the entry of node 0 is infinite; it is
    set to 0 there (the gap's derivative is 0 in the normal state anyway), so that no
    inf * 0 reaches reverse-mode derivatives.
    """
    pos = delta > 0
    zeros = jnp.zeros(grid.n)
    sc = jax.grad(_occupied_sum, argnums=1)(grid, zeros, jnp.where(pos, delta, 1.0))
    xi = np.asarray(grid.xi)
    normal = jnp.asarray(np.where(xi > 0, -2.0 * grid.weights / np.where(xi > 0, xi, 1.0), 0.0))
    return jnp.where(pos, sc, normal)


def _value_and_slope(f):
    """Delta -> (f(Delta), f'(Delta)) in one forward-mode pass: half the code of f and a
    separate gradient, inlined wherever the gap is solved (compile time)."""
    return lambda d: jax.jvp(f, (d,), (jnp.ones_like(d),))


def _decreasing_root(fdf, guess, lo0=None, hi0=None, has_root=None):
    """Root of f on a bracket (lo0, hi0) of x = ln(Delta) where f(e^lo0) > 0 >= f(e^hi0)
    (default: (_DELTA_MIN, _DELTA_MAX)), or 0 when f(e^lo0) <= 0 (`has_root`: that test,
    when the caller knows it). `fdf`: Delta -> (f, df/dDelta).

    Newton steps in x, where G is close to linear, kept inside a bracket that
    bisection shrinks; a fixed iteration bound makes it total. With several roots in
    the bracket it returns one of them: callers that care bracket a single crossing.
    """
    lo0 = jnp.log(_DELTA_MIN) if lo0 is None else lo0
    hi0 = jnp.log(_DELTA_MAX) if hi0 is None else hi0
    if has_root is None:
        has_root = fdf(jnp.exp(lo0))[0] > 0

    def body(state):
        x, lo, hi, dx_prev, i = state
        d = jnp.exp(x)
        g, dg = fdf(d)
        lo = jnp.where(g > 0, x, lo)
        hi = jnp.where(g > 0, hi, x)
        slope = dg * d  # dG/dx
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


# Scan of G(Delta; n) for the largest root: 64 nodes log-spaced over [_DELTA_MIN,
# _DELTA_MAX], neighbours a factor 1.6 apart. Two roots closer than that (a branch at
# its turning point) can be missed between nodes; the cost is 64 sums over the grid.
_SCAN_X = np.linspace(np.log(_DELTA_MIN), np.log(_DELTA_MAX), 64)


def _largest_root(f, guess):
    """The largest root of f(Delta) on (_DELTA_MIN, _DELTA_MAX) at which f falls through
    zero, or 0 when f <= 0 on the whole scan (docs/physics.md, "Which root").

    The scan brackets the largest sign change + -> -; ``_decreasing_root`` refines it.
    A state whose G is monotonic (every thermal-like state) has one root and the scan
    only picks its bracket; a state with occupation above 1/2 near the gap edge has
    G -> -inf as Delta -> 0 and a root above it, which a test at Delta -> 0 alone would
    miss (it reported such a film normal).
    """
    xs = jnp.asarray(_SCAN_X)
    pos = jax.vmap(lambda x: f(jnp.exp(x)))(xs) > 0
    k = xs.shape[0] - 1 - jnp.argmax(pos[::-1])  # last node with f > 0
    k = jnp.minimum(k, xs.shape[0] - 2)  # f(_DELTA_MAX) < 0 for any n in [0, 1]
    root = _decreasing_root(_value_and_slope(f), guess, xs[k], xs[k + 1], pos[k])
    return jnp.where(jnp.any(pos), root, 0.0)


@functools.cache
def _gap_solver(grid: Grid):
    @jax.custom_jvp
    def solve(n, guess, t_tail):
        return _largest_root(
            lambda d: gap_function(grid, n, d, t_tail), jax.lax.stop_gradient(guess)
        )

    @solve.defjvp
    def solve_jvp(primals, tangents):
        n, guess, t_tail = primals
        dn, _, dt = tangents
        delta = solve(n, guess, t_tail)
        dg_dd = gap_function_ddelta(grid, n, delta, t_tail)
        dg_dn_dot = jnp.sum(gap_function_dn(grid, delta) * dn)
        # G depends on T_tail through the tail beyond the grid, the end correction and
        # the thermal reference of the peak at xi = 0
        safe_d = jnp.where(delta > 0, delta, 1.0)
        dg_dt_dot = jax.jvp(
            lambda tt: _tail(grid, delta, tt) + _occupied_sum(grid, n, safe_d, tt), (t_tail,), (dt,)
        )[1]
        safe = jnp.where(delta > 0, dg_dd, -1.0)
        return delta, jnp.where(delta > 0, -(dg_dn_dot + dg_dt_dot) / safe, 0.0)

    return solve


@functools.partial(jax.jit, static_argnums=0)
def gap(grid: Grid, n, guess=1.0, t_tail=0.0):
    """Self-consistent gap Delta[n] [T_c]: the largest positive root of G(Delta; n), or 0
    when there is none (the normal state; docs/physics.md, "Which root").

    - `n`: occupations on the grid, shape (grid.n,).
    - `guess`: starting value (e.g. the previous gap); it only affects the cost.
    - `t_tail`: temperature [T_c] of the thermal occupation assumed beyond the grid
      (see ``gap_function``); 0 means none. A model passes T_qp.

    Differentiable in `n` (and `t_tail`) by the implicit-function theorem
    (docs/physics.md section 8).
    """
    return _gap_solver(grid)(
        jnp.asarray(n),
        jnp.asarray(guess, dtype=jnp.float64),
        jnp.asarray(t_tail, dtype=jnp.float64),
    )


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
    """G_eq(Delta) = G(Delta; n_F(E(Delta)/T)): the gap function of the thermal state
    (thermal at T beyond the grid too)."""
    return gap_function(grid, thermal_distribution(grid, delta, t), delta, t)


def equilibrium_gap_slope(grid: Grid, delta, t):
    """Total derivative d G_eq / d Delta (n_F follows E(Delta)); negative."""
    return jax.grad(equilibrium_gap_function, argnums=1)(grid, delta, t)


_REFERENCE_GRID = Grid(n=3000, xi_max=80.0, core=2.0)


@functools.partial(jax.jit, static_argnums=0)
def equilibrium_gap_on(grid: Grid, t):
    """Equilibrium BCS gap Delta(T) [T_c] as the root of G_eq on `grid` (JAX, traceable)."""
    f = functools.partial(equilibrium_gap_function, grid, t=t)
    return _decreasing_root(
        _value_and_slope(f), jnp.asarray(1.76 * jnp.sqrt(jnp.clip(1.0 - t, 1e-6, 1.0)))
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

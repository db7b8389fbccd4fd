"""Mattis-Bardeen complex conductivity of any distribution (docs/physics.md section 11).

Energies in k_B T_c, w = hbar omega the probe photon energy, D = Delta, f(E) the
occupation of the quasiparticle state at energy E >= D (particle-hole symmetric):

    sigma_1 / sigma_N = (2/w) Int_D^inf dE [f(E) - f(E+w)]
                            (E(E+w) + D^2) / (sqrt(E^2-D^2) sqrt((E+w)^2-D^2))
                      + theta(w - 2D) (1/w) Int_D^{w-D} dE [1 - f(E) - f(w-E)]
                            (E(w-E) - D^2) / (sqrt(E^2-D^2) sqrt((w-E)^2-D^2))
    sigma_2 / sigma_N = (1/w) Int_L^D dE [1 - 2 f(E+w)]
                            (E(E+w) + D^2) / (sqrt(D^2-E^2) sqrt((E+w)^2-D^2)),
                        L = max(D - w, -D)

**f between the nodes.** The state is n(xi_j) on the grid; f(E) at E = sqrt(xi^2 + D^2)
is the Lagrange polynomial of degree 5 *in E* through the six nodes nearest in index
(one-sided at both ends of the grid), and f = 0 beyond xi_max (the grid must reach
far enough that n is negligible there; a `Model` enforces xi_max >= 20 T). f(E) and
f(E + w) use the same interpolant. E, not the grid variable u, because the
low-frequency conductivity probes df/dE at the gap edge: a polynomial in u (even in
xi) has df/dE = (df/dxi) E / xi wrong by O(h^3 / xi) there, and it cannot follow the
curvature of E(xi) at xi ~ D when D is below the grid spacing; degree 5, not 3,
because at T << D the thermal f varies on the scale T while the node spacing in E is
~ h xi / E, and cubic interpolation left 5e-7 of sigma_1 at T = 0.05, N = 400
(quintic: 2e-9).

**Quadrature** (fixed sizes, so every shape is static; all inverse-square-root edges
are removed by substitutions, none is sampled):

- absorption, written in xi (dE / sqrt(E^2 - D^2) = dxi / E), where
  (E+w)^2 - D^2 = xi^2 + w (2E + w) >= a^2, a = sqrt(w (2D + w)): the only structure
  left at the edge is 1 / sqrt(xi^2 (...) + a^2), of width a (small at small w).
  Region I, xi in [0, xi_k] (k = 16): xi = a sinh(t), 12 Gauss-Legendre panels of 8
  points in t (the factor becomes bounded and smooth for every a). Region II, the rest
  of the grid: one 3-point Gauss-Legendre panel per grid cell in u (aligned with the
  nodes; the integrand there varies on scales >= xi_k).
- pair breaking (w > 2D): symmetric under E <-> w - E, so (2/w) times the integral over
  E in [D, w/2], written in xi in [0, sqrt(r (r + 2D))], r = w/2 - D; the other factor
  sqrt((w-E)^2 - D^2) >= sqrt(r (w/2 + D)) is bounded there. max(32, N/4) panels of 8
  points uniform in the grid variable u(xi) (extended beyond u = 1 when w/2 > E_max).
- sigma_2: split at the midpoint M of [L, D]. Upper half: D - E = s^2 (removes
  1/sqrt(D - E)). Lower half: E - L = eps sinh^2(t), eps = |2D - w| the distance to the
  next branch point below L, which removes 1/sqrt((E - L)(E - L + eps)) exactly: both
  the edge and its log-like merger with the next branch point as w -> 2D (eps is
  floored at 1e-12 max(D, w)). max(32, N/8) panels of 8 points per half.

Accuracy measured against scipy quad (thermal f on the default Grid, N = 400,
T = 0.05 .. 1, Delta = 1e-6 .. 1.764, hbar omega = 1e-4 .. 15): relative error
<= 2e-9 in sigma_1 and <= 1e-9 in sigma_2, limited by the interpolation of f between
the nodes (docs/physics.md section 11).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ParameterError
from ._grid import Grid

_STENCIL = 6  # nodes per interpolation stencil (degree 5 in E)
_EDGE_NODES = 16  # region I of the absorption integral ends at node k = 16
_EDGE_PANELS, _EDGE_POINTS = 12, 8  # region I: panels in t (xi = a sinh t), points each
_CELL_POINTS = 3  # region II: Gauss points per grid cell
_PANEL_POINTS = 8  # pair breaking and sigma_2: Gauss points per panel
_EPS_FLOOR = 1e-12  # relative floor of the sigma_2 edge scale |2 Delta - hbar omega|


@functools.cache
def _gauss(q: int):
    x, w = np.polynomial.legendre.leggauss(q)
    return 0.5 * (x + 1.0), 0.5 * w  # on [0, 1]


def _panels(lo, hi, panels: int, q: int):
    """Composite Gauss-Legendre nodes and weights on [lo, hi], equal panels."""
    x, w = _gauss(q)
    h = (hi - lo) / panels
    starts = lo + h * jnp.arange(panels, dtype=jnp.float64)
    nodes = (starts[:, None] + h * jnp.asarray(x)[None, :]).reshape(-1)
    weights = jnp.broadcast_to(h * jnp.asarray(w)[None, :], (panels, q)).reshape(-1)
    return nodes, weights


def _energy_difference(xa, ea, xb, eb):
    """E_a - E_b from xi and E, without the cancellation of E_a - E_b near the edge."""
    return (xa - xb) * (xa + xb) / (ea + eb)


class _Occupation:
    """f(E(xi)) from the node values: degree-5 Lagrange in E, 0 beyond the grid.

    The per-stencil coefficients n_{i+k} / prod_{m != k} (E_{i+k} - E_{i+m}) are
    tabulated once per (n, Delta), so each evaluation costs six gathers and ten
    products.
    """

    def __init__(self, grid: Grid, n, delta):
        p = _STENCIL
        self.grid, self.delta = grid, delta
        self.xin = jnp.asarray(grid.xi)
        self.en = jnp.sqrt(self.xin * self.xin + delta * delta)
        starts = np.arange(grid.n - p + 1)
        idx = jnp.asarray(starts[:, None] + np.arange(p)[None, :])  # (N - 5, 6)
        xs, es = self.xin[idx], self.en[idx]
        den = jnp.ones_like(xs)
        for m in range(p):
            dm = _energy_difference(xs, es, xs[:, m : m + 1], es[:, m : m + 1])
            den = den * jnp.where(jnp.arange(p)[None, :] == m, 1.0, dm)
        self.coef = n[idx] / den

    def __call__(self, xi):
        p, grid = _STENCIL, self.grid
        last = grid.n - 1
        s = grid.index_of(xi)
        i0 = jnp.clip(jnp.floor(s) - (p // 2 - 1), 0, last - (p - 1)).astype(jnp.int32)
        idx = i0[:, None] + jnp.arange(p, dtype=jnp.int32)[None, :]
        e = jnp.sqrt(xi * xi + self.delta * self.delta)
        d = _energy_difference(xi[:, None], e[:, None], self.xin[idx], self.en[idx])
        c = self.coef[i0]
        # prod_{m != k} d_m from prefix and suffix products (no division by d_k = 0)
        pre = [jnp.ones_like(xi)]
        for m in range(p - 1):
            pre.append(pre[-1] * d[:, m])
        val = pre[p - 1] * c[:, p - 1]
        suf = jnp.ones_like(xi)
        for k in range(p - 2, -1, -1):
            suf = suf * d[:, k + 1]
            val = val + pre[k] * suf * c[:, k]
        return jnp.where(s <= last, val, 0.0)


def _absorption(grid: Grid, occ: _Occupation, delta, w):
    """(2/w) Int_D^inf dE [f(E) - f(E+w)] (E(E+w) + D^2) / (sqrt(E^2-D^2) sqrt((E+w)^2-D^2))."""
    d2 = delta * delta
    k = _EDGE_NODES
    # region II (static): one Gauss panel per grid cell in u, cells k .. N-2
    x, wq = _gauss(_CELL_POINTS)
    u2 = (np.asarray(grid.u)[k:-1, None] + grid.du * x[None, :]).reshape(-1)
    jac = grid.core * grid._a * np.cosh(grid._a * u2)
    w2 = np.tile(grid.du * wq, grid.n - 1 - k) * jac
    xi2 = grid.core * np.sinh(grid._a * u2)
    # region I: xi = a sinh(t) on [0, xi_k]; a is the width of the edge structure
    a = jnp.sqrt(w * (2.0 * delta + w))
    t, wt = _panels(0.0, jnp.arcsinh(float(grid.xi[k]) / a), _EDGE_PANELS, _EDGE_POINTS)
    xi = jnp.concatenate([a * jnp.sinh(t), jnp.asarray(xi2)])
    wx = jnp.concatenate([wt * a * jnp.cosh(t), jnp.asarray(w2)])
    e = jnp.sqrt(xi * xi + d2)
    xi_up = jnp.sqrt(xi * xi + w * (2.0 * e + w))  # the state at E + w; >= a > 0
    kern = (e * (e + w) + d2) / (e * xi_up)
    return (2.0 / w) * jnp.sum(wx * (occ(xi) - occ(xi_up)) * kern)


def _pair_breaking(grid: Grid, occ: _Occupation, delta, w):
    """theta(w - 2D) (1/w) Int_D^{w-D} dE [1 - f(E) - f(w-E)] (E(w-E) - D^2) / (...)."""
    d2 = delta * delta
    above = w > 2.0 * delta
    r = jnp.where(above, 0.5 * w - delta, 1.0)  # half-width of the window in E
    xc = jnp.sqrt(r * (r + 2.0 * delta))  # xi at the midpoint E = w/2
    u, wu = _panels(0.0, jnp.arcsinh(xc / grid.core) / grid._a, max(32, grid.n // 4), _PANEL_POINTS)
    xi = grid.core * jnp.sinh(grid._a * u)
    wx = wu * grid.core * grid._a * jnp.cosh(grid._a * u)
    e = jnp.sqrt(xi * xi + d2)
    other = jnp.where(above, w - e, 1.0 + 2.0 * delta)  # the partner's energy w - E >= w/2
    partner_gap = 2.0 * r - xi * xi / (e + delta)  # (w - E) - D >= r
    xi_other = jnp.sqrt(partner_gap * (other + delta))
    kern = (e * other - d2) / (e * xi_other)
    val = (2.0 / w) * jnp.sum(wx * (1.0 - occ(xi) - occ(xi_other)) * kern)
    return jnp.where(above, val, 0.0)


def _sigma2(grid: Grid, occ: _Occupation, delta, w):
    """(1/w) Int_L^D dE [1 - 2 f(E+w)] (E(E+w) + D^2) / (sqrt(D^2-E^2) sqrt((E+w)^2-D^2))."""
    d2 = delta * delta
    panels = max(32, grid.n // 8)
    length = jnp.minimum(w, 2.0 * delta)  # D - L
    lo = delta - length  # L
    eps_true = jnp.abs(2.0 * delta - w)  # distance from L to the next branch point below
    eps = jnp.maximum(eps_true, _EPS_FLOOR * jnp.maximum(delta, w))
    half = 0.5 * length

    def integrand(e):
        xi_up = jnp.sqrt(jnp.maximum((e + w - delta) * (e + w + delta), 0.0))
        return (1.0 - 2.0 * occ(xi_up)) * (e * (e + w) + d2)

    # upper half, E in [M, D]: D - E = s^2, dE / sqrt(D - E) = 2 ds
    s, ws = _panels(0.0, jnp.sqrt(half), panels, _PANEL_POINTS)
    dme = s * s
    e = delta - dme
    den = jnp.sqrt((2.0 * delta - dme) * (e + w - delta) * (e + w + delta))
    upper = jnp.sum(2.0 * ws * integrand(e) / jnp.where(den > 0, den, 1.0))
    # lower half, E in [L, M]: E - L = eps sinh^2(t); the two factors vanishing at and
    # just below L, sqrt((E - L)(E - L + eps_true)), become sqrt(eps) cosh(t) ... exactly
    t, wt = _panels(0.0, jnp.arcsinh(jnp.sqrt(half / eps)), panels, _PANEL_POINTS)
    sh = jnp.sinh(t)
    el = eps * sh * sh
    e = lo + el
    jac = 2.0 * jnp.cosh(t) * jnp.sqrt(eps) / jnp.sqrt(eps * sh * sh + eps_true)
    rest = jnp.sqrt((length - el) * (lo + w + delta + el))  # sqrt(D - E) sqrt(E + w + D)
    lower = jnp.sum(wt * jac * integrand(e) / jnp.where(rest > 0, rest, 1.0))
    return jnp.where(length > 0, (upper + lower) / w, 0.0)


@functools.partial(jax.jit, static_argnums=0)
def _conductivity(grid: Grid, n, delta, w):
    occ = _Occupation(grid, n, delta)

    def one(wi):
        s1 = _absorption(grid, occ, delta, wi) + _pair_breaking(grid, occ, delta, wi)
        s2 = _sigma2(grid, occ, delta, wi)
        ok = (wi > 0) & (delta >= 0)
        return jnp.where(ok, s1, jnp.nan), jnp.where(ok, s2, jnp.nan)

    return jax.vmap(one)(w)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def complex_conductivity(grid: Grid, n, gap, hbar_omega):
    """Mattis-Bardeen (sigma_1, sigma_2) / sigma_N of the state n (docs/physics.md section 11).

    **Arguments:**

    - `grid`: the `Grid` on which `n` lives.
    - `n`: occupations n(xi_j) on the grid nodes, shape (grid.n,). The distribution is
      f(E) = n at E = sqrt(xi^2 + Delta^2) (particle-hole symmetric), interpolated between
      the nodes by a degree-5 polynomial in E, and **f = 0 beyond xi_max** (not thermal:
      the grid must reach far enough that n is negligible there).
    - `gap`: Delta [T_c], a scalar >= 0 (e.g. ``gap(grid, n)``; 0 is the normal state).
    - `hbar_omega`: probe photon energy [T_c] > 0, a scalar or a 1-D array.

    **Returns:** ``(sigma1, sigma2)`` in units of the normal-state conductivity sigma_N,
    each with the shape of `hbar_omega`. sigma_1 includes pair breaking for
    hbar omega > 2 Delta. Both are NaN where hbar omega <= 0 or Delta < 0 under tracing
    (given concrete values, those raise ParameterError instead).

    jit-able and vmap-able over (n, gap), e.g. a time series:
    ``jax.vmap(lambda n, d: complex_conductivity(grid, n, d, w))(ns, gaps)``.
    Relative accuracy ~1e-9 for a thermal state on the default grid (N = 400).
    """
    w = jnp.asarray(hbar_omega, dtype=jnp.float64)
    if w.ndim > 1:
        raise ParameterError(
            "complex_conductivity: hbar_omega must be a scalar or a 1-D array; "
            f"got shape {w.shape}."
        )
    if _is_concrete(w):
        bad = np.asarray(w)[~(np.asarray(w) > 0) | ~np.isfinite(np.asarray(w))]
        if bad.size:
            raise ParameterError(
                f"complex_conductivity: hbar_omega must be finite and > 0 [T_c]; "
                f"got {float(bad.flat[0])!r}."
            )
    if _is_concrete(gap) and not float(np.asarray(gap)) >= 0:
        raise ParameterError(
            f"complex_conductivity: gap must be >= 0 [T_c]; got {float(np.asarray(gap))!r}."
        )
    n = jnp.asarray(n, dtype=jnp.float64)
    if n.shape != (grid.n,):
        raise ParameterError(
            f"complex_conductivity: n must have shape ({grid.n},) (the grid's nodes); "
            f"got {n.shape}. Use jax.vmap for a stack of states."
        )
    s1, s2 = _conductivity(grid, n, jnp.asarray(gap, dtype=jnp.float64), w.reshape(-1))
    return s1.reshape(w.shape), s2.reshape(w.shape)

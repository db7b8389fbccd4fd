"""The nonlinear collision operator I_b[n](xi) of physics.md section 3.

    I_b[n](xi) = 2 integral_0^inf dxi' {  theta(E - E') J(E - E') c_s [ N (n' - n) - n (1 - n') ]
                                        + theta(E' - E) J(E' - E) c_s [ N (n' - n) + n' (1 - n) ]
                                        + J(E + E') c_p [ N (1 - n - n') - n n' ] }

Discretization (product integration, physics.md section 8). At each node xi_i
the xi' integral is written in the grid parameter u (xi = xi(u), see
``_grid``), and the integrand's *smooth* factor, F_j = xi'(u_j) J(Omega_ij)
c(E_i, E_j) bracket_ij, is interpolated linearly in u between the nodes; the
*step* that bounds the support of J (Omega = omega0 for the multimode cavity,
the down/up split at E' = E, a Debye cut-off ...) is integrated exactly: its
position in u is computed from Delta, and the cell it cuts contributes only
the covered fraction of its two hat functions. Hence

    I_i = 2 sum_j M_ij [ a_ij + b_ij n_i + c_ij n_j + d_ij n_i n_j ],
    M_ij = du * W_ij * xi'(u_j) * J(Omega_ij) * c(E_i, E_j),

with W_ij the covered hat-function fraction (1 inside the support, 0 outside,
in between in the cut cell) and (a, b, c, d) the bracket written as a bilinear
form with N evaluated at the exact event energy Omega_ij of the node pair.
Properties that follow (and are tested):

- detailed balance holds to rounding: each node bracket vanishes on n_F, N_B;
- the operator is C^1 in Delta (a threshold crossing a node changes nothing
  discontinuously), which Newton and the implicit solvers need;
- error O(h^2) in the grid spacing, the steps included.

Away from thresholds this is the trapezoid rule in u. At the diagonal
(Omega -> 0) N ~ T_b / Omega diverges while n' - n -> 0; for baths with
J(0) > 0 the one-sided limit of N (n' - n) is used, written with
x = n / (1 - n) so that it also vanishes exactly on the thermal state:
lim N (n' - n) = -+ T_b n (1 - n) d ln x / dE (one-sided difference).

A classical drive (stimulated terms only) uses the same bilinear form with a
line: the exact delta line puts the whole event at E' = E -+ omega_d, where n'
is interpolated linearly in u and the density of states is E'/xi' exactly.

Layout and cost: a handful of fused elementwise passes over N x N arrays and
four matrix-vector products per bath: O(N^2) time and memory.
"""

from __future__ import annotations

import jax.numpy as jnp

from ._baths import AbstractBath, ClassicalDrive
from ._gap import thermal_distribution
from ._grid import Grid

_TINY = 1e-300


class Bilinear:
    """M_ij-weighted bracket coefficients of one bath: I = 2 [Ma 1 + Mc n + n (Mb 1 + Md n)] + diag."""

    def __init__(self, ma, mb, mc, md, diag=None):
        self.ma, self.mb, self.mc, self.md = ma, mb, mc, md
        self.diag = diag  # callable n -> (N,) or None

    def apply(self, n):
        out = self.ma.sum(axis=1) + self.mc @ n + n * (self.mb.sum(axis=1) + self.md @ n)
        out = 2.0 * out
        if self.diag is not None:
            out = out + self.diag(n)
        return out

    def jacobian(self, n):
        """d I / d n (without the diagonal-limit term), O(N^2)."""
        jac = 2.0 * (self.mc + n[:, None] * self.md)
        return jac + jnp.diag(2.0 * (self.mb.sum(axis=1) + self.md @ n))


def _coherence(bath: AbstractBath, e_i, e_j, delta):
    r = delta * delta / (e_i[:, None] * e_j[None, :])
    plus, minus = 0.5 * (1.0 + r), 0.5 * (1.0 - r)
    return (plus, minus) if bath.coupling == "current" else (minus, plus)


def _index_of_energy(grid: Grid, e, delta):
    """Fractional grid index of the state with energy E; -1 below the gap edge."""
    above = e > delta
    arg = jnp.where(above, e * e - delta * delta, 1.0)
    return jnp.where(above, grid.index_of(jnp.sqrt(arg)), -1.0)


def _covered_fractions(grid: Grid, s_lo, s_hi):
    """W_ij: covered fraction of hat function j for the support [s_lo_i, s_hi_i] (in index units)."""
    c = jnp.arange(grid.n - 1, dtype=jnp.float64)[None, :]
    a = jnp.clip(s_lo[:, None] - c, 0.0, 1.0)
    b = jnp.clip(s_hi[:, None] - c, 0.0, 1.0)
    b = jnp.maximum(a, b)
    right = 0.5 * (b * b - a * a)  # hat of node c + 1 over [a, b] of cell c
    left = (b - a) - right  # hat of node c
    zeros = jnp.zeros((grid.n, 1))
    return jnp.concatenate([left, zeros], axis=1) + jnp.concatenate([zeros, right], axis=1)


def _symmetrize(grid: Grid, m, m_reverse=None):
    """Make every event carry one rate: w_i M_ij = w_j M'_ji (exact number balance).

    Row i's product integration of the event (i, j) and row j's of the reverse
    event (j, i) are two O(h^2) approximations of the same integral; using their
    mean for both makes the scattering part conserve sum_j w_j n_j exactly and the
    pair part remove quasiparticles in pairs. Returns (M, M') with M' the reverse.
    """
    w = jnp.asarray(grid.weights)[:, None]
    m_reverse = m if m_reverse is None else m_reverse
    s = 0.5 * (w * m + (w * m_reverse).T)
    return s / w, s.T / w


def _thermal_bilinear(bath: AbstractBath, grid: Grid, delta, t, channels) -> Bilinear:
    e = grid.energies(delta)
    nn = grid.n
    idx = jnp.arange(nn, dtype=jnp.float64)
    lo, hi = bath.support(t)
    e_cap = 4.0 * grid.xi_max + 10.0  # beyond every state: keeps indices finite
    hi = jnp.minimum(hi, e_cap)
    s_of = lambda x: _index_of_energy(grid, jnp.minimum(x, e_cap), delta)  # noqa: E731
    # down-scattering: E' in [E - hi, E - lo]; the split at E' = E is a node exactly.
    sd_lo = s_of(e - hi)
    sd_hi = jnp.where(lo == 0, idx, s_of(e - lo))
    su_lo = jnp.where(lo == 0, idx, s_of(e + lo))
    su_hi = s_of(e + hi)
    sp_lo = s_of(lo - e)
    sp_hi = s_of(hi - e)
    w_down = _covered_fractions(grid, sd_lo, sd_hi)
    w_up = _covered_fractions(grid, su_lo, su_hi)
    w_pair = _covered_fractions(grid, sp_lo, sp_hi)

    c_scat, c_pair = _coherence(bath, e, e, delta)
    jac = jnp.asarray(grid.dxi_du * grid.du)[None, :]
    om_s = jnp.abs(e[:, None] - e[None, :])
    om_p = e[:, None] + e[None, :]

    def kernel(w, om, coh):
        active = w > 0
        om_eval = jnp.where(active, om, 1.0)
        return jnp.where(active, w * jac * coh * bath.spectral_density(om_eval, t), 0.0)

    m_down, m_up = _symmetrize(grid, kernel(w_down, om_s, c_scat), kernel(w_up, om_s, c_scat))
    m_pair, _ = _symmetrize(grid, kernel(w_pair, om_p, c_pair))
    if "scattering" not in channels:
        m_down, m_up = jnp.zeros_like(m_down), jnp.zeros_like(m_up)
    if "pair" not in channels:
        m_pair = jnp.zeros_like(m_pair)

    def occ(om, m):
        ok = (m != 0) & (om > 0)
        return jnp.where(ok, bath.occupation(jnp.where(ok, om, 1.0), t), 0.0)

    n_s = occ(om_s, m_down + m_up)  # 0 on the diagonal: its limit is added below
    n_p = occ(om_p, m_pair)
    m_s = m_down + m_up
    ma = m_pair * n_p
    mb = -m_s * n_s - m_down - m_pair * n_p
    mc = m_s * n_s + m_up - m_pair * n_p
    md = m_down - m_up - m_pair

    t_b = bath.temperature(t)
    d_down = jnp.diagonal(m_down)
    d_up = jnp.diagonal(m_up)

    def diag(n):
        # one-sided limit of N (n' - n) at Omega -> 0 for J(0) > 0 (see module docstring)
        nc = jnp.clip(n, _TINY, 1.0 - 1e-16)
        lx = jnp.log(nc) - jnp.log1p(-nc)
        slope = jnp.diff(lx) / jnp.diff(e)  # d ln x / dE on each cell
        zero = jnp.zeros((1,))
        below = jnp.concatenate([zero, slope])
        above = jnp.concatenate([slope, zero])
        q = t_b * n * (1.0 - n)
        return 2.0 * (d_up * q * above - d_down * q * below)

    return Bilinear(ma, mb, mc, md, diag)


def _drive_bilinear(bath: ClassicalDrive, grid: Grid, delta, t, channels) -> Bilinear:
    e = grid.energies(delta)
    nn = grid.n
    rows = jnp.arange(nn)
    centres, weights = bath.line_nodes(t)
    m_scat = jnp.zeros((nn, nn))
    m_pair = jnp.zeros((nn, nn))

    def deposit(m, e_star, weight, pair):
        above = e_star > delta
        xi2 = jnp.where(above, e_star * e_star - delta * delta, 1.0)
        xi_star = jnp.sqrt(xi2)
        s = grid.index_of(xi_star)
        valid = above & (s <= nn - 1)
        r = delta * delta / (e * jnp.where(above, e_star, 1.0))
        plus = pair != (bath.coupling == "current")
        coh = 0.5 * (1.0 + r) if plus else 0.5 * (1.0 - r)
        dos = jnp.where(above, e_star / jnp.maximum(xi_star, 1e-8), 0.0)
        v = jnp.where(valid, weight * coh * dos, 0.0)
        s = jnp.where(valid, s, 0.0)
        j0 = jnp.clip(jnp.floor(s).astype(int), 0, nn - 2)
        f = s - j0
        m = m.at[rows, j0].add(v * (1.0 - f))
        return m.at[rows, j0 + 1].add(v * f)

    for k in range(centres.shape[0]):
        w_k, p_k = centres[k], weights[k]
        m_scat = deposit(m_scat, e - w_k, p_k, False)
        m_scat = deposit(m_scat, e + w_k, p_k, False)
        m_pair = deposit(m_pair, w_k - e, p_k, True)
    m_scat, _ = _symmetrize(grid, m_scat)
    m_pair, _ = _symmetrize(grid, m_pair)
    if "scattering" not in channels:
        m_scat = jnp.zeros_like(m_scat)
    if "pair" not in channels:
        m_pair = jnp.zeros_like(m_pair)
    # stimulated only: scattering (n' - n), pair (1 - n - n')
    return Bilinear(m_pair, -m_scat - m_pair, m_scat - m_pair, jnp.zeros_like(m_scat))


_CHANNELS = ("scattering", "pair")


def bath_bilinear(bath: AbstractBath, grid: Grid, delta, t=0.0, channels=_CHANNELS) -> Bilinear:
    """The discretized operator of one bath at gap `delta` [T_c] and time `t`.

    `channels` selects the processes: "scattering" (emission and absorption,
    E -> E'), "pair" (pair breaking and recombination); both by default.
    """
    for c in channels:
        if c not in _CHANNELS:
            raise ValueError(f"channels must be drawn from {_CHANNELS}; got {c!r}.")
    if isinstance(bath, ClassicalDrive):
        return _drive_bilinear(bath, grid, delta, t, channels)
    return _thermal_bilinear(bath, grid, delta, t, channels)


def collision(bath: AbstractBath, grid: Grid, n, delta, t=0.0, channels=_CHANNELS):
    """I_b[n](xi_j) [rate, k_B T_c / hbar] at fixed gap `delta` [T_c], shape (grid.n,)."""
    return bath_bilinear(bath, grid, delta, t, channels).apply(n)


def relaxation(grid: Grid, n, delta, t_qp, tau_in):
    """Relaxation-time term -(n - n_F(E/T_qp)) / tau_in of paper eq. (6)."""
    return -(n - thermal_distribution(grid, delta, t_qp)) / tau_in

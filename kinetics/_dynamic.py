"""Dynamic bosons: the joint quasiparticle-boson operator of docs/physics.md section 9.

A dynamic bath's occupation N_b(Omega_k, t) on its Omega grid (``BosonGrid``) is
part of the state. Every event is computed **once** and enters both sides:

- scattering, node pair (i, j) with E_i > E_j, emits Omega = E_i - E_j at the net rate
      R^s_ij = K^s_ij [ n_i (1 - n_j)(N + 1) - n_j (1 - n_i) N ],
- pair events, ordered node pair (i, j), Omega = E_i + E_j,
      R^p_ij = K^p_ij [ n_i n_j (N + 1) - (1 - n_i)(1 - n_j) N ],

with K = 2 w_i w_j J(Omega_ij) c(E_i, E_j) for events inside the bath's support and
on the Omega grid (0 otherwise, on both sides), and N the boson occupation at the
event's exact energy, interpolated from the nodes as beta = ln(1 + 1/N) linear in
Omega (beta = 0 at an Omega = 0 node). Then

    w_i dn_i/dt = - sum_{j < i} R^s_ij + sum_{j > i} R^s_ji - sum_j R^p_ij,
    c_k dN_k/dt = D_k - c_k (N_k - n_B(Omega_k / T_b)) / tau_b,
    D_k = sum_{i > j} h_k(Omega^s_ij) R^s_ij + (1/2) sum_{i, j} h_k(Omega^p_ij) R^p_ij,

with h_k the linear hat weights of the Omega grid (sum_k h_k = 1 and
sum_k h_k Omega_k = Omega exactly) and c_k = v_k rho_b(Omega_k) the boson heat
capacity of node k (v_k trapezoid weights). Hence, at fixed Delta and without
escape, sum_i w_i E_i n_i + sum_k c_k Omega_k N_k is conserved and
d/dt sum_i w_i n_i = -2 sum_k D^pair_k, both to rounding; the joint thermal
state is an exact fixed point (beta interpolation is exact for n_B).

Steps of J (the multimode cut-off omega0 = the first Omega node, a Debye cut-off =
the last) are therefore hard steps in the event set: the quasiparticle operator is
O(h) accurate in the cells at the step, against O(h^2) for the static operator of
``_collision`` with its cut-cell fractions. Cut-cell fractions were tried: they put
events up to one xi cell below the first Omega node, whose hat weights then have to
be extrapolated far outside the (much finer) first Omega cell, which made the system
violently stiff. Phonons and the single-mode cavity (support from 0) have no step.

Cost: O(N^2) per evaluation (the kernels, one gather of beta and one scatter of
the deposits per event), the Jacobian O(N^2 + N M) (the n-n block as in
``_collision``, the n-N and N-n blocks by one scatter each, N-N tridiagonal).
"""

from __future__ import annotations

import jax.numpy as jnp

from ._baths import AbstractDynamicBath
from ._bosons import BosonGrid, DynamicBosons
from ._collision import Bilinear
from ._distributions import thermal_occupation
from ._grid import Grid
from ._profiles import value_at

_BETA_MIN = 1e-300
_N_MIN = 1e-250  # N is clipped here before beta = ln(1 + 1/N) (T_b = 0, Newton overshoots)


# --------------------------------------------------------------------------- reservoir


def reservoir_temperature(bath: AbstractDynamicBath, t):
    d: DynamicBosons = bath.dynamic
    return bath.temperature(t) if d.t_reservoir is None else value_at(d.t_reservoir, t)


def heat_capacity(bath: AbstractDynamicBath, bgrid: BosonGrid, t=0.0):
    """c_k = v_k rho_b(Omega_k) of the state nodes [per 4 nu_F], shape (bgrid.size,)."""
    z = int(bgrid.zero_node)
    return jnp.asarray(bgrid.weights[z:]) * bath.mode_density(jnp.asarray(bgrid.state_omega), t)


def reservoir_occupation(bath: AbstractDynamicBath, bgrid: BosonGrid, t=0.0):
    """n_B(Omega_k / T_b) on the state nodes, shape (bgrid.size,)."""
    return thermal_occupation(jnp.asarray(bgrid.state_omega), reservoir_temperature(bath, t))


# --------------------------------------------------------------------------- occupations


def _log_q(beta):
    """ln(N (N + 1)) for N = 1 / (exp(beta) - 1): the slope dN/dbeta = -N (N + 1)."""
    return -beta - 2.0 * jnp.log(-jnp.expm1(-beta))


def _betas(bgrid: BosonGrid, nb):
    """beta_k = ln(1 + 1/N_k) on all nodes (0 at an Omega = 0 node)."""
    b = jnp.log1p(1.0 / jnp.maximum(nb, _N_MIN))
    if bgrid.zero_node:
        b = jnp.concatenate([jnp.zeros((1,)), b])
    return b


# --------------------------------------------------------------------------- the operator


class DynamicOperator:
    """One dynamic bath at fixed Delta and time: its events and their occupations."""

    def __init__(self, bath: AbstractDynamicBath, bgrid: BosonGrid, grid: Grid, delta, t, nb):
        self.bath, self.bgrid, self.grid = bath, bgrid, grid
        nn = grid.n
        e = grid.energies(delta)
        w = jnp.asarray(grid.weights)
        self.w = w
        lo, hi = bath.support(t)
        idx = jnp.arange(nn, dtype=jnp.float64)
        lower = idx[:, None] > idx[None, :]
        upper = idx[:, None] < idx[None, :]
        ww = w[:, None] * w[None, :]
        s_scat = jnp.where(lower | upper, ww, 0.0)  # no event on the diagonal (Omega = 0)
        s_pair = ww

        rho = grid.gap_ratio(delta)
        r = rho[:, None] * rho[None, :]
        c_plus, c_minus = 0.5 * (1.0 + r), 0.5 * (1.0 - r)
        c_scat, c_pair = (c_plus, c_minus) if bath.coupling == "current" else (c_minus, c_plus)
        om_s = jnp.abs(e[:, None] - e[None, :])
        om_p = e[:, None] + e[None, :]
        omega = jnp.asarray(bgrid.omega)

        def active(s, om):
            # inside the bath's support and on the Omega grid; outside, J = 0 on both
            # sides (a hard step: O(h) at omega0, docs/physics.md section 9)
            return (
                (s > 0) & (om > 0) & (om >= lo) & (om <= hi) & (om >= omega[0]) & (om <= omega[-1])
            )

        act_s, act_p = active(s_scat, om_s), active(s_pair, om_p)

        def kernel(s, om, coh, act):
            om_eval = jnp.where(act, om, 1.0)
            return jnp.where(act, 2.0 * s * coh * bath.spectral_density(om_eval, t), 0.0)

        self.k_s = kernel(s_scat, om_s, c_scat, act_s)  # symmetric, 0 on the diagonal
        self.k_p = kernel(s_pair, om_p, c_pair, act_p)  # symmetric
        self.lower, self.upper = lower.astype(jnp.float64), upper.astype(jnp.float64)
        # hat deposition and occupation at each event's energy
        self.k0_s, self.f_s = bgrid.locate(jnp.where(act_s, om_s, omega[0]))
        self.k0_p, self.f_p = bgrid.locate(jnp.where(act_p, om_p, omega[0]))
        beta = _betas(bgrid, nb)
        self.beta = beta

        def occ(k0, f, act):
            b = (1.0 - f) * beta[k0] + f * beta[k0 + 1]
            b = jnp.where(act, jnp.maximum(b, _BETA_MIN), 1.0)
            n_e = jnp.where(act, 1.0 / jnp.expm1(b), 0.0)
            lq = _log_q(b)
            lq_nodes = _log_q(jnp.maximum(beta, _BETA_MIN))
            # dN_e / dN_k0 and dN_e / dN_k0+1 (chain rule through beta)
            a0 = jnp.where(act, (1.0 - f) * jnp.exp(lq - lq_nodes[k0]), 0.0)
            a1 = jnp.where(act, f * jnp.exp(lq - lq_nodes[k0 + 1]), 0.0)
            return n_e, a0, a1

        self.n_s, self.a0_s, self.a1_s = occ(self.k0_s, self.f_s, act_s)
        self.n_p, self.a0_p, self.a1_p = occ(self.k0_p, self.f_p, act_p)
        self.c = heat_capacity(bath, bgrid, t)
        self.tau_b = value_at(bath.dynamic.tau_b, t)
        self.n_res = reservoir_occupation(bath, bgrid, t)
        self.z = int(bgrid.zero_node)
        self.m_full = len(bgrid.nodes)

    # ---- quasiparticle side
    def bilinear(self) -> Bilinear:
        """The quasiparticle operator at the current N, as ``_collision.Bilinear``."""
        w2 = 2.0 * self.w[:, None]
        m_down = self.k_s * self.lower / w2
        m_up = self.k_s * self.upper / w2
        m_pair = self.k_p / w2
        n_s, n_p = self.n_s, self.n_p
        ma = m_pair * n_p
        mb = -(m_down + m_up) * n_s - m_down - m_pair * n_p
        mc = (m_down + m_up) * n_s + m_up - m_pair * n_p
        md = m_down - m_up - m_pair
        processes = {
            "scattering": m_down * (n_s + 1.0) + m_up * n_s,
            "pair_breaking": m_pair * n_p,
            "recombination": m_pair * (n_p + 1.0),
        }
        return Bilinear(ma, mb, mc, md, None, processes)

    # ---- boson side
    def event_rates(self, n):
        """Net rates R^s (i > j, else 0) and R^p (ordered pairs), shape (N, N) each."""
        ni, nj = n[:, None], n[None, :]
        r_s = (
            self.lower
            * self.k_s
            * (ni * (1.0 - nj) * (self.n_s + 1.0) - nj * (1.0 - ni) * self.n_s)
        )
        r_p = self.k_p * (ni * nj * (self.n_p + 1.0) - (1.0 - ni) * (1.0 - nj) * self.n_p)
        return r_s, r_p

    def deposits(self, n):
        """(D^scattering, D^pair) on all Omega nodes (the Omega = 0 node included)."""
        r_s, r_p = self.event_rates(n)
        m = self.m_full

        def dep(r, k0, f):
            k0 = k0.ravel()
            vals = jnp.concatenate([(r * (1.0 - f)).ravel(), (r * f).ravel()])
            return jnp.zeros((m,)).at[jnp.concatenate([k0, k0 + 1])].add(vals)

        return dep(r_s, self.k0_s, self.f_s), dep(0.5 * r_p, self.k0_p, self.f_p)

    def boson_rhs(self, n, nb):
        d_s, d_p = self.deposits(n)
        d = (d_s + d_p)[self.z :]
        return d / self.c - (nb - self.n_res) / self.tau_b

    # ---- Jacobian blocks
    def _scatter_rows(self, vals, cols):
        """out[i, cols[i, j]] += vals[i, j], shape (N, m_full)."""
        nn = vals.shape[0]
        rows = jnp.broadcast_to(jnp.arange(nn)[:, None], vals.shape)
        return jnp.zeros((nn, self.m_full)).at[rows, cols].add(vals)

    def jac_n_nb(self, n):
        """d(dn/dt)/dN_b, shape (N, size)."""
        ni, nj = n[:, None], n[None, :]
        q_s = -self.k_s * (ni - nj)
        q_p = -self.k_p * (ni + nj - 1.0)
        out = (
            self._scatter_rows(q_s * self.a0_s, self.k0_s)
            + self._scatter_rows(q_s * self.a1_s, self.k0_s + 1)
            + self._scatter_rows(q_p * self.a0_p, self.k0_p)
            + self._scatter_rows(q_p * self.a1_p, self.k0_p + 1)
        )
        return out[:, self.z :] / self.w[:, None]

    def jac_nb_n(self, n):
        """d(dN_b/dt)/dn, shape (size, N)."""
        nj = n[None, :]
        n_s = self.n_s
        v_s = (
            (self.lower - self.upper)
            * self.k_s
            * ((1.0 - nj) * (n_s + self.lower) + nj * (n_s + self.upper))
        )
        v_p = self.k_p * (nj + self.n_p)
        out = (
            self._scatter_rows(v_s * (1.0 - self.f_s), self.k0_s)
            + self._scatter_rows(v_s * self.f_s, self.k0_s + 1)
            + self._scatter_rows(v_p * (1.0 - self.f_p), self.k0_p)
            + self._scatter_rows(v_p * self.f_p, self.k0_p + 1)
        )
        return out.T[self.z :] / self.c[:, None]

    def jac_nb_nb(self, n):
        """d(dN_b/dt)/dN_b (tridiagonal, stored dense), shape (size, size)."""
        ni, nj = n[:, None], n[None, :]
        m = self.m_full
        g_s = self.lower * self.k_s * (ni - nj)
        g_p = 0.5 * self.k_p * (ni + nj - 1.0)
        flat_idx, flat_val = [], []
        for g, k0, f, a0, a1 in (
            (g_s, self.k0_s, self.f_s, self.a0_s, self.a1_s),
            (g_p, self.k0_p, self.f_p, self.a0_p, self.a1_p),
        ):
            for dk, hk in ((0, 1.0 - f), (1, f)):
                for dl, a in ((0, a0), (1, a1)):
                    flat_idx.append(((k0 + dk) * m + (k0 + dl)).ravel())
                    flat_val.append((g * hk * a).ravel())
        full = jnp.zeros((m * m,)).at[jnp.concatenate(flat_idx)].add(jnp.concatenate(flat_val))
        full = full.reshape(m, m)[self.z :, self.z :]
        size = full.shape[0]
        return full / self.c[:, None] - jnp.eye(size) / self.tau_b

"""The nonlinear collision operator I_b[n](xi) of docs/physics.md section 3.

(One module of ~680 lines on purpose: the thermal and the drive operators share the
bilinear form, its fast passes and its Jacobian, and the discretization below is read in
one place.)

    I_b[n](xi) = 2 integral_0^inf dxi' {  theta(E - E') J(E - E') c_s [ N (n' - n) - n (1 - n') ]
                                        + theta(E' - E) J(E' - E) c_s [ N (n' - n) + n' (1 - n) ]
                                        + J(E + E') c_p [ N (1 - n - n') - n n' ] }

Discretization (product integration, docs/physics.md section 8). At each node xi_i
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
- pointwise error O(h^2) in the grid spacing, the steps included (tested
  against the literal eq. (14)/(15));
- the scattering part conserves sum_j w_j n_j up to the same O(h^2), not to
  rounding: a node-pair (Nystrom) scheme evaluates the event (i, j) from row i
  and its reverse from row j with different cut cells. Symmetrizing the two
  weights makes conservation exact but, near a step, costs a phase-dependent
  O(h) error (measured), so pointwise accuracy was chosen; exact event
  bookkeeping is done where it is required (dynamic bosons, docs/physics.md
  section 9).

Away from thresholds this is the trapezoid rule in u. At the diagonal
(Omega -> 0) N ~ T_b / Omega diverges while n' - n -> 0; for baths with
J(0) > 0 the one-sided limit of N (n' - n) is used, written with
x = n / (1 - n) so that it also vanishes exactly on the thermal state:
lim N (n' - n) = -+ T_b n (1 - n) d ln x / dE (one-sided difference).

The line drives (``ClassicalDrive``: stimulated terms only; ``ReadoutDrive``: with
spontaneous ones) use Galerkin event weights instead (``_drive_entries``): each line
node is an exact delta line whose events are integrated over their lower state against
the hat functions of both ends, so the density of states E'/xi' of the upper state is
never evaluated at the gap edge, every event has one rate (exact number), and the
result converges at O(h^2).

Layout and cost: the coefficient matrices are elementwise expressions of a few
kernels (support fractions, J, coherence factors, N), and the operator is one
fused reduction over an N x N array per bath: O(N^2) time, O(N) memory, no
matrix products and no transposes. W_ij is exactly the trapezoid weight or 0
except at the <= 4 nodes per row and support whose cells a support end cuts, so
the N x N pass only compares j with two integer bounds per support, and those
cut nodes add their exact fractions from fixed-size gathers (O(N)); see
``_ThermalBilinear``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ._baths import AbstractBath, AbstractBosonBath
from ._gap import thermal_distribution
from ._grid import Grid

_TINY = 1e-300
_X_MAX = 700.0  # largest Omega / T in the Bose factors (e^700 is finite, e^710 is not)
_BLOCK = 32  # rows per block of the fused passes (tiles of 32 x N stay in cache)


class Bilinear:
    """One bath's discretized operator at fixed Delta, as a bilinear form in n:

        I_i = 2 sum_j [ ma_ij + mb_ij n_i + mc_ij n_j + md_ij n_i n_j ] + diag(n)_i.

    The four coefficient matrices are elementwise expressions of a few kernels, so
    that ``apply`` is one fused pass over an N x N array (no matrix products).
    """

    def __init__(self, ma, mb, mc, md, diag=None, processes=None):
        self.ma, self.mb, self.mc, self.md = ma, mb, mc, md
        self.diag = diag  # callable n -> (N,) or None
        # process -> weight matrix multiplying its occupation factor (see process_rates)
        self._processes = processes

    def process_rates(self, n):
        """Rates of the bath's processes at each node [events per unit time, like dn/dt]:
        "scattering" out of xi_i (emission and absorption, weight x n (1 - n')),
        "pair_breaking" into xi_i (weight x (1 - n)(1 - n')) and "recombination" out
        of xi_i (weight x n n')."""
        ni, nj = n[:, None], n[None, :]
        occupation = {
            "scattering": ni * (1.0 - nj),
            "pair_breaking": (1.0 - ni) * (1.0 - nj),
            "recombination": ni * nj,
        }
        return {k: 2.0 * jnp.sum(m * occupation[k], axis=1) for k, m in self._processes.items()}

    def apply(self, n):
        ni, nj = n[:, None], n[None, :]
        out = 2.0 * jnp.sum(self.ma + self.mb * ni + (self.mc + self.md * ni) * nj, axis=1)
        if self.diag is not None:
            out = out + self.diag(n)
        return out

    def jacobian(self, n):
        """d I / d n without the diagonal-limit term: O(N^2)."""
        ni, nj = n[:, None], n[None, :]
        jac = 2.0 * (self.mc + self.md * ni)
        d = 2.0 * jnp.sum(self.mb + self.md * nj, axis=1)
        idx = jnp.arange(n.shape[0])
        return jac.at[idx, idx].add(d)

    def add_jacobian(self, jac, n):
        """`jac` + ``jacobian(n)``. The operators that build their Jacobian from blocks of
        rows or scattered entries add them into `jac` in place (no second N x N array;
        ``Model.jacobian``); this generic form adds a whole matrix."""
        return jac + self.jacobian(n)


def _row_sum(x):
    """Row sums of a (B, N) block as a matrix-vector product: XLA:CPU then fuses the
    whole elementwise block into one loop that writes x once, where a reduce is
    handed to a library kernel that accepts only some elementwise ops and leaves
    the others as ~10 separate (B, N) temporaries (measured: 1.3-1.7x slower).
    Exact in float64 up to the order of the additions."""
    return x @ jnp.ones((x.shape[1],), x.dtype)


def _pair_layout(nn: int, block: int = _BLOCK):
    """(B, nb, Np) of the node-pair passes: row blocks of B nodes, an odd number nb of
    them, Np = nb B >= nn (the padding is < nb nodes). With nb odd, row block b and the
    h = (nb - 1) / 2 blocks after it (cyclically) hold every unordered pair of distinct
    blocks exactly once."""
    if nn <= block:
        return nn, 1, nn
    nb = -(-nn // block)
    nb += 1 - nb % 2
    b = -(-nn // nb)
    return b, nb, nb * b


def _index_of_energy(grid: Grid, e, delta):
    """Fractional grid index of the state with energy E; -1 below the gap edge."""
    above = e > delta
    arg = jnp.where(above, e * e - delta * delta, 1.0)
    return jnp.where(above, grid.index_of(jnp.sqrt(arg)), -1.0)


def _fractions(n_points: int, x_lo, x_hi, node):
    """Covered fraction of the hat function of `node` by the support [s_lo, s_hi].

    x_lo = s_lo - node and x_hi = s_hi - node (index units, any broadcast shape).
    The hat of node j lives on cells j - 1 (rising half) and j (falling half);
    each contributes the exact integral of the hat over the covered part.
    """
    a = jnp.clip(x_lo, 0.0, 1.0)
    b = jnp.maximum(a, jnp.clip(x_hi, 0.0, 1.0))
    left = (b - a) - 0.5 * (b * b - a * a)  # falling half, on cell `node`
    a1 = jnp.clip(x_lo + 1.0, 0.0, 1.0)
    b1 = jnp.maximum(a1, jnp.clip(x_hi + 1.0, 0.0, 1.0))
    right = 0.5 * (b1 * b1 - a1 * a1)  # rising half, on cell `node - 1`
    return jnp.where(node <= n_points - 2, left, 0.0) + jnp.where(node >= 1, right, 0.0)


def _row_fractions(grid: Grid, s_lo, s_hi):
    """W_ij: covered fraction of hat j by row i's support [s_lo_i, s_hi_i] (index units)."""
    nn = grid.n
    cols = jnp.arange(nn, dtype=jnp.float64)[None, :]
    return _fractions(nn, s_lo[:, None] - cols, s_hi[:, None] - cols, cols)


class _ThermalBilinear(Bilinear):
    """A thermal bath's operator, evaluated without materializing its matrices.

    Every coefficient is an elementwise function of a few per-node vectors (energies,
    support indices, coherence ratios, Bose factors), so ``apply`` and ``jacobian``
    are single fused passes over the N x N (i, j) plane that never store the four
    coefficient matrices (measured: the materialized form was ~50 reference passes
    at N = 1000, dominated by temporaries; see benchmarks/README.md). The matrices
    ``ma .. md`` and the process weights are still available (built on access).

    Fast path (``apply``, ``jacobian``): the covered hat fraction W_ij of a support
    [s_lo, s_hi] (index units) is exactly the trapezoid weight (1, 1/2 at the two
    end nodes) for the nodes floor(s_lo) + 2 .. floor(s_hi) - 1, exactly 0 outside
    floor(s_lo) .. floor(s_hi) + 1, and fractional only at the <= 4 cut nodes
    floor(s_lo), floor(s_lo) + 1, floor(s_hi), floor(s_hi) + 1. The N x N pass
    therefore tests two integer bounds per support instead of evaluating the
    fractions, and the cut nodes (fixed-size gathers, 4 columns per support and
    row) add their exact fractions, computed by the same ``_fractions``: O(N) work
    that carries the steps' Delta dependence (floor is locally constant). The
    matrices (``ma .. md``, from ``_elements``: every fraction evaluated) are the
    straightforward form; the tests compare the fast path against it.

    Transcendental functions per matrix element: one ``expm1`` (the scattering Bose
    factor 1 / expm1(|E - E'| / T), exact for small arguments and 0 on overflow);
    the pair factor 1 / (e^{E/T} e^{E'/T} - 1) is an outer product of per-node
    exponentials (no cancellation: E + E' >= 2 Delta).

    ``apply`` evaluates these kernels once per unordered node pair (``_pair_sums``:
    they are symmetric in i <-> j, and each row keeps its own whole-cell mask and
    column weight), so half the matrix elements' transcendental work; ``jacobian``
    still evaluates every ordered pair (``_rows_add`` over row blocks).
    """

    def __init__(self, bath, grid, delta, t, channels):
        self.bath, self.grid, self.t = bath, grid, t
        self.scattering, self.pair = "scattering" in channels, "pair" in channels
        e = grid.energies(delta)
        nn = grid.n
        idx = jnp.arange(nn, dtype=jnp.float64)
        lo, hi = bath.support(t)
        e_cap = 4.0 * grid.xi_max + 10.0  # beyond every state: keeps indices finite
        hi = jnp.minimum(hi, e_cap)

        def s_of(x):
            return _index_of_energy(grid, jnp.minimum(x, e_cap), delta)

        # down: E' in [E - hi, E - lo]; up: E' in [E + lo, E + hi]; pair: E' in [lo - E, hi - E].
        # With lo = 0 the down/up split E' = E is the node itself, exactly.
        self.row = dict(
            e=e, i=idx, rho=grid.gap_ratio(delta),
            sd_lo=s_of(e - hi), sd_hi=jnp.where(lo == 0, idx, s_of(e - lo)),
            su_lo=jnp.where(lo == 0, idx, s_of(e + lo)), su_hi=s_of(e + hi),
            sp_lo=s_of(lo - e), sp_hi=s_of(hi - e),
        )
        jac = grid.dxi_du * grid.du
        trap = jac.copy()
        trap[0] *= 0.5
        trap[-1] *= 0.5
        # jac: xi'(u_j) du; trap: the same times the trapezoid weight of a whole hat
        # (what W_ij is inside a support)
        self.col = dict(e=e, j=idx, rho=grid.gap_ratio(delta),
                        jac=jnp.asarray(jac), trap=jnp.asarray(trap))
        t_b = bath.temperature(t)
        self.t_b = t_b
        self.fast_occupation = type(bath).occupation is AbstractBosonBath.occupation
        if self.fast_occupation:
            safe_t = jnp.where(t_b > 0, t_b, 1.0)
            self.inv_t = 1.0 / safe_t
            self.hot = jnp.where(t_b > 0, 1.0, 0.0)  # N = 0 in the vacuum
            # e^{E/T}, E/T capped at 350 so that e^{E/T} e^{E'/T} stays finite (and its
            # derivative too; N <= 1e-152 there)
            a = jnp.exp(jnp.minimum(e * self.inv_t, 0.5 * _X_MAX))
            self.row["a"], self.col["a"] = a, a
        self.diag = self._diag

    # ---- elementwise coefficients (one implementation, shared by every path)
    def _coherence_weights(self, rho_r, half_w, half_wr):
        """weight x (c_s, c_p) from the column factors weight / 2 and weight rho' / 2:
        c+- = (1 +- Delta^2 / (E E')) / 2 with rho = Delta / E (finite in the normal state)."""
        plus, minus = half_w + half_wr * rho_r, half_w - half_wr * rho_r
        return (plus, minus) if self.bath.coupling == "current" else (minus, plus)

    def _scattering_occupation(self, om):
        """N(Omega) at Omega > 0: 1 / expm1(Omega / T) (0 in the vacuum and on overflow)."""
        if self.fast_occupation:
            # (Omega / T capped at 700: N ~ 1e-304 there, and its derivative stays finite
            # instead of inf / inf, which made d/dDelta NaN for cold baths)
            return self.hot / jnp.expm1(jnp.minimum(om * self.inv_t, _X_MAX))
        return self.bath.occupation(om, self.t)

    def _pair_occupation(self, a_r, a_c, om):
        """N(E + E') at E + E' > 0: 1 / (e^{E/T} e^{E'/T} - 1), an outer product."""
        if self.fast_occupation:
            return self.hot / (a_r * a_c - 1.0)
        return self.bath.occupation(om, self.t)

    def _scattering_kernel(self, r, c, active, weight):
        """(k_s, N_s) of the scattering lines at |E - E'|: k_s = weight J c_s where
        `active`, else 0; N_s = 0 where inactive and on the diagonal (its limit is
        the `diag` term)."""
        om = jnp.abs(r["e"] - c["e"])
        c_scat, _ = self._coherence_weights(r["rho"], 0.5 * weight, 0.5 * weight * c["rho"])
        j_s = self.bath.spectral_density(jnp.where(active, om, 1.0), self.t)
        k_s = jnp.where(active, c_scat * j_s, 0.0)
        ok = active & (om > 0)
        occ = self._scattering_occupation(jnp.where(ok, om, 1.0))
        return k_s, jnp.where(ok, occ, 0.0)

    def _pair_kernel(self, r, c, active, weight):
        """(k_p, N_p) of the pair line at E + E' (see ``_scattering_kernel``)."""
        om = r["e"] + c["e"]
        _, c_pair = self._coherence_weights(r["rho"], 0.5 * weight, 0.5 * weight * c["rho"])
        j_p = self.bath.spectral_density(jnp.where(active, om, 1.0), self.t)
        k_p = jnp.where(active, c_pair * j_p, 0.0)
        ok = active & (om > 0)
        if self.fast_occupation:
            occ = self.hot / jnp.where(ok, r["a"] * c["a"] - 1.0, 1.0)
        else:
            occ = self._pair_occupation(None, None, jnp.where(ok, om, 1.0))
        return k_p, jnp.where(ok, occ, 0.0)

    def _elements(self, r, c):
        """(m_down, m_up, m_pair, N_s, N_p) for row values r and column values c
        (broadcasting: (N, 1) x (1, N) for the matrices, (N,) x (N,) for the diagonal),
        with the covered fractions evaluated everywhere (the reference form)."""
        nn = self.grid.n
        zero = jnp.zeros(())
        m_down = m_up = m_pair = n_s = n_p = zero
        if self.scattering:
            w_down = _fractions(nn, r["sd_lo"] - c["j"], r["sd_hi"] - c["j"], c["j"])
            w_up = _fractions(nn, r["su_lo"] - c["j"], r["su_hi"] - c["j"], c["j"])
            k_s, n_s = self._scattering_kernel(r, c, w_down + w_up > 0, c["jac"])
            m_down, m_up = w_down * k_s, w_up * k_s
        if self.pair:
            w_pair = _fractions(nn, r["sp_lo"] - c["j"], r["sp_hi"] - c["j"], c["j"])
            k_p, n_p = self._pair_kernel(r, c, w_pair > 0, c["jac"])
            m_pair = w_pair * k_p
        return m_down, m_up, m_pair, n_s, n_p

    def _matrix_elements(self):
        r = {k: v[:, None] for k, v in self.row.items()}
        c = {k: v[None, :] for k, v in self.col.items()}
        return self._elements(r, c)

    def _diagonal_elements(self):
        return self._elements(self.row, self.col)

    # ---- the fast path: whole cells by index bounds, cut cells by gathers
    def _supports(self):
        """name -> (s_lo, s_hi) of the active supports (index units, per row)."""
        r = self.row
        out = {}
        if self.scattering:
            out["down"] = (r["sd_lo"], r["sd_hi"])
            out["up"] = (r["su_lo"], r["su_hi"])
        if self.pair:
            out["pair"] = (r["sp_lo"], r["sp_hi"])
        return out

    def _bounds(self):
        """Per row, the first and last node whose hat a support covers whole:
        floor(s_lo) + 2 and floor(s_hi) - 1 (possibly an empty range)."""
        return {
            name: (jnp.floor(lo) + 2.0, jnp.floor(hi) - 1.0)
            for name, (lo, hi) in self._supports().items()
        }

    def _cut_nodes(self):
        """name -> (nodes (N, 4) int, W (N, 4)): the cut nodes floor(s_lo), +1,
        floor(s_hi), +1 of each row's support and their covered fractions (0 for
        nodes off the grid, and for a node listed twice, its second entry)."""
        nn = self.grid.n
        out = {}
        for name, (lo, hi) in self._supports().items():
            f_lo, f_hi = jnp.floor(lo)[:, None], jnp.floor(hi)[:, None]
            nodes = jnp.concatenate([f_lo, f_lo + 1.0, f_hi, f_hi + 1.0], axis=1)
            fresh = jnp.concatenate(
                [jnp.ones((nn, 2), bool), jnp.broadcast_to(nodes[:, 2:] > f_lo + 1.0, (nn, 2))],
                axis=1,
            )
            valid = fresh & (nodes >= 0.0) & (nodes <= nn - 1.0)
            w = _fractions(nn, lo[:, None] - nodes, hi[:, None] - nodes, nodes)
            w = jnp.where(valid, w, 0.0)
            out[name] = (jnp.clip(nodes, 0.0, nn - 1.0).astype(jnp.int32), w)
        return out

    def _cut_terms(self, n):
        """name -> (nodes, m, N, n') at the cut nodes of each support, shape (N, 4):
        m = W J c xi' du and the node's occupation, ready for the brackets."""
        r = {k: v[:, None] for k, v in self.row.items()}
        out = {}
        for name, (nodes, w) in self._cut_nodes().items():
            c = {k: v[nodes] for k, v in self.col.items()}
            if name == "pair":
                k, occ = self._pair_kernel(r, c, w > 0, c["jac"])
            else:
                k, occ = self._scattering_kernel(r, c, w > 0, c["jac"])
            out[name] = (nodes, w * k, occ, n[nodes])
        return out

    def _fast_rows(self, n):
        rows = {k: self.row[k] for k in ("e", "rho")}
        if self.fast_occupation:
            rows["a"] = self.row["a"]
        for name, (first, last) in self._bounds().items():
            rows[name + "_from"], rows[name + "_to"] = first, last
        rows["n"], rows["n_hole"] = n, 1.0 - n
        return rows

    def _whole_columns(self, scale=1.0):
        """Column factors of the whole-cell pass, shape (1, N) (kernels times `scale`)."""
        col = self.col
        half_w = (0.5 * scale) * col["trap"]
        c = dict(e=col["e"], j=col["j"], half_w=half_w, half_wr=half_w * col["rho"])
        if self.fast_occupation:
            # column 0 is never covered whole (its hat starts at the gap edge, always
            # cut or outside): a stand-in > 1 there keeps e^{E/T} e^{E'/T} - 1 > 0
            # (E_0 = 0 in the normal state) without a select per element
            c["a"] = col["a"].at[0].set(2.0)
        return {k: v[None, :] for k, v in c.items()}

    def _whole_cells(self, r, c, nj):
        """(k_s, N_s, up, k_p, N_p) over the nodes covered whole: k = J c xi' du x
        (trapezoid weight), 0 elsewhere; `up` marks the up-scattering nodes. Inside
        those ranges Omega > 0 (E' <= E - omega_lo below node i or above it), so the
        Bose factors need no diagonal guard; outside them the values are finite
        stand-ins that the zero k removes."""
        bath, t = self.bath, self.t
        c_scat, c_pair = self._coherence_weights(r["rho"], c["half_w"], c["half_wr"])
        k_s = n_s = up = k_p = n_p = None
        if self.scattering:
            down = (c["j"] >= r["down_from"]) & (c["j"] <= r["down_to"])
            up = (c["j"] >= r["up_from"]) & (c["j"] <= r["up_to"])
            active = down | up
            om = jnp.where(active, jnp.abs(r["e"] - c["e"]), 1.0)
            k_s = jnp.where(active, c_scat * bath.spectral_density(om, t), 0.0)
            n_s = self._scattering_occupation(om)
        if self.pair:
            inside = (c["j"] >= r["pair_from"]) & (c["j"] <= r["pair_to"])
            om = jnp.where(inside, r["e"] + c["e"], 1.0)
            k_p = jnp.where(inside, c_pair * bath.spectral_density(om, t), 0.0)
            n_p = self._pair_occupation(r.get("a"), c.get("a"), om)
        return k_s, n_s, up, k_p, n_p

    def _rows_map(self, fn, rows):
        """fn(rows (B, 1) dict) -> (B, ...) evaluated over blocks of rows (lax.map):
        the tiles of one block stay in cache instead of N x N temporaries."""
        nn = self.grid.n
        b = min(_BLOCK, nn)
        nb = -(-nn // b)
        pad = nb * b - nn

        def blocks(v):
            v = jnp.concatenate([v, jnp.broadcast_to(v[-1:], (pad,))]) if pad else v
            return v.reshape(nb, b)

        out = jax.lax.map(lambda rb: fn({k: v[:, None] for k, v in rb.items()}),
                          {k: blocks(v) for k, v in rows.items()})
        return jax.tree.map(lambda x: x.reshape((nb * b,) + x.shape[2:])[:nn], out)

    def _rows_add(self, fn, rows, acc):
        """(acc + the (N, N) tiles of fn, the (N,) row vector of fn): fn(rows (B, 1)
        dict) -> ((B, N) tile, (B,) vector) over blocks of rows in a ``fori_loop`` that
        adds each tile into `acc` by a dynamic slice update (in place in XLA: the only
        N x N buffer is `acc`; ``_rows_map`` would stack the tiles into a second one).
        The last block starts at N - B and skips the rows an earlier block did."""
        nn = self.grid.n
        b = min(_BLOCK, nn)
        nb = -(-nn // b)

        def body(k, carry):
            acc, vec = carry
            start = jnp.minimum(k * b, nn - b)
            tile, part = fn({key: jax.lax.dynamic_slice(v, (start,), (b,))[:, None]
                             for key, v in rows.items()})
            new = (start + jnp.arange(b)) >= k * b  # rows not done by an earlier block
            tile = jnp.where(new[:, None], tile, 0.0)
            part = jnp.where(new, part, 0.0)
            old = jax.lax.dynamic_slice(acc, (start, 0), (b, nn))
            acc = jax.lax.dynamic_update_slice(acc, old + tile, (start, 0))
            vec = jax.lax.dynamic_update_slice(
                vec, jax.lax.dynamic_slice(vec, (start,), (b,)) + part, (start,))
            return acc, vec

        return jax.lax.fori_loop(0, nb, body, (acc, jnp.zeros((nn,), acc.dtype)))

    # ---- the node-pair pass: each unordered pair of nodes evaluated once
    def _pair_nodes(self, n, npad):
        """Per-node values of the node-pair pass, padded to `npad` nodes: padding nodes
        get finite stand-ins (energies above the last node's, so that |E - E'| > 0 off
        the diagonal), cover nothing (empty index ranges) and carry weight 0, so they
        add nothing to either end of a pair."""
        nn = self.grid.n
        pad = npad - nn
        big = float(npad + 1)

        def padded(v, fill=None):
            if not pad:
                return v
            tail = jnp.broadcast_to(v[-1:] if fill is None else jnp.asarray(fill, v.dtype), (pad,))
            return jnp.concatenate([v, tail])

        r = self.row
        e = r["e"]
        if pad:  # above the last node, so that |E - E'| > 0 for every pair of distinct nodes
            e = jnp.concatenate([e, e[-1] + jnp.arange(1.0, pad + 1.0)])
        out = dict(e=e, rho=padded(r["rho"]), n=padded(n),
                   i=jnp.arange(npad, dtype=jnp.float64), w=padded(self.col["trap"], 0.0))
        out["hr"] = 0.5 * out["rho"]
        if self.fast_occupation:
            out["a"] = padded(r["a"])
        for name, (first, last) in self._bounds().items():
            # (an up range may run past the last node: its hats end there)
            last = jnp.minimum(last, nn - 1.0)
            out[name + "_from"], out[name + "_to"] = padded(first, big), padded(last, -1.0)
        return out

    def _pair_terms(self, r, c, both=True):
        """Whole-cell terms of the node pairs (i, j), i over the rows r (B, 1) and j over
        the columns c (1, L), each pair's kernels (J, c, N: the transcendental work)
        evaluated once: (t_row, t_col) with row i's bracket sum, t_row_ij = W_ij/w_j x
        [J c_s (down or up bracket) + J c_p (pair bracket)] (W_ij/w_j = 1 on the nodes
        row i covers whole, else 0) and the same for row j, t_col_ij = W_ji/w_i x
        [...]_ji. The kernels are symmetric in i <-> j (|E - E'|, E + E', c+-), the
        scattering bracket is antisymmetric (row j's down bracket is minus row i's up
        bracket and vice versa) and the pair bracket symmetric. `both` = False: t_row
        only (the diagonal tile, where every ordered pair is a row's)."""
        bath, t = self.bath, self.t
        i, j, ni, nj = r["i"], c["i"], r["n"], c["n"]

        def covers(lo, hi, x):  # lo <= x <= hi
            return (x >= lo) & (x <= hi)

        def coherence(plus):
            return 0.5 + c["hr"] * r["rho"] if plus else 0.5 - c["hr"] * r["rho"]

        current = self.bath.coupling == "current"
        t_row = t_col = 0.0
        if self.scattering:
            own = covers(r["down_from"], r["down_to"], j) | covers(r["up_from"], r["up_to"], j)
            om = jnp.abs(r["e"] - c["e"])
            if both:
                other = (covers(c["down_from"], c["down_to"], i)
                         | covers(c["up_from"], c["up_to"], i))
            else:
                om = jnp.where(own, om, 1.0)
            k = coherence(current) * bath.spectral_density(om, t)
            occ = self._scattering_occupation(om)
            nn_ = ni * nj
            # row i: up (j > i) N (n' - n) + n' (1 - n), down N (n' - n) - n (1 - n')
            f = k * (occ * (nj - ni) + jnp.where(j > i, nj - nn_, nn_ - ni))
            t_row = jnp.where(own, f, 0.0)
            if both:
                t_col = jnp.where(other, -f, 0.0)
        if self.pair:
            own = covers(r["pair_from"], r["pair_to"], j)
            om = r["e"] + c["e"]
            a_a = r["a"] * c["a"] - 1.0 if self.fast_occupation else None
            if both:
                other = covers(c["pair_from"], c["pair_to"], i)
            else:
                om = jnp.where(own, om, 1.0)
                a_a = None if a_a is None else jnp.where(own, a_a, 1.0)
            k = coherence(not current) * bath.spectral_density(om, t)
            if self.fast_occupation:
                occ = self.hot / a_a
            else:
                occ = self.bath.occupation(om, t)
            g = k * (occ * (1.0 - ni - nj) - ni * nj)
            t_row = t_row + jnp.where(own, g, 0.0)
            if both:
                t_col = t_col + jnp.where(other, g, 0.0)
        return t_row, t_col

    def _pair_sums(self, n):
        """sum_j W_ij J c [bracket]_ij over the nodes each row covers whole, shape (N,):
        one scan over row blocks; block b pairs with itself (the diagonal tile, row
        terms only) and with the h blocks after it cyclically (row and column terms),
        so each unordered node pair is evaluated once; the column terms accumulate in
        a vector of 2 Np (the window wraps at most once). Memory O(N B)."""
        nn = self.grid.n
        b, nb, npad = _pair_layout(nn)
        h = (nb - 1) // 2
        nodes = self._pair_nodes(n, npad)
        twice = {k: jnp.concatenate([v, v]) for k, v in nodes.items()}

        def step(acc, k):
            start = k * b
            r = {key: jax.lax.dynamic_slice_in_dim(v, start, b) for key, v in nodes.items()}
            t_row, _ = self._pair_terms(
                {key: v[:, None] for key, v in r.items()},
                {key: v[None, :] for key, v in r.items()}, both=False,
            )
            row = t_row @ r["w"]
            if h:
                c = {key: jax.lax.dynamic_slice_in_dim(v, start + b, h * b)
                     for key, v in twice.items()}
                t_row, t_col = self._pair_terms(
                    {key: v[:, None] for key, v in r.items()},
                    {key: v[None, :] for key, v in c.items()},
                )
                # one tile carries both (real: row terms, imaginary: column terms), so
                # that XLA emits one loop over the pairs with each kernel evaluated in
                # it; two real tiles made it store the kernels and make two more passes
                z = jax.lax.complex(t_row, t_col)
                row = row + jnp.real(z @ c["w"].astype(z.dtype))
                seg = jax.lax.dynamic_slice_in_dim(acc, start + b, h * b)
                col = jnp.imag(r["w"].astype(z.dtype) @ z)
                acc = jax.lax.dynamic_update_slice_in_dim(acc, seg + col, start + b, 0)
            return acc, row

        acc, rows = jax.lax.scan(step, jnp.zeros((2 * npad,)), jnp.arange(nb))
        return (rows.reshape(-1) + acc[:npad] + acc[npad:])[:nn]

    # ---- fused passes
    def apply(self, n):
        out = self._pair_sums(n)
        ni = n[:, None]
        for name, (_, m, occ, nc) in self._cut_terms(n).items():
            if name == "down":
                terms = m * (occ * (nc - ni) - ni * (1.0 - nc))
            elif name == "up":
                terms = m * (occ * (nc - ni) + nc * (1.0 - ni))
            else:
                terms = m * (occ * (1.0 - ni - nc) - ni * nc)
            out = out + jnp.sum(terms, axis=1)
        return 2.0 * out + self._diag(n)

    def jacobian(self, n):
        """d I / d n without the diagonal-limit term: O(N^2), one blocked pass."""
        return self.add_jacobian(jnp.zeros((n.shape[0], n.shape[0]), n.dtype), n)

    def add_jacobian(self, jac, n):
        """`jac` + d I / d n (without the diagonal-limit term), written into `jac` block
        of rows by block of rows (``_rows_add``) and by scatter-adds: XLA updates the
        buffer in place, so the Jacobian costs no N x N temporary beside it."""
        c = self._whole_columns(scale=2.0)  # the 2 of I = 2 sum_j ..., folded in
        nj = n[None, :]
        nn = n.shape[0]

        def block(r):
            ni = r["n"]
            k_s, n_s, up, k_p, n_p = self._whole_cells(r, c, nj)
            jac = d = 0.0
            if self.scattering:
                # down: m (N + n), up: m (N + 1 - n); row sums m (N + 1 - n'), m (N + n')
                jac = k_s * (n_s + jnp.where(up, r["n_hole"], ni))
                d = k_s * (n_s + jnp.where(up, nj, 1.0 - nj))
            if self.pair:
                jac = jac - k_p * (n_p + ni)
                d = d + k_p * (n_p + nj)
            return jac, _row_sum(d)

        jac, d = self._rows_add(block, self._fast_rows(n), jac)
        ni = n[:, None]
        rows = jnp.broadcast_to(jnp.arange(nn)[:, None], (nn, 4))
        for name, (nodes, m, occ, nc) in self._cut_terms(n).items():
            if name == "down":
                v, dv = m * (occ + ni), m * (occ + 1.0 - nc)
            elif name == "up":
                v, dv = m * (occ + 1.0 - ni), m * (occ + nc)
            else:
                v, dv = -m * (occ + ni), m * (occ + nc)
            jac = jac.at[rows, nodes].add(2.0 * v)
            d = d + 2.0 * jnp.sum(dv, axis=1)
        idx = jnp.arange(nn)
        return jac.at[idx, idx].add(-d)

    def _diag(self, n):
        # Omega -> 0 at the diagonal (only matters for J(0) > 0): the bilinear form
        # used N = 0 there, i.e. the brackets -+ n (1 - n); add the one-sided limits of
        # N (n' - n), written with x = n / (1 - n) so that they cancel exactly on the
        # thermal state: lim N (n' - n) = -+ T_b n (1 - n) d ln x / dE (one-sided
        # differences below / above node i).
        if not self.scattering:
            return jnp.zeros_like(n)
        d_down, d_up, *_ = self._diagonal_elements()
        e = self.row["e"]
        nc = jnp.clip(n, _TINY, 1.0 - 1e-16)
        lx = jnp.log(nc) - jnp.log1p(-nc)
        slope = jnp.diff(lx) / jnp.diff(e)
        zero = jnp.zeros((1,))
        below, above = jnp.concatenate([zero, slope]), jnp.concatenate([slope, zero])
        q = self.t_b * n * (1.0 - n)
        return 2.0 * q * (d_up * above - d_down * below)

    def process_rates(self, n):
        """``Bilinear.process_rates`` over blocks of rows (``_rows_map``): each block's
        coefficients from ``_elements`` (every covered fraction evaluated, as in the
        matrices), O(N B) memory instead of the five N x N matrices."""
        nj = n[None, :]
        cols = {k: v[None, :] for k, v in self.col.items()}

        def block(r):
            m_down, m_up, m_pair, n_s, n_p = self._elements(r, cols)
            ni = r["n"]
            out = {  # emission (N + 1), absorption N; breaking N, recombination N + 1
                "scattering": (m_down * (n_s + 1.0) + m_up * n_s) * (ni * (1.0 - nj)),
                "pair_breaking": m_pair * n_p * ((1.0 - ni) * (1.0 - nj)),
                "recombination": m_pair * (n_p + 1.0) * (ni * nj),
            }
            return {k: 2.0 * _row_sum(jnp.broadcast_to(v, (ni.shape[0], nj.shape[1])))
                    for k, v in out.items()}

        return self._rows_map(block, {**self.row, "n": n})

    # ---- the matrices, on demand (tests, process rates)
    def _coefficients(self):
        m_down, m_up, m_pair, n_s, n_p = self._matrix_elements()
        shape = (self.grid.n, self.grid.n)
        return tuple(jnp.broadcast_to(x, shape) for x in (m_down, m_up, m_pair, n_s, n_p))

    @property
    def ma(self):
        m_down, m_up, m_pair, n_s, n_p = self._coefficients()
        return m_pair * n_p

    @property
    def mb(self):
        m_down, m_up, m_pair, n_s, n_p = self._coefficients()
        return -(m_down + m_up) * n_s - m_down - m_pair * n_p

    @property
    def mc(self):
        m_down, m_up, m_pair, n_s, n_p = self._coefficients()
        return (m_down + m_up) * n_s + m_up - m_pair * n_p

    @property
    def md(self):
        m_down, m_up, m_pair, n_s, n_p = self._coefficients()
        return m_down - m_up - m_pair

    @property
    def _processes(self):
        m_down, m_up, m_pair, n_s, n_p = self._coefficients()
        return {  # emission (N + 1), absorption N; breaking N, recombination N + 1
            "scattering": m_down * (n_s + 1.0) + m_up * n_s,
            "pair_breaking": m_pair * n_p,
            "recombination": m_pair * (n_p + 1.0),
        }


class _DriveBilinear(Bilinear):
    """A line drive's operator (``ClassicalDrive``, ``ReadoutDrive``) from its Galerkin
    event weights (``_drive_entries``): O(N x line nodes) entries, so ``apply`` works
    with scatter-adds instead of N x N matrices; the matrices (Jacobian, tests,
    process rates) are built on access.

    The entries (r, c, v) hold v = 2 S_rc / w_r for events with lower state r and
    upper state c (w the grid's quadrature weights; S of ``_drive_entries``). With M
    the matrix of the entries, the stimulated operator's matrix is
    m = (w M + (w M)^T) / (2 w) = (S + S^T) / w: one rate per event, w_i m_ij
    symmetric, and
        sum_j m_ij g(n_i, n_j) = 1/2 sum_{r = i} v g(n_i, n_c)
                               + 1/2 sum_{c = i} (w_r / w_i) v g(n_i, n_r).

    `nbar` scales the stimulated part (None: 1, a classical drive); `spontaneous`
    adds the readout drive's spontaneous emission (upper -> lower, rate S n_c (1 - n_r)
    per event) and recombination into photons (-n n' on the pair weights).
    """

    def __init__(self, grid, scat, pair, nbar=None, spontaneous=False):
        self.grid, self.scat, self.pair = grid, scat, pair
        self.nbar, self.spontaneous = nbar, spontaneous
        self.diag = None
        self.w = jnp.asarray(grid.weights)

    def _half_sums(self, entries, g, n):
        r, c, v = entries
        nn = self.grid.n
        own = jnp.zeros((nn,)).at[r].add(v * g(n[r], n[c]))
        other = jnp.zeros((nn,)).at[c].add(self.w[r] * v * g(n[c], n[r])) / self.w
        return 0.5 * (own + other)

    def _stimulated_scale(self):
        return 1.0 if self.nbar is None else self.nbar

    def apply(self, n):
        # stimulated: scattering (n' - n), pair (1 - n - n')
        out = jnp.zeros_like(n)
        if self.scat is not None:
            out = out + self._half_sums(self.scat, lambda a, b: b - a, n)
        if self.pair is not None:
            out = out + self._half_sums(self.pair, lambda a, b: 1.0 - a - b, n)
        out = self._stimulated_scale() * out
        if self.spontaneous:
            if self.scat is not None:
                # emission upper c -> lower r: flux v/2 n_c (1 - n_r), gained by r and
                # lost by c (the transpose of the same event weight: exact number)
                r, c, v = self.scat
                flux = 0.5 * v * n[c] * (1.0 - n[r])
                nn = self.grid.n
                out = out + jnp.zeros((nn,)).at[r].add(flux)
                out = out - jnp.zeros((nn,)).at[c].add(self.w[r] * flux) / self.w
            if self.pair is not None:
                out = out + self._half_sums(self.pair, lambda a, b: -a * b, n)
        return 2.0 * out

    def _raw(self, entries):
        """S / w row-wise: A_rc = S_rc / w_r = M_rc / 2."""
        nn = self.grid.n
        if entries is None:
            return jnp.zeros((nn, nn))
        r, c, v = entries
        return jnp.zeros((nn, nn)).at[r, c].add(0.5 * v)

    def _matrix(self, entries):
        a = self._raw(entries)
        w = self.w[:, None]
        # one rate per event: (S + S^T) / w, from A = S / w
        return a + (w * a).T / w

    def _spontaneous_scattering(self):
        """(A, A^T w / w): emission gain into the lower row, loss out of the upper row."""
        a = self._raw(self.scat)
        w = self.w[:, None]
        return a, (w * a).T / w

    @property
    def ma(self):
        return self._stimulated_scale() * self._matrix(self.pair)

    @property
    def mb(self):
        out = -self._stimulated_scale() * (self._matrix(self.scat) + self._matrix(self.pair))
        if self.spontaneous:
            out = out - self._spontaneous_scattering()[1]
        return out

    @property
    def mc(self):
        out = self._stimulated_scale() * (self._matrix(self.scat) - self._matrix(self.pair))
        if self.spontaneous:
            out = out + self._spontaneous_scattering()[0]
        return out

    @property
    def md(self):
        nn = self.grid.n
        if not self.spontaneous:
            return jnp.zeros((nn, nn))
        gain, loss = self._spontaneous_scattering()
        return loss - gain - self._matrix(self.pair)

    def jacobian(self, n):
        """d I / d n. Stimulated only: 2 (m_s - m_p) - 2 diag(row sums of m_s + m_p),
        scattered straight from the O(N) entries (m_rc += v / 2, m_cr += (w_r / w_c)
        v / 2, see ``_matrix``); with spontaneous terms the dense form of ``Bilinear``."""
        nn = self.grid.n
        return self.add_jacobian(jnp.zeros((nn, nn)), n)

    def add_jacobian(self, jac, n):
        """`jac` + ``jacobian(n)``, the stimulated entries scattered into `jac` (in place)."""
        if self.spontaneous:
            return jac + Bilinear.jacobian(self, n)
        nn = self.grid.n
        k = self._stimulated_scale()
        d = jnp.zeros((nn,))
        for entries, sign in ((self.scat, 1.0), (self.pair, -1.0)):
            if entries is None:
                continue
            r, c, v = entries
            other = self.w[r] * v / self.w[c]
            jac = jac.at[r, c].add((k * sign) * v).at[c, r].add((k * sign) * other)
            d = d.at[r].add(v).at[c].add(other)
        idx = jnp.arange(nn)
        return jac.at[idx, idx].add(-k * d)

    def process_rates(self, n):
        """``Bilinear.process_rates`` from the O(N) event entries (``_half_sums``: the
        rows of (S + S^T) / w without forming them)."""
        k = self._stimulated_scale()
        zero = jnp.zeros_like(n)

        def sums(entries, g):
            return zero if entries is None else 2.0 * self._half_sums(entries, g, n)

        scattering = k * sums(self.scat, lambda a, b: a * (1.0 - b))
        breaking = k * sums(self.pair, lambda a, b: (1.0 - a) * (1.0 - b))
        recombination = sums(self.pair, lambda a, b: a * b)
        if self.spontaneous:
            if self.scat is not None:
                # emission out of the upper state c: rows of A^T w / w, x n_c (1 - n_r)
                r, c, v = self.scat
                flux = 0.5 * v * n[c] * (1.0 - n[r])
                scattering = scattering + 2.0 * (
                    jnp.zeros_like(n).at[c].add(self.w[r] * flux) / self.w)
            recombination = (k + 1.0) * recombination
        else:
            recombination = k * recombination
        return {"scattering": scattering, "pair_breaking": breaking,
                "recombination": recombination}

    @property
    def _processes(self):
        k = self._stimulated_scale()
        m_s, m_p = self._matrix(self.scat), self._matrix(self.pair)
        if not self.spontaneous:
            # breaking (1 - n)(1 - n') and recombination n n' at one rate
            return {"scattering": k * m_s, "pair_breaking": k * m_p, "recombination": k * m_p}
        # absorption N, emission N + 1 (out of the upper state); breaking N, recombination N + 1
        return {
            "scattering": k * m_s + self._spontaneous_scattering()[1],
            "pair_breaking": k * m_p,
            "recombination": (k + 1.0) * m_p,
        }


# Gauss-Legendre points per piece of a lower cell (the integrand is smooth on a piece:
# 4 points integrate it to ~h^8 relative, far below the O(h^2) of the scheme)
_GL_X, _GL_W = np.polynomial.legendre.leggauss(4)


def _drive_entries(grid: Grid, delta, centres, weights, pair: bool, coupling: str):
    """Galerkin event weights of delta lines at `centres` [T_c] with `weights` (shape (m,)).

    Up-scattering (pair=False), E' = E + omega, and pair events (pair=True),
    E + E' = omega with E <= E', both with the LOWER state xi as the variable:

        S_ij = weight * integral dxi hat_i(xi) c(E, E*) (E* / xi*) hat_j(xi*(xi)),

    E* = E + omega or omega - E, xi* = sqrt(E*^2 - Delta^2) (c = c+ for current
    scattering, c- for the current pair channel). E*/xi* = dxi'/dE' at the upper state is
    bounded there (xi* >= sqrt(omega^2 + 2 omega Delta) for scattering; for the pair
    xi* >= sqrt(omega^2/4 - Delta^2), which vanishes only at threshold, where c- E*/xi*
    ~ sqrt(omega - 2 Delta) -> 0). The integral runs in the grid index s = u / du (hats
    are linear in s): each lower cell [c, c + 1] is split where s* = s(xi*) crosses an
    integer (the map s -> s* is monotone with |ds*/ds| <= 1, since the grid spacing
    grows with xi and xi/E < xi*/E*, so one crossing at most: two pieces per cell),
    and each piece, which lies in one target cell, gets 4 Gauss-Legendre points.
    The pair channel's lower range ends at E = omega/2 (the rest is the transpose).
    Targets beyond the grid end are dropped (both ends of such an event are).

    Returns entries (r, c, v) with v = 2 S_rc / w_r, O(8 N m) of them.
    """
    nn = grid.n
    a_par, du, core = grid._a, grid.du, grid.core
    w = jnp.asarray(grid.weights)
    on = weights != 0.0  # (m,): a Gaussian node at Omega <= 0 carries weight 0
    om_m = jnp.where(on, centres, 1.0)
    wt = jnp.where(on, weights, 0.0)[:, None, None]
    d2 = delta * delta

    def xi_at(s):
        return core * jnp.sinh(s * du * a_par)

    def line(x):  # omega, broadcast against x of shape (m, ...)
        return om_m.reshape((-1,) + (1,) * (x.ndim - 1))

    def target(s):
        """(E, E*, xi*, s*, ok) of the lower state at index s; s* = -1 where E* <= Delta."""
        om = line(s)
        xi = xi_at(s)
        e = jnp.sqrt(xi * xi + d2)
        e_star = om - e if pair else e + om
        arg = e_star * e_star - d2
        ok = arg > 0
        xi_star = jnp.sqrt(jnp.where(ok, arg, 1.0))
        return e, e_star, xi_star, jnp.where(ok, grid.index_of(xi_star), -1.0), ok

    def lower_of(k):
        """Index s of the lower state whose event reaches target node k (-1 if none)."""
        om = line(k)
        xk = xi_at(k)
        ek = jnp.sqrt(xk * xk + d2)
        e = om - ek if pair else ek - om
        arg = e * e - d2
        ok = (arg > 0) & (e > 0)
        return jnp.where(ok, grid.index_of(jnp.sqrt(jnp.where(ok, arg, 1.0))), -1.0)

    cells = jnp.arange(nn - 1, dtype=jnp.float64)[None, :, None]  # (1, N - 1, 1)
    shape = (om_m.shape[0], nn - 1, 1)
    lo = jnp.broadcast_to(cells, shape)
    hi = lo + 1.0
    if pair:
        half = 0.5 * line(lo)
        open_ = half > delta
        s_half = jnp.where(
            open_, grid.index_of(jnp.sqrt(jnp.where(open_, half * half - d2, 1.0))), -1.0
        )
        hi = jnp.clip(s_half, lo, hi)  # empty cells (hi = lo) contribute nothing
    t_lo, t_hi = target(lo)[3], target(hi)[3]
    k = jnp.floor(jnp.minimum(t_lo, t_hi)) + 1.0
    split = jnp.where(k < jnp.maximum(t_lo, t_hi), lower_of(k), hi)
    split = jnp.clip(split, lo, hi)
    a = jnp.concatenate([lo, split], axis=-1)  # (m, N - 1, 2): the two pieces
    b = jnp.concatenate([split, hi], axis=-1)
    length = b - a
    mid = 0.5 * (a + b)
    j0 = jnp.floor(target(mid)[3])  # the piece's target cell
    # Gauss points (last axis)
    gl_x, gl_w = (jnp.asarray(x).reshape(1, 1, 1, -1) for x in (_GL_X, _GL_W))
    s = mid[..., None] + 0.5 * length[..., None] * gl_x
    e, e_star, xi_star, s_star, ok = target(s)
    rho2 = d2 / (e * jnp.where(ok, e_star, 1.0))
    plus = pair != (coupling == "current")
    coh = 0.5 * (1.0 + rho2) if plus else 0.5 * (1.0 - rho2)
    dos = jnp.where(ok, e_star, 0.0) / xi_star
    jac = core * a_par * du * jnp.cosh(s * du * a_par)  # dxi / ds
    g = (wt[..., None] * 0.5 * length[..., None] * gl_w) * coh * dos * jac
    valid = ok & (j0[..., None] >= 0) & (j0[..., None] <= nn - 2) & (length[..., None] > 0)
    g = jnp.where(valid, g, 0.0)
    f = jnp.clip(s_star - j0[..., None], 0.0, 1.0)
    h_up = s - cells[..., None]  # hat of lower node c + 1 on cell c
    parts = (
        (0.0, 0.0, (1.0 - h_up) * (1.0 - f)),
        (0.0, 1.0, (1.0 - h_up) * f),
        (1.0, 0.0, h_up * (1.0 - f)),
        (1.0, 1.0, h_up * f),
    )
    shape = length.shape
    rows, cols, vals = [], [], []
    for dr, dc, hat in parts:
        r = jnp.broadcast_to(cells + dr, shape).astype(jnp.int32)
        c = jnp.clip(j0 + dc, 0, nn - 1).astype(jnp.int32)
        sij = jnp.sum(g * hat, axis=-1)
        rows.append(r.ravel())
        cols.append(jnp.broadcast_to(c, shape).ravel())
        vals.append((2.0 * sij / w[r]).ravel())
    return jnp.concatenate(rows), jnp.concatenate(cols), jnp.concatenate(vals)


def _drive_bilinear(bath, grid: Grid, delta, t, channels) -> Bilinear:
    """The operator of a line drive (``ClassicalDrive``, ``ReadoutDrive``): every line
    node an exact delta line, discretized by ``_drive_entries``."""
    centres, weights = bath.line_nodes(t)
    scat = pair = None
    if "scattering" in channels:
        scat = _drive_entries(grid, delta, centres, weights, False, bath.coupling)
    if "pair" in channels:
        pair = _drive_entries(grid, delta, centres, weights, True, bath.coupling)
    nbar, spontaneous = bath.occupation_scales(t)
    return _DriveBilinear(grid, scat, pair, nbar=nbar, spontaneous=spontaneous)


_CHANNELS = ("scattering", "pair")


def bath_bilinear(bath: AbstractBath, grid: Grid, delta, t=0.0, channels=_CHANNELS) -> Bilinear:
    """The discretized operator of one bath at gap `delta` [T_c] and time `t`.

    `channels` selects the processes: "scattering" (emission and absorption,
    E -> E'), "pair" (pair breaking and recombination); both by default.
    """
    for c in channels:
        if c not in _CHANNELS:
            raise ValueError(f"channels must be drawn from {_CHANNELS}; got {c!r}.")
    return bath.bilinear(grid, delta, t, channels)


@functools.partial(jax.jit, static_argnums=(1,), static_argnames=("channels",))
def collision(bath: AbstractBath, grid: Grid, n, delta, t=0.0, channels=_CHANNELS):
    """I_b[n](xi_j) [rate, k_B T_c / hbar] at fixed gap `delta` [T_c], shape (grid.n,)."""
    return bath_bilinear(bath, grid, delta, t, channels).apply(n)


def relaxation(grid: Grid, n, delta, t_qp, tau_in):
    """Relaxation-time term -(n - n_F(E/T_qp)) / tau_in of paper eq. (6)."""
    return -(n - thermal_distribution(grid, delta, t_qp)) / tau_in

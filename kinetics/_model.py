"""One physical situation: grid, quasiparticle temperature, relaxation, baths.

The kinetic equation (paper eq. (6), docs/physics.md section 4):

    d n(xi, t) / dt = sum_b I_b[n; Delta(t)](xi) - (n - n_F(E_xi / T_qp)) / tau_in,
    Delta(t) = Delta[n(., t)]   (solved at every evaluation)

With dynamic baths (docs/physics.md section 9) the state is one flat vector
y = [n (grid.n values), N_b of each dynamic bath (its Omega grid's state nodes),
in bath order]; ``Model.split`` and ``Model.join`` convert. A model without
dynamic baths has y = n and runs exactly the code it always ran.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from ._baths import AbstractBath, bath_types, is_dynamic
from ._bosons import BosonGrid
from ._collision import _BLOCK, bath_bilinear, relaxation
from ._dynamic import DynamicOperator, heat_capacity, reservoir_occupation
from ._errors import ParameterError, PhysicsWarning
from ._gap import (
    equilibrium_gap_on,
    gap,
    gap_function_ddelta,
    gap_function_dn,
    gap_guess,
    thermal_distribution,
)
from ._grid import Grid
from ._parameters import _check_param, _param

PROCESSES = ("scattering", "pair_breaking", "recombination")
GAP_MODES = ("self_consistent", "fixed")


def _as_baths(baths) -> tuple[AbstractBath, ...]:
    if isinstance(baths, AbstractBath):
        baths = (baths,)
    if not isinstance(baths, Sequence):
        raise ParameterError(
            f"Model.baths must be a bath or a sequence of baths; got {type(baths).__name__}."
        )
    for k, b in enumerate(baths):
        if not isinstance(b, AbstractBath):
            raise ParameterError(
                f"Model.baths[{k}] must be a bath (a kinetics.AbstractBath: "
                f"{', '.join(c.__name__ for c in bath_types().values())}, ...); "
                f"got {type(b).__name__}."
            )
    return tuple(baths)


class Model(eqx.Module):
    """One physical situation (docs/physics.md sections 1-4).

    **Main arguments:**

    - `t_qp`: quasiparticle (and relaxation-bath) temperature T_qp [T_c], > 0.
    - `tau_in`: inelastic relaxation time [hbar/(k_B T_c)], > 0, or None to drop
      the relaxation-time term (e.g. when a `Phonons` bath is present).
    - `baths`: a bath or a sequence of baths.

    **Other arguments:**

    - `grid`: the xi grid (default `Grid()`).
    - `gap_mode`: "self_consistent" (default): Delta = Delta[n] solved from the gap
      equation at every evaluation (paper eq. (6)); "fixed": Delta held at its
      equilibrium value Delta_0 = Delta(T_qp) on this grid whatever n is (the
      convention of Fischer & Catelani, PR Applied 19, 054087 (2023), and of most
      resonator papers; docs/physics.md section 12). With "fixed", ``gap(y)`` returns
      Delta_0, ``rhs`` is ``rhs_at_gap(t, y, Delta_0)`` and the Jacobian has no
      rank-one term through the gap; ``solve_gap(y)`` still gives the root Delta[n]
      of the gap equation (the gap the state would have), e.g. to report a gap change.
    - `omega_grids`: filled in automatically: the Omega grid (``BosonGrid``) of each
      dynamic bath, None for a static one (see ``kinetics.DynamicBosons``).

    **State:** ``y`` = n (shape (grid.n,)) for a static model; with dynamic baths
    ``y`` = [n, N_b...] of length ``state_size`` (``split``/``join``). ``rhs``,
    ``jacobian``, ``gap`` and ``initial_state`` work on ``y``; ``thermal_state``
    and ``collision`` are about n only (``collision`` treats every bath as static,
    which is what the perturbative formulas need).
    """

    t_qp: float = eqx.field(converter=_param)
    tau_in: float | None = eqx.field(converter=lambda x: None if x is None else _param(x))
    baths: tuple[AbstractBath, ...] = eqx.field(converter=_as_baths, default=())
    grid: Grid = Grid()
    omega_grids: tuple[BosonGrid | None, ...] | None = eqx.field(static=True, default=None)
    gap_mode: str = eqx.field(static=True, default="self_consistent")

    def __post_init__(self):
        if self.omega_grids is not None:
            return
        # (field converters run after __post_init__: convert here what is needed)
        try:
            baths = _as_baths(self.baths)
            t = 0.9 if isinstance(self.t_qp, jax.core.Tracer) else float(self.t_qp)
        except (ParameterError, TypeError, ValueError):
            return  # __check_init__ reports it
        if not isinstance(self.grid, Grid):
            return
        self.omega_grids = tuple(
            b.boson_grid(self.grid, t) if is_dynamic(b) else None for b in baths
        )

    def __check_init__(self):
        if not isinstance(self.gap_mode, str) or self.gap_mode not in GAP_MODES:
            raise ParameterError(
                f"Model.gap_mode must be one of {', '.join(map(repr, GAP_MODES))}; "
                f"got {self.gap_mode!r}."
            )
        if not isinstance(self.grid, Grid):
            raise ParameterError(
                f"Model.grid must be a kinetics.Grid; got {type(self.grid).__name__}."
            )
        _check_param(
            "Model", "t_qp", self.t_qp, minimum=0.0, strict=True, unit="[T_c]", maximum=1.0e3
        )
        if not isinstance(self.t_qp, jax.core.Tracer) and float(self.t_qp) >= 1.0:
            warnings.warn(
                f"Model.t_qp = {float(self.t_qp):g} >= T_c: the equilibrium gap Delta_0 is zero "
                "(the film is normal), so delta Delta / Delta_0 is undefined; lower t_qp below 1 "
                "for a superconductor.",
                PhysicsWarning,
                stacklevel=2,
            )
        if self.tau_in is not None:
            _check_param(
                "Model", "tau_in", self.tau_in, minimum=0.0, strict=True, unit="[hbar/(k_B T_c)]"
            )
        if self.tau_in is None and not self.baths:
            raise ParameterError(
                "Model needs at least one bath or a relaxation time tau_in; got neither."
            )
        if isinstance(self.t_qp, jax.core.Tracer):
            return
        self.grid.check_reaches(float(self.t_qp), "t_qp")
        self._check_baths_on_grid()

    def _check_baths_on_grid(self):
        grid = self.grid
        for k, b in enumerate(self.baths):
            t_max = b.max_temperature()
            # absorption of a bath quantum Omega ~ T_b from the gap edge reaches beyond the
            # grid with a weight ~ exp(-xi_max / T_b): negligible (< 3e-7) from 15 T_b on
            if grid.xi_max < 15.0 * t_max:
                warnings.warn(
                    f"baths[{k}] ({type(b).__name__}) has temperature up to {t_max:g} but the "
                    f"grid ends at xi_max = {grid.xi_max:g}: absorption into states beyond the "
                    f"grid is lost (weight exp(-xi_max / T) = "
                    f"{math.exp(-grid.xi_max / t_max):.1g}). Use xi_max >= {15 * t_max:g}.",
                    PhysicsWarning,
                    stacklevel=5,
                )
            b.check_grid(grid, float(self.t_qp), k)

    # ---- the state vector ----
    @property
    def dynamic(self) -> tuple[int, ...]:
        """Indices of the dynamic baths (those whose N_b is in the state)."""
        return tuple(k for k, g in enumerate(self.omega_grids or ()) if g is not None)

    @property
    def state_size(self) -> int:
        """Length of the state vector y: grid.n + the Omega nodes of every dynamic bath."""
        return self.grid.n + sum(self.omega_grids[k].size for k in self.dynamic)

    def split(self, y):
        """y -> (n, (N_b of each dynamic bath, in bath order)); works on (..., state_size)."""
        if not self.dynamic:
            return y, ()
        out, start = [], self.grid.n
        for k in self.dynamic:
            m = self.omega_grids[k].size
            out.append(y[..., start : start + m])
            start += m
        return y[..., : self.grid.n], tuple(out)

    def join(self, n, bosons=()):
        """(n, (N_b, ...)) -> y."""
        if not self.dynamic:
            return n
        return jnp.concatenate([n, *bosons], axis=-1)

    def static_version(self) -> Model:
        """The same model with every bath static (its bosons fixed at the reservoir: the
        tau_b -> 0 limit, up to the discretization of steps; see ``_dynamic``)."""
        baths = tuple(
            eqx.tree_at(lambda b: b.dynamic, b, None, is_leaf=lambda x: x is None)
            if k in self.dynamic
            else b
            for k, b in enumerate(self.baths)
        )
        return Model(
            t_qp=self.t_qp, tau_in=self.tau_in, baths=baths, grid=self.grid,
            gap_mode=self.gap_mode,
        )

    def boson_state(self, t=0.0):
        """Each dynamic bath's reservoir occupation n_B(Omega_k / T_b(t)) on its nodes."""
        return tuple(
            reservoir_occupation(self.baths[k], self.omega_grids[k], t) for k in self.dynamic
        )

    def initial_state(self, t=0.0):
        """The default initial state y: n_F at T_qp and Delta_0, bosons at their reservoirs.

        Equals ``thermal_state()`` for a static model."""
        return self.join(self.thermal_state(), self.boson_state(t))

    def _operators(self, y, delta, t):
        n, bosons = self.split(y)
        ops = tuple(
            DynamicOperator(self.baths[k], self.omega_grids[k], self.grid, delta, t, nb)
            for k, nb in zip(self.dynamic, bosons, strict=True)
        )
        return n, bosons, ops

    # ---- equilibrium ----
    @property
    def delta0(self):
        """Equilibrium gap Delta_0 = Delta(T_qp) on this model's grid [T_c]."""
        return equilibrium_gap_on(self.grid, self.t_qp)

    def thermal_state(self, delta=None):
        """n_F(E_xi / T_qp) at gap `delta` (default Delta_0), shape (grid.n,)."""
        delta = self.delta0 if delta is None else delta
        return thermal_distribution(self.grid, delta, self.t_qp)

    @property
    def fixed_gap(self) -> bool:
        """True when the gap is held at Delta_0 (``gap_mode == "fixed"``)."""
        return self.gap_mode == "fixed"

    def solve_gap(self, y, guess=None):
        """The root Delta[n] [T_c] of the gap equation for a state y (or n alone), in
        either gap mode (differentiable); `guess` only affects the cost. The occupation
        beyond the grid is taken thermal at T_qp (``kinetics.gap_function``)."""
        n = y[: self.grid.n] if self.dynamic else y
        return gap(
            self.grid, n, gap_guess(self.t_qp) if guess is None else guess, self.t_qp
        )

    def gap(self, y, guess=None):
        """The gap Delta [T_c] the kinetic equation uses at state y: the self-consistent
        Delta[n] (``solve_gap``), or Delta_0 whatever y is when ``gap_mode == "fixed"``.
        Differentiable; `guess` only affects the cost."""
        if self.fixed_gap:
            return self.delta0
        return self.solve_gap(y, guess)

    def jump_times(self) -> tuple[float, ...]:
        """Times [hbar/(k_B T_c)] at which some bath parameter jumps."""
        out: set[float] = set()
        for b in self.baths:
            out.update(b.jump_times())
        return tuple(sorted(out))

    # ---- right-hand side ----
    def collision(self, n, delta, t=0.0):
        """sum_b I_b[n; Delta](xi) at fixed Delta [rate, k_B T_c / hbar]."""
        out = jnp.zeros_like(n)
        for b in self.baths:
            out = out + bath_bilinear(b, self.grid, delta, t).apply(n)
        return out

    def process_rates(self, y, t=0.0):
        """Totals of each bath's processes, 4 integral dxi (rate) [nu_F T_c x k_B T_c/hbar].

        Returns an array of shape (n_baths, 3): quasiparticles scattered out of their
        state, created by pair breaking, and lost by recombination, per unit time.
        A dynamic bath's rates use its current occupation N_b (from y).
        """
        delta = self.gap(y)
        n, _, ops = self._operators(y, delta, t)
        dyn = dict(zip(self.dynamic, ops, strict=True))
        rows = []
        for k, b in enumerate(self.baths):
            bil = dyn[k].bilinear() if k in dyn else bath_bilinear(b, self.grid, delta, t)
            r = bil.process_rates(n)
            rows.append(jnp.stack([4.0 * self.grid.integrate(r[p]) for p in PROCESSES]))
        return jnp.stack(rows) if rows else jnp.zeros((0, len(PROCESSES)))

    def _bilinears(self, delta, t, ops):
        """Every bath's operator at the current state: the static baths', then the dynamic
        ones' (from ``_operators``). A generator: each is built where it is used, so a
        traced function runs the same operations in the same order as a plain loop."""
        dynamic = self.dynamic
        for k, b in enumerate(self.baths):
            if k not in dynamic:
                yield bath_bilinear(b, self.grid, delta, t)
        for op in ops:
            yield op.bilinear()

    def rhs_at_gap(self, t, y, delta):
        """d y / d t at a given Delta (no self-consistency)."""
        n, bosons, ops = self._operators(y, delta, t)
        out = jnp.zeros_like(n)
        for bil in self._bilinears(delta, t, ops):
            out = out + bil.apply(n)
        if self.tau_in is not None:
            out = out + relaxation(self.grid, n, delta, self.t_qp, self.tau_in)
        if not ops:
            return out
        bosons_dot = [op.boson_rhs(n, nb) for op, nb in zip(ops, bosons, strict=True)]
        return jnp.concatenate([out, *bosons_dot])

    def boson_deposits(self, t, y, delta):
        """Per dynamic bath, (D^scattering, D^pair) on all its Omega nodes (Omega = 0
        included): bosons created per unit time at each node [per 4 nu_F x k_B T_c/hbar]."""
        n, _, ops = self._operators(y, delta, t)
        return tuple(op.deposits(n) for op in ops)

    def rhs(self, t, y, guess=None):
        """d y / d t of paper eq. (6) (and section 9) at Delta = ``gap(y)``: Delta[n]
        self-consistent, or Delta_0 with ``gap_mode == "fixed"``."""
        return self.rhs_at_gap(t, y, self.gap(y, guess))

    def jacobian(self, t, y, guess=None, *, scale=None, out=None):
        """Structured d(rhs)/dy, O(N^2 + N M): kernel terms + (dF/dDelta)(dDelta/dn)^T
        (the last absent with ``gap_mode == "fixed"``: Delta_0 does not depend on y).

        Block layout with dynamic baths: [[dn/dn, dn/dN_b...], [dN_b/dn, dN_b/dN_b]],
        the N_b - N_b' blocks of two different baths zero; a static model has the
        n - n block alone.

        `scale`: a vector D of length ``state_size``; then D^{-1} J D is returned (the
        solvers' relative units), scaled block of rows by block of rows in the same
        buffer. `out`: an array of the Jacobian's shape whose values are ignored and
        whose buffer may be reused (a solver replacing its Jacobian passes the old one:
        the new one is then written into it, so that holding J and building the next
        costs one N x N array, not two; static models only).

        Memory: every term is added into one N x N buffer in place (operators by row
        blocks or scatter-adds, ``Bilinear.add_jacobian``; diagonal terms by scatters;
        the rank-one gap term and `scale` by row blocks), so beside the result XLA keeps
        O(N x block) temporaries (tests/test_krylov.py)."""
        delta = self.gap(y, guess)
        n, _, ops = self._operators(y, delta, t)
        nn = self.grid.n
        if out is not None and not ops:
            jnn = _update_rows(out, lambda tile, rows: jnp.zeros_like(tile))
        else:
            jnn = jnp.zeros((nn, nn))
        idx = jnp.arange(nn)
        for bil in self._bilinears(delta, t, ops):
            jnn = bil.add_jacobian(jnn, n)
            if bil.diag is not None:  # (None for the dynamic baths: events at Omega > 0 only)
                jnn = _add_tridiagonal_jacobian(jnn, bil.diag, n)
        if self.tau_in is not None:
            jnn = jnn.at[idx, idx].add(-1.0 / self.tau_in)
        jac = jnn if not ops else self._joint_jacobian(jnn, n, ops)
        if self.fixed_gap:
            if scale is None:
                return jac
            return _update_rows(jac, lambda tile, rows: tile * (scale[None, :] / scale[rows, None]))
        # rank-one term through the self-consistent gap (Delta depends on n only)
        one = jnp.ones_like(delta)
        df_ddelta = jax.jvp(lambda d: self.rhs_at_gap(t, y, d), (delta,), (one,))[1]
        dg_dd = gap_function_ddelta(self.grid, n, delta, self.t_qp)
        ddelta_dn = jnp.where(
            delta > 0,
            -gap_function_dn(self.grid, delta) / jnp.where(delta > 0, dg_dd, -1.0),
            0.0,
        )
        if ops:
            ddelta_dn = jnp.concatenate([ddelta_dn, jnp.zeros((self.state_size - nn,))])
        # both vectors materialized before the outer product: without the barrier XLA
        # fused their O(N) expressions into the N x N update and evaluated them per
        # element (dense Newton at N = 1000: 0.52 -> 0.24 s measured, bit-identical)
        df_ddelta, ddelta_dn = jax.lax.optimization_barrier((df_ddelta, ddelta_dn))

        def update(tile, rows):
            tile = tile + df_ddelta[rows, None] * ddelta_dn[None, :]
            return tile if scale is None else tile * (scale[None, :] / scale[rows, None])

        return _update_rows(jac, update)

    def _joint_jacobian(self, jnn, n, ops):
        """The full (state_size, state_size) matrix around the n - n block `jnn`."""
        sizes = [self.omega_grids[k].size for k in self.dynamic]
        top = [jnn] + [op.jac_n_nb(n) for op in ops]
        rows = [jnp.concatenate(top, axis=1)]
        for a, op in enumerate(ops):
            row = [op.jac_nb_n(n)]
            for b_, m in enumerate(sizes):
                row.append(op.jac_nb_nb(n) if a == b_ else jnp.zeros((sizes[a], m)))
            rows.append(jnp.concatenate(row, axis=1))
        return jnp.concatenate(rows, axis=0)

    def boson_jacobian(self, t, y, guess=None):
        """d(dN_b/dt)/dN_b of the dynamic baths alone (block diagonal), at fixed n:
        the cheap part of ``jacobian`` (for relaxing the bosons at fixed n)."""
        delta = self.gap(y, guess)
        n, _, ops = self._operators(y, delta, t)
        blocks = [op.jac_nb_nb(n) for op in ops]
        sizes = [b.shape[0] for b in blocks]
        rows = []
        for a, blk in enumerate(blocks):
            row = [blk if a == c else jnp.zeros((sizes[a], m)) for c, m in enumerate(sizes)]
            rows.append(jnp.concatenate(row, axis=1))
        return jnp.concatenate(rows, axis=0)

    # ---- dynamic baths, for datasets ----
    def _dynamic_bath(self, k: int):
        if k not in self.dynamic:
            raise ParameterError(
                f"Model.baths[{k}] is not a dynamic bath; the dynamic ones are {self.dynamic}."
            )
        return self.baths[k], self.omega_grids[k]

    def boson_heat_capacity(self, k: int, t=0.0):
        """c_k = v_k rho_b(Omega_k) [per 4 nu_F] on the state nodes of dynamic bath `k`
        (its index in ``baths``), shape (omega_grids[k].size,): sum_k c_k N_k is its
        boson number, sum_k c_k Omega_k N_k its energy."""
        bath, bgrid = self._dynamic_bath(k)
        return heat_capacity(bath, bgrid, t)

    def boson_mode_density(self, k: int, omega, t=0.0):
        """rho_b(Omega) [per 4 nu_F] of dynamic bath `k` (its index in ``baths``) at the
        energies `omega` [T_c] (any shape) and time `t` [hbar/(k_B T_c)]."""
        bath, _ = self._dynamic_bath(k)
        return bath.mode_density(omega, t)


def _update_rows(a, fn):
    """`a` (M x N) with each block of rows replaced by fn(tile (B, N), row indices (B,)),
    in a ``fori_loop`` of dynamic slice updates: XLA rewrites the buffer of `a` in place
    (an elementwise N x N expression may get a second buffer, e.g. inside a
    ``lax.cond``). The last block starts at M - B; rows an earlier block did are kept."""
    m = a.shape[0]
    b = min(_BLOCK, m)
    nb = -(-m // b)

    def body(k, a):
        start = jnp.minimum(k * b, m - b)
        rows = start + jnp.arange(b)
        tile = jax.lax.dynamic_slice(a, (start, 0), (b, a.shape[1]))
        tile = jnp.where((rows >= k * b)[:, None], fn(tile, rows), tile)
        return jax.lax.dynamic_update_slice(a, tile, (start, 0))

    return jax.lax.fori_loop(0, nb, body, a)


def _add_tridiagonal_jacobian(jac, f, n):
    """jac + the Jacobian of a function whose output i depends on n_{i-1}, n_i, n_{i+1}
    only. Three JVPs with the colourings e_{3m+k} recover the three diagonals: O(N),
    added in place (three dense diagonal matrices would be three N x N passes)."""
    nn = n.shape[0]
    idx = jnp.arange(nn)
    basis = (idx[None, :] % 3 == jnp.arange(3)[:, None]).astype(n.dtype)
    cols = jax.vmap(lambda v: jax.jvp(f, (n,), (v,))[1])(basis)  # (3, N)
    # d f_i / d n_j sits in cols[j % 3, i] for |i - j| <= 1
    main = cols[idx % 3, idx]
    upper = cols[(idx[:-1] + 1) % 3, idx[:-1]]  # j = i + 1
    lower = cols[(idx[1:] - 1) % 3, idx[1:]]  # j = i - 1
    jac = jac.at[idx, idx].add(main)
    jac = jac.at[idx[:-1], idx[:-1] + 1].add(upper)
    return jac.at[idx[1:], idx[1:] - 1].add(lower)

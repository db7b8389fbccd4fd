"""Matrix-free Jacobian products and a restarted GMRES for the implicit solves (issue 18).

The Jacobian of the kinetic equation is dense (every node exchanges with every other),
but its stiff part is local: the out-scattering rates on the diagonal. The in-scattering
kernel is smooth (an integral operator of the second kind after Jacobi scaling), so the
Jacobi-scaled Newton matrix is the identity plus a compact part with few outlying
eigenvalues (the slow quasiparticle-number mode, the rank-one gap term), and GMRES
converges in a few tens of products where the dense LU costs 2 N^3 / 3 flops.

- ``jacobian_vector_product``: v -> J(y) v of ``Model.rhs`` without the N x N matrix:
  the JVP of ``rhs_at_gap`` at the state's gap (the collision operators are bilinear in
  n and evaluated in blocks of rows: O(N^2) time, O(N x block) memory) plus the rank-one
  term through the self-consistent gap, (dF/dDelta) (dDelta/dy . v).
- ``scaled_jvp``: the same in the Newton's relative units, D^{-1} J D (``_occupations``).
- ``gmres``: restarted GMRES(m) on a Jacobi-scaled system, in one compiled loop
  (Arnoldi with classical Gram-Schmidt applied twice, Givens rotations); returns the
  iteration count and whether the true residual met the tolerance (a solve that did not
  converge rejects the Newton trial; a Newton that fails is redone with the dense LU).

Why not ``lineax.GMRES`` (0.1.1): its stopping test needs both the max-norm of the
(preconditioned) residual below atol + rtol |b_i| component by component and the last
restart cycle's update below atol + rtol |y_i| (a Cauchy test), so every solve runs at
least two full restart cycles, and components with b_i ~ 0 can only be met through atol;
the loop here stops on the 2-norm of the scaled residual as soon as the Arnoldi estimate
says so and checks the true residual once per cycle.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kinetics import Model

from ._occupations import from_z, scale, scaled_jacobian


def jacobian_vector_product(model: Model, t, y, guess=None):
    """v -> d rhs / dy (y) . v for ``model.rhs`` at state y, without forming the matrix.

    Equal to ``model.jacobian(t, y) @ v`` to rounding: the JVP of ``rhs_at_gap`` at fixed
    Delta = ``model.gap(y)`` (kernel terms, the diagonal limits, tau_in, drives, dynamic
    bosons) plus, with ``gap_mode == "self_consistent"``, the rank-one term
    (dF/dDelta) (dDelta/dy . v): dF/dDelta is one JVP in Delta, dDelta/dy the gradient of
    the gap solve (its implicit-function derivative). Both are computed here once; each
    product then costs one JVP of the right-hand side, O(N^2) time and O(N x block)
    memory (the collision passes run over blocks of rows).
    """
    delta = model.gap(y, guess)

    def at_gap(yy):
        return model.rhs_at_gap(t, yy, delta)

    if model.fixed_gap:
        def product(v):
            return jax.jvp(at_gap, (y,), (v,))[1]

        return product
    df_ddelta = jax.jvp(lambda d: model.rhs_at_gap(t, y, d), (delta,), (jnp.ones_like(delta),))[1]
    ddelta_dy = jax.grad(lambda yy: model.gap(yy, delta))(y)

    def product(v):
        return jax.jvp(at_gap, (y,), (v,))[1] + df_ddelta * jnp.dot(ddelta_dy, v)

    return product


def scaled_jvp(model: Model, t, z):
    """u -> D^{-1} J D u at the solver variables z (``_occupations.scaled_jacobian``
    applied to u, matrix-free)."""
    d = scale(model, z)
    product = jacobian_vector_product(model, t, from_z(model, z))
    return lambda u: product(d * u) / d


def gmres(matvec, b, *, rtol, restart: int, max_cycles: int, x0=None):
    """Restarted GMRES(restart) for A x = b, at most `max_cycles` cycles.

    A should already be scaled (here: Jacobi, unit diagonal magnitude). Stops when the
    true residual ||b - A x||_2 <= rtol ||b||_2 (checked after each cycle; inside a
    cycle the Arnoldi estimate is driven to rtol / 4). Returns (x, iterations (products
    with A in Arnoldi steps), converged, relative true residual). Memory: the Krylov
    basis, (restart + 1) x N.
    """
    n = b.shape[0]
    m = restart
    dtype = b.dtype
    bnorm = jnp.linalg.norm(b)
    target = rtol * bnorm

    def cycle(x, r, beta):
        v0 = jnp.zeros((m + 1, n), dtype).at[0].set(r / jnp.where(beta > 0, beta, 1.0))
        h0 = jnp.zeros((m + 1, m), dtype)
        g0 = jnp.zeros((m + 1,), dtype).at[0].set(beta)
        cs0 = jnp.zeros((m,), dtype)
        sn0 = jnp.zeros((m,), dtype)

        def cond(s):
            _, _, g, _, _, k = s
            return (k < m) & (jnp.abs(g[k]) > 0.25 * target)

        def body(s):
            v, h, g, cs, sn, k = s
            w = matvec(v[k])
            # classical Gram-Schmidt, twice (rows of v beyond k are zero)
            c1 = v @ w
            w = w - c1 @ v
            c2 = v @ w
            w = w - c2 @ v
            col = c1 + c2
            hn = jnp.linalg.norm(w)
            col = col.at[k + 1].set(hn)
            v = v.at[k + 1].set(w / jnp.where(hn > 0, hn, 1.0))

            # the earlier rotations on the new column
            def rotate(j, c):
                a, b_ = c[j], c[j + 1]
                return c.at[j].set(cs[j] * a + sn[j] * b_).at[j + 1].set(-sn[j] * a + cs[j] * b_)

            col = jax.lax.fori_loop(0, k, rotate, col)
            a, b_ = col[k], col[k + 1]
            rr = jnp.hypot(a, b_)
            c_k = jnp.where(rr > 0, a / jnp.where(rr > 0, rr, 1.0), 1.0)
            s_k = jnp.where(rr > 0, b_ / jnp.where(rr > 0, rr, 1.0), 0.0)
            col = col.at[k].set(rr).at[k + 1].set(0.0)
            gk = g[k]
            g = g.at[k].set(c_k * gk).at[k + 1].set(-s_k * gk)
            h = h.at[:, k].set(col)
            return v, h, g, cs.at[k].set(c_k), sn.at[k].set(s_k), k + 1

        v, h, g, _, _, k = jax.lax.while_loop(cond, body, (v0, h0, g0, cs0, sn0, 0))
        # solve the k x k upper-triangular system (unused columns: identity, g = 0)
        used = jnp.arange(m) < k
        r_mat = h[:m, :]
        r_mat = jnp.where(used[None, :] & used[:, None], r_mat, jnp.eye(m, dtype=dtype))
        diag_ok = jnp.abs(jnp.diagonal(r_mat)) > 0
        r_mat = jnp.where(jnp.eye(m, dtype=bool) & ~diag_ok[None, :], 1.0, r_mat)
        coef = jax.scipy.linalg.solve_triangular(r_mat, jnp.where(used, g[:m], 0.0))
        x = x + coef @ v[:m]
        r = b - matvec(x)
        return x, r, jnp.linalg.norm(r), k

    def outer_cond(s):
        _, _, beta, _, c = s
        return (c < max_cycles) & ~(beta <= target)

    def outer_body(s):
        x, r, beta, its, c = s
        x, r, beta, k = cycle(x, r, beta)
        return x, r, beta, its + k, c + 1

    if x0 is None:
        x0, r0 = jnp.zeros_like(b), b
    else:
        r0 = b - matvec(x0)
    beta0 = jnp.linalg.norm(r0)
    x, _, beta, its, _ = jax.lax.while_loop(outer_cond, outer_body, (x0, r0, beta0, 0, 0))
    converged = jnp.isfinite(beta) & (beta <= target)
    return x, its, converged, beta / jnp.where(bnorm > 0, bnorm, 1.0)


def krylov_solve(product, diag, shift, b, options: tuple):
    """(A - diag(shift)) x = b by GMRES with Jacobi scaling, A = `product` (a function),
    `diag` its diagonal: the rows scaled by 1 / (diag - shift) (unit diagonal). Returns
    (x, iterations, converged); `options` = (rtol, restart, max_cycles) of ``gmres``."""
    rtol, restart, max_cycles = options
    a_diag = diag - shift
    p = 1.0 / jnp.where(a_diag != 0.0, a_diag, 1.0)

    def matvec(u):
        return p * (product(u) - shift * u)

    x, its, ok, _ = gmres(matvec, p * b, rtol=rtol, restart=restart, max_cycles=max_cycles)
    return x, its, ok


class KrylovSystem:
    """The Newton systems (D^{-1} J D - diag(shift)) u = b of one iteration at z, solved
    by Jacobi-scaled GMRES (``_steady._newton``).

    `kind`: "krylov" (products with the structured Jacobian, formed once per iteration:
    one N x N array held, O(N^2) per product) or "krylov-jvp" (matrix-free products,
    ``scaled_jvp``: the matrix is formed only for its diagonal and released).
    `options`: (rtol, restart, max_cycles) of ``gmres``.

    ``solve(shift, b, stats)`` returns (u, stats + [1 solve, GMRES iterations, 1 if GMRES
    did not converge]); u is NaN when GMRES did not converge (the trial is rejected; when
    the whole Newton fails, ``_steady.solve_steady`` redoes it with the dense LU).
    """

    def __init__(self, model: Model, t, z, kind: str, options: tuple):
        self.kind = kind
        self.rtol, self.restart, self.max_cycles = options
        jac = scaled_jacobian(model, t, z)
        self.diag = jnp.diagonal(jac)
        if kind == "krylov":
            self.product = lambda u: jac @ u
        elif kind == "krylov-jvp":
            self.product = scaled_jvp(model, t, z)
        else:
            raise ValueError(f"unknown Krylov kind {kind!r}")

    def solve(self, shift, b, stats):
        x, its, ok = krylov_solve(self.product, self.diag, shift, b,
                                  (self.rtol, self.restart, self.max_cycles))
        # not converged: NaN, which the Newton's tests read as a rejected trial (a
        # shorter pseudo-time step follows, whose system is more diagonally dominant);
        # an LU here would put its N x N buffers in the compiled loop (measured: 5.0
        # N^2 of temporaries at N = 4000 with an in-loop LU fallback, 2.3 without)
        x = jnp.where(ok, x, jnp.nan)
        return x, stats + jnp.stack([1, its, (~ok).astype(jnp.int32)]).astype(stats.dtype)

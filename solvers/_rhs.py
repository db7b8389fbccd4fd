"""The model's right-hand side with its structured Jacobian attached.

``vector_field(model)`` returns f(t, n, args) whose JVP in n is the structured
O(N^2) Jacobian of ``Model.jacobian`` (kernel terms + the rank-one term through
the self-consistent gap) instead of forward-mode differentiation through the
N x N kernels, which would cost O(N^3). Implicit diffrax solvers and the Newton
steady state both differentiate through it.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp

from kinetics import Model


def vector_field(model: Model):
    @jax.custom_jvp
    def f(t, n):
        return model.rhs(t, n)

    @f.defjvp
    def f_jvp(primals, tangents):
        t, n = primals
        _, dn = tangents
        jac = model.jacobian(t, n)
        return model.rhs(t, n), jac @ dn

    def field(t, n, args=None):
        return f(jnp.asarray(t, dtype=jnp.float64), n)

    return field


def blas_single_thread():
    """Limit OpenBLAS (which XLA's CPU LU and triangular solves call, through scipy's
    LAPACK) to one thread for the duration of a solve. Its threads otherwise fight
    XLA's own pool: on 2 cores, once JAX runs, an LU of a 250 x 250 matrix took
    20-80 ms instead of 1.4 ms (benchmarks/README.md). No-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")

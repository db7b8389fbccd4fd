"""The model's right-hand side with its structured Jacobian attached.

``vector_field(model)`` returns f(t, y, args) and ``z_vector_field(model)`` the same
in the solver variables z (log-odds of the occupations, ``_occupations``); their JVPs
are the structured O(N^2) Jacobian of ``Model.jacobian`` (kernel terms + the rank-one
term through the self-consistent gap), instead of forward-mode differentiation through
the N x N kernels, which would cost O(N^3). The implicit diffrax solvers differentiate
through them.
"""

from __future__ import annotations

import contextlib
import functools

import jax
import jax.numpy as jnp

from kinetics import Model

from ._occupations import z_jacobian, z_rhs


def vector_field(model: Model):
    @jax.custom_jvp
    def f(t, y):
        return model.rhs(t, y)

    @f.defjvp
    def f_jvp(primals, tangents):
        t, y = primals
        _, dy = tangents
        return model.rhs(t, y), model.jacobian(t, y) @ dy

    def field(t, y, args=None):
        return f(jnp.asarray(t, dtype=jnp.float64), y)

    return field


def z_vector_field(model: Model):
    @jax.custom_jvp
    def f(t, z):
        return z_rhs(model, t, z)

    @f.defjvp
    def f_jvp(primals, tangents):
        t, z = primals
        _, dz = tangents
        return z_rhs(model, t, z), z_jacobian(model, t, z) @ dz

    def field(t, z, args=None):
        return f(jnp.asarray(t, dtype=jnp.float64), z)

    return field


def blas_single_thread():
    """Limit OpenBLAS (which XLA's CPU LU and triangular solves call, through scipy's
    LAPACK) to one thread for the duration of a solve. Its threads otherwise fight
    XLA's own pool: on 2 cores, once JAX runs, an LU of a 250 x 250 matrix took
    20-80 ms instead of 1.4 ms (benchmarks/README.md). No-op without threadpoolctl."""
    try:
        controller = _blas_controller()
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")


@functools.cache
def _blas_controller():
    """threadpoolctl's view of the process's thread pools, taken once: a plain
    ``threadpool_limits`` scans every loaded library on each entry (3-30 ms measured,
    paid per steady state, evolve and sweep chunk), ``controller.limit`` ~20 us. Both
    OpenBLAS builds (numpy's, and scipy's, which XLA's LU calls) are loaded by
    ``import solvers``, before the first solve takes the snapshot."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()

"""The variables the solvers work in: log-odds of the occupations.

At low temperature the occupations span tens of decades (n ~ e^{-Delta/T} ~ 1e-9 at the gap
edge at T = 0.08 T_c, far smaller on the tail; phonon occupations ~ 1e-60). Absolute
tolerances cannot see them, and a Newton or time step in n can push them negative while
every absolute test says "converged". Every solver therefore works in

    z = ln(n / (1 - n))   for the quasiparticles,      z = ln N   for dynamic bosons,

which keeps 0 < n < 1 and N > 0 whatever the step, and whose absolute change is the
relative change of the occupation (dn = D dz with D = n (1 - n), dN = N dz).

Occupations below ``N_FLOOR`` (1e-250; physically nothing) are held there: the model never
sees a smaller one, and a state resting at the floor while its equation asks for less is
taken as converged there (see ``at_floor``). The floor keeps the scaled quantities below
(rate x 1/N_FLOOR) finite in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from kinetics import Model

N_FLOOR = 1e-250
Z_FLOOR = float(np.log(N_FLOOR))
_N_CEIL = 1.0 - 1e-16  # logit(1) is infinite; n = 1 - 1e-16 is 1 in every observable


def to_z(model: Model, y):
    """Physical state y = [n, N_b...] -> solver variables z (same shape; traceable)."""
    n, bosons = model.split(y)
    n = jnp.clip(n, N_FLOOR, _N_CEIL)
    z = jnp.log(n) - jnp.log1p(-n)
    if not bosons:
        return z
    return model.join(z, tuple(jnp.log(jnp.maximum(b, N_FLOOR)) for b in bosons))


def _n_of(z):
    return jax.nn.sigmoid(jnp.maximum(z, Z_FLOOR))


def from_z(model: Model, z):
    """Solver variables z -> physical state y (traceable)."""
    zn, zb = model.split(z)
    n = _n_of(zn)
    if not zb:
        return n
    return model.join(n, tuple(jnp.exp(jnp.maximum(b, Z_FLOOR)) for b in zb))


def scale(model: Model, z):
    """D = dy/dz at z: n (1 - n) for the quasiparticles, N for the bosons (traceable)."""
    zn, zb = model.split(z)
    zn = jnp.maximum(zn, Z_FLOOR)
    d = jax.nn.sigmoid(zn) * jax.nn.sigmoid(-zn)  # n (1 - n) without cancellation
    if not zb:
        return d
    return model.join(d, tuple(jnp.exp(jnp.maximum(b, Z_FLOOR)) for b in zb))


def _curvature(model: Model, z):
    """d ln D / dz: 1 - 2 n for the quasiparticles, 1 for the bosons."""
    zn, zb = model.split(z)
    c = 1.0 - 2.0 * _n_of(zn)
    if not zb:
        return c
    return model.join(c, tuple(jnp.ones_like(b) for b in zb))


def at_floor(model: Model, z, step):
    """Components held at the occupation floor whose equation asks to go lower."""
    return (z <= Z_FLOOR + 1e-9) & (step < 0)


def z_rhs(model: Model, t, z):
    """dz/dt = (dy/dt) / D: the relative rate of change of each occupation."""
    return model.rhs(t, from_z(model, z)) / scale(model, z)


def scaled_jacobian(model: Model, t, z):
    """D^{-1} J D at z (J = d rhs / dy): the Jacobian in relative units, well scaled even
    where occupations span 100 decades (J_ij n_j / n_i is a rate at any state near
    detailed balance)."""
    d = scale(model, z)
    return model.jacobian(t, from_z(model, z), scale=d)  # scaled in place, row block by row block


def z_jacobian(model: Model, t, z):
    """d(dz/dt)/dz, exact: D^{-1} J D - diag(F d ln D / dz), F = dz/dt."""
    idx = jnp.arange(z.shape[0])
    f = z_rhs(model, t, z)
    return scaled_jacobian(model, t, z).at[idx, idx].add(-f * _curvature(model, z))


def physical_problem(model: Model, y, atol: float = 0.0, rtol: float = 0.0) -> str:
    """Why the state y (numpy, last axis the state) is not a physical one, or "": not
    finite, an occupation n outside [0, 1] or a boson occupation below 0 by more than
    the accuracy asked for, atol + rtol x the largest occupation of the state. The Newton
    solver and the implicit integrators cannot produce such a state; this is the last
    check before a result is called a success."""
    y = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(y)):
        return "a non-finite value in the state"
    n, bosons = y[..., : model.grid.n], y[..., model.grid.n :]
    slack = atol + rtol * np.max(np.abs(n), axis=-1, keepdims=True)
    if np.any(n < -slack) or np.any(n > 1.0 + slack):
        return (f"an occupation left [0, 1] (min n = {n.min():.3g}, max n = {n.max():.3g}); "
                "the state is not physical")
    if bosons.size and np.any(bosons < -atol - rtol * np.max(np.abs(bosons))):
        return f"a boson occupation is negative (min N = {bosons.min():.3g})"
    return ""

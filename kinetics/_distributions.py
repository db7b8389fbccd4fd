"""Fermi and Bose occupation functions, safe for every argument.

Both are written with ``exp(-|x|)`` only, so they never overflow, and keep full
relative precision in their exponentially small tails (``fermi(800)`` is
``exp(-800)``, not 0 from ``1 - tanh``). ``bose`` uses ``expm1`` so that
``bose(x) -> 1/x`` keeps its precision as ``x -> 0+``.
"""

from __future__ import annotations

import jax.numpy as jnp


def fermi(x):
    """Fermi function n_F(x) = 1 / (exp(x) + 1), x = E / T (dimensionless)."""
    e = jnp.exp(-jnp.abs(x))
    return jnp.where(x > 0, e / (1.0 + e), 1.0 / (1.0 + e))


def bose(x):
    """Bose function n_B(x) = 1 / (exp(x) - 1) for x = Omega / T > 0.

    Returns +inf at x = 0 and is not defined for x < 0 (returns NaN there):
    bath occupations are only ever asked for at positive energies.
    """
    x = jnp.asarray(x)
    return jnp.where(x >= 0, jnp.exp(-x) / (-jnp.expm1(-x)), jnp.nan)


def thermal_occupation(omega, temperature):
    """Bose occupation n_B(omega / T) of a bath at temperature T >= 0 [T_c].

    T = 0 is the vacuum: the occupation is 0 for every omega > 0.
    """
    safe_t = jnp.where(temperature > 0, temperature, 1.0)
    return jnp.where(temperature > 0, bose(omega / safe_t), 0.0)

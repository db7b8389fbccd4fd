"""The xi grid at low temperature (k_B T << Delta): thermal integrals and detailed balance.

References are closed forms: integral_0^inf dxi n_F(E_xi / T) = sum_k (-1)^(k+1) Delta
K_1(k Delta / T) (expand n_F in e^{-kE/T}; integral_0^inf e^{-a E} dxi = Delta K_1(a Delta)),
and detailed balance (each bracket of the operator vanishes on n_F, N_B).
"""

import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import k1e

import kinetics

DELTA = 1.764  # the T = 0 gap: Delta(T) differs from it by < 1e-3 for T <= 0.2
LOW_T = (0.05, 0.1, 0.2)


def thermal_density_exact(delta, t):
    """integral_0^inf dxi n_F(E/T), scaled by e^{Delta/T} (it is ~e^{-35} at T = 0.05)."""
    k = np.arange(1, 400)
    x = k * delta / t
    # k1e(x) = e^x K_1(x): the k-th term times e^{Delta/T} is Delta k1e(x) e^{-(x - Delta/T)}
    return float(np.sum((-1.0) ** (k + 1) * delta * k1e(x) * np.exp(-(x - delta / t))))


def thermal_density_on(grid, delta, t):
    """The same on the grid (kinetics.thermal_distribution, Grid.integrate), times e^{Delta/T}."""
    n = kinetics.thermal_distribution(grid, delta, t)
    return float(grid.integrate(n * jnp.exp(delta / t)))


@pytest.mark.parametrize("t", LOW_T)
@pytest.mark.parametrize("n", [16, 400])
def test_thermal_density_on_the_low_temperature_grid(t, n):
    grid = kinetics.Grid.for_temperature(t, xi_max=30.0, n=n)
    # The trapezoid rule in u of an integrand even at u = 0 converges spectrally: measured
    # 4e-9 (T = 0.05), 1e-9, 2e-14 at n = 16 and rounding (~1e-15) at n = 400; the xi_max
    # tail exp(-30/T) is < 1e-60. 1e-6 is the accuracy asked; an O(h^2) scheme would be
    # off by ~(h / sqrt(Delta T))^2 ~ 1e-2 at n = 16.
    rel = thermal_density_on(grid, DELTA, t) / thermal_density_exact(DELTA, t) - 1.0
    assert abs(rel) < 1e-6


def test_the_default_core_also_resolves_low_temperatures():
    # core = 2 (the default) is 7x sqrt(Delta T) at T = 0.05; it needs a few more points
    # (measured 4e-15 at n = 32, 4e-9 at 24, 3e-4 at 16) but no other grid
    t = 0.05
    grid = kinetics.Grid(n=32, xi_max=30.0, core=2.0)
    rel = thermal_density_on(grid, DELTA, t) / thermal_density_exact(DELTA, t) - 1.0
    assert abs(rel) < 1e-6


@pytest.mark.parametrize("t", LOW_T)
def test_detailed_balance_on_the_low_temperature_grid(t):
    grid = kinetics.Grid.for_temperature(t, xi_max=30.0, n=120)
    bath = kinetics.Phonons(tau0=200.0, t_ph=t)
    n_f = kinetics.thermal_distribution(grid, DELTA, t)
    # a 10% perturbation sets the scale of a generic collision integral
    n_pert = n_f * (1.0 + 0.1 * jnp.sin(jnp.asarray(grid.xi)))
    residual = np.asarray(kinetics.collision(bath, grid, n_f, DELTA))
    scale = np.max(np.abs(np.asarray(kinetics.collision(bath, grid, n_pert, DELTA))))
    assert scale > 0.0 and np.all(np.isfinite(residual))
    # Each node bracket vanishes exactly on (n_F, N_B); what remains is rounding in sums
    # of ~N = 120 gain and loss terms, each ~10x |I[n_pert]|: ~120 * 2.2e-16 * 10 ~ 3e-13.
    # A scheme that broke detailed balance would leave O(h^2) ~ 1e-3 here.
    assert np.max(np.abs(residual)) < 1e-12 * scale


def test_for_temperature_picks_the_thermal_core():
    for t in LOW_T:
        grid = kinetics.Grid.for_temperature(t, xi_max=40.0, n=200)
        delta = 1.764 * math.tanh(1.74 * math.sqrt(1.0 / t - 1.0))
        assert grid.core == pytest.approx(3.0 * math.sqrt(delta * t), rel=1e-12)
        assert (grid.n, grid.xi_max) == (200, 40.0)
    assert kinetics.Grid.for_temperature(0.9).core == 2.0  # the default core near T_c
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(kinetics.GridError, match="for_temperature"):
            kinetics.Grid.for_temperature(bad)

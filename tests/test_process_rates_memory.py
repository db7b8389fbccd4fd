"""Process rates (the datasets' ``process_rate``) without N x N matrices (issue 18 item 2):
the thermal baths' rates over blocks of rows, the line drives' from their O(N) event
entries, against the materialized matrices (``Bilinear.process_rates``, the reference
form) for every bath kind, both gap regimes; and the compiled totals' temporaries."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kinetics
from kinetics._collision import Bilinear

_GRID = kinetics.Grid(n=150)
_BATHS = {
    "phonons": kinetics.Phonons(tau0=100.0, t_ph=0.3),
    "multimode": kinetics.MultimodeCavity(omega0=3.0, t_cav=0.45, eta=1e-4),
    "single-mode": kinetics.SingleModeCavity(omega0=2.5, t_cav=0.3, eta=1e-4, kappa=0.05),
    "classical": kinetics.ClassicalDrive(omega_d=2.5, power=1e-6),
    "readout": kinetics.ReadoutDrive(omega_d=2.5, n_bar=3.0, c_phot=1e-3),
    "readout-gaussian": kinetics.ReadoutDrive(
        omega_d=2.5, n_bar=3.0, c_phot=1e-3, line="gaussian", width=0.1),
    "readout-stimulated": kinetics.ReadoutDrive(
        omega_d=2.5, n_bar=7.0, c_phot=2e-4, spontaneous=False),
}


@pytest.mark.parametrize("delta", [1.2, 0.0])
@pytest.mark.parametrize("name", sorted(_BATHS))
def test_process_rates_equal_the_matrices(name, delta):
    # a non-thermal state (so that no bracket vanishes), rows of every process
    n = kinetics.thermal_distribution(_GRID, jnp.asarray(1.2), 0.3) * 1.7 + 1e-4
    bil = kinetics.bath_bilinear(_BATHS[name], _GRID, jnp.asarray(delta), 0.0)
    fast, ref = bil.process_rates(n), Bilinear.process_rates(bil, n)
    assert set(fast) == set(ref) == set(kinetics.PROCESSES)
    for k in ref:
        scale = float(jnp.max(jnp.abs(ref[k])))
        np.testing.assert_allclose(np.asarray(fast[k]), np.asarray(ref[k]),
                                   rtol=0, atol=1e-13 * max(scale, 1e-300))


def test_process_rate_totals_hold_no_n_by_n_array():
    # Phonons + a classical drive (the stiff benchmark's baths) at N = 2000: the
    # matrices' form needed ~10 N x N float64 temporaries; blocked: O(N x block)
    n = 2000
    grid = kinetics.Grid(n=n, xi_max=15.0)
    d0 = kinetics.equilibrium_gap(0.3, grid)
    model = kinetics.Model(t_qp=0.3, tau_in=None, grid=grid, baths=[
        kinetics.Phonons(tau0=100.0, t_ph=0.3),
        kinetics.ClassicalDrive(omega_d=0.5 * d0, power=1e-8)])
    dyn, static = eqx.partition((model, model.initial_state()), eqx.is_array)
    fn = jax.jit(lambda d: (lambda m, y: m.process_rates(y, 0.0))(*eqx.combine(d, static)))
    memory = fn.lower(dyn).compile().memory_analysis()
    assert memory is not None
    assert memory.temp_size_in_bytes < 0.25 * n * n * 8

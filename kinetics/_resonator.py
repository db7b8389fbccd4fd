"""What a resonator and a density measurement see of a state (docs/physics.md section 11).

Energies and temperatures in k_B T_c, times in hbar/(k_B T_c), as everywhere; the
physical-unit helpers at the end take T_c [K] (and a `Material` for N_0).

**Resonator** (thin film, d << penetration depth, local Mattis-Bardeen limit), for a
kinetic-inductance fraction alpha and the probe (resonance) photon energy hbar omega:

    delta f_r / f_r = (alpha / 2) (sigma_2 - sigma_2,eq) / sigma_2,eq
    1 / Q_qp        = alpha sigma_1 / sigma_2
    L_s             = R_sq / (omega sigma_2 / sigma_N)       (kinetic inductance per square)

sigma_2,eq is the film in equilibrium at the bath temperature: the thermal state n_F at
T_qp with its self-consistent gap Delta_0 = Delta(T_qp) on the same grid
(`equilibrium_conductivity`). The shift is the linear-response form (first order in
delta sigma_2 / sigma_2, what experiments quote); it is negative when quasiparticles are
added (sigma_2 falls, L_k grows) and positive when the gap is enhanced.

**Densities.** The project's n_qp = 4 Int_0^inf dxi n is in units nu_F k_B T_c
(docs/physics.md section 7; nu_F = N_0, the single-spin density of states; the 4 counts
spin and the two branches +-xi). Section 11's n_qp = 4 N_0 Int dxi n [per volume] is
therefore the project's number times N_0 k_B T_c, and

    x_qp = n_qp / (2 N_0 Delta(0)) = (project n_qp) / (2 Delta(0) / k_B T_c),

with Delta(0) = pi e^-gamma k_B T_c = 1.763877 k_B T_c the zero-temperature BCS gap of
the model's gap equation (the Cooper-pair density is 2 N_0 Delta(0), not the gap at
T_qp). For a thermal state, n_qp = 4 sum_k (-1)^(k+1) Delta K_1(k Delta / T).

**Effective temperature** T*: the temperature of the Fermi distribution at the state's
own gap that holds the same n_qp on the same grid (the same quadrature as n_qp, so a
thermal state gives its temperature back to rounding): a scalar root, monotone in T.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ._bosons import DELTA_ZERO
from ._conductivity import complex_conductivity
from ._distributions import fermi
from ._errors import ParameterError
from ._gap import equilibrium_gap_on, thermal_distribution
from ._grid import Grid
from ._materials import Material
from ._units import HBAR, K_B  # eV s, eV / K

# log-bisection bracket of T* [T_c]: below 1e-4 n_qp underflows for any gap on a grid,
# above 1e3 the Fermi function on a grid of xi_max <= 1e3 is flat at 1/2
_T_LOW, _T_HIGH = 1e-4, 1e3
_BISECTIONS = 100  # width ln(1e7) / 2^100: far below rounding


def resonator_response(sigma1, sigma2, sigma2_equilibrium, alpha):
    """(delta f_r / f_r, 1 / Q_qp) of a thin-film resonator from its film's conductivity.

    - `sigma1`, `sigma2`: the state's sigma_1 / sigma_N, sigma_2 / sigma_N (any shape).
    - `sigma2_equilibrium`: sigma_2 / sigma_N of the equilibrium film at the bath
      temperature (broadcast against `sigma2`; `equilibrium_conductivity`).
    - `alpha`: kinetic-inductance fraction L_k / (L_k + L_geo), 0 < alpha <= 1.

    delta f_r / f_r = (alpha/2) (sigma_2 - sigma_2,eq) / sigma_2,eq (first order, the
    form experiments quote); 1 / Q_qp = alpha sigma_1 / sigma_2 (quasiparticle loss only).
    """
    _check_alpha(alpha)
    s2 = jnp.asarray(sigma2)
    shift = 0.5 * alpha * (s2 - sigma2_equilibrium) / sigma2_equilibrium
    return shift, alpha * jnp.asarray(sigma1) / s2


def _check_alpha(alpha) -> None:
    if isinstance(alpha, jax.core.Tracer):
        return
    a = float(alpha)
    if not (0.0 < a <= 1.0):
        raise ParameterError(
            f"resonator: alpha (kinetic-inductance fraction) must be in (0, 1]; got {alpha!r}."
        )


def equilibrium_conductivity(grid: Grid, t, hbar_omega):
    """(sigma_1, sigma_2) / sigma_N of the equilibrium film at temperature `t` [T_c]:
    n_F(E / t) on `grid` with the self-consistent gap Delta(t) on that grid (the reference
    of the frequency shift: `t` = T_qp gives the model's own thermal state)."""
    delta = equilibrium_gap_on(grid, jnp.asarray(t, dtype=jnp.float64))
    n = thermal_distribution(grid, delta, t)
    return complex_conductivity(grid, n, delta, hbar_omega)


def kinetic_inductance(sigma2, hbar_omega, r_sq_ohm, t_c_kelvin):
    """Kinetic inductance per square L_s = R_sq / (omega sigma_2 / sigma_N) [H].

    - `sigma2`: sigma_2 / sigma_N at the probe; `hbar_omega`: the probe energy [T_c].
    - `r_sq_ohm`: the normal-state sheet resistance R_sq [ohm]; `t_c_kelvin`: T_c [K].

    At T -> 0, hbar omega << Delta it tends to hbar R_sq / (pi Delta) (Delta in J).
    """
    omega = np.asarray(hbar_omega, dtype=np.float64) * K_B * t_c_kelvin / HBAR  # rad / s
    return float(r_sq_ohm) / (omega * np.asarray(sigma2, dtype=np.float64))


def quasiparticle_fraction(n_qp):
    """x_qp = n_qp / (2 N_0 Delta(0)) from the project's n_qp [nu_F k_B T_c] (module doc):
    n_qp / (2 x 1.763877)."""
    return np.asarray(n_qp, dtype=np.float64) / (2.0 * DELTA_ZERO)


def quasiparticle_density_um3(n_qp, material: Material, t_c_kelvin: float | None = None):
    """n_qp [um^-3] = (project n_qp) x N_0 k_B T_c, with N_0 = `material.nu_f` (single
    spin, states / (eV m^3)) and T_c [K] (default the material's)."""
    t_c = material.t_c if t_c_kelvin is None else float(t_c_kelvin)
    per_um3_ev = material.nu_f * 1e-18  # states / (eV um^3)
    return np.asarray(n_qp, dtype=np.float64) * per_um3_ev * K_B * t_c


def to_microelectronvolt(energy, t_c_kelvin: float):
    """An energy [k_B T_c] in ueV."""
    return np.asarray(energy, dtype=np.float64) * K_B * t_c_kelvin * 1e6


def to_nanoseconds(time, t_c_kelvin: float):
    """A time [hbar/(k_B T_c)] in ns."""
    return np.asarray(time, dtype=np.float64) * HBAR / (K_B * t_c_kelvin) * 1e9


@functools.partial(jax.jit, static_argnums=0)
def _t_star(grid: Grid, n_qp, delta):
    w = jnp.asarray(grid.weights)
    xi = jnp.asarray(grid.xi)
    e = jnp.sqrt(xi * xi + delta * delta)

    def density(log_t):  # the project's n_qp of n_F(E/T) on the grid, increasing in T
        return 4.0 * jnp.sum(w * fermi(e / jnp.exp(log_t)))

    def step(_, bracket):
        lo, hi = bracket
        mid = 0.5 * (lo + hi)
        below = density(mid) < n_qp
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = math.log(_T_LOW), math.log(_T_HIGH)
    lo, hi = jax.lax.fori_loop(0, _BISECTIONS, step, (jnp.asarray(lo), jnp.asarray(hi)))
    t = jnp.exp(0.5 * (lo + hi))
    reachable = (n_qp > density(math.log(_T_LOW))) & (n_qp <= density(math.log(_T_HIGH)))
    t = jnp.where(reachable, t, jnp.nan)
    return jnp.where(n_qp <= 0.0, 0.0, t)


_t_star_rows = jax.jit(jax.vmap(_t_star, in_axes=(None, 0, 0)), static_argnums=0)


def effective_temperature(grid: Grid, n_qp, gap):
    """T* [T_c]: the Fermi distribution n_F(E / T*) at gap `gap` holding the density `n_qp`
    [nu_F k_B T_c] on `grid` (the same quadrature as the project's n_qp = 4 sum_j w_j n_j).

    `n_qp` and `gap` broadcast (any shape; NaN propagates). 0 where n_qp <= 0; NaN where
    n_qp lies outside what T in [1e-4, 1e3] T_c gives (e.g. more than a grid can hold).
    """
    n_qp, gap = np.broadcast_arrays(np.asarray(n_qp, np.float64), np.asarray(gap, np.float64))
    if n_qp.size == 0:
        return n_qp.copy()
    out = _t_star_rows(grid, jnp.asarray(n_qp.reshape(-1)), jnp.asarray(gap.reshape(-1)))
    out = np.asarray(out).reshape(n_qp.shape)
    return np.where(np.isfinite(n_qp) & np.isfinite(gap), out, np.nan)

"""Material constants and unit conversions (docs/physics.md section 9).

The model's units are hbar = k_B = 1 with energies in k_B T_c and times in
hbar / (k_B T_c) (6.42 ps for aluminium, T_c = 1.19 K). These helpers turn
laboratory numbers (ns, K, metres, states per eV and volume) into model units.
"""

from __future__ import annotations

import math

import equinox as eqx

from ._bosons import DynamicBosons
from ._errors import ParameterError, check_positive

HBAR = 1.054571817e-34  # J s
K_B = 1.380649e-23  # J / K
C_LIGHT = 2.99792458e8  # m / s
EV = 1.602176634e-19  # J


class Material(eqx.Module):
    """Constants of a superconductor (Kaplan et al., PRB 14, 4854 (1976)).

    - `name`: label.
    - `t_c`: critical temperature [K].
    - `tau0_ns`: characteristic electron-phonon time tau_0 [ns].
    - `tau0_ph_ns`: characteristic phonon pair-breaking time tau_0^ph [ns].
    - `nu_f`: normal density of states at the Fermi level, per spin
      [states / (eV m^3)].
    """

    name: str = eqx.field(static=True)
    t_c: float = eqx.field(static=True)
    tau0_ns: float = eqx.field(static=True)
    tau0_ph_ns: float = eqx.field(static=True)
    nu_f: float = eqx.field(static=True)

    def __check_init__(self):
        for f in ("t_c", "tau0_ns", "tau0_ph_ns", "nu_f"):
            check_positive(f"Material.{f}", getattr(self, f))

    @property
    def time_unit_ns(self) -> float:
        """hbar / (k_B T_c) [ns]."""
        return HBAR / (K_B * self.t_c) * 1e9

    def to_time(self, ns: float) -> float:
        """A time in ns -> hbar/(k_B T_c)."""
        return float(ns) / self.time_unit_ns

    def to_ns(self, t: float) -> float:
        """A time in hbar/(k_B T_c) -> ns."""
        return float(t) * self.time_unit_ns

    @property
    def tau0(self) -> float:
        """tau_0 [hbar/(k_B T_c)] (aluminium: 6.8e4)."""
        return self.to_time(self.tau0_ns)

    @property
    def tau0_ph(self) -> float:
        """tau_0^ph [hbar/(k_B T_c)] (aluminium: 40.5)."""
        return self.to_time(self.tau0_ph_ns)


# Kaplan et al. 1976 (tau_0, tau_0^ph); N(0) = 1.72e10 / (eV um^3) per spin
ALUMINIUM = Material(name="Al", t_c=1.19, tau0_ns=438.0, tau0_ph_ns=0.26, nu_f=1.72e28)

# The weak-coupling elements of Kaplan et al., PRB 14, 4854 (1976), Table I, beside Al.
# tau_0, tau_0^ph: Kaplan's Table I. nu_f: Kaplan's band density of states N(0) times the
# renormalization Z_1(0) = 1 + lambda of the same table (the quasiparticle density of
# states the measured densities refer to), as transcribed in Guruswamy's nestfsss
# (Sc_Niobium.m, Sc_Tantalum.m; PhD thesis, Cambridge 2018). T_c: the bulk values
# (Nb 9.25 K, Ta 4.47 K; Kittel, Introduction to Solid State Physics, Table 10.1).
# The model's gap is weak-coupling BCS, Delta(0) = 1.764 k_B T_c (Nb: 1.41 meV, measured
# ~1.5 meV; Ta: 0.68 meV, measured ~0.70 meV). The strong-coupling elements of the table
# (Pb, Hg; 2 Delta / k_B T_c > 4) are left out: the phonon model (alpha^2 F = b Omega^2,
# BCS gap ratio) does not describe them.
NIOBIUM = Material(name="Nb", t_c=9.25, tau0_ns=0.149, tau0_ph_ns=0.00417, nu_f=2.84 * 3.17e28)
TANTALUM = Material(name="Ta", t_c=4.47, tau0_ns=1.78, tau0_ph_ns=0.0227, nu_f=1.69 * 4.08e28)

MATERIALS = {m.name: m for m in (ALUMINIUM, NIOBIUM, TANTALUM)}
_ALIASES = {"aluminium": "Al", "aluminum": "Al", "niobium": "Nb", "tantalum": "Ta"}


def material(name: str) -> Material:
    """The `Material` of a chemical symbol ("Al", "Nb", "Ta") or English name
    (case-insensitive); ParameterError naming the known materials otherwise."""
    if isinstance(name, Material):
        return name
    key = str(name).strip()
    key = _ALIASES.get(key.lower(), key)
    for symbol, m in MATERIALS.items():
        if symbol.lower() == key.lower():
            return m
    raise ParameterError(
        f"material: unknown material {name!r}; known: {', '.join(MATERIALS)} "
        "(or build a kinetics.Material)."
    )


def phonons_of(material: Material, t_ph: float, *, tau_esc_ns: float | None = None, **omega_grid):
    """A ``Phonons`` bath with the material's tau_0, static (``tau_esc_ns=None``) or
    dynamic with escape time tau_esc [ns] into the substrate at t_ph [T_c].

    `omega_grid`: further ``DynamicBosons`` settings (n_omega, omega_focus, ...).
    """
    from ._baths import Phonons

    if tau_esc_ns is None:
        if omega_grid:
            raise ParameterError(
                "phonons_of: Omega-grid settings need tau_esc_ns (a dynamic bath)."
            )
        return Phonons(tau0=material.tau0, t_ph=t_ph)
    if not (isinstance(tau_esc_ns, (int, float)) and tau_esc_ns > 0):
        raise ParameterError(f"phonons_of: tau_esc_ns must be > 0 [ns]; got {tau_esc_ns!r}.")
    dyn = DynamicBosons(tau_b=material.to_time(tau_esc_ns), tau0_ph=material.tau0_ph, **omega_grid)
    return Phonons(tau0=material.tau0, t_ph=t_ph, dynamic=dyn)


def planar_cavity_r(
    thickness_m: float, material: Material = ALUMINIUM, *, refractive_index: float = 1.0
) -> float:
    """Dimensionless photon mode density r_cav of a planar multimode cavity.

    rho_cav(Omega) = Omega theta(Omega - omega_0) / (pi hbar^2 c^2 d 4 nu_F) in physical
    units (two polarizations, modes omega_q = sqrt(omega_0^2 + c^2 q^2), film of
    thickness d, docs/physics.md section 9), i.e. r_cav Omega theta(Omega - omega_0) with
    Omega in k_B T_c and rho in 4 nu_F:

        r_cav = k_B T_c n_r^2 / (4 pi hbar^2 c^2 d nu_F)

    - `thickness_m`: film thickness d [m].
    - `material`: gives T_c and nu_F (per spin, states / (eV m^3)).
    - `refractive_index`: n_r of the cavity medium (c -> c / n_r).

    10 nm of aluminium: r_cav = 1.2e-12.
    """
    d = check_positive("planar_cavity_r: thickness_m", thickness_m, "[m]")
    n_r = check_positive("planar_cavity_r: refractive_index", refractive_index)
    nu = material.nu_f / EV  # states / (J m^3)
    c = C_LIGHT / n_r
    return K_B * material.t_c / (4.0 * math.pi * HBAR**2 * c**2 * d * nu)


def kaplan_pair_breaking_rate(omega, delta, tau0_ph: float, n_quad: int = 400):
    """Kaplan's T = 0 phonon pair-breaking rate 1/tau_B(Omega) [k_B T_c/hbar]
    (docs/physics.md section 9):

        1/tau_B = (1 / (pi tau0_ph Delta(0))) integral_Delta^{Omega - Delta} dE
                  [E (Omega - E) + Delta^2] / (sqrt(E^2 - Delta^2) sqrt((Omega - E)^2 - Delta^2))

    evaluated with Gauss-Chebyshev-like substitution E = a + (b - a)(1 - cos th)/2
    (the two inverse square roots become smooth); 0 for Omega <= 2 Delta.
    `omega`, `delta` [T_c] (numpy), `tau0_ph` [hbar/(k_B T_c)].
    """
    import numpy as np

    from ._bosons import DELTA_ZERO

    omega = np.atleast_1d(np.asarray(omega, dtype=np.float64))
    x, wq = np.polynomial.legendre.leggauss(n_quad)
    th = 0.5 * np.pi * (x + 1.0)  # theta in (0, pi)
    wth = 0.5 * np.pi * wq
    out = np.zeros_like(omega)
    for k, om in enumerate(omega):
        if om <= 2.0 * delta:
            continue
        a, b = delta, om - delta
        e = a + 0.5 * (b - a) * (1.0 - np.cos(th))
        de = 0.5 * (b - a) * np.sin(th)
        # sqrt(E^2 - D^2) sqrt((om-E)^2 - D^2) = sqrt((E-a)(b-E)) sqrt((E+a)(om-E+D))
        s = np.sqrt((e + delta) * (om - e + delta))
        root = 0.5 * (b - a) * np.sin(th)  # sqrt((E - a)(b - E))
        integrand = (e * (om - e) + delta**2) / s
        out[k] = np.sum(wth * integrand * de / root)
    return out / (np.pi * tau0_ph * DELTA_ZERO)

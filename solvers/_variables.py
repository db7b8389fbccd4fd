"""The one variable table: every variable and coordinate any result carries.

Single-point datasets (``build_dataset``), sweeps and the application's study datasets
take their long names and units from here, and a study takes the name a variable carries
there (``Variable.study``: compute kind -> study name) from here as well.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

KINDS = ("perturbative", "steady", "evolve")
_ALL = frozenset(KINDS)
_SWEEP = frozenset({"sweep"})


class Variable(NamedTuple):
    """One row of the table.

    - `long_name`, `units`: the netCDF attributes (units "" for strings).
    - `kinds`: which results carry it ("perturbative", "steady", "evolve" for the solvers'
      datasets, "sweep" for a sweep's per-point statistics, "study" for study-only rows).
    - `study`: compute kind -> the name it carries in a study dataset (empty: not kept).
    """

    long_name: str
    units: str
    kinds: frozenset = _ALL
    study: MappingProxyType = MappingProxyType({})


def _v(long_name, units, kinds=_ALL, **study):
    return Variable(long_name, units, frozenset(kinds), MappingProxyType(study))


def _obs(long_name, units, study_name):
    """An observable: carried by steady and evolve results, same name in a study."""
    return _v(long_name, units, {"steady", "evolve"}, steady=study_name, evolve=study_name)


VARIABLES = MappingProxyType(
    {
        # ---- the state and what is derived from it (every solver)
        "n": _v("quasiparticle occupation n(xi)", "1", evolve="n"),
        "delta_n": _v(
            "n - n_F(E_xi(Delta)/T_qp) at the state's own gap", "1",
            steady="delta_n_nonlinear", evolve="delta_n",
        ),
        "gap": _v(
            "superconducting gap Delta", "k_B T_c",
            perturbative="gap_perturbative", steady="gap_nonlinear", evolve="gap",
        ),
        "relative_gap_change": _v(
            "(Delta - Delta_0) / Delta_0", "1",
            perturbative="relative_gap_change_exact", steady="relative_gap_change_nonlinear",
            evolve="relative_gap_change",
        ),
        "n_qp": _v(
            "quasiparticle density 4 integral dxi n", "nu_F k_B T_c",
            steady="n_qp_nonlinear", evolve="n_qp",
        ),
        "energy": _v(
            "quasiparticle energy 4 integral dxi E n", "nu_F (k_B T_c)^2", evolve="energy"
        ),
        "quasiparticle_energy": _v("E_xi = sqrt(xi^2 + Delta^2)", "k_B T_c"),
        "delta0": _v("equilibrium gap Delta_0 = Delta(T_qp) on the model's grid", "k_B T_c"),
        "went_normal_at": _v(
            "time at which the gap fell to zero (the film went normal)", "hbar / (k_B T_c)",
            {"evolve"}, evolve="went_normal_at",
        ),
        "recovered_at": _v(
            "time at which the gap came back (the film recovered)", "hbar / (k_B T_c)",
            {"evolve"}, evolve="recovered_at",
        ),
        # ---- observables (solvers.add_observables; docs/physics.md section 11)
        "sigma1": _obs(
            "Mattis-Bardeen sigma_1 / sigma_N at the probe frequency (absorption + pair "
            "breaking)", "sigma_N", "sigma1",
        ),
        "sigma2": _obs("Mattis-Bardeen sigma_2 / sigma_N at the probe frequency", "sigma_N",
                       "sigma2"),
        "sigma1_equilibrium": _obs(
            "sigma_1 / sigma_N of the equilibrium film at T_qp (thermal, self-consistent gap)",
            "sigma_N", "sigma1_equilibrium",
        ),
        "sigma2_equilibrium": _obs(
            "sigma_2 / sigma_N of the equilibrium film at T_qp (thermal, self-consistent gap)",
            "sigma_N", "sigma2_equilibrium",
        ),
        "frequency_shift": _obs(
            "resonance shift delta f_r / f_r = (alpha/2)(sigma_2 - sigma_2,eq) / sigma_2,eq "
            "against the equilibrium film at T_qp", "1", "frequency_shift",
        ),
        "inverse_q_qp": _obs(
            "quasiparticle loss 1 / Q_qp = alpha sigma_1 / sigma_2", "1", "inverse_q_qp"
        ),
        "kinetic_inductance": _obs(
            "kinetic inductance per square L_s = R_sq / (omega sigma_2 / sigma_N)", "pH",
            "kinetic_inductance",
        ),
        "x_qp": _obs(
            "quasiparticle fraction x_qp = n_qp / (2 N_0 Delta(0)), Delta(0) = 1.764 k_B T_c",
            "1", "x_qp",
        ),
        "t_star": _obs(
            "effective temperature T*: n_F at the state's gap with the same n_qp", "k_B T_c",
            "t_star",
        ),
        "t_star_mk": _obs("effective temperature T*", "mK", "t_star_mk"),
        "n_qp_um3": _obs(
            "quasiparticle density 4 N_0 integral dxi n (both spins and branches)", "um^-3",
            "n_qp_um3",
        ),
        "gap_uev": _obs("superconducting gap Delta", "ueV", "gap_uev"),
        # ---- perturbative only
        "relative_gap_change_gl": _v(
            "delta Delta / Delta_0, Ginzburg-Landau form", "1", {"perturbative"},
            perturbative="relative_gap_change_gl",
        ),
        "delta_n_first_order": _v(
            "tau_in sum_b I_b[n_F] at Delta_0 (paper eq. (14))", "1", {"perturbative"},
            perturbative="delta_n_first_order",
        ),
        # ---- dynamic baths
        "boson_occupation": _v(
            "occupation N_b(Omega) of the dynamic baths' modes", "1",
            steady="boson_occupation_nonlinear", evolve="boson_occupation",
        ),
        "boson_reservoir_occupation": _v("reservoir occupation n_B(Omega / T_b) at t = 0", "1"),
        "boson_mode_temperature": _v(
            "mode temperature Omega / ln(1 + 1/N_b)", "k_B T_c", evolve="boson_mode_temperature"
        ),
        "boson_temperature": _v(
            "effective boson temperature: the Bose distribution with the same energy "
            "integral dOmega rho_b Omega N_b on the Omega grid", "k_B T_c",
            steady="boson_temperature_nonlinear", evolve="boson_temperature",
        ),
        "boson_energy": _v(
            "boson energy integral dOmega rho_b Omega N_b", "4 nu_F (k_B T_c)^2",
            evolve="boson_energy",
        ),
        "mode_density": _v("boson modes per unit energy rho_b(Omega)", "4 nu_F"),
        "process_rate": _v(
            "quasiparticles per unit time scattered out / created by pair breaking / lost by "
            "recombination, 4 integral dxi, per bath",
            "nu_F k_B T_c x k_B T_c / hbar", {"perturbative", "steady"},
        ),
        # ---- a sweep's per-point statistics
        "status": _v(
            "'success', 'failed' (solver did not converge), 'error' (raised) or 'missing'", "",
            _SWEEP,
        ),
        "message": _v("why the point failed ('' on success)", "", _SWEEP),
        "warnings": _v("warnings raised while building and solving the point", "", _SWEEP),
        "converged": _v("the solver reached its tolerance", "1", _SWEEP),
        "residual": _v(
            "Newton residual max|dn/dt| tau_in (steady); NaN otherwise", "1", _SWEEP,
            steady="steady_residual",
        ),
        "iterations": _v(
            "Newton iterations (steady, summed over stages) or integrator steps (evolve)", "1",
            _SWEEP, steady="steady_iterations", evolve="evolve_steps",
        ),
        "wall_time": _v("wall time of the point (its share of a batched group)", "s", _SWEEP),
        "sweep_run": _v("id of the sweep run that computed the point", "", _SWEEP),
    }
)

COORDS = MappingProxyType(
    {
        "xi": ("normal-state energy xi", "k_B T_c"),
        "omega": (
            "boson energy Omega (state nodes of every dynamic bath, in bath order)", "k_B T_c"
        ),
        "omega_bath": ("index of the bath each omega node belongs to", "1"),
        "dynamic_bath": ("dynamic bath", "1"),
        "time": ("time", "hbar / (k_B T_c)"),
        "normal_interval": ("interval in which the film was normal (gap below 1e-3 k_B T_c)",
                            "1"),
        "bath": ("bath (index:type)", "1"),
        "process": ("process", "1"),
        "probe": ("probe (resonance) frequency index", "1"),
        "probe_energy": ("probe photon energy hbar omega", "k_B T_c"),
        "probe_frequency": ("probe (resonance) frequency f = omega / 2 pi", "GHz"),
        "time_ns": ("time", "ns"),
    }
)

# the usual names of a sweep factory's arguments -> (long_name, units)
PARAMETER_UNITS = MappingProxyType(
    {
        "omega0": ("cavity frequency omega_0", "k_B T_c"),
        "t_cav": ("photon temperature T_cav", "k_B T_c"),
        "t_qp": ("quasiparticle temperature T_qp", "k_B T_c"),
        "t_ph": ("phonon temperature T_ph", "k_B T_c"),
        "t_bath": ("bath temperature", "k_B T_c"),
        "eta": ("cavity coupling eta", "1"),
        "eta_tau_in": ("eta * tau_in", "hbar / (k_B T_c)"),
        "kappa": ("cavity half width kappa", "k_B T_c"),
        "tau_in": ("inelastic relaxation time tau_in", "hbar / (k_B T_c)"),
        "tau0": ("electron-phonon time tau_0", "hbar / (k_B T_c)"),
        "omega_d": ("drive frequency omega_d", "k_B T_c"),
        "power": ("drive power P", "k_B T_c"),
        "omega0_ratio": ("omega_0 / Delta_0", "1"),
        "t_cav_ratio": ("T_cav / T_qp", "1"),
    }
)


def attributes(name: str) -> dict:
    """``{"long_name": ..., "units": ...}`` of a variable or coordinate of the table
    (the name itself and units "1" for names it does not hold)."""
    if name in VARIABLES:
        v = VARIABLES[name]
        return {"long_name": v.long_name, "units": v.units}
    if name in COORDS:
        long_name, units = COORDS[name]
        return {"long_name": long_name, "units": units}
    return {"long_name": name, "units": "1"}


def study_names(kind: str) -> dict[str, str]:
    """solver variable -> study variable, for one compute kind."""
    return {k: v.study[kind] for k, v in VARIABLES.items() if kind in v.study}

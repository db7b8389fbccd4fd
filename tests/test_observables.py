"""Resonator observables and physical units (kinetics._resonator, solvers.add_observables,
the [observables] table) against references written here: Mattis-Bardeen by scipy quad,
Zmuidzinas' low-temperature forms, the Bessel series of the thermal density, CODATA
constants; and the dataset plumbing against a direct evaluation on the saved states."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as sp
from threadpoolctl import threadpool_limits

import kinetics
import solvers
from cavity_eliashberg import ConfigError
from cavity_eliashberg._config import load_config
from cavity_eliashberg._study import run_study

# CODATA 2018 (exact in the SI)
K_B_J = 1.380649e-23  # J / K
HBAR_J = 1.054571817e-34  # J s
EV = 1.602176634e-19  # J
BCS_GAP_0 = math.pi * math.exp(-np.euler_gamma)  # Delta(0) / k_B T_c

GRID = kinetics.Grid()  # N = 400, xi_max = 30


def _fermi(e, t):
    return 0.5 * (1.0 - np.tanh(0.5 * e / t))


def _mb_quad(delta, t, w):
    """Thermal Mattis-Bardeen (sigma_1, sigma_2) / sigma_N by scipy quad, hbar omega < 2 Delta
    (docs/physics.md section 11); the inverse square roots by E = Delta cosh u (sigma_1) and
    quad's algebraic weight (sigma_2)."""
    assert w < 2 * delta

    def s1_integrand(u):
        e = delta * math.cosh(u)
        return (
            (_fermi(e, t) - _fermi(e + w, t))
            * (e * (e + w) + delta**2)
            / math.sqrt((e + w) ** 2 - delta**2)
        )

    u_max = math.acosh((delta + 60.0 * t) / delta)
    u_edge = math.asinh(math.sqrt(w * (2 * delta + w)) / delta)  # the edge structure's width
    s1 = sum(
        si.quad(s1_integrand, a, b, epsabs=0, epsrel=1e-12, limit=400)[0]
        for a, b in ((0.0, u_edge), (u_edge, u_max))
    ) * 2.0 / w

    def s2_integrand(e):  # without 1 / sqrt((E - (Delta - w)) (Delta - E)): quad's weight
        return (
            (1.0 - 2.0 * _fermi(e + w, t))
            * (e * (e + w) + delta**2)
            / math.sqrt((delta + e) * (e + w + delta))
        )

    s2 = si.quad(s2_integrand, delta - w, delta, weight="alg", wvar=(-0.5, -0.5),
                 epsabs=0, epsrel=1e-13)[0] / w
    return s1, s2


def _thermal_dataset(model, t2):
    """The steady-state dataset of the thermal state at t2 with its own gap Delta(t2)."""
    d2 = float(kinetics.equilibrium_gap(t2, model.grid))
    n = kinetics.thermal_distribution(model.grid, d2, t2)
    return solvers.build_dataset(model, n, d2, kind="steady"), d2


# ---------------------------------------------------------------- resonator


def test_thermal_state_frequency_shift_and_loss_against_quad_mattis_bardeen():
    """delta f/f and 1/Q_qp of the thermal state at T2 on a model at T_qp: the formulas
    applied to scipy-quad Mattis-Bardeen values at (Delta(T2), T2) and (Delta(T_qp), T_qp).
    The conductivity is accurate to ~1e-9 relative (kinetics._conductivity); the shift is a
    difference of ~1e-3, so it is good to ~1e-6 relative: rtol 1e-5."""
    t_qp, t2, alpha = 0.3, 0.45, 0.1
    w = np.array([0.02, 0.2, 1.0])
    model = kinetics.Model(t_qp=t_qp, tau_in=100.0, grid=GRID)
    ds, d2 = _thermal_dataset(model, t2)
    out = solvers.add_observables(ds, model, w, alpha=alpha)
    d_qp = float(kinetics.equilibrium_gap(t_qp, GRID))
    with threadpool_limits(1):
        for k, wk in enumerate(w):
            s1, s2 = _mb_quad(d2, t2, wk)
            _, s2_eq = _mb_quad(d_qp, t_qp, wk)
            np.testing.assert_allclose(out.sigma1.values[k], s1, rtol=1e-7)
            np.testing.assert_allclose(out.sigma2.values[k], s2, rtol=1e-8)
            np.testing.assert_allclose(
                out.frequency_shift.values[k], 0.5 * alpha * (s2 - s2_eq) / s2_eq, rtol=1e-5
            )
            np.testing.assert_allclose(out.inverse_q_qp.values[k], alpha * s1 / s2, rtol=1e-7)
    assert np.all(out.frequency_shift.values < 0)  # more quasiparticles: f_r drops


def test_low_temperature_shift_against_zmuidzinas_forms():
    """T_qp = 0.1, T2 = 0.2, hbar omega = 0.02 << T << Delta: sigma_2 ~ (pi Delta / hw)
    [1 - 2 e^{-Delta/T} e^{-x} I_0(x)], sigma_1 ~ (4 Delta / hw) e^{-Delta/T} sinh(x) K_0(x),
    x = hw / 2T (docs/physics.md section 11). Their next terms are O(T / Delta) ~ 11 % of
    the thermal parts, so rtol 0.15 on the shift and on 1/Q."""
    t_qp, t2, alpha, w = 0.1, 0.2, 0.2, 0.02
    grid = kinetics.Grid.for_temperature(t_qp)
    model = kinetics.Model(t_qp=t_qp, tau_in=100.0, grid=grid)
    ds, d2 = _thermal_dataset(model, t2)
    out = solvers.add_observables(ds, model, w, alpha=alpha)
    d1 = float(kinetics.equilibrium_gap(t_qp, grid))

    def s2(d, t):
        x = w / (2 * t)
        return math.pi * d / w * (1 - 2 * math.exp(-d / t) * sp.i0e(x))  # i0e = e^-x I_0

    def s1(d, t):
        x = w / (2 * t)
        return 4 * d / w * math.exp(-d / t) * math.sinh(x) * sp.k0(x)

    shift = 0.5 * alpha * (s2(d2, t2) - s2(d1, t_qp)) / s2(d1, t_qp)
    np.testing.assert_allclose(float(out.frequency_shift.values[0]), shift, rtol=0.15)
    np.testing.assert_allclose(float(out.inverse_q_qp.values[0]),
                               alpha * s1(d2, t2) / s2(d2, t2), rtol=0.15)


def test_equilibrium_at_the_bath_temperature_has_no_shift():
    """The model's own thermal state: delta f / f = 0 to rounding (the same numbers), and
    1/Q_qp = alpha sigma_1 / sigma_2 of that state."""
    model = kinetics.Model(t_qp=0.4, tau_in=100.0, grid=GRID)
    ds = solvers.build_dataset(model, model.thermal_state(), model.delta0, kind="steady")
    out = solvers.add_observables(ds, model, [0.05, 0.3], alpha=0.3)
    assert np.all(np.abs(out.frequency_shift.values) < 1e-15)
    np.testing.assert_allclose(out.sigma2.values, out.sigma2_equilibrium.values, rtol=1e-15)


def test_kinetic_inductance_at_zero_temperature():
    """L_s -> hbar R_sq / (pi Delta) at T -> 0, hbar omega << Delta (Delta in J): at
    T = 0.05 the thermal part is e^{-35} and the frequency correction ~ (hw / Delta)^2 / 16
    ~ 2e-8: rtol 1e-6."""
    t_c, r_sq, t = 1.19, 2.5, 0.05
    grid = kinetics.Grid.for_temperature(t)
    model = kinetics.Model(t_qp=t, tau_in=100.0, grid=grid)
    ds = solvers.build_dataset(model, model.thermal_state(), model.delta0, kind="steady")
    out = solvers.add_observables(ds, model, 1e-3, alpha=0.1, t_c_kelvin=t_c, r_sq=r_sq)
    delta_j = float(model.delta0) * K_B_J * t_c
    expected_ph = HBAR_J * r_sq / (math.pi * delta_j) * 1e12
    np.testing.assert_allclose(float(out.kinetic_inductance.values[0]), expected_ph, rtol=1e-6)
    assert out.kinetic_inductance.attrs["units"] == "pH"


# ---------------------------------------------------------------- densities and T*


@pytest.mark.parametrize("t2", [0.12, 0.3, 0.6, 0.95])
def test_effective_temperature_of_a_thermal_state(t2):
    """T* of n_F(E/T2) at its own gap recovers T2 to 1e-8 (the root uses the quadrature
    of n_qp itself, so only the root's tolerance enters)."""
    model = kinetics.Model(t_qp=0.5, tau_in=100.0, grid=GRID)
    ds, _ = _thermal_dataset(model, t2)
    out = solvers.add_observables(ds, model, 0.1, alpha=0.1)
    assert abs(float(out.t_star) - t2) < 1e-8 * t2


def test_x_qp_of_a_thermal_state_against_the_bessel_series():
    """x_qp = n_qp / (2 N_0 Delta(0)) with n_qp = 4 N_0 Int dxi n_F = 4 N_0 sum_k (-1)^(k+1)
    Delta K_1(k Delta / T): in the project's units n_qp / (2 x 1.763877). The grid's
    quadrature (N = 400) and its end at xi_max = 30 (weight e^{-30/T}) limit it: rtol 1e-6."""
    model = kinetics.Model(t_qp=0.5, tau_in=100.0, grid=GRID)
    for t2 in (0.2, 0.5, 0.8):
        ds, d2 = _thermal_dataset(model, t2)
        out = solvers.add_observables(ds, model, 0.1, alpha=0.1,
                                      material=kinetics.ALUMINIUM)
        k = np.arange(1, 400)
        series = 4 * np.sum((-1.0) ** (k + 1) * d2 * sp.kn(1, k * d2 / t2))
        np.testing.assert_allclose(float(out.x_qp), series / (2 * BCS_GAP_0), rtol=1e-6)
        # um^-3: N_0 [states / (eV um^3)] x k_B T_c [eV] x the project's n_qp
        per_um3 = series * 1.72e10 * K_B_J / EV * 1.19
        np.testing.assert_allclose(float(out.n_qp_um3), per_um3, rtol=1e-6)


def test_physical_units_of_gap_time_and_frequency():
    t_c = 1.19
    model = kinetics.Model(t_qp=0.5, tau_in=100.0, grid=GRID)
    ds = solvers.build_dataset(model, np.stack([model.thermal_state()] * 2),
                               np.full(2, float(model.delta0)), kind="evolve",
                               time=np.array([0.0, 1000.0]))
    out = solvers.add_observables(ds, model, 0.2, alpha=0.1, material=kinetics.ALUMINIUM)
    # kinetics carries k_B in eV/K to 10 digits (8.617333262e-5): rtol 1e-9
    np.testing.assert_allclose(out.gap_uev.values, float(model.delta0) * K_B_J * t_c / EV * 1e6,
                               rtol=1e-9)
    np.testing.assert_allclose(out.time_ns.values[1], 1000.0 * HBAR_J / (K_B_J * t_c) * 1e9,
                               rtol=1e-9)
    f_ghz = 0.2 * K_B_J * t_c / (2 * math.pi * HBAR_J) * 1e-9
    np.testing.assert_allclose(out.probe_frequency.values[0], f_ghz, rtol=1e-9)
    np.testing.assert_allclose(out.t_star_mk.values, 0.5 * t_c * 1e3, rtol=1e-8)


def test_materials_carry_their_constants_and_names():
    assert kinetics.material("aluminium") is kinetics.ALUMINIUM
    assert kinetics.material("nb").tau0_ns == 0.149
    assert kinetics.material("Tantalum").tau0_ph_ns == 0.0227
    with pytest.raises(kinetics.ParameterError, match="Al, Nb, Ta"):
        kinetics.material("Pb")


# ---------------------------------------------------------------- datasets


def test_evolve_outputs_carry_the_observables_at_every_saved_time():
    """A relaxing excess: every saved state's observables equal a direct evaluation of
    kinetics.complex_conductivity on that state and gap (same numbers: rtol 1e-12)."""
    grid = kinetics.Grid(n=80, xi_max=20.0)
    model = kinetics.Model(t_qp=0.5, tau_in=50.0, grid=grid)
    n0 = 1.5 * model.thermal_state()
    ds = solvers.evolve(model, np.linspace(0.0, 100.0, 6), n0=n0, progress=False)
    w = np.array([0.1, 0.4])
    out = solvers.add_observables(ds, model, w, alpha=0.2, material=kinetics.ALUMINIUM)
    assert out.frequency_shift.dims == ("time", "probe")
    assert out.x_qp.dims == ("time",) and out.t_star.dims == ("time",)
    _, s2_eq = kinetics.complex_conductivity(grid, model.thermal_state(), model.delta0, w)
    for k in range(ds.sizes["time"]):
        s1, s2 = kinetics.complex_conductivity(grid, ds.n.values[k], float(ds.gap[k]), w)
        np.testing.assert_allclose(out.sigma1.values[k], s1, rtol=1e-12)
        np.testing.assert_allclose(out.frequency_shift.values[k],
                                   0.1 * (np.asarray(s2) - s2_eq) / s2_eq, rtol=1e-10)
        np.testing.assert_allclose(out.inverse_q_qp.values[k], 0.2 * s1 / s2, rtol=1e-12)
    # the excess decays: T* falls towards T_qp and the shift towards 0 from below
    assert np.all(np.diff(out.t_star.values) < 0) and out.t_star.values[-1] > 0.5
    assert np.all(out.frequency_shift.values < 0)
    for name in ("sigma1", "frequency_shift", "x_qp", "t_star", "n_qp_um3"):
        assert out[name].attrs["units"] == solvers.VARIABLES[name].units


_STUDY = """
title = "observables"
compute = ["steady"]
[model]
t_qp = 0.4
tau_in = 100
t_c = "1.19 K"
[grid]
n = 60
xi_max = 20
[[baths]]
type = "multimode_cavity"
name = "cavity"
omega0 = "3 Delta0"
t_cav = "1 T_qp"
eta = "0.01 / tau_in"
[observables]
probe_frequencies = ["5 GHz", "0.1 Delta0"]
alpha = 0.1
material = "Al"
"""


@pytest.mark.slow  # a sweep through the CLI's study path: ~15 s quiet, ~35 s on a busy machine
def test_a_steady_sweep_carries_the_observables_and_detailed_balance_gives_no_shift():
    """Photons at T_qp: every steady state is the thermal one (detailed balance), so the
    shift vanishes to the Newton tolerance at every point of a sweep over T_qp."""
    text = _STUDY + '[sweep]\n"model.t_qp" = {values = [0.3, 0.5]}\n'
    ds = run_study(*load_config(text), progress=False)
    assert ds.frequency_shift.dims == ("model_t_qp", "probe")
    assert np.all(np.abs(ds.frequency_shift.values) < 1e-9)
    np.testing.assert_allclose(ds.t_star.values, [0.3, 0.5], rtol=1e-7)
    np.testing.assert_allclose(ds.probe_frequency.values[0], 5.0, rtol=1e-12)
    assert ds.attrs["observables.material"] == "Al"
    assert ds.frequency_shift.attrs["units"] == "1"


def test_model_gap_fixed_reaches_the_model():
    cfg, raw = load_config(_STUDY.replace("t_c = ", 'gap = "fixed"\nt_c = '))
    from cavity_eliashberg._config import build_model

    assert build_model(cfg, raw=raw).gap_mode == "fixed"
    with pytest.raises(ConfigError, match="self_consistent"):
        load_config(_STUDY.replace("t_c = ", 'gap = "frozen"\nt_c = '))


BAD = [
    ("alpha zero", ("alpha = 0.1", "alpha = 0"), ["observables.alpha", "(0, 1]"]),
    ("alpha above one", ("alpha = 0.1", "alpha = 1.5"), ["observables.alpha", "(0, 1]"]),
    ("unknown material", ('material = "Al"', 'material = "Pb"'),
     ["observables.material", "Pb", "Al, Nb, Ta"]),
    ("probe in a time unit", ('"5 GHz", ', '"5 ns", '),
     ["observables.probe_frequencies[0]", "ns", "GHz"]),
    ("negative probe", ('"5 GHz", ', '"-5 GHz", '),
     ["observables.probe_frequencies[0]", "> 0"]),
    ("no probe", ('["5 GHz", "0.1 Delta0"]', "[]"),
     ["observables.probe_frequencies", "at least one"]),
    ("repeated probe", ('"0.1 Delta0"', '"5 GHz"'), ["probe_frequencies", "twice"]),
    ("sheet resistance unit", ('material = "Al"', 'material = "Al"\nr_sq = "2 K"'),
     ["observables.r_sq", "ohm"]),
    ("missing alpha", ("alpha = 0.1\n", ""), ["observables.alpha", "missing"]),
    ("unknown key", ("alpha = 0.1", "alpha = 0.1\nalfa = 2"), ["observables.alfa", "unknown"]),
    ("perturbative only", ('compute = ["steady"]', 'compute = ["perturbative"]'),
     ["observables", "steady", "evolve"]),
]


@pytest.mark.parametrize("what,change,words", BAD, ids=[b[0] for b in BAD])
def test_bad_observables_are_refused_with_field_problem_and_allowed(what, change, words):
    text = _STUDY.replace(*change)
    assert text != _STUDY
    with pytest.raises(ConfigError) as info:
        load_config(text)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_resonator_figure_needs_observables():
    text = _STUDY.split("[observables]")[0] + '[figure]\nkind = "resonator"\n'
    with pytest.raises(ConfigError, match=r"\[observables\]"):
        load_config(text)

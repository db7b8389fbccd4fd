"""Bad input is refused before any work, with kinetics.ParameterError (or its
subclass GridError) and a message that names the parameter.
"""

import math

import numpy as np
import pytest

import kinetics
import kinetics._model

GRID = kinetics.Grid(n=48, xi_max=20.0, core=1.0)


@pytest.fixture
def no_numerics(monkeypatch):
    """Make any numerical work inside Model fail loudly: validation must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("numerical work started before the input was validated")

    for name in ("bath_bilinear", "gap", "equilibrium_gap_on", "thermal_distribution"):
        monkeypatch.setattr(kinetics._model, name, forbidden)


def phonons(**kw):
    return kinetics.Phonons(**{"tau0": 100.0, "t_ph": 0.5, **kw})


def multimode(**kw):
    return kinetics.MultimodeCavity(**{"omega0": 2.0, "t_cav": 0.5, "eta": 1e-3, **kw})


def single_mode(**kw):
    return kinetics.SingleModeCavity(
        **{"omega0": 2.0, "t_cav": 0.5, "eta": 1e-3, "kappa": 0.5, **kw}
    )


def tabulated(**kw):
    om = np.linspace(0.0, 10.0, 20)
    return kinetics.TabulatedBath(**{"omega": om, "j": 1e-3 * om**2, "t_bath": 0.5, **kw})


def drive(**kw):
    return kinetics.ClassicalDrive(**{"omega_d": 1.0, "power": 1e-3, **kw})


def model(**kw):
    return kinetics.Model(**{"t_qp": 0.5, "tau_in": 10.0, "baths": (), "grid": GRID, **kw})


# (label, constructor call, regex the message must contain)
CASES = [
    # quasiparticle temperature
    ("t_qp=0", lambda: model(t_qp=0.0), r"t_qp"),
    ("t_qp<0", lambda: model(t_qp=-0.3), r"t_qp"),
    ("t_qp=nan", lambda: model(t_qp=math.nan), r"t_qp"),
    # bath temperatures (0 is allowed: see test_zero_photon_temperature_is_the_vacuum)
    ("t_cav<0 multimode", lambda: multimode(t_cav=-0.1), r"t_cav"),
    ("t_cav<0 single-mode", lambda: single_mode(t_cav=-0.1), r"t_cav"),
    ("t_bath<0", lambda: tabulated(t_bath=-0.1), r"t_bath"),
    ("t_ph<0", lambda: phonons(t_ph=-0.1), r"t_ph"),
    # cavity and drive frequencies
    ("omega0=0 multimode", lambda: multimode(omega0=0.0), r"omega0"),
    ("omega0<0 multimode", lambda: multimode(omega0=-1.0), r"omega0"),
    ("omega0=0 single-mode", lambda: single_mode(omega0=0.0), r"omega0"),
    ("omega_d=0", lambda: drive(omega_d=0.0), r"omega_d"),
    # non-finite couplings
    ("eta=nan multimode", lambda: multimode(eta=math.nan), r"eta"),
    ("eta=inf multimode", lambda: multimode(eta=math.inf), r"eta"),
    ("eta=nan single-mode", lambda: single_mode(eta=math.nan), r"eta"),
    ("eta=inf single-mode", lambda: single_mode(eta=math.inf), r"eta"),
    ("tau0=inf phonons", lambda: phonons(tau0=math.inf), r"tau0"),
    ("power=nan drive", lambda: drive(power=math.nan), r"power"),
    ("scale=inf tabulated", lambda: tabulated(scale=math.inf), r"scale"),
    # relaxation time
    ("tau_in=0", lambda: model(tau_in=0.0), r"tau_in"),
    ("tau_in<0", lambda: model(tau_in=-5.0), r"tau_in"),
    ("tau_in=inf", lambda: model(tau_in=math.inf), r"tau_in"),
    # not a bath
    ("bath is a string", lambda: model(baths="phonons"), r"baths"),
    ("bath is an object", lambda: model(baths=(phonons(), object())), r"baths\[1\]"),
    ("bath is a profile", lambda: model(baths=kinetics.Step(1.0)), r"baths"),
    # grids
    ("Grid(n=5)", lambda: kinetics.Grid(n=5), r"Grid\.n"),
    ("Grid(n=16.5)", lambda: kinetics.Grid(n=16.5), r"Grid\.n"),
    ("Grid(xi_max=0)", lambda: kinetics.Grid(xi_max=0.0), r"xi_max"),
    ("Grid(core<0)", lambda: kinetics.Grid(core=-1.0), r"core"),
    ("grid too short", lambda: model(t_qp=0.9, grid=kinetics.Grid(n=48, xi_max=10.0)), r"xi_max"),
    # profiles
    ("Ramp t1=t0", lambda: kinetics.Ramp(0.0, 1.0, 2.0, 2.0), r"t1"),
    ("Ramp t1<t0", lambda: kinetics.Ramp(0.0, 1.0, 3.0, 2.0), r"t1"),
    ("negative Ramp t_cav", lambda: multimode(t_cav=kinetics.Ramp(0.5, -0.1, 0.0, 1.0)), r"t_cav"),
    (
        "negative Step t_ph",
        lambda: phonons(t_ph=kinetics.Step(-0.2, t_on=1.0, before=0.5)),
        r"t_ph",
    ),
    (
        "negative pulse t_bath",
        lambda: tabulated(t_bath=kinetics.GaussianPulse(peak=-1.0, t0=1.0, sigma=1.0, base=0.5)),
        r"t_bath",
    ),
    ("pulse sigma=0", lambda: kinetics.GaussianPulse(peak=1.0, t0=0.0, sigma=0.0), r"sigma"),
    # the public equilibrium gap
    ("equilibrium_gap(t<0)", lambda: kinetics.equilibrium_gap(-0.1), r"\bt\b"),
    ("equilibrium_gap(nan)", lambda: kinetics.equilibrium_gap(math.nan), r"\bt\b"),
]


@pytest.mark.parametrize("build, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused(no_numerics, build, pattern):
    with pytest.raises(kinetics.ParameterError, match=pattern):
        build()


def test_short_grid_is_a_grid_error(no_numerics):
    # xi_max = 10 < 20 * t_qp = 18: thermal occupations are not negligible at the end
    with pytest.raises(kinetics.GridError, match=r"xi_max.*t_qp"):
        model(t_qp=0.9, grid=kinetics.Grid(n=48, xi_max=10.0))
    model(t_qp=0.5, grid=kinetics.Grid(n=48, xi_max=10.0))  # 10 >= 20 * 0.5: accepted


def test_errors_are_value_errors():
    # ParameterError is also a ValueError, so generic callers can catch it
    assert issubclass(kinetics.GridError, kinetics.ParameterError)
    assert issubclass(kinetics.ParameterError, ValueError)


def test_zero_photon_temperature_is_the_vacuum():
    # allowed: the photon vacuum (omega0 = 3.5 spans > 2 cells of GRID: no resolution warning)
    cavity = multimode(t_cav=0.0, omega0=3.5)
    m = model(baths=cavity)
    n_f = m.thermal_state()
    rhs = np.asarray(m.rhs(0.0, n_f))
    assert np.all(np.isfinite(rhs))
    delta = float(m.delta0)
    # vacuum and no quasiparticles: every bracket is N(...) or n(...) with N = n = 0
    empty = np.asarray(kinetics.collision(cavity, GRID, np.zeros(GRID.n), delta))
    np.testing.assert_array_equal(empty, 0.0)
    # thermal quasiparticles in the vacuum can only emit: number and energy fall
    i_vac = kinetics.collision(cavity, GRID, n_f, delta)
    assert float(GRID.integrate(i_vac)) < 0.0
    assert float(GRID.integrate(GRID.energies(delta) * i_vac)) < 0.0


def _warnings_of(**kw):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kinetics.Model(**kw)
    return [str(w.message) for w in caught if issubclass(w.category, kinetics.PhysicsWarning)]


def test_cavity_resolution_warning_looks_where_the_kinks_are():
    # fig1a's lowest omega0 = 0.5 Delta_0 on its grid (n = 300): the cells near
    # E = omega0 + Delta are ~0.04 wide, so the kinks are resolved; only the coarse
    # cells near xi_max (0.34) are wider than omega0 / 2, where n ~ exp(-30 / 0.9)
    fine = _warnings_of(t_qp=0.9, tau_in=1e3, grid=kinetics.Grid(n=300),
                        baths=kinetics.MultimodeCavity(omega0=0.46, t_cav=0.45, eta=1e-5))
    assert not [m for m in fine if "spans fewer" in m]
    # a nearly uniform grid with cells of ~0.3 near the gap edge does not resolve 0.46
    coarse = _warnings_of(t_qp=0.9, tau_in=1e3, grid=kinetics.Grid(n=100, core=30.0),
                          baths=kinetics.MultimodeCavity(omega0=0.46, t_cav=0.45, eta=1e-5))
    assert [m for m in coarse if "spans fewer" in m]


def test_hot_bath_warning_only_where_absorption_beyond_the_grid_matters():
    # fig3's hot photons, T_cav = 2 T_qp = 1.8 at xi_max = 30: exp(-30 / 1.8) = 6e-8 is lost
    def hot(t_cav):
        return _warnings_of(t_qp=0.9, tau_in=1e3, grid=kinetics.Grid(n=200),
                            baths=kinetics.MultimodeCavity(omega0=3.0, t_cav=t_cav, eta=1e-5))

    assert not [m for m in hot(1.8) if "beyond the grid" in m]
    assert [m for m in hot(2.5) if "xi_max >= 37.5" in m]  # exp(-12) = 6e-6 lost

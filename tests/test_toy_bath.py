"""A new bath is one class, end to end through the application: a toy bath defined here,
in the test file, is read from a TOML study (``type = "toy_flat"``), converted from units,
swept, solved (perturbative and steady, by ``run_study`` and by the solvers directly),
written by the console script and shown, with no change to ``solvers/`` or
``cavity_eliashberg/``: the config schema comes from the class's declared parameters.

The toy: a flat band J(Omega) = g for omega_lo <= Omega <= omega_hi (steps at both ends),
bosons at t_bath, current coupling; g may change in time.
"""

import warnings
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import kinetics
import solvers
from cavity_eliashberg import ConfigError, build_model, load_config, main, run_study
from cavity_eliashberg._config import sweep_points


class ToyFlat(kinetics.AbstractBosonBath):
    """J(Omega) = g on [omega_lo, omega_hi], 0 outside; photons at t_bath."""

    omega_lo: float = kinetics.bath_parameter(
        "energy", "lower end of the band [T_c]", minimum=0.0, strict=True
    )
    omega_hi: float = kinetics.bath_parameter(
        "energy", "upper end of the band [T_c]", minimum=0.0, strict=True
    )
    g: float | kinetics.AbstractProfile = kinetics.bath_parameter(
        "coupling", "J inside the band [dimensionless]", minimum=0.0, time_dependent=True
    )
    t_bath: float | kinetics.AbstractProfile = kinetics.bath_parameter(
        "temperature", "photon temperature [T_c]", minimum=0.0, time_dependent=True,
        default=0.0,
    )
    type_name: ClassVar[str] = "toy_flat"
    coupling: ClassVar[str] = "current"

    def spectral_density(self, omega, t):
        return kinetics.value_at(self.g, t) * jnp.ones_like(omega)

    def support(self, t):
        return self.omega_lo, self.omega_hi

    def temperature(self, t):
        return kinetics.value_at(self.t_bath, t)

    def temperature_parameter(self):
        return self.t_bath

    def quadrature_breakpoints(self, t):
        return np.zeros(0)  # flat inside the band; its ends are the support's

    def scaled(self, factor):
        return eqx.tree_at(lambda b: b.g, self, kinetics.scale_parameter(self.g, factor))

    def check_grid(self, grid, t_qp, index):
        pass  # the steps are integrated exactly wherever they fall


# weak coupling: g tau_in = 1e-3, so that perturbation theory holds to a few percent;
# omega_hi in units of its sibling omega_lo (the sibling-unit rule of every bath)
STUDY = """
title = "toy flat band"
compute = ["perturbative", "steady"]
[model]
t_qp = 0.9
tau_in = 1000
[grid]
n = 96
[[baths]]
type = "toy_flat"
name = "toy"
omega_lo = "0.5 Delta0"
omega_hi = "6 omega_lo"
g = "1e-3 / tau_in"
t_bath = "0.5 T_qp"
[output]
name = "toy"
[figure]
kind = "none"
"""
SWEEP = '[sweep]\n"toy.t_bath" = { values = [0.5, 1.0], unit = "T_qp" }\n'


def _quiet(f, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        return f(*args, **kwargs)


def test_the_toml_table_comes_from_the_class():
    assert kinetics.bath_types()["toy_flat"] is ToyFlat
    cfg, raw = load_config(STUDY)
    model = build_model(cfg, raw=raw)
    (bath,) = model.baths
    assert isinstance(bath, ToyFlat)
    delta0 = float(model.delta0)
    assert float(bath.omega_lo) == pytest.approx(0.5 * delta0, rel=1e-12)
    assert float(bath.omega_hi) == pytest.approx(3.0 * delta0, rel=1e-12)  # 6 omega_lo
    assert float(bath.g) == pytest.approx(1e-6, rel=1e-12)
    assert float(bath.t_bath) == pytest.approx(0.45, rel=1e-12)
    # a default from the class: t_bath = 0 when omitted
    cold, raw = load_config(STUDY.replace('t_bath = "0.5 T_qp"\n', ""))
    assert float(build_model(cold, raw=raw).baths[0].t_bath) == 0.0


@pytest.mark.parametrize(
    "change, words",
    [
        (('g = "1e-3 / tau_in"', 'gg = 1e-6'), ["baths.0.gg", "unknown key", "omega_lo", "t_bath"]),
        (('g = "1e-3 / tau_in"', ""), ["baths.0.g", "missing", "J inside the band"]),
        (('omega_lo = "0.5 Delta0"', 'omega_lo = { profile = "step", after = 1.0 }'),
         ["baths.0.omega_lo", "profile"]),
        (('t_bath = "0.5 T_qp"', 't_bath = "0.5 T_qp"\ndynamic = { tau_b = 10 }'),
         ["baths.0.dynamic", "dynamic-capable"]),
        (('g = "1e-3 / tau_in"', "g = -1e-6"), ["baths.toy", "g", ">= 0"]),
        (('omega_lo = "0.5 Delta0"', 'omega_lo = "0.5 ns"'), ["omega_lo", "ns", "allowed"]),
        (("", SWEEP.replace("toy.t_bath", "toy.kappa")), ["toy.kappa", "allowed", "omega_lo"]),
    ],
)
def test_mistakes_in_a_toy_table_name_the_key_and_what_is_allowed(change, words):
    old, new = change
    text = STUDY + new if old == "" else STUDY.replace(old, new)
    with pytest.raises(ConfigError) as info:
        load_config(text)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_a_profile_of_time_on_a_time_dependent_parameter():
    text = STUDY.replace('g = "1e-3 / tau_in"', 'g = { profile = "step", after = 1e-6, t_on = 5 }')
    cfg, raw = load_config(text)
    g = build_model(cfg, raw=raw).baths[0].g
    assert isinstance(g, kinetics.Step) and g.jump_times() == (5.0,)


@pytest.fixture(scope="module")
def swept():
    """The two-point sweep over the toy's temperature, through run_study."""
    cfg, raw = load_config(STUDY + SWEEP)
    return cfg, raw, _quiet(run_study, cfg, raw, progress=False)


def test_a_two_point_sweep_succeeds_with_detailed_balance_and_weak_coupling(swept):
    _, _, ds = swept
    assert ds.sizes["toy_t_bath"] == 2
    assert list(ds.steady_status.values) == ["success", "success"]
    exact = ds.relative_gap_change_exact.values
    nonlinear = ds.relative_gap_change_nonlinear.values
    assert np.all(np.isfinite(exact)) and np.all(np.isfinite(nonlinear))
    # T_bath = T_qp: every term of I[n_F] vanishes by detailed balance (rounding only;
    # the steady state is the thermal state to Newton's tolerance 1e-11)
    assert abs(exact[1]) < 1e-13
    assert abs(nonlinear[1]) < 1e-9
    # cold photons on a band reaching below 2 Delta_0 change the gap measurably ...
    assert abs(exact[0]) > 1e-6
    # ... and at g tau_in = 1e-3 perturbation theory and the nonlinear steady state agree
    # to a few percent (the departure is second order in g)
    assert nonlinear[0] == pytest.approx(exact[0], rel=0.03)


def test_the_solvers_take_the_configured_model_directly(swept):
    cfg, raw, ds = swept
    model = _quiet(build_model, cfg, sweep_points(cfg)[0], raw=raw)
    pert = _quiet(solvers.perturbative, model)
    steady = _quiet(solvers.steady_state, model)
    a = float(ds.relative_gap_change_exact.isel(toy_t_bath=0))
    b = float(ds.relative_gap_change_nonlinear.isel(toy_t_bath=0))
    # the same model through the single-point entry points gives the study's numbers
    assert float(pert.relative_gap_change) == pytest.approx(a, rel=1e-9)
    assert float(steady.relative_gap_change) == pytest.approx(b, rel=1e-6)


def test_the_console_script_runs_and_shows_a_toy_study(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it
    path = tmp_path / "toy.toml"
    path.write_text(STUDY)
    out = tmp_path / "out"
    assert main(["run", str(path), "--no-progress", "--output", str(out)]) == 0
    nc = out / "toy.nc"
    with xr.open_dataset(nc) as ds:
        exact = float(ds.relative_gap_change_exact)
        assert exact != 0.0 and str(ds.steady_status.values) == "success"
        assert float(ds.relative_gap_change_nonlinear) == pytest.approx(exact, rel=0.03)
    capsys.readouterr()
    assert main(["show", str(nc)]) == 0
    shown = capsys.readouterr().out
    assert "ToyFlat" in shown or "toy_flat" in shown
    assert "relative_gap_change_exact" in shown and "relative_gap_change_nonlinear" in shown

"""What the numerics tell a user before and after the work (issue: a physicist's first
hour): perturbation theory that has failed is said, a solve too large for the machine is
refused before any work, and the progress bar says what it counts."""

from __future__ import annotations

import time

import numpy as np
import pytest

import kinetics
import solvers


def _cavity(eta, n=80):
    return kinetics.Model(
        t_qp=0.9, tau_in=1000.0, grid=kinetics.Grid(n=n),
        baths=[kinetics.MultimodeCavity(omega0=3.0, t_cav=0.45, eta=eta)],
    )


def test_a_coupling_without_its_unit_is_flagged_as_non_perturbative():
    # eta = 0.0155 meant as eta tau_in (the paper's Fig. 1) but read as internal units:
    # eta tau_in = 15.5, delta Delta / Delta_0 ~ 20: stored and shown as a failure of
    # perturbation theory, with the coupling in the paper's units
    # (N = 120 as in the next test: the two share their compiled programs)
    with pytest.warns(kinetics.PhysicsWarning, match="perturbation theory has failed"):
        ds = solvers.perturbative(_cavity(0.0155, n=120))
    assert abs(float(ds.relative_gap_change)) > 1.0
    assert "eta tau_in = 15.5" in ds.attrs["warnings"]
    with pytest.warns(kinetics.PhysicsWarning, match="differs from perturbation theory"):
        steady = solvers.steady_state(_cavity(0.0155, n=120))
    assert "perturbation theory has failed" in steady.attrs["warnings"]


def test_the_paper_coupling_gives_no_warning():
    eta = 0.0155 / 1000.0  # eta tau_in = 0.0155: |delta Delta / Delta_0| ~ 1e-3
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", kinetics.PhysicsWarning)
        model = _cavity(eta, n=120)
        ds = solvers.perturbative(model)
        steady = solvers.steady_state(model)
    assert "warnings" not in ds.attrs and "warnings" not in steady.attrs
    assert abs(float(ds.relative_gap_change)) < 0.05


def test_warning_thresholds_are_the_documented_ones():
    model = _cavity(1e-5)
    assert solvers.perturbation_warnings(model, 0.049) == []
    assert len(solvers.perturbation_warnings(model, 0.051)) == 1
    assert solvers.perturbation_warnings(model, 0.01, 0.0109) == []  # 9 % apart
    assert len(solvers.perturbation_warnings(model, 0.01, 0.0111)) == 1  # 11 % apart
    # near a sign change both values are ~0: measured against half the curve's largest
    curve, nonlinear = np.array([0.01, 1e-4, -0.01]), np.array([0.0105, 6e-4, -0.0105])
    assert solvers.perturbation_warnings(model, curve, nonlinear) == []
    assert len(solvers.perturbation_warnings(model, curve, nonlinear + [0, 6e-4, 0])) == 1


def test_a_grid_too_large_for_the_machine_is_refused_before_any_work():
    # N = 40000: ~140 GiB for Newton, ~60 GiB for bdf, more than any 24 GiB machine has
    model = _cavity(1e-5, n=40000)
    clock = time.perf_counter()
    with pytest.raises(solvers.ResourceError, match="N = 40000 needs about 1"):
        solvers.steady_state(model)
    with pytest.raises(solvers.ResourceError, match="max_memory_gb"):
        solvers.evolve(model, [0.0, 1.0], solver="bdf")
    with pytest.raises(solvers.ResourceError):
        solvers.sweep(lambda eta: _cavity(eta, n=40000), {"eta": [1e-5, 2e-5]}, progress=False)
    assert time.perf_counter() - clock < 20.0  # refused, not started
    # an explicit limit overrides the machine's memory (both ways)
    small = _cavity(1e-5, n=400)
    with pytest.raises(solvers.ResourceError, match="allowed"):
        solvers.steady_state(small, max_memory_gb=1e-3)
    # the estimate is the documented N^2 count: 11 arrays for Newton
    assert solvers.memory_estimate(small, "steady") == 11 * 8 * 400**2


def test_the_progress_bar_has_a_label_and_no_time_left_guess(capfd):
    model = _cavity(1e-5, n=40)
    solvers.evolve(model, np.linspace(0.0, 100.0, 3), solver="tsit5", progress=True)
    err = capfd.readouterr().err
    assert "evolve (tsit5)" in err and "of the time span" in err
    assert "<" not in err  # tqdm's time-left field ("00:01<00:02") is not shown

"""Solvers: nonlinear -> perturbative limit, fixed points, transients, cross-checks, I/O.

All tests share one grid and one model structure (a multimode cavity at the
paper's T_qp = 0.9, omega_0 = 3 Delta_0, T_cav / T_qp = 0.5), so each solver is
compiled once for the whole module: only parameter values change between tests. The
solvers' options that are compiled in (Newton's tol; tsit5's rtol, atol and the number
of save times) are shared too: every Newton solve runs at TOL = 1e-14, the tightest any
test needs, and the tsit5 runs of one model structure at rtol 1e-10, atol 1e-14 with
41 save times.
"""

import warnings

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

import kinetics
import solvers
from kinetics._perturbative import gap_relaxation_time

T_QP = 0.9
TAU_IN = 1000.0
GRID = kinetics.Grid(n=100, xi_max=30.0, core=2.0)
DELTA0 = kinetics.equilibrium_gap(T_QP, GRID)
TOL = 1e-14  # Newton's tolerance (max |dn/dt| tau_in) for every steady state here

# the model as an argument (its parameters are arrays): compiled once for the module,
# where a lambda closing over one model compiled again for each (~tens of s each)
_rhs = eqx.filter_jit(lambda m, n: m.rhs(0.0, n))
_jacobian = eqx.filter_jit(lambda m, n: m.jacobian(0.0, n))


def model(coupling, t_cav_ratio=0.5):
    """coupling = eta * tau_in (the paper's Fig. 1 is 0.0155)."""
    bath = kinetics.MultimodeCavity(
        omega0=3.0 * DELTA0, t_cav=t_cav_ratio * T_QP, eta=coupling / TAU_IN
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        return kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=[bath], grid=GRID)


def _slope(x, y):
    return np.polyfit(np.log(x), np.log(y), 1)[0]


def test_nonlinear_steady_state_tends_to_perturbation_theory_linearly():
    couplings = np.array([1e-2, 1e-3, 1e-4])
    err_n, err_gap = [], []
    for c in couplings:
        st = solvers.steady_state(model(c), tol=TOL)
        pt = solvers.perturbative(model(c))
        # physics.md section 5: delta n of the nonlinear state against n_F at its own gap
        dn_nl = st.delta_n.values
        dn_pt = pt.delta_n_first_order.values
        err_n.append(np.max(np.abs(dn_nl - dn_pt)) / np.max(np.abs(dn_pt)))
        rel_nl = float(st.relative_gap_change)
        rel_pt = float(pt.relative_gap_change)  # exact linear response
        err_gap.append(abs(rel_nl - rel_pt) / abs(rel_pt))
    # The first neglected order is quadratic in the coupling, so the relative
    # difference is linear in it: slope 1 on log axes. Over two decades the next
    # order shifts the fitted slope by O(coupling) ~ 1e-2; 0.05 leaves room for that.
    assert _slope(couplings, err_n) == pytest.approx(1.0, abs=0.05)
    assert _slope(couplings, err_gap) == pytest.approx(1.0, abs=0.05)
    # and the difference is small where perturbation theory should hold
    assert err_n[-1] < 1e-3 and err_gap[-1] < 1e-3


def test_equilibrium_is_a_fixed_point():
    m = model(0.0155, t_cav_ratio=1.0)
    nf = np.asarray(m.thermal_state())
    ts = np.linspace(0.0, 5 * TAU_IN, 41)
    ev = solvers.evolve(m, ts, solver="tsit5", rtol=1e-10, atol=1e-14, progress=False)
    # detailed balance holds to rounding, so the state may drift only by rounding
    # accumulated over the steps (<< 1e-12)
    assert np.max(np.abs(ev.n.values - nf)) < 1e-12
    assert np.max(np.abs(ev.gap.values - DELTA0)) < 1e-12
    st = solvers.steady_state(m, start="thermal", tol=TOL)
    assert np.max(np.abs(st.n.values - nf)) < 1e-14
    assert st.attrs["solver.residual"] < 1e-11


@pytest.mark.parametrize("coupling", [1e-3, 0.3])
def test_switch_on_transient_relaxes_at_the_gap_mode_rate(coupling):
    m = model(coupling)
    st = solvers.steady_state(m, tol=TOL)
    ts = np.linspace(0.0, 20 * TAU_IN, 41)
    ev = solvers.evolve(m, ts, solver="tsit5", rtol=1e-10, atol=1e-14, progress=False)
    dg = np.abs(ev.gap.values - float(st.gap))
    late = slice(-12, None)
    rate = -np.polyfit(ts[late], np.log(dg[late]), 1)[0]
    jac = np.asarray(_jacobian(m, jnp.asarray(st.n.values)))
    slowest = np.min(-np.linalg.eigvals(jac).real)
    # the late-time decay is governed by the slowest eigenvalue of the Jacobian;
    # the fit over 6 tau_in of clean exponential (remaining amplitude >> rtol) agrees
    # to ~1e-4, 1e-3 leaves a margin
    assert rate == pytest.approx(slowest, rel=1e-3)
    if coupling < 1e-2:
        # weak coupling: the gap mode, 1/tau_gap of physics.md section 4 (about
        # 1/(3 tau_in) at T_qp = 0.9, not 1/tau_in); the cavity shifts the rate by
        # about eta * omega_0 ~ coupling * 3 Delta_0 / tau_in, i.e. ~1% of 1/tau_gap
        tau_gap = float(gap_relaxation_time(m))
        assert 2.5 * TAU_IN < tau_gap < 3.5 * TAU_IN
        assert rate == pytest.approx(1.0 / tau_gap, rel=1e-2)
    # ... and the evolution ends at the Newton steady state (amplitude left after
    # 20 tau_in at rate >= 0.33 / tau_in: < 2e-3 of the initial ~1e-3 deviation)
    assert np.max(np.abs(ev.n.values[-1] - st.n.values)) < 5e-6


def test_evolution_agrees_with_scipy_bdf():
    from scipy.integrate import solve_ivp
    from threadpoolctl import threadpool_limits

    m = model(0.3)
    def rhs(n):
        return _rhs(m, n)

    def jac(n):
        return _jacobian(m, n)
    n0 = np.asarray(m.thermal_state())
    ts = np.array([0.0, 500.0, 2000.0, 5000.0])
    ev = solvers.evolve(m, ts, solver="kvaerno5", rtol=1e-9, atol=1e-13, progress=False)
    # OpenBLAS threads fight XLA's on 2 cores: scipy's LU runs single-threaded
    with threadpool_limits(limits=1):
        ref = solve_ivp(
            lambda t, y: np.asarray(rhs(jnp.asarray(y))),
            (ts[0], ts[-1]),
            n0,
            method="BDF",
            t_eval=ts,
            jac=lambda t, y: np.asarray(jac(jnp.asarray(y))),
            rtol=1e-9,
            atol=1e-13,
        )
    assert ref.success
    scale = np.max(np.abs(ref.y.T - n0))  # size of the change being integrated
    # Both control the local error at rtol 1e-9 (n <= 0.3); BDF's global error over
    # its ~10^3 steps can reach ~1e3 x rtol x n ~ 3e-7, i.e. ~5e-6 of the change
    # integrated here. A wrong right-hand side would differ at O(1) of the change.
    assert np.max(np.abs(ev.n.values - ref.y.T)) < 1e-5 * scale


def test_auto_solver_choice_and_partial_results_on_failure():
    m = model(0.0155)
    assert solvers.choose_solver(m, m.thermal_state(), 10 * TAU_IN) == "tsit5"
    # a run made to fail keeps what it computed and says why
    ts = np.linspace(0.0, 10 * TAU_IN, 11)
    ds = solvers.evolve(m, ts, solver="tsit5", max_steps=5, throw=False, progress=False)
    assert ds.attrs["solver.status"] == "failed"
    assert "steps" in ds.attrs["solver.message"].lower()
    assert np.all(np.isfinite(ds.n.values[0]))
    with pytest.raises(solvers.SolverError) as info:
        solvers.evolve(m, ts, solver="tsit5", max_steps=5, progress=False)
    assert isinstance(info.value.partial, xr.Dataset)


def test_bad_solver_arguments_are_refused():
    m = model(0.0155)
    with pytest.raises(kinetics.ParameterError, match="solver"):
        solvers.evolve(m, [0.0, 1.0], solver="rk4-typo")
    with pytest.raises(kinetics.ParameterError, match="t_save"):
        solvers.evolve(m, [1.0, 0.0])
    with pytest.raises(kinetics.ParameterError, match="n0"):
        solvers.evolve(m, [0.0, 1.0], n0=np.zeros(7))


def test_netcdf_round_trip(tmp_path):
    m = model(0.0155)
    for ds in (solvers.perturbative(m), solvers.steady_state(m, tol=TOL)):
        path = tmp_path / f"{ds.attrs['kind']}.nc"
        solvers.save(ds, path)
        back = solvers.load(path)
        assert back.identical(ds)
        for name in ("n", "delta_n", "gap", "relative_gap_change", "n_qp", "energy"):
            assert "units" in back[name].attrs
        with pytest.raises(FileExistsError):
            solvers.save(ds, path)
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_time_dependent_switch_on():
    """A coupling switched on at t_on: nothing happens before, relaxation after."""
    t_on = 2000.0
    eta = kinetics.Step(after=0.3 / TAU_IN, t_on=t_on, before=0.0)
    bath = kinetics.MultimodeCavity(omega0=3.0 * DELTA0, t_cav=0.5 * T_QP, eta=eta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        m = kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=[bath], grid=GRID)
    assert m.jump_times() == (t_on,)
    ts = np.array([0.0, 1000.0, t_on, t_on + 100.0, t_on + 30 * TAU_IN])
    ev = solvers.evolve(m, ts, solver="tsit5", progress=False)
    nf = np.asarray(m.thermal_state())
    # before the switch the bath is off: the thermal state stays put (to rounding)
    assert np.max(np.abs(ev.n.values[:3] - nf)) < 1e-12
    # after it, the gap moves and reaches the steady state of the switched-on model
    steady = solvers.steady_state(model(0.3), tol=TOL)
    assert abs(ev.gap.values[3] - DELTA0) > 1e-6
    # 30 tau_in at rate >= 0.6 / tau_in (the strong-coupling gap mode): e^-18 left
    assert ev.gap.values[-1] == pytest.approx(float(steady.gap), rel=1e-8)


def test_integrating_to_steady_state_agrees_with_newton():
    m = model(0.3)
    newton = solvers.steady_state(m, tol=TOL)
    integrated = solvers.steady_state(m, method="integrate", solver="kvaerno5", tol=1e-11)
    assert integrated.attrs["solver.residual"] <= 1e-11
    # a relative residual 1e-11 (each occupation's relative rate times its own relaxation
    # time) over the slowest mode, ~3 times slower than the fastest of the gap edge,
    # leaves every occupation within ~1e-10 relative of the fixed point
    rel = np.abs(integrated.n.values / newton.n.values - 1.0)
    assert np.max(rel) < 1e-9


def test_process_rates_in_datasets():
    m = model(0.3)
    st = solvers.steady_state(m, tol=TOL)
    rates = st.process_rate.sel(bath="0:MultimodeCavity")
    assert st.process_rate.attrs["units"]
    # cold photons (T_cav < T_qp): recombination into the cavity beats pair breaking
    assert float(rates.sel(process="recombination")) > float(rates.sel(process="pair_breaking")) > 0
    # in the steady state the quasiparticle number is stationary: the cavity's net pair
    # loss is balanced by the relaxation term, 4 integral dxi (n - n_F(E(Delta))) / tau_in
    net_cavity = float(rates.sel(process="pair_breaking") - rates.sel(process="recombination"))
    relax = 4.0 * float(m.grid.integrate(jnp.asarray(st.delta_n.values))) / TAU_IN
    # the scattering part conserves number to discretization accuracy (< 1e-4 of
    # its gross rate at this grid, tests/test_collision.py), the Newton residual is 1e-14
    scattering = float(rates.sel(process="scattering"))
    assert net_cavity == pytest.approx(relax, rel=1e-3, abs=1e-4 * scattering)

"""The BDF integrator of solvers._bdf (Jacobian and LU kept across steps).

Independent references: scipy's BDF (the same algorithm, Shampine & Reichelt's NDF,
written for numpy: ours must take the same steps and make the same number of
function, Jacobian and LU evaluations), exact solutions of linear stiff systems with
and without a jump of the source, and the kinetic equation itself (evolve with
solver="bdf" against scipy's BDF and against the Newton steady state).
"""

import functools
import warnings

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate._ivp.bdf import BDF as ScipyBDF
from threadpoolctl import threadpool_limits

import kinetics
import solvers
from benchmarks.run import regime_b
from solvers._bdf import bdf_solve


def robertson(t, y):
    return jnp.stack(
        [
            -0.04 * y[0] + 1e4 * y[1] * y[2],
            0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
            3e7 * y[1] ** 2,
        ]
    )


robertson_jac = jax.jacfwd(robertson, argnums=1)


@functools.partial(jax.jit, static_argnames="reuse")
def _solve_robertson(ts, y0, reuse=True):
    return bdf_solve(
        robertson,
        robertson_jac,
        ts[0],
        ts[-1],
        y0,
        ts,
        rtol=1e-6,
        atol=1e-10,
        max_steps=10_000,
        reuse=reuse,
    )


def test_same_steps_and_counts_as_scipy_bdf_on_robertson():
    """Robertson's chemical kinetics (stiffness ratio ~1e11 over t in [0, 1e5]): a port
    of the same method must reproduce scipy's step sequence, so that every state at
    scipy's step times agrees to rounding and all counters are equal."""
    y0 = np.array([1.0, 0.0, 0.0])
    with threadpool_limits(limits=1):
        ref = ScipyBDF(
            lambda t, y: np.asarray(robertson(t, jnp.asarray(y))),
            0.0,
            y0,
            1e5,
            rtol=1e-6,
            atol=1e-10,
            jac=lambda t, y: np.asarray(robertson_jac(t, jnp.asarray(y))),
        )
        times, states = [0.0], [y0]
        while ref.status == "running":
            ref.step()
            times.append(ref.t)
            states.append(ref.y.copy())
    assert ref.status == "finished"
    ts, states = np.array(times), np.array(states)
    sol = _solve_robertson(jnp.asarray(ts), jnp.asarray(y0), reuse=False)
    assert sol.result == diffrax.RESULTS.successful
    # our save points are scipy's step ends: the interpolant there is the step's own
    # y_new, so with the same step sequence the states agree to rounding (1e-9 of the
    # error weight atol + rtol |y|, which is 1e-4 of the local error allowed)
    weight = 1e-10 + 1e-6 * np.abs(states)
    assert np.max(np.abs(np.asarray(sol.ys) - states) / weight) < 1e-3
    stats = {k: int(v) for k, v in sol.stats.items()}
    assert stats["num_accepted_steps"] == len(ts) - 1
    assert stats["num_rhs"] == ref.nfev
    assert stats["num_jacobian"] == ref.njev
    assert stats["num_lu"] == ref.nlu
    # the point of the method: Jacobians and LUs are reused over many steps
    assert stats["num_jacobian"] < 0.05 * stats["num_accepted_steps"]
    assert stats["num_lu"] < 0.3 * stats["num_accepted_steps"]


def test_cvode_economies_keep_the_answer_and_save_factorizations():
    """reuse=True (the default) keeps LUs across step-size changes within 30% and
    changes the step only when it can grow 1.5x: the same answer as scipy's policy to
    the tolerance, with fewer LU factorizations and right-hand sides."""
    ts = jnp.asarray(np.r_[0.0, np.geomspace(1e-5, 1e5, 20)])
    y0 = jnp.array([1.0, 0.0, 0.0])
    strict, reused = _solve_robertson(ts, y0, reuse=False), _solve_robertson(ts, y0)
    assert reused.result == diffrax.RESULTS.successful
    a, b = np.asarray(strict.ys), np.asarray(reused.ys)
    # each is within its tolerance of the truth: a few x (atol + rtol |y|) apart
    assert np.max(np.abs(a - b) / (1e-10 + 1e-6 * np.abs(a))) < 50
    assert int(reused.stats["num_lu"]) < 0.8 * int(strict.stats["num_lu"])  # measured 49 vs 68
    assert int(reused.stats["num_rhs"]) < int(strict.stats["num_rhs"])


def _linear_problem(n=12, jump=None):
    """y' = A (y - g(t)) + g'(t), A symmetric negative definite with eigenvalues from
    -1 to -1e4; g(t) = sin(t) (1, ..., 1) + (t >= jump) c: exact solution
    y = g + expm(A (t - s)) (y(s) - g(s)) on each stretch s without a jump."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = -np.geomspace(1.0, 1e4, n)
    a = (q * lam) @ q.T
    c = rng.standard_normal(n)

    def g(t):
        step = 0.0 if jump is None else jnp.where(t >= jump, 1.0, 0.0)
        return jnp.sin(t) * jnp.ones(n) + step * c

    def fun(t, y):
        return jnp.asarray(a) @ (y - g(t)) + jnp.cos(t) * jnp.ones(n)

    def exact(t, y0):
        def prop(s, t, y):  # from s to t without a jump in between
            e = (q * np.exp(lam * (t - s))) @ q.T
            return np.asarray(g(t)) + e @ (y - np.asarray(g(s)))

        if jump is None or t < jump:
            return prop(0.0, t, y0)
        y_j = prop(0.0, np.nextafter(jump, -np.inf), y0)  # g jumps at `jump`, y does not
        z_j = y_j - np.asarray(g(jump))  # y - g just after the jump
        return np.asarray(g(t)) + (q * np.exp(lam * (t - jump))) @ q.T @ z_j

    return fun, jax.jacfwd(fun, argnums=1), exact, np.zeros(n)


@pytest.mark.parametrize("rtol", [1e-5, 1e-8])
def test_linear_stiff_system_matches_the_exact_solution(rtol):
    fun, jac, exact, y0 = _linear_problem()
    ts = np.linspace(0.0, 10.0, 11)
    sol = jax.jit(
        lambda y0: bdf_solve(
            fun, jac, ts[0], ts[-1], y0, ts, rtol=rtol, atol=rtol * 1e-3, max_steps=100_000
        )
    )(jnp.asarray(y0))
    assert sol.result == diffrax.RESULTS.successful
    err = max(np.max(np.abs(np.asarray(sol.ys)[k] - exact(t, y0))) for k, t in enumerate(ts))
    # local error per step <= rtol |y| (|y| ~ 1); the global error of a stable stiff
    # integration stays within a modest multiple of it (measured 0.3-3 x rtol)
    assert err < 30 * rtol
    # the Jacobian is constant: it is re-evaluated only when a Newton iteration with a
    # stale LU (the step size changed) is slow to converge, a few times per run
    assert int(sol.stats["num_jacobian"]) < 0.1 * int(sol.stats["num_accepted_steps"])


def test_a_jump_stops_and_restarts_the_integration():
    jump = 2.5
    fun, jac, exact, y0 = _linear_problem(jump=jump)
    ts = np.array([0.0, 1.0, jump, 3.0, 6.0])  # one save point exactly at the jump

    def run(jumps):
        return jax.jit(
            lambda y0: bdf_solve(
                fun,
                jac,
                ts[0],
                ts[-1],
                y0,
                ts,
                rtol=1e-8,
                atol=1e-11,
                max_steps=100_000,
                jumps=jumps,
            )
        )(jnp.asarray(y0))

    sol = run((jump,))
    assert sol.result == diffrax.RESULTS.successful
    err = max(np.max(np.abs(np.asarray(sol.ys)[k] - exact(t, y0))) for k, t in enumerate(ts))
    assert err < 3e-7  # as without a jump (30 x rtol)
    # told nothing, the solver still gets there, but it has to find the jump by
    # step rejections: more attempts for the same answer
    blind = run(())
    assert int(blind.stats["num_rejected_steps"]) > int(sol.stats["num_rejected_steps"])


def test_max_steps_leaves_the_states_so_far_and_says_why():
    fun, jac, _, y0 = _linear_problem()
    ts = np.linspace(0.0, 10.0, 11)
    sol = bdf_solve(
        fun, jac, ts[0], ts[-1], jnp.asarray(y0), ts, rtol=1e-8, atol=1e-11, max_steps=20
    )
    assert sol.result == diffrax.RESULTS.max_steps_reached
    ys = np.asarray(sol.ys)
    assert np.all(np.isfinite(ys[0])) and np.all(np.isnan(ys[-1]))


def test_first_step_survives_a_trial_step_into_an_infinite_rhs():
    """The first-step guess h0 = 0.01 |y0| / |f0| (Hairer-Norsett-Wanner) takes |y0| as
    y's scale. For log-odds variables it is not: a driven film at 0.25 T_c gave h0 = 19,
    the trial Euler step left the domain (n = 1, rhs infinite) and the step came out 0,
    a run of 0 accepted steps. Here y0 = 1000 with weights 1e-8 and a rhs finite only
    below 1000.5: h0 = 40 reaches 1010. The solution is y = 1000.25 - 0.25 e^{-t}."""

    def fun(t, y):
        return jnp.where(y < 1000.5, 1000.25 - y, jnp.inf)

    def jac(t, y):
        return -jnp.eye(1)

    ts = jnp.array([0.0, 1.0, 5.0])
    sol = bdf_solve(fun, jac, ts[0], ts[-1], jnp.array([1000.0]), ts, rtol=1e-8, atol=1e-8,
                    max_steps=500, error_scale=lambda y: jnp.full_like(y, 1e-8))
    assert sol.result == diffrax.RESULTS.successful
    exact = 1000.25 - 0.25 * np.exp(-np.asarray(ts))
    # local errors 1e-8 (absolute) over ~100 steps of a contracting problem
    assert np.allclose(np.asarray(sol.ys)[:, 0], exact, rtol=0.0, atol=1e-6)


def test_a_step_size_of_zero_at_t_zero_stops_the_run():
    """At t = 0 the float spacing is a denormal, which XLA flushes to 0: the 'step too
    small' test must still stop a run whose step is 0 there, not spin to max_steps.
    A rhs that is never finite after t = 0 drives the step to 0."""

    def fun(t, y):
        return jnp.where(t > 0.0, jnp.nan, -y)

    sol = bdf_solve(fun, lambda t, y: -jnp.eye(1), 0.0, 1.0, jnp.array([1.0]),
                    jnp.array([0.0, 1.0]), rtol=1e-6, atol=1e-9, max_steps=5000)
    assert sol.result == diffrax.RESULTS.dt_min_reached
    assert int(sol.stats["num_steps"]) < 5000


def test_vmap_over_initial_states():
    """Sweeps batch solves with jax.vmap (on accelerators): the loop must batch."""
    y0s = jnp.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5]])
    # the save times of test_cvode_economies_...: the single runs below are its compiled
    # program (a program per shape of ts; ~5-10 s of XLA compile saved)
    ts = jnp.asarray(np.r_[0.0, np.geomspace(1e-5, 1e5, 20)])
    batched = jax.vmap(lambda y0: _solve_robertson(ts, y0).ys)(y0s)
    for k in range(2):
        one = _solve_robertson(ts, y0s[k]).ys
        assert np.allclose(np.asarray(batched[k]), np.asarray(one), rtol=1e-12, atol=1e-18)


def _cavity_model(n=60):
    grid = kinetics.Grid(n=n, xi_max=30.0, core=2.0)
    d0 = kinetics.equilibrium_gap(0.9, grid)
    eta = kinetics.Step(after=0.3 / 1000.0, t_on=0.0)  # switched on at t = 0
    bath = kinetics.MultimodeCavity(omega0=3.0 * d0, t_cav=0.45, eta=eta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        return kinetics.Model(t_qp=0.9, tau_in=1000.0, baths=[bath], grid=grid)


def test_evolve_bdf_agrees_with_an_explicit_solver_through_a_switch_on():
    """The kinetic equation with a cavity switched on at t = 0 (a jump inside the run):
    bdf and diffrax's Tsit5, at the same tolerances, agree to the tolerance."""
    m = _cavity_model()
    ts = np.linspace(-500.0, 5000.0, 12)
    kw = dict(rtol=1e-9, atol=1e-13, progress=False)
    ours = solvers.evolve(m, ts, solver="bdf", **kw)
    ref = solvers.evolve(m, ts, solver="tsit5", **kw)
    assert ours.attrs["solver.status"] == "success"
    n0 = m.thermal_state()
    assert np.max(np.abs(ours.n.values[:2] - np.asarray(n0))) < 1e-14  # nothing before
    change = np.max(np.abs(ref.n.values - np.asarray(n0)))
    # both keep the local error below rtol |n| (n <= 0.3); their global errors over
    # ~100 steps stay within ~1e-6 of the change integrated (measured 3e-8)
    assert np.max(np.abs(ours.n.values - ref.n.values)) < 1e-6 * change
    for key in ("num_jacobian", "num_lu", "num_rhs"):
        assert ours.attrs[f"solver.{key}"] > 0


def test_evolve_bdf_failure_keeps_the_partial_result():
    m = _cavity_model()
    ts = np.linspace(0.0, 5000.0, 6)
    with pytest.raises(solvers.SolverError) as err:
        solvers.evolve(m, ts, solver="bdf", max_steps=3, progress=False)
    assert "maximum number of solver steps" in str(err.value)
    part = err.value.partial
    assert part.attrs["solver.status"] == "failed"
    assert np.all(np.isfinite(part.n.values[0]))


def _driven_phonon_model(power):
    """Regime (b) of the benchmarks at N = 64 (module level: sweeps pickle it): the model,
    grid and save times of tests/test_solver_choice.py, so that the single runs below and
    that module's evolve are one compiled program (JAX's compilation cache of the test
    session, tests/conftest.py, compiles it once: ~45 s)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        return regime_b(64, power=power)[0]


def test_batched_sweep_with_bdf_equals_single_runs():
    """Under vmap (how sweeps batch on accelerators) every lax.cond of the loop runs both
    branches; the answer must not change: each batched point equals evolve's."""
    ts = regime_b(64)[1]  # 0 and 1e3 .. 1e7
    ds = solvers.sweep(
        _driven_phonon_model,
        {"power": [1e-8, 3e-8]},
        kind="evolve",
        options={"t_save": ts, "solver": "bdf"},
        batch="vmap",
        progress=False,
        units={"power": ("drive power", "1")},
    )
    assert list(ds.status.values) == ["success", "success"]
    for k, p in enumerate([1e-8, 3e-8]):
        one = solvers.evolve(_driven_phonon_model(p), ts, solver="bdf", progress=False)
        # the same operations in the same order: equal to rounding
        np.testing.assert_allclose(
            ds.relative_gap_change.values[k], one.relative_gap_change.values, rtol=1e-9, atol=1e-15
        )


# ---- the Krylov path (linear_solver="krylov": GMRES instead of the LU, issue 18)


def _solve_linear(linear_solver, rtol, krylov=(1e-6, 20, 2, 8)):
    fun, jac, exact, y0 = _linear_problem()
    ts = np.linspace(0.0, 10.0, 11)
    sol = jax.jit(
        lambda y0: bdf_solve(
            fun, jac, ts[0], ts[-1], y0, ts, rtol=rtol, atol=rtol * 1e-3, max_steps=100_000,
            linear_solver=linear_solver, krylov=krylov,
        )
    )(jnp.asarray(y0))
    return sol, exact, ts, y0


def test_krylov_bdf_matches_the_exact_solution_of_a_stiff_linear_system():
    """GMRES (Jacobi-scaled) on I - c J instead of the LU: the same method, so the same
    accuracy against the exact solution (stiffness 1e4: I - c J is far from diagonal,
    GMRES needs several products per solve)."""
    rtol = 1e-8
    sol, exact, ts, y0 = _solve_linear("krylov", rtol)
    assert sol.result == diffrax.RESULTS.successful
    err = max(np.max(np.abs(np.asarray(sol.ys)[k] - exact(t, y0))) for k, t in enumerate(ts))
    assert err < 30 * rtol  # as the dense path (test_linear_stiff_system_matches_...)
    stats = {k: int(v) for k, v in sol.stats.items()}
    assert stats["gmres_failures"] == 0 and stats["gmres_gave_up"] == 0
    # one solve per Newton iteration (= per rhs evaluation in the Newton loop)
    assert stats["gmres_solves"] >= stats["num_accepted_steps"]
    assert stats["gmres_iterations"] > stats["gmres_solves"]  # not the identity


def test_krylov_bdf_gives_up_when_gmres_cannot_converge():
    """GMRES starved (one product per solve, tolerance 1e-14): every solve fails, the
    Newton iterations diverge, and after max_failures of them the run stops with
    nonlinear_divergence and gmres_gave_up (evolve then redoes it with the LU)."""
    sol, *_ = _solve_linear("krylov", 1e-8, krylov=(1e-14, 1, 1, 5))
    assert sol.result == diffrax.RESULTS.nonlinear_divergence
    assert int(sol.stats["gmres_gave_up"]) == 1
    assert int(sol.stats["gmres_failures"]) == 5


@pytest.mark.slow
def test_evolve_krylov_agrees_with_dense_in_regime_b():
    """Regime (b) (phonons + drive, |lambda| T ~ 1e5) at N = 64: the Krylov and the dense
    BDF take different steps (GMRES solves at each attempt's own c, the LU at the c it
    was built for), so they agree to their global errors: each step's local error is
    below rtol = 1e-8 of n, the run ~150 steps (measured 5e-8 at N = 300)."""
    model, ts = _driven_phonon_model(1e-8), regime_b(64)[1]
    dense = solvers.evolve(model, ts, solver="bdf", linear_solver="dense", progress=False)
    kry = solvers.evolve(model, ts, solver="bdf", linear_solver="krylov", progress=False)
    assert kry.attrs["solver.status"] == "success"
    assert kry.attrs["solver.linear_solver"] == "krylov"
    assert kry.attrs["solver.gmres_solves"] > 0 and kry.attrs["solver.gmres_failures"] == 0
    assert "solver.linear_solver" not in dense.attrs
    rel = np.abs(kry.n.values / dense.n.values - 1.0)
    assert np.max(rel) < 1e-6
    # the gap change (a 1e-6-level difference of O(1) gaps) to the benchmark's agreement
    np.testing.assert_allclose(kry.relative_gap_change.values[1:],
                               dense.relative_gap_change.values[1:], rtol=2e-3)


def test_evolve_krylov_falls_back_to_the_dense_lu(monkeypatch):
    """When the Krylov BDF gives up (gmres_gave_up, tested on bdf_solve above), evolve
    redoes the segment with the dense LU: the result is the dense run's, bit for bit, and
    the dataset counts the rerun and the Krylov attempt's GMRES failures. (The compiled
    core is wrapped so that its Krylov call gives up with NaN states: the host logic is
    tested without compiling a starved Krylov program.)"""
    import solvers._evolve as ev

    real, calls = ev._core_jit, []

    def core(*args):
        calls.append(args[-1])
        if args[-1] != "krylov":
            return real(*args)
        out = real(*args[:-1], "dense")
        stats = dict(out["stats"], gmres_solves=9, gmres_iterations=9, gmres_failures=7,
                     gmres_gave_up=1)
        return dict(out, y=out["y"] * jnp.nan, stats=stats)

    monkeypatch.setattr(ev, "_core_jit", core)
    model, ts = _driven_phonon_model(1e-8), regime_b(64)[1]
    kry = solvers.evolve(model, ts, solver="bdf", linear_solver="krylov", progress=False)
    dense = solvers.evolve(model, ts, solver="bdf", linear_solver="dense", progress=False)
    assert calls == ["krylov", "dense", "dense"]
    assert kry.attrs["solver.status"] == "success"
    assert kry.attrs["solver.linear_solver"] == "krylov"
    assert kry.attrs["solver.dense_rerun"] == 1
    assert kry.attrs["solver.gmres_failures"] == 7
    np.testing.assert_array_equal(kry.n.values, dense.n.values)


def test_linear_solver_choice():
    from solvers._bdf import linear_solver_of
    from solvers._options import KRYLOV

    small, big = regime_b(64)[0], regime_b(KRYLOV["bdf_auto_size"])[0]
    assert linear_solver_of(small, "bdf", "auto") == "dense"
    assert linear_solver_of(big, "bdf", "auto") == "krylov"
    assert linear_solver_of(big, "tsit5", "auto") == "dense"  # no Newton systems
    assert linear_solver_of(small, "bdf", "krylov") == "krylov"
    for bad in ("krylov-jvp", "lu"):
        with pytest.raises(kinetics.ParameterError, match="linear_solver"):
            linear_solver_of(small, "bdf", bad)

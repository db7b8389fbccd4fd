"""Newton-Krylov steady states (issue 18): the matrix-free Jacobian product, GMRES, the
Krylov path against the dense LU, the fallback, and the step's memory."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kinetics
import solvers
from solvers import _steady
from solvers._krylov import gmres, jacobian_vector_product, krylov_solve, scaled_jvp
from solvers._occupations import scaled_jacobian, to_z

GRID = kinetics.Grid(n=64, xi_max=20.0, core=1.0)
D = kinetics.DynamicBosons


def _model(dynamic: bool, gap_mode: str):
    cavity = kinetics.MultimodeCavity(
        omega0=2.5, t_cav=0.5, eta=2e-3,
        dynamic=D(tau_b=10.0, r_cav=1e-2, n_omega=24, omega_core=0.1) if dynamic else None)
    drive = kinetics.ClassicalDrive(omega_d=0.5, power=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        return kinetics.Model(t_qp=0.6, tau_in=50.0, baths=[cavity, drive], grid=GRID,
                              gap_mode=gap_mode)


def _state(model):
    """A non-thermal state: n with a bump at low energy, bosons off their reservoir."""
    n, bosons = model.split(model.initial_state())
    n = n * (1.0 + 0.3 * jnp.exp(-jnp.asarray(GRID.xi)))
    return model.join(n, tuple(1.3 * b + 0.01 for b in bosons))


@eqx.filter_jit
def _products(model, y, v):
    z = to_z(model, y)
    return (model.jacobian(0.0, y) @ v, jacobian_vector_product(model, 0.0, y)(v),
            scaled_jacobian(model, 0.0, z) @ v, scaled_jvp(model, 0.0, z)(v))


@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
@pytest.mark.parametrize("gap_mode", ["self_consistent", "fixed"])
def test_matrix_free_product_equals_structured_jacobian(dynamic, gap_mode):
    # two independent formulations: the structured Jacobian (kernel derivatives written
    # out, the rank-one gap term from the gap equation's partial derivatives) against JVPs
    # of the right-hand side; equal to rounding (1e-13 of the largest entry of J v)
    model = _model(dynamic, gap_mode)
    y = _state(model)
    v = jnp.cos(0.7 * jnp.arange(y.shape[0])) * y
    dense, free, dense_z, free_z = _products(model, y, v)
    for a, b in ((dense, free), (dense_z, free_z)):
        a, b = np.asarray(a), np.asarray(b)
        assert np.all(np.isfinite(b))
        assert np.max(np.abs(a - b)) <= 1e-13 * np.max(np.abs(a))
    if gap_mode == "self_consistent":
        # the rank-one term matters here: the product at fixed gap differs by far more
        fixed = _products(_model(dynamic, "fixed"), y, v)[0]
        assert np.max(np.abs(np.asarray(fixed) - np.asarray(dense))) > 1e-6 * np.max(
            np.abs(np.asarray(dense)))


def test_gmres_solves_a_second_kind_system():
    # identity + smooth kernel + one slow mode (eigenvalue 1e-6): GMRES reaches the
    # tolerance in far fewer iterations than N, and agrees with numpy's LU
    rng = np.random.default_rng(0)
    n = 200
    x = np.linspace(0.0, 1.0, n)
    k = np.exp(-np.abs(x[:, None] - x[None, :])) / n
    q = rng.standard_normal(n)
    q /= np.linalg.norm(q)
    a = np.eye(n) + k - (1.0 - 1e-6) * np.outer(q, q) @ (np.eye(n) + k)
    b = rng.standard_normal(n)
    xk, its, ok, rel = jax.jit(
        lambda a, b: gmres(lambda u: a @ u, b, rtol=1e-10, restart=40, max_cycles=3))(a, b)
    assert bool(ok) and float(rel) <= 1e-10
    assert int(its) < 40
    exact = np.linalg.solve(a, b)
    assert np.max(np.abs(np.asarray(xk) - exact)) <= 1e-6 * np.max(np.abs(exact))
    # starved: one iteration of one cycle cannot converge, and says so
    _, its, ok, _ = jax.jit(
        lambda a, b: gmres(lambda u: a @ u, b, rtol=1e-10, restart=1, max_cycles=1))(a, b)
    assert not bool(ok) and int(its) == 1


def _regime(name, n):
    t = 0.9 if name == "a" else 0.3
    grid = kinetics.Grid(n=n) if name == "a" else kinetics.Grid(n=n, xi_max=15.0)
    d0 = kinetics.equilibrium_gap(t, grid)
    if name == "a":  # the paper's multimode cavity (benchmarks/run.py regime (a))
        baths = [kinetics.MultimodeCavity(omega0=3.0 * d0, t_cav=0.45, eta=0.0155 / 1000.0)]
        tau_in = 1000.0
    else:  # aluminium phonons + a classical drive (regime (b))
        tau0 = kinetics.to_internal(438.0, "ns", dimension="time", name="tau0",
                                    t_c_kelvin=1.19)
        baths = [kinetics.Phonons(tau0=tau0, t_ph=t),
                 kinetics.ClassicalDrive(omega_d=0.5 * d0, power=1e-8)]
        tau_in = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        return kinetics.Model(t_qp=t, tau_in=tau_in, baths=baths, grid=grid)


@pytest.mark.slow  # two steady-state programs per regime: ~60 s, 270 s under load 9
@pytest.mark.parametrize("regime", ["a", "b"])
def test_krylov_and_dense_steady_states_agree(regime):
    # both converge to tol 1e-10 in the relative distance to the root; their states
    # therefore agree to a few tol (1e-8 leaves room for the slow mode's conditioning)
    model = _regime(regime, 160)
    dense = solvers.steady_state(model, linear_solver="dense")
    krylov = solvers.steady_state(model, linear_solver="krylov")
    assert dense.attrs["solver.status"] == krylov.attrs["solver.status"] == "success"
    assert krylov.attrs["solver.linear_solver"] == "krylov"
    assert krylov.attrs["solver.gmres_failures"] == krylov.attrs["solver.dense_rerun"] == 0
    # GMRES converged on every system, in far fewer iterations than N each
    solves, its = krylov.attrs["solver.gmres_solves"], krylov.attrs["solver.gmres_iterations"]
    assert solves >= 2 and its <= 30 * solves
    n_d, n_k = np.asarray(dense["n"]).ravel(), np.asarray(krylov["n"]).ravel()
    assert np.max(np.abs(n_k / n_d - 1.0)) <= 1e-8
    assert abs(float(krylov.relative_gap_change) - float(dense.relative_gap_change)) <= 1e-8 * (
        abs(float(dense.relative_gap_change)))


@pytest.mark.slow  # its own Newton program (static GMRES options): 180 s under load 9
def test_starved_gmres_falls_back_to_the_lu(monkeypatch):
    # one GMRES iteration per solve cannot reach 1e-10 (except on the longest pseudo-time
    # shifts, where the Jacobi-scaled system is nearly the identity): failed solves reject
    # their trials, the Krylov Newton fails, and the dense LU redoes it from the same
    # start: the dataset says so, and the state is the dense path's
    model = _regime("a", 160)
    dense = solvers.steady_state(model, linear_solver="dense")
    starved = dict(_steady.KRYLOV, restart=1, max_cycles=1)
    monkeypatch.setattr(_steady, "KRYLOV", starved)
    out = solvers.steady_state(model, linear_solver="krylov-jvp")
    assert out.attrs["solver.status"] == "success"
    assert 0 < out.attrs["solver.gmres_failures"] <= out.attrs["solver.gmres_solves"]
    assert out.attrs["solver.dense_rerun"] == 1
    n_d, n_k = np.asarray(dense["n"]).ravel(), np.asarray(out["n"]).ravel()
    assert np.max(np.abs(n_k / n_d - 1.0)) <= 1e-8


def test_auto_chooses_by_size():
    small = _regime("a", 160)
    assert _steady.linear_kind(small, "auto") == "dense"
    assert _steady.linear_kind(_regime("a", _steady.KRYLOV["auto_size"]), "auto") == "krylov"
    with pytest.raises(kinetics.ParameterError, match="linear_solver"):
        _steady.linear_kind(small, "lu")


def test_matrix_free_krylov_solve_holds_no_n_by_n_array():
    # (compiling takes ~10 s on an idle machine, 45-75 s under load 9)
    # the compiled matrix-free Krylov solve at N = 4000 (regime (b)): XLA's temporaries
    # stay below two N x N float64 arrays (here: O(N (restart + row block)) ~ 10 MiB)
    n = 4000
    model = _regime("b", n)
    z = to_z(model, model.thermal_state())
    opts = (1e-10, 40, 3)

    def solve(model, z, diag, shift, b):
        return krylov_solve(scaled_jvp(model, jnp.asarray(0.0), z), diag, shift, b, opts)

    args = (model, z, jnp.ones(n), jnp.zeros(n), jnp.ones(n))
    dyn, static = eqx.partition(args, eqx.is_array)
    fn = jax.jit(lambda d: solve(*eqx.combine(d, static)))
    memory = fn.lower(dyn).compile().memory_analysis()
    assert memory is not None
    assert memory.temp_size_in_bytes < 2 * n * n * 8
    # in fact O(N): the Krylov basis and a few (row block x N) tiles of the fused passes
    # (measured 13 MB = 0.10 N^2 x 8 B here, 4 MB = 0.51 N^2 x 8 B at N = 1000)
    assert memory.temp_size_in_bytes < 0.25 * n * n * 8


def test_resource_estimates_of_the_krylov_paths():
    # no LU on a Krylov path: 3 N x N arrays (the structured Jacobian and its
    # construction) instead of the dense Newton's 11 and the BDF's 5, and no LU time;
    # "auto" keeps the dense estimate (its fallback may factor)
    from solvers._resources import memory_estimate, time_estimate

    model = _regime("b", 400)
    n2 = 8 * model.state_size**2
    assert memory_estimate(model, "steady") == 11 * n2
    assert memory_estimate(model, "evolve", "bdf") == 5 * n2
    for kind, solver in (("steady", None), ("evolve", "bdf")):
        for linear in ("krylov", "krylov-jvp"):
            assert memory_estimate(model, kind, solver, linear_solver=linear) == 3 * n2
            assert time_estimate(model, kind, solver, linear_solver=linear) == 0.0
        assert memory_estimate(model, kind, solver, linear_solver="auto") > 3 * n2
        assert time_estimate(model, kind, solver) > 0.0
    # explicit integrators have no Newton systems: unchanged
    assert memory_estimate(model, "evolve", "tsit5", linear_solver="krylov") == 3 * n2
    assert memory_estimate(model, "perturbative", linear_solver="krylov") == n2


# ---- the BDF's Jacobian, written in place (issue 18: two N x N arrays at most)


@pytest.mark.parametrize(("dynamic", "gap_mode"), [(False, "self_consistent"), (False, "fixed"),
                                                   (True, "self_consistent")])
def test_jacobian_written_into_the_old_buffer_equals_z_jacobian(dynamic, gap_mode):
    # the BDF's refresh (row blocks, scatters and the scaling in one reused buffer) against
    # _occupations.z_jacobian (whole-matrix expressions): the same terms in another order,
    # equal to rounding (1e-13 of the largest entry); the old buffer's values (NaN here)
    # must not leak into the result
    from solvers._evolve import z_jacobian_into
    from solvers._occupations import z_jacobian

    model = _model(dynamic, gap_mode)
    z = to_z(model, _state(model))
    size = model.state_size
    new, ref = eqx.filter_jit(lambda m, z: (
        z_jacobian_into(m, jnp.asarray(0.0), z, jnp.full((size, size), jnp.nan)),
        z_jacobian(m, jnp.asarray(0.0), z)))(model, z)
    new, ref = np.asarray(new), np.asarray(ref)
    assert np.all(np.isfinite(new))
    assert np.max(np.abs(new - ref)) <= 1e-13 * np.max(np.abs(ref))


def test_krylov_bdf_holds_one_jacobian():
    # (compiling takes 125 s under load 6-8)
    # the compiled Krylov BDF integration at N = 4000 (regime (b)): the Jacobian it keeps
    # across steps is refreshed in its own buffer (Model.jacobian's `out`, row blocks and
    # scatter-adds), so XLA's temporaries stay below two N x N float64 arrays (measured:
    # 1.14 N^2 x 8 B; 3.08 before, when the refresh built the new J and a scaled copy
    # beside the old one)
    from solvers._evolve import _integrate

    n = 4000
    model = _regime("b", n)
    z0 = to_z(model, model.initial_state())
    ts = jnp.asarray([0.0, 1e3, 1e7])

    def run(model, z0, ts):
        sol = _integrate(model, z0, ts[0], ts[-1], ts, "bdf", 1e-8, 1e-12, 10_000, None,
                         jnp.zeros((0,)), False, "krylov")
        return sol.ys, sol.stats

    args = (model, z0, ts)
    dyn, static = eqx.partition(args, eqx.is_array)
    fn = jax.jit(lambda d: run(*eqx.combine(d, static)))
    memory = fn.lower(dyn).compile().memory_analysis()
    assert memory is not None
    assert memory.temp_size_in_bytes < 2 * n * n * 8
    # one Jacobian and O(N) vectors (history, Krylov basis, row-block tiles)
    assert memory.temp_size_in_bytes < 1.5 * n * n * 8


# ---- sweeps with a linear solver (issue 18: Krylov and dense agree on batched sweeps)

_SWEEP_GRID = kinetics.Grid(n=120, xi_max=30.0, core=2.0)
_SWEEP_UNITS = {"omega0_ratio": ("omega_0 / Delta_0", "1")}


def _sweep_cavity(omega0_ratio):
    """Module-level factory: the paper's cavity (T_qp = 0.9, tau_in = 1000) at
    eta tau_in = 0.0155 (regime (a)), omega0 in units of Delta_0."""
    d0 = kinetics.equilibrium_gap(0.9, _SWEEP_GRID)
    bath = kinetics.MultimodeCavity(omega0=omega0_ratio * d0, t_cav=0.45, eta=0.0155 / 1000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        return kinetics.Model(t_qp=0.9, tau_in=1000.0, baths=[bath], grid=_SWEEP_GRID)


@pytest.mark.slow  # two Newton programs (loop, vmap of 3): 265 s under load 6-8
def test_krylov_sweep_equals_the_dense_sweep():
    # three steady points, dense one by one ("loop") against Krylov vmap-batched: both
    # Newtons stop at tol 1e-10 in the relative distance to the root, so their states
    # agree to a few tol (1e-8, as the single-point comparison above)
    params = {"omega0_ratio": [2.0, 3.0, 4.5]}
    kw = dict(kind="steady", units=_SWEEP_UNITS, workers=1, progress=False)
    dense = solvers.sweep(_sweep_cavity, params, batch="loop", **kw)
    kry = solvers.sweep(_sweep_cavity, params, batch="vmap", chunk_size=3,
                        linear_solver="krylov", **kw)
    assert list(dense.status.values) == list(kry.status.values) == ["success"] * 3
    assert kry.attrs["solver.linear_solver"] == "krylov"
    assert "solver.linear_solver" not in dense.attrs
    n_d, n_k = dense["n"].values, kry["n"].values
    assert np.max(np.abs(n_k / n_d - 1.0)) <= 1e-8
    rel_d, rel_k = dense.relative_gap_change.values, kry.relative_gap_change.values
    assert np.all(np.abs(rel_k - rel_d) <= 1e-8 * np.abs(rel_d))


@pytest.mark.parametrize(("kind", "bad"), [("steady", "lu"), ("evolve", "krylov-jvp"),
                                           ("steady", None)])
def test_sweep_refuses_a_bad_linear_solver_before_any_work(kind, bad):
    calls = []

    def factory(omega0_ratio):
        calls.append(omega0_ratio)
        return _sweep_cavity(omega0_ratio)

    opts = {"t_save": [0.0, 1.0]} if kind == "evolve" else None
    with pytest.raises(kinetics.ParameterError, match="linear_solver must be one of"):
        solvers.sweep(factory, {"omega0_ratio": [2.0]}, kind=kind, options=opts,
                      units=_SWEEP_UNITS, workers=1, progress=False, linear_solver=bad)
    assert calls == []  # not even the probe model was built

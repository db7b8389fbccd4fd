"""Parameter sweeps (solvers.sweep): equal to the points one by one, failures as
values, resumption after an interruption, a real dask LocalCluster.

All sweeps share one grid (n = 80) and one model structure (a multimode cavity at
the paper's T_qp = 0.9, tau_in = 1000), so that each solver program is compiled
once per batch shape for the whole module: only parameter values change.
"""

import functools
import os
import sys
import warnings

import numpy as np
import pytest

import kinetics
import solvers

T_QP = 0.9
TAU_IN = 1000.0
GRID = kinetics.Grid(n=80, xi_max=30.0, core=2.0)
DELTA0 = kinetics.equilibrium_gap(T_QP, GRID)

# the interrupting point of test_interrupted_sweep_resumes (set by that test only)
_INTERRUPT_AT: dict = {}


class _Interrupt(BaseException):
    """Stands for Ctrl-C or a killed job: not an Exception, so nothing catches it."""


def cavity(omega0_ratio, t_cav_ratio, *, eta_tau_in=0.0155):
    """Module-level (picklable) factory: omega0 in units of Delta_0, T_cav of T_qp."""
    if _INTERRUPT_AT.get("point") == (omega0_ratio, t_cav_ratio):
        raise _Interrupt
    bath = kinetics.MultimodeCavity(
        omega0=omega0_ratio * DELTA0, t_cav=t_cav_ratio * T_QP, eta=eta_tau_in / TAU_IN
    )
    return kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=[bath], grid=GRID)


def coupled(omega0_ratio, eta_tau_in):
    return cavity(omega0_ratio, 0.5, eta_tau_in=eta_tau_in)


def quiet(factory, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        return factory(**kw)


@functools.cache
def steady_reference(omega0_ratio, t_cav_ratio):
    """steady_state of one point by itself, computed once for the module: the loop and the
    vmap sweeps below are both compared with the same six one-by-one references."""
    return solvers.steady_state(
        quiet(cavity, omega0_ratio=omega0_ratio, t_cav_ratio=t_cav_ratio)
    )


OMEGA = [2.0, 3.0, 4.5]
T_CAV = [0.0, 0.5]
UNITS = {"omega0_ratio": ("omega_0 / Delta_0", "1"), "t_cav_ratio": ("T_cav / T_qp", "1")}


@pytest.mark.parametrize("batch", ["loop", pytest.param("vmap", marks=pytest.mark.slow)])
def test_steady_sweep_equals_the_points_one_by_one(batch):
    ds = solvers.sweep(
        cavity,
        {"omega0_ratio": OMEGA, "t_cav_ratio": T_CAV},
        kind="steady",
        batch=batch,
        chunk_size=3,
        progress=False,
    )
    assert ds.relative_gap_change.dims == ("omega0_ratio", "t_cav_ratio")
    assert ds.n.dims == ("omega0_ratio", "t_cav_ratio", "xi")
    assert ds.omega0_ratio.attrs["units"] == "1" and ds.xi.attrs["units"] == "k_B T_c"
    assert ds.gap.attrs["units"] == "k_B T_c" and ds.wall_time.attrs["units"] == "s"
    assert ds.attrs["sweep.points_computed"] == 6 and ds.attrs["sweep.batch"] == batch
    assert (ds.status.values == "success").all() and ds.converged.values.all()
    tol = ds.attrs["solver.tol"]
    for w in OMEGA:
        for r in T_CAV:
            ref = steady_reference(w, r)
            pt = ds.sel(omega0_ratio=w, t_cav_ratio=r)
            assert float(pt.residual) <= tol
            assert int(pt.iterations) == ref.attrs["solver.iterations"]
            # Both states have Newton residual max|dn/dt| tau_in <= tol = 1e-11; the
            # slowest relaxation rate is ~0.3 / tau_in (the gap mode), so each is within
            # ~3 tol = 3e-11 of the exact fixed point: 1e-10 bounds their difference.
            # (They run the same iterations, so they agree to rounding in practice.)
            assert np.max(np.abs(pt.n.values - ref.n.values)) < 1e-10
            # Delta depends on n through an integral of weight ~2 (the gap equation),
            # and relative_gap_change is ~1e-2: the same 1e-10 bound, relative to Delta_0
            assert abs(float(pt.relative_gap_change) - float(ref.relative_gap_change)) < 1e-10
            assert float(pt.n_qp) == pytest.approx(float(ref.n_qp), rel=1e-10)
            assert float(pt.delta0) == pytest.approx(DELTA0, rel=1e-14)


def test_perturbative_and_evolve_sweeps_equal_the_points_one_by_one():
    params = {"omega0_ratio": [2.0, 4.5], "t_cav_ratio": [0.0]}
    pt = solvers.sweep(cavity, params, kind="perturbative", units=UNITS, progress=False)
    ts = [0.0, 500.0, 3000.0]
    ev = solvers.sweep(
        cavity,
        params,
        kind="evolve",
        units=UNITS,
        batch="vmap",
        options={"t_save": ts, "solver": "tsit5"},
        progress=False,
    )
    assert ev.gap.dims == ("omega0_ratio", "t_cav_ratio", "time")
    assert ev.time.attrs["units"] == "hbar / (k_B T_c)"
    for w in params["omega0_ratio"]:
        m = quiet(cavity, omega0_ratio=w, t_cav_ratio=0.0)
        ref = solvers.perturbative(m)
        got = pt.sel(omega0_ratio=w, t_cav_ratio=0.0)
        # a closed form evaluated by the same program: rounding only
        assert float(got.relative_gap_change) == pytest.approx(
            float(ref.relative_gap_change), rel=1e-12
        )
        assert float(got.relative_gap_change_gl) == pytest.approx(
            float(ref.relative_gap_change_gl), rel=1e-12
        )
        ref = solvers.evolve(m, ts, solver="tsit5", progress=False)
        got = ev.sel(omega0_ratio=w, t_cav_ratio=0.0)
        assert int(got.iterations) == ref.attrs["solver.num_steps"]
        # same adaptive steps (vmap keeps a step size per point): rounding only, far
        # below the local error control rtol 1e-8 x n
        assert np.max(np.abs(got.n.values - ref.n.values)) < 1e-12
        assert np.allclose(got.gap.values, ref.gap.values, rtol=1e-12, atol=0)


def test_failing_points_are_marked_and_the_others_are_correct():
    # omega0 = 0.5 Delta_0 is below the grid spacing at high energy: the Model refuses
    # it (GridError). eta tau_in = 1e4 needs 8 Newton iterations, more than max_iter = 3,
    # and continuation is off: the solver fails. The weak coupling converges in 3.
    opts = {"max_iter": 3, "continuation_steps": 0}
    ds = solvers.sweep(
        coupled,
        {"omega0_ratio": [0.5, 3.0], "eta_tau_in": [0.0155, 1e4]},
        options=opts,
        batch="vmap",
        progress=False,
    )
    status = ds.status.to_series().to_dict()
    assert status == {
        (0.5, 0.0155): "error",
        (0.5, 1e4): "error",
        (3.0, 0.0155): "success",
        (3.0, 1e4): "failed",
    }
    bad = ds.sel(omega0_ratio=0.5, eta_tau_in=0.0155)
    assert "GridError" in str(bad.message.values) and "omega0" in str(bad.message.values)
    assert np.isnan(float(bad.gap))
    failed = ds.sel(omega0_ratio=3.0, eta_tau_in=1e4)
    assert "did not converge" in str(failed.message.values)
    assert not bool(failed.converged) and float(failed.residual) > ds.attrs["solver.tol"]
    assert ds.attrs["sweep.points_failed"] == 3
    good = ds.sel(omega0_ratio=3.0, eta_tau_in=0.0155)
    # the reference with the default max_iter (its program is compiled already): it
    # converges in the same 3 iterations
    ref = solvers.steady_state(quiet(coupled, omega0_ratio=3.0, eta_tau_in=0.0155))
    assert int(good.iterations) == ref.attrs["solver.iterations"] <= 3
    assert str(good.message.values) == ""
    # as in the first test: both residuals <= 1e-11 per tau_in
    assert np.max(np.abs(good.n.values - ref.n.values)) < 1e-10


def test_interrupted_sweep_resumes_only_the_missing_points(tmp_path):
    out = tmp_path / "map.nc"
    params = {"omega0_ratio": OMEGA, "t_cav_ratio": T_CAV}
    kw = dict(kind="perturbative", output=out, chunk_size=1, progress=False)
    _INTERRUPT_AT["point"] = (4.5, 0.0)  # the 5th of 6 points, in chunk order
    try:
        with pytest.raises(_Interrupt):
            solvers.sweep(cavity, params, **kw)
    finally:
        _INTERRUPT_AT.clear()
    parts = tmp_path / "map.nc.parts"
    assert not out.exists()
    assert len([p for p in os.listdir(parts) if p.startswith("part-")]) == 4
    assert not [p for p in os.listdir(parts) if p.startswith(".tmp-")]
    # another sweep into the same store is refused, not mixed in
    with pytest.raises(kinetics.ParameterError, match="different sweep"):
        solvers.sweep(cavity, params, **{**kw, "options": {"t": 1.0}})
    ds = solvers.sweep(cavity, params, **kw)
    assert ds.attrs["sweep.points_resumed"] == 4 and ds.attrs["sweep.points_computed"] == 2
    assert len(set(ds.sweep_run.values.ravel())) == 2
    # only the rest was computed by the rerun
    assert set(ds.sweep_run.sel(omega0_ratio=4.5).values) == {ds.attrs["sweep.run_id"]}
    assert ds.attrs["sweep.run_id"] not in set(
        ds.sweep_run.sel(omega0_ratio=[2.0, 3.0]).values.ravel()
    )
    assert (ds.status.values == "success").all()
    assert out.exists() and not parts.exists()
    assert solvers.load(out).identical(ds)
    # complete: every point equals a sweep done in one go
    ref = solvers.sweep(cavity, params, kind="perturbative", progress=False)
    assert np.array_equal(ds.relative_gap_change.values, ref.relative_gap_change.values)
    # a finished sweep is not recomputed
    again = solvers.sweep(cavity, params, **kw)
    assert again.attrs["sweep.run_id"] == ds.attrs["sweep.run_id"]


@pytest.fixture(scope="module")
def local_cluster():
    """One real two-process LocalCluster for the module's cluster tests: its start and each
    worker's JAX import are paid once (test_a_worker_that_dies_loses_no_point kills one of
    its workers; the nanny starts a fresh one, as it would for a lone cluster)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster


def test_local_cluster_through_the_scheduler_address_resumes(tmp_path, local_cluster):
    out = tmp_path / "cluster.nc"
    params = {"omega0_ratio": OMEGA, "t_cav_ratio": T_CAV}
    kw = dict(kind="perturbative", output=out, chunk_size=1, progress=False)
    _INTERRUPT_AT["point"] = (3.0, 0.5)  # the 4th point: 3 are written before it
    try:
        with pytest.raises(_Interrupt):
            solvers.sweep(cavity, params, **kw)
    finally:
        _INTERRUPT_AT.clear()
    ds = solvers.sweep(cavity, params, scheduler=local_cluster.scheduler_address, **kw)
    assert ds.attrs["sweep.backend"].startswith("dask.distributed scheduler tcp://127.0.0.1")
    assert ds.attrs["sweep.points_resumed"] == 3 and ds.attrs["sweep.points_computed"] == 3
    workers = set(__import__("json").loads(ds.attrs["sweep.compile_time_per_worker_s"]))
    assert workers and not any(w.endswith(f":{os.getpid()}") for w in workers)
    assert (ds.status.values == "success").all()
    ref = solvers.sweep(cavity, params, kind="perturbative", progress=False)
    # the same program on another process: rounding only
    np.testing.assert_allclose(
        ds.relative_gap_change.values, ref.relative_gap_change.values, rtol=1e-13
    )
    np.testing.assert_allclose(ds.n.values, ref.n.values, rtol=0, atol=1e-15)
    assert solvers.load(out).identical(ds)


def test_bad_arguments_are_refused_before_any_work():
    p = {"omega0_ratio": [2.0], "t_cav_ratio": [0.0]}
    bad = [
        (dict(kind="stedy"), "kind"),
        (dict(batch="simd"), "batch"),
        (dict(options={"tolerance": 1e-9}), "tolerance"),
        (dict(options={"tol": -1.0}), "tol"),
        (dict(kind="evolve"), "t_save"),
        (dict(kind="evolve", options={"t_save": [1.0, 0.0]}), "t_save"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(workers=0), "workers"),
        (dict(scheduler=8786), "scheduler"),
        (dict(units={"omega0": "K"}), "units"),
    ]
    for kwargs, word in bad:
        with pytest.raises(kinetics.ParameterError, match=word):
            solvers.sweep(cavity, p, progress=False, **kwargs)
    for params, word in [
        ({}, "non-empty"),
        ({"omega0_ratio": [2.0, np.nan], "t_cav_ratio": [0.0]}, "finite"),
        ({"omega0_ratio": [2.0, 2.0], "t_cav_ratio": [0.0]}, "repeated"),
        ({"omega0_ratio": [[2.0]], "t_cav_ratio": [0.0]}, "1-D"),
        ({"omega0_ratio": [2.0]}, "cannot be called"),
        ({"omega0_ratio": [2.0], "t_cav_ratio": [0.0], "mystery": [1.0]}, "cannot be called"),
    ]:
        with pytest.raises(kinetics.ParameterError, match=word):
            solvers.sweep(cavity, params, progress=False)
    with pytest.raises(kinetics.ParameterError, match="unit of parameter 'mystery'"):
        solvers.sweep(lambda mystery: None, {"mystery": [1.0]}, progress=False)
    with pytest.raises(kinetics.ParameterError, match="model_factory"):
        solvers.sweep("cavity", p, progress=False)


def test_without_dask_a_cluster_sweep_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"pip install"):
        solvers.sweep(cavity, {"omega0_ratio": [2.0], "t_cav_ratio": [0.0]}, workers=2)


def test_factory_names_identify_partials():
    f = functools.partial(coupled, eta_tau_in=0.1)
    assert solvers.sweep.__module__ == "solvers._sweep"
    from solvers._sweep import factory_name

    assert factory_name(f) == f"partial({__name__}.coupled, ; eta_tau_in=0.1)"


@pytest.mark.slow
def test_fig1a_map_study_quick(tmp_path):
    from cavity_eliashberg import main

    path = os.path.join(os.path.dirname(__file__), "..", "runs", "sweep_fig1a_map.toml")
    assert main(["run", path, "--quick", "--no-progress", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "sweep_fig1a_map_quick.png").stat().st_size > 10_000
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # the store is merged
    ds = solvers.load(tmp_path / "sweep_fig1a_map_quick.nc")
    assert ds.relative_gap_change_nonlinear.dims == ("cavity_omega0", "cavity_t_cav")
    assert (ds.steady_status.values == "success").all()
    z = ds.relative_gap_change_nonlinear
    # Fig. 1(a): cold photons suppress the gap below omega_0 ~ 1.3 Delta_0 and enhance
    # it above; at T_cav = T_qp detailed balance holds and nothing changes (to the
    # Newton residual 1e-11 per tau_in, times the ~3 tau_in of the gap mode)
    assert (
        float(z.sel(cavity_omega0=1.0, cavity_t_cav=0.0))
        < 0
        < float(z.sel(cavity_omega0=3.0, cavity_t_cav=0.0))
    )
    assert np.max(np.abs(z.sel(cavity_t_cav=1.0).values)) < 1e-9


def dies_once(omega0_ratio, t_cav_ratio, *, marker):
    """Kills its worker process the first time it builds (3.0, 0.0)."""
    if (omega0_ratio, t_cav_ratio) == (3.0, 0.0) and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return cavity(omega0_ratio, t_cav_ratio)


@pytest.mark.slow
def test_a_worker_that_dies_loses_no_point(tmp_path, local_cluster):
    params = {"omega0_ratio": OMEGA, "t_cav_ratio": T_CAV}
    factory = functools.partial(dies_once, marker=str(tmp_path / "died"))
    ds = solvers.sweep(
        factory,
        params,
        kind="perturbative",
        output=tmp_path / "m.nc",
        chunk_size=1,
        scheduler=local_cluster.scheduler_address,
        progress=False,
    )
    assert (tmp_path / "died").exists()  # a worker did die
    # dask ran the lost task again on a live worker: every point once, none missing
    assert (ds.status.values == "success").all() and ds.attrs["sweep.points_computed"] == 6
    ref = solvers.sweep(cavity, params, kind="perturbative", progress=False)
    np.testing.assert_allclose(
        ds.relative_gap_change.values, ref.relative_gap_change.values, rtol=1e-13
    )

"""Reliability: malformed input always raises the project's error, failures keep what was
computed, interrupted runs resume to the same result, outputs are never clobbered."""

import errno
import os
import pathlib
import signal
import subprocess
import sys
import time
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cavity_eliashberg
import kinetics
import solvers
from cavity_eliashberg import ConfigError, main
from cavity_eliashberg._config import load_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
TRANSIENT = str(ROOT / "runs" / "transient_switch_on.toml")


def _cli(*args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "cavity_eliashberg", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )


# ------------------------------------------------------------------ malformed input

VALID = {
    "title": "t",
    "compute": ["perturbative"],
    "model": {"t_qp": 0.9, "tau_in": 1000},
    "grid": {"n": 60},
    "baths": [
        {"type": "multimode_cavity", "name": "c", "omega0": "4 Delta0", "t_cav": "0.5 T_qp",
         "eta": "0.0155 / tau_in"}
    ],
}
ANY = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["3 Delta0", "-1 K", "5 ns", "nan", "1e400 GHz", "0.5 T_qp", "x omega0", "/tau_in"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
PATHS = [("title",), ("compute",), ("model", "t_qp"), ("model", "tau_in"), ("model", "t_c"),
         ("grid", "n"), ("grid", "xi_max"), ("grid", "core"), ("baths",),
         ("baths", 0, "type"), ("baths", 0, "omega0"), ("baths", 0, "t_cav"), ("baths", 0, "eta"),
         ("baths", 0, "name"), ("steady",), ("sweep",), ("figure",), ("evolve",), ("nonsense",)]


def _mutated(path, value, delete):
    import copy

    raw = copy.deepcopy(VALID)
    node = raw
    for p in path[:-1]:
        node = node[p]
    if delete and path[-1] in node:
        del node[path[-1]]
    elif isinstance(node, dict):
        node[path[-1]] = value
    return raw


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), ANY, st.booleans())
def test_malformed_configs_raise_only_config_error(path, value, delete):
    raw = _mutated(path, value, delete)
    try:
        cfg, _ = load_config(raw)
    except ConfigError as err:
        assert str(err)  # a message, never a bare KeyError/ZeroDivisionError/tracer error
    else:
        assert cfg.compute


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["omega0", "t_cav", "eta", "t_qp", "tau_in"]),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5), st.text(max_size=3),
              st.none()),
)
def test_malformed_parameters_raise_only_parameter_error(name, value):
    args = {"omega0": 2.8, "t_cav": 0.45, "eta": 1e-5, "t_qp": 0.9, "tau_in": 1000.0}
    args[name] = value
    grid = kinetics.Grid(n=60)
    try:
        bath = kinetics.MultimodeCavity(omega0=args["omega0"], t_cav=args["t_cav"], eta=args["eta"])
        model = kinetics.Model(t_qp=args["t_qp"], tau_in=args["tau_in"], baths=[bath], grid=grid)
    except kinetics.ParameterError as err:
        assert str(err)
        return
    try:
        rel = float(solvers.perturbative(model).relative_gap_change)
    except kinetics.ParameterError as err:  # tau_in=None, or T_qp >= T_c: nothing to perturb
        assert "tau_in" in str(err) or "T_c" in str(err)
        return
    assert np.isfinite(rel)  # a valid model never gives NaN


# ------------------------------------------------------------------ solver failures


def test_max_steps_failure_saves_the_partial_result_with_its_reason(tmp_path, capsys):
    code = main(["run", TRANSIENT, "--quick", "--no-progress", "--output", str(tmp_path),
                 "--set", "evolve.max_steps=3"])
    assert code == 3
    err = capsys.readouterr().err
    assert "maximum number of solver steps" in err and "saved" in err
    with xr.open_dataset(tmp_path / "transient_switch_on_quick.nc") as ds:
        assert str(ds.evolve_status.values) == "failed"
        assert "max_steps" in str(ds.evolve_message.values)
        done = np.isfinite(ds.gap.values)
        assert done[0] and not done[-1]  # the start is kept, the rest is marked missing


class _PoisonedCavity(kinetics.MultimodeCavity):
    """A bath whose spectrum turns NaN after t = 200 (a bug in user code, say)."""

    def spectral_density(self, omega, t):
        j = super().spectral_density(omega, t)
        return jnp.where(t > 200.0, jnp.nan, j)


def test_a_bath_that_returns_nan_stops_with_the_time_and_keeps_earlier_states():
    bath = _PoisonedCavity(omega0=2.8, t_cav=0.45, eta=1.55e-5)
    model = kinetics.Model(t_qp=0.9, tau_in=1000.0, baths=[bath], grid=kinetics.Grid(n=60))
    ds = solvers.evolve(model, np.linspace(0.0, 1000.0, 11), progress=False, throw=False,
                        max_steps=2000)
    assert ds.attrs["solver.status"] == "failed"
    gap = ds.gap.values
    assert np.all(np.isfinite(gap[ds.time.values <= 200.0]))
    assert not np.all(np.isfinite(gap))
    with pytest.raises(solvers.SolverError) as info:
        solvers.evolve(model, np.linspace(0.0, 1000.0, 11), progress=False, max_steps=2000)
    assert "t = 200" in str(info.value) and info.value.partial is not None


# ------------------------------------------------------------------ checkpoints, signals


def test_sigterm_then_resume_gives_the_uninterrupted_result(tmp_path, monkeypatch):
    args = [TRANSIENT, "--quick", "--no-progress", "--set", "evolve.checkpoint_every=1"]
    # the interrupted run and the resume are separate processes: a real SIGTERM, and a
    # resume that has only the checkpoint file to go on
    run = _cli("run", *args, "--output", str(tmp_path / "a"), cwd=tmp_path)
    checkpoint = tmp_path / "a" / "transient_switch_on_quick.checkpoint.nc"
    deadline = time.time() + 300
    while not checkpoint.exists() and run.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=300)
    if run.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert run.returncode == 143, err
    assert "SIGTERM" in err and "resume" in err
    assert checkpoint.exists() and not (tmp_path / "a" / "transient_switch_on_quick.nc").exists()
    with xr.open_dataset(checkpoint) as ds:
        assert ds.attrs["solver.status"] == "incomplete"
        assert 0 < np.isfinite(ds.gap.values).sum() < ds.sizes["time"]
    resumed = _cli("resume", str(checkpoint), "--no-progress", cwd=tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert not checkpoint.exists()  # the finished result replaces the checkpoint
    # The uninterrupted reference needs no process of its own: the console script's
    # main() in this process (the same function `cavity-eliashberg` calls) runs the same
    # study, segment by segment from the same states.
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it
    assert main(["run", *args, "--output", str(tmp_path / "b")]) == 0
    with xr.open_dataset(tmp_path / "a" / "transient_switch_on_quick.nc") as a, \
            xr.open_dataset(tmp_path / "b" / "transient_switch_on_quick.nc") as b:
        # the same segments from the same states: identical to well within solver tolerance
        np.testing.assert_allclose(a.n.values, b.n.values, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.gap.values, b.gap.values, rtol=1e-12)


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    model = kinetics.Model(t_qp=0.9, tau_in=1000.0, grid=kinetics.Grid(n=60),
                           baths=[kinetics.MultimodeCavity(omega0=2.8, t_cav=0.45, eta=1e-5)])
    path = tmp_path / "ck.nc"
    ts = np.linspace(0.0, 200.0, 5)
    solvers.evolve(model, ts, progress=False, checkpoint=path, checkpoint_every=1)
    assert not path.exists()
    # leave a checkpoint behind: a run whose second segment fails
    bad = kinetics.Model(t_qp=0.9, tau_in=1000.0, grid=kinetics.Grid(n=60),
                         baths=[_PoisonedCavity(omega0=2.8, t_cav=0.45, eta=1e-5)])
    solvers.evolve(bad, np.linspace(0.0, 400.0, 5), progress=False, checkpoint=path,
                   checkpoint_every=1, throw=False, max_steps=500)
    assert path.exists()
    with pytest.raises(kinetics.ParameterError, match="another run"):
        solvers.evolve(model, ts, progress=False, checkpoint=path)


# ------------------------------------------------------------------ outputs


def test_a_read_only_folder_fails_cleanly_and_keeps_the_earlier_file(tmp_path, monkeypatch, capsys):
    earlier = tmp_path / "r.nc"
    ds = xr.Dataset({"a": ("x", np.arange(3.0))})
    solvers.save(ds, earlier)
    before = earlier.read_bytes()

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", read_only)
    with pytest.raises(OSError, match="Read-only"):
        solvers.save(ds.assign(a=ds.a * 2), earlier, overwrite=True)
    assert earlier.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]  # no temporary file left behind
    monkeypatch.undo()
    # the console script checks the folder before any work
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    assert main(["run", TRANSIENT, "--quick", "--no-progress", "--output", str(tmp_path)]) == 2
    assert "not writable" in capsys.readouterr().err


def test_same_config_gives_bit_identical_results_and_records_its_hash(tmp_path):
    text = (ROOT / "runs" / "fig2.toml").read_text()
    over = {"grid.n": 80, "compute": ["perturbative"]}
    a = cavity_eliashberg.run_study(*load_config(text, overrides=over), progress=False)
    b = cavity_eliashberg.run_study(*load_config(text, overrides=over), progress=False)
    assert np.array_equal(a.delta_n_first_order.values, b.delta_n_first_order.values)
    assert a.attrs["config_hash"] == b.attrs["config_hash"] and len(a.attrs["config_hash"]) == 64
    c = cavity_eliashberg.run_study(*load_config(text, overrides={**over, "grid.n": 81}), progress=False)
    assert c.attrs["config_hash"] != a.attrs["config_hash"]
    assert "version.jax" in a.attrs


# ------------------------------------------------------------------ extreme but valid


@pytest.mark.parametrize(
    "t_qp,omega0_ratio,t_cav,n",
    [(0.999, 3.0, 0.5, 200), (0.05, 3.0, 0.02, 200), (0.9, 100.0, 0.45, 200),
     (0.9, 3.0, 20.0, 200), (0.9, 3.0, 0.45, 50)],
    ids=["near-Tc", "low-T", "omega0=100Delta0", "hot-photons", "N=50"],
)
def test_extreme_but_valid_inputs_work_or_are_refused_clearly(t_qp, omega0_ratio, t_cav, n):
    grid = kinetics.Grid(n=n, xi_max=max(30.0, 1.2 * omega0_ratio * 1.8 + 20 * t_cav))
    delta0 = float(kinetics.equilibrium_gap(t_qp, grid))
    try:
        bath = kinetics.MultimodeCavity(omega0=omega0_ratio * delta0, t_cav=t_cav, eta=1e-6)
        model = kinetics.Model(t_qp=t_qp, tau_in=1000.0, baths=[bath], grid=grid)
    except kinetics.CavityEliashbergError as err:
        assert "Grid" in str(err) or "grid" in str(err)  # refused with what to change
        return
    pert = float(solvers.perturbative(model).relative_gap_change)
    steady = solvers.steady_state(model)
    assert np.isfinite(pert) and steady.attrs["solver.status"] == "success"
    assert float(steady.relative_gap_change) == pytest.approx(pert, rel=0.05, abs=1e-9)


def test_a_very_strong_coupling_reaches_a_far_from_equilibrium_steady_state():
    # eta tau_in = 3: perturbation theory is off by a factor ~2 (runs/perturbation_check)
    grid = kinetics.Grid(n=120)
    bath = kinetics.MultimodeCavity(omega0=2.8, t_cav=0.45, eta=3e-3)
    model = kinetics.Model(t_qp=0.9, tau_in=1000.0, baths=[bath], grid=grid)
    ds = solvers.steady_state(model)
    assert ds.attrs["solver.status"] == "success"
    pert = float(solvers.perturbative(model).relative_gap_change)
    rel = float(ds.relative_gap_change)
    assert 0 < rel < pert  # enhanced, but far less than first order says
    n = ds.n.values
    assert np.all((n >= 0) & (n <= 1))

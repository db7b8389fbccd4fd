"""The console script end to end: the default study on a coarse grid, then show and plot.

The default study runs as a separate process (``python -m cavity_eliashberg``: the module
entry point, the process's own import path and exit code). What follows it calls the
console script's function itself, ``cavity_eliashberg.main`` (what ``cavity-eliashberg``
runs), in this process: the same argument parsing, study, files and exit codes, without
another interpreter start and JAX import (~5 s each).
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import xarray as xr

from cavity_eliashberg import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "cavity_eliashberg", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        # the test process's import path, so that an uninstalled checkout works too
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )


@pytest.fixture
def in_process(monkeypatch):
    """main() in this process; it replaces warnings.showwarning, which is put back after."""
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    return main


def test_default_study_runs_and_writes_netcdf_and_png(tmp_path, in_process, capsys):
    out = tmp_path / "out"
    run = _cli("run", "--quick", "--no-progress", "--output", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "1.763877" in run.stdout  # the equilibrium gap table: Delta(0) = pi e^-gamma
    with xr.open_dataset(out / "fig1a_quick.nc") as ds:
        exact = ds.relative_gap_change_exact.transpose("cavity_omega0", ...).values
        nonlinear = ds.relative_gap_change_nonlinear.transpose("cavity_omega0", ...).values
        assert np.all(np.isfinite(exact)) and np.all(ds.steady_status.values == "success")
        # physics.md section 6 (cold photons): suppression at omega0 = Delta0,
        # enhancement at omega0 >= 2 Delta0
        w = ds.cavity_omega0.values
        assert np.all(exact[w == 1.0] < 0) and np.all(exact[w >= 2.0] > 0)
        # the nonlinear steady state follows perturbation theory at eta tau_in = 0.0155
        # up to the non-perturbative multimode tail (physics.md sections 8 and 10: a
        # relative departure of several x delta Delta / Delta_0 and more, ~10-20% here)
        assert np.all(np.sign(nonlinear) == np.sign(exact))
        assert np.allclose(nonlinear, exact, rtol=0.3)
        assert ds.cavity_omega0.attrs["units"] == "Delta0"
    assert (out / "fig1a_quick.png").stat().st_size > 10_000
    capsys.readouterr()
    assert in_process(["show", str(out / "fig1a_quick.nc")]) == 0
    assert "model.t_qp" in capsys.readouterr().out
    code = in_process(["plot", str(out / "fig1a_quick.nc"), "--output", str(tmp_path / "p.png")])
    assert code == 0 and (tmp_path / "p.png").exists()


def test_list_shows_every_shipped_study_with_its_title(in_process, capsys):
    assert in_process(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = sorted(p[:-5] for p in os.listdir(os.path.join(ROOT, "runs")) if p.endswith(".toml"))
    assert [line.split()[0] for line in lines] == names  # one line per study
    assert all(len(line.split()) > 1 for line in lines)  # each with its title
    assert any(line.startswith("phonon_bottleneck ") for line in lines)


def test_an_unknown_study_name_is_refused(tmp_path, in_process, capsys):
    assert in_process(["run", "no_such_study", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no_such_study" in err and "fig3" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_a_config_study_runs_end_to_end(tmp_path, in_process, capsys):
    code = in_process(
        [
            "run",
            "transient_switch_on",  # a shipped study, by name
            "--quick",
            "--no-progress",
            "--output",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    with xr.open_dataset(tmp_path / "transient_switch_on_quick.nc") as ds:
        r = ds.relative_gap_change
        before = r.sel(time=slice(None, 0.0)).values
        after = r.sel(time=slice(1.0, None)).values
        assert np.all(np.abs(before) < 1e-12)  # nothing happens before the switch-on
        assert np.all(np.diff(after) > 0) and after[-1] > 0  # cold photons: the gap grows
        assert ds.attrs["config_hash"] and "eta" in ds.attrs["config"]
        assert ds.cavity_eta.sel(time=-100.0) == 0 and ds.cavity_eta.isel(time=-1) > 0
    assert (tmp_path / "transient_switch_on_quick.png").stat().st_size > 10_000

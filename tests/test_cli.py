"""The console script end to end: the default study on a coarse grid, then show and plot."""

import os
import subprocess
import sys

import numpy as np
import xarray as xr


def _cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "solvers._cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        # the test process's import path, so that an uninstalled checkout works too
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
    )


def test_default_study_runs_and_writes_netcdf_and_png(tmp_path):
    out = tmp_path / "out"
    run = _cli("run", "--quick", "--no-progress", "--output", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "1.763877" in run.stdout  # the equilibrium gap table: Delta(0) = pi e^-gamma
    with xr.open_dataset(out / "fig1a.nc") as ds:
        exact = ds.relative_gap_change_exact.values
        nonlinear = ds.relative_gap_change_nonlinear
        assert np.all(np.isfinite(exact))
        # physics.md section 6 (cold photons): suppression at omega0 = Delta0,
        # enhancement at omega0 >= 2 Delta0
        w = ds.omega0_ratio.values
        assert np.all(exact[:, w == 1.0] < 0) and np.all(exact[:, w >= 2.0] > 0)
        # the nonlinear steady state follows perturbation theory at eta tau_in = 0.0155
        # up to the non-perturbative multimode tail (physics.md sections 8 and 10: a
        # relative departure of several x delta Delta / Delta_0 and more, ~10-20% here)
        pert = ds.relative_gap_change_exact.sel(omega0_ratio=nonlinear.omega0_ratio_nonlinear.values)
        assert np.all(np.sign(nonlinear.values) == np.sign(pert.values))
        assert np.allclose(nonlinear.values, pert.values, rtol=0.3)
    assert (out / "fig1a.png").stat().st_size > 10_000
    show = _cli("show", str(out / "fig1a.nc"), cwd=tmp_path)
    assert show.returncode == 0 and "model.t_qp" in show.stdout
    plot = _cli("plot", str(out / "fig1a.nc"), "--output", str(tmp_path / "p.png"), cwd=tmp_path)
    assert plot.returncode == 0 and (tmp_path / "p.png").exists()


def test_configuration_files_are_refused_clearly_for_now(tmp_path):
    run = _cli("run", "some.toml", cwd=tmp_path)
    assert run.returncode != 0
    assert "not supported" in run.stderr

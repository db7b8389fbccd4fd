"""The console script end to end: the default study on a coarse grid, then show and plot.

The default study runs as a separate process (``python -m cavity_eliashberg``: the module
entry point, the process's own import path and exit code). What follows it calls the
console script's function itself, ``cavity_eliashberg.main`` (what ``cavity-eliashberg``
runs), in this process: the same argument parsing, study, files and exit codes, without
another interpreter start and JAX import (~5 s each).
"""

import contextlib
import errno
import io
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pytest
import xarray as xr
from _signals import signal_masks

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
        # [perturbative] refine = 5: the curve is sampled 5x finer; every 5th point is a
        # point of the coarse axis the nonlinear dots use
        fine = ds.relative_gap_change_exact
        step = int(ds.attrs["figure.refine"])
        np.testing.assert_allclose(fine.cavity_omega0_fine.values[::step], ds.cavity_omega0)
        exact = fine.isel(cavity_omega0_fine=slice(None, None, step)).rename(
            cavity_omega0_fine="cavity_omega0"
        ).transpose("cavity_omega0", ...).values
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


# ------------------------------------------------------------------ a new user's mistakes
# (issue 15: no silent nonsense, no tracebacks, nothing lost). The console script runs as a
# process (python -m cavity_eliashberg); the processes of one test run side by side, since
# most of each is the interpreter's and JAX's start (~3 s).

TINY = """
title = "tiny"
compute = ["perturbative"]
[model]
t_qp = 0.9
tau_in = 1000
[grid]
n = 60
[[baths]]
type = "multimode_cavity"
name = "cavity"
omega0 = "3 Delta0"
t_cav = "0.5 T_qp"
eta = "0.0155 / tau_in"
[output]
name = "tiny"
[figure]
kind = "none"
"""
SWEPT = TINY + '[sweep]\n"cavity.omega0" = { values = [2.0, 3.0], unit = "Delta0" }\n'
_NO_DASK = "raise ImportError(\"No module named 'distributed' (hidden by the test)\")\n"


def _env(*extra_path):
    path = [*map(str, extra_path), *(p for p in sys.path if p)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _processes(cases, cwd):
    """Run the console script once per case, side by side; {name: (code, out, err)}."""
    running = {}
    for name, (args, env) in cases.items():
        running[name] = subprocess.Popen(
            [sys.executable, "-m", "cavity_eliashberg", *args], cwd=cwd, env=env or _env(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
    out = {}
    for name, p in running.items():
        o, e = p.communicate(timeout=300)
        out[name] = (p.returncode, o, e)
    return out


@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    """A small result written by the console script (in this process): eta without a unit."""
    folder = tmp_path_factory.mktemp("tiny")
    text = TINY.replace('"0.0155 / tau_in"', "0.0155").replace('kind = "none"', "")
    (folder / "tiny.toml").write_text(text)
    err = io.StringIO()
    out = io.StringIO()
    shown = warnings.showwarning
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["run", str(folder / "tiny.toml"), "--no-progress", "--output",
                         str(folder / "out")])
    finally:
        warnings.showwarning = shown  # main() replaces it
    return folder, code, out.getvalue(), err.getvalue()


def test_values_without_a_unit_are_printed_in_the_units_the_toml_allows(tiny_result):
    _, code, out, _ = tiny_result
    assert code == 0
    # eta = 0.0155 meant as eta tau_in is visible before the result is trusted
    assert "baths.cavity.eta = 0.0155: 0.0155 [dimensionless]; eta tau_in = 15.5" in out
    assert "model.tau_in = 1000: 1000 [hbar/(k_B T_c)]" in out


def test_bad_files_and_refused_options_exit_2_without_a_traceback(tiny_result, tmp_path):
    folder, _, _, _ = tiny_result
    nc = folder / "out" / "tiny.nc"
    png = tmp_path / "figure.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))  # a binary file
    (tmp_path / "tiny.toml").write_text(TINY)
    (tmp_path / "swept.toml").write_text(SWEPT)
    (tmp_path / "quick.toml").write_text(SWEPT + '[quick]\n"grid.n" = 60\n')
    (tmp_path / "normal.toml").write_text(TINY.replace("t_qp = 0.9", "t_qp = 1.2"))
    (tmp_path / "a_folder").mkdir()
    blocker = tmp_path / "no_dask"
    (blocker / "distributed").mkdir(parents=True)
    (blocker / "distributed" / "__init__.py").write_text(_NO_DASK)
    o = ["--no-progress", "--output", str(tmp_path / "o")]
    cases = {
        "png": (["run", str(png), *o], ["figure.png", "not a text file"]),
        "netcdf": (["run", str(nc), *o], ["netCDF result", "cavity-eliashberg show"]),
        "folder": (["run", str(tmp_path / "a_folder"), *o], ["a_folder", "is a folder"]),
        "show toml": (["show", str(tmp_path / "tiny.toml")], ["not a netCDF result", "run"]),
        "show binary": (["show", str(png)], ["figure.png", "not a netCDF result"]),
        "show folder": (["show", str(tmp_path / "a_folder")], ["is a folder"]),
        "normal state": (["run", str(tmp_path / "normal.toml"), *o],
                         ["model.t_qp", "normal state", "allow_normal_state"]),
        "set swept": (["run", str(tmp_path / "swept.toml"), "--set", "cavity.omega0=2.0", *o],
                      ["cavity.omega0", "sweeps", "sweep.cavity.omega0"]),
        "quick without [quick]": (["run", str(tmp_path / "tiny.toml"), "--quick", *o],
                                  ["no [quick] section", "without --quick"]),
        "no dask": (["run", str(tmp_path / "quick.toml"), "--quick", "--workers", "2", *o],
                    ["dask", "pip install"]),
    }
    env = {name: None for name in cases}
    env["no dask"] = _env(blocker)
    done = _processes({k: (args, env[k]) for k, (args, _) in cases.items()}, cwd=tmp_path)
    for name, (_, words) in cases.items():
        code, out, err = done[name]
        assert code == 2, (name, code, err)
        assert "Traceback" not in err + out, (name, err)
        lines = [x for x in err.splitlines() if x and not x.startswith("warning")]
        assert len(lines) == 1 and "error" in lines[0], (name, err)  # one line
        for w in words:
            assert w in err, (name, w, err)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_show_into_a_closed_pipe_is_quiet(tiny_result, tmp_path):
    folder, _, _, _ = tiny_result
    nc = folder / "out" / "tiny.nc"
    # `| head -c 0` exits at once: every write of `show` meets a closed pipe (EPIPE)
    script = (f"{shlex.quote(sys.executable)} -m cavity_eliashberg show {shlex.quote(str(nc))} "
              f"2>err.txt | head -c 0; echo ${{PIPESTATUS[0]}} > code.txt")
    subprocess.run(["bash", "-c", script], cwd=tmp_path, env=_env(), timeout=120, check=True)
    err = (tmp_path / "err.txt").read_text()
    assert (tmp_path / "code.txt").read_text().strip() == "0", err
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == "", err


def test_plot_refuses_to_replace_a_figure_without_overwrite(tiny_result, tmp_path, capsys,
                                                            in_process):
    folder, _, _, _ = tiny_result
    nc = folder / "out" / "tiny.nc"
    png = tmp_path / "p.png"
    png.write_text("an earlier figure")
    assert in_process(["plot", str(nc), "--output", str(png)]) == 2
    err = capsys.readouterr().err
    assert "p.png exists" in err and "--overwrite" in err and "Traceback" not in err
    assert png.read_text() == "an earlier figure"
    assert in_process(["plot", str(nc), "--output", str(png), "--overwrite"]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")


def test_a_full_disk_at_write_time_keeps_the_result_elsewhere(tmp_path, monkeypatch, capsys,
                                                              in_process):
    import cavity_eliashberg._cli as cli

    real_save = cli.save
    out = tmp_path / "out"

    def full_disk(ds, path, **kw):  # the output folder's disk is full; /tmp is not
        if os.path.dirname(os.path.abspath(path)) == str(out):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_save(ds, path, **kw)

    rescue = tmp_path / "system_tmp"
    rescue.mkdir()
    monkeypatch.setattr(cli, "save", full_disk)
    monkeypatch.setattr(tempfile, "tempdir", str(rescue))
    (tmp_path / "tiny.toml").write_text(TINY)
    assert in_process(["run", str(tmp_path / "tiny.toml"), "--no-progress", "--output",
                       str(out)]) == 3
    err = capsys.readouterr().err
    (kept,) = list(rescue.glob("tiny-*.nc"))
    assert "No space left on device" in err and str(kept) in err and "Traceback" not in err
    assert not (out / "tiny.nc").exists()
    with xr.open_dataset(kept) as ds:  # the whole result, readable
        assert np.isfinite(float(ds.relative_gap_change_exact))
        assert ds.attrs["title"] == "tiny"


def _wait_for(condition, seconds, what):
    """Poll `condition` until it holds; a bounded wait (a loaded machine is slow, not stuck)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {seconds} s")
        time.sleep(0.05)


def test_ctrl_c_during_a_sweep_then_the_same_command_resumes(tmp_path):
    # 4800 steady points on a coarse grid in 4 chunks of 1200 (the default: 4 chunks per
    # worker): Ctrl-C as soon as the first chunk is on disk, with 3600 points still to do.
    # With the compilation cache warm a point takes milliseconds: with 16 and then 48
    # points the rest was done before the signal was handled and the run ended with 0
    # (seen on a loaded machine), and with 480 points in the CI of 2026-12-03 (twice)
    npts = 4800
    omegas = ", ".join(f"{2.0 + 0.0005 * k:.4f}" for k in range(npts))
    text = SWEPT.replace('compute = ["perturbative"]', 'compute = ["steady"]').replace(
        "values = [2.0, 3.0]", f"values = [{omegas}]"
    )
    (tmp_path / "sweep.toml").write_text(text)
    args = [sys.executable, "-m", "cavity_eliashberg", "run", "sweep.toml", "--no-progress",
            "--output", "o"]
    p = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    parts = tmp_path / "o" / ".tiny.sweep.steady.nc.parts"
    try:
        # the real sign of progress, however loaded the machine: a finished chunk
        _wait_for(lambda: p.poll() is not None or any(parts.glob("part-*.nc")), 300,
                  "finished chunk")
        assert p.poll() is None, "the sweep ended before the signal"
        masks = f"child: {signal_masks(p.pid)}; this process: {signal_masks('self')}"
        for _ in range(30):  # Ctrl-C (again if one lands where Python cannot raise it)
            p.send_signal(signal.SIGINT)
            try:
                out, err = p.communicate(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            pytest.fail("the sweep did not stop after 30 Ctrl-C in 150 s")
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, f"{masks}\n{err}"
    assert "Traceback" not in err
    (message,) = [x for x in err.splitlines() if "interrupted" in x]  # one line
    assert "resume with: cavity-eliashberg run sweep.toml --no-progress --output o" in message
    assert "kept:" in message and "finished chunk(s)" in message, message
    again = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr
    # finished chunks were kept: the rerun says it resumes from them
    assert "resuming from an earlier, interrupted run" in again.stdout
    with xr.open_dataset(tmp_path / "o" / "tiny.nc") as ds:
        assert list(ds.steady_status.values) == ["success"] * npts

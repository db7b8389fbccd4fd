"""`cavity-eliashberg show FILE`: the first screen is what a physicist copies into a
notebook (sweep axes with values and units, peak and sign changes, the 10 % crossing of
perturbation_check, fitted times, stored warnings), read from small synthetic study
datasets; and Ctrl-C stops a run inside a long compiled call within seconds (exit 130)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import xarray as xr
from _signals import signal_masks

from cavity_eliashberg._cli import main

ROOTS = {0.0: 1.3, 0.5: 1.15}  # the known zero of each curve of the gap-change study


@pytest.fixture
def show(monkeypatch, capsys):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it

    def run(ds: xr.Dataset, path) -> str:
        ds.to_netcdf(path, engine="netcdf4")
        capsys.readouterr()
        assert main(["show", str(path)]) == 0
        return capsys.readouterr().out

    return run


def _study(**attrs) -> dict:
    return {"kind": "study", "units": "hbar = k_B = 1", "config_hash": "abc", **attrs}


def _gap_change_study() -> xr.Dataset:
    w = np.linspace(0.5, 6.0, 23)  # every 0.25 Delta_0, like fig1a
    t = np.array([0.0, 0.5])
    y = np.stack([(w - ROOTS[c]) * np.exp(-w / 3.0) * 1e-2 * (1 - c) for c in t], axis=1)
    status = np.full(y.shape, "success", dtype=object)
    message = np.full(y.shape, "", dtype=object)
    status[3, 1], message[3, 1] = "failed", "Newton did not converge at this point"
    ds = xr.Dataset(
        {
            "relative_gap_change_exact": (("cavity_omega0", "cavity_t_cav"), y, {"units": "1"}),
            "drive_power": (("cavity_omega0", "cavity_t_cav"), np.ones_like(y), {"units": ""}),
            "steady_status": (("cavity_omega0", "cavity_t_cav"), status.astype(str)),
            "steady_message": (("cavity_omega0", "cavity_t_cav"), message.astype(str)),
        },
        coords={
            "cavity_omega0": ("cavity_omega0", w, {"units": "Delta0",
                                                   "long_name": "cavity.omega0"}),
            "cavity_t_cav": ("cavity_t_cav", t, {"units": "T_qp", "long_name": "cavity.t_cav"}),
        },
        attrs=_study(
            title="synthetic gap change", compute="perturbative,steady",
            sweep="cavity.omega0,cavity.t_cav", **{"figure.kind": "gap_change",
                                                   "figure.x": "cavity_omega0"},
            warnings="perturbation theory is stretched here | a second stored warning",
        ),
    )
    return ds


def test_show_prints_axes_peak_sign_changes_and_warnings_first(show, tmp_path):
    ds = _gap_change_study()
    out = show(ds, tmp_path / "gap.nc")
    first = out[: out.index("variables:")]  # the first screen, before the full listing
    assert "cavity_omega0 [Delta0]: 0.5, 0.75, " in first and "6 (23 values)" in first
    assert "cavity_t_cav [T_qp]: 0, 0.5 (2 values)" in first
    # the peak |delta Delta / Delta_0| and where it is
    y = ds.relative_gap_change_exact.values
    i, j = np.unravel_index(np.argmax(np.abs(y)), y.shape)
    (peak,) = [line for line in first.splitlines() if line.strip().startswith("peak")]
    assert f"{y[i, j]:+.4g}" in peak
    assert f"cavity_omega0 = {ds.cavity_omega0.values[i]:g} Delta0" in peak
    assert f"cavity_t_cav = {ds.cavity_t_cav.values[j]:g} T_qp" in peak
    # sign changes from a root find, to 1e-3 of the known zeros
    for c, root in ROOTS.items():
        (line,) = [x for x in first.splitlines() if x.strip().startswith(f"cavity_t_cav = {c:g}:")]
        (z,) = [float(v) for v in line.split(":")[1].split(",")]
        assert abs(z - root) < 1e-3, line
    # the stored warnings and the failed point
    assert "perturbation theory is stretched here" in first
    assert "a second stored warning" in first
    assert "1 of 46 steady point(s) failed" in first and "Newton did not converge" in first
    # a refined perturbative curve ([perturbative] refine): the root find uses the fine axis
    fine = np.linspace(0.5, 6.0, 111)
    yf = (fine - ROOTS[0.0]) * np.exp(-fine / 3.0) * 1e-2
    refined = ds.drop_vars("relative_gap_change_exact").assign(
        relative_gap_change_exact=(("cavity_omega0_fine",), yf, {"units": "1"})
    ).assign_coords(cavity_omega0_fine=("cavity_omega0_fine", fine, {"units": "Delta0"}))
    refined.attrs["figure.fine_x"] = "cavity_omega0_fine"
    text = show(refined, tmp_path / "fine.nc")
    assert "sampled finer, over cavity_omega0_fine: 111 values" in text
    (line,) = [x for x in text.splitlines() if "sign changes" in x]
    assert abs(float(line.split(":")[1]) - ROOTS[0.0]) < 1e-4, line
    # dimensionless variables carry no empty brackets
    assert "[]" not in out
    assert re.search(r"drive_power \(cavity_omega0, cavity_t_cav\): from 1 to 1\n", out)
    # the old sections are still there, after the results
    assert out.index("about:") > out.index("warnings stored with the result")
    assert "config_hash = abc" in out


def test_show_prints_the_ten_percent_crossing_of_a_coupling_study(show, tmp_path):
    eta = np.logspace(-4, 0, 13)
    crossing = 0.0316  # the relative difference grows linearly: 10 % at this coupling
    pert = 1.4 * eta
    nonlinear = pert * (1.0 - 0.1 * eta / crossing)
    ds = xr.Dataset(
        {"relative_gap_change_exact": ("cavity_eta", pert, {"units": "1"}),
         "relative_gap_change_nonlinear": ("cavity_eta", nonlinear, {"units": "1"})},
        coords={"cavity_eta": ("cavity_eta", eta, {"units": "/tau_in"})},
        attrs=_study(title="synthetic coupling", compute="perturbative,steady",
                     sweep="cavity.eta", **{"figure.kind": "coupling", "figure.x": "cavity_eta"}),
    )
    out = show(ds, tmp_path / "coupling.nc")
    assert "cavity_eta [/tau_in]: 0.0001, 0.000215443, " in out and "(13 values)" in out
    assert "log-spaced" in out
    (line,) = [x for x in out.splitlines() if "first differ by 10 %" in x]
    z = float(re.search(r"cavity_eta = ([0-9.eE+-]+) /tau_in", line).group(1))
    assert abs(z - crossing) < 1e-3 * crossing, line
    assert "warnings stored with the result: none" in out
    assert "[]" not in out


def test_show_prints_fitted_and_slowest_times_with_units(show, tmp_path):
    tau_b = np.array([0.1, 1.0, 10.0])
    unit = "hbar/(k_B T_c)"
    ds = xr.Dataset(
        {"decay_time": ("phonons_dynamic_tau_b", np.array([1.2e7, 2.2e7, 1.2e8]), {"units": unit}),
         "slowest_time_ratio": ("phonons_dynamic_tau_b", np.array([1.1, 2.0, 11.0]),
                                {"units": "1"}),
         "rothwarf_taylor_slope_ratio": ((), 0.99, {"units": "1"}),
         "tau_cav_half": ((), 3.5e4, {"units": "tau0_ph", "analysis": "crossing"})},
        coords={"phonons_dynamic_tau_b": ("phonons_dynamic_tau_b", tau_b, {"units": "tau0_ph"})},
        attrs=_study(title="synthetic decay", compute="evolve", sweep="phonons.dynamic.tau_b",
                     **{"figure.kind": "decay", "model.t_c": "1.19 K"}),
    )
    out = show(ds, tmp_path / "decay.nc")
    first = out[: out.index("variables:")]
    line = next(x for x in first.splitlines() if x.strip().startswith("decay_time"))
    assert "[hbar/(k_B T_c)]" in line and "1.2e+07, 2.2e+07, 1.2e+08" in line
    assert "(= 77 us, 141 us, 770 us at T_c = 1.19 K)" in line  # 1.2e7 hbar/(k_B 1.19 K)
    assert "slowest_time_ratio over phonons_dynamic_tau_b: 1.1, 2, 11" in first
    assert "rothwarf_taylor_slope_ratio: 0.99" in first
    assert "tau_cav_half [tau0_ph]: 3.5e+04" in first
    assert "[]" not in out


# ------------------------------------------------------------------ Ctrl-C


SLOW = """
title = "slow on purpose"
compute = ["evolve"]
[model]
t_qp = 0.9
tau_in = 1000
[grid]
n = 600
[[baths]]
type = "multimode_cavity"
name = "cavity"
omega0 = "3 Delta0"
t_cav = "0.5 T_qp"
eta = "0.0155 / tau_in"
[evolve]
t_end = 3e7
n_save = 2
[output]
name = "slow"
[figure]
kind = "none"
"""


def test_ctrl_c_stops_a_run_inside_one_long_compiled_call_within_seconds(tmp_path):
    # two save times: the whole evolution is one compiled call; over t_end = 3e6 it took
    # ~20 s and more uninterrupted, and t_end = 3e7 takes at least as long (ten times the
    # steps, or max_steps = 200 000 of them first), so that a deadline generous enough for
    # a loaded machine still tells "stops within seconds" from "waits for the call". Before
    # the work ran in a worker thread, Ctrl-C waited for the call to return.
    (tmp_path / "slow.toml").write_text(SLOW)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    p = subprocess.Popen(
        [sys.executable, "-m", "cavity_eliashberg", "run", "slow.toml", "--no-progress",
         "--output", "o"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = queue.Queue()

    def read_stdout():
        for x in p.stdout:
            lines.put(x)
        lines.put(None)  # the end of its output

    threading.Thread(target=read_stdout, daemon=True).start()
    try:
        deadline = time.monotonic() + 300  # a bounded wait: interpreter and JAX start
        line = ""
        while "point(s)" not in line:  # the study has started
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "the run ended before it started: " + p.stderr.read()
        # then tracing and compiling (a few s), and the call itself (minutes)
        time.sleep(3.0)
        assert p.poll() is None, "the run ended before the signal"
        masks = f"child: {signal_masks(p.pid)}; this process: {signal_masks('self')}"
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        try:
            p.wait(timeout=15)  # stdout goes to the reader thread, stderr is read below
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not stop within 15 s of Ctrl-C ({masks})")
        elapsed = time.monotonic() - sent
        err = p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert elapsed < 15.0
    assert "Traceback" not in err
    (message,) = [x for x in err.splitlines() if "interrupted" in x]
    assert "resume with: cavity-eliashberg run slow.toml --no-progress --output o" in message
    assert not (tmp_path / "o" / "slow.nc").exists()

"""Continuation up and down a swept parameter (``sweep(..., direction=...)``) and the
hysteresis between the two branches (``solvers.hysteresis``).

The bistable case is the drive-induced first-order transition of docs/physics.md section 2:
a film near T_c under a sub-gap drive (omega_d = 0.15, P tau_in = 0.08, tau_in = 1000),
here on a small grid (N = 60) so that the module stays fast. Its upper (gapped) branch ends
where 2 Delta falls to omega_d: the drive starts breaking pairs and the gap collapses
(the smallest eigenvalue of the steady-state Jacobian stays at ~-0.09 / tau_in up to there:
not a saddle-node). The check of the turning point below uses that threshold, which the
hysteresis code knows nothing about.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import xarray as xr

import kinetics
import solvers

N = 60
OMEGA_D = 0.15
POWER = 8e-5  # P tau_in = 0.08
# from below T_c (a cold start there lands on the gapped branch) to above the loop
BRANCHES, SIDES = ("up", "down"), ("on_branch", "off_branch")
T_LOOP = np.round(np.arange(0.998, 1.0125, 0.001), 6)


def driven(t_qp, *, power=POWER, n=N):
    drive = kinetics.ClassicalDrive(omega_d=OMEGA_D, power=power)
    return kinetics.Model(t_qp=t_qp, tau_in=1000.0, baths=(drive,), grid=kinetics.Grid(n=n))


# Without the solver's fallback (a continuation in the drive from the thermal state, tried
# where Newton from the previous state fails): its program takes ~40 s to compile on a
# loaded 2-core machine, about half of this module's time. A point where the continuation
# jumps to the other branch may then fail (Newton from a state far from the new one); the
# next point starts cold, and hysteresis() does not judge failed points. With the fallback
# (the default) the same brackets come out (measured, see the report of issue 19).
OPTIONS = {"continuation_steps": 0}


def _sweep(ts, direction, factory=driven, **kw):
    return solvers.sweep(factory, {"t_qp": ts}, continuation="t_qp", direction=direction,
                         options=OPTIONS, workers=1, progress=False, **kw)


@pytest.fixture(scope="module")
def loop():
    return _sweep(T_LOOP, "both")


def test_both_branches_of_the_bistable_film_and_their_turning_points(loop):
    ds = loop
    assert ds.gap.dims == ("t_qp", "branch")
    assert list(ds.branch.values) == ["up", "down"]
    assert "direction of the continuation" in ds.branch.attrs["long_name"]
    up, down = ds.gap.sel(branch="up").values, ds.gap.sel(branch="down").values
    # two branches: inside the loop the up branch keeps a gap of O(0.1), the down branch is
    # (almost) normal; the largest difference is far above any tolerance
    assert np.max(up - down) > 0.1
    tp = ds.hysteresis_turning_point
    assert tp.attrs["units"] == ds.t_qp.attrs["units"]
    up_on, up_off = tp.sel(branch="up").values
    down_on, down_off = tp.sel(branch="down").values
    step = 0.001
    # every point converged but, possibly, the one where each continuation left its branch
    ok = ds.status == "success"
    assert ok.sel(t_qp=T_LOOP[(T_LOOP != up_off) & (T_LOOP != down_off)]).all()
    assert ok.sel(branch="up", t_qp=up_on) and ok.sel(branch="down", t_qp=down_on)
    up, down = np.where(ok, ds.gap, np.nan).T
    # brackets of one grid step, the up one above the down one (a loop, not a crossing)
    assert up_off - up_on == pytest.approx(step) and down_on - down_off == pytest.approx(step)
    assert up_on > down_on
    assert ds.hysteresis_interval.values.tolist() == [down_on, up_on]
    assert int(ds.hysteresis_points) == round((up_on - down_on) / step) + 1
    # the bracket convention checked on the data: the branches agree outside [down_on,
    # up_on] (within 1e-8 k_B T_c, above the solver's error: tol 1e-10 / (smallest
    # |eigenvalue| tau_in ~0.08) ~1.3e-9 in n, times |dDelta/dn| <= 3) and differ by more
    # than 1e-3 inside it
    inside = (T_LOOP >= down_on - 1e-9) & (T_LOOP <= up_on + 1e-9)
    agree = np.abs(up - down)[~inside]
    assert np.all(agree[np.isfinite(agree)] < 1e-8)
    assert np.all(np.abs(up - down)[inside] > 1e-3)

    # Independent check of the up turning point: the upper branch ends where the
    # pair-breaking threshold 2 Delta = omega_d is reached (the drive's absorption
    # jumps there). Delta(T) on the upper branch, extrapolated quadratically from its
    # last three points, reaches omega_d / 2 inside the bracket or within one step of it.
    on_branch = T_LOOP <= up_on + 1e-9
    t3, g3 = T_LOOP[on_branch][-3:], up[on_branch][-3:]
    assert np.all(2 * g3 > OMEGA_D)  # still above the threshold on the branch
    roots = np.roots(np.polyfit(t3 - t3[-1], g3 - OMEGA_D / 2, 2)).real + t3[-1]
    t_star = roots[(roots > t3[-1] - step) & (roots < t3[-1] + 3 * step)]
    assert t_star.size == 1
    assert up_on - step <= t_star[0] <= up_off + step
    # and the down branch is gapless-like (2 Delta well below omega_d) up to its turning
    # point from above: it is not the same state
    assert np.all(2 * down[inside] < OMEGA_D / 2)


@pytest.mark.slow  # ~40 s under load: the structured Jacobian evaluated op by op
def test_the_upper_branch_is_linearly_stable_up_to_its_end(loop):
    """Not a saddle-node: the smallest |eigenvalue| of the steady-state Jacobian at the last
    point on the upper branch is still ~0.09 / tau_in (a fold would send it to zero as
    sqrt(T* - T); one grid step, 1e-3, before a fold it would be ~0.01-0.03 / tau_in
    given the 0.075-0.09 / tau_in measured 10 steps earlier)."""
    up_on = float(loop.hysteresis_turning_point.sel(branch="up", side="on_branch"))
    model = driven(up_on)
    y = loop.n.sel(branch="up", t_qp=up_on).values
    jac = np.asarray(model.jacobian(0.0, y)) * model.tau_in
    lam = np.linalg.eigvals(jac)
    smallest = lam[np.argmin(np.abs(lam))]
    assert smallest.real < -0.05  # stable, and far from 0


def test_down_follows_the_line_in_reverse_and_equals_up_on_a_single_branch():
    ts = np.round(np.arange(0.990, 0.9965, 0.001), 6)  # below the loop: one branch
    calls = []

    def recording(t_qp):
        calls.append(t_qp)
        return driven(t_qp)

    up = _sweep(ts, "up", recording)
    up_calls, calls[:] = list(calls), []
    down = _sweep(ts, "down", recording)
    down_calls = list(calls)
    # the first call is the probe of the first pending point; then the points in the
    # order they are solved
    assert up_calls[1:] == ts.tolist()
    assert down_calls[1:] == ts[::-1].tolist()
    assert (up.status == "success").all() and (down.status == "success").all()
    # the same states reached from two sides: equal to the solver's accuracy (tol 1e-10
    # leaves a state ~1e-10 / 0.08 off its root, 0.08 the smallest |eigenvalue| tau_in
    # there; times |dDelta/dn| <= 3: 4e-9 < 1e-8)
    np.testing.assert_allclose(down.gap.values, up.gap.values, rtol=0, atol=1e-8)
    assert up.attrs["sweep.direction"] == "up" and down.attrs["sweep.direction"] == "down"
    assert up.attrs["sweep.digest"] != down.attrs["sweep.digest"]


def test_without_a_drive_both_directions_agree_and_no_loop_is_reported():
    """The thermal film (drive power 0) below T_c: one branch, the BCS gap on the grid.

    (Not through T_c: continued down from the normal state, Newton cannot leave Delta = 0,
    where the gap's derivative term of the Jacobian vanishes, and the first point below
    T_c fails without the fallback that OPTIONS turns off.)"""
    ts = np.round(np.arange(0.950, 0.9905, 0.01), 6)
    ds = _sweep(ts, "both", functools.partial(driven, power=0.0))
    assert (ds.status == "success").all()
    delta0 = np.asarray([float(driven(t, power=0.0).delta0) for t in ts])
    for b in ("up", "down"):  # the equilibrium gap of the model's own grid, to 1e-8
        np.testing.assert_allclose(ds.gap.sel(branch=b).values, delta0, rtol=0, atol=1e-8)
    assert int(ds.hysteresis_points) == 0
    assert np.isnan(ds.hysteresis_turning_point.values).all()
    assert np.isnan(ds.hysteresis_interval.values).all()


def test_a_both_sweep_resumes_from_its_file_and_refuses_another_direction(tmp_path):
    ts = np.round(np.arange(0.990, 0.9925, 0.001), 6)
    out = tmp_path / "both.nc"
    first = _sweep(ts, "both", output=out)
    again = _sweep(ts, "both", output=out)
    assert again.attrs["sweep.run_id"] == first.attrs["sweep.run_id"]  # loaded, not rerun
    assert again.gap.dims == ("t_qp", "branch")
    with pytest.raises(kinetics.ParameterError, match="another sweep"):
        _sweep(ts, "down", output=out)


# ---------------------------------------------------------------------------
# the bracket convention and the checks, without a solver
# ---------------------------------------------------------------------------


def _two_branches(up, down, status=None, x=None):
    x = np.arange(len(up), dtype=float) if x is None else np.asarray(x, dtype=float)
    data = {"gap": (("t_qp", "branch"), np.stack([up, down], axis=-1))}
    if status is not None:
        data["status"] = (("t_qp", "branch"), np.asarray(status, dtype=object))
    ds = xr.Dataset(data, coords={"t_qp": x, "branch": ["up", "down"]})
    ds.t_qp.attrs["units"] = "T_c"
    return ds


def test_hysteresis_brackets_on_constructed_branches():
    x = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    h = solvers.hysteresis(_two_branches([1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0], x=x), "t_qp")
    np.testing.assert_allclose(h.hysteresis_turning_point.sel(branch="up"), [1.3, 1.4])
    np.testing.assert_allclose(h.hysteresis_turning_point.sel(branch="down"), [1.1, 1.0])
    np.testing.assert_allclose(h.hysteresis_interval, [1.1, 1.3])
    assert int(h.hysteresis_points) == 3
    assert h.hysteresis_turning_point.attrs["units"] == "T_c"
    # the up branch never leaves within the axis: its off_branch end is NaN
    h = solvers.hysteresis(_two_branches([1, 1, 1], [1, 0, 0]), "t_qp")
    assert np.isnan(float(h.hysteresis_turning_point.sel(branch="up", side="off_branch")))
    # a failed point is not judged (its value does not make a loop)
    h = solvers.hysteresis(_two_branches([1, 1, 5, 1], [1, 1, 1, 1],
                                         status=[["success"] * 2] * 2 + [["failed", "success"]]
                                         + [["success"] * 2]), "t_qp")
    assert int(h.hysteresis_points) == 0
    # differences below the tolerance are agreement: 1e-7 < the default 1e5 tol = 1e-5
    h = solvers.hysteresis(_two_branches([1.0, 1.0 + 1e-7], [1.0, 1.0]), "t_qp")
    assert int(h.hysteresis_points) == 0
    h = solvers.hysteresis(_two_branches([1.0, 1.0 + 1e-7], [1.0, 1.0]), "t_qp", rtol=1e-9)
    assert int(h.hysteresis_points) == 1


def test_hysteresis_keeps_the_other_dimensions():
    up = np.ones((3, 4))
    down = np.ones((3, 4))
    down[1, 1:3] = 0.0  # the line power = 1 has a loop at t_qp = 1, 2
    ds = xr.Dataset({"gap": (("power", "t_qp", "branch"), np.stack([up, down], axis=-1))},
                    coords={"power": [0.0, 1.0, 2.0], "t_qp": np.arange(4.0),
                            "branch": ["up", "down"]})
    h = solvers.hysteresis(ds, "t_qp")
    assert h.hysteresis_turning_point.dims == ("power", "branch", "side")
    assert h.hysteresis_points.values.tolist() == [0, 2, 0]
    np.testing.assert_allclose(h.hysteresis_turning_point.sel(power=1.0), [[2, 3], [1, 0]])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"direction": "sideways"}, ["direction", "'up', 'down', 'both'", "sideways"]),
        ({"direction": ["up"]}, ["direction", "['up']"]),
        ({"direction": "down", "continuation": None}, ["direction='down'", "continuation"]),
        ({"direction": "both", "continuation": None}, ["direction='both'", "continuation"]),
        ({"direction": "both", "kind": "evolve", "options": {"t_save": [1.0]}},
         ["continuation", "steady"]),
    ],
)
def test_bad_direction_is_refused_before_any_work(kwargs, words):
    calls = []

    def factory(t_qp):  # never called: the checks come first
        calls.append(t_qp)
        return driven(t_qp)

    kw = {"continuation": "t_qp", **kwargs}
    with pytest.raises(kinetics.ParameterError) as err:
        solvers.sweep(factory, {"t_qp": [0.99, 0.995]}, workers=1, progress=False, **kw)
    for w in words:
        assert w in str(err.value)
    assert not calls


@pytest.mark.parametrize(
    ("args", "kwargs", "words"),
    [
        ((xr.Dataset({"gap": ("t_qp", [1.0, 2.0])}), "t_qp"), {}, ["branch", "direction='both'"]),
        ((_two_branches([1, 1], [1, 1]), "power"), {}, ["dim", "t_qp", "'power'"]),
        ((_two_branches([1, 1], [1, 1]), "branch"), {}, ["dim", "'branch'"]),
        ((_two_branches([1, 1], [1, 1]), "t_qp"), {"variable": "n_qp"}, ["variable", "n_qp"]),
        ((_two_branches([1, 1], [1, 1]), "t_qp"), {"rtol": -1.0}, ["rtol", "-1.0"]),
        (({"gap": 1}, "t_qp"), {}, ["xarray.Dataset", "dict"]),
    ],
)
def test_bad_hysteresis_arguments_are_refused(args, kwargs, words):
    with pytest.raises(kinetics.ParameterError) as err:
        solvers.hysteresis(*args, **kwargs)
    for w in words:
        assert w in str(err.value)


# ---------------------------------------------------------------------------
# studies: [steady] direction
# ---------------------------------------------------------------------------

STUDY = """
title = "drive-induced hysteresis near T_c (test)"
compute = ["steady"]

[model]
t_qp = 0.998
tau_in = 1000
allow_normal_state = true

[grid]
n = 60

[[baths]]
type = "classical_drive"
name = "drive"
omega_d = 0.15
power = 8e-5

[sweep]
"model.t_qp" = { values = [0.998, 1.001, 1.004, 1.007, 1.010, 1.013] }

[steady]
continuation = "model.t_qp"
direction = "both"
continuation_steps = 0
"""


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"direction": "sideways"}, ["steady.direction", "up", "both"]),
        ({"continuation": None}, ["steady.direction", "'both'", "steady.continuation"]),
    ],
)
def test_a_bad_study_direction_is_refused(change, words):
    from cavity_eliashberg import ConfigError, load_config

    raw = load_config(STUDY)[1]
    raw = {k: v for k, v in raw.items() if not k.startswith("_")}
    steady = {**raw["steady"], **change}
    raw["steady"] = {k: v for k, v in steady.items() if v is not None}
    with pytest.raises(ConfigError) as err:
        load_config(raw)
    for w in words:
        assert w in str(err.value)


def test_a_study_continued_both_ways_keeps_both_branches_and_draws_them(loop):
    """[steady] direction = "both" through the study runner (same model and options as
    the module's sweep: its compiled programs are reused) and the gap_change figure."""
    from cavity_eliashberg import load_config, run_study
    from cavity_eliashberg._figures import figure

    cfg, raw = load_config(STUDY)
    ds = run_study(cfg, raw, progress=False)
    dim = [d for d in ds.gap_nonlinear.dims if d != "branch"][0]
    assert ds.gap_nonlinear.dims == (dim, "branch")
    assert ds.steady_status.dims == (dim, "branch")
    tp = ds.hysteresis_turning_point
    assert tp.dims == ("branch", "side") and tp.attrs["units"] == ds[dim].attrs["units"]
    # the study's coarse grid (steps of 0.003) brackets the module's finer loop
    coarse = {(b, s): float(tp.sel(branch=b, side=s)) for b in BRANCHES for s in SIDES}
    fine = {(b, s): float(loop.hysteresis_turning_point.sel(branch=b, side=s))
            for b in BRANCHES for s in SIDES}
    eps = 1e-9  # the study's axis values pass through unit conversion
    assert coarse["up", "on_branch"] <= fine["up", "on_branch"] + eps
    assert coarse["up", "off_branch"] >= fine["up", "off_branch"] - eps
    assert coarse["down", "on_branch"] >= fine["down", "on_branch"] - eps
    fig = figure(ds)
    try:
        (ax,) = fig.axes
        styles = sorted(ln.get_linestyle() for ln in ax.get_lines() if len(ln.get_xdata()) > 2)
        assert styles == ["-", "--"]  # the up branch solid, the down one dashed
        colours = {tuple(ln.get_color()) for ln in ax.get_lines() if len(ln.get_xdata()) > 2}
        assert len(colours) == 1  # one curve, one colour
        assert len(ax.patches) == 2  # the two turning-point brackets, shaded
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)

"""The figures (cavity_eliashberg._figures) on small synthetic datasets: what a reader sees.

No study runs here: each test builds the few variables and attributes a figure kind reads
and asserts on the matplotlib artists of the figure (or on a helper's output).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.cbook import STEP_LOOKUP_MAP  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402

from cavity_eliashberg import _figures as figures  # noqa: E402

BASE_ATTRS = {"title": "synthetic", "model.t_qp": 0.9, "model.tau_in": 1000.0,
              "model.grid.n": 60}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _coord(name, values, long_name, units):
    return xr.DataArray(np.asarray(values, float), dims=(name,),
                        attrs={"long_name": long_name, "units": units})


def _texts(fig) -> list[str]:
    """Every piece of text a reader sees: titles, axis labels, legends, annotations."""
    out = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        out.append(fig._suptitle.get_text())
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        out += [t.get_text() for t in ax.texts]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return out


# ------------------------------------------------------------------ synthetic datasets


def _gap_change_ds(curve_units="T_qp"):
    w = np.arange(1.0, 4.01, 0.5)
    r = np.array([0.0, 0.5])
    y = np.array([(w - 1.3 - 0.1 * k) * (1.0 + 0.05 * w) * 1e-3 for k in range(2)]).T
    ds = xr.Dataset(
        {
            "relative_gap_change_exact": (("cavity_omega0", "cavity_t_cav"), y),
            "relative_gap_change_gl": (("cavity_omega0", "cavity_t_cav"), 0.98 * y),
            "relative_gap_change_nonlinear": (("cavity_omega0", "cavity_t_cav"), 1.01 * y),
        },
        coords={
            "cavity_omega0": _coord("cavity_omega0", w, "cavity.omega0", "Delta0"),
            "cavity_t_cav": _coord("cavity_t_cav", r, "cavity.t_cav", curve_units),
        },
        attrs={**BASE_ATTRS, "figure.kind": "gap_change", "figure.x": "cavity_omega0"},
    )
    return ds


def _map_ds(tol_attrs=None):
    w = np.arange(1.0, 6.01, 0.5)
    r = np.linspace(0.0, 1.0, 5)
    z = np.empty((w.size, r.size))
    for j, rj in enumerate(r):
        z[:, j] = (w - 1.3) * (1.0 - rj) * 1e-2  # a genuine sign change near w = 1.3
    # detailed balance: the T_cav = T_qp column is zero up to rounding, of either sign
    z[:, -1] = 2.4e-16 * np.where(np.arange(w.size) % 2 == 0, 1.0, -1.0)
    return xr.Dataset(
        {"relative_gap_change_nonlinear": (("cavity_omega0", "cavity_t_cav"), z)},
        coords={
            "cavity_omega0": _coord("cavity_omega0", w, "cavity.omega0", "Delta0"),
            "cavity_t_cav": _coord("cavity_t_cav", r, "cavity.t_cav", "T_qp"),
        },
        attrs={**BASE_ATTRS, "figure.kind": "map", "figure.x": "cavity_omega0",
               **(tol_attrs or {})},
    )


def _transient_ds(profile="step"):
    tau = 1000.0
    if profile == "step":
        time = np.linspace(-0.5, 2.0, 26) * tau
        values = np.where(time < 0.0, 0.0, 1.55e-5)
        name, source = "cavity_eta", "Step(after=1.55e-05, t_on=0.0, before=0.0)"
        gap = np.where(time < 0, 0.0, 1.0 - np.exp(-np.clip(time, 0, None) / tau)) * 1e-2
    else:
        time = np.linspace(0.0, 5.0, 26) * tau
        values = 2e-5 * np.exp(-0.5 * ((time - 3 * tau) / tau) ** 2)
        name, source = "drive_power", "GaussianPulse(peak=2e-05, t0=3000.0, sigma=1000.0, base=0.0)"
        gap = 1.4e-2 * np.exp(-0.5 * ((time - 4 * tau) / (1.5 * tau)) ** 2)
    xi = np.linspace(0.0, 10.0, 40)
    delta0 = 0.93
    dn = np.outer(gap, -np.exp(-xi))
    names = name.split("_")[0]
    field = name[len(names) + 1:]
    return xr.Dataset(
        {
            "gap": (("time",), delta0 * (1 + gap)),
            "relative_gap_change": (("time",), gap),
            "n_qp": (("time",), 1.74 * (1 - 0.5 * gap)),
            "energy": (("time",), 2.8 * (1 - 0.5 * gap)),
            name: (("time",), values, {"long_name": name, "units": "1"}),
            "delta_n": (("time", "xi"), dn),
            "delta0": ((), delta0),
        },
        coords={"time": time, "xi": xi},
        attrs={**BASE_ATTRS, "figure.kind": "transient", "baths.names": names,
               f"baths.0.{field}": source, "figure.snapshots": [0.5 * tau, 2.0 * tau]},
    )


def _decay_ds():
    x = np.array([0.1, 1.0, 10.0])
    static = 1.0e7
    taus = static * (1.0 + x)
    time = np.concatenate([[0.0], np.geomspace(1e5, 4.2 * taus[-1], 120)])
    frac = np.exp(-time[None, :] / taus[:, None])
    frac[frac < 1e-9] = -3e-10  # the solver's noise once the excess is gone
    static_frac = np.exp(-time / static)
    static_frac[static_frac < 1e-9] = 1e-10
    ds = xr.Dataset(
        {
            "decay_excess_fraction": (("phonons_dynamic_tau_b", "time"), frac),
            "decay_excess_fraction_static": (("time",), static_frac),
            "slowest_time": (("phonons_dynamic_tau_b",), taus),
            "slowest_time_static": ((), static),
            "slowest_time_ratio": (("phonons_dynamic_tau_b",), taus / static),
            "decay_time": (("phonons_dynamic_tau_b",), 1.01 * taus),
        },
        coords={
            "phonons_dynamic_tau_b": _coord("phonons_dynamic_tau_b", x, "phonons.dynamic.tau_b",
                                            "tau0_ph"),
            "time": time,
        },
        attrs={**BASE_ATTRS, "model.tau_in": "none", "figure.kind": "decay",
               "figure.x": "phonons_dynamic_tau_b"},
    )
    return ds


# ------------------------------------------------------------------ 6. sign changes


def test_sign_change_of_a_coarsely_sampled_cubic_from_a_root_find():
    x = np.linspace(0.0, 3.0, 7)  # h = 0.5
    y = x**3 - 2.0
    root = 2.0 ** (1.0 / 3.0)
    k = 2  # the bracket [1.0, 1.5]
    linear = x[k] - y[k] * (x[k + 1] - x[k]) / (y[k + 1] - y[k])
    assert abs(linear - root) > 1e-3  # straight-line interpolation is not good enough
    zs = figures.sign_changes(x, y)
    assert isinstance(zs, list) and all(isinstance(z, float) for z in zs)
    assert len(zs) == 1 and abs(zs[0] - root) < 1e-3


def test_sign_changes_of_a_sampled_sine():
    x = np.arange(0.0, 9.01, 0.5)
    zs = figures.sign_changes(x, np.sin(x))
    assert np.allclose(zs, [np.pi, 2 * np.pi], atol=1e-3)
    assert abs(3.0 + 0.5 * np.sin(3.0) / (np.sin(3.0) - np.sin(3.5)) - np.pi) > 1e-3


def test_sign_changes_edge_cases():
    # no zero is sought across a failed (NaN) point; the stretches on either side count
    assert figures.sign_changes([0, 1, 2, 3, 4], [-1, np.nan, 1, 2, -2]) == pytest.approx([3.5])
    # an exact zero between opposite signs is a zero; a touching zero is not
    assert figures.sign_changes([0, 1, 2], [-1, 0, 1]) == [1.0]
    assert figures.sign_changes([0, 1, 2], [1, 0, 1]) == []
    # x given in descending order: the same zero
    x = np.linspace(3.0, 0.0, 7)
    assert figures.sign_changes(x, x**3 - 2) == pytest.approx([2 ** (1 / 3)], abs=1e-3)
    assert figures.sign_changes([0.0, 1.0], [1.0, 2.0]) == []


def test_gap_change_sign_changes_uses_the_root_find():
    ds = _gap_change_ds()
    w = ds.cavity_omega0.values
    y = (w**3 - 2.0)[:, None] * np.ones((1, 2))
    ds["relative_gap_change_exact"] = (("cavity_omega0", "cavity_t_cav"), y)
    out = figures.gap_change_sign_changes(ds)
    assert len(out) == 2
    for zs in out.values():
        assert zs == pytest.approx([2 ** (1 / 3)], abs=1e-3)


# ------------------------------------------------------------------ 1. map


def _contour_vertices(fig):
    verts = []
    for ax in fig.axes:
        for c in ax.collections:
            if isinstance(c, ContourSet):
                for path in c.get_paths():
                    if len(path.vertices):
                        verts.append(path.vertices)
    return np.concatenate(verts) if verts else np.empty((0, 2))


def test_map_zero_contour_ignores_rounding_noise_along_detailed_balance():
    ds = _map_ds()
    fig = figures.figure(ds)
    v = _contour_vertices(fig)
    assert len(v), "the genuine sign change has its zero contour"
    # the contour stays on the genuine crossing (w ~ 1.3), never on the T_cav = T_qp row
    assert np.all(v[:, 1] <= 0.75 + 1e-9), v[v[:, 1] > 0.75]
    assert np.all(np.abs(v[:, 0] - 1.3) < 0.2)


def test_map_tolerance_from_the_dataset():
    assert figures.solver_tolerance(_map_ds()) == 1e-9
    assert figures.solver_tolerance(_map_ds({"steady.solver.tol": 1e-6})) == 1e-6
    assert figures.solver_tolerance(_map_ds({"solver.tol": 1e-7})) == 1e-7
    assert figures.solver_tolerance(_map_ds({"evolve.solver.rtol": 1e-3})) == 1e-9
    assert figures.solver_tolerance(_map_ds({"config": '{"steady": {"tol": 1e-8}}'})) == 1e-8
    z = np.array([[1e-3, -1e-10, 2e-16], [np.nan, -1e-3, 5e-9]])
    m = figures.mask_below_tolerance(z, 1e-9)
    assert np.array_equal(np.isnan(m), [[False, True, True], [True, False, False]])
    # with a large tolerance the noise of a whole row is masked, the contour too
    fig = figures.figure(_map_ds({"steady.solver.tol": 1.0}))
    assert len(_contour_vertices(fig)) == 0


# ------------------------------------------------------------------ 2, 3. transient


def _display_points(line, n=30):
    """Points along a drawn line in display coordinates (segments densified)."""
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    style = line.get_drawstyle()
    if style in STEP_LOOKUP_MAP and style != "default":
        x, y = STEP_LOOKUP_MAP[style](x, y)
    xy = line.get_transform().transform(np.column_stack([x, y]))
    if len(xy) < 2:
        return xy
    s = np.linspace(0.0, 1.0, n)[:, None, None]
    dense = xy[:-1][None] * (1 - s) + xy[1:][None] * s
    return dense.reshape(-1, 2)


@pytest.mark.parametrize("profile", ["step", "gaussian"])
def test_transient_legends_are_not_struck_through(profile):
    fig = figures.figure(_transient_ds(profile))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    lines = [ln for ax in fig.axes for ln in ax.get_lines()]
    for leg in legends:
        box = leg.get_window_extent(renderer)
        for ln in lines:
            pts = _display_points(ln)
            inside = ((pts[:, 0] > box.x0 + 1) & (pts[:, 0] < box.x1 - 1)
                      & (pts[:, 1] > box.y0 + 1) & (pts[:, 1] < box.y1 - 1))
            assert not inside.any(), f"{ln.get_label()!r} runs through a legend"


def _profile_lines(fig, name):
    return [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label().startswith(name)]


def test_transient_gaussian_drive_is_a_smooth_line():
    ds = _transient_ds("gaussian")
    fig = figures.figure(ds)
    (line,) = _profile_lines(fig, "drive_power")
    assert line.get_drawstyle() == "default"
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert x.size >= 200  # the pulse itself, not 26 samples
    assert np.all(np.diff(x) > 0)  # no vertical risers
    peak = 2e-5
    assert np.allclose(y, np.exp(-0.5 * ((x - 3.0) / 1.0) ** 2), atol=1e-12 / peak)


def test_transient_step_profile_is_a_genuine_step():
    fig = figures.figure(_transient_ds("step"))
    (line,) = _profile_lines(fig, "cavity_eta")
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert line.get_drawstyle() == "default"
    # a vertical riser at t_on = 0, flat on both sides
    k = int(np.flatnonzero(np.diff(y) > 0.5)[0])
    assert abs(x[k]) < 1e-9 and abs(x[k + 1]) < 1e-9
    assert np.all(y[x < -1e-9] == 0.0) and np.allclose(y[x > 1e-9], 1.0)
    assert sorted(y[np.abs(x) <= 1e-9]) == pytest.approx([0.0, 1.0])


def test_profile_curve_falls_back_to_the_samples_as_a_line():
    ds = _transient_ds("gaussian")
    ds.attrs["baths.0.power"] = "Scaled(profile=GaussianPulse(peak=2e-05), factor=1.0)"
    t, y = figures.profile_curve(ds, "drive_power")
    assert np.array_equal(t, ds.time.values) and np.array_equal(y, ds.drive_power.values)
    # a description that does not reproduce the samples is not trusted
    ds.attrs["baths.0.power"] = "GaussianPulse(peak=1.0, t0=0.0, sigma=1.0, base=0.0)"
    t, y = figures.profile_curve(ds, "drive_power")
    assert np.array_equal(y, ds.drive_power.values)
    fig = figures.figure(ds)
    (line,) = _profile_lines(fig, "drive_power")
    assert line.get_drawstyle() == "default"


# ------------------------------------------------------------------ 4. gap_change labels


def test_gap_change_sign_changes_in_the_legend_not_on_the_curves():
    fig = figures.figure(_gap_change_ds())
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == []  # no labels drawn among the lines
    legend = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    for zs in figures.gap_change_sign_changes(_gap_change_ds()).values():
        assert len(zs) == 1
        assert f"{zs[0]:.3g}" in legend
    # the zeros are marked on the zero line
    marks = [ln for ln in ax.get_lines() if ln.get_marker() == "|"]
    assert len(marks) == 2 and all(np.allclose(ln.get_ydata(), 0.0) for ln in marks)


# ------------------------------------------------------------------ 5. decay


def test_decay_panel_is_log_y_against_linear_time_in_slowest_times():
    fig = figures.figure(_decay_ds())
    a = fig.axes[0]
    assert a.get_yscale() == "log" and a.get_xscale() == "linear"
    assert r"\tau" in a.get_xlabel()
    lo, hi = a.get_xlim()
    assert lo == 0.0 and hi == figures._DECAY_SPAN
    # each curve: one straight line of slope -1 (an exponential in its own slowest time)
    curves = [ln for ln in a.get_lines() if "=" in ln.get_label() and "tau" in ln.get_label()]
    assert len(curves) == 4  # static + 3
    for ln in curves:
        s, f = np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())
        assert np.all(f >= figures._DECAY_FLOOR) and np.all(s <= figures._DECAY_SPAN)
        assert np.allclose(np.log(f), -s, atol=1e-9)
    # the slowest curve ends at t_end (4.2 of its slowest times): the title says so
    assert "t_end" in a.get_title()


def test_decay_curve_ends_at_the_noise_floor():
    t = np.linspace(0.0, 20.0, 201)
    f = np.exp(-t)
    f[t > 15] = -1e-9
    s, y = figures.decay_curve(t, f, 1.0, span=18.0, floor=1e-6)
    assert s.max() < np.log(1e6) + 0.1 and np.all(y >= 1e-6)
    s, y = figures.decay_curve(t, f, 2.0, span=3.0, floor=1e-12)
    assert s.max() <= 3.0 and y.size == 61


# ------------------------------------------------------------------ 7. units


@pytest.mark.parametrize("units", ["1", "", " "])
def test_no_empty_unit_brackets(units):
    ds = _gap_change_ds(curve_units=units)
    figs = [figures.figure(ds), figures.figure(_transient_ds("step")),
            figures.figure(_transient_ds("gaussian")), figures.figure(_decay_ds())]
    m = _map_ds()
    m.cavity_t_cav.attrs["units"] = units
    figs.append(figures.figure(m))
    for fig in figs:
        for text in _texts(fig):
            assert "[]" not in text.replace(" ", ""), text


def test_with_unit():
    assert figures._with_unit("P", "1") == "P"
    assert figures._with_unit("P", " ") == "P"
    assert figures._with_unit("P", None) == "P"
    assert figures._with_unit("P", "k_B T_c") == r"P [$k_BT_c$]"


def test_plot_writes_a_png(tmp_path):
    path = figures.plot(_gap_change_ds(), str(tmp_path / "f.png"))
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError):
        figures.plot(_gap_change_ds(), path)


# ------------------------------------------------------------------ refined perturbative axis


def test_refined_axis_keeps_every_point_and_fills_linear_or_geometric():
    from cavity_eliashberg._config import refined_axis

    lin = refined_axis([0.5, 0.75, 1.0], 5)
    np.testing.assert_allclose(lin, np.linspace(0.5, 1.0, 11))
    geo = refined_axis([1e-4, 1e-2, 1.0], 2)
    np.testing.assert_allclose(geo, [1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert refined_axis([1.0, 2.0], 1).tolist() == [1.0, 2.0]


def test_perturbative_curves_drawn_and_rooted_on_the_refined_axis():
    # coarse nonlinear dots every 1, perturbative curve every 0.25 ([perturbative] refine = 4)
    coarse = np.arange(1.0, 5.0)
    fine = np.linspace(1.0, 4.0, 13)
    ds = xr.Dataset(
        {
            "relative_gap_change_nonlinear": (("x",), coarse**3 - 10.0),
            "relative_gap_change_exact": (("x_fine",), fine**3 - 10.0),
            "relative_gap_change_gl": (("x_fine",), fine**3 - 10.0),
        },
        coords={"x": ("x", coarse), "x_fine": ("x_fine", fine)},
        attrs={"figure.kind": "gap_change", "figure.x": "x", "figure.fine_x": "x_fine",
               "figure.refine": 4},
    )
    (zeros,) = figures.gap_change_sign_changes(ds).values()
    assert zeros == pytest.approx([10.0 ** (1 / 3)], abs=1e-4)
    fig = figures.figure(ds)
    (ax,) = fig.axes
    lengths = sorted(len(ln.get_xdata()) for ln in ax.get_lines() if ln.get_marker() != "|")
    assert 13 in lengths and 4 in lengths  # the curve on the fine axis, the dots coarse
    plt.close(fig)


def test_plot_draws_a_python_api_result_of_a_dynamic_model(tmp_path):
    # `cavity-eliashberg plot` on a single solver's dataset with dynamic bosons (once:
    # "ValueError: cannot rename 'delta_n'" on the dynamic studies' outputs)
    import kinetics
    import solvers
    from cavity_eliashberg import main

    bath = kinetics.MultimodeCavity(
        omega0=2.8, t_cav=0.45, eta=1.55e-5,
        dynamic=kinetics.DynamicBosons(tau_b=1e3, r_cav=1e-3, n_omega=16),
    )
    model = kinetics.Model(t_qp=0.9, tau_in=1000.0, baths=bath, grid=kinetics.Grid(n=40))
    nc = tmp_path / "dynamic_steady.nc"
    solvers.save(solvers.steady_state(model), nc)
    png = tmp_path / "dynamic_steady.png"
    assert main(["plot", str(nc), "--output", str(png)]) == 0
    assert png.stat().st_size > 10_000


def _resonator_ds(time_axis=True):
    w = np.array([0.2, 0.5])
    if time_axis:
        time = np.linspace(-500.0, 8000.0, 30)
        rise = np.where(time < 0, 0.0, 1.0 - np.exp(-np.clip(time, 0, None) / 2000.0))
        dims, coords = ("time",), {"time": time, "time_ns": ("time", time * 6.42e-3)}
    else:
        x = np.array([1.0, 2.0, 3.0, 4.0])
        rise = 0.1 * x
        dims = ("cavity_omega0",)
        coords = {"cavity_omega0": _coord("cavity_omega0", x, "cavity.omega0", "Delta0")}
    shift = np.outer(rise, [1.8e-3, 1.7e-3])
    return xr.Dataset(
        {
            "frequency_shift": ((*dims, "probe"), shift),
            "inverse_q_qp": ((*dims, "probe"), 0.0192 - 0.3 * shift),
            "relative_gap_change": (dims, 0.02 * rise),
            "x_qp": (dims, 0.494 - 0.01 * rise),
        },
        coords={**coords, "probe_energy": ("probe", w), "probe_frequency": ("probe", [5.0, 12.4])},
        attrs={**BASE_ATTRS, "figure.kind": "resonator", "observables.alpha": 0.1},
    )


@pytest.mark.parametrize("time_axis", [True, False])
def test_resonator_figure_draws_shift_and_loss_per_probe_frequency(time_axis):
    fig = figures.figure(_resonator_ds(time_axis))
    shift_ax, loss_ax, gap_ax = fig.axes[:3]
    assert len(shift_ax.get_lines()) == 2 + 1  # one curve per probe, and the zero line
    assert len(loss_ax.get_lines()) == 2
    labels = [t.get_text() for t in shift_ax.get_legend().get_texts()]
    assert labels == ["f_r = 5 GHz", "f_r = 12.4 GHz"]
    if time_axis:  # the study gives T_c: times in ns (55 ns here)
        assert shift_ax.get_xlabel() == "time t [ns]"
        np.testing.assert_allclose(shift_ax.get_lines()[0].get_xdata()[-1], 8000.0 * 6.42e-3)
    else:
        assert "omega" in shift_ax.get_xlabel()
    np.testing.assert_allclose(shift_ax.get_lines()[0].get_ydata(),
                               _resonator_ds(time_axis).frequency_shift.values[:, 0])


def test_a_temperature_axis_reads_as_t_over_t_c():
    # sweeps store temperatures in energy units (units "k_B T_c", hbar = k_B = 1); the
    # axis says T / T_c, not "T [k_B T_c]" (the microwave_transition figure did)
    ds = xr.Dataset(coords={"t_qp": ("t_qp", [0.99, 1.0], {"units": "k_B T_c"}),
                            "omega_d": ("omega_d", [0.1, 0.2], {"units": "k_B T_c"})})
    assert figures._label(ds, "t_qp") == r"$T_{qp}$ / $T_c$"
    assert "k_B" not in figures._label(ds, "t_qp")
    assert figures._label(ds, "omega_d").endswith("]")  # an energy keeps its unit

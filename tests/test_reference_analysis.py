"""The analysis and figure kind ``reference`` (cavity_eliashberg._reference): a readout-drive
study against the digitized curves of Fischer & Catelani (2023) in
cavity_eliashberg/reference/fischer_catelani_2023.csv.

No study is solved here: the datasets are synthetic (the variables a steady study carries,
built from the models of a real configuration), so that every expected number is known
in closed form: the table's own values at its own points, 0 and 1 for the gap quantity at
the equilibrium and T = 0 states.
"""

from __future__ import annotations

import csv
import pathlib
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import kinetics  # noqa: E402
from cavity_eliashberg import ConfigError  # noqa: E402
from cavity_eliashberg import _figures as figures  # noqa: E402
from cavity_eliashberg import _reference as reference  # noqa: E402
from cavity_eliashberg._analyses import apply_analyses  # noqa: E402
from cavity_eliashberg._config import build_model, dim_name, load_config, sweep_points  # noqa: E402

TABLE = pathlib.Path(reference.SHIPPED, "fischer_catelani_2023.csv")
T_C = 1.18413  # K: Delta_0 = 180 ueV (the paper's, and the table's README)

# Two points of the table at T_B = 0.2 K that both Fig. 5 upper and Fig. 6 list (their
# c_phot n_bar in 1/s), and one beyond both digitized ranges (Fig. 5 ends at 4.8e8).
N_BAR = [9.5581e5, 9.6676e6, 1e9]
# 0.3 K: a T_B the upper panel of Fig. 5 and Fig. 6 do not show
T_B = [0.2, 0.3]

STUDY = """
title = "synthetic Fischer & Catelani comparison"
compute = ["steady"]

[model]
t_qp = "0.2 K"
tau_in = 1000.0
t_c = "1.18413 K"
gap = "{gap}"

[grid]
n = 60
xi_max = 16.0
core = 1.4

[[baths]]
type = "readout_drive"
name = "readout"
omega_d = "20 ueV"
n_bar = 1e5
c_phot = "1 /s"

[sweep]
"model.t_qp" = {{ values = {t_b}, unit = "K" }}
"readout.n_bar" = {{ values = {n_bar}, spacing = "log" }}

[observables]
probe_frequencies = ["20 ueV"]
alpha = 1.0

[[analyses]]
kind = "reference"
table = "fischer_catelani_2023"
panels = [{{ figure = 5, panel = "upper" }}, {{ figure = 6, panel = "single" }}]

[figure]
kind = "reference"
x = "readout.n_bar"
log_x = true
"""


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _table_value(figure, panel, t_bath, n_bar, curve="numerical"):
    """The CSV's y_value at one point, read here with the csv module alone."""
    with open(TABLE, newline="") as fh:
        for r in csv.DictReader(fh):
            if (r["figure"], r["panel"], r["curve"]) == (str(figure), panel, curve) and float(
                r["t_bath_K"]
            ) == t_bath and float(r["c_phot_n_bar_per_s"]) == n_bar:
                return float(r["y_value"])
    raise LookupError((figure, panel, t_bath, n_bar))


def _config(gap="self_consistent", t_b=T_B, n_bar=N_BAR):
    return load_config(STUDY.format(gap=gap, t_b=t_b, n_bar=n_bar))


def _synthetic(cfg, raw, kind):
    """A steady study's variables at every point, for a chosen state: ``kind`` per n_bar
    index, "thermal" (n_F at T_B, gap Delta_eq) or "zero" (n = 0: the T = 0 state), and
    x_qp = 1.1 x the table's Fig. 5 value where the table has one (1e-5 elsewhere)."""
    models = [build_model(cfg, p, raw=raw) for p in sweep_points(cfg)]
    keys = list(cfg.sweep)
    dims = [dim_name(k) for k in keys]
    shape = tuple(len(cfg.sweep[k].points()) for k in keys)
    n = models[0].grid.n
    gap = np.empty(len(models))
    dn = np.zeros((len(models), n))
    x_qp = np.full(len(models), 1e-5)
    for j, (m, p) in enumerate(zip(models, sweep_points(cfg), strict=True)):
        i_bar = N_BAR.index(p["readout.n_bar"])
        state = kind[i_bar]
        if m.fixed_gap or state == "thermal":
            gap[j] = float(m.delta0)
        else:  # a self-consistent state at the T = 0 gap
            gap[j] = kinetics.DELTA_ZERO
        if state == "zero":  # n = 0: delta_n = -n_F at the state's gap
            dn[j] = -np.asarray(m.thermal_state(gap[j]))
        t_b = round(float(m.t_qp) * T_C, 6)
        try:
            x_qp[j] = 1.1 * _table_value(5, "upper", t_b, p["readout.n_bar"])
        except LookupError:
            pass
    coords = {dim_name(k): (dim_name(k), cfg.sweep[k].points(),
                            {"long_name": k, "units": cfg.sweep[k].unit or "1"}) for k in keys}
    ds = xr.Dataset(
        {
            "gap_nonlinear": (dims, gap.reshape(shape)),
            "delta_n_nonlinear": ((*dims, "xi"), dn.reshape(shape + (n,))),
            "x_qp": (dims, x_qp.reshape(shape)),
            "frequency_shift": ((*dims, "probe"), -3.0 * x_qp.reshape(shape + (1,))),
            "inverse_q_qp": ((*dims, "probe"), 0.5 * x_qp.reshape(shape + (1,))),
            "steady_status": (dims, np.full(shape, "success")),
        },
        coords={**coords, "xi": np.asarray(models[0].grid.xi)},
        attrs={"title": "synthetic", "figure.kind": "reference", "figure.x": "readout_n_bar",
               "model.grid.n": n, "model.gap_mode": cfg.model.gap, "observables.alpha": 1.0},
    )
    return apply_analyses(ds, cfg, raw, models)


# ------------------------------------------------------------------ the table


@pytest.mark.parametrize("t_bath", [0.1, 0.15, 0.2])
@pytest.mark.parametrize(("figure", "panel", "log_y"), [(5, "upper", True), (6, "single", False)])
def test_interpolation_reproduces_the_table_at_its_points_and_is_nan_outside(
    figure, panel, log_y, t_bath
):
    rows = reference.load_table("fischer_catelani_2023")
    x, y, err = reference.curve_points(rows, figure, panel, "numerical", t_bath, 1e-3)
    assert x.size >= 10 and np.all(np.diff(x) > 0)
    assert np.all((err > 0) | np.isnan(err))  # NaN: a point read at fixed y (falling branch)
    # at its own points: the table's values (rounding of log/exp only)
    np.testing.assert_allclose(reference.interpolate(x, y, x, log_y=log_y), y,
                               rtol=1e-12, atol=1e-15)
    # halfway (in log x) between two points: the straight line of the chosen axes
    mid = np.sqrt(x[:-1] * x[1:])
    expect = np.sqrt(y[:-1] * y[1:]) if log_y else 0.5 * (y[:-1] + y[1:])
    np.testing.assert_allclose(reference.interpolate(x, y, mid, log_y=log_y), expect,
                               rtol=1e-12, atol=1e-15)
    # outside the digitized range: NaN, never extrapolated
    out = reference.interpolate(x, y, [x[0] * 0.99, x[-1] * 1.01, np.nan], log_y=log_y)
    assert np.all(np.isnan(out))


def test_a_bath_temperature_the_table_does_not_show_has_no_curve():
    rows = reference.load_table("fischer_catelani_2023")
    x, _, _ = reference.curve_points(rows, 5, "upper", "numerical", 0.2 + 2e-3, 1e-3)
    assert x.size == 0
    x, _, _ = reference.curve_points(rows, 5, "upper", "numerical", 0.2 + 0.9e-3, 1e-3)
    assert x.size == 33  # every 0.2 K point of Fig. 5 upper


def test_the_drive_measure_is_the_papers_eq_24():
    # T*/Delta = (c_phot n_bar / 6.1871e8)^(1/6) (the table's README, the paper's Eq. (24))
    a, p = reference.drive_measure(reference.load_table("fischer_catelani_2023"))
    assert p == pytest.approx(1 / 6, rel=1e-3)
    assert (0.4 / a) ** (1 / p) == pytest.approx(0.4**6 * 6.1871e8, rel=5e-3)


def test_the_panels_variables_come_from_the_tables_y_names():
    rows = reference.load_table("fischer_catelani_2023")
    assert reference.panel_variable(rows, 5, "upper") == "x_qp"
    assert reference.panel_variable(rows, 6, "single") == "gap_recovery"
    assert reference.source_label("fischer_catelani_2023") == "Fischer & Catelani 2023, digitized"


# ------------------------------------------------------------------ the gap quantity


def test_gap_recovery_is_0_at_equilibrium_and_1_at_the_zero_temperature_gap():
    d_eq = float(kinetics.equilibrium_gap(0.2 / T_C))
    assert reference.gap_recovery(d_eq, d_eq) == 0.0
    assert reference.gap_recovery(kinetics.DELTA_ZERO, d_eq) == pytest.approx(1.0, abs=1e-12)
    # halfway between the two gaps: 1/2 (the quantity is linear in Delta_driven)
    half = 0.5 * (d_eq + kinetics.DELTA_ZERO)
    assert reference.gap_recovery(half, d_eq) == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("gap", ["self_consistent", "fixed"])
def test_the_analysis_gives_the_gap_quantity_of_both_conventions(gap):
    # the thermal state at T_B gives 0, the n = 0 state 1: with the fixed gap through
    # solve_gap on n, where the 60-point grid's T = 0 gap is ~9e-10 below 1.763877, i.e.
    # 2.3e-5 of the denominator Delta(0) - Delta_eq(0.2 K) = 3.94e-5 (measured: 1 - 2.3e-5
    # at 0.2 K, 1 - 5.8e-7 at 0.3 K; the thermal states 1e-11 from 0)
    cfg, raw = _config(gap)
    ds = _synthetic(cfg, raw, ["thermal", "zero", "thermal"])
    rec = ds.gap_recovery.transpose("model_t_qp", "readout_n_bar").values
    np.testing.assert_allclose(rec[:, [0, 2]], 0.0, atol=1e-9)
    np.testing.assert_allclose(rec[:, 1], 1.0, atol=5e-5)
    assert ds.gap_recovery.attrs["units"] == "1" and "Delta(0)" in ds.gap_recovery.attrs[
        "long_name"]
    if gap == "fixed":  # the model runs at Delta_eq; Delta_driven is the root on its n
        thermal = ds.isel(readout_n_bar=[0, 2])
        np.testing.assert_allclose(thermal.gap_driven, thermal.gap_nonlinear, rtol=1e-12)
        empty = ds.isel(readout_n_bar=1)
        assert np.all(empty.gap_driven > empty.gap_nonlinear)


def test_the_analysis_interpolates_the_table_at_each_points_drive_and_bath_temperature():
    cfg, raw = _config()
    ds = _synthetic(cfg, raw, ["thermal", "thermal", "thermal"])
    ref = ds.x_qp_reference.sel(model_t_qp=0.2).values
    np.testing.assert_allclose(ref[:2], [_table_value(5, "upper", 0.2, n) for n in N_BAR[:2]],
                               rtol=1e-12)
    assert np.isnan(ref[2])  # beyond the digitized range
    assert np.all(np.isnan(ds.x_qp_reference.sel(model_t_qp=0.3).values))  # no 0.3 K curve
    rel = ds.x_qp_reference_relative_difference.sel(model_t_qp=0.2).values
    np.testing.assert_allclose(rel[:2], 0.1, rtol=1e-10)  # x_qp was 1.1 x the table
    g6 = ds.gap_recovery_reference.sel(model_t_qp=0.2).values
    np.testing.assert_allclose(g6[:2], [_table_value(6, "single", 0.2, n) for n in N_BAR[:2]],
                               rtol=1e-12)
    # ours is 0 (thermal): relative difference -1
    np.testing.assert_allclose(ds.gap_recovery_reference_relative_difference.sel(
        model_t_qp=0.2).values[:2], -1.0, atol=1e-8)
    for name in ("x_qp_reference", "gap_recovery_reference", "drive_rate", "gap_recovery",
                 "x_qp_reference_relative_difference", "reference_t_star"):
        assert {"long_name", "units"} <= set(ds[name].attrs)
    assert ds.drive_rate.attrs["units"] == "1/s"
    np.testing.assert_allclose(ds.drive_rate.sel(model_t_qp=0.2).values, N_BAR, rtol=1e-12)
    # the paper's T*/Delta of the points (Eq. 24): 0.34 and 0.50 in the table
    np.testing.assert_allclose(ds.reference_t_star.sel(model_t_qp=0.2).values[:2],
                               [0.34, 0.50], atol=2e-3)
    table = reference.comparison_table(ds)
    assert table.count("\n") == 1 + 4  # header, rule, 2 points x 2 quantities
    assert "| 0.2 | self_consistent | 9.558e+05 | 0.340 | x_qp |" in table


# ------------------------------------------------------------------ the figure


def _both_conventions():
    parts = []
    for gap in ("self_consistent", "fixed"):
        cfg, raw = _config(gap, t_b=[0.15, 0.2])
        parts.append(_synthetic(cfg, raw, ["thermal", "zero", "thermal"]))
    ds = xr.concat(parts, dim=xr.DataArray(["self_consistent", "fixed"], dims="model_gap"),
                   combine_attrs="override")
    ds["model_gap"].attrs.update(long_name="model.gap", units="1")
    return ds


def test_the_figure_overlays_the_tables_points_and_draws_both_gap_conventions(tmp_path):
    ds = _both_conventions()
    fig = figures.figure(ds)
    ax_x, ax_g, ax_f, ax_q = fig.axes[:4]
    # two T_B x two conventions per panel: solid and dashed
    for ax in (ax_x, ax_g, ax_f, ax_q):
        styles = sorted(line.get_linestyle() for line in ax.get_lines()
                        if len(line.get_xdata()) == len(N_BAR) and line.get_marker() == "None")
        assert styles == ["-", "-", "--", "--"]
    assert ax_x.get_xscale() == "log" and ax_x.get_yscale() == "log"
    # the table's points: one errorbar series per T_B and curve the table has at that T_B
    labels = [t.get_text() for t in ax_x.get_legend().get_texts()]
    assert "Fischer & Catelani 2023, digitized" in labels
    assert "Fischer & Catelani 2023, digitized, analytical" in labels
    points = [c for c in ax_g.containers if c.lines[0].get_marker() == "o"]
    n_02 = len(reference.curve_points(reference.load_table("fischer_catelani_2023"), 6,
                                      "single", "numerical", 0.2, 1e-3)[0])
    assert sorted(len(c.lines[0].get_xdata()) for c in points)[-1] == n_02 + 0
    # at c_phot = 1 /s the points sit at n_bar = c_phot n_bar: the table's own abscissa
    xs = np.concatenate([c.lines[0].get_xdata() for c in points])
    assert np.any(np.isclose(xs, 9.5581e5, rtol=1e-12))
    # the top axis: the paper's T*/Delta
    tops = [c for ax in (ax_x, ax_g) for c in ax.child_axes]
    assert len(tops) == 2 and all("T^*" in c.get_xlabel() for c in tops)
    # T*/Delta = (n_bar / 6.1871e8)^(1/6) at c_phot = 1 /s: round ticks inside the axis
    ticks = np.asarray(tops[0].get_xticks())
    lo, hi = (np.asarray(ax_x.get_xlim()) / 6.1871e8) ** (1 / 6)
    assert 3 <= ticks.size <= 9 and lo * 0.99 <= ticks.min() and ticks.max() <= hi * 1.01
    np.testing.assert_allclose(ticks / 0.05, np.round(ticks / 0.05), atol=1e-9)
    # delta f / f is negative here: drawn as -delta f / f on a log axis
    assert ax_f.get_yscale() == "log" and ax_f.get_ylabel().startswith("$-$")
    png = figures.plot(ds, str(tmp_path / "reference.png"))
    assert pathlib.Path(png).stat().st_size > 10_000


# ------------------------------------------------------------------ configuration mistakes


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace('table = "fischer_catelani_2023"', 'table = "nope"'),
         "shipped tables"),
        (lambda s: s.replace("figure = 6, panel", "figure = 7, panel"), "no rows of figure 7"),
        (lambda s: s.replace('t_c = "1.18413 K"\n', "").replace(
            '[observables]\nprobe_frequencies = ["20 ueV"]\nalpha = 1.0\n', ""),
         "model.t_c"),
        (lambda s: s.replace('type = "readout_drive"', 'type = "classical_drive"').replace(
            'n_bar = 1e5\nc_phot = "1 /s"', "power = 1e-6").replace(
            "readout.n_bar", "readout.power"), "readout_drive"),
        (lambda s: s.replace('"readout.n_bar" = { values = [956000.0, 9670000.0], '
                             'spacing = "log" }', "").replace('x = "readout.n_bar"', ""),
         "sweep 'readout.n_bar'"),
        (lambda s: s.replace("[[analyses]]", "[[nothing]]").split("[[nothing]]")[0]
         + '[figure]\nkind = "reference"\n', "add [[analyses]] kind = 'reference'"),
    ],
)
def test_configuration_mistakes_are_refused_with_the_reason(edit, message):
    text = STUDY.format(gap="self_consistent", t_b=[0.2], n_bar=[9.56e5, 9.67e6])
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(edit(text))


# ------------------------------------------------------------------ one real study


def test_a_tiny_real_study_carries_the_comparison():
    # The names the analysis reads (gap_nonlinear, delta_n_nonlinear, steady_status, x_qp)
    # as a study really writes them: 2 steady states of a 40-point grid, the readout drive
    # with a relaxation time instead of dynamic phonons (13-19 s with compilation, measured).
    from cavity_eliashberg._study import run_study

    text = STUDY.format(gap="self_consistent", t_b=[0.2], n_bar=N_BAR[:2]).replace(
        "tau_in = 1000.0", 'tau_in = "438 ns"').replace("n = 60", "n = 40").replace(
        '[figure]\nkind = "reference"', '[figure]\nkind = "none"')
    cfg, raw = load_config(text)
    ds = run_study(cfg, raw, progress=False).squeeze("model_t_qp")
    assert list(ds.steady_status.values) == ["success", "success"]
    np.testing.assert_allclose(ds.x_qp_reference.values,
                               [_table_value(5, "upper", 0.2, n) for n in N_BAR[:2]], rtol=1e-12)
    # the thermal plateau at 0.2 K: tau_in relaxation keeps x_qp thermal; the paper's
    # digitized 2.341e-5 is matched to 0.05 % (measured -4.8e-4, -5.0e-4)
    np.testing.assert_allclose(ds.x_qp_reference_relative_difference.values, 0.0, atol=3e-3)
    # a drive above the gap edge's thermal scale raises the gap: 0 < gap_recovery < 1
    assert np.all((ds.gap_recovery.values > 0) & (ds.gap_recovery.values < 1))
    assert "| 0.2 | self_consistent | 9.558e+05 | 0.340 | x_qp |" in reference.comparison_table(ds)

"""The pump-probe study's pieces (runs/pump_probe.toml): its linear-response analyses on
the single point, the decay fit of an excess that starts at zero, and the normal interval
in the transient figure. No evolution runs here (the study itself takes minutes)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import kinetics  # noqa: E402
from cavity_eliashberg import _figures as figures  # noqa: E402
from cavity_eliashberg import build_model, load_config  # noqa: E402
from cavity_eliashberg._analyses import (  # noqa: E402
    _fit,
    _reference_excess,
    _slowest,
    apply_analyses,
)

ROOT = Path(__file__).resolve().parents[1]


def test_slowest_time_after_the_pulse_and_rothwarf_taylor_without_a_sweep():
    """`slowest_time` with at = "end" linearizes after the pulse: the pulse's Gaussian tail
    at t = 0 (P ~ 1e-8) is part of the Jacobian there and changes the slowest time by
    ~20 %. After it, the Jacobian is that of the same film without the drive. The study
    has one escape time: rothwarf_taylor gives the estimate (tau_r/2)(1 + tau_esc/tau_B)
    without the slope (which needs two)."""
    cfg, raw = load_config(ROOT / "runs" / "pump_probe.toml", quick=True)
    cfg = cfg.model_copy(update={"analyses": [a for a in cfg.analyses
                                              if a.kind in ("slowest_time", "rothwarf_taylor")]})
    assert cfg.analyses[0].at == "end"
    model = build_model(cfg, {}, raw=raw)
    ds = apply_analyses(xr.Dataset(), cfg, raw, [model])
    undriven = kinetics.Model(t_qp=model.t_qp, tau_in=None, baths=(model.baths[0],),
                              grid=model.grid)
    assert float(ds.slowest_time) == pytest.approx(_slowest(undriven, 0.0), rel=1e-9)
    assert ds.rothwarf_taylor_time.dims == () and "rothwarf_taylor_slope_ratio" not in ds
    dyn = model.baths[0].dynamic
    tau_b = float(dyn.tau0_ph) * kinetics.DELTA_ZERO / float(model.delta0)
    expected = float(ds.slowest_time_static) * (1.0 + float(dyn.tau_b) / tau_b)
    assert float(ds.rothwarf_taylor_time) == pytest.approx(expected, rel=1e-12)
    assert float(ds.slowest_time_ratio) > 1.3  # a bottleneck: tau_esc = tau0_ph ~ tau_B


def test_an_excess_that_starts_at_zero_is_measured_against_its_peak():
    """A pump starts thermal: the decay fraction is relative to the largest excess, and
    the fit takes the sign of that excess (an injected excess keeps its value at t = 0)."""
    t = np.concatenate([[0.0], np.geomspace(1e-2, 50.0, 120)])
    rise_and_decay = (1.0 - np.exp(-t / 0.05)) * np.exp(-t / 5.0)
    injected = 0.05 * np.exp(-t / 5.0)
    ref = _reference_excess(np.stack([rise_and_decay, injected, -rise_and_decay]))[:, 0]
    assert ref[0] == pytest.approx(rise_and_decay.max(), rel=1e-14)
    assert ref[1] == 0.05 and ref[2] == pytest.approx(-rise_and_decay.max(), rel=1e-14)
    # on [2, 5] slowest times the rise (e^{-t/0.05}) is e^{-200} below the decay
    assert _fit(t, rise_and_decay, 5.0, (2.0, 5.0)) == pytest.approx(5.0, rel=1e-9)
    assert _fit(t, -rise_and_decay, 5.0, (2.0, 5.0)) == pytest.approx(5.0, rel=1e-9)
    assert math.isnan(_fit(t, np.zeros_like(t), 5.0, (2.0, 5.0)))


def _pumped_ds(went, back):
    # hbar / (k_B T_c) at T_c = 1.19 K, from the SI constants: 6.42 ps
    per_us = 1e-6 / (1.054571817e-34 / (1.380649e-23 * 1.19))
    time = np.concatenate([[0.0], np.geomspace(1e-3, 100.0, 60)]) * per_us
    normal = (time >= went * per_us) & (time <= (back if np.isfinite(back) else 1e9) * per_us)
    gap = np.where(normal, 0.0, 1.76)
    xi = np.linspace(0.0, 10.0, 30)
    return xr.Dataset(
        {
            "gap": (("time",), gap),
            "relative_gap_change": (("time",), gap / 1.76 - 1.0),
            "n_qp": (("time",), np.where(normal, 2.0, 1e-3)),
            "delta_n": (("time", "xi"), np.zeros((time.size, xi.size))),
            "delta0": ((), 1.76),
            "went_normal_at": (("normal_interval",), [went * per_us]),
            "recovered_at": (("normal_interval",), [back * per_us]),
        },
        coords={"time": time, "xi": xi},
        attrs={"title": "synthetic pump", "model.t_qp": 0.25, "model.t_c": "1.19 K",
               "figure.kind": "transient"},
    )


@pytest.mark.parametrize("back", [0.1, np.nan])
def test_transient_figure_shades_the_normal_interval_on_log_time(back):
    fig = figures.figure(_pumped_ds(0.01, back))
    try:
        gap_ax, nqp_ax = fig.axes[0], fig.axes[1]
        for ax in (gap_ax, nqp_ax):
            assert ax.get_xscale() == "log"
            spans = [p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx((0.85,) * 3)]
            assert len(spans) == 1
            p = spans[0]  # a Rectangle or (matplotlib < 3.9) a Polygon
            x = p.get_patch_transform().transform(p.get_path().vertices)[:, 0]
            # in microseconds; a NaN end (still normal) runs to the last save
            assert x.min() == pytest.approx(0.01, rel=1e-6)
            assert x.max() == pytest.approx(back if np.isfinite(back) else 100.0, rel=1e-3)
        assert nqp_ax.get_yscale() == "log"  # n_qp rose 2000-fold
        assert "time t [us]" in gap_ax.get_xlabel()
        labels = [t.get_text() for t in gap_ax.get_legend().get_texts()]
        assert "normal (gap 0)" in labels
    finally:
        plt.close(fig)


def test_first_save_of_a_log_spaced_run():
    """A pump at 10 ns in a run to 300 us: the default first save (t_end / 1e4 = 30 ns)
    would miss the pulse; `first_save` sets it."""
    from cavity_eliashberg import ConfigError
    from cavity_eliashberg._config import save_times

    cfg, raw = load_config(ROOT / "runs" / "pump_probe.toml")
    t = save_times(cfg, raw=raw)
    ns = kinetics.ALUMINIUM.to_time(1.0)  # 1 ns at T_c = 1.19 K
    # (the material table and the unit parser round the constants differently: 4e-10)
    assert t[0] == 0.0 and t[1] == pytest.approx(ns, rel=1e-8)
    assert t[-1] == pytest.approx(3e5 * ns, rel=1e-8)
    assert np.allclose(np.diff(np.log(t[1:])), np.log(t[2] / t[1]), rtol=1e-9)
    for change, words in (({"evolve.spacing": "linear"}, "spacing = 'log' only"),
                          ({"evolve.first_save": "1 ms"}, "between 0 and t_end")):
        with pytest.raises(ConfigError, match=words):  # refused when the file is read
            load_config(ROOT / "runs" / "pump_probe.toml", overrides=change)

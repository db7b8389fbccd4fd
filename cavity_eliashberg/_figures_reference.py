"""The figure kind ``reference``: a readout-drive study against a published curve
(analysis ``reference``, cavity_eliashberg._reference).

Four panels against the photon number n_bar (``figure.x``, log axis): x_qp (log y) and
the gap quantity ``gap_recovery`` with the reference table's points overlaid (markers with
their digitization error bars, in the colour of the curve at the same T_B; the compared
curve filled, the table's other curves, e.g. ``analytical``, open), then delta f_r / f_r
and 1 / Q_qp (first probe frequency). One colour per value of the other swept parameters
(T_B), the gap convention by line style (self-consistent solid, ``model.gap = "fixed"``
dashed; both when ``model_gap`` is a dimension). The top axis of the first two panels is
the reference's drive measure T*/Delta, when the table gives one and c_phot is the same at
every point.
"""

from __future__ import annotations

import numpy as np

from ._reference import _gap_modes, curve_points, drive_measure, load_table

_STYLE = {"self_consistent": "-", "fixed": "--"}
_GAP_LABEL = {"self_consistent": "self-consistent gap", "fixed": "gap fixed at Delta_eq(T_B)"}
_SKIP = ("xi", "time", "bath", "process", "omega", "dynamic_bath", "probe")


def _sweep_dims(ds, var):
    return [d for d in ds[var].dims if d not in _SKIP]


def _compared(ds) -> dict:
    """variable -> (result name, figure, panel) of the analysis' comparisons."""
    out = {}
    for name in ds.attrs.get("reference.results", "").split(","):
        if name in ds:
            a = ds[name].attrs
            out.setdefault(a["reference_variable"], (name, a["reference_figure"],
                                                     a["reference_panel"]))
    return out


def _signed_log(ax, y, label):
    """Log y for values of one sign (|y|, the label negated for negative ones), symlog
    otherwise."""
    y = np.asarray(y, float)
    finite = y[np.isfinite(y) & (y != 0)]
    if finite.size and (np.all(finite < 0) or np.all(finite > 0)):
        ax.set_yscale("log")
        if finite[0] < 0:
            return -1.0, "$-$" + label
        return 1.0, label
    if finite.size:
        ax.set_yscale("symlog", linthresh=float(np.min(np.abs(finite))))
    return 1.0, label


def _top_axis(ax, measure, c):
    """T*/Delta = A (c n_bar)^p on top of a log n_bar axis."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    a, p = measure

    def fwd(x):
        x = np.asarray(x, float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(x > 0, a * (np.abs(x) * c) ** p, np.nan)

    def inv(t):
        t = np.asarray(t, float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(t > 0, (np.abs(t) / a) ** (1.0 / p) / c, np.nan)

    sec = ax.secondary_xaxis("top", functions=(fwd, inv))
    lo, hi = sorted(fwd(np.asarray(ax.get_xlim())))
    step = next((s for s in (0.02, 0.05, 0.1, 0.2, 0.5) if (hi - lo) / s <= 8), 1.0)
    ticks = np.arange(np.ceil(lo / step), np.floor(hi / step) + 1) * step
    sec.xaxis.set_major_locator(FixedLocator(ticks))
    sec.xaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    sec.xaxis.set_minor_formatter(NullFormatter())
    sec.set_xlabel(r"reference's drive measure $T^*/\Delta$", fontsize=8)
    return sec


def draw(ds, plt):
    drive = ds.attrs["reference.drive"]
    dims = _sweep_dims(ds, "gap_recovery")
    x = ds.attrs.get("figure.x")
    if x not in dims:
        x = f"{drive}_n_bar" if f"{drive}_n_bar" in dims else dims[0]
    others = [d for d in dims if d not in (x, "model_gap")]
    rows = load_table(ds.attrs["reference.table"], ds.attrs.get("reference.base_dir", ""))
    curve = ds.attrs.get("reference.curve", "numerical")
    tol = float(ds.attrs.get("reference.t_tolerance_kelvin", 1e-3))
    source = ds.attrs.get("reference.label", "reference, digitized")
    compared = _compared(ds)
    kinds = sorted({r["curve"].split("_")[0] for r in rows} - {curve})

    fig, grid = plt.subplots(2, 2, figsize=(12.5, 9))
    ax_x, ax_g, ax_f, ax_q = grid.ravel()
    xs = ds[x].values
    colors = plt.cm.viridis(np.linspace(0.0, 0.8, max(
        int(np.prod([ds.sizes[d] for d in others])), 1)))
    probe = {"probe": 0} if "probe" in ds.dims else {}
    shift_sign, shift_label = _signed_log(
        ax_f, ds.frequency_shift.isel(probe).values if "frequency_shift" in ds else [],
        r"$\delta f_r / f_r$")
    labelled = set()
    ratio = []
    gap_values = []  # ours and the table's, for the gap panel's y range
    for k, idx in enumerate(np.ndindex(*[ds.sizes[d] for d in others])):
        pick = dict(zip(others, idx, strict=True))
        one = ds.isel(pick)
        t_b = float(np.nanmean(one.t_bath_kelvin.values))
        what = f"T_B = {t_b:.3g} K" if np.isfinite(t_b) else ", ".join(
            f"{d} = {ds[d].values[i]}" for d, i in pick.items())
        for sel, mode in _gap_modes(one):
            cur = one.isel(sel)
            style = dict(color=colors[k], ls=_STYLE.get(mode, ":"))
            label = f"{what}, {_GAP_LABEL.get(mode, mode)}"
            if "x_qp" in cur:
                ax_x.plot(xs, cur.x_qp.transpose(x).values, label=label, **style)
            ax_g.plot(xs, cur.gap_recovery.transpose(x).values, label=label, **style)
            gap_values.append(np.ravel(cur.gap_recovery.values))
            if "frequency_shift" in cur:
                ax_f.plot(xs, shift_sign * cur.frequency_shift.isel(probe).transpose(x).values,
                          label=label, **style)
                ax_q.plot(xs, cur.inverse_q_qp.isel(probe).transpose(x).values, label=label,
                          **style)
            ratio.append(np.ravel(cur.drive_rate.transpose(x).values / xs))
        # the table's points at this T_B, on the n_bar axis of these points
        c = (float(np.nanmedian((one.drive_rate / one[x]).values))
             if x == f"{drive}_n_bar" else np.nan)
        for var, ax in (("x_qp", ax_x), ("gap_recovery", ax_g)):
            if var not in compared or not np.isfinite(c):
                continue
            _, figure, panel = compared[var]
            for kind in (curve, *kinds):
                rate, y, err = curve_points(rows, figure, panel, kind, t_b, tol)
                if not rate.size:
                    continue
                mark = f"{source}" if kind == curve else f"{source}, {kind}"
                ax.errorbar(rate / c, y, yerr=np.where(err > 0, err, np.nan), fmt="o",
                            ms=4 if kind == curve else 5, color=colors[k], capsize=2,
                            mfc=colors[k] if kind == curve else "none", lw=0.8,
                            label=mark if (var, kind) not in labelled else None, zorder=3)
                labelled.add((var, kind))
                if var == "gap_recovery":
                    gap_values.append(np.ravel(y))

    ax_x.set_yscale("log")
    ax_x.set_ylabel(r"$x_{qp}$")
    ax_x.set_title(r"quasiparticle fraction $x_{qp} = n_{qp} / (2 N_0 \Delta(0))$", fontsize=9)
    ax_g.axhline(0, color="k", lw=0.5)
    ax_g.set_ylabel(r"$(\Delta_{driven} - \Delta_{eq}(T_B)) / (\Delta(0) - \Delta_{eq}(T_B))$")
    ax_g.set_title("gap change against the thermal reduction (Fischer & Catelani Fig. 6 "
                   "quantity)", fontsize=9)
    # once heating sets in the quantity falls to -1e5 and more (the thermal reduction it is
    # divided by is ~1e-9 Delta_0 at 0.1 K): cut the axis at the positive branch's scale
    g = np.concatenate(gap_values) if gap_values else np.zeros(0)
    g = g[np.isfinite(g)]
    if g.size and np.max(g) > 0 and np.min(g) < -0.5 * np.max(g):
        top = 1.3 * float(np.max(g))
        ax_g.set_ylim(-0.5 * top, top)
        ax_g.set_title(ax_g.get_title() + f"\naxis cut: values down to {np.min(g):.3g} "
                       "where the film heats", fontsize=9)
    alpha = ds.attrs.get("observables.alpha")
    ax_f.set_ylabel(shift_label)
    ax_f.set_title("frequency shift against the equilibrium film at T_B"
                   + (f", alpha = {alpha:g}" if alpha is not None else ""), fontsize=9)
    ax_q.set_yscale("log")
    ax_q.set_ylabel(r"$1/Q_{qp}$")
    ax_q.set_title("quasiparticle loss", fontsize=9)
    from ._figures import _label

    for ax in (ax_x, ax_g, ax_f, ax_q):
        ax.set_xscale("log")
        ax.set_xlabel(_label(ds, x))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    ratios = np.concatenate(ratio) if ratio else np.zeros(0)
    ratios = ratios[np.isfinite(ratios)]
    measure = drive_measure(rows)
    if (measure is not None and ratios.size and x == f"{drive}_n_bar"
            and np.ptp(ratios) <= 1e-9 * np.max(np.abs(ratios))):
        for ax in (ax_x, ax_g):
            _top_axis(ax, measure, float(ratios[0]))
    probes = ds.sizes.get("probe", 1)
    note = f"; delta f/f, 1/Q at the first of {probes} probe frequencies" if probes > 1 else ""
    fig.suptitle(f"{ds.attrs.get('title', '')}\n(N = {ds.attrs.get('model.grid.n')}; "
                 f"points: {source}, curve '{curve}'{note})", fontsize=10)
    fig.tight_layout()
    return fig

"""Figures of study datasets (PNG, matplotlib Agg): one function per kind.

(~970 lines: eight figure kinds and the helpers they share, labels, units, sign changes,
profiles; each kind is one function that a reader can take alone.)

``plot(ds, path)`` picks the figure from ``ds.attrs["figure.kind"]``:

- ``gap_change``: delta Delta / Delta_0 against the swept parameter ``figure.x``,
  one curve per value of a second swept parameter and one panel per value of a
  third; perturbative (solid: exact linear response, dashed: GL) and nonlinear
  (dots); sign changes marked and listed; with ``[steady] direction = "both"`` the
  nonlinear results of both branches (up: dots and a solid line, down: open squares and a
  dashed line, one colour per curve) and each curve's turning-point brackets shaded;
- ``delta_n``: delta n against E / Delta_0 per sweep point, kinks at
  omega_0 +- Delta_0 marked;
- ``transient``: Delta(t), n_qp(t), the time-dependent bath parameters and
  snapshots of delta n(E, t);
- ``coupling``: nonlinear and perturbative |delta Delta / Delta_0| against the
  coupling on log axes, and their relative difference;
- ``map``: a colour map over two swept parameters with the zero contour;
- ``decay``: the decay of an injected excess (``decay_excess_fraction`` against time, one
  curve per value of ``figure.x`` and the static baths) and the decay times against
  ``figure.x`` relative to the static value (slowest eigenvalue: dots, fit: crosses) with
  the Rothwarf-Taylor line (analyses ``slowest_time``, ``decay_time``, ``rothwarf_taylor``);
- ``resonator``: what a resonator made of the film sees ([observables]): delta f_r / f_r
  and 1 / Q_qp against time (evolve) or against ``figure.x`` (a sweep), one curve per
  probe frequency, with delta Delta / Delta_0 and x_qp beside them; a single steady state
  shows sigma_1, sigma_2 and both against the probe frequency;
- ``dynamic_gap_change``: delta Delta / Delta_0 against ``figure.x`` (log axis with
  ``log_x``), one curve per value of the other swept parameter, the static-bath reference
  (dashed; analysis ``static_reference``) and each curve's ``crossing``; beside it the
  boson occupation N(Omega) at ``figure.spectra_at`` for the values of ``figure.x``
  around the crossing, between n_B(Omega / T_bath) and n_B(Omega / T_qp);
- ``reference``: a readout-drive study against a published curve (analysis
  ``reference``): x_qp and the gap quantity of Fischer & Catelani's Fig. 6 against n_bar
  with the reference table's points overlaid, delta f_r / f_r and 1 / Q_qp; one colour
  per T_B, the gap convention by line style (cavity_eliashberg._figures_reference).
"""

from __future__ import annotations

import os
import re
import tempfile
import textwrap

import numpy as np
import xarray as xr

_PRETTY = {
    "omega0": r"$\omega_0$",
    "omega_d": r"$\omega_d$",
    "t_cav": r"$T_{cav}$",
    "t_ph": r"$T_{ph}$",
    "eta": r"$\eta$",
    "kappa": r"$\kappa$",
    "power": "P",
    "t_qp": r"$T_{qp}$",
    "tau_in": r"$\tau_{in}$",
    "Delta0": r"$\Delta_0$",
    "T_qp": r"$T_{qp}$",
    "/tau_in": r"$\tau_{in}^{-1}$",
    "k_B T_c": r"$k_BT_c$",
    "hbar/(k_B T_c)": r"$\hbar/k_BT_c$",
    "hbar / (k_B T_c)": r"$\hbar/k_BT_c$",
    "1": "",
    "T_c": r"$T_c$",
    "tau_b": r"$\tau_{esc}$",
    "tau0_ph": r"$\tau_0^{ph}$",
    "tau0": r"$\tau_0$",
}


def _with_unit(name: str, unit: str | None) -> str:
    """``name [unit]``, or the bare name for a dimensionless or missing unit (no "[]")."""
    pretty = _PRETTY.get((unit or "").strip(), (unit or "").strip()).strip()
    if pretty in ("", "1", "-", "dimensionless", "$$"):
        return name
    return f"{name} [{pretty}]"


def _label(ds: xr.Dataset, dim: str) -> str:
    key = ds[dim].attrs.get("long_name", dim)
    field = key.split(".")[-1]
    unit = str(ds[dim].attrs.get("units", "") or "").strip()
    name = _PRETTY.get(field, key)
    if field == "tau_b" and "phonon" not in key:  # a cavity's escape time is its lifetime
        name = r"$\tau_{cav}$"
    if unit == "/tau_in":
        return name + r"$\,\tau_{in}$"
    if unit in ("Delta0", "T_qp", "T_c", "omega0", "omega_d", "tau0_ph", "tau0"):
        return f"{name} / {_PRETTY[unit]}"
    if unit == "k_B T_c" and field.lower() in ("t_qp", "t_ph", "t_cav", "t_bath"):
        return f"{name} / {_PRETTY['T_c']}"  # a temperature: T / T_c, not "T [k_B T_c]"
    return _with_unit(name, unit)


def _finite_runs(mask: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the stretches where `mask` holds without a break."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    return np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)


def sign_changes(x, y) -> list[float]:
    """Zeros of y(x) between neighbouring samples of opposite sign, ascending in x.

    Each bracket [x_k, x_k+1] holds one zero, found by a root find (``brentq``) on a cubic
    spline (not-a-knot) through the finite samples of that stretch of the curve, not by a
    straight line between the two samples: a smooth curve sampled every 0.25 Delta_0 is
    placed to ~h^4 instead of ~h^2. With fewer than four samples in a stretch the
    interpolant is linear. A sample that is exactly zero between neighbours of opposite
    sign is a zero. Non-finite samples break the curve: no zero is sought across them.
    """
    from scipy.interpolate import CubicSpline
    from scipy.optimize import brentq

    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"sign_changes: x has {x.size} values, y has {y.size}.")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    out: list[float] = []
    for run in _finite_runs(np.isfinite(x) & np.isfinite(y)):
        xs, ys = x[run], y[run]
        if xs.size < 2 or np.any(np.diff(xs) <= 0):
            continue
        linear = lambda t, xs=xs, ys=ys: float(np.interp(t, xs, ys))  # noqa: E731
        f = linear
        if xs.size >= 4:
            spline = CubicSpline(xs, ys)
            f = lambda t, spline=spline: float(spline(t))  # noqa: E731
        s = np.sign(ys)
        for k in range(xs.size - 1):
            a, b = xs[k], xs[k + 1]
            if s[k] * s[k + 1] < 0:
                try:
                    z = brentq(f, a, b, xtol=1e-14 * max(1.0, abs(a), abs(b)), maxiter=200)
                except ValueError:  # the spline's sign at a knot differs (rounding)
                    z = brentq(linear, a, b, xtol=1e-14 * max(1.0, abs(a), abs(b)))
                out.append(float(z))
            elif s[k] == 0 and 0 < k and s[k - 1] * s[k + 1] < 0:
                out.append(float(a))
    return out


def _caption(ds: xr.Dataset) -> str:
    parts = (
        [f"T_qp = {ds.attrs['model.t_qp']:.3g} T_c"]
        if isinstance(ds.attrs.get("model.t_qp"), float)
        else []
    )
    tau = ds.attrs.get("model.tau_in")
    if isinstance(tau, float):
        parts.append(f"tau_in = {tau:g}")
    parts.append(f"N = {ds.attrs.get('model.grid.n')}")
    return ", ".join(parts)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_KINDS = ("gap_change", "delta_n", "transient", "coupling", "map", "decay",
          "dynamic_gap_change", "resonator", "reference")


def figure(ds: xr.Dataset):
    """The study's matplotlib figure (Agg), by ``ds.attrs["figure.kind"]``; the caller
    closes it. None for ``figure.kind = "none"``."""
    kind = ds.attrs.get("figure.kind", "gap_change")
    if kind == "none":
        return None
    if kind not in _KINDS:
        raise ValueError(f"figure.kind {kind!r} is not one of {sorted(_KINDS)} or 'none'.")
    fn = globals()[f"_{kind}"]
    if "branch" in ds.dims and kind != "gap_change":  # the others draw the up branch
        ds = ds.sel(branch="up", drop=True)
    return fn(ds, _plt())


def plot(ds: xr.Dataset, path: str, *, overwrite: bool = False) -> str:
    """Draw the study's figure into `path` (PNG, written atomically); returns the path."""
    kind = ds.attrs.get("figure.kind", "gap_change")
    if kind == "none":
        return ""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it.")
    plt = _plt()
    fig = figure(ds)
    fd, tmp = tempfile.mkstemp(
        prefix=".tmp-", suffix=".png", dir=os.path.dirname(os.path.abspath(path))
    )
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=130, format="png")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _sweep_dims(ds):
    return [
        d for d in ds.dims
        if d not in ("xi", "time", "bath", "process", "omega", "dynamic_bath", *_BRANCH_DIMS)
        and d != ds.attrs.get("figure.fine_x")
    ]


# the dimensions of a steady sweep continued both ways (solvers.hysteresis)
_BRANCH_DIMS = ("branch", "side", "bound")


def _gap_itself(ds) -> bool:
    """A steady sweep continued both ways with no perturbative curve, reaching T_c
    (Delta_0 = 0): its gap_change figure draws Delta itself."""
    return ("branch" in ds.get("gap_nonlinear", xr.DataArray()).dims
            and "relative_gap_change_exact" not in ds
            and "delta0" in ds and bool((ds.delta0 <= 0).any()))


def _branches(ax, one, x, nonlinear_name, scale, color, label):
    """Both branches of a ``direction = "both"`` steady sweep on `ax` (up: dots, solid;
    down: open squares, dashed) and the brackets of their turning points shaded."""
    xs = one[x].values
    y = one[nonlinear_name]
    status = next((one[s] for s in ("steady_status", "status") if s in one), None)
    if status is not None and "branch" in status.dims:  # a point that failed is not drawn
        y = y.where(status == "success")
    up = y.sel(branch="up").transpose(x).values / scale
    down = y.sel(branch="down").transpose(x).values / scale
    ax.plot(xs, up, "o-", color=color, ms=3.5, lw=1.0, label=label)
    ax.plot(xs, down, "s--", color=color, ms=4, lw=1.0, mfc="none")
    if "hysteresis_turning_point" in one:
        for b in ("up", "down"):
            ends = one.hysteresis_turning_point.sel(branch=b).values
            if np.all(np.isfinite(ends)):
                ax.axvspan(min(ends), max(ends), color=color, alpha=0.15, lw=0)


def _x_of(ds, name, x):
    """The x dimension a variable is sampled on: the refined one (``figure.fine_x``, set by
    ``[perturbative] refine``) where the variable has it, else `x`."""
    fine = ds.attrs.get("figure.fine_x")
    return fine if fine is not None and fine in ds[name].dims else x


def _curves_y(ds):
    return [v for v in ("relative_gap_change_exact", "relative_gap_change_nonlinear") if v in ds][0]


def gap_change_sign_changes(ds: xr.Dataset) -> dict:
    """{(labels of the other swept values): [x of each sign change]} of the main curve."""
    x = ds.attrs.get("figure.x") or _continued_dim(ds) or _sweep_dims(ds)[0]
    name = _curves_y(ds)
    y = ds[name]
    if "branch" in y.dims:  # a steady sweep continued both ways: the up branch
        y = y.sel(branch="up", drop=True)
    xs = _x_of(ds, name, x)
    others = [d for d in y.dims if d != xs]
    out = {}
    for idx in np.ndindex(*[ds.sizes[d] for d in others]):
        sel = {d: i for d, i in zip(others, idx, strict=True)}
        label = tuple(f"{d} = {float(ds[d][i]):g}" for d, i in sel.items())
        out[label] = sign_changes(ds[xs].values, y.isel(sel).transpose(xs).values)
    return out


def _continued_dim(ds) -> str | None:
    """The swept dimension a both-ways continuation followed (the one its turning
    points are over), or None."""
    if "hysteresis_turning_point" not in ds:
        return None
    dims = [d for d in _sweep_dims(ds) if d not in ds.hysteresis_turning_point.dims]
    return dims[0] if dims else None


def _gap_change(ds, plt):
    x = ds.attrs.get("figure.x") or _continued_dim(ds) or _sweep_dims(ds)[0]
    others = [d for d in _sweep_dims(ds) if d != x]
    curve_dim = others[0] if others else None
    panel_dim = others[1] if len(others) > 1 else None
    panels = range(ds.sizes[panel_dim]) if panel_dim else [None]
    fig, axes = plt.subplots(1, len(panels), figsize=(7.2 * len(panels), 4.8), squeeze=False)
    scale = 1.0
    ylabel = r"$\delta\Delta/\Delta_0$"
    if "figure.coupling_tau_in" in ds.attrs:
        scale = float(ds.attrs["figure.coupling_tau_in"])
        ylabel = r"$(\delta\Delta/\Delta_0)\,/\,(\eta\,\tau_{in})$"
    nl_name = "relative_gap_change_nonlinear"
    if _gap_itself(ds):  # both branches across T_c: Delta itself (Delta_0 = 0 there)
        nl_name, scale, ylabel = "gap_nonlinear", 1.0, r"$\Delta$ [$k_BT_c$]"
    xs = ds[x].values
    for ax, p in zip(axes[0], panels, strict=True):
        sub = ds.isel({panel_dim: p}) if panel_dim else ds
        ncurves = sub.sizes[curve_dim] if curve_dim else 1
        colors = plt.cm.viridis(np.linspace(0, 0.85, ncurves))
        for c in range(ncurves):
            one = sub.isel({curve_dim: c}) if curve_dim else sub
            label = (
                f"{_label(ds, curve_dim)} = {float(ds[curve_dim][c]):g}" if curve_dim else "result"
            )
            exact = (one.relative_gap_change_exact.values / scale
                     if "relative_gap_change_exact" in one else None)
            nonlinear = (one[nl_name].values / scale if nl_name in one else None)
            if nonlinear is not None and "branch" in one[nl_name].dims:
                # sign changes and the legend from the up branch; both drawn below
                nonlinear = one[nl_name].sel(branch="up").values / scale
            # the perturbative curves may be sampled finer than the nonlinear dots
            xe = ds[_x_of(ds, "relative_gap_change_exact", x)].values if exact is not None else xs
            main, xm = (exact, xe) if exact is not None else (nonlinear, xs)
            zeros = sign_changes(xm, main)
            if zeros:  # the values go into the legend, not onto the curves
                label += r"; $\delta\Delta = 0$ at " + ", ".join(f"{z:.3g}" for z in zeros)
            if exact is not None:
                ax.plot(xe, exact, color=colors[c], label=label)
                ax.plot(
                    xe, one.relative_gap_change_gl.values / scale, color=colors[c], ls="--", lw=0.9
                )
            if nonlinear is not None and "branch" in one[nl_name].dims:
                _branches(ax, one, x, nl_name, scale, colors[c],
                          None if exact is not None else label)
            elif nonlinear is not None:
                ax.plot(xs, nonlinear, "o", color=colors[c], ms=3.5,
                        label=None if exact is not None else label)
            if zeros:
                ax.plot(zeros, np.zeros(len(zeros)), ls="none", marker="|", ms=14, mew=1.6,
                        color=colors[c])
        ax.axhline(0, color="k", lw=0.6)
        if ds[x].attrs.get("units") == "Delta0" and "omega" in ds[x].attrs.get("long_name", ""):
            ax.axvline(2.0, color="grey", lw=0.6, ls="-.")
        if ds.attrs.get("figure.log_x"):
            ax.set_xscale("log")
        ax.set_xlabel(_label(ds, x))
        ax.set_ylabel(ylabel)
        title = f"{_label(ds, panel_dim)} = {float(ds[panel_dim][p]):g}" if panel_dim else ""
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="best", framealpha=0.9)
    kinds = []
    if "relative_gap_change_exact" in ds:
        kinds.append("solid: perturbative (exact linear response), dashed: GL form")
    if "relative_gap_change_nonlinear" in ds and "branch" in ds.relative_gap_change_nonlinear.dims:
        kinds.append("nonlinear: up branch dots and solid, down branch squares and dashed; "
                     "shaded: the turning-point brackets")
    elif "relative_gap_change_nonlinear" in ds:
        kinds.append("dots: nonlinear")
    kinds.append("ticks on the zero line: sign changes (values in the legend)")
    legend = textwrap.fill("; ".join(kinds), width=95 * len(panels))
    fig.suptitle(f"{ds.attrs.get('title', '')}\n{_caption(ds)}\n{legend}", fontsize=9)
    fig.tight_layout()
    return fig


def _delta_n(ds, plt):
    dims = _sweep_dims(ds)
    fig, ax = plt.subplots(figsize=(7, 4.6))
    d = dims[0] if dims else None
    npts = ds.sizes[d] if d else 1
    colors = plt.cm.plasma(np.linspace(0, 0.8, npts))
    var = "delta_n_first_order" if "delta_n_first_order" in ds else "delta_n_nonlinear"
    for k in range(npts):
        one = ds.isel({d: k}) if d else ds
        delta0 = float(one.delta0)
        e = np.sqrt(ds.xi.values**2 + delta0**2) / delta0
        label = f"{_label(ds, d)} = {float(ds[d][k]):g}" if d else var
        ax.plot(e, one[var].values, color=colors[k], label=label)
        if "delta_n_nonlinear" in one and var != "delta_n_nonlinear":
            ax.plot(e[::4], one.delta_n_nonlinear.values[::4], "o", ms=2.5, color=colors[k])
        w = float(one[f"{d}_internal"]) / delta0 if d and f"{d}_internal" in one else None
        if w is not None and "omega" in ds[d].attrs.get("long_name", ""):
            for kink, style in ((w + 1.0, "--"), (w - 1.0, ":")):
                if kink > 1.0:
                    ax.axvline(kink, color=colors[k], ls=style, lw=0.9)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlim(1.0, min(float(e.max()), 8.0))
    ax.set_xlabel(r"quasiparticle energy $E/\Delta_0$")
    ax.set_ylabel(r"$\delta n(E)$")
    ax.legend(fontsize=8)
    ax.set_title(
        f"{ds.attrs.get('title', '')}\n{_caption(ds)}\nlines: perturbative, dots: nonlinear; "
        "dashed: E = omega_0 + Delta_0, dotted: E = omega_0 - Delta_0",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def _time_axis(ds):
    tau = ds.attrs.get("model.tau_in")
    if isinstance(tau, float) and tau > 0:
        return ds.time.values / tau, r"time $t/\tau_{in}$"
    per_us, label = _time_unit(ds)
    if per_us != 1.0:  # a study with T_c: microseconds
        return ds.time.values / per_us, "time t [us]"
    return ds.time.values, r"time $t$ [$\hbar/k_BT_c$]"


def _normal_spans(ds, axes, per):
    """Shade the intervals in which the film was normal (``went_normal_at``,
    ``recovered_at``; NaN ends: the record's first / last time)."""
    if "went_normal_at" not in ds or ds.went_normal_at.size == 0:
        return
    t = ds.time.values
    for a, b in zip(ds.went_normal_at.values, ds.recovered_at.values, strict=True):
        a = t[0] if not np.isfinite(a) else a
        b = t[-1] if not np.isfinite(b) else b
        for ax in axes:
            ax.axvspan(a / per, b / per, color="0.85", zorder=0)


_PROFILES = ("Step", "Ramp", "GaussianPulse")
_PROFILE_RE = re.compile(r"^\s*(\w+)\((.*)\)\s*$")


def _parse_profile(text):
    """A stored profile (``"Step(after=1e-05, t_on=0.0, before=0.0)"``) rebuilt as the
    kinetics profile it names, or None when it is not one of the plain profiles."""
    m = _PROFILE_RE.match(str(text))
    if not m or m.group(1) not in _PROFILES:
        return None
    kwargs = {}
    for part in m.group(2).split(","):
        key, eq, value = part.partition("=")
        if not eq:
            return None
        try:
            kwargs[key.strip()] = float(value)
        except ValueError:
            return None
    import kinetics

    try:
        return getattr(kinetics, m.group(1))(**kwargs)
    except Exception:  # noqa: BLE001 - a profile we cannot rebuild is drawn from its samples
        return None


def _profile_source(ds, var):
    """The stored description of the bath parameter behind the time series `var`."""
    names = [n for n in str(ds.attrs.get("baths.names", "")).split(",") if n]
    for i, name in sorted(enumerate(names), key=lambda p: -len(p[1])):
        if var.startswith(name + "_"):
            return ds.attrs.get(f"baths.{i}.{var[len(name) + 1:]}")
    return None


def profile_curve(ds, var, n: int = 600):
    """(times, values) to draw a time-dependent bath parameter with: the profile itself on
    a fine grid when the dataset names a plain profile whose samples it reproduces (a Step
    is then a genuine step, a Gaussian pulse smooth), else the samples at the save times
    (joined by straight lines, never by stairs)."""
    time = np.asarray(ds.time.values, float)
    samples = np.asarray(ds[var].values, float)
    profile = _parse_profile(_profile_source(ds, var))
    if profile is None or time.size < 2:
        return time, samples
    try:
        if not np.allclose(np.asarray(profile(time), float), samples, rtol=1e-6,
                           atol=1e-12 * max(1.0, float(np.nanmax(np.abs(samples))))):
            return time, samples
        fine = np.linspace(time[0], time[-1], n)
        if time[-1] > 0:  # log-spaced saves: a pulse early in a long run needs log points
            first = time[time > 0].min()
            fine = np.concatenate([fine, time, np.geomspace(first, time[-1], n)])
        jumps = [float(j) for j in profile.jump_times() if time[0] < j <= time[-1]]
        left = [np.nextafter(j, -np.inf) for j in jumps]
        fine = np.unique(np.concatenate([fine, jumps, left]))
        return fine, np.asarray(profile(fine), float)
    except Exception:  # noqa: BLE001
        return time, samples


def _transient(ds, plt):
    t, tlabel = _time_axis(ds)
    per = ds.time.values[-1] / t[-1] if t[-1] else 1.0
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    ax = axes[0]
    ax.plot(t, ds.relative_gap_change.values, color="C0", label=r"$\delta\Delta(t)/\Delta_0$")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(tlabel)
    ax.set_ylabel(r"$\delta\Delta/\Delta_0$")
    profiles = [
        v
        for v in ds.data_vars
        if ds[v].dims == ("time",)
        and v not in ("gap", "relative_gap_change", "n_qp", "energy", *_OBSERVABLES)
        and not v.startswith("decay_") and not v.endswith("_static")  # analyses' results
    ]
    handles = list(ax.get_lines()[:1])
    if profiles:
        twin = ax.twinx()
        for k, v in enumerate(profiles):
            tt, yy = profile_curve(ds, v)
            peak = float(np.nanmax(np.abs(yy))) if np.any(np.isfinite(yy)) else 0.0
            peak = peak if peak > 0 else 1.0
            name = str(ds[v].attrs.get("long_name", v))
            (line,) = twin.plot(
                tt / per, yy / peak, color=f"C{k + 3}", ls="--", lw=1,
                label=_with_unit(f"{name} / {peak:.3g}", ds[v].attrs.get("units")),
            )
            handles.append(line)
        twin.set_ylabel("bath parameter / its largest value (dashed)")
        lo = min(0.0, float(np.nanmin(twin.get_ylim())))
        twin.set_ylim(lo - 0.05, 1.1)
    if "went_normal_at" in ds and ds.went_normal_at.size:  # shaded by _normal_spans below
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.85", label="normal (gap 0)"))
    # the legend sits above the panel, outside the data of both y axes
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2,
              fontsize=7, frameon=False, borderaxespad=0.0)
    ax = axes[1]
    nqp = ds.n_qp.values
    if np.nanmax(nqp / nqp[0]) > 100.0:  # a pump: decades of excess, on a log axis
        ax.plot(t, nqp / nqp[0], color="C1")
        ax.set_yscale("log")
        ax.set_ylabel(r"$n_{qp}(t)/n_{qp}(0)$")
    else:
        ax.plot(t, nqp / nqp[0] - 1.0, color="C1")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel(r"$n_{qp}(t)/n_{qp}(0) - 1$")
    ax.set_xlabel(tlabel)
    _normal_spans(ds, axes[:2], per)
    if t.size > 2 and t[1] > 0 and t[-1] / t[1] > 100.0 and np.allclose(
        np.diff(np.log(t[1:])), np.log(t[2] / t[1]), rtol=1e-6
    ):  # log-spaced saves
        for a in axes[:2]:
            a.set_xscale("log")
            a.set_xlim(t[1], t[-1])
    ax = axes[2]
    snaps = ds.attrs.get("figure.snapshots")
    times = (
        np.atleast_1d(snaps)
        if snaps is not None
        else ds.time.values[np.linspace(0, ds.sizes["time"] - 1, 5).astype(int)[1:]]
    )
    finite = np.isfinite(ds.gap.values)
    times = [ts for ts in times if finite[int(np.argmin(np.abs(ds.time.values - ts)))]]
    colors = plt.cm.viridis(np.linspace(0, 0.85, max(len(times), 1)))
    e = np.sqrt(ds.xi.values**2 + float(ds.delta0) ** 2) / float(ds.delta0)
    for c, ts in zip(colors, times, strict=False):
        k = int(np.argmin(np.abs(ds.time.values - ts)))
        one = ds.isel(time=k)
        e = np.sqrt(ds.xi.values**2 + float(one.gap) ** 2) / float(ds.delta0)
        unit = r" $\tau_{in}$" if "tau" in tlabel else (" us" if "[us]" in tlabel else "")
        ax.plot(e, one.delta_n.values, color=c, label=f"t = {t[k]:.3g}{unit}")
    ax.set_xlim(1.0, min(float(e.max()), 8.0))
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(r"$E/\Delta_0$")
    ax.set_ylabel(r"$\delta n(E, t) = n - n_F(E/T_{qp})$")
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=3, fontsize=7, frameon=False,
              borderaxespad=0.0)
    fig.suptitle(f"{ds.attrs.get('title', '')}  ({_caption(ds)})", fontsize=10)
    fig.tight_layout()
    return fig


def _coupling(ds, plt):
    x = ds.attrs.get("figure.x") or _sweep_dims(ds)[0]
    xs = ds[x].values
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(6.5, 7), sharex=True)
    pert = ds.relative_gap_change_exact.values
    nl = ds.relative_gap_change_nonlinear.values
    ax.loglog(xs, np.abs(pert), "-", label="perturbative (exact linear response)")
    ax.loglog(xs, np.abs(nl), "o", ms=4, label="nonlinear steady state")
    ax.set_ylabel(r"$|\delta\Delta/\Delta_0|$")
    ax.legend(fontsize=8)
    rel = np.abs(nl - pert) / np.abs(pert)
    ax2.loglog(xs, rel, "o-", ms=4, color="C3", label="|nonlinear - perturbative| / |perturbative|")
    ok = np.isfinite(rel) & (rel > 0)
    if ok.sum() >= 2:
        k = np.flatnonzero(ok)[0]
        ax2.loglog(xs, rel[k] * xs / xs[k], "k:", lw=0.8, label="slope 1 (second order)")
    ax2.axhline(0.1, color="grey", ls="--", lw=0.8, label="10 %")
    cross = [
        z for z in sign_changes(np.log(xs), np.log(np.where(rel > 0, rel, np.nan)) - np.log(0.1))
    ]
    for z in cross:
        ax2.axvline(np.exp(z), color="C3", ls=":", lw=0.9)
        ax.axvline(np.exp(z), color="C3", ls=":", lw=0.9)
    ax2.set_xlabel(_label(ds, x))
    ax2.set_ylabel("relative difference")
    ax2.legend(fontsize=8)
    fig.suptitle(
        f"{ds.attrs.get('title', '')}\n{_caption(ds)}; dotted: perturbation theory off by 10 %",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def solver_tolerance(ds: xr.Dataset, default: float = 1e-9) -> float:
    """The steady solver's tolerance stored with a result (attributes, then the study's
    configuration), else `default`: values of delta Delta / Delta_0 below it are noise."""
    import json

    for key in ("steady.solver.tol", "solver.tol", "steady.sweep.tol", "steady.tol"):
        v = ds.attrs.get(key)
        if isinstance(v, (int, float, np.number)) and np.isfinite(v) and v > 0:
            return float(v)
    for key, v in ds.attrs.items():
        if (key.endswith(".tol") and not key.startswith("evolve.")
                and isinstance(v, (int, float, np.number)) and np.isfinite(v) and v > 0):
            return float(v)
    try:
        v = json.loads(ds.attrs.get("config", "{}")).get("steady", {}).get("tol")
    except (TypeError, ValueError, AttributeError):
        v = None
    if isinstance(v, (int, float)) and np.isfinite(v) and v > 0:
        return float(v)
    return default


def mask_below_tolerance(z, tol: float) -> np.ndarray:
    """`z` with the values that are zero within `tol` (or within rounding of its largest
    value) set to NaN: their sign is noise, so no contour may follow them."""
    z = np.asarray(z, float)
    finite = np.isfinite(z)
    scale = float(np.max(np.abs(z[finite]))) if finite.any() else 0.0
    floor = max(float(tol), 64 * np.finfo(float).eps * scale)
    return np.where(finite & (np.abs(z) >= floor), z, np.nan)


def _map(ds, plt):
    x = ds.attrs.get("figure.x") or _sweep_dims(ds)[0]
    y = [d for d in _sweep_dims(ds) if d != x][0]
    var = (
        "relative_gap_change_nonlinear"
        if "relative_gap_change_nonlinear" in ds
        else "relative_gap_change_exact"
    )
    z = ds[var].transpose(y, x).values
    fig, ax = plt.subplots(figsize=(7, 4.8))
    lim = np.nanmax(np.abs(z))
    mesh = ax.pcolormesh(
        ds[x].values, ds[y].values, z, cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest"
    )
    tol = solver_tolerance(ds)
    signed = mask_below_tolerance(z, tol)
    if np.nanmin(signed, initial=np.inf) < 0 < np.nanmax(signed, initial=-np.inf):
        ax.contour(ds[x].values, ds[y].values, np.ma.masked_invalid(signed), levels=[0.0],
                   colors="k", linewidths=1.2)
    fig.colorbar(mesh, ax=ax, label=r"$\delta\Delta/\Delta_0$")
    ax.set_xlabel(_label(ds, x))
    ax.set_ylabel(_label(ds, y))
    ax.set_title(
        f"{ds.attrs.get('title', '')}\n{_caption(ds)}\nblack: zero contour "
        f"(|values| below the solver tolerance {tol:.0e} have no sign)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def _time_unit(ds) -> tuple[float, str]:
    """(internal time units per microsecond, label) when the study gives T_c, else (1, ...)."""
    t_c = ds.attrs.get("model.t_c")
    if t_c:
        import kinetics

        try:
            number, unit = kinetics.parse_quantity(str(t_c), name="model.t_c")
            kelvin = number * (1e-3 if unit == "mK" else 1.0)
            per_us = kinetics.to_internal(1.0, "us", dimension="time", name="t",
                                          t_c_kelvin=kelvin)
            return per_us, "t [us]"
        except kinetics.CavityEliashbergError:
            pass
    return 1.0, r"t [$\hbar/k_BT_c$]"


_DECAY_SPAN = 8.0  # slowest times shown in the decay panel (e^-8 ~ 3e-4)
_DECAY_FLOOR = 1e-6  # excess fractions below this are at the solver's noise: not drawn


def _fit_window(ds) -> tuple[float, float] | None:
    """The ``decay_time`` analysis' fit window [in slowest times] from the configuration."""
    import json

    try:
        analyses = json.loads(ds.attrs.get("config", "{}")).get("analyses", [])
        for an in analyses:
            if an.get("kind") == "decay_time" and len(an.get("window", ())) == 2:
                lo, hi = (float(v) for v in an["window"])
                return lo, hi
    except (TypeError, ValueError, AttributeError):
        pass
    return None


def decay_curve(t, fraction, tau, *, span: float = _DECAY_SPAN, floor: float = _DECAY_FLOOR):
    """(t / tau, fraction) of one decay for a log-y, linear-time panel: times up to `span`
    slowest times, values from `floor` up (below it the excess is solver noise, and a
    log axis cannot show zero or negative noise)."""
    t, f = np.asarray(t, float), np.asarray(fraction, float)
    s = t / tau
    keep = np.isfinite(s) & np.isfinite(f) & (s <= span)
    s, f = s[keep], f[keep]
    below = np.flatnonzero(f < floor)
    if below.size:  # the curve ends where it first reaches the noise
        s, f = s[: below[0]], f[: below[0]]
    return s, f


def _decay(ds, plt):
    x = ds.attrs.get("figure.x") or _sweep_dims(ds)[0]
    per_us, tlabel = _time_unit(ds)
    xs = ds[x].values
    fig, (a, b) = plt.subplots(1, 2, figsize=(12.5, 4.8))
    frac = ds.decay_excess_fraction.transpose(x, "time").values
    time = ds.time.values
    taus = (ds.slowest_time.transpose(x).values if "slowest_time" in ds
            else ds.decay_time.transpose(x).values if "decay_time" in ds else None)
    static_tau = (float(np.ravel(ds.slowest_time_static.values)[0])
                  if "slowest_time_static" in ds else None)
    unit_us = per_us != 1.0
    tunit = "us" if unit_us else r"$\hbar/k_BT_c$"
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(xs)))
    ends = []
    if taus is None:  # no time scale stored: log-y against the time itself
        for k, v in enumerate(xs):
            a.semilogy(time / per_us, frac[k], color=colors[k], label=f"{_label(ds, x)} = {v:g}")
        a.set_xlabel(tlabel)
        a.set_ylim(_DECAY_FLOOR, 1.2)
    else:
        curves = []
        if "decay_excess_fraction_static" in ds and static_tau:
            curves.append((np.ravel(ds.decay_excess_fraction_static.values), static_tau, "k",
                           "static bosons"))
        for k, v in enumerate(xs):
            curves.append((frac[k], float(taus[k]), colors[k], f"{_label(ds, x)} = {v:g}"))
        lowest = 1.0
        for f, tau, color, label in curves:
            s, y = decay_curve(time, f, tau)
            a.semilogy(s, y, color=color,
                       label=f"{label}: " + r"$\tau$" + f" = {tau / per_us:.3g} {tunit}")
            ends.append(float(time[-1] / tau))
            if y.size:
                lowest = min(lowest, float(np.min(y)))
        grid = np.linspace(0.0, _DECAY_SPAN, 50)
        a.semilogy(grid, np.exp(-grid), color="grey", ls="--", lw=0.9, label=r"$e^{-t/\tau}$")
        window = _fit_window(ds)
        if window:
            a.axvspan(*window, color="0.92", zorder=0, label="fit window of the decay time")
        a.set_xlim(0.0, _DECAY_SPAN)
        a.set_ylim(max(_DECAY_FLOOR, lowest / 2), 1.5)
        a.set_xlabel(r"time $t/\tau$, $\tau$ = the curve's slowest time (legend)")
    a.set_ylabel("excess(t) / excess(0)")
    title = "decay of the injected excess: straight line = exponential"
    cut = [e for e in ends if e < _DECAY_SPAN]
    if cut:
        title += f"\na curve ends at t_end ({min(cut):.3g} " + r"$\tau$ for the slowest)"
    a.set_title(title, fontsize=9)
    a.legend(fontsize=7, loc="lower left", framealpha=0.9)
    static = float(np.ravel(ds.slowest_time_static.values)[0])
    ratio = ds.slowest_time_ratio.transpose(x).values
    if "rothwarf_taylor_time" in ds:
        scale = float(np.ravel(ds[f"{x}_internal"].values)[0]) / xs[0]
        tau_b = float(np.ravel(ds.pair_breaking_time.values)[0])
        dense = np.geomspace(xs.min() / 3, xs.max() * 3, 100)
        b.loglog(dense, 1.0 + dense * scale / tau_b, "k-", lw=1,
                 label=r"Rothwarf-Taylor $1 + \tau_{esc}/\tau_B$")
    b.loglog(xs, ratio, "o", label="slowest eigenvalue")
    if "decay_time" in ds:
        b.loglog(xs, ds.decay_time.transpose(x).values / static, "x", ms=9,
                 label="fit of the evolution")
    for xv, yv in zip(xs, ratio, strict=True):
        b.annotate(f"{yv:.4g}", (xv, yv), textcoords="offset points", xytext=(6, -10),
                   fontsize=8)
    b.axhline(1.0, color="grey", ls=":", lw=1)
    b.set_xlabel(_label(ds, x))
    b.set_ylabel("decay time / static value")
    title = f"static: {static / per_us:.3g} {'us' if per_us != 1.0 else 'hbar/(k_B T_c)'}"
    if "rothwarf_taylor_slope_ratio" in ds:
        title += f"; slope / RT = {float(np.ravel(ds.rothwarf_taylor_slope_ratio.values)[0]):.4f}"
    b.set_title(title, fontsize=9)
    b.legend(fontsize=8)
    fig.suptitle(f"{ds.attrs.get('title', '')}  ({_caption(ds)})", fontsize=10)
    fig.tight_layout()
    return fig


def _crossings(ds, x):
    return [v for v in ds.data_vars
            if ds[v].attrs.get("analysis") == "crossing" and ds[v].attrs.get("along") == x]


def _dynamic_gap_change(ds, plt):
    import json

    x = ds.attrs.get("figure.x") or _sweep_dims(ds)[0]
    others = [d for d in _sweep_dims(ds) if d != x]
    curve = others[0] if others else None
    var = ("relative_gap_change_nonlinear" if "relative_gap_change_nonlinear" in ds
           else "relative_gap_change_exact")
    spectra = "boson_occupation_nonlinear" in ds
    fig, axes = plt.subplots(1, 2 if spectra else 1, figsize=(11.5 if spectra else 6.5, 4.4),
                             squeeze=False)
    a = axes[0][0]
    xs = ds[x].values
    cross = _crossings(ds, x)
    n = ds.sizes[curve] if curve else 1
    for c in range(n):
        one = ds.isel({curve: c}) if curve else ds
        label = f"{_label(ds, curve)} = {float(ds[curve][c]):.2g}" if curve else "result"
        for v in cross:
            label += f"; {v} = {float(one[v]):.2g}"
        a.plot(xs, one[var].transpose(x).values, "o-", ms=3, label=label)
    if "relative_gap_change_static" in ds:
        for v in np.unique(np.ravel(ds.relative_gap_change_static.values)):
            a.axhline(v, color="k", ls="--", lw=1, label="static bosons")
    a.axhline(0.0, color="grey", lw=0.5)
    if ds.attrs.get("figure.log_x"):
        a.set_xscale("log")
    a.set_xlabel(_label(ds, x))
    a.set_ylabel(r"$\delta\Delta/\Delta_0$")
    a.legend(fontsize=7)
    a.set_title(_caption(ds), fontsize=9)
    if spectra:
        b = axes[0][1]
        at = json.loads(ds.attrs.get("config", "{}")).get("figure", {}).get("spectra_at")
        sel = {curve: float(at) if at is not None else float(ds[curve][0])} if curve else {}
        one = ds.sel(sel, method="nearest") if sel else ds
        occ = one.boson_occupation_nonlinear
        omega_dim = [d for d in occ.dims if d != x and d not in _sweep_dims(ds)][-1]
        extra = [d for d in occ.dims if d not in (x, omega_dim)]
        occ = occ.isel({d: 0 for d in extra}).transpose(x, omega_dim)
        om = ds[omega_dim].values
        pick = np.arange(ds.sizes[x])
        if cross and np.isfinite(float(one[cross[0]])):
            half = float(one[cross[0]])
            near = np.flatnonzero(np.abs(np.log10(xs / half)) <= 3.01) if np.all(xs > 0) else pick
            pick = near if near.size else pick
        pick = pick[np.unique(np.linspace(0, len(pick) - 1, min(7, len(pick))).round().astype(int))]
        cmap = plt.get_cmap("viridis")
        for j, k in enumerate(pick):
            b.semilogy(om, occ.values[k], color=cmap(j / max(1, len(pick) - 1)),
                       label=f"{_label(ds, x)} = {xs[k]:.1e}")
        t_qp = ds.attrs.get("model.t_qp")
        t_bath = next((v for k, v in ds.attrs.items()
                       if k.startswith("baths.") and k.split(".")[-1] in ("t_cav", "t_ph")
                       and isinstance(v, float)), None)
        for temp, style, name in ((t_bath, "k--", "n_B(Omega / T_bath)"),
                                  (t_qp, "k:", "n_B(Omega / T_qp)")):
            if isinstance(temp, float) and temp > 0:
                b.semilogy(om, 1.0 / np.expm1(om / temp), style, lw=1, label=name)
        b.set_ylim(1e-8, 1)
        shown = np.asarray(occ.values)[pick]
        visible = om[np.any(shown > 1e-8, axis=0)] if shown.size else om
        if visible.size:  # the spectra fall below the axis long before the last node
            b.set_xlim(om[0] - 0.05 * (visible[-1] - om[0]), visible[-1] * 1.15)
        b.set_xlabel(r"$\Omega$ [$k_BT_c$]")
        b.set_ylabel(r"boson occupation $N(\Omega)$")
        b.set_title(f"{curve} = {float(one[curve]):.2g}" if curve else "", fontsize=9)
        b.legend(fontsize=7)
    fig.suptitle(ds.attrs.get("title", ""), fontsize=10)
    fig.tight_layout()
    return fig


# the observables' per-state variables (solvers.add_observables): not bath profiles
_OBSERVABLES = ("x_qp", "t_star", "t_star_mk", "gap_uev", "n_qp_um3")


def _probe_labels(ds) -> list[str]:
    if "probe_frequency" in ds.coords:
        return [f"f_r = {f:.4g} GHz" for f in ds.probe_frequency.values]
    return [f"hbar omega = {w:.3g} k_B T_c" for w in ds.probe_energy.values]


def _resonator_x(ds):
    """(x values, label, dimension) of the resonator panels: time (in ns or us when the
    study gives T_c, else tau_in), or the swept parameter ``figure.x``."""
    if "time" in ds.dims:
        if "time_ns" in ds.coords:
            t_ns = ds.time_ns.values
            span = float(np.nanmax(np.abs(t_ns))) if t_ns.size else 0.0
            if span >= 2e3:
                return t_ns * 1e-3, "time t [us]", "time"
            return t_ns, "time t [ns]", "time"
        t, label = _time_axis(ds)
        return t, label, "time"
    x = ds.attrs.get("figure.x") or (_sweep_dims(ds) or [None])[0]
    if x is None:
        return None, "", None
    return ds[x].values, _label(ds, x), x


def _resonator(ds, plt):
    xs, xlabel, xdim = _resonator_x(ds)
    labels = _probe_labels(ds)
    if xdim is None:  # a single steady state: the spectra against the probe frequency
        return _resonator_spectrum(ds, plt, labels)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    others = [d for d in ds.frequency_shift.dims if d not in (xdim, "probe")]
    pick = {d: 0 for d in others}  # further sweep axes: their first value
    colors = plt.cm.viridis(np.linspace(0, 0.8, max(len(labels), 1)))
    for k, label in enumerate(labels):
        one = ds.isel(pick).isel(probe=k)
        axes[0].plot(xs, one.frequency_shift.transpose(xdim).values, color=colors[k],
                     label=label)
        axes[1].plot(xs, one.inverse_q_qp.transpose(xdim).values, color=colors[k], label=label)
    axes[0].axhline(0, color="k", lw=0.5)
    axes[0].set_ylabel(r"$\delta f_r / f_r$")
    axes[1].set_ylabel(r"$1/Q_{qp}$")
    alpha = ds.attrs.get("observables.alpha")
    axes[0].set_title(
        "frequency shift against the equilibrium film at $T_{qp}$"
        + (f", alpha = {alpha:g}" if alpha is not None else ""), fontsize=9)
    axes[1].set_title("quasiparticle loss", fontsize=9)
    for ax in axes[:2]:
        ax.legend(fontsize=7)
    ax = axes[2]
    rel = "relative_gap_change" if "relative_gap_change" in ds else "relative_gap_change_nonlinear"
    if rel in ds:
        ax.plot(xs, ds[rel].isel(pick).transpose(xdim).values, color="C0",
                label=r"$\delta\Delta/\Delta_0$")
    ax.set_ylabel(r"$\delta\Delta/\Delta_0$", color="C0")
    ax.axhline(0, color="k", lw=0.5)
    if "x_qp" in ds:
        twin = ax.twinx()
        twin.plot(xs, ds.x_qp.isel(pick).transpose(xdim).values, color="C1", ls="--")
        twin.set_ylabel(r"$x_{qp}$ (dashed)", color="C1")
    ax.set_title("gap change and quasiparticle fraction", fontsize=9)
    for ax in axes:
        ax.set_xlabel(xlabel)
        if xdim != "time" and ds.attrs.get("figure.log_x"):
            ax.set_xscale("log")
    note = f"; further axes at their first value ({', '.join(others)})" if others else ""
    fig.suptitle(f"{ds.attrs.get('title', '')}  ({_caption(ds)}{note})", fontsize=10)
    fig.tight_layout()
    return fig


def _reference(ds, plt):
    from ._figures_reference import draw

    return draw(ds, plt)


def _resonator_spectrum(ds, plt, labels):
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.4))
    f = ds.probe_frequency.values if "probe_frequency" in ds.coords else ds.probe_energy.values
    unit = "GHz" if "probe_frequency" in ds.coords else r"$k_BT_c$"
    order = np.argsort(f)
    a.plot(f[order], ds.sigma1.values[order], "o-", label=r"$\sigma_1/\sigma_N$")
    a.plot(f[order], ds.sigma1_equilibrium.values[order], "k:", label="equilibrium")
    b.plot(f[order], ds.sigma2.values[order], "o-", label=r"$\sigma_2/\sigma_N$")
    b.plot(f[order], ds.sigma2_equilibrium.values[order], "k:", label="equilibrium")
    for ax in (a, b):
        ax.set_xlabel(f"probe frequency [{unit}]")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    shifts = ", ".join(
        f"{lab}: df/f = {s:.3g}, 1/Q = {q:.3g}"
        for lab, s, q in zip(labels, ds.frequency_shift.values, ds.inverse_q_qp.values,
                             strict=True)
    )
    fig.suptitle(f"{ds.attrs.get('title', '')}  ({_caption(ds)})\n{textwrap.fill(shifts, 140)}",
                 fontsize=9)
    fig.tight_layout()
    return fig

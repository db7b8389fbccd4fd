"""Figures of study datasets (PNG, matplotlib Agg): one function per kind.

``plot(ds, path)`` picks the figure from ``ds.attrs["figure.kind"]``:

- ``gap_change``: delta Delta / Delta_0 against the swept parameter ``figure.x``,
  one curve per value of a second swept parameter and one panel per value of a
  third; perturbative (solid: exact linear response, dashed: GL) and nonlinear
  (dots); sign changes marked and listed;
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
- ``dynamic_gap_change``: delta Delta / Delta_0 against ``figure.x`` (log axis with
  ``log_x``), one curve per value of the other swept parameter, the static-bath reference
  (dashed; analysis ``static_reference``) and each curve's ``crossing``; beside it the
  boson occupation N(Omega) at ``figure.spectra_at`` for the values of ``figure.x``
  around the crossing, between n_B(Omega / T_bath) and n_B(Omega / T_qp).
"""

from __future__ import annotations

import os
import tempfile

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
    "1": "",
    "T_c": r"$T_c$",
}


def _label(ds: xr.Dataset, dim: str) -> str:
    key = ds[dim].attrs.get("long_name", dim)
    field = key.split(".")[-1]
    unit = ds[dim].attrs.get("units", "")
    name = _PRETTY.get(field, key)
    if unit == "/tau_in":
        return name + r"$\,\tau_{in}$"
    if unit in ("Delta0", "T_qp", "T_c", "omega0", "omega_d"):
        return f"{name} / {_PRETTY[unit]}"
    return f"{name} [{_PRETTY.get(unit, unit)}]" if unit and unit != "1" else name


def sign_changes(x, y) -> list[float]:
    """Zeros of y(x) by linear interpolation between neighbours of opposite sign."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    out = []
    for k in range(len(x) - 1):
        if np.isfinite(y[k]) and np.isfinite(y[k + 1]) and np.sign(y[k]) * np.sign(y[k + 1]) < 0:
            out.append(float(x[k] - y[k] * (x[k + 1] - x[k]) / (y[k + 1] - y[k])))
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


def plot(ds: xr.Dataset, path: str, *, overwrite: bool = False) -> str:
    """Draw the study's figure into `path` (PNG, written atomically); returns the path."""
    kind = ds.attrs.get("figure.kind", "gap_change")
    if kind == "none":
        return ""
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it.")
    fn = {
        "gap_change": _gap_change,
        "delta_n": _delta_n,
        "transient": _transient,
        "coupling": _coupling,
        "map": _map,
        "decay": _decay,
        "dynamic_gap_change": _dynamic_gap_change,
    }[kind]
    plt = _plt()
    fig = fn(ds, plt)
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
        if d not in ("xi", "time", "bath", "process", "omega", "dynamic_bath")
    ]


def _curves_y(ds):
    return [v for v in ("relative_gap_change_exact", "relative_gap_change_nonlinear") if v in ds][0]


def gap_change_sign_changes(ds: xr.Dataset) -> dict:
    """{(labels of the other swept values): [x of each sign change]} of the main curve."""
    x = ds.attrs.get("figure.x") or _sweep_dims(ds)[0]
    y = ds[_curves_y(ds)]
    others = [d for d in y.dims if d != x]
    out = {}
    for idx in np.ndindex(*[ds.sizes[d] for d in others]):
        sel = {d: i for d, i in zip(others, idx)}
        label = tuple(f"{d} = {float(ds[d][i]):g}" for d, i in sel.items())
        out[label] = sign_changes(ds[x].values, y.isel(sel).transpose(x).values)
    return out


def _gap_change(ds, plt):
    x = ds.attrs.get("figure.x") or _sweep_dims(ds)[0]
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
    xs = ds[x].values
    for ax, p in zip(axes[0], panels):
        sub = ds.isel({panel_dim: p}) if panel_dim else ds
        ncurves = sub.sizes[curve_dim] if curve_dim else 1
        colors = plt.cm.viridis(np.linspace(0, 0.85, ncurves))
        for c in range(ncurves):
            one = sub.isel({curve_dim: c}) if curve_dim else sub
            label = (
                f"{_label(ds, curve_dim)} = {float(ds[curve_dim][c]):g}" if curve_dim else "result"
            )
            main = None
            if "relative_gap_change_exact" in one:
                main = one.relative_gap_change_exact.values / scale
                ax.plot(xs, main, color=colors[c], label=label)
                ax.plot(
                    xs, one.relative_gap_change_gl.values / scale, color=colors[c], ls="--", lw=0.9
                )
            if "relative_gap_change_nonlinear" in one:
                y = one.relative_gap_change_nonlinear.values / scale
                ax.plot(
                    xs, y, "o", color=colors[c], ms=3.5, label=None if main is not None else label
                )
                main = y if main is None else main
            for z in sign_changes(xs, main):
                ax.axvline(z, color=colors[c], ls=":", lw=1.0)
                ax.annotate(
                    f"{z:.2f}",
                    (z, 0),
                    textcoords="offset points",
                    xytext=(2, 4 + 9 * c),
                    fontsize=7,
                    color=colors[c],
                )
        ax.axhline(0, color="k", lw=0.6)
        if ds[x].attrs.get("units") == "Delta0" and "omega" in ds[x].attrs.get("long_name", ""):
            ax.axvline(2.0, color="grey", lw=0.6, ls="-.")
        if ds.attrs.get("figure.log_x"):
            ax.set_xscale("log")
        ax.set_xlabel(_label(ds, x))
        ax.set_ylabel(ylabel)
        title = f"{_label(ds, panel_dim)} = {float(ds[panel_dim][p]):g}" if panel_dim else ""
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    kinds = []
    if "relative_gap_change_exact" in ds:
        kinds.append("solid: perturbative (exact linear response), dashed: GL form")
    if "relative_gap_change_nonlinear" in ds:
        kinds.append("dots: nonlinear")
    kinds.append("dotted: sign changes")
    fig.suptitle(f"{ds.attrs.get('title', '')}\n{_caption(ds)}\n" + "; ".join(kinds), fontsize=9)
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
    return ds.time.values, r"time $t$ [$\hbar/k_BT_c$]"


def _transient(ds, plt):
    t, tlabel = _time_axis(ds)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    ax.plot(t, ds.relative_gap_change.values, color="C0", label=r"$\delta\Delta(t)/\Delta_0$")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(tlabel)
    ax.set_ylabel(r"$\delta\Delta/\Delta_0$")
    profiles = [
        v
        for v in ds.data_vars
        if ds[v].dims == ("time",) and v not in ("gap", "relative_gap_change", "n_qp", "energy")
    ]
    if profiles:
        twin = ax.twinx()
        for k, v in enumerate(profiles):
            twin.plot(
                t,
                ds[v].values,
                color=f"C{k + 3}",
                ls="--",
                lw=1,
                drawstyle="steps-post",
                label=ds[v].attrs.get("long_name", v),
            )
        twin.set_ylabel("bath parameter (dashed) [internal units]")
        twin.legend(loc="center right", fontsize=7)
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1]
    nqp = ds.n_qp.values
    ax.plot(t, nqp / nqp[0] - 1.0, color="C1")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(tlabel)
    ax.set_ylabel(r"$n_{qp}(t)/n_{qp}(0) - 1$")
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
    for c, ts in zip(colors, times):
        k = int(np.argmin(np.abs(ds.time.values - ts)))
        one = ds.isel(time=k)
        e = np.sqrt(ds.xi.values**2 + float(one.gap) ** 2) / float(ds.delta0)
        unit = r" $\tau_{in}$" if "tau" in tlabel else ""
        ax.plot(e, one.delta_n.values, color=c, label=f"t = {t[k]:.3g}{unit}")
    ax.set_xlim(1.0, min(float(e.max()), 8.0))
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(r"$E/\Delta_0$")
    ax.set_ylabel(r"$\delta n(E, t) = n - n_F(E/T_{qp})$")
    ax.legend(fontsize=7)
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
    ax.contour(ds[x].values, ds[y].values, z, levels=[0.0], colors="k", linewidths=1.2)
    fig.colorbar(mesh, ax=ax, label=r"$\delta\Delta/\Delta_0$")
    ax.set_xlabel(_label(ds, x))
    ax.set_ylabel(_label(ds, y))
    ax.set_title(f"{ds.attrs.get('title', '')}\n{_caption(ds)}; black: zero contour", fontsize=9)
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


def _decay(ds, plt):
    x = ds.attrs.get("figure.x") or _sweep_dims(ds)[0]
    per_us, tlabel = _time_unit(ds)
    t = ds.time.values / per_us
    xs = ds[x].values
    fig, (a, b) = plt.subplots(1, 2, figsize=(11.5, 4.4))
    positive = t > 0
    frac = ds.decay_excess_fraction.transpose(x, "time").values
    if "decay_excess_fraction_static" in ds:
        a.semilogy(t[positive], np.ravel(ds.decay_excess_fraction_static.values)[positive],
                   color="k", label="static bosons")
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(xs)))
    for k, v in enumerate(xs):
        a.semilogy(t[positive], frac[k][positive], color=colors[k],
                   label=f"{_label(ds, x)} = {v:g}")
    a.set_xscale("log")
    a.set_ylim(1e-2, 1.2)
    a.set_xlabel(tlabel)
    a.set_ylabel("excess(t) / excess(0)")
    a.set_title("decay of the injected excess", fontsize=9)
    a.legend(fontsize=7)
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
        b.set_xlabel(r"$\Omega$ [$k_BT_c$]")
        b.set_ylabel(r"boson occupation $N(\Omega)$")
        b.set_title(f"{curve} = {float(one[curve]):.2g}" if curve else "", fontsize=9)
        b.legend(fontsize=7)
    fig.suptitle(ds.attrs.get("title", ""), fontsize=10)
    fig.tight_layout()
    return fig

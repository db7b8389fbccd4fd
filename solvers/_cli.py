"""The console script ``cavity-eliashberg``.

``cavity-eliashberg run`` (no configuration) runs the built-in default study:
the equilibrium gap table and the paper's Fig. 1(a), delta Delta / Delta_0 of a
multimode cavity against omega_0 / Delta_0 for several photon temperatures, by
perturbation theory (GL and exact linear response) and by the full nonlinear
steady state, written as netCDF and PNG.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import xarray as xr

import kinetics

from ._dataset import SolverError, load, save
from ._perturbative import perturbative
from ._steady import steady_state

DEFAULT_STUDY = {
    "study": "fig1a",
    "t_qp": 0.9,
    "tau_in": 1000.0,
    "eta_tau_in": 0.0155,
    "t_cav_ratios": [0.0, 0.25, 0.5, 0.75],
    "omega0_ratios": [float(x) for x in np.round(np.linspace(0.5, 6.0, 23), 4)],
    "nonlinear_omega0_ratios": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0],
    "grid": {"n": 300, "xi_max": 30.0, "core": 2.0},
}


def _sign_changes(x, y):
    out = []
    for k in range(len(x) - 1):
        if np.sign(y[k]) != np.sign(y[k + 1]) and np.isfinite(y[k]) and np.isfinite(y[k + 1]):
            out.append(x[k] - y[k] * (x[k + 1] - x[k]) / (y[k + 1] - y[k]))
    return out


def fig1a(cfg: dict, progress: bool = True) -> xr.Dataset:
    """delta Delta / Delta_0 against omega_0 / Delta_0 and T_cav / T_qp (paper Fig. 1(a))."""
    from tqdm import tqdm

    grid = kinetics.Grid(**cfg["grid"])
    t_qp, tau_in = cfg["t_qp"], cfg["tau_in"]
    eta = cfg["eta_tau_in"] / tau_in
    delta0 = kinetics.equilibrium_gap(t_qp, grid)
    ratios, w_pert, w_nl = cfg["t_cav_ratios"], cfg["omega0_ratios"], cfg["nonlinear_omega0_ratios"]
    exact = np.full((len(ratios), len(w_pert)), np.nan)
    gl = np.full_like(exact, np.nan)
    nonlinear = np.full((len(ratios), len(w_nl)), np.nan)
    residual = np.full_like(nonlinear, np.nan)

    def model(r, w):
        bath = kinetics.MultimodeCavity(omega0=w * delta0, t_cav=r * t_qp, eta=eta)
        return kinetics.Model(t_qp=t_qp, tau_in=tau_in, baths=[bath], grid=grid)

    total = len(ratios) * (len(w_pert) + len(w_nl))
    with warnings.catch_warnings(), tqdm(total=total, disable=not progress, desc="fig1a") as bar:
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        for a, r in enumerate(ratios):
            for b, w in enumerate(w_pert):
                ds = perturbative(model(r, w))
                exact[a, b] = float(ds.relative_gap_change)
                gl[a, b] = float(ds.relative_gap_change_gl)
                bar.update()
            for b, w in enumerate(w_nl):
                try:
                    ds = steady_state(model(r, w))
                except SolverError as err:
                    ds = err.partial
                nonlinear[a, b] = float(ds.relative_gap_change)
                residual[a, b] = float(ds.attrs["solver.residual"])
                bar.update()
    out = xr.Dataset(
        {
            "relative_gap_change_exact": (("t_cav_ratio", "omega0_ratio"), exact),
            "relative_gap_change_gl": (("t_cav_ratio", "omega0_ratio"), gl),
            "relative_gap_change_nonlinear": (("t_cav_ratio", "omega0_ratio_nonlinear"), nonlinear),
            "newton_residual": (("t_cav_ratio", "omega0_ratio_nonlinear"), residual),
        },
        coords={
            "t_cav_ratio": ("t_cav_ratio", np.asarray(ratios)),
            "omega0_ratio": ("omega0_ratio", np.asarray(w_pert)),
            "omega0_ratio_nonlinear": ("omega0_ratio_nonlinear", np.asarray(w_nl)),
        },
    )
    units = {
        "relative_gap_change_exact": "delta Delta / Delta_0, perturbative, exact linear response",
        "relative_gap_change_gl": "delta Delta / Delta_0, perturbative, Ginzburg-Landau form",
        "relative_gap_change_nonlinear": "delta Delta / Delta_0, full nonlinear steady state",
        "newton_residual": "Newton residual max|dn/dt| tau_in",
        "t_cav_ratio": "T_cav / T_qp",
        "omega0_ratio": "omega_0 / Delta_0",
        "omega0_ratio_nonlinear": "omega_0 / Delta_0",
    }
    for k, v in units.items():
        out[k].attrs.update(long_name=v, units="1")
    out.attrs.update(
        {
            "title": "cavity-eliashberg: paper Fig. 1(a), multimode cavity",
            "model.t_qp": t_qp,
            "model.tau_in": tau_in,
            "model.delta0": delta0,
            "eta_tau_in": cfg["eta_tau_in"],
            "model.grid.n": grid.n,
            "model.grid.xi_max": grid.xi_max,
            "model.grid.core": grid.core,
            "units": "hbar = k_B = 1; energies in k_B T_c, times in hbar/(k_B T_c)",
        }
    )
    return out


def plot_fig1a(ds: xr.Dataset, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.cm.viridis(np.linspace(0, 0.85, ds.sizes["t_cav_ratio"]))
    x = ds.omega0_ratio.values
    xn = ds.omega0_ratio_nonlinear.values
    for c, r in zip(colors, ds.t_cav_ratio.values):
        y = ds.relative_gap_change_exact.sel(t_cav_ratio=r).values
        ax.plot(x, y, color=c, label=f"T_cav/T_qp = {r:g} (exact linear response)")
        ax.plot(x, ds.relative_gap_change_gl.sel(t_cav_ratio=r).values, color=c, ls="--", lw=1)
        ax.plot(xn, ds.relative_gap_change_nonlinear.sel(t_cav_ratio=r).values, "o", color=c, ms=4)
        for z in _sign_changes(x, y):
            ax.axvline(z, color=c, ls=":", lw=0.8)
    ax.axhline(0, color="k", lw=0.6)
    ax.axvline(2.0, color="grey", lw=0.6, ls="-.")
    ax.set_xlabel(r"cavity frequency $\omega_0/\Delta_0$")
    ax.set_ylabel(r"$\delta\Delta/\Delta_0$")
    ax.set_title(
        f"Multimode cavity, T_qp = {ds.attrs['model.t_qp']:g} T_c, eta tau_in = {ds.attrs['eta_tau_in']:g}"
        "\nlines: perturbative (solid exact, dashed GL); dots: nonlinear steady state",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def _gap_table() -> str:
    ts = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99]
    gaps = kinetics.equilibrium_gap(np.asarray(ts))
    lines = ["Equilibrium BCS gap (units of T_c):", "   T/T_c    Delta/T_c"]
    lines += [f"  {t:6.2f}   {d:10.6f}" for t, d in zip(ts, gaps)]
    return "\n".join(lines)


def _run(args) -> int:
    if args.config is not None:
        raise SystemExit(
            "cavity-eliashberg run: configuration files are not supported yet; run without "
            "a CONFIG for the built-in Fig. 1(a) study."
        )
    cfg = dict(DEFAULT_STUDY)
    if args.quick:
        cfg.update(
            grid={"n": 120, "xi_max": 30.0, "core": 2.0},
            omega0_ratios=[1.0, 2.0, 3.0, 4.0],
            nonlinear_omega0_ratios=[1.0, 3.0],
            t_cav_ratios=[0.0, 0.5],
        )
    os.makedirs(args.output, exist_ok=True)
    print(_gap_table())
    clock = time.perf_counter()
    ds = fig1a(cfg, progress=not args.no_progress)
    ds.attrs["wall_time_s"] = time.perf_counter() - clock
    nc = save(ds, os.path.join(args.output, "fig1a.nc"), overwrite=True)
    png = plot_fig1a(ds, os.path.join(args.output, "fig1a.png"))
    print(f"\nFig. 1(a): delta Delta / Delta_0 (exact linear response) at T_qp = {cfg['t_qp']}:")
    header = "  omega0/Delta0 " + "".join(f"  Tcav/Tqp={r:<5g}" for r in ds.t_cav_ratio.values)
    print(header)
    for b, w in enumerate(ds.omega0_ratio.values):
        row = "".join(f"  {v:+14.4e}" for v in ds.relative_gap_change_exact.values[:, b])
        print(f"  {w:12.3f} {row}")
    for r in ds.t_cav_ratio.values:
        zs = _sign_changes(ds.omega0_ratio.values, ds.relative_gap_change_exact.sel(t_cav_ratio=r).values)
        print(f"  sign change(s) for T_cav/T_qp = {r:g}: " + (", ".join(f"omega0 = {z:.3f} Delta0" for z in zs) or "none"))
    print(f"\nwrote {nc}\nwrote {png}\n(wall time {ds.attrs['wall_time_s']:.1f} s)")
    return 0


def _show(args) -> int:
    ds = load(args.file)
    print(f"{args.file}: {ds.attrs.get('title', '')}")
    for k, v in ds.attrs.items():
        if k != "config":
            print(f"  {k} = {v}")
    for name in ds.data_vars:
        da = ds[name]
        if da.ndim == 0:
            print(f"  {name} = {float(da):.6g} [{da.attrs.get('units', '')}]")
        elif da.dims == ("time",):
            print(f"  {name} = {float(da[-1]):.6g} at the last time [{da.attrs.get('units', '')}]")
        elif "xi" not in da.dims:
            v = da.values
            print(f"  {name}: {da.dims}, from {np.nanmin(v):.4g} to {np.nanmax(v):.4g}")
    return 0


def _plot(args) -> int:
    ds = load(args.file)
    out = args.output or os.path.splitext(args.file)[0] + ".png"
    if "relative_gap_change_exact" in ds:
        plot_fig1a(ds, out)
    else:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        if "time" in ds.dims:
            ds.relative_gap_change.plot(ax=ax)
        else:
            ds.delta_n.plot(ax=ax)
        fig.tight_layout()
        fig.savefig(out, dpi=130)
        plt.close(fig)
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="cavity-eliashberg",
        description="Kinetic equation of Bogoliubov quasiparticles coupled to cavity photons, "
        "phonons and drives, with a self-consistent BCS gap.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run a study (default: the paper's Fig. 1(a))")
    p_run.add_argument("config", nargs="?", default=None, help="configuration file (not yet supported)")
    p_run.add_argument("--output", default=os.path.join("runs", "output"), help="output folder")
    p_run.add_argument("--quick", action="store_true", help="coarse grid and few points (a smoke test)")
    p_run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p_run.set_defaults(func=_run)
    p_show = sub.add_parser("show", help="summarize a saved dataset")
    p_show.add_argument("file")
    p_show.set_defaults(func=_show)
    p_plot = sub.add_parser("plot", help="figures from a saved dataset")
    p_plot.add_argument("file")
    p_plot.add_argument("--output", default=None)
    p_plot.set_defaults(func=_plot)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except kinetics.CavityEliashbergError as err:
        print(f"cavity-eliashberg: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Study: delta Delta / Delta_0 of the nonlinear steady state on a 2-D map
omega_0 / Delta_0 x T_cav / T_qp (the paper's Fig. 1(a) regime as a colour map).

Multimode cavity (paper eq. (16)) at T_qp = 0.9 T_c, tau_in = 1000 hbar/(k_B T_c),
eta tau_in = 0.0155, grid n = 300, xi_max = 30, core = 2 (the built-in fig1a study's
settings, solvers/_cli.py). Each point is ``solvers.steady_state`` of the model, run
through ``solvers.sweep``; the figure is a colour map with the zero contour (the
boundary between gap enhancement and suppression) and the pair-breaking threshold
omega_0 = 2 Delta_0.

    python runs/sweep_fig1a_map.py                 # 24 x 11 points, ~1 min on 2 cores
    python runs/sweep_fig1a_map.py --quick         # coarse grid, a smoke test
    python runs/sweep_fig1a_map.py --scheduler tcp://host:8786   # on a dask cluster

Writes ``sweep_fig1a_map[_quick].nc`` and ``.png`` into ``runs/output/`` (ignored by
git). An interrupted run resumes from ``<file>.nc.parts/``; a finished one is only
redrawn.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import kinetics  # noqa: E402
import solvers  # noqa: E402

STUDY = {
    "t_qp": 0.9,
    "tau_in": 1000.0,
    "eta_tau_in": 0.0155,
    "grid": {"n": 300, "xi_max": 30.0, "core": 2.0},
    "omega0_ratio": [float(x) for x in np.round(np.linspace(0.5, 6.0, 24), 6)],
    "t_cav_ratio": [float(x) for x in np.round(np.linspace(0.0, 1.0, 11), 6)],
}
QUICK = {
    "grid": {"n": 120, "xi_max": 30.0, "core": 2.0},
    "omega0_ratio": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
    "t_cav_ratio": [0.0, 0.25, 0.5, 0.75, 1.0],
}
UNITS = {"omega0_ratio": ("omega_0 / Delta_0", "1"), "t_cav_ratio": ("T_cav / T_qp", "1")}
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


def multimode_model(omega0_ratio, t_cav_ratio, *, t_qp, tau_in, eta_tau_in, grid):
    """The factory: omega_0 in units of Delta_0 = Delta(T_qp) on the grid, T_cav of T_qp.

    Module-level, so that ``functools.partial(multimode_model, t_qp=..., ...)`` pickles
    for dask workers.
    """
    g = kinetics.Grid(**grid)
    delta0 = kinetics.equilibrium_gap(t_qp, g)
    bath = kinetics.MultimodeCavity(
        omega0=omega0_ratio * delta0, t_cav=t_cav_ratio * t_qp, eta=eta_tau_in / tau_in
    )
    return kinetics.Model(t_qp=t_qp, tau_in=tau_in, baths=[bath], grid=g)


def plot(ds, path: str) -> str:
    """Colour map of delta Delta / Delta_0 with its zero contour; failed points marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    x = ds.omega0_ratio.values
    y = ds.t_cav_ratio.values
    z = ds.relative_gap_change.transpose("t_cav_ratio", "omega0_ratio").values
    ok = ds.status.transpose("t_cav_ratio", "omega0_ratio").values == "success"
    zmask = np.where(ok, z, np.nan)
    lim = np.nanmax(np.abs(zmask)) if np.isfinite(zmask).any() else 1.0
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    mesh = ax.pcolormesh(
        x,
        y,
        zmask,
        shading="nearest",
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vmin=-lim, vcenter=0.0, vmax=lim),
    )
    fig.colorbar(mesh, ax=ax, label=r"$\delta\Delta/\Delta_0$ (nonlinear steady state)")
    if np.isfinite(zmask).sum() >= 4 and np.nanmin(zmask) < 0 < np.nanmax(zmask):
        cs = ax.contour(x, y, zmask, levels=[0.0], colors="k", linewidths=1.5)
        ax.clabel(cs, fmt={0.0: r"$\delta\Delta = 0$"}, fontsize=8)
    if y.max() == 1.0:
        ax.text(
            x.max(),
            1.0,
            r"$T_\mathrm{cav} = T_\mathrm{qp}$: equilibrium, $\delta\Delta = 0$ ",
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
        )
    ax.axvline(2.0, color="0.3", lw=0.8, ls="-.")
    ax.text(
        2.05,
        y.min(),
        r"$\omega_0 = 2\Delta_0$",
        va="bottom",
        fontsize=8,
        color="0.2",
        bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1.5},
    )
    bad = ~ok
    if bad.any():
        xx, yy = np.meshgrid(x, y)
        ax.plot(xx[bad], yy[bad], "x", color="k", ms=5, label="failed")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xlabel(r"cavity frequency $\omega_0/\Delta_0$")
    ax.set_ylabel(r"photon temperature $T_\mathrm{cav}/T_\mathrm{qp}$")
    ax.set_title(
        f"Multimode cavity, T_qp = {ds.attrs['model.t_qp']:g} T_c, eta tau_in = "
        f"{ds.attrs['study.eta_tau_in']:g}, tau_in = {ds.attrs['model.tau_in']:g}, "
        f"N = {ds.attrs['model.grid.n']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def main(
    quick: bool = False,
    output: str = OUTPUT,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
):
    """Run (or resume, or reload) the map; write netCDF + PNG into `output`; return the dataset."""
    study = dict(STUDY, **(QUICK if quick else {}))
    os.makedirs(output, exist_ok=True)
    stem = os.path.join(output, "sweep_fig1a_map" + ("_quick" if quick else ""))
    factory = functools.partial(
        multimode_model,
        t_qp=study["t_qp"],
        tau_in=study["tau_in"],
        eta_tau_in=study["eta_tau_in"],
        grid=study["grid"],
    )
    ds = solvers.sweep(
        factory,
        {"omega0_ratio": study["omega0_ratio"], "t_cav_ratio": study["t_cav_ratio"]},
        kind="steady",
        units=UNITS,
        output=stem + ".nc",
        scheduler=scheduler,
        workers=workers,
        progress=progress,
        config={"study": "sweep_fig1a_map", **study},
    )
    ds.attrs["study.eta_tau_in"] = study["eta_tau_in"]
    plot(ds, stem + ".png")
    return ds


def _cli(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="coarse grid and few points")
    p.add_argument("--output", default=OUTPUT, help="output folder (default runs/output)")
    p.add_argument("--scheduler", default=None, help="dask.distributed scheduler address")
    p.add_argument("--workers", type=int, default=None, help="local worker processes")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    ds = main(
        quick=a.quick,
        output=a.output,
        scheduler=a.scheduler,
        workers=a.workers,
        progress=not a.no_progress,
    )
    z = ds.relative_gap_change
    print(
        f"{int((ds.status == 'success').sum())}/{ds.status.size} points converged; "
        f"delta Delta/Delta_0 from {float(z.min()):+.4e} to {float(z.max()):+.4e}; "
        f"wall {ds.attrs['sweep.wall_time_s']:.1f} s ({ds.attrs['sweep.backend']}, "
        f"batch {ds.attrs['sweep.batch']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(_cli())

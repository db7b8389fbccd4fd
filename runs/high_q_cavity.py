"""Study: how good can the cavity be? Fig. 1(a)'s enhancement with dynamic photons.

The paper's Fig. 1(a) point omega_0 = 3 Delta_0, T_cav / T_qp = 0.5 (multimode cavity,
T_qp = 0.9 T_c, tau_in = 1000 hbar/(k_B T_c), eta tau_in = 0.0155) assumes the photons
stay at T_cav. Here they are dynamic (physics.md section 9): N(Omega, t) exchanges
energy with the quasiparticles and leaks out of the cavity (to a reservoir at T_cav)
in the photon lifetime tau_cav. The photon "heat capacity" relative to the film is
r_cav (rho_cav = r_cav Omega theta(Omega - omega_0) per 4 nu_F; 10 nm of aluminium:
r_cav = 1.2e-12, ``kinetics.planar_cavity_r``). For each r_cav the nonlinear steady
state (Newton, continued along tau_cav from short to long lifetimes) gives
delta Delta / Delta_0 against tau_cav; the static-bath value is the reference line.

    python runs/high_q_cavity.py            # ~3 min on 2 cores
    python runs/high_q_cavity.py --quick    # coarse, ~1 min

Writes ``high_q_cavity[_quick].nc`` and ``.png`` into ``runs/output/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import xarray as xr  # noqa: E402

import kinetics  # noqa: E402
import solvers  # noqa: E402

STUDY = {
    "t_qp": 0.9,
    "tau_in": 1000.0,
    "eta_tau_in": 0.0155,
    "omega0_ratio": 3.0,
    "t_cav_ratio": 0.5,
    "r_cav": [1.2e-12, 1e-8, 1e-4, 1.0],
    "tau_cav": [float(x) for x in np.geomspace(1e-12, 1e10, 45)],
    "spectrum_r_cav": 1e-4,
    "grid": {"n": 300, "xi_max": 30.0, "core": 2.0},
    "n_omega": 96,
}
QUICK = {
    "tau_cav": [float(x) for x in np.geomspace(1e-12, 1e10, 12)],
    "grid": {"n": 120, "xi_max": 30.0, "core": 2.0},
    "n_omega": 48,
}
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


def main(quick: bool = False, output: str | None = OUTPUT, progress: bool = True) -> xr.Dataset:
    """Run the study; returns the dataset (and writes .nc and .png into `output` if given)."""
    from tqdm import tqdm

    cfg = {**STUDY, **(QUICK if quick else {})}
    clock = time.perf_counter()
    grid = kinetics.Grid(**cfg["grid"])
    t_qp, tau_in = cfg["t_qp"], cfg["tau_in"]
    eta = cfg["eta_tau_in"] / tau_in
    delta0 = kinetics.equilibrium_gap(t_qp, grid)
    omega0 = cfg["omega0_ratio"] * delta0
    t_cav = cfg["t_cav_ratio"] * t_qp

    def model(r_cav=None, tau_cav=None):
        dyn = None
        if r_cav is not None:
            dyn = kinetics.DynamicBosons(tau_b=tau_cav, r_cav=r_cav, n_omega=cfg["n_omega"])
        bath = kinetics.MultimodeCavity(omega0=omega0, t_cav=t_cav, eta=eta, dynamic=dyn)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kinetics.PhysicsWarning)
            return kinetics.Model(t_qp=t_qp, tau_in=tau_in, baths=bath, grid=grid)

    static = solvers.steady_state(model(), tol=1e-12)
    static_gap = float(static.relative_gap_change)
    r_list, taus = cfg["r_cav"], cfg["tau_cav"]
    gap = np.full((len(r_list), len(taus)), np.nan)
    t_eff = np.full_like(gap, np.nan)
    residual = np.full_like(gap, np.nan)
    spectra, spectrum_taus = [], []
    omega = None
    with tqdm(total=gap.size, disable=not progress, desc="high_q_cavity") as bar:
        for a, r in enumerate(r_list):
            y_prev = None
            for b, tau in enumerate(taus):
                m = model(r, tau)
                try:
                    kw = {"n0": y_prev} if y_prev is not None else {}
                    ds = solvers.steady_state(m, tol=1e-11, **kw)
                except solvers.SolverError as err:
                    ds = err.partial
                    y_prev = None
                else:
                    y_prev = np.concatenate([ds.n.values, ds.boson_occupation.values])
                gap[a, b] = float(ds.relative_gap_change)
                t_eff[a, b] = float(ds.boson_temperature.isel(dynamic_bath=0))
                residual[a, b] = float(ds.attrs["solver.residual"])
                if r == cfg["spectrum_r_cav"]:
                    spectra.append(ds.boson_occupation.values)
                    spectrum_taus.append(tau)
                    omega = ds.omega.values
                    reservoir = ds.boson_reservoir_occupation.values
                bar.update()
    if omega is None:  # the spectrum's r_cav is not among r_cav: solve it apart
        raise ValueError("spectrum_r_cav must be one of r_cav")
    # where the enhancement has halved (log-linear interpolation in tau_cav)
    tau_half = np.full(len(r_list), np.nan)
    for a in range(len(r_list)):
        g = gap[a] / static_gap
        for b in range(len(taus) - 1):
            if g[b] >= 0.5 > g[b + 1]:
                x0, x1 = np.log(taus[b]), np.log(taus[b + 1])
                tau_half[a] = np.exp(x0 + (g[b] - 0.5) / (g[b] - g[b + 1]) * (x1 - x0))
                break
    wall = time.perf_counter() - clock
    from kinetics import bose

    ds = xr.Dataset(
        {
            "relative_gap_change": (("r_cav", "tau_cav"), gap),
            "photon_temperature": (("r_cav", "tau_cav"), t_eff),
            "newton_residual": (("r_cav", "tau_cav"), residual),
            "tau_cav_half": (("r_cav",), tau_half),
            "static_relative_gap_change": ((), static_gap),
            "photon_occupation": (("tau_cav", "omega"), np.asarray(spectra)),
            "reservoir_occupation": (("omega",), reservoir),
            "occupation_at_t_qp": (("omega",), np.asarray(bose(omega / t_qp))),
        },
        coords={
            "r_cav": ("r_cav", np.asarray(r_list)),
            "tau_cav": ("tau_cav", np.asarray(taus)),
            "omega": ("omega", omega),
        },
    )
    units = {
        "relative_gap_change": ("delta Delta / Delta_0, dynamic photons", "1"),
        "photon_temperature": ("energy-matched photon temperature", "k_B T_c"),
        "tau_cav_half": ("photon lifetime at which the enhancement has halved", "hbar/(k_B T_c)"),
        "newton_residual": ("Newton residual (max |rate| tau_in, bosons weighted by rho)", "1"),
        "static_relative_gap_change": ("delta Delta / Delta_0 with photons fixed at T_cav", "1"),
        "photon_occupation": (
            f"photon occupation N(Omega) at r_cav = {cfg['spectrum_r_cav']:g}",
            "1",
        ),
        "reservoir_occupation": ("n_B(Omega / T_cav)", "1"),
        "occupation_at_t_qp": ("n_B(Omega / T_qp)", "1"),
        "r_cav": (
            "photon mode density rho = r_cav Omega theta(Omega - omega_0)",
            "4 nu_F / (k_B T_c)^2",
        ),
        "tau_cav": ("photon lifetime", "hbar/(k_B T_c)"),
        "omega": ("photon energy", "k_B T_c"),
    }
    for k, (ln, u) in units.items():
        ds[k].attrs.update(long_name=ln, units=u)
    ds.attrs.update(
        {
            "title": "cavity-eliashberg study: high-Q cavity (dynamic photons)",
            "study": "high_q_cavity",
            "quick": int(quick),
            "t_qp": t_qp,
            "tau_in": tau_in,
            "eta_tau_in": cfg["eta_tau_in"],
            "omega0": omega0,
            "delta0": delta0,
            "t_cav": t_cav,
            "grid.n": grid.n,
            "grid.xi_max": grid.xi_max,
            "grid.core": grid.core,
            "n_omega": cfg["n_omega"],
            "r_cav_10nm_aluminium": kinetics.planar_cavity_r(10e-9),
            "wall_time_s": wall,
        }
    )
    if output is not None:
        os.makedirs(output, exist_ok=True)
        stem = os.path.join(output, "high_q_cavity" + ("_quick" if quick else ""))
        solvers.save(ds, stem + ".nc", overwrite=True)
        plot(ds, stem + ".png")
    return ds


def plot(ds: xr.Dataset, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11.5, 4.4))
    static = float(ds.static_relative_gap_change)
    for r in ds.r_cav.values:
        th = float(ds.tau_cav_half.sel(r_cav=r))
        a.semilogx(
            ds.tau_cav.values,
            ds.relative_gap_change.sel(r_cav=r).values,
            "o-",
            ms=3,
            label=f"r_cav = {r:.2g}: halved at tau_cav = {th:.2g}",
        )
    a.axhline(static, color="k", ls="--", lw=1, label="static photons (paper)")
    a.axhline(0.0, color="grey", lw=0.5)
    a.set_xlabel("photon lifetime tau_cav [hbar/(k_B T_c)]")
    a.set_ylabel("delta Delta / Delta_0")
    a.set_title(
        f"omega_0 = 3 Delta_0, T_cav = 0.5 T_qp, T_qp = {ds.attrs['t_qp']:g}; "
        f"10 nm Al: r_cav = {ds.attrs['r_cav_10nm_aluminium']:.2g}",
        fontsize=9,
    )
    a.legend(fontsize=8)
    om = ds.omega.values
    cmap = plt.get_cmap("viridis")
    taus = ds.tau_cav.values
    r_spec = float(ds.photon_occupation.attrs["long_name"].split("= ")[-1])
    t_half = float(ds.tau_cav_half.sel(r_cav=r_spec, method="nearest"))
    near = np.flatnonzero(np.abs(np.log10(taus / t_half)) <= 3.01)
    pick = near[np.unique(np.linspace(0, len(near) - 1, min(7, len(near))).round().astype(int))]
    for j, k in enumerate(pick):
        b.semilogy(
            om,
            ds.photon_occupation.values[k],
            color=cmap(j / max(1, len(pick) - 1)),
            label=f"tau_cav = {taus[k]:.1e}",
        )
    b.semilogy(om, ds.reservoir_occupation.values, "k--", lw=1, label="n_B(Omega / T_cav)")
    b.semilogy(om, ds.occupation_at_t_qp.values, "k:", lw=1, label="n_B(Omega / T_qp)")
    b.set_xlim(om[0] - 0.2, om[0] + 12 * ds.attrs["t_qp"])
    b.set_ylim(1e-8, 1)
    b.set_xlabel("Omega [k_B T_c]")
    b.set_ylabel("photon occupation N(Omega)")
    b.set_title(
        f"photon occupation at r_cav = {r_spec:.2g} (enhancement halved at tau_cav = {t_half:.2g})",
        fontsize=9,
    )
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarse grids, a smoke test")
    parser.add_argument("--output", default=OUTPUT, help="output folder (default runs/output)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    result = main(quick=args.quick, output=args.output, progress=not args.no_progress)
    print("static:", float(result.static_relative_gap_change))
    print(result.relative_gap_change.to_pandas().T.to_string())
    print(
        "tau_cav_half:",
        result.tau_cav_half.values,
        "ratio to r_cav:",
        result.tau_cav_half.values / result.r_cav.values,
    )
    print(f"wall {result.attrs['wall_time_s']:.0f} s")

"""Study: the phonon bottleneck of quasiparticle recombination (physics.md section 9).

Aluminium film (tau_0 = 438 ns, tau_0^ph = 0.26 ns, T_c = 1.19 K) at T = 0.2 T_c,
coupled only to its phonons (no relaxation-time term). The phonons are dynamic: their
occupation N(Omega, t) is part of the state and escapes into the substrate (at T) in
tau_esc. A small excess of quasiparticles (n = n_F(E/T) (1 + excess)) is injected at
t = 0 and n_qp(t) decays; its decay time tau_eff is measured

- from the evolution (Kvaerno5, the joint system is stiff: phonon pair breaking in
  tau_0^ph ~ 40 hbar/(k_B T_c) against recombination in ~1e7), by a fit of the late
  exponential, and
- as the slowest eigenvalue of the structured Jacobian at the thermal state,

for tau_esc / tau_0^ph = 0.1, 1, 10, 100 and for static phonons, and compared with the
Rothwarf-Taylor estimate tau_eff = (tau_r / 2)(1 + tau_esc / tau_B), with tau_r / 2
the static value and tau_B Kaplan's pair-breaking time at 2 Delta(T) (T = 0 formula:
tau_B = tau_0^ph Delta(0) / Delta(T)).

    python runs/phonon_bottleneck.py            # ~5 min on 2 cores
    python runs/phonon_bottleneck.py --quick    # coarse grids, ~2 min

Writes ``phonon_bottleneck[_quick].nc`` and ``.png`` into ``runs/output/``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import xarray as xr  # noqa: E402

import kinetics  # noqa: E402
import solvers  # noqa: E402
from kinetics._bosons import DELTA_ZERO  # noqa: E402

STUDY = {
    "t": 0.2,
    "excess": 0.05,
    "tau_esc_ratio": [0.1, 1.0, 10.0, 100.0],
    "grid": {"n": 120, "xi_max": 6.0, "core": 0.5},
    "n_omega": 80,
    "omega_core": 0.05,
    "samples": 61,
}
QUICK = {"grid": {"n": 60, "xi_max": 5.0, "core": 0.5}, "n_omega": 48, "samples": 41}
OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "output")


def _slowest_time(model):
    y = model.initial_state()
    jac = np.asarray(jax.jit(lambda y: model.jacobian(0.0, y))(y))
    return 1.0 / np.min(-np.linalg.eigvals(jac).real)


def main(quick: bool = False, output: str | None = OUTPUT, progress: bool = True) -> xr.Dataset:
    """Run the study; returns the dataset (and writes .nc and .png into `output` if given)."""
    cfg = {**STUDY, **(QUICK if quick else {})}
    clock = time.perf_counter()
    al = kinetics.ALUMINIUM
    t = cfg["t"]
    grid = kinetics.Grid(**cfg["grid"])

    def model(tau_esc_ratio):
        if tau_esc_ratio is None:
            bath = kinetics.phonons_of(al, t)
        else:
            bath = kinetics.phonons_of(
                al,
                t,
                tau_esc_ns=tau_esc_ratio * al.tau0_ph_ns,
                n_omega=cfg["n_omega"],
                omega_core=cfg["omega_core"],
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kinetics.PhysicsWarning)
            return kinetics.Model(t_qp=t, tau_in=None, baths=bath, grid=grid)

    cases = [None] + list(cfg["tau_esc_ratio"])
    labels = ["static"] + [f"{r:g}" for r in cfg["tau_esc_ratio"]]
    m_static = model(None)
    delta = float(m_static.delta0)
    tau_b = al.tau0_ph * DELTA_ZERO / delta  # Kaplan at 2 Delta(T)
    w = grid.weights
    n_eq = np.asarray(m_static.thermal_state())
    nqp_eq = 4.0 * np.sum(w * n_eq)

    eig, fit, rt = [], [], []
    times, excess = [], []
    for case in cases:
        m = model(case)
        tau_eig = _slowest_time(m)
        eig.append(tau_eig)
        ts = np.concatenate(
            [[0.0], np.geomspace(1e-4 * tau_eig, 4.0 * tau_eig, cfg["samples"] - 1)]
        )
        y0 = n_eq * (1.0 + cfg["excess"])
        ev = solvers.evolve(
            m, ts, n0=y0, solver="bdf", rtol=1e-8, atol=1e-14, progress=progress
        )
        d = ev.n_qp.values - nqp_eq
        late = ts >= 0.7 * tau_eig
        fit.append(-1.0 / np.polyfit(ts[late], np.log(d[late]), 1)[0])
        times.append(ts)
        excess.append(d / d[0])
    tau_static = eig[0]
    rt = [tau_static] + [tau_static * (1.0 + r * al.tau0_ph / tau_b) for r in cfg["tau_esc_ratio"]]
    ratio = np.asarray(cfg["tau_esc_ratio"])
    slope = np.polyfit(ratio[-2:] * al.tau0_ph, np.asarray(eig[-2:]), 1)[0]
    wall = time.perf_counter() - clock
    ds = xr.Dataset(
        {
            "tau_eff_eigen": (("case",), np.asarray(eig)),
            "tau_eff_fit": (("case",), np.asarray(fit)),
            "tau_eff_rothwarf_taylor": (("case",), np.asarray(rt)),
            "ratio_to_static": (("case",), np.asarray(eig) / tau_static),
            "time": (("case", "sample"), np.asarray(times)),
            "excess_fraction": (("case", "sample"), np.asarray(excess)),
        },
        coords={
            "case": ("case", labels),
            "tau_esc_ratio": ("case", np.asarray([np.nan] + list(cfg["tau_esc_ratio"]))),
        },
    )
    units = {
        "tau_eff_eigen": (
            "decay time of excess n_qp: slowest eigenvalue of the Jacobian",
            "hbar/(k_B T_c)",
        ),
        "tau_eff_fit": (
            "decay time of excess n_qp: fit of the evolution, t >= 0.7 tau_eff",
            "hbar/(k_B T_c)",
        ),
        "tau_eff_rothwarf_taylor": (
            "(tau_r/2)(1 + tau_esc/tau_B), tau_r/2 = static value",
            "hbar/(k_B T_c)",
        ),
        "ratio_to_static": ("tau_eff / tau_eff(static phonons)", "1"),
        "time": ("time", "hbar/(k_B T_c)"),
        "excess_fraction": ("(n_qp(t) - n_qp,eq) / (n_qp(0) - n_qp,eq)", "1"),
        "tau_esc_ratio": ("tau_esc / tau_0^ph (NaN: static phonons)", "1"),
        "case": ("phonon bath", "1"),
    }
    for k, (ln, u) in units.items():
        ds[k].attrs.update(long_name=ln, units=u)
    ds.attrs.update(
        {
            "title": "cavity-eliashberg study: phonon bottleneck (aluminium, T = 0.2 T_c)",
            "study": "phonon_bottleneck",
            "quick": int(quick),
            "material": al.name,
            "t_c_kelvin": al.t_c,
            "tau0_ns": al.tau0_ns,
            "tau0_ph_ns": al.tau0_ph_ns,
            "time_unit_ns": al.time_unit_ns,
            "t_qp": t,
            "delta": delta,
            "tau_B": tau_b,
            "excess": cfg["excess"],
            "grid.n": grid.n,
            "grid.xi_max": grid.xi_max,
            "grid.core": grid.core,
            "n_omega": cfg["n_omega"],
            "omega_core": cfg["omega_core"],
            "slope_over_rothwarf_taylor": float(slope / (tau_static / tau_b)),
            "wall_time_s": wall,
        }
    )
    if output is not None:
        os.makedirs(output, exist_ok=True)
        stem = os.path.join(output, "phonon_bottleneck" + ("_quick" if quick else ""))
        solvers.save(ds, stem + ".nc", overwrite=True)
        plot(ds, stem + ".png")
    return ds


def plot(ds: xr.Dataset, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit_us = ds.attrs["time_unit_ns"] * 1e-3
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.3))
    for k, lab in enumerate(ds.case.values):
        name = "static phonons" if lab == "static" else f"tau_esc = {lab} tau_0^ph"
        a.semilogy(ds.time.values[k] * unit_us, ds.excess_fraction.values[k], label=name)
    a.set_xscale("log")
    a.set_ylim(1e-2, 1.2)
    a.set_xlabel("t [us]")
    a.set_ylabel("excess n_qp(t) / excess n_qp(0)")
    a.set_title(f"Al, T = {ds.attrs['t_qp']:g} T_c: decay of injected quasiparticles")
    a.legend(fontsize=8)
    r = ds.tau_esc_ratio.values[1:]
    tau_s = float(ds.tau_eff_eigen.values[0])
    rr = np.geomspace(0.03, 300, 100)
    tau_b_ratio = ds.attrs["tau_B"] / (ds.attrs["tau0_ph_ns"] / ds.attrs["time_unit_ns"])
    b.loglog(rr, 1.0 + rr / tau_b_ratio, "k-", lw=1, label="Rothwarf-Taylor 1 + tau_esc / tau_B")
    b.loglog(r, ds.tau_eff_eigen.values[1:] / tau_s, "o", label="slowest eigenvalue")
    b.loglog(r, ds.tau_eff_fit.values[1:] / tau_s, "x", ms=9, label="fit of the evolution")
    for x, y in zip(r, ds.tau_eff_eigen.values[1:] / tau_s, strict=True):
        b.annotate(f"{y:.3g}", (x, y), textcoords="offset points", xytext=(6, -10), fontsize=8)
    b.axhline(1.0, color="grey", ls=":", lw=1)
    b.set_xlabel("tau_esc / tau_0^ph")
    b.set_ylabel("tau_eff / tau_eff(static phonons)")
    b.set_title(
        f"static tau_eff = {tau_s * unit_us:.3g} us; "
        f"slope / RT = {ds.attrs['slope_over_rothwarf_taylor']:.4f}"
    )
    b.legend(fontsize=8)
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
    print(
        result[
            ["tau_eff_eigen", "tau_eff_fit", "tau_eff_rothwarf_taylor", "ratio_to_static"]
        ].to_dataframe()
    )
    print(
        f"slope / Rothwarf-Taylor = {result.attrs['slope_over_rothwarf_taylor']:.5f}; "
        f"wall {result.attrs['wall_time_s']:.0f} s"
    )

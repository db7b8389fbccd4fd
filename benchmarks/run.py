"""The benchmark suite of issue 6: both regimes, all peers, one table per study.

(One script of ~780 lines on purpose: every peer runs on the same problem in the same
process, so their set-ups and the table code live side by side.)

    python -m benchmarks.run [--regimes a b] [--sizes 250 500 1000 2000 4000] [--quick]
                             [--json benchmarks/results.json] [--studies kernels solvers compile]

Studies (each printed as a table and written to the JSON file with the machine,
package versions, git commit and date):

- ``kernels``: per regime and N, one jitted evaluation of the right-hand side (with
  its gap solve), of the structured Jacobian, an LU factorization (XLA, the one
  Newton and diffrax use), an N x N matmul (for the machine's flop rate), and a
  reference kernel: one fused pass over an N x N float64 array
  (``jnp.sum(jnp.exp(x) * x, axis=1)``).
- ``solvers``: per regime and N, in one process, on the same right-hand side
  (``Model.rhs``) and the same structured Jacobian (``Model.jacobian``):
  ``default`` (``solvers.evolve(solver="auto")``), explicit ``tsit5`` and implicit
  ``kvaerno5`` (diffrax), the project's ``bdf`` (solvers._bdf: variable-order BDF that
  keeps its Jacobian and LU across steps, in one compiled loop), ``scipy-bdf`` and
  ``scipy-radau`` (``solve_ivp`` with the Jacobian as ``jac``), ``cvode`` (SUNDIALS
  CVODE BDF through scikit-sundae, dense linear solver, Jacobian callback), and
  ``steady`` (Newton, the t -> inf limit).
- ``compile``: compilations in a 10-point parameter sweep (only values change).

Regimes (issue 6):

(a) the paper's: MultimodeCavity(omega0 = 3 Delta_0, T_cav = 0.45, eta = 0.0155/tau_in),
    T_qp = 0.9, tau_in = 1000, t in [0, 10 tau_in] (11 save points);
(b) stiff: Phonons(tau0 = 438 ns at T_c = 1.19 K, T_ph = 0.3) + ClassicalDrive(omega_d =
    0.5 Delta_0, P = 1e-8, exact delta line), T_qp = 0.3, no tau_in, xi_max = 15,
    from the thermal state to t = 1e7 (save points 0, 1e3 ... 1e7).

rtol 1e-8, atol 1e-12 for every integrator. Host-driven peers (scipy, CVODE) call the
jitted rhs / Jacobian once per evaluation (numpy in and out, OpenBLAS limited to one
thread by threadpoolctl: its threads fight XLA's on 2 cores); they pay for fresh XLA
temporaries on every call, which the compiled diffrax / Newton loops pay once.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp
from threadpoolctl import threadpool_limits

import kinetics  # noqa: I001  (enables float64 before any JAX work)
import solvers

from ._common import (
    SOURCE_DIGEST,
    PeakRSS,
    _clean,
    _fmt_t,
    _repeat,
    _temp_mib,
    git_info,
    log,
    machine_info,
    time_kernel,
    versions,
)

RTOL, ATOL = 1e-8, 1e-12
MAX_STEPS = 200_000
INTEGRATORS = ("default", "tsit5", "bdf", "kvaerno5", "scipy-bdf", "scipy-radau", "cvode")


# ---------------------------------------------------------------- the two regimes
def regime_a(n: int):
    t_qp, tau_in = 0.9, 1000.0
    grid = kinetics.Grid(n=n)
    d0 = kinetics.equilibrium_gap(t_qp, grid)
    bath = kinetics.MultimodeCavity(omega0=3.0 * d0, t_cav=0.45, eta=0.0155 / tau_in)
    model = kinetics.Model(t_qp=t_qp, tau_in=tau_in, baths=[bath], grid=grid)
    return model, np.linspace(0.0, 10.0 * tau_in, 11)


TAU0_AL = kinetics.to_internal(438.0, "ns", dimension="time", name="tau0", t_c_kelvin=1.19)


def _phonons_and_drive(t: float, grid, power: float):
    """Thermal phonons at T = t and a drive at half the gap, no tau_in; saves to t = 1e7."""
    d0 = kinetics.equilibrium_gap(t, grid)
    baths = [
        kinetics.Phonons(tau0=TAU0_AL, t_ph=t),
        kinetics.ClassicalDrive(omega_d=0.5 * d0, power=power),
    ]
    model = kinetics.Model(t_qp=t, tau_in=None, baths=baths, grid=grid)
    return model, np.concatenate([[0.0], np.logspace(3.0, 7.0, 5)])


def regime_b(n: int, power: float = 1e-8):
    return _phonons_and_drive(0.3, kinetics.Grid(n=n, xi_max=15.0), power)


def regime_c(n: int, power: float = 1e-8):
    """Regime (b) at 0.1 T_c (aluminium at ~120 mK) on the low-temperature grid
    (``Grid.for_temperature``: the uniform core shrinks to 3 sqrt(Delta T) = 1.26, from 2), where
    the thermal structure sits within ~sqrt(Delta T) of the gap edge: the grids of the
    qubit and resonator corner (issue 18 item 6). Used by benchmarks.krylov only."""
    return _phonons_and_drive(0.1, kinetics.Grid.for_temperature(0.1, xi_max=15.0, n=n), power)


REGIMES = {"a": regime_a, "b": regime_b}
DESCRIPTION = {
    "a": "MultimodeCavity(omega0=3 Delta0, T_cav=0.45, eta=0.0155/tau_in), T_qp=0.9, "
    "tau_in=1000, t in [0, 1e4]",
    "b": f"Phonons(tau0={TAU0_AL:.4g} (438 ns, T_c=1.19 K), T_ph=0.3) + ClassicalDrive(omega_d="
    "0.5 Delta0, P=1e-8, delta line), T_qp=0.3, tau_in=None, xi_max=15, t in [0, 1e7]",
}
# agreement of the final delta Delta/Delta_0 among integrators (relative to the median):
# (a) delta ~ 2e-2 carries ~50x rtol; (b) delta ~ 5e-6 is a 1e-6-level difference of
# two O(1) gaps, so atol-level errors of n (1e-12 on n ~ 1e-3) show at ~1e-4 of it.
AGREE = {"a": 3e-6, "b": 2e-3}


def _row(regime, n, method, **kw):
    row = dict(
        regime=regime,
        N=n,
        method=method,
        picked=None,
        status="ok",
        compile_s=None,
        run_s=None,
        runs_s=[],
        reps=0,
        accepted=None,
        rejected=None,
        nfev=None,
        njev=None,
        nlu=None,
        peak_rss_mib=None,
        rel_gap_change=None,
        note="",
    )
    row.update(kw)
    return row


def _gap_change(model, y):
    d = float(model.gap(jnp.asarray(y)))
    d0 = float(model.delta0)
    return (d - d0) / d0


# ---------------------------------------------------------------- kernels
def bench_kernels(regime, n, model, rows):
    y0 = model.thermal_state()
    x = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)))
    ref = jax.jit(lambda x: jnp.sum(jnp.exp(x) * x, axis=1))
    _, r_ref, _ = time_kernel(ref, x)
    rows.append(
        _row(
            regime,
            n,
            "ref-kernel",
            run_s=r_ref,
            reps=5,
            note=f"{r_ref / n**2 * 1e9:.2f} ns/element",
        )
    )
    rhs_jit = jax.jit(lambda t, y: model.rhs(t, y))
    jac_jit = jax.jit(lambda t, y: model.jacobian(t, y))
    c, r_rhs, f = time_kernel(rhs_jit, 0.0, y0, reps=7)
    tmp = _temp_mib(rhs_jit, 0.0, y0)
    rows.append(
        _row(
            regime,
            n,
            "rhs",
            compile_s=c,
            run_s=r_rhs,
            reps=7,
            note=f"= {r_rhs / r_ref:.1f} ref passes; XLA temp {tmp or 0:.0f} MiB, "
            f"{f} page faults/call",
        )
    )
    c, r_jac, f = time_kernel(jac_jit, 0.0, y0, reps=5)
    tmp = _temp_mib(jac_jit, 0.0, y0)
    rows.append(
        _row(
            regime,
            n,
            "jacobian",
            compile_s=c,
            run_s=r_jac,
            reps=5,
            note=f"= {r_jac / r_rhs:.1f} rhs; XLA temp {tmp or 0:.0f} MiB",
        )
    )
    a = jac_jit(0.0, y0) * 100.0 - jnp.eye(n)
    mm = jax.jit(lambda a: a @ a)
    _, r_mm, _ = time_kernel(mm, a, reps=3)
    lu = jax.jit(jax.scipy.linalg.lu_factor)
    with threadpool_limits(limits=1, user_api="blas"):  # as evolve / steady_state run it
        _, r_lu, _ = time_kernel(lu, a, reps=3)
    gf = 2.0 * n**3 / r_mm / 1e9
    rows.append(_row(regime, n, "matmul", run_s=r_mm, reps=3, note=f"{gf:.1f} GFLOP/s"))
    rows.append(
        _row(
            regime,
            n,
            "lu",
            run_s=r_lu,
            reps=3,
            note=f"{2 * n**3 / 3 / r_lu / 1e9:.1f} GFLOP/s = {r_lu / r_mm:.2f} matmul "
            f"(ideal 0.33); OpenBLAS 1 thread, as in the solvers",
        )
    )
    log(
        f"  [{regime} N={n}] ref {_fmt_t(r_ref)} rhs {_fmt_t(r_rhs)} jac {_fmt_t(r_jac)} "
        f"lu {_fmt_t(r_lu)} matmul {_fmt_t(r_mm)}"
    )
    return rhs_jit, jac_jit, r_rhs


# ---------------------------------------------------------------- integrators
def _evolve_row(regime, model, t_save, name, reps, long_s):
    n = model.grid.n

    def call():
        return solvers.evolve(
            model, t_save, solver=name, rtol=RTOL, atol=ATOL, progress=False, max_steps=MAX_STEPS
        )

    picked = (
        name
        if name != "auto"
        else solvers.choose_solver(model, model.initial_state(), float(t_save[-1] - t_save[0]))
    )
    with PeakRSS() as mem:
        t = time.perf_counter()
        try:  # ahead-of-time compile of the integrator program evolve() runs (its core)
            eqx.filter_jit(solvers.evolve_core).lower(
                model,
                model.initial_state(),
                jnp.asarray(t_save[0]),
                jnp.asarray(t_save[-1]),
                jnp.asarray(t_save),
                picked,
                RTOL,
                ATOL,
                MAX_STEPS,
                None,
                jnp.zeros((0,)),  # no jumps, as evolve passes them (an array)
                False,
            ).compile()
            how = "aot"
        except Exception as exc:  # private API changed: first call minus warm call
            log(f"  AOT compile failed ({type(exc).__name__}: {exc}); timing the first call")
            call()
            how = "first"
        first = time.perf_counter() - t
        times, ds, cpu = _repeat(call, reps, long_s)
    run = min(times)
    compile_s = first if how == "aot" else max(first - run, 0.0)
    if how == "aot" and len(times) >= 2 and times[0] > 1.5 * run + 1.0:
        compile_s += times[0] - run  # the AOT program was not the one evolve used
    a = ds.attrs
    picked = a["solver.name"]
    acc, rej = int(a["solver.num_accepted_steps"]), int(a["solver.num_rejected_steps"])
    steps = acc + rej
    row = _row(
        regime,
        n,
        name,
        picked=picked,
        compile_s=compile_s,
        run_s=run,
        runs_s=times,
        reps=len(times),
        accepted=acc,
        rejected=rej,
        peak_rss_mib=mem.peak_mib,
        status=str(a["solver.status"]),
        rel_gap_change=float(ds.relative_gap_change.values[-1]),
    )
    if picked in ("tsit5", "dopri5"):
        row["nfev"] = 6 * steps + 2  # FSAL: 6 new stages per step, + initial dt estimate
        row["njev"] = row["nlu"] = 0
    elif picked == "bdf":  # counted by the solver itself
        row["nfev"] = int(a["solver.num_rhs"])
        row["njev"] = int(a["solver.num_jacobian"])
        row["nlu"] = int(a["solver.num_lu"])
    elif picked.startswith("kvaerno"):
        # diffrax ESDIRK + VeryChord: one Jacobian (N structured JVPs -> Model.jacobian
        # once) and one LU per step attempt; rhs count depends on chord iterations
        row["njev"] = row["nlu"] = steps
    return row


def _host_funs(rhs_jit, jac_jit, counts):
    def fun(t, y):
        counts["f"] += 1
        return np.asarray(rhs_jit(t, y))

    def jac(t, y):
        counts["j"] += 1
        return np.asarray(jac_jit(t, y))

    return fun, jac


def _scipy_row(regime, model, t_save, method, rhs_jit, jac_jit, reps, long_s):
    n = model.grid.n
    y0 = np.asarray(model.initial_state())
    counts = {"f": 0, "j": 0}
    fun, jac = _host_funs(rhs_jit, jac_jit, counts)

    def call():
        with threadpool_limits(limits=1, user_api="blas"):
            return solve_ivp(
                fun,
                (float(t_save[0]), float(t_save[-1])),
                y0,
                method=method,
                jac=jac,
                rtol=RTOL,
                atol=ATOL,
            )

    with PeakRSS() as mem:
        times, sol, cpu = _repeat(call, reps, long_s)
    return _row(
        regime,
        n,
        f"scipy-{method.lower()}",
        run_s=min(times),
        runs_s=times,
        reps=len(times),
        accepted=len(sol.t) - 1,
        nfev=int(sol.nfev),
        njev=int(sol.njev),
        nlu=int(sol.nlu),
        peak_rss_mib=mem.peak_mib,
        rel_gap_change=_gap_change(model, sol.y[:, -1]),
        status="success" if sol.status == 0 else "failed",
        note="" if sol.status == 0 else str(sol.message),
    )


def _cvode_row(regime, model, t_save, rhs_jit, jac_jit, reps, long_s):
    n = model.grid.n
    try:
        from sksundae.cvode import CVODE
    except ImportError as exc:
        return _row(regime, n, "cvode", status="unavailable", note=f"scikit-sundae: {exc}")
    y0 = np.asarray(model.initial_state())
    counts = {"f": 0, "j": 0, "steps": 0}

    def rhsfn(t, y, yp):
        counts["f"] += 1
        yp[:] = np.asarray(rhs_jit(t, np.array(y)))

    def jacfn(t, y, yp, jj):
        counts["j"] += 1
        jj[:, :] = np.asarray(jac_jit(t, np.array(y)))

    def call():
        counts.update(f=0, j=0, steps=0)
        with threadpool_limits(limits=1, user_api="blas"):
            s = CVODE(
                rhsfn,
                method="BDF",
                rtol=RTOL,
                atol=ATOL,
                linsolver="dense",
                jacfn=jacfn,
                max_num_steps=100_000,
            )
            s.init_step(float(t_save[0]), y0)
            t1 = float(t_save[-1])
            while True:  # one internal step at a time: counts the steps
                res = s.step(t1, method="onestep", tstop=t1)
                counts["steps"] += 1
                if not res.success or res.t >= t1:
                    return res, dict(counts)

    with PeakRSS() as mem:
        times, (res, c), cpu = _repeat(call, reps, long_s)
    y = np.asarray(res.y).reshape(-1)
    return _row(
        regime,
        n,
        "cvode",
        run_s=min(times),
        runs_s=times,
        reps=len(times),
        accepted=c["steps"],
        nfev=c["f"],
        njev=c["j"],
        peak_rss_mib=mem.peak_mib,
        rel_gap_change=_gap_change(model, y),
        status="success" if res.success else "failed",
        note="nlu: not exposed (CVODE refactors on its own schedule); "
        + ("" if res.success else str(res.message)),
    )


def _steady_row(regime, model, reps, long_s):
    n = model.grid.n

    def call():
        return solvers.steady_state(model)

    with PeakRSS() as mem:
        t = time.perf_counter()
        call()
        first = time.perf_counter() - t
        times, ds, cpu = _repeat(call, max(reps, 2), long_s)
    a = ds.attrs
    return _row(
        regime,
        n,
        "steady",
        compile_s=max(first - min(times), 0.0),
        run_s=min(times),
        runs_s=times,
        reps=len(times),
        accepted=int(a["solver.iterations"]),
        peak_rss_mib=mem.peak_mib,
        status=str(a["solver.status"]),
        rel_gap_change=float(np.asarray(ds.relative_gap_change.values).reshape(-1)[-1]),
        note=f"Newton {int(a['solver.iterations'])} it. (acc column), residual "
        f"{float(a['solver.residual']):.1e}; t -> inf limit",
    )


def _estimate(method, regime, n, history, r_rhs, stiff_t):
    """Estimated run [s] of a method at this N from its run at the largest smaller N
    scaled by the rhs cost growth (N^2) -- or, for tsit5 on a stiff problem, from the
    number of explicit steps stability forces (|lambda| T / 3.5) x 6 rhs, x 1.5 for the
    rejected steps and the in-loop rhs cost (measured, regime (b) N = 250: 40619
    accepted + 11172 rejected steps, 125 s against 48 s estimated without it)."""
    prev = [
        h
        for h in history
        if h["regime"] == regime
        and h["method"] == method
        and h["N"] < n
        and h.get("run_s")
        and h.get("status") in ("ok", "success")
    ]
    if prev:
        h = max(prev, key=lambda h: h["N"])
        return h["run_s"] * (n / h["N"]) ** (3 if method in ("kvaerno5", "scipy-radau") else 2.3)
    if method == "tsit5":
        return stiff_t / 3.5 * 6 * r_rhs * 1.5
    return None


def bench_solvers(regime, n, model, t_save, rhs_jit, jac_jit, r_rhs, args, history):
    rows = []
    span = float(t_save[-1] - t_save[0])
    stiff_t = solvers.stiffness_estimate(model, model.initial_state()) * span
    picked = solvers.choose_solver(model, model.initial_state(), span)
    for method in args.methods:
        est = _estimate(method, regime, n, history + rows, r_rhs, stiff_t)
        if method != "default" and est is not None and est > args.budget_s:
            note = f"skipped: estimated {est:.0f} s > budget {args.budget_s:.0f} s"
            rows.append(_row(regime, n, method, status="skipped", note=note))
            log(f"  [{regime} N={n}] {method}: {note}")
            continue
        if method == picked and "default" in args.methods:
            rows.append(
                _row(
                    regime,
                    n,
                    method,
                    status="skipped",
                    note="= the default row (same compiled program)",
                )
            )
            continue
        log(
            f"  [{regime} N={n}] {method} (est {est and round(est)} s, load "
            f"{os.getloadavg()[0]:.2f}) ..."
        )
        t = time.perf_counter()
        try:
            if method in ("default", "tsit5", "bdf", "kvaerno5"):
                row = _evolve_row(
                    regime,
                    model,
                    t_save,
                    "auto" if method == "default" else method,
                    args.repeats,
                    args.long_s,
                )
                row["method"] = method
            elif method in ("scipy-bdf", "scipy-radau"):
                row = _scipy_row(
                    regime,
                    model,
                    t_save,
                    method.split("-")[1].upper() if method == "scipy-bdf" else "Radau",
                    rhs_jit,
                    jac_jit,
                    args.repeats,
                    args.long_s,
                )
            elif method == "cvode":
                row = _cvode_row(regime, model, t_save, rhs_jit, jac_jit, args.repeats, args.long_s)
            elif method == "steady":
                row = _steady_row(regime, model, args.repeats, args.long_s)
            else:
                raise ValueError(method)
        except Exception as exc:  # one failing peer must not hide the rest
            row = _row(regime, n, method, status="error", note=f"{type(exc).__name__}: {exc}"[:300])
        row["total_s"] = time.perf_counter() - t
        row["loadavg1"] = os.getloadavg()[0]
        if method == "default":
            row["note"] = f"picked {row['picked']} (|lambda|T = {stiff_t:.3g}); " + row["note"]
        rows.append(row)
        log(
            f"  [{regime} N={n}] {method}: run {_fmt_t(row['run_s'])}, delta "
            f"{row['rel_gap_change']}, {row['status']} {row['note']}"
        )
    finals = {
        r["method"]: r["rel_gap_change"]
        for r in rows
        if r["rel_gap_change"] is not None and (r["method"] in INTEGRATORS or regime == "b")
    }
    warns = []
    if len(finals) >= 2:
        med = statistics.median(finals.values())
        spread = max(abs(v - med) for v in finals.values()) / abs(med)
        warns.append(
            f"N={n}: final dDelta/Delta0 of {len(finals)} methods agree to {spread:.2e} "
            f"relative (tolerance {AGREE[regime]:g})"
        )
        for m, v in finals.items():
            if abs(v - med) / abs(med) > AGREE[regime]:
                warns.append(f"WARNING N={n}: {m} = {v:.10g} differs from the median {med:.10g}")
    return rows, warns


# ---------------------------------------------------------------- scaling
SCALED = (
    "rhs",
    "jacobian",
    "lu",
    "matmul",
    "ref-kernel",
    "default",
    "bdf",
    "tsit5",
    "cvode",
    "scipy-bdf",
    "scipy-radau",
    "kvaerno5",
    "steady",
)


def scaling(rows):
    """Least-squares exponent p of run ~ N^p per (regime, method) over the sizes measured
    (from N = 500 on when there are three or more: N = 250 is overhead-dominated)."""
    out = []
    for regime in sorted({r["regime"] for r in rows}):
        for method in SCALED:
            pts = sorted(
                (r["N"], r["run_s"])
                for r in rows
                if r["regime"] == regime and r["method"] == method and r.get("run_s")
            )
            large = [p for p in pts if p[0] >= 500]
            if len(pts) >= 3 and len(large) >= 2:
                pts = large
            if len(pts) < 2:
                continue
            ns, ts = np.array(pts, dtype=float).T
            p = float(np.polyfit(np.log(ns), np.log(ts), 1)[0])
            out.append(
                {"regime": regime, "method": method, "sizes": [int(x) for x in ns], "exponent": p}
            )
    return out


# ---------------------------------------------------------------- recompilation
def bench_compile(n):
    """Compilations while 10 parameter values of the same model are solved."""
    counts = {"n": 0}

    def listener(name, dur, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            counts["n"] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    rows = []
    try:
        for label, make, call in (
            (
                "evolve (a), eta x 10 values",
                lambda s: _scaled(regime_a(n)[0], s),
                lambda m: solvers.evolve(m, np.linspace(0, 1e4, 11), progress=False),
            ),
            (
                "evolve (b) (bdf), P x 10 values",
                lambda s: regime_b(n, power=1e-8 * s)[0],
                lambda m: solvers.evolve(m, regime_b(n)[1], progress=False),
            ),
            (
                "steady (b), P x 10 values",
                lambda s: regime_b(n, power=1e-8 * s)[0],
                lambda m: solvers.steady_state(m),
            ),
        ):
            per = []
            t = time.perf_counter()
            for s in np.linspace(0.5, 1.5, 10):
                c0 = counts["n"]
                call(make(float(s)))
                per.append(counts["n"] - c0)
            rows.append(
                {
                    "study": label,
                    "N": n,
                    "compiles_per_point": per,
                    "first": per[0],
                    "after_first": sum(per[1:]),
                    "wall_s": time.perf_counter() - t,
                }
            )
            log(f"  compile: {label}: {per}")
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return rows


def _scaled(model, s):
    import equinox as eqx

    return eqx.tree_at(lambda m: m.baths, model, tuple(b.scaled(s) for b in model.baths))


# ---------------------------------------------------------------- output
COLS = [
    ("N", 5, lambda r: str(r["N"])),
    ("method", 11, lambda r: r["method"]),
    ("compile", 9, lambda r: _fmt_t(r["compile_s"])),
    ("run", 10, lambda r: _fmt_t(r["run_s"])),
    (
        "acc/rej",
        9,
        lambda r: (
            "-"
            if r["accepted"] is None
            else f"{r['accepted']}/{'-' if r['rejected'] is None else r['rejected']}"
        ),
    ),
    ("nfev", 6, lambda r: "-" if r["nfev"] is None else str(r["nfev"])),
    ("njev", 5, lambda r: "-" if r["njev"] is None else str(r["njev"])),
    ("nlu", 5, lambda r: "-" if r["nlu"] is None else str(r["nlu"])),
    ("peakMiB", 7, lambda r: "-" if r["peak_rss_mib"] is None else f"{r['peak_rss_mib']:.0f}"),
    (
        "dDelta/D0 final",
        16,
        lambda r: "-" if r["rel_gap_change"] is None else f"{r['rel_gap_change']:.10g}",
    ),
    ("load", 4, lambda r: "-" if r.get("loadavg1") is None else f"{r['loadavg1']:.1f}"),
    (
        "note",
        0,
        lambda r: r["note"] if r["status"] in ("ok", "success") else f"[{r['status']}] {r['note']}",
    ),
]


def table(rows, extra=()):
    head = "  ".join(f"{c:<{w}}" if w else c for c, w, _ in COLS)
    out, last = [head, "-" * len(head)], None
    for r in rows:
        if last is not None and r["N"] != last:
            out.append("")
        last = r["N"]
        out.append("  ".join(f"{f(r):<{w}}" if w else f(r) for _, w, f in COLS).rstrip())
    return "\n".join(out + [""] + list(extra))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--regimes", nargs="+", default=["a", "b"], choices=["a", "b"])
    p.add_argument("--sizes", nargs="+", type=int, default=[250, 500, 1000, 2000, 4000])
    p.add_argument("--methods", nargs="+", default=list(INTEGRATORS) + ["steady"])
    p.add_argument("--studies", nargs="+", default=["kernels", "solvers", "compile"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--long-s", type=float, default=30.0, help="stop repeating after one run this long"
    )
    p.add_argument(
        "--budget-s", type=float, default=240.0, help="skip a peer whose estimated run exceeds this"
    )
    p.add_argument("--quick", action="store_true", help="N = 250, one repeat (smoke test)")
    p.add_argument("--json", default="benchmarks/results.json")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [250], 1
    header = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "git": git_info(),
        "sources": SOURCE_DIGEST,
        "argv": sys.argv[1:],
        "rtol": RTOL,
        "atol": ATOL,
        "threads": "scipy/CVODE: OpenBLAS 1 thread (threadpoolctl); XLA: its own pool",
    }
    try:
        import sksundae

        header["versions"]["scikit-sundae"] = sksundae.__version__
    except ImportError:
        header["versions"]["scikit-sundae"] = None
    results = {"header": header, "kernels": [], "solvers": [], "compile": [], "notes": []}
    m = header["machine"]
    print(
        f"# {header['date']}  {m.get('cpu_model')}, {m['cpu_count']} CPUs, "
        f"{m.get('mem_total_gib')} GiB; load at start {m['loadavg_start']}"
    )
    print("# " + ", ".join(f"{k} {v}" for k, v in header["versions"].items() if v))
    print(f"# git {header['git']}; sources {SOURCE_DIGEST['sha256']}")

    def dump():
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)

    for regime in args.regimes:
        krows, srows, notes = [], [], []
        for n in args.sizes:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", kinetics.PhysicsWarning)
                model, t_save = REGIMES[regime](n)
            log(f"=== regime ({regime}) N = {n} ===")
            rhs_jit, jac_jit, r_rhs = bench_kernels(regime, n, model, krows)
            if "solvers" in args.studies:
                rows, warns = bench_solvers(
                    regime, n, model, t_save, rhs_jit, jac_jit, r_rhs, args, results["solvers"]
                )
                srows += rows
                results["solvers"] += [_clean(r) for r in rows]
                notes += warns
            results["kernels"] += [_clean(r) for r in krows if r["N"] == n]
            results["notes"] += notes[-3:]
            dump()
        print(f"\n## kernels, regime ({regime}): {DESCRIPTION[regime]}")
        print(table(krows))
        if srows:
            print(
                f"\n## solvers, regime ({regime}): {DESCRIPTION[regime]}; rtol {RTOL:g}, "
                f"atol {ATOL:g}"
            )
            print(table(srows, notes))
    all_rows = results["kernels"] + results["solvers"]
    results["scaling"] = scaling(all_rows)
    if results["scaling"]:
        print("\n## scaling: run time ~ N^p (least squares over the sizes listed)")
        for r in results["scaling"]:
            print(f"({r['regime']}) {r['method']:<12} p = {r['exponent']:.2f}   N = {r['sizes']}")
        dump()
    if "compile" in args.studies:
        rows = bench_compile(min(args.sizes))
        results["compile"] = rows
        print("\n## compilations in a 10-point sweep (only parameter values change)")
        for r in rows:
            print(
                f"N={r['N']}  {r['study']:<30} per point {r['compiles_per_point']}  "
                f"after the first: {r['after_first']}  ({r['wall_s']:.1f} s)"
            )
        dump()
    print(f"\n(JSON: {args.json})")


if __name__ == "__main__":
    main()

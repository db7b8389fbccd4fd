"""Side-by-side benchmark of the time integrators and the Newton steady state.

    python -m benchmarks.solvers [--sizes 250 500 1000 2000] [--quick] [--json out.json]

The paper's regime (multimode cavity, Fig. 1(a)): T_qp = 0.9 T_c, tau_in = 1000,
omega0 = 3 Delta_0, T_cav = 0.45, eta tau_in = 0.0155; integrate from the thermal
state over t in [0, 10 tau_in] with rtol = 1e-8, atol = 1e-12. For each grid size N,
in one process and with the same right-hand side (``Model.rhs``) and the same
structured Jacobian (``Model.jacobian``):

- ``rhs``, ``jacobian``: one jitted evaluation each, and ``ref-kernel``, one fused pass
  over an N x N float64 array (``jnp.sum(jnp.exp(x) * x, axis=1)``), as a yardstick;
- ``tsit5``, ``kvaerno5``, ``auto``: ``solvers.evolve(..., solver=...)`` (diffrax);
- ``scipy-bdf``: ``scipy.integrate.solve_ivp(method="BDF")`` with fun / jac the jitted
  rhs / jacobian (numpy in and out), OpenBLAS limited to one thread;
- ``steady``: ``solvers.steady_state(model)`` (damped Newton).

Timing rules (see the table footer): run = minimum over repeats of warm calls;
compile = ahead-of-time lower + compile of the integrator program for the diffrax
solvers (``solvers._evolve._solve``; falls back to first call minus warm call), and
first call minus warm call for everything else. Peak memory is the increase of the
process RSS above its value when the method starts, sampled from /proc/self/statm
every 5 ms in a thread (tracemalloc does not see XLA's allocations).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
import warnings
from importlib import metadata

import numpy as np

import kinetics  # noqa: I001  (enables float64 before any JAX work)
import jax
import jax.numpy as jnp
import solvers
from scipy.integrate import solve_ivp
from threadpoolctl import threadpool_limits

# ---- the paper's regime ----
T_QP = 0.9
TAU_IN = 1000.0
T_CAV = 0.45
ETA_TAU = 0.0155
RTOL = 1e-8
ATOL = 1e-12
N_SAVE = 11  # save points on [0, 10 tau_in]
MAX_STEPS = 200_000  # evolve's default (the AOT compile must match evolve's call)

# Estimated warm run time of each method in units of one jitted rhs evaluation,
# used to skip methods that would exceed the budget before anything better is
# known (measured on the 2-core benchmark machine, N = 250 - 1000); replaced by
# the ratio measured at the largest smaller N of the same process.
DEFAULT_COST_IN_RHS = {"tsit5": 500.0, "kvaerno5": 5000.0, "scipy-bdf": 400.0}

def _source_digest() -> dict:
    """sha256 of the imported kinetics/ and solvers/ sources (read right after import,
    so that results can be matched to the working tree they measured)."""
    import hashlib

    h, files = hashlib.sha256(), []
    for mod in (kinetics, solvers):
        folder = os.path.dirname(os.path.abspath(mod.__file__))
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as fh:
                    h.update(name.encode() + b"\0" + fh.read())
                files.append(f"{os.path.basename(folder)}/{name}")
    return {"sha256": h.hexdigest()[:16], "files": len(files)}


SOURCE_DIGEST = _source_digest()

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- memory
def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return None


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


class PeakRSS:
    """Peak RSS increase [MiB] during a block: /proc/self/statm sampled every 5 ms,
    else the (monotone, less useful) ru_maxrss delta."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.source = "statm" if _rss_bytes() is not None else "ru_maxrss"

    def __enter__(self):
        if self.source == "statm":
            self._base = self._peak = _rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._base = _maxrss_bytes()
        return self

    def _sample(self):
        while not self._stop.is_set():
            v = _rss_bytes()
            if v is not None and v > self._peak:
                self._peak = v
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        if self.source == "statm":
            self._stop.set()
            self._thread.join()
            v = _rss_bytes()
            self._peak = max(self._peak, v or 0)
        else:
            self._peak = _maxrss_bytes()
        self.peak_mib = (self._peak - self._base) / 2**20
        return False


# ---------------------------------------------------------------- helpers
def make_model(n: int):
    grid = kinetics.Grid(n=n)
    delta0 = kinetics.equilibrium_gap(T_QP, grid)
    bath = kinetics.MultimodeCavity(omega0=3.0 * delta0, t_cav=T_CAV, eta=ETA_TAU / TAU_IN)
    return kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=[bath], grid=grid)


def _block(x):
    return jax.block_until_ready(x)


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads."""
    t = os.times()
    return t.user + t.system


def _minflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_kernel(fn, *args, reps: int = 5):
    """(compile_s, run_s, minor page faults per warm call): first call minus the
    fastest of `reps` warm calls."""
    t = time.perf_counter()
    _block(fn(*args))
    first = time.perf_counter() - t
    runs, faults = [], []
    for _ in range(reps):
        f0 = _minflt()
        t = time.perf_counter()
        _block(fn(*args))
        runs.append(time.perf_counter() - t)
        faults.append(_minflt() - f0)
    run = min(runs)
    return max(first - run, 0.0), run, min(faults)


def _temp_mib(jitted, *args):
    """XLA's temporary-buffer size of a jitted function [MiB], or None."""
    try:
        return jitted.lower(*args).compile().memory_analysis().temp_size_in_bytes / 2**20
    except Exception:
        return None


def _row(n, method, **kw):
    row = {
        "N": n,
        "method": method,
        "picked": None,
        "status": "ok",
        "compile_s": None,
        "compile_how": None,
        "run_s": None,
        "cpu_s": None,
        "runs_s": [],
        "reps": 0,
        "accepted": None,
        "rejected": None,
        "steps": None,
        "nfev": None,
        "njev": None,
        "nlu": None,
        "peak_rss_mib": None,
        "rel_gap_change": None,
        "note": "",
    }
    row.update(kw)
    return row


def _repeat(call, reps: int, long_s: float):
    """Run `call` up to `reps` times (at least once); stop after one run longer
    than `long_s`, or after two runs that together took longer than `long_s`.
    Returns (list of wall times, last result, process CPU seconds of the fastest run)."""
    times, cpus, out = [], [], None
    for _ in range(max(reps, 1)):
        c = _cpu_s()
        t = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t)
        cpus.append(_cpu_s() - c)
        if times[-1] > long_s or (len(times) >= 2 and sum(times) > long_s):
            break
    return times, out, cpus[int(np.argmin(times))]


# ---------------------------------------------------------------- methods
def _aot_evolve_compile(model, y0, t_save, name) -> float:
    """Lower + compile evolve's integrator program ahead of time; the jit cache
    then serves the first evolve() call. Private API: callers fall back on error."""
    from solvers import _evolve

    t = time.perf_counter()
    _evolve._solve.lower(
        model, y0, float(t_save[0]), float(t_save[-1]), jnp.asarray(t_save), name,
        RTOL, ATOL, MAX_STEPS, None, (), False,
    ).compile()
    return time.perf_counter() - t


def bench_evolve(model, t_save, name, reps, long_s):
    n = model.grid.n
    row = _row(n, name)
    y0 = model.thermal_state()

    def call():
        return solvers.evolve(model, t_save, solver=name, rtol=RTOL, atol=ATOL, progress=False)

    with PeakRSS() as mem:
        try:
            row["compile_s"] = _aot_evolve_compile(model, y0, t_save, name)
            row["compile_how"] = "aot"
        except Exception as exc:  # private API changed: first call minus warm call
            log(f"  [{name}] AOT compile unavailable ({type(exc).__name__}: {exc}); "
                "timing the first call")
            t = time.perf_counter()
            call()
            first = time.perf_counter() - t
            row["compile_how"] = "first-minus-warm"
            row["_first"] = first
        times, ds, cpu = _repeat(call, reps, long_s)
    run = min(times)
    row["cpu_s"] = cpu
    if row["compile_how"] == "first-minus-warm":
        row["compile_s"] = max(row.pop("_first") - run, 0.0)
    elif len(times) >= 2 and times[0] > run + max(2.0, 0.5 * row["compile_s"]):
        # the AOT program was not the one evolve() used: count the first call too
        row["compile_s"] += times[0] - run
        row["note"] = "AOT cache miss; "
    a = ds.attrs
    row.update(
        picked=a["solver.name"],
        run_s=run,
        runs_s=times,
        reps=len(times),
        accepted=int(a["solver.num_accepted_steps"]),
        rejected=int(a["solver.num_rejected_steps"]),
        steps=int(a["solver.num_steps"]),
        peak_rss_mib=mem.peak_mib,
        rel_gap_change=float(ds.relative_gap_change.values[-1]),
        solver_wall_time_s=float(a["solver.wall_time_s"]),
        status=str(a["solver.status"]),
    )
    return row


def bench_auto(model, t_save, reps, long_s, done: dict, rerun_max_s: float):
    """evolve(solver="auto"): run in full when cheap, else the decision (stiffness
    estimate) is timed and the run of the picked, already measured solver reused."""
    n = model.grid.n
    y0 = model.thermal_state()
    span = float(t_save[-1] - t_save[0])
    with PeakRSS() as mem:
        # choose_solver is what evolve(auto) adds to the picked solver's call
        times = []
        for _ in range(3):
            t = time.perf_counter()
            picked = solvers.choose_solver(model, y0, span)
            times.append(time.perf_counter() - t)
        c_compile, c_run = max(times[0] - min(times[1:]), 0.0), min(times[1:])
        stiff = solvers.stiffness_estimate(model, y0) * span
        peer = done.get(picked)
        est = None if peer is None or peer.get("run_s") is None else peer["run_s"]
        if est is not None and est > rerun_max_s:
            row = _row(
                n, "auto", picked=picked, compile_s=c_compile, compile_how="first-minus-warm",
                run_s=c_run + est, reps=0, note=(
                    f"not re-run: = choose_solver ({_fmt_t(c_run)}) + the {picked} row "
                    f"(same compiled program); "
                ),
            )
            for k in ("accepted", "rejected", "steps", "rel_gap_change", "status"):
                row[k] = peer[k]
        else:
            def call():
                return solvers.evolve(model, t_save, solver="auto", rtol=RTOL, atol=ATOL,
                                      progress=False)

            # the picked program is usually compiled already (its own row): compile
            # here = choose_solver's jit + whatever the first call still compiles
            t = time.perf_counter()
            call()
            first = time.perf_counter() - t
            times, ds, cpu = _repeat(call, reps, long_s)
            run = min(times)
            a = ds.attrs
            row = _row(
                n, "auto", picked=a["solver.name"], compile_s=c_compile + max(first - run, 0.0),
                compile_how="first-minus-warm", run_s=run, runs_s=times, reps=len(times), cpu_s=cpu,
                accepted=int(a["solver.num_accepted_steps"]),
                rejected=int(a["solver.num_rejected_steps"]), steps=int(a["solver.num_steps"]),
                rel_gap_change=float(ds.relative_gap_change.values[-1]),
                solver_wall_time_s=float(a["solver.wall_time_s"]), status=str(a["solver.status"]),
            )
            if peer is not None:
                row["note"] = f"{picked} program already compiled by its row; "
    row["peak_rss_mib"] = mem.peak_mib
    row["stiffness_times_span"] = stiff
    row["note"] += f"|lambda|T = {stiff:.3g}"
    return row


def bench_scipy_bdf(model, t_save, rhs_jit, jac_jit, rhs_compile, jac_compile, reps, long_s):
    n = model.grid.n
    y0 = np.asarray(model.thermal_state())
    delta0 = float(model.delta0)

    def fun(t, y):
        return np.asarray(rhs_jit(t, y))

    def jac(t, y):
        return np.asarray(jac_jit(t, y))

    def call():
        with threadpool_limits(limits=1, user_api="blas"):
            return solve_ivp(fun, (float(t_save[0]), float(t_save[-1])), y0, method="BDF",
                             jac=jac, rtol=RTOL, atol=ATOL)

    with PeakRSS() as mem:
        times, sol, cpu = _repeat(call, reps, long_s)
    gap = float(solvers._evolve.gaps_of(model, jnp.asarray(sol.y[:, -1:].T))[0])
    return _row(
        n, "scipy-bdf", compile_s=rhs_compile + jac_compile,
        compile_how="rhs+jacobian jit (shared with their rows)", run_s=min(times),
        runs_s=times, cpu_s=cpu, reps=len(times), accepted=len(sol.t) - 1, nfev=int(sol.nfev),
        njev=int(sol.njev), nlu=int(sol.nlu), peak_rss_mib=mem.peak_mib,
        rel_gap_change=(gap - delta0) / delta0, status="success" if sol.status == 0 else "failed",
        note="" if sol.status == 0 else sol.message,
    )


def bench_steady(model, reps, long_s):
    n = model.grid.n

    def call():
        return solvers.steady_state(model)

    with PeakRSS() as mem:
        t = time.perf_counter()
        call()
        first = time.perf_counter() - t
        times, ds, cpu = _repeat(call, reps, long_s)
    run = min(times)
    a = ds.attrs
    return _row(
        n, "steady", compile_s=max(first - run, 0.0), compile_how="first-minus-warm", cpu_s=cpu,
        run_s=run, runs_s=times, reps=len(times), steps=int(a["solver.iterations"]),
        peak_rss_mib=mem.peak_mib,
        rel_gap_change=float(np.asarray(ds.relative_gap_change.values).reshape(-1)[-1]),
        status=str(a["solver.status"]),
        note=f"Newton {int(a['solver.iterations'])} it., "
        f"residual {float(a['solver.residual']):.1e}; "
        "t -> inf limit, not compared",
    )


# ---------------------------------------------------------------- one size
def bench_size(n, args, history):
    log(f"=== N = {n} ===")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        model = make_model(n)
    t_save = np.linspace(0.0, 10.0 * TAU_IN, N_SAVE)
    y0 = model.thermal_state()

    # reference kernel: one fused pass over N x N float64
    x = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)))
    ref = jax.jit(lambda x: jnp.sum(jnp.exp(x) * x, axis=1))
    c, r, _ = time_kernel(ref, x)
    rows.append(_row(n, "ref-kernel", compile_s=c, compile_how="first-minus-warm", run_s=r,
                     reps=5, note=f"{r / n**2 * 1e9:.2f} ns/element"))
    log(f"  ref-kernel {r * 1e3:.3f} ms")
    rhs_jit = jax.jit(lambda t, y: model.rhs(t, y))
    jac_jit = jax.jit(lambda t, y: model.jacobian(t, y))
    rhs_c, rhs_r, rhs_f = time_kernel(rhs_jit, 0.0, y0)
    rhs_tmp = _temp_mib(rhs_jit, 0.0, y0)
    rows.append(_row(n, "rhs", compile_s=rhs_c, compile_how="first-minus-warm", run_s=rhs_r,
                     reps=5, minor_faults_per_call=rhs_f, xla_temp_mib=rhs_tmp,
                     note=f"= {rhs_r / r:.0f} ref-kernel passes; XLA temp {rhs_tmp or 0:.0f} MiB, "
                     f"{rhs_f} page faults/call"))
    log(f"  rhs {rhs_r * 1e3:.3f} ms")
    jac_c, jac_r, jac_f = time_kernel(jac_jit, 0.0, y0)
    jac_tmp = _temp_mib(jac_jit, 0.0, y0)
    rows.append(_row(n, "jacobian", compile_s=jac_c, compile_how="first-minus-warm", run_s=jac_r,
                     reps=5, minor_faults_per_call=jac_f, xla_temp_mib=jac_tmp,
                     note=f"= {jac_r / rhs_r:.1f} rhs; XLA temp {jac_tmp or 0:.0f} MiB, "
                     f"{jac_f} page faults/call"))
    log(f"  jacobian {jac_r * 1e3:.3f} ms")

    # warm the helpers every evolve() call shares (gaps_of, dataset builder), so
    # that no method's compile time includes them
    solvers._evolve.gaps_of(model, jnp.zeros((N_SAVE, n)) + y0)
    solvers.build_dataset(model, np.tile(np.asarray(y0), (N_SAVE, 1)), np.ones(N_SAVE),
                          kind="evolve", time=t_save)

    done = {}

    def measured(method, size):
        for h in history + rows:
            if h["method"] == method and h["N"] == size and h.get("run_s") and h.get("reps", 0):
                return h["run_s"]
        return None

    def estimate(method):
        """(estimated warm run [s], basis). Preferred: the method's run at the largest
        smaller N times the reference's growth from there to this N (in-loop costs;
        a standalone rhs call also pays for fresh temporaries, see the rhs row)."""
        sizes = [h["N"] for h in history if h["method"] == method and h["N"] < n
                 and h.get("run_s") and h.get("reps", 0)]
        if sizes:
            m = max(sizes)
            ref_then, ref_now = measured(args.reference, m), measured(args.reference, n)
            if ref_then and ref_now:
                return (measured(method, m) * ref_now / ref_then,
                        f"its N={m} run x {args.reference}'s growth")
            rhs_then = next(h["run_s"] for h in history if h["method"] == "rhs" and h["N"] == m)
            return measured(method, m) * rhs_r / rhs_then, f"its N={m} run x rhs growth"
        return DEFAULT_COST_IN_RHS[method] * rhs_r, "default cost in rhs evaluations"

    for method in ("tsit5", "kvaerno5", "auto", "scipy-bdf", "steady"):
        if method not in args.methods:
            continue
        budget = args.kvaerno_budget_s if method == "kvaerno5" else args.budget_s
        if method in DEFAULT_COST_IN_RHS and method != args.reference and n >= args.skip_from:
            est, basis = estimate(method)
            if est > budget:
                note = f"skipped: estimated {est:.0f} s per run > budget {budget:.0f} s ({basis})"
                log(f"  {method}: {note}")
                rows.append(_row(n, method, status="skipped", note=note))
                continue
        log(f"  {method} ...")
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        t = time.perf_counter()
        try:
            if method in ("tsit5", "kvaerno5"):
                row = bench_evolve(model, t_save, method, args.repeats, args.long_s)
            elif method == "auto":
                row = bench_auto(model, t_save, args.repeats, args.long_s, done, args.auto_rerun_s)
            elif method == "scipy-bdf":
                row = bench_scipy_bdf(model, t_save, rhs_jit, jac_jit, rhs_c, jac_c,
                                      args.repeats, args.long_s)
            else:
                row = bench_steady(model, max(args.repeats, 2), args.long_s)
        except Exception as exc:  # keep going: one failing method must not hide the rest
            row = _row(n, method, status="error", note=f"{type(exc).__name__}: {exc}"[:200])
        row["total_s"] = time.perf_counter() - t
        row["loadavg1_at_start"] = load1
        if row.get("picked") == "tsit5" and row.get("reps") and row.get("steps"):
            # Tsit5 (FSAL): 6 rhs evaluations per step, + 2 for the initial step size
            per = row["run_s"] / (6 * row["steps"] + 2)
            row["rhs_in_loop_s"] = per
            row["note"] = (f"~{_fmt_t(per)} per rhs in the loop; " + row["note"]).rstrip("; ")
        done[method] = row
        rows.append(row)
        log(f"  {method}: run {row['run_s']} s, compile {row['compile_s']} s, "
            f"delta {row['rel_gap_change']}, {row['note']} (total {row['total_s']:.0f} s)")

    # agreement of the final delta Delta / Delta_0 among the time integrators
    finals = {r["method"]: r["rel_gap_change"] for r in rows
              if r["method"] in ("tsit5", "kvaerno5", "auto", "scipy-bdf")
              and r["rel_gap_change"] is not None}
    warns = []
    if len(finals) >= 2:
        med = statistics.median(finals.values())
        for m, v in finals.items():
            rel = abs(v - med) / abs(med)
            if rel > args.agree:
                warns.append(
                    f"WARNING N={n}: {m} final dDelta/Delta0 = {v:.12g} differs from the median "
                    f"{med:.12g} of the integrators by {rel:.2e} relative (> {args.agree:g})"
                )
    return rows, warns


# ---------------------------------------------------------------- output
def _fmt_t(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def _fmt_i(v):
    return "-" if v is None else str(v)


COLUMNS = [
    ("N", 5, lambda r: str(r["N"])),
    ("method", 10, lambda r: r["method"]),
    ("picked", 8, lambda r: r["picked"] or "-"),
    ("compile", 9, lambda r: _fmt_t(r["compile_s"])),
    ("run(min)", 10, lambda r: _fmt_t(r["run_s"])),
    ("cpu", 8, lambda r: "-" if r["cpu_s"] is None else f"{r['cpu_s']:.2f} s"),
    ("reps", 4, lambda r: str(r["reps"]) if r["reps"] else "-"),
    ("acc", 5, lambda r: _fmt_i(r["accepted"])),
    ("rej", 4, lambda r: _fmt_i(r["rejected"])),
    ("steps", 5, lambda r: _fmt_i(r["steps"])),
    ("nfev", 5, lambda r: _fmt_i(r["nfev"])),
    ("njev", 4, lambda r: _fmt_i(r["njev"])),
    ("nlu", 4, lambda r: _fmt_i(r["nlu"])),
    ("peakMiB", 7, lambda r: "-" if r["peak_rss_mib"] is None else f"{r['peak_rss_mib']:.0f}"),
    ("dDelta/D0 final", 18, lambda r: "-" if r["rel_gap_change"] is None
     else f"{r['rel_gap_change']:.12f}"),
    ("note", 0, lambda r: (r["note"] if r["status"] in ("ok", "success", "skipped")
                           else f"[{r['status']}] {r['note']}")),
]


FOOTER = [
    "Problem: MultimodeCavity(omega0=3 Delta0, t_cav=0.45, eta=0.0155/tau_in), T_qp=0.9, "
    "tau_in=1000, t in [0, 10 tau_in] (11 save points), rtol 1e-8, atol 1e-12, thermal start.",
    "run = min over `reps` warm calls (fewer when runs exceed --long-s = 60 s); "
    "rhs/jacobian/ref-kernel: min of 5, block_until_ready. cpu = process user+sys CPU time "
    "of the fastest run (XLA uses both cores: cpu ~ 2 x run when it gets them).",
    "From N = 2000 (--skip-from) a method other than tsit5 is skipped when its estimated run "
    "(its run at the previous N times tsit5's growth) exceeds 300 s (--budget-s).",
    "rhs/jacobian: standalone jitted call; XLA temp = its temporary buffers, freshly "
    "page-faulted on every call (\"page faults/call\"), unlike inside diffrax's loop.",
    "compile: tsit5/kvaerno5 = AOT lower+compile of evolve's diffrax program; auto, steady, "
    "rhs, jacobian, ref-kernel = first call minus warm call; scipy-bdf = rhs + jacobian jit.",
    "acc/rej/steps: diffrax num_accepted/rejected_steps, num_steps; scipy-bdf: acc = "
    "accepted steps (len(sol.t)-1), nfev/njev/nlu from solve_ivp; steady: steps = Newton "
    "iterations.",
    "scipy-bdf runs with OpenBLAS limited to 1 thread (threadpoolctl): OpenBLAS threads "
    "fight XLA's on 2 cores.",
    "peakMiB: peak process RSS above its value at the method's start (compile + runs), "
    "/proc/self/statm sampled every 5 ms; tracemalloc cannot see XLA's buffers.",
    "steady: delta Delta/Delta0 of the t -> inf state; the slowest (gap) mode relaxes at "
    "~0.35/tau_in, so t = 10 tau_in is still ~3% below it: not compared.",
]


def format_table(rows, warns, footer=True):
    head = "  ".join(f"{name:<{w}}" if w else name for name, w, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    last_n = None
    for r in rows:
        if last_n is not None and r["N"] != last_n:
            lines.append("")
        last_n = r["N"]
        lines.append("  ".join(f"{f(r):<{w}}" if w else f(r) for _, w, f in COLUMNS).rstrip())
    lines += [""] + list(warns)
    if footer:
        lines += [""] + FOOTER
    return "\n".join(lines)


def machine_info():
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "jax_devices": [str(d) for d in jax.devices()],
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            info["mem_total_gib"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def versions():
    out = {}
    for pkg in ("jax", "jaxlib", "diffrax", "equinox", "lineax", "optimistix", "numpy", "scipy",
                "threadpoolctl", "cavity-eliashberg"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def git_info():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=root, capture_output=True, text=True, timeout=10).stdout
        return {"commit": head or None, "modified_files": len(dirty.splitlines())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def _clean(row):
    return {k: v for k, v in row.items() if not k.startswith("_")}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.solvers",
                                description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[250, 500, 1000, 2000])
    p.add_argument("--quick", action="store_true", help="N = 250 only, one repeat (smoke test)")
    p.add_argument("--json", metavar="PATH", help="write results, machine info and versions here")
    p.add_argument("--repeats", type=int, default=3, help="warm runs per method (default 3)")
    p.add_argument("--long-s", type=float, default=60.0,
                   help="stop repeating after one run, or two runs together, longer than this "
                   "(default 60 s)")
    p.add_argument("--skip-from", type=int, default=2000,
                   help="apply the run-time budgets from this N on (default 2000)")
    p.add_argument("--budget-s", type=float, default=300.0,
                   help="skip a method (other than --reference) whose estimated run exceeds this")
    p.add_argument("--kvaerno-budget-s", type=float, default=300.0,
                   help="the same for kvaerno5 (default 300 s)")
    p.add_argument("--auto-rerun-s", type=float, default=60.0,
                   help="re-run evolve(auto) only if the picked solver's run is shorter")
    p.add_argument("--reference", default="tsit5", help="method never skipped (default tsit5)")
    p.add_argument("--agree", type=float, default=1e-6,
                   help="relative agreement required of the final dDelta/Delta0 (default 1e-6)")
    p.add_argument("--methods", nargs="+",
                   default=["tsit5", "kvaerno5", "auto", "scipy-bdf", "steady"],
                   choices=["tsit5", "kvaerno5", "auto", "scipy-bdf", "steady"])
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [250], 1

    started = datetime.datetime.now().astimezone()
    meta = {
        "date": started.isoformat(timespec="seconds"),
        "command": "python -m benchmarks.solvers "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(),
        "versions": versions(),
        "git": dict(git_info(), source_sha256=SOURCE_DIGEST["sha256"]),
        "settings": {k: v for k, v in vars(args).items() if k != "json"},
        "memory_measure": "peak RSS above the method's start, /proc/self/statm sampled every 5 ms",
        "openblas_threads_scipy": 1,
    }
    all_rows, all_warns = [], []

    def dump(final=False):
        if not args.json:
            return
        meta["machine"]["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
        meta["process_maxrss_mib"] = _maxrss_bytes() / 2**20
        meta["complete"] = final
        out = dict(meta, results=[_clean(r) for r in all_rows], warnings=all_warns,
                   table=format_table(all_rows, all_warns))
        tmp = args.json + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(out, fh, indent=1, default=str)
        os.replace(tmp, args.json)

    for n in args.sizes:
        rows, warns = bench_size(n, args, all_rows)
        all_rows += rows
        all_warns += warns
        dump()
        log(format_table(rows, warns, footer=False))
    meta["wall_s"] = (datetime.datetime.now().astimezone() - started).total_seconds()
    dump(final=True)
    m = meta["machine"]
    print(f"# {meta['date']}  {m.get('cpu_model', m['machine'])}, {m['cpu_count']} CPUs, "
          f"{m.get('mem_total_gib')} GiB, {m['platform']}; load avg at start "
          f"{', '.join(f'{x:.1f}' for x in m['loadavg_start'] or ())}")
    print("# " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v))
    g = meta["git"]
    print(f"# git {str(g.get('commit'))[:10]} + {g.get('modified_files', '?')} modified "
          f"tracked files; kinetics/ + solvers/ sources sha256 {g['source_sha256']}")
    print(format_table(all_rows, all_warns))
    return 0


if __name__ == "__main__":
    sys.exit(main())

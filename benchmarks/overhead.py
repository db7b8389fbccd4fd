"""Host overhead of warm single-point calls and of sweep points (issue 18 item 4).

    PYTHONPATH=. python -m benchmarks.overhead [--sizes 250 1000 2000] [--regimes a b]
                                               [--cases steady evolve sweep] [--reps 3]
                                               [--sweep-points 4] [--json out.json]

For each regime ((a) the paper's multimode cavity, (b) phonons + a classical drive, as
``benchmarks.run``) and grid size N, and each case:

- ``steady``: ``solvers.steady_state(model)`` (defaults: perturbative start, Newton);
- ``evolve``: ``solvers.evolve(model, t_save)`` over the regime's span (solver "auto");
- ``sweep``: ``solvers.sweep(factory, {...}, kind="steady", workers=1)`` over
  ``--sweep-points`` values of the coupling (eta in (a), P in (b)), per point;

after a first (compiling) call, the best of `--reps` warm calls (wall clock) against the
compiled work the same call does. The host time (everything outside the executions of
XLA programs) is read from JAX profiler traces of two more warm calls: their wall time
minus the summed durations of their executions
(``CommonPjRtLoadedExecutable::ExecuteHelperOnSingleDevice`` events), the smaller of the
two. The profiler slows the executions themselves (it records every thunk: an evolve
with thousands of small steps runs ~1.5x slower traced) but hardly the host code, so
compiled = warm - host. The script runs with synchronous CPU dispatch
(``jax_cpu_enable_async_dispatch = False``, set before any JAX work) so that each
execution is timed on the calling thread; measured at N = 1000, regime (a): warm steady
states take the same time with asynchronous dispatch (0.43 s against 0.44 s). Columns:

- ``warm``: best warm wall time [s] (per point for a sweep);
- ``host``: time outside the executions of compiled programs [s] (per point);
- ``compiled``: warm - host [s] (per point);
- ``ratio``: warm / compiled (1 = no host overhead; the goal of issue 18 is <= 1.5);
- ``execs``: executables run in one warm call (compiled programs plus op-by-op
  dispatches of eager JAX code outside them; per sweep, in total);
- ``compiles``: backend compilations during the warm calls (should be 0);
- ``largest``: the three costliest programs in the trace (name: seconds).

For ``steady`` a further line gives its Newton kernels: iterations x (one structured
Jacobian + one LU), timed alone (jitted, OpenBLAS at one thread as the solver runs it),
the measure of issue 18's goal "within 1.5x of its Jacobians + LUs" (meaningful where
the solve used the dense LU: ``linear_solver`` "auto" takes GMRES on large grids).
"""

from __future__ import annotations

import jax

jax.config.update("jax_cpu_enable_async_dispatch", False)  # before any JAX work

import argparse  # noqa: E402
import collections  # noqa: E402
import functools  # noqa: E402
import glob  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import kinetics  # noqa: E402,I001  (enables float64 before any JAX work)
import solvers  # noqa: E402

from .run import TAU0_AL, regime_a, regime_b  # noqa: E402

_EXEC = "CommonPjRtLoadedExecutable::ExecuteHelperOnSingleDevice"
_COMPILES = collections.Counter()


def _count_compile(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES["n"] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compile)


def _trace(call):
    """(host seconds, executions, {program: seconds}) of one call, from a profiler trace:
    wall minus the executions of XLA programs. A program's name is the innermost
    PjitFunction(...) event around it."""
    folder = tempfile.mkdtemp(prefix="overhead-trace-")
    options = jax.profiler.ProfileOptions()
    options.python_tracer_level = 0  # Python function events would slow the host code
    try:
        jax.profiler.start_trace(folder, profiler_options=options)
        try:
            clock = time.perf_counter()
            call()
            wall = time.perf_counter() - clock
        finally:
            jax.profiler.stop_trace()
        files = glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)
        data = jax.profiler.ProfileData.from_file(max(files, key=os.path.getmtime))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    total, count, by = 0.0, 0, collections.Counter()
    for plane in data.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            events = sorted(line.events, key=lambda e: e.start_ns)
            programs = []  # open PjitFunction events: (end, name)
            for ev in events:
                while programs and programs[-1][0] <= ev.start_ns:
                    programs.pop()
                if ev.name.startswith("PjitFunction("):
                    programs.append((ev.start_ns + ev.duration_ns, ev.name[13:-1]))
                elif ev.name == _EXEC:
                    s = ev.duration_ns * 1e-9
                    total += s
                    count += 1
                    by[programs[-1][1] if programs else "?"] += s
    return wall - total, count, by


def _host(call):
    """The smaller host time of two traced calls, with the first one's counts."""
    host, count, by = _trace(call)
    return min(host, _trace(call)[0]), count, by


def _warm(call, reps):
    """Best wall time of `reps` warm calls and the compilations during them."""
    before = _COMPILES["n"]
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t)
    return best, _COMPILES["n"] - before


def _newton_kernels(model, iterations):
    """iterations x (structured Jacobian + LU) of the Newton solve, timed alone."""
    # the structured Jacobian in y (public); the Newton's scaled one in z costs the same
    # N^2 pass plus O(N) scalings
    z = model.initial_state()
    jac = eqx.filter_jit(lambda m, z: m.jacobian(jnp.asarray(0.0), z))
    lu = jax.jit(jax.scipy.linalg.lu_factor)

    def best(f, *a):
        jax.block_until_ready(f(*a))
        out = np.inf
        for _ in range(5):
            t = time.perf_counter()
            jax.block_until_ready(f(*a))
            out = min(out, time.perf_counter() - t)
        return out

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        t_jac = best(jac, model, z)
        t_lu = best(lu, jac(model, z))
    return iterations * (t_jac + t_lu), t_jac, t_lu


def factory_a(eta_tau_in, *, n):
    """Regime (a) with eta tau_in swept (module level: picklable)."""
    grid = kinetics.Grid(n=n)
    d0 = kinetics.equilibrium_gap(0.9, grid)
    bath = kinetics.MultimodeCavity(omega0=3.0 * d0, t_cav=0.45, eta=eta_tau_in / 1000.0)
    return kinetics.Model(t_qp=0.9, tau_in=1000.0, baths=[bath], grid=grid)


def factory_b(power, *, n):
    """Regime (b) with the drive power swept."""
    grid = kinetics.Grid(n=n, xi_max=15.0)
    d0 = kinetics.equilibrium_gap(0.3, grid)
    baths = [kinetics.Phonons(tau0=TAU0_AL, t_ph=0.3),
             kinetics.ClassicalDrive(omega_d=0.5 * d0, power=power)]
    return kinetics.Model(t_qp=0.3, tau_in=None, baths=baths, grid=grid)


SWEEPS = {
    "a": (factory_a, "eta_tau_in", (0.0155, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05)),
    "b": (factory_b, "power", (1e-8, 2e-8, 3e-8, 4e-8, 5e-8, 6e-8, 7e-8, 8e-8)),
}


def _row(rows, regime, n, case, warm, host, execs, compiles, by, points=1, note=""):
    largest = ", ".join(f"{k}: {v / points:.3g}" for k, v in by.most_common(3))
    compiled = max(warm - host, 1e-9)
    row = dict(regime=regime, N=n, case=case, warm_s=warm / points, host_s=host / points,
               compiled_s=compiled / points, ratio=warm / compiled, execs=execs,
               compiles=compiles, points=points, largest=largest, note=note)
    rows.append(row)
    print(f"{regime:2s} {n:6d} {case:8s} {row['warm_s']:9.4f} {row['host_s']:9.4f} "
          f"{row['compiled_s']:9.4f} {row['ratio']:6.2f} {execs:6d} {compiles:5d}   "
          f"{largest}  {note}", flush=True)


def _case(rows, regime, n, case, args):
    """One row (and for steady its kernel line)."""
    model, t_save = {"a": regime_a, "b": regime_b}[regime](n)
    if case == "steady":
        call = functools.partial(solvers.steady_state, model)
        ds = call()
        warm, compiles = _warm(call, args.reps)
        host, execs, by = _host(call)
        linear = ds.attrs.get("solver.linear_solver", "dense")
        _row(rows, regime, n, "steady", warm, host, execs, compiles, by,
             note=f"linear solver {linear}")
        it = int(ds.attrs["solver.iterations"])
        kern, t_jac, t_lu = _newton_kernels(model, it)
        rows[-1].update(kernels_s=kern, jacobian_s=t_jac, lu_s=t_lu, iterations=it)
        print(f"{'':18s} Newton kernels {it} x (jacobian {t_jac:.4f} + LU {t_lu:.4f}) "
              f"= {kern:.4f} s: warm / kernels = {warm / kern:.2f}"
              + ("" if linear == "dense" else f" (this solve used {linear}, not the LU)"),
              flush=True)
    if case == "evolve":
        call = functools.partial(solvers.evolve, model, t_save, progress=False)
        ds = call()
        warm, compiles = _warm(call, args.reps)
        host, execs, by = _host(call)
        _row(rows, regime, n, "evolve", warm, host, execs, compiles, by,
             note=f"solver {ds.attrs['solver.name']}")
    if case == "sweep":
        factory, name, values = SWEEPS[regime]
        values = values[: args.sweep_points]
        call = functools.partial(
            solvers.sweep, functools.partial(factory, n=n), {name: list(values)},
            kind="steady", workers=1, progress=False)
        call()
        warm, compiles = _warm(call, args.reps)
        host, execs, by = _host(call)
        _row(rows, regime, n, "sweep", warm, host, execs, compiles, by,
             points=len(values), note=f"per point, {len(values)} points")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[250, 1000])
    p.add_argument("--regimes", nargs="+", default=["a", "b"], choices=["a", "b"])
    p.add_argument("--cases", nargs="+", default=["steady", "evolve", "sweep"],
                   choices=["steady", "evolve", "sweep"])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--sweep-points", type=int, default=4)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    print(f"{'rg':2s} {'N':>6s} {'case':8s} {'warm [s]':>9s} {'host':>9s} {'compiled':>9s} "
          f"{'ratio':>6s} "
          f"{'execs':>6s} {'comp':>5s}   largest programs [s]")
    for regime in args.regimes:
        for n in args.sizes:
            for case in args.cases:
                try:
                    _case(rows, regime, n, case, args)
                except Exception as err:  # a failed case is a row, not the end of the run
                    print(f"{regime:2s} {n:6d} {case:8s} failed: {type(err).__name__}: "
                          f"{str(err)[:200]}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "loadavg": os.getloadavg()}, fh, indent=1)


if __name__ == "__main__":
    main()

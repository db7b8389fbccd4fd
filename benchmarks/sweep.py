"""Points per second of a steady-state parameter sweep: one by one, batched, on a cluster.

    PYTHONPATH=. python -m benchmarks.sweep [--n 400] [--side 8] [--chunk 8] [--json out.json]

The problem: the paper's Fig. 1(a) regime (multimode cavity, T_qp = 0.9 T_c,
tau_in = 1000, eta tau_in = 0.0155) on a side x side map omega_0 / Delta_0 in
[1, 6] x T_cav / T_qp in [0, 1] (64 points by default), grid N = 400, each point
the nonlinear steady state (damped Newton, tol 1e-11). Rows:

- ``one-by-one``: ``solvers.steady_state(model)`` in a Python loop (each call also
  builds its full dataset, as a user loop would);
- ``sweep loop``: ``solvers.sweep(..., batch="loop")`` in this process (one compiled
  single-point program, called per point);
- ``sweep vmap``: ``solvers.sweep(..., batch="vmap", chunk_size=--chunk)`` (one
  compiled vmap-ed program per chunk of points);
- ``cluster cold`` / ``cluster warm``: a ``distributed.LocalCluster`` of 2
  single-threaded worker processes on loopback, the sweep through its address twice:
  the first run pays each worker's compile, the second reuses the programs the
  workers kept.

Timing: "cold" includes compilation; "warm" is a second run in the same process
(programs cached), which is what a long sweep converges to. Compile time per
worker comes from the sweep's ``sweep.compile_time_per_worker_s`` (ahead-of-time
lower + compile of the program). Every row's delta Delta / Delta_0 must agree with
the one-by-one row to 1e-10 (a WARNING says otherwise).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
import warnings

import jax
import numpy as np

import kinetics  # noqa: I001  (enables float64 before any JAX work)
import solvers

T_QP = 0.9
TAU_IN = 1000.0
ETA_TAU = 0.0155


def factory(omega0_ratio, t_cav_ratio, *, n):
    """Module-level, picklable: the workers import it from benchmarks.sweep."""
    grid = kinetics.Grid(n=n)
    delta0 = kinetics.equilibrium_gap(T_QP, grid)
    bath = kinetics.MultimodeCavity(
        omega0=omega0_ratio * delta0, t_cav=t_cav_ratio * T_QP, eta=ETA_TAU / TAU_IN
    )
    return kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=[bath], grid=grid)


def _row(rows, case, points, wall, compile_s, rel, note=""):
    rate = points / wall
    rows.append(
        {
            "case": case,
            "points": points,
            "wall_s": wall,
            "points_per_s": rate,
            "compile_s": compile_s,
            "note": note,
            "rel": rel,
        }
    )
    comp = "-" if compile_s is None else f"{compile_s:8.2f} s"
    print(f"{case:22s} {points:6d} {wall:9.2f} s {rate:9.2f} {comp:>10s}   {note}", flush=True)


def main(argv=None):
    import functools

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=400, help="grid size N")
    p.add_argument("--side", type=int, default=8, help="points per axis (side^2 in all)")
    p.add_argument("--chunk", type=int, default=8, help="chunk size of the vmap row")
    p.add_argument("--no-cluster", action="store_true")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    warnings.simplefilter("ignore", kinetics.PhysicsWarning)
    f = functools.partial(factory, n=a.n)
    params = {
        "omega0_ratio": list(np.linspace(1.0, 6.0, a.side)),
        "t_cav_ratio": list(np.linspace(0.0, 1.0, a.side)),
    }
    units = {"omega0_ratio": "1", "t_cav_ratio": "1"}
    npts = a.side**2
    now = datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017  (Python 3.10)
    print(
        f"# {now.isoformat(timespec='seconds')} "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load avg {os.getloadavg()[0]:.1f}, jax {jax.__version__} ({jax.default_backend()})"
    )
    print(f"# steady-state sweep, {a.side} x {a.side} = {npts} points, N = {a.n}")
    print(f"{'case':22s} {'points':>6s} {'wall':>11s} {'points/s':>9s} {'compile':>10s}   note")
    rows: list = []

    # one by one (compile: the first call minus a warm call of the same point)
    vals = [(w, r) for w in params["omega0_ratio"] for r in params["t_cav_ratio"]]
    t0 = time.perf_counter()
    solvers.steady_state(f(*vals[0]), throw=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    solvers.steady_state(f(*vals[0]), throw=False)
    warm1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = np.array(
        [float(solvers.steady_state(f(w, r), throw=False).relative_gap_change) for w, r in vals]
    ).reshape(a.side, a.side)
    _row(
        rows,
        "one-by-one (warm)",
        npts,
        time.perf_counter() - t0,
        first - warm1,
        ref,
        "solvers.steady_state per point",
    )

    def run_sweep(case, **kw):
        t0 = time.perf_counter()
        ds = solvers.sweep(f, params, units=units, progress=False, **kw)
        wall = time.perf_counter() - t0
        comp = json.loads(ds.attrs["sweep.compile_time_per_worker_s"])
        rel = ds.relative_gap_change.values
        ok = int((ds.status.values == "success").sum())
        note = (
            f"{ds.attrs['sweep.backend']}; compile per worker "
            + ", ".join(f"{v:.1f}" for v in comp.values())
            + f" s; {ok}/{npts} converged"
        )
        _row(rows, case, npts, wall, max(comp.values()) if comp else 0.0, rel, note)
        return ds

    run_sweep("sweep loop (cold)", batch="loop", workers=1)
    run_sweep("sweep loop (warm)", batch="loop", workers=1)
    run_sweep(f"sweep vmap{a.chunk} (cold)", batch="vmap", workers=1, chunk_size=a.chunk)
    run_sweep(f"sweep vmap{a.chunk} (warm)", batch="vmap", workers=1, chunk_size=a.chunk)
    if not a.no_cluster:
        import distributed

        t0 = time.perf_counter()
        with distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster:
            start = time.perf_counter() - t0
            print(f"# LocalCluster of 2 workers started in {start:.1f} s", flush=True)
            addr = cluster.scheduler_address
            run_sweep("cluster loop (cold)", batch="loop", scheduler=addr)
            run_sweep("cluster loop (warm)", batch="loop", scheduler=addr)
    worst = max(float(np.nanmax(np.abs(r["rel"] - ref))) for r in rows)
    base = rows[0]["points_per_s"]
    print(
        "# ratio to one-by-one (warm rows): "
        + ", ".join(
            f"{r['case']}: {r['points_per_s'] / base:.2f}" for r in rows if "warm" in r["case"]
        )
    )
    print(f"# largest |difference| of delta Delta/Delta_0 to one-by-one: {worst:.2e}")
    if worst > 1e-10:
        print("WARNING: the rows disagree by more than 1e-10")
    print(
        f"# load avg at the end {os.getloadavg()[0]:.1f} (other jobs share the machine: "
        "timings are noisy)"
    )
    if a.json:
        with open(a.json, "w") as fh:
            json.dump([{k: v for k, v in r.items() if k != "rel"} for r in rows], fh, indent=1)


if __name__ == "__main__":
    main()

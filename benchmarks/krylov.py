"""Steady states with the dense LU against Newton-Krylov (issue 18 items 1-2).

    python -m benchmarks.krylov [--regimes a b c] [--sizes 1000 2000 4000 8000]
                                [--kinds dense krylov krylov-jvp] [--max-gib 12]
                                [--json benchmarks/krylov.json]

Each (regime, N, linear solver) runs in a fresh process (so that its peak RSS is its
own): ``solvers.steady_state(model, linear_solver=kind)`` twice, the first call
compiling; reported: the first and the second wall time, the Newton's own wall time
(``solver.wall_time_s``, start excluded), Newton iterations, GMRES solves, iterations
failures and dense reruns, peak RSS of the process (ru_maxrss, the JAX runtime's ~0.3 GiB
included) and the largest relative difference of n from the first kind's state. The
parent stops a child whose RSS passes --max-gib (sampled every 50 ms). Regimes as in
benchmarks/run.py ("c": regime (b) at 0.1 T_c on Grid.for_temperature, ``regime_c``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from benchmarks._child import run_child


def _child(regime: str, n: int, kind: str, out: str):
    import warnings

    import numpy as np

    import solvers
    from benchmarks.run import regime_a, regime_b, regime_c

    warnings.simplefilter("ignore")
    model, _ = {"a": regime_a, "b": regime_b, "c": regime_c}[regime](n)
    walls = []
    for _ in range(2):
        t0 = time.perf_counter()
        ds = solvers.steady_state(model, linear_solver=kind, max_memory_gb=1e3)
        walls.append(time.perf_counter() - t0)
    a = ds.attrs
    row = {
        "regime": regime, "n": n, "kind": kind,
        "first_s": walls[0], "second_s": walls[1], "newton_s": float(a["solver.wall_time_s"]),
        "iterations": int(a["solver.iterations"]), "residual": float(a["solver.residual"]),
        "status": str(a["solver.status"]),
        "gmres_solves": int(a.get("solver.gmres_solves", 0)),
        "gmres_iterations": int(a.get("solver.gmres_iterations", 0)),
        "gmres_failures": int(a.get("solver.gmres_failures", 0)),
        "dense_rerun": int(a.get("solver.dense_rerun", 0)),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    np.save(out + ".npy", np.asarray(ds["n"].values).reshape(-1))
    with open(out, "w") as fh:
        json.dump(row, fh)


def _run(regime, n, kind, max_gib, tmp):
    out = os.path.join(tmp, f"{regime}-{n}-{kind}.json")
    code, stopped = run_child(["benchmarks.krylov", "--child", regime, str(n), kind, out],
                              max_gib)
    if stopped:
        return {"regime": regime, "n": n, "kind": kind, "status": stopped}
    if code != 0 or not os.path.exists(out):
        return {"regime": regime, "n": n, "kind": kind, "status": f"exit {code}"}
    with open(out) as fh:
        return json.load(fh)


def main(argv=None):
    import numpy as np

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--regimes", nargs="+", default=["b"])
    p.add_argument("--sizes", nargs="+", type=int, default=[1000, 2000, 4000])
    p.add_argument("--kinds", nargs="+", default=["dense", "krylov", "krylov-jvp"])
    p.add_argument("--max-gib", type=float, default=12.0)
    p.add_argument("--json", default=None)
    p.add_argument("--tmp", default="/tmp")
    args = p.parse_args(argv)
    rows = []
    for regime in args.regimes:
        for n in args.sizes:
            first = None
            for kind in args.kinds:
                row = _run(regime, n, kind, args.max_gib, args.tmp)
                path = os.path.join(args.tmp, f"{regime}-{n}-{kind}.json.npy")
                if "first_s" in row and os.path.exists(path):
                    y = np.load(path)
                    first = y if first is None else first
                    row["max_rel_diff"] = float(np.max(np.abs(y / first - 1.0)))
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        main()

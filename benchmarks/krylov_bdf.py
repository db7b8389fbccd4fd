"""evolve with the BDF's dense LU against GMRES (issue 18 item 1): regime (b).

    PYTHONPATH=. python -m benchmarks.krylov_bdf [--sizes 1000 2000 4000 8000]
                                                 [--kinds krylov dense] [--max-gib 12]
                                                 [--json benchmarks/krylov_bdf.json]

Each N runs in a fresh process, the kinds one after the other in the order given (the
first kind's peak RSS is its own; later ones report the process's peak so far). Each
kind is compiled by a run over a 1e-6 times shorter span (same program: the save times
are traced), then timed warm over the benchmark's span (regime (b) of benchmarks/run.py,
t in [0, 1e7]): wall time, steps, Jacobians, LUs, GMRES solves and iterations, and the
largest relative difference of the final n from the first kind's. The parent stops a
child whose RSS passes --max-gib (sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from benchmarks._child import child_rows


def _child(n: int, kinds: list[str], out: str):
    import warnings

    import numpy as np

    import solvers
    from benchmarks.run import regime_b

    warnings.simplefilter("ignore")
    model, ts = regime_b(n)
    rows, first = [], None
    for kind in kinds:
        t0 = time.perf_counter()
        solvers.evolve(model, ts * 1e-6, solver="bdf", linear_solver=kind, progress=False)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = solvers.evolve(model, ts, solver="bdf", linear_solver=kind, progress=False)
        wall = time.perf_counter() - t0
        a = ds.attrs
        y = np.asarray(ds["n"].values[-1])
        first = y if first is None else first
        rows.append({
            "n": n, "kind": kind, "warm_s": wall, "compile_run_s": compile_s,
            "status": str(a["solver.status"]),
            **{k: int(a.get(f"solver.{k}", 0)) for k in (
                "num_steps", "num_rhs", "num_jacobian", "num_lu", "gmres_solves",
                "gmres_iterations", "gmres_failures", "dense_rerun")},
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "max_rel_diff": float(np.max(np.abs(y / first - 1.0))),
        })
        with open(out, "w") as fh:
            json.dump(rows, fh)


def _table(rows):
    head = ("| N | kind | warm s | steps | Jacobians | LUs | GMRES solves | it./solve "
            "| peak RSS GiB | max rel diff |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if "warm_s" not in r:
            lines.append(f"| {r['n']} | {r['kind']} | {r['status']} |" + " - |" * 7)
            continue
        its = r["gmres_iterations"] / r["gmres_solves"] if r["gmres_solves"] else 0.0
        lines.append(
            f"| {r['n']} | {r['kind']} | {r['warm_s']:.2f} | {r['num_steps']} | "
            f"{r['num_jacobian']} | {r['num_lu']} | {r['gmres_solves']} | {its:.1f} | "
            f"{r['peak_rss_gib']:.2f} | {r['max_rel_diff']:.1e} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[1000, 2000, 4000])
    p.add_argument("--kinds", nargs="+", default=["krylov", "dense"])
    p.add_argument("--max-gib", type=float, default=12.0)
    p.add_argument("--json", default=None)
    p.add_argument("--tmp", default="/tmp")
    args = p.parse_args(argv)
    rows = []
    for n in args.sizes:
        for row in child_rows("benchmarks.krylov_bdf", "krylov-bdf", n, args.kinds, args.max_gib,
                              args.tmp):
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(_table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]), sys.argv[4:], sys.argv[3])
    else:
        main()

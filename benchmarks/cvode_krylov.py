"""CVODE with its Krylov linear solver (SPGMR) beside our Krylov BDF (issue 18 item 1's
anchor): regime (b).

    PYTHONPATH=. python -m benchmarks.cvode_krylov [--sizes 1000 2000 4000]
                      [--kinds bdf-krylov cvode-gmres cvode-dense] [--max-gib 12]
                      [--json benchmarks/cvode_krylov.json]

Needs scikit-sundae (>= 1.2: ``linsolver="gmres"``, ``CVODEPrecond``); without it the
CVODE rows say "unavailable". The CVODE kinds integrate y = n itself (as benchmarks/run.py's
"cvode" row), at rtol 1e-8 and atol 1e-12:

- "cvode-gmres": CVODE BDF, SPGMR (``krylov_dim`` 20), Jacobian-vector products by CVODE's
  difference quotients (one rhs each), left preconditioner P = I - gamma diag(J) (Jacobi,
  as our GMRES: the diagonal of the structured Jacobian, evaluated when CVODE asks for a
  new one (jok = 0), kept otherwise);
- "cvode-dense": CVODE BDF with the dense LU and the structured Jacobian (run.py's row);
- "bdf-krylov": ``solvers.evolve(solver="bdf", linear_solver="krylov")`` (log-odds
  variables, GMRES with the stored Jacobian).

Each N runs in a fresh process (stopped above --max-gib), the kinds one after the other;
each kind is run once to compile (rhs, Jacobian, diagonal) and then timed warm over the
whole span (t in [0, 1e7]). Reports wall time, steps, rhs evaluations, Jacobian (or
preconditioner) evaluations, linear iterations, peak RSS (the process's so far) and the
largest relative difference of the final n from the first kind's.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from benchmarks._child import child_rows

RTOL, ATOL = 1e-8, 1e-12


def _cvode(model, ts, kind):
    import jax
    import jax.numpy as jnp
    import numpy as np
    from sksundae.cvode import CVODE, CVODEPrecond
    from threadpoolctl import threadpool_limits

    rhs_jit = jax.jit(lambda t, y: model.rhs(t, y))
    jac_jit = jax.jit(lambda t, y: model.jacobian(t, y))
    diag_jit = jax.jit(lambda t, y: jnp.diagonal(model.jacobian(t, y)))
    y0 = np.asarray(model.initial_state())
    counts = {"f": 0, "j": 0, "steps": 0, "lin": 0}
    state = {"diag": None}

    def rhsfn(t, y, yp):
        counts["f"] += 1
        yp[:] = np.asarray(rhs_jit(t, np.array(y)))

    def jacfn(t, y, yp, jj):
        counts["j"] += 1
        jj[:, :] = np.asarray(jac_jit(t, np.array(y)))

    def psetup(t, y, yp, jok, jnew, gamma):
        if not jok or state["diag"] is None:
            counts["j"] += 1
            state["diag"] = np.asarray(diag_jit(t, np.array(y)))
            jnew[0] = 1

    def psolve(t, y, yp, rvec, zvec, gamma, delta, lr):
        counts["lin"] += 1
        a = 1.0 - gamma * state["diag"]
        zvec[:] = rvec / np.where(a != 0.0, a, 1.0)

    # compile outside the timing
    rhs_jit(0.0, y0).block_until_ready()
    (diag_jit if kind == "cvode-gmres" else jac_jit)(0.0, y0).block_until_ready()
    if kind == "cvode-gmres":
        opts = dict(linsolver="gmres", krylov_dim=20,
                    precond=CVODEPrecond(psetup, psolve, side="left"))
    else:
        opts = dict(linsolver="dense", jacfn=jacfn)
    counts.update(f=0, j=0, steps=0, lin=0)
    state["diag"] = None
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        s = CVODE(rhsfn, method="BDF", rtol=RTOL, atol=ATOL, max_num_steps=100_000, **opts)
        s.init_step(float(ts[0]), y0)
        t1 = float(ts[-1])
        while True:  # one internal step at a time: counts the steps
            res = s.step(t1, method="onestep", tstop=t1)
            counts["steps"] += 1
            if not res.success or res.t >= t1:
                break
    wall = time.perf_counter() - t0
    y = np.asarray(res.y).reshape(-1)
    return {"warm_s": wall, "status": "success" if res.success else str(res.message),
            "num_steps": counts["steps"], "num_rhs": counts["f"], "num_jacobian": counts["j"],
            "linear": counts["lin"]}, y


def _bdf(model, ts):
    import numpy as np

    import solvers

    solvers.evolve(model, ts * 1e-6, solver="bdf", linear_solver="krylov", progress=False)
    t0 = time.perf_counter()
    ds = solvers.evolve(model, ts, solver="bdf", linear_solver="krylov", progress=False)
    wall = time.perf_counter() - t0
    a = ds.attrs
    return {"warm_s": wall, "status": str(a["solver.status"]),
            "num_steps": int(a["solver.num_steps"]), "num_rhs": int(a["solver.num_rhs"]),
            "num_jacobian": int(a["solver.num_jacobian"]),
            "linear": int(a.get("solver.gmres_iterations", 0))}, np.asarray(ds["n"].values[-1])


def _child(n: int, kinds: list[str], out: str):
    import warnings

    import numpy as np

    from benchmarks.run import regime_b

    warnings.simplefilter("ignore")
    model, ts = regime_b(n)
    rows, first = [], None
    for kind in kinds:
        row = {"n": n, "kind": kind}
        try:
            if kind == "bdf-krylov":
                r, y = _bdf(model, ts)
            else:
                r, y = _cvode(model, ts, kind)
        except ImportError as exc:
            rows.append(row | {"status": f"unavailable (scikit-sundae: {exc})"})
            continue
        y = y[: model.grid.n]
        first = y if first is None else first
        rows.append(row | r | {
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
            "max_rel_diff": float(np.max(np.abs(y / first - 1.0)))})
        with open(out, "w") as fh:
            json.dump(rows, fh)
    with open(out, "w") as fh:
        json.dump(rows, fh)


def _table(rows):
    head = ("| N | kind | warm s | steps | rhs | Jacobians / diagonals | linear it. "
            "| peak RSS GiB | max rel diff |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        if "warm_s" not in r:
            lines.append(f"| {r['n']} | {r['kind']} | {r['status']} |" + " - |" * 6)
            continue
        lines.append(
            f"| {r['n']} | {r['kind']} | {r['warm_s']:.2f} | {r['num_steps']} | "
            f"{r['num_rhs']} | {r['num_jacobian']} | {r['linear']} | "
            f"{r['peak_rss_gib']:.2f} | {r['max_rel_diff']:.1e} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[1000, 2000, 4000])
    p.add_argument("--kinds", nargs="+", default=["bdf-krylov", "cvode-gmres", "cvode-dense"])
    p.add_argument("--max-gib", type=float, default=12.0)
    p.add_argument("--json", default=None)
    p.add_argument("--tmp", default="/tmp")
    args = p.parse_args(argv)
    rows = []
    for n in args.sizes:
        for row in child_rows("benchmarks.cvode_krylov", "cvode-krylov", n, args.kinds,
                              args.max_gib, args.tmp):
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

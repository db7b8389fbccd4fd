"""Benchmark: one dynamic bath against the static bath (docs/physics.md section 9).

Multimode cavity at the paper's Fig. 1(a) point (T_qp = 0.9, tau_in = 1000,
eta tau_in = 0.0155, omega_0 = 3 Delta_0, T_cav = 0.5 T_qp), grid N_xi (default 1000),
photons static or dynamic (r_cav = 1e-4, tau_cav = 1, n_omega = 128). Warm-up
(compile) first, then the median of repeated calls with block_until_ready; one line
per case, both cases in the same run.

    python benchmarks/dynamic_bosons.py [--n 1000] [--n-omega 128]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

import kinetics  # noqa: E402
import solvers  # noqa: E402


def _median(f, repeats):
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def case(n_xi, n_omega, dynamic):
    grid = kinetics.Grid(n=n_xi, xi_max=30.0, core=2.0)
    t_qp, tau_in = 0.9, 1000.0
    delta0 = kinetics.equilibrium_gap(t_qp, grid)
    dyn = kinetics.DynamicBosons(tau_b=1.0, r_cav=1e-4, n_omega=n_omega) if dynamic else None
    bath = kinetics.MultimodeCavity(omega0=3 * delta0, t_cav=0.45, eta=0.0155 / tau_in, dynamic=dyn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kinetics.PhysicsWarning)
        m = kinetics.Model(t_qp=t_qp, tau_in=tau_in, baths=bath, grid=grid)
    y = m.initial_state()
    rhs = eqx.filter_jit(lambda m, y: m.rhs(0.0, y))
    jac = eqx.filter_jit(lambda m, y: m.jacobian(0.0, y))
    t0 = time.perf_counter()
    jax.block_until_ready(rhs(m, y))
    c_rhs = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(jac(m, y))
    c_jac = time.perf_counter() - t0
    t_rhs = _median(lambda: rhs(m, y), 20)
    t_jac = _median(lambda: jac(m, y), 5)
    t0 = time.perf_counter()
    solvers.steady_state(m, tol=1e-11)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    st = solvers.steady_state(m, tol=1e-11)
    t_st = time.perf_counter() - t0  # dynamic: includes the static solve used as its start
    label = f"dynamic (N_Omega = {m.state_size - n_xi})" if dynamic else "static"
    print(
        f"N_xi = {n_xi:5d} {label:24s} state {m.state_size:5d}  rhs {1e3 * t_rhs:8.2f} ms  "
        f"jacobian {1e3 * t_jac:8.1f} ms  steady_state {t_st:6.2f} s "
        f"({st.attrs['solver.iterations']} Newton iterations; "
        f"first call incl. compile {first:5.1f} s)  "
        f"compile rhs {c_rhs:4.1f} s, jacobian {c_jac:4.1f} s  "
        f"delta Delta/Delta_0 = {float(st.relative_gap_change):.6g}",
        flush=True,
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--n-omega", type=int, default=128)
    a = p.parse_args()
    case(a.n, a.n_omega, False)
    case(a.n, a.n_omega, True)

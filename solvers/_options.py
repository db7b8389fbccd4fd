"""Solver defaults, in one place: the solvers' signatures, ``sweep``'s options, the
application's configuration schema and ``show`` all read this table."""

from __future__ import annotations

from types import MappingProxyType

# kind -> option -> default
DEFAULTS = MappingProxyType(
    {
        "steady": MappingProxyType(
            {
                "start": "perturbative",  # or "thermal"
                "method": "newton",  # or "integrate"
                "tol": 1e-10,  # relative residual and distance of each occupation (_newton)
                "max_iter": 200,  # iterations per stage (each a Newton or a pseudo-time step)
                "continuation_steps": 8,  # stages of the coupling ramp when Newton fails
                "solver": "kvaerno5",  # the diffrax solver of method="integrate"
                "t": 0.0,  # time at which time-dependent parameters are frozen
            }
        ),
        "evolve": MappingProxyType(
            {
                "solver": "auto",
                "rtol": 1e-8,
                "atol": 1e-12,
                "max_steps": 200_000,
            }
        ),
        "perturbative": MappingProxyType({"t": 0.0}),
    }
)

STEADY = DEFAULTS["steady"]
EVOLVE = DEFAULTS["evolve"]
PERTURBATIVE = DEFAULTS["perturbative"]

# The Newton's linear solves (`linear_solver` of steady_state, evolve's BDF and sweep;
# sweeps default to the dense LU). GMRES settings of the Krylov path (solvers._krylov):
# a solve stops at ||b - A x||_2 <= rtol ||b||_2 of the Jacobi-scaled system; one that
# has not after restart x max_cycles iterations rejects its Newton trial (a Newton that
# fails is redone with the dense LU); "auto" takes the Krylov
# path from `auto_size` state variables on (benchmarks/krylov.py: GMRES already wins at
# N = 300 in regimes (a) and (b); below 1000 the LU costs < 0.1 s and needs no fallback,
# so the small grids every study and test uses keep the dense path).
LINEAR_SOLVERS = ("auto", "dense", "krylov", "krylov-jvp")
KRYLOV = MappingProxyType(
    {
        "linear_solver": "auto",
        "auto_size": 1000,
        "rtol": 1e-10,
        "restart": 40,
        "max_cycles": 3,
        # the BDF's Newton systems (solvers._bdf, evolve's `linear_solver`): a looser
        # GMRES tolerance (the modified Newton converges to the corrector's root whatever
        # the solves' accuracy; rtol sets its contraction), a run stops for a rerun with
        # the dense LU after `bdf_max_failures` solves that did not converge; "auto"
        # takes GMRES from `bdf_auto_size` state variables on (benchmarks/krylov_bdf.py)
        "bdf_rtol": 1e-6,
        "bdf_restart": 20,
        "bdf_max_cycles": 2,
        "bdf_max_failures": 8,
        "bdf_auto_size": 1000,
    }
)

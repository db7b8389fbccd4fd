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

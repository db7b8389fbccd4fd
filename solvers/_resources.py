"""What a solve will need, estimated before any work: memory (refused when it exceeds what
the machine has) and a rough time (warned about when large).

Peak memory per point, in float64 N x N arrays (N = the state size), measured at
N = 4000 (benchmarks/README.md: peak RSS increase 1.35 GiB for the Newton steady state,
0.58 GiB for bdf, 0.38 GiB for the explicit default): the structured Jacobian, its LU,
the kernels' temporaries and the iteration's copies. The Krylov paths (GMRES instead
of the LU: steady_state's and the BDF's `linear_solver` "krylov"/"krylov-jvp") hold the
structured Jacobian and its construction's temporaries, no LU: 3 arrays (measured: the
whole steady_state in regime (b) peaks at 2.7 N^2 x 8 B at N = 16000, the Python and
JAX runtime included; Newton program temporaries 2.05 N^2 at N = 4000), and factor
nothing.
"""

from __future__ import annotations

import os
import warnings

from kinetics import Model

from ._errors import ResourceError

_PEAK_ARRAYS = {"steady": 11.0, "implicit": 5.0, "explicit": 3.0, "perturbative": 1.0}
_EXPLICIT = ("tsit5", "dopri5", "dopri8")
_LU_FLOPS_PER_S = 5e10  # one-thread dense LU, as the solvers run it (benchmarks/README.md)
_LUS = {"steady": 4, "implicit": 25, "explicit": 0, "perturbative": 0}  # typical counts
_KRYLOV_ARRAYS = 3.0
_KRYLOV = ("krylov", "krylov-jvp")
_WARN_SECONDS = 600.0
_WARN_SHARE = 0.25
_USABLE_SHARE = 0.8


def available_memory() -> int:
    """Bytes of memory available to a new allocation (MemAvailable), or 2 GiB if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def _regime(kind: str, solver: str | None) -> str:
    if kind == "evolve":
        return "explicit" if solver in _EXPLICIT else "implicit"
    return kind


def _arrays(kind: str, solver: str | None, linear_solver: str) -> float:
    regime = _regime(kind, solver)
    if linear_solver in _KRYLOV and regime in ("steady", "implicit"):
        return _KRYLOV_ARRAYS
    return _PEAK_ARRAYS[regime]


def memory_estimate(model: Model, kind: str, solver: str | None = None, points: int = 1,
                    linear_solver: str = "dense") -> int:
    """Estimated peak memory [bytes] of `points` solves held at once (a vmap batch, or
    the workers of a sweep), of kind "steady", "evolve" (with its `solver`; "auto" counts
    as implicit) or "perturbative"; `linear_solver` "krylov" or "krylov-jvp": the Newton
    systems solved by GMRES (no LU), "dense" (or "auto": its fallback may factor) the LU."""
    n = model.state_size
    return int(points * _arrays(kind, solver, linear_solver) * 8.0 * n * n)


def time_estimate(model: Model, kind: str, solver: str | None = None,
                  linear_solver: str = "dense") -> float:
    """A rough lower bound of one solve's time [s]: its dense LU factorizations (none on
    a Krylov path)."""
    if linear_solver in _KRYLOV and _regime(kind, solver) in ("steady", "implicit"):
        return 0.0
    n = model.state_size
    return _LUS[_regime(kind, solver)] * (2.0 / 3.0) * n**3 / _LU_FLOPS_PER_S


def check_resources(
    model: Model, kind: str, solver: str | None = None, *, points: int = 1,
    max_memory_gb: float | None = None, what: str = "", linear_solver: str = "dense",
) -> None:
    """Refuse (ResourceError) a solve whose estimated memory exceeds `max_memory_gb`
    (default: 80 % of the memory available now); warn when it takes more than a quarter of it
    or when its LUs alone take more than ten minutes."""
    need = memory_estimate(model, kind, solver, points, linear_solver)
    avail = available_memory()
    # a margin for the process itself, the saved states and whatever else runs
    limit = _USABLE_SHARE * avail if max_memory_gb is None else max_memory_gb * 2**30
    n = model.state_size
    label = what or kind
    if need > limit:
        raise ResourceError(
            f"{label}: a state of size N = {n} needs about {need / 2**30:.1f} GiB "
            f"(~{_arrays(kind, solver, linear_solver):g} N x N float64 arrays"
            + (f" x {points} points at once" if points > 1 else "")
            + f"), more than the {limit / 2**30:.1f} GiB "
            + ("available" if max_memory_gb is None else "allowed (max_memory_gb)")
            + ". Use a smaller grid (memory grows as N^2), fewer points at once, or pass "
            "max_memory_gb to override. Nothing was computed."
        )
    seconds = time_estimate(model, kind, solver, linear_solver)
    if need > _WARN_SHARE * avail or seconds > _WARN_SECONDS:
        warnings.warn(
            f"{label}: N = {n} will need about {need / 2**30:.1f} GiB and at least "
            f"{_minutes(seconds)} of dense LU work on this machine.",
            LargeSolveWarning,
            stacklevel=3,
        )


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


class LargeSolveWarning(UserWarning):
    """A large solve (memory or time) that will run, but should be a conscious choice."""

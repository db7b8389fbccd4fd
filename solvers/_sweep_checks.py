"""The checks of a sweep's arguments, made before any work (each error names the
argument, the value and what is allowed)."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Mapping

import numpy as np

from kinetics import ParameterError

from ._evolve import SOLVERS
from ._options import DEFAULTS, LINEAR_SOLVERS
from ._variables import PARAMETER_UNITS, VARIABLES

# what a sweep accepts beyond the solvers' own defaults
_SWEEP_OPTIONS = {"steady": {}, "evolve": {"t_save": None, "n0_excess": 0.0}, "perturbative": {}}
# steady options that need a single-point driver (integrate-until-steady is not swept)
_NOT_SWEPT = {"steady": ("method", "solver")}


# ---------------------------------------------------------------------------
# argument checks (before any work)
# ---------------------------------------------------------------------------


def check_parameters(parameters) -> dict[str, np.ndarray]:
    if not isinstance(parameters, Mapping) or not parameters:
        raise ParameterError(
            "sweep: parameters must be a non-empty mapping name -> sequence of values, e.g. "
            f"{{'omega0': [1.0, 2.0]}}; got {parameters!r}."
        )
    out = {}
    for name, values in parameters.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ParameterError(
                f"sweep: parameter names must be Python identifiers (they are passed to the "
                f"factory as keyword arguments); got {name!r}."
            )
        if name in ("xi", "omega", "time", "point") or name in VARIABLES:
            raise ParameterError(
                f"sweep: parameter name {name!r} is reserved for a dataset variable; rename "
                "the factory argument."
            )
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(
                f"sweep: parameters[{name!r}] must be a sequence of real numbers; got {values!r}."
            ) from None
        if arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1 or arr.size == 0:
            raise ParameterError(
                f"sweep: parameters[{name!r}] must be a non-empty 1-D sequence; got shape "
                f"{arr.shape}."
            )
        if not np.all(np.isfinite(arr)):
            raise ParameterError(f"sweep: parameters[{name!r}] must be finite; got {arr.tolist()}.")
        if np.unique(arr).size != arr.size:
            raise ParameterError(
                f"sweep: parameters[{name!r}] has repeated values (a coordinate must not); got "
                f"{arr.tolist()}."
            )
        out[name] = arr
    return out


def check_units(names, units) -> dict[str, tuple[str, str]]:
    units = dict(units or {})
    for k in units:
        if k not in names:
            raise ParameterError(
                f"sweep: units names {k!r}, which is not a swept parameter ({', '.join(names)})."
            )
    out = {}
    for name in names:
        if name in units:
            u = units[name]
            if isinstance(u, str):
                out[name] = (PARAMETER_UNITS.get(name, (name, ""))[0], u)
            elif (
                isinstance(u, (tuple, list)) and len(u) == 2 and all(isinstance(s, str) for s in u)
            ):
                out[name] = (u[0], u[1])
            else:
                raise ParameterError(
                    f"sweep: units[{name!r}] must be a unit string or (long_name, units); "
                    f"got {u!r}."
                )
        elif name in PARAMETER_UNITS:
            out[name] = PARAMETER_UNITS[name]
        else:
            raise ParameterError(
                f"sweep: the unit of parameter {name!r} is not known; pass units={{{name!r}: "
                f"'k_B T_c'}} (or (long_name, units)). Known: {', '.join(sorted(PARAMETER_UNITS))}."
            )
    return out


def check_linear_solver(kind: str, linear_solver) -> None:
    """sweep's `linear_solver`: one of ``LINEAR_SOLVERS``; "krylov-jvp" (matrix-free
    products) is a steady-state option only."""
    allowed = LINEAR_SOLVERS if kind == "steady" else tuple(
        s for s in LINEAR_SOLVERS if s != "krylov-jvp")
    if not isinstance(linear_solver, str) or linear_solver not in allowed:
        raise ParameterError(
            f"sweep: linear_solver must be one of {', '.join(map(repr, allowed))} for kind "
            f"{kind!r}; got {linear_solver!r}."
        )


def check_options(kind: str, options) -> dict:
    opts = {k: v for k, v in DEFAULTS[kind].items() if k not in _NOT_SWEPT.get(kind, ())}
    opts.update(_SWEEP_OPTIONS[kind])
    for k, v in (options or {}).items():
        if k not in opts:
            raise ParameterError(
                f"sweep: option {k!r} is not a {kind} setting; allowed: {', '.join(opts)}."
            )
        opts[k] = v
    if kind == "steady":
        if opts["start"] not in ("perturbative", "thermal"):
            raise ParameterError(
                "sweep: options['start'] must be 'perturbative' or 'thermal'; got "
                f"{opts['start']!r}."
            )
        tol = opts["tol"]
        if not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
            raise ParameterError(f"sweep: options['tol'] must be > 0; got {tol!r}.")
        for k in ("max_iter", "continuation_steps"):
            v = opts[k]
            if (
                not isinstance(v, (int, np.integer))
                or isinstance(v, bool)
                or v < (1 if k == "max_iter" else 0)
            ):
                raise ParameterError(
                    f"sweep: options[{k!r}] must be an integer >= {1 if k == 'max_iter' else 0}; "
                    f"got {v!r}."
                )
        opts["tol"], opts["max_iter"] = float(tol), int(opts["max_iter"])
        opts["continuation_steps"] = int(opts["continuation_steps"])
    if kind in ("steady", "perturbative"):
        t = opts["t"]
        if not (isinstance(t, (int, float)) and math.isfinite(t)):
            raise ParameterError(
                f"sweep: options['t'] must be a finite time [hbar/(k_B T_c)]; got {t!r}."
            )
        opts["t"] = float(t)
    if kind == "evolve":
        if opts["t_save"] is None:
            raise ParameterError(
                "sweep: kind='evolve' needs options={'t_save': [...]}: increasing save times "
                "[hbar/(k_B T_c)]."
            )
        ts = np.asarray(opts["t_save"], dtype=np.float64).reshape(-1)
        if ts.size < 1 or not np.all(np.isfinite(ts)) or np.any(np.diff(ts) <= 0):
            raise ParameterError("sweep: options['t_save'] must be finite and strictly increasing.")
        opts["t_save"] = tuple(float(x) for x in ts)
        if opts["solver"] != "auto" and opts["solver"] not in SOLVERS:
            raise ParameterError(
                f"sweep: options['solver'] must be 'auto' or one of {sorted(SOLVERS)}; got "
                f"{opts['solver']!r}."
            )
        for k in ("rtol", "atol"):
            v = opts[k]
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ParameterError(f"sweep: options[{k!r}] must be > 0; got {v!r}.")
            opts[k] = float(v)
        v = opts["max_steps"]
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ParameterError(
                f"sweep: options['max_steps'] must be a positive integer; got {v!r}."
            )
        opts["max_steps"] = int(v)
        v = opts["n0_excess"]
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > -1):
            raise ParameterError(
                f"sweep: options['n0_excess'] must be a number > -1 (the initial n is the "
                f"thermal n times 1 + n0_excess); got {v!r}."
            )
        opts["n0_excess"] = float(v)
    return opts


def check_factory(model_factory, names):
    if not callable(model_factory):
        raise ParameterError(
            f"sweep: model_factory must be a callable returning a kinetics.Model; got "
            f"{type(model_factory).__name__}."
        )
    try:
        sig = inspect.signature(model_factory)
    except (TypeError, ValueError):
        return
    try:
        sig.bind(**{n: 0.0 for n in names})
    except TypeError as err:
        raise ParameterError(
            f"sweep: model_factory{sig} cannot be called with the swept parameters "
            f"({', '.join(names)}) as keyword arguments: {err}."
        ) from None


def factory_name(model_factory) -> str:
    """A stable description of a factory (module.qualname, and a partial's arguments)."""
    if isinstance(model_factory, functools.partial):
        inner = factory_name(model_factory.func)
        kw = ", ".join(f"{k}={v!r}" for k, v in sorted(model_factory.keywords.items()))
        args = ", ".join(repr(a) for a in model_factory.args)
        return f"partial({inner}, {args}; {kw})"
    mod = getattr(model_factory, "__module__", None) or type(model_factory).__module__
    qual = getattr(model_factory, "__qualname__", None) or type(model_factory).__qualname__
    return f"{mod}.{qual}"



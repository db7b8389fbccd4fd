"""The project's own exceptions and warnings.

Every public entry point checks its inputs before any work starts and raises a
subclass of :class:`CavityEliashbergError` whose message names the parameter,
the value given and what is allowed.
"""

from __future__ import annotations

import math
from typing import Any


class CavityEliashbergError(Exception):
    """Base class of every error raised by cavity-eliashberg."""


class ParameterError(CavityEliashbergError, ValueError):
    """A parameter has a value outside what the model allows."""


class GridError(ParameterError):
    """The energy grid cannot represent the requested physics."""


class PhysicsWarning(UserWarning):
    """A valid but physically questionable input (what to do is in the message)."""


def _describe(value: Any) -> str:
    return repr(value) if not isinstance(value, float) else f"{value:.6g}"


def check_finite(name: str, value: Any) -> float:
    """Return ``value`` as a float, or raise ParameterError if it is not a finite real number."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a real number; got {_describe(value)}.") from None
    if not math.isfinite(x):
        raise ParameterError(f"{name} must be finite; got {_describe(value)}.")
    return x


def check_positive(name: str, value: Any, unit: str = "") -> float:
    x = check_finite(name, value)
    if x <= 0.0:
        raise ParameterError(
            f"{name} must be > 0{(' ' + unit) if unit else ''}; got {_describe(x)}."
        )
    return x


def check_nonnegative(name: str, value: Any, unit: str = "") -> float:
    x = check_finite(name, value)
    if x < 0.0:
        raise ParameterError(
            f"{name} must be >= 0{(' ' + unit) if unit else ''}; got {_describe(x)}."
        )
    return x

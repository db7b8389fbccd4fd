"""Declared parameters: what a bath's constructor accepts, with units and bounds.

Each constructor field of a bath is declared once with ``bath_parameter`` (its
dimension, bounds, whether a profile of time is allowed, a one-line doc with units);
``AbstractBath.parameter_specs()`` reads the ``ParameterSpec`` back and
``AbstractBath.__check_init__`` checks every value against it, so configs, datasets
and sweeps learn a new bath's parameters from its class.
"""

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ParameterError, check_finite
from ._profiles import AbstractProfile


def _param(x):
    """Store numbers as float64 arrays (so that changing them never recompiles)."""
    if isinstance(x, AbstractProfile) or isinstance(x, jax.Array):
        return x
    if isinstance(x, (bool, np.bool_)):
        raise ParameterError(f"expected a number or a profile; got {x!r}.")
    if isinstance(x, (int, float, np.integer, np.floating)) or (
        isinstance(x, np.ndarray) and x.ndim == 0
    ):
        return jnp.asarray(float(x), dtype=jnp.float64)
    return x


def _table(x):
    return jnp.asarray(x, dtype=jnp.float64)


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


# bath temperatures beyond this are outside the model (energies of order k_B T_c; the
# grid would need xi_max >= 20 T) and overflow the Bose factors' dynamic range
MAX_TEMPERATURE = 1.0e3

def _check_param(
    owner: str, name: str, x, *, minimum: float, strict: bool, unit: str, maximum: float = np.inf
):
    """Validate a number or a profile against its bounds, before any work."""
    full = f"{owner}.{name}"
    if isinstance(x, AbstractProfile):
        lo, hi = x.bounds()
        check_finite(full + " (profile bound)", lo)
        check_finite(full + " (profile bound)", hi)
        bad = lo <= minimum if strict else lo < minimum
        if bad:
            raise ParameterError(
                f"{full} must stay {'>' if strict else '>='} {minimum:g} {unit} at all times; "
                f"its profile {type(x).__name__} reaches {lo:g}."
            )
        if hi > maximum:
            raise ParameterError(
                f"{full} must stay <= {maximum:g} {unit}; its profile reaches {hi:g}."
            )
        return
    if not _concrete(x):
        return
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{full} must be a number or a profile (kinetics.Step, Ramp, GaussianPulse); "
            f"got {x!r}."
        ) from None
    check_finite(full, v)
    if (v <= minimum) if strict else (v < minimum):
        raise ParameterError(
            f"{full} must be {'>' if strict else '>='} {minimum:g} {unit}; got {v:g}."
        )
    if v > maximum:
        raise ParameterError(
            f"{full} must be <= {maximum:g} {unit} (beyond that the model, built for energies "
            f"of order k_B T_c, does not apply); got {v:g}."
        )


# --------------------------------------------------------------------------- parameter specs


class _Required:
    """The default of a parameter that must be given."""

    def __repr__(self):
        return "REQUIRED"


REQUIRED: Any = _Required()

NUMBER_DIMENSIONS = ("energy", "temperature", "time", "rate", "coupling")
_UNITS = {
    "energy": "[T_c]",
    "temperature": "[T_c]",
    "time": "[hbar/(k_B T_c)]",
    "rate": "[k_B T_c/hbar]",
    "coupling": "[dimensionless]",
}


def _either(choices) -> str:
    words = [repr(c) for c in choices]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


@dataclasses.dataclass(frozen=True)
class ParameterSpec:
    """One constructor parameter of a bath, as declared on its field.

    - `name`: the field name.
    - `dimension`: "energy", "temperature", "time", "rate" or "coupling" for a number
      (internal units: T_c, T_c, hbar/(k_B T_c), k_B T_c/hbar, dimensionless);
      "choice" for a string drawn from `choices`; "table" for a 1-D array.
    - `minimum`, `strict`, `maximum`: a number must be > `minimum` (`strict`) or
      >= `minimum`, and <= `maximum`; a profile must stay within them at all times.
    - `time_dependent`: whether a profile of time (``kinetics.Step`` ...) is allowed.
    - `default`: the value when omitted, ``kinetics.REQUIRED`` when it must be given
      (None: an optional number, absent by default).
    - `choices`: the allowed strings of a "choice" (else None).
    - `doc`: one line, units in brackets.
    """

    name: str
    dimension: str
    doc: str
    minimum: float = -math.inf
    strict: bool = False
    maximum: float = math.inf
    time_dependent: bool = False
    default: Any = REQUIRED
    choices: tuple[str, ...] | None = None

    @property
    def unit(self) -> str:
        """The internal unit in brackets ("" for a choice or a table)."""
        return _UNITS.get(self.dimension, "")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, owner: str, value) -> None:
        """Raise ParameterError naming `owner`.`name` if `value` is not allowed.

        Tables are checked by their class (shapes and contents depend on each other)."""
        full = f"{owner}.{self.name}"
        if self.dimension == "table":
            return
        if self.dimension == "choice":
            if value not in self.choices:
                raise ParameterError(f"{full} must be {_either(self.choices)}; got {value!r}.")
            return
        if value is None:
            if self.default is None:
                return
            raise ParameterError(f"{full} ({self.doc}) is required; got None.")
        if isinstance(value, AbstractProfile) and not self.time_dependent:
            raise ParameterError(
                f"{full} must be a constant number {self.unit}; got a profile "
                f"{type(value).__name__}."
            )
        _check_param(
            owner, self.name, value, minimum=self.minimum, strict=self.strict,
            unit=self.unit, maximum=self.maximum,
        )


def bath_parameter(
    dimension: str,
    doc: str,
    *,
    minimum: float = -math.inf,
    strict: bool = False,
    maximum: float = math.inf,
    time_dependent: bool = False,
    default: Any = REQUIRED,
    choices: tuple[str, ...] | None = None,
    static: bool = False,
):
    """Declare a bath's constructor field with its ``ParameterSpec`` (see there).

    Numbers are stored as float64 arrays (a new value does not recompile) unless
    `static` (a compile-time constant, e.g. a cut-off that fixes array shapes);
    tables as float64 arrays; choices as static strings. ``AbstractBath`` checks
    every declared parameter against its spec on construction.
    """
    if dimension not in (*NUMBER_DIMENSIONS, "choice", "table"):
        raise ValueError(f"unknown parameter dimension {dimension!r}")
    if (dimension == "choice") != (choices is not None):
        raise ValueError("a 'choice' parameter needs `choices`, and only a choice has them")
    spec = ParameterSpec(
        name="", dimension=dimension, doc=doc, minimum=minimum, strict=strict,
        maximum=maximum, time_dependent=time_dependent, default=default,
        choices=None if choices is None else tuple(choices),
    )
    kwargs: dict[str, Any] = {"metadata": {"parameter": spec}}
    if default is not REQUIRED:
        kwargs["default"] = default
    if dimension == "choice":
        return eqx.field(static=True, **kwargs)
    if dimension == "table":
        return eqx.field(converter=_table, **kwargs)
    if static:
        return eqx.field(static=True, **kwargs)
    return eqx.field(converter=_param, **kwargs)

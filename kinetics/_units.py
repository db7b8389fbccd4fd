"""Physical units <-> the internal units of docs/physics.md section 1.

Internally hbar = k_B = 1, energies and temperatures are in units of k_B T_c,
times in hbar / (k_B T_c), rates in k_B T_c / hbar. A physical value is turned
into an internal one with the film's critical temperature T_c [K].

Frequencies: ``GHz``, ``MHz`` and ``THz`` mean an **ordinary** frequency f, the
energy h f (a cavity at "5 GHz" has photons of h x 5 GHz); ``rad/s`` means an
angular frequency omega, the energy hbar omega. Example: Delta = 10 K is
omega = Delta / hbar = 1.31e12 rad/s (the paper's "1.3 THz" is this angular
frequency) and f = omega / (2 pi) = 208 GHz.

Relative units name a reference value of the situation: ``Delta0`` (the
equilibrium gap at T_qp), ``T_qp``, ``tau_in``, ``T_c`` (= 1); a rate or a
dimensionless coupling may be given per relaxation time, ``"0.0155 / tau_in"``.
"""

from __future__ import annotations

import math
import re

from ._errors import ParameterError

# CODATA 2018 (exact in the SI since 2019)
K_B = 8.617333262e-5  # eV / K
H = 4.135667696e-15  # eV s
HBAR = H / (2.0 * math.pi)  # eV s

_ENERGY_EV = {"eV": 1.0, "meV": 1e-3, "ueV": 1e-6, "µeV": 1e-6, "μeV": 1e-6}
_FREQUENCY_HZ = {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9, "THz": 1e12}
_TIME_S = {
    "s": 1.0,
    "ms": 1e-3,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ns": 1e-9,
    "ps": 1e-12,
    "fs": 1e-15,
}
_TEMPERATURE_K = {"K": 1.0, "mK": 1e-3}

# what each dimension accepts, for the error messages
DIMENSIONS = ("energy", "temperature", "time", "rate", "coupling")


def time_unit_seconds(t_c_kelvin: float) -> float:
    """The internal unit of time hbar / (k_B T_c) in seconds."""
    return HBAR / (K_B * t_c_kelvin)


def allowed_units(dimension: str) -> list[str]:
    """The unit names a value of this dimension may carry."""
    if dimension in ("energy", "temperature"):
        return ["T_c", *_TEMPERATURE_K, *_ENERGY_EV, *_FREQUENCY_HZ, "rad/s", "Delta0", "T_qp"]
    if dimension == "time":
        return ["hbar/(k_B T_c)", *_TIME_S, "tau_in"]
    if dimension == "rate":
        # no Hz here: "1 GHz" as a rate is ambiguous (1e9/s or 2 pi 1e9/s); write "/ns"
        return ["k_B T_c/hbar", "/tau_in", *(f"/{u}" for u in _TIME_S)]
    if dimension == "coupling":
        return ["(none)", "/tau_in"]
    raise ValueError(f"unknown dimension {dimension!r}")


_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"


def parse_quantity(text: str, *, name: str) -> tuple[float, str]:
    """``"3 Delta0"`` -> (3.0, "Delta0"); ``"0.0155/tau_in"`` -> (0.0155, "/tau_in")."""
    m = re.fullmatch(rf"\s*({_NUMBER})\s*(.*?)\s*", text)
    if m is None:
        raise ParameterError(
            f"{name}: cannot read {text!r} as a number with a unit; write e.g. "
            f"'3 Delta0', '208 GHz', '5 ns', '0.0155 / tau_in'."
        )
    unit = re.sub(r"\s+", "", m.group(2))
    if unit.startswith("1/"):
        unit = unit[1:]
    return float(m.group(1)), unit


def to_internal(
    value: float,
    unit: str,
    *,
    dimension: str,
    name: str,
    t_c_kelvin: float | None = None,
    references: dict | None = None,
) -> float:
    """Convert ``value`` in ``unit`` to internal units (docs/physics.md section 1).

    - `dimension`: "energy", "temperature", "time", "rate" or "coupling".
    - `name`: the parameter, for the error message.
    - `t_c_kelvin`: T_c [K], needed for physical units (K, eV, GHz, ns, ...).
    - `references`: values of the relative units in internal units, any of
      "Delta0", "T_qp", "tau_in" (and sibling parameters such as "omega0").

    An empty unit means the internal unit. Raises `ParameterError` naming the
    parameter and the allowed units when the unit does not fit the dimension.
    """
    references = references or {}
    allowed = allowed_units(dimension)
    if dimension == "energy":  # sibling parameters, e.g. a line width in units of omega0
        allowed += [r for r in references if r not in ("Delta0", "T_qp", "tau_in")]

    def physical(scale_kelvin_or_seconds: float) -> float:
        if t_c_kelvin is None:
            raise ParameterError(
                f"{name}: the unit {unit!r} is physical; give the critical temperature "
                f'(model.t_c, e.g. t_c = "1.19 K") or use internal/relative units.'
            )
        return scale_kelvin_or_seconds

    def relative(ref: str) -> float:
        if ref not in references or references[ref] is None:
            raise ParameterError(f"{name}: the relative unit {ref!r} is not available here.")
        return float(references[ref])

    if unit == "" or unit in ("T_c", "hbar/(k_B T_c)", "k_B T_c/hbar", "(none)"):
        if unit and unit not in allowed:
            raise ParameterError(f"{name}: unit {unit!r} is not allowed; allowed: {allowed}.")
        return float(value)
    if unit not in allowed:
        raise ParameterError(
            f"{name}: unit {unit!r} does not fit a {dimension}; allowed: {', '.join(allowed)}."
        )
    if dimension in ("energy", "temperature"):
        if unit in _TEMPERATURE_K:
            return value * physical(_TEMPERATURE_K[unit]) / t_c_kelvin
        if unit in _ENERGY_EV:
            return value * physical(_ENERGY_EV[unit] / K_B) / t_c_kelvin
        if unit in _FREQUENCY_HZ:
            return value * physical(H * _FREQUENCY_HZ[unit] / K_B) / t_c_kelvin
        if unit == "rad/s":
            return value * physical(HBAR / K_B) / t_c_kelvin
        return value * relative(unit)
    if dimension == "time":
        if unit in _TIME_S:
            return value * physical(_TIME_S[unit]) / time_unit_seconds(t_c_kelvin)
        return value * relative(unit)
    # rates and couplings
    if unit == "/tau_in":
        return value / relative("tau_in")
    if unit.startswith("/") and unit[1:] in _TIME_S:
        return value / (physical(_TIME_S[unit[1:]]) / time_unit_seconds(t_c_kelvin))
    return value * relative(unit)

"""Baths: what the quasiparticles exchange energy with (docs/physics.md section 3).

A bath is an immutable object that tells the collision operator

- its spectral coupling J(Omega) >= 0 (``spectral_density``) on its support
  [omega_lo, omega_hi] (``support``; J = 0 outside). Steps of J at the ends of the
  support are integrated exactly by the operator, so J itself must be smooth
  inside;
- its occupation N(Omega) (``occupation``) and temperature (``temperature``);
- its coherence type (``coupling``): "current" (photons: scattering factor c+,
  pair factor c-) or "density" (phonons: scattering c-, pair c+),
  c+-(E, E') = (1/2)(1 +- Delta^2 / (E E')).

Units: energies and temperatures in T_c, times in hbar/(k_B T_c), J and eta
dimensionless, 1/tau0 and the drive power P in T_c (rates). Every parameter
marked "(t)" may be a number or a profile of time (``kinetics.Step`` ...).
"""

from __future__ import annotations

import abc
import warnings
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._bosons import DynamicBosons
from ._distributions import thermal_occupation
from ._errors import ParameterError, PhysicsWarning, check_finite
from ._profiles import AbstractProfile, bounds_of, jumps_of, scale_parameter, value_at


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
            raise ParameterError(f"{full} must stay <= {maximum:g} {unit}; its profile reaches {hi:g}.")
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
        raise ParameterError(f"{full} must be {'>' if strict else '>='} {minimum:g} {unit}; got {v:g}.")
    if v > maximum:
        raise ParameterError(
            f"{full} must be <= {maximum:g} {unit} (beyond that the model, built for energies "
            f"of order k_B T_c, does not apply); got {v:g}."
        )



def _check_dynamic(owner: str, d, needs: str):
    """`dynamic` must be None or a DynamicBosons carrying the mode density `needs`."""
    if d is None:
        return
    if not isinstance(d, DynamicBosons):
        raise ParameterError(
            f"{owner}.dynamic must be None (static bath) or a kinetics.DynamicBosons; "
            f"got {type(d).__name__}."
        )
    other = "tau0_ph" if needs == "r_cav" else "r_cav"
    if getattr(d, needs) is None:
        raise ParameterError(
            f"{owner}.dynamic needs {needs} (the mode density: "
            + ("r_cav, dimensionless, see kinetics.planar_cavity_r" if needs == "r_cav"
               else "tau0_ph, Kaplan's phonon pair-breaking time [hbar/(k_B T_c)]")
            + f"); got {needs}=None."
        )
    if getattr(d, other) is not None:
        raise ParameterError(f"{owner}.dynamic: {other} does not apply to this bath; give {needs} only.")


class AbstractBath(eqx.Module):
    """What every bath provides to the collision operator (see the module docstring)."""

    # Each concrete bath sets the class attribute ``coupling`` ("current" or
    # "density"); TabulatedBath stores it as a field.
    stimulated_only: ClassVar[bool] = False

    @abc.abstractmethod
    def spectral_density(self, omega, t):
        """Smooth J(Omega) [dimensionless] inside the support, at time t."""

    @abc.abstractmethod
    def support(self, t):
        """(omega_lo, omega_hi) [T_c]: J = 0 outside; omega_hi may be inf."""

    @abc.abstractmethod
    def temperature(self, t):
        """Bath temperature [T_c] (0 is the vacuum)."""

    def occupation(self, omega, t):
        """Occupation N(Omega) of the bath modes (Bose at the bath temperature)."""
        return thermal_occupation(omega, self.temperature(t))

    def parameters(self) -> dict:
        """Parameter name -> number or profile, for datasets and summaries.

        The settings of a dynamic bath appear as ``dynamic.<name>`` (a static bath
        has no such entries)."""
        out = {}
        for f in self.__dataclass_fields__.values():
            v = getattr(self, f.name)
            if isinstance(v, DynamicBosons):
                out.update({f"dynamic.{k}": x for k, x in v.parameters().items()})
            elif not (f.name == "dynamic" and v is None):
                out[f.name] = v
        return out

    def jump_times(self) -> tuple[float, ...]:
        out: tuple[float, ...] = ()
        for v in self.parameters().values():
            out += jumps_of(v)
        return out

    def max_temperature(self) -> float:
        return bounds_of(self.temperature_parameter())[1]

    @abc.abstractmethod
    def temperature_parameter(self):
        """The stored temperature (number or profile)."""

    @abc.abstractmethod
    def scaled(self, factor):
        """The same bath with its coupling multiplied by `factor` (J -> factor J)."""


class MultimodeCavity(AbstractBath):
    """Planar multimode cavity, paper eq. (16):

        J(Omega) = eta * omega0 * (1 + omega0^2 / Omega^2) * theta(Omega - omega0),

    photons at temperature t_cav, current coupling.

    - `omega0`: cavity cut-off frequency [T_c] (t).
    - `t_cav`: photon temperature [T_c] (t); 0 is the vacuum.
    - `eta`: dimensionless coupling 4 alpha X D T_c / c^2 (t). The paper's Fig. 1
      corresponds to eta * tau_in = 0.0155.
    - `dynamic`: None (photons stay at t_cav), or ``DynamicBosons(tau_b=tau_cav,
      r_cav=...)``: the photon occupation becomes a state variable relaxing to
      t_cav at the rate 1/tau_cav (docs/physics.md section 9); omega0 must then be a
      constant.
    """

    omega0: float | AbstractProfile = eqx.field(converter=_param)
    t_cav: float | AbstractProfile = eqx.field(converter=_param)
    eta: float | AbstractProfile = eqx.field(converter=_param)
    dynamic: DynamicBosons | None = None
    coupling = "current"

    def __check_init__(self):
        _check_param("MultimodeCavity", "omega0", self.omega0, minimum=0.0, strict=True, unit="[T_c]")
        _check_param(
            "MultimodeCavity", "t_cav", self.t_cav, minimum=0.0, strict=False, unit="[T_c]",
            maximum=MAX_TEMPERATURE,
        )
        _check_param("MultimodeCavity", "eta", self.eta, minimum=0.0, strict=False, unit="")
        _check_dynamic("MultimodeCavity", self.dynamic, "r_cav")
        if self.dynamic is not None and isinstance(self.omega0, AbstractProfile):
            raise ParameterError(
                "MultimodeCavity.omega0 must be a constant for a dynamic cavity (it is the "
                "first node of the photon Omega grid); got a profile."
            )

    def spectral_density(self, omega, t):
        w0 = value_at(self.omega0, t)
        return value_at(self.eta, t) * w0 * (1.0 + (w0 / omega) ** 2)

    def support(self, t):
        return value_at(self.omega0, t), jnp.inf

    def temperature(self, t):
        return value_at(self.t_cav, t)

    def temperature_parameter(self):
        return self.t_cav

    def scaled(self, factor):
        return eqx.tree_at(lambda b: b.eta, self, scale_parameter(self.eta, factor))


class SingleModeCavity(AbstractBath):
    """Single-mode cavity with a Lorentzian line:

        J(Omega) = eta * omega0^2 * 2 kappa / ((Omega - omega0)^2 + kappa^2) * theta(Omega),

    kappa = 1 / (2 tau_cav); photons at t_cav; current coupling.

    - `omega0`: mode frequency [T_c] (t); `t_cav`: photon temperature [T_c] (t);
    - `eta`: dimensionless coupling (t); `kappa`: half width [T_c] (t).
    - `dynamic`: None, or ``DynamicBosons(tau_b=tau_cav, r_cav=...)`` (docs/physics.md
      section 9; the mode density is the Lorentzian r_cav (kappa/pi) / ((Omega -
      omega0)^2 + kappa^2)). Events below the first nonzero Omega node (the
      quasi-elastic part, J(0) > 0) are then dropped on both sides.
    The grid must resolve kappa near omega0 (a warning says so when it does not).
    """

    omega0: float | AbstractProfile = eqx.field(converter=_param)
    t_cav: float | AbstractProfile = eqx.field(converter=_param)
    eta: float | AbstractProfile = eqx.field(converter=_param)
    kappa: float | AbstractProfile = eqx.field(converter=_param)
    dynamic: DynamicBosons | None = None
    coupling = "current"

    def __check_init__(self):
        _check_param("SingleModeCavity", "omega0", self.omega0, minimum=0.0, strict=True, unit="[T_c]")
        _check_param(
            "SingleModeCavity", "t_cav", self.t_cav, minimum=0.0, strict=False, unit="[T_c]",
            maximum=MAX_TEMPERATURE,
        )
        _check_param("SingleModeCavity", "eta", self.eta, minimum=0.0, strict=False, unit="")
        _check_param("SingleModeCavity", "kappa", self.kappa, minimum=0.0, strict=True, unit="[T_c]")
        _check_dynamic("SingleModeCavity", self.dynamic, "r_cav")
        if self.dynamic is not None and isinstance(self.omega0, AbstractProfile):
            raise ParameterError("SingleModeCavity.omega0 must be a constant for a dynamic cavity.")

    def spectral_density(self, omega, t):
        w0 = value_at(self.omega0, t)
        k = value_at(self.kappa, t)
        return value_at(self.eta, t) * w0**2 * 2.0 * k / ((omega - w0) ** 2 + k**2)

    def support(self, t):
        return jnp.asarray(0.0), jnp.inf

    def temperature(self, t):
        return value_at(self.t_cav, t)

    def temperature_parameter(self):
        return self.t_cav

    def scaled(self, factor):
        return eqx.tree_at(lambda b: b.eta, self, scale_parameter(self.eta, factor))


class TabulatedBath(AbstractBath):
    """Any bath given by a table of J(Omega) (linear interpolation, J = 0 outside).

    - `omega`: strictly increasing energies [T_c], omega[0] >= 0, shape (m,), m >= 2.
    - `j`: J at those energies [dimensionless], >= 0, shape (m,).
    - `t_bath`: bath temperature [T_c] (t).
    - `coupling`: "current" (photons) or "density" (phonons).
    - `scale`: dimensionless factor multiplying J (t), e.g. to switch it on.
    """

    omega: jax.Array = eqx.field(converter=lambda x: jnp.asarray(x, dtype=jnp.float64))
    j: jax.Array = eqx.field(converter=lambda x: jnp.asarray(x, dtype=jnp.float64))
    t_bath: float | AbstractProfile = eqx.field(converter=_param)
    coupling: str = eqx.field(static=True, default="current")
    scale: float | AbstractProfile = eqx.field(converter=_param, default=1.0)

    def __check_init__(self):
        if self.coupling not in ("current", "density"):
            raise ParameterError(
                f"TabulatedBath.coupling must be 'current' or 'density'; got {self.coupling!r}."
            )
        if _concrete(self.omega) and _concrete(self.j):
            om, jj = np.asarray(self.omega), np.asarray(self.j)
            if om.ndim != 1 or om.shape != jj.shape or om.size < 2:
                raise ParameterError(
                    f"TabulatedBath.omega and .j must be 1-D of equal length >= 2; got shapes "
                    f"{om.shape} and {jj.shape}."
                )
            if not (np.all(np.isfinite(om)) and np.all(np.isfinite(jj))):
                raise ParameterError("TabulatedBath.omega and .j must be finite.")
            if om[0] < 0 or np.any(np.diff(om) <= 0):
                raise ParameterError(
                    "TabulatedBath.omega must be strictly increasing and start at >= 0 [T_c]."
                )
            if np.any(jj < 0):
                raise ParameterError("TabulatedBath.j must be >= 0 everywhere.")
        _check_param(
            "TabulatedBath", "t_bath", self.t_bath, minimum=0.0, strict=False, unit="[T_c]",
            maximum=MAX_TEMPERATURE,
        )
        _check_param("TabulatedBath", "scale", self.scale, minimum=0.0, strict=False, unit="")

    def spectral_density(self, omega, t):
        return value_at(self.scale, t) * jnp.interp(omega, self.omega, self.j)

    def support(self, t):
        return self.omega[0], self.omega[-1]

    def temperature(self, t):
        return value_at(self.t_bath, t)

    def temperature_parameter(self):
        return self.t_bath

    def scaled(self, factor):
        return eqx.tree_at(lambda b: b.scale, self, scale_parameter(self.scale, factor))


class Phonons(AbstractBath):
    """Phonons of the film (Kaplan et al. 1976; Chang & Scalapino 1978):

        J(Omega) = Omega^2 / tau0 * theta(Omega) * theta(omega_debye - Omega),

    density coupling, phonons at t_ph. With it the relaxation-time term is not needed.

    - `tau0`: characteristic electron-phonon time [hbar/(k_B T_c)] (aluminium:
      438 ns = 6.8e4 hbar/(k_B T_c) at T_c = 1.19 K).
    - `t_ph`: phonon temperature [T_c] (t).
    - `omega_debye`: optional upper cut-off [T_c] (None: no cut-off).
    - `dynamic`: None (phonons stay at t_ph), or ``DynamicBosons(tau_b=tau_esc,
      tau0_ph=...)``: the phonon occupation becomes a state variable that escapes
      to the substrate at t_ph at the rate 1/tau_esc (the phonon bottleneck,
      docs/physics.md section 9). ``kinetics.aluminium_phonons`` builds one from
      material constants.
    """

    tau0: float | AbstractProfile = eqx.field(converter=_param)
    t_ph: float | AbstractProfile = eqx.field(converter=_param)
    omega_debye: float | None = eqx.field(static=True, default=None)
    dynamic: DynamicBosons | None = None
    coupling = "density"

    def __check_init__(self):
        _check_param("Phonons", "tau0", self.tau0, minimum=0.0, strict=True, unit="[hbar/(k_B T_c)]")
        _check_param(
            "Phonons", "t_ph", self.t_ph, minimum=0.0, strict=False, unit="[T_c]",
            maximum=MAX_TEMPERATURE,
        )
        if self.omega_debye is not None:
            _check_param("Phonons", "omega_debye", self.omega_debye, minimum=0.0, strict=True, unit="[T_c]")
        _check_dynamic("Phonons", self.dynamic, "tau0_ph")

    def spectral_density(self, omega, t):
        return omega**2 / value_at(self.tau0, t)

    def support(self, t):
        hi = jnp.inf if self.omega_debye is None else self.omega_debye
        return jnp.asarray(0.0), hi

    def temperature(self, t):
        return value_at(self.t_ph, t)

    def temperature_parameter(self):
        return self.t_ph

    def scaled(self, factor):
        return eqx.tree_at(lambda b: b.tau0, self, scale_parameter(self.tau0, 1.0 / factor))


class ClassicalDrive(AbstractBath):
    """A classical microwave field (the Eliashberg effect): stimulated processes only.

    In the collision integral J * N is replaced by P * L(Omega - omega_d), a line of
    unit area, and the spontaneous terms are dropped; current coupling. The
    operator is then affine in n.

    - `omega_d`: drive frequency [T_c] (t).
    - `power`: P [T_c] (t): the rate scale (J N integrated over the line).
    - `width`: line width gamma [T_c] (standard deviation for "gaussian", half
      width for "lorentzian"); ignored for the default exact "delta" line.
    - `line`: "delta" (gamma -> 0, exact), "gaussian" or "lorentzian". A
      Lorentzian's tails reach the pair-breaking channel: at low temperature they
      can dominate (a warning says so).
    """

    omega_d: float | AbstractProfile = eqx.field(converter=_param)
    power: float | AbstractProfile = eqx.field(converter=_param)
    width: float = eqx.field(static=True, default=0.0)
    line: str = eqx.field(static=True, default="delta")
    coupling = "current"
    stimulated_only: ClassVar[bool] = True

    def __check_init__(self):
        _check_param("ClassicalDrive", "omega_d", self.omega_d, minimum=0.0, strict=True, unit="[T_c]")
        _check_param("ClassicalDrive", "power", self.power, minimum=0.0, strict=False, unit="[T_c]")
        if self.line not in ("delta", "gaussian", "lorentzian"):
            raise ParameterError(
                f"ClassicalDrive.line must be 'delta', 'gaussian' or 'lorentzian'; got {self.line!r}."
            )
        w = check_finite("ClassicalDrive.width", self.width)
        if self.line != "delta" and w <= 0:
            raise ParameterError(
                f"ClassicalDrive.width must be > 0 [T_c] for a {self.line} line; got {w:g}."
            )
        if self.line == "lorentzian":
            warnings.warn(
                "ClassicalDrive with a Lorentzian line: its tails reach the pair-breaking "
                "channel (Omega >= 2 Delta), which at low temperature is ~1000x stronger than "
                "scattering and can turn enhancement into suppression. Prefer line='delta' or "
                "'gaussian' unless the Lorentzian tails are the physics you want.",
                PhysicsWarning,
                stacklevel=3,
            )

    def spectral_density(self, omega, t):  # the line shape times P (= "J N")
        raise NotImplementedError("a classical drive is handled by its line (line_nodes)")

    def support(self, t):
        return value_at(self.omega_d, t), value_at(self.omega_d, t)

    def temperature(self, t):
        return jnp.asarray(0.0)

    def temperature_parameter(self):
        return 0.0

    def scaled(self, factor):
        return eqx.tree_at(lambda b: b.power, self, scale_parameter(self.power, factor))

    def line_nodes(self, t):
        """Quadrature of the line: (centres [T_c], weights summing to P), shape (m,).

        The delta line is one node; a Gaussian uses Gauss-Hermite nodes; a Lorentzian
        Gauss-Legendre nodes in the angle theta = arctan((Omega - omega_d)/gamma),
        restricted to Omega > 0.
        """
        wd = value_at(self.omega_d, t)
        p = value_at(self.power, t)
        if self.line == "delta":
            return jnp.reshape(wd, (1,)), jnp.reshape(p, (1,))
        if self.line == "gaussian":
            x, w = np.polynomial.hermite_e.hermegauss(32)
            w = w / np.sqrt(2.0 * np.pi)
            centres = wd + self.width * jnp.asarray(x)
            weights = p * jnp.asarray(w) * (centres > 0)
            return centres, weights
        x, w = np.polynomial.legendre.leggauss(128)
        th_lo = jnp.arctan(-wd / self.width)
        th_hi = 0.5 * np.pi
        theta = th_lo + (th_hi - th_lo) * (jnp.asarray(x) + 1.0) / 2.0
        centres = wd + self.width * jnp.tan(theta)
        weights = p * jnp.asarray(w) * (th_hi - th_lo) / 2.0 / np.pi
        return centres, weights

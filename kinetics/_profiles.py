"""Time dependence of bath parameters.

Any bath parameter that may change in time accepts either a number or a
profile: an immutable callable ``profile(t)`` (t in hbar/(k_B T_c)). Profiles
report their discontinuities (``jump_times``) so that the time integrator can
stop exactly there, and their range (``bounds``) so that baths can validate
them before any work starts.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax.numpy as jnp

from ._errors import ParameterError, check_finite, check_positive


class AbstractProfile(eqx.Module):
    """A parameter value as a function of time t [hbar/(k_B T_c)]."""

    @abc.abstractmethod
    def __call__(self, t): ...

    @abc.abstractmethod
    def bounds(self) -> tuple[float, float]:
        """(smallest, largest) value the profile takes at any time."""

    def jump_times(self) -> tuple[float, ...]:
        """Times at which the value or its slope jumps (for the solver)."""
        return ()


class Step(AbstractProfile):
    """``before`` for t < t_on, ``after`` from t_on on (a switch-on at t_on)."""

    after: float
    t_on: float = 0.0
    before: float = 0.0

    def __check_init__(self):
        for name in ("after", "t_on", "before"):
            check_finite(f"Step.{name}", getattr(self, name))

    def __call__(self, t):
        return jnp.where(t < self.t_on, self.before, self.after)

    def bounds(self):
        return (min(self.before, self.after), max(self.before, self.after))

    def jump_times(self):
        return (float(self.t_on),)


class Ramp(AbstractProfile):
    """``start`` until t0, linear to ``end`` at t1, ``end`` afterwards."""

    start: float
    end: float
    t0: float
    t1: float

    def __check_init__(self):
        for name in ("start", "end", "t0", "t1"):
            check_finite(f"Ramp.{name}", getattr(self, name))
        if not self.t1 > self.t0:
            raise ParameterError(f"Ramp needs t1 > t0; got t0 = {self.t0}, t1 = {self.t1}.")

    def __call__(self, t):
        x = jnp.clip((t - self.t0) / (self.t1 - self.t0), 0.0, 1.0)
        return self.start + (self.end - self.start) * x

    def bounds(self):
        return (min(self.start, self.end), max(self.start, self.end))

    def jump_times(self):
        return (float(self.t0), float(self.t1))


class GaussianPulse(AbstractProfile):
    """``base + peak * exp(-(t - t0)^2 / (2 sigma^2))`` (a drive or coupling pulse)."""

    peak: float
    t0: float
    sigma: float
    base: float = 0.0

    def __check_init__(self):
        for name in ("peak", "t0", "base"):
            check_finite(f"GaussianPulse.{name}", getattr(self, name))
        check_positive("GaussianPulse.sigma", self.sigma, "[hbar/(k_B T_c)]")

    def __call__(self, t):
        return self.base + self.peak * jnp.exp(-0.5 * ((t - self.t0) / self.sigma) ** 2)

    def bounds(self):
        return (min(self.base, self.base + self.peak), max(self.base, self.base + self.peak))


class Scaled(AbstractProfile):
    """``factor * profile(t)`` (used to ramp a coupling in continuation)."""

    profile: AbstractProfile
    factor: float

    def __call__(self, t):
        return self.factor * self.profile(t)

    def bounds(self):
        lo, hi = self.profile.bounds()
        return (min(lo * self.factor, hi * self.factor), max(lo * self.factor, hi * self.factor))

    def jump_times(self):
        return self.profile.jump_times()


def scale_parameter(p, factor):
    """A number or a profile multiplied by `factor`."""
    return Scaled(p, factor) if isinstance(p, AbstractProfile) else p * factor


def value_at(p, t):
    """Evaluate a parameter that is either a number or a profile at time t."""
    return p(t) if isinstance(p, AbstractProfile) else p


def bounds_of(p) -> tuple[float, float]:
    if isinstance(p, AbstractProfile):
        return p.bounds()
    x = float(p)
    return (x, x)


def jumps_of(p) -> tuple[float, ...]:
    return p.jump_times() if isinstance(p, AbstractProfile) else ()

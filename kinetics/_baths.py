"""Baths: what the quasiparticles exchange energy with (docs/physics.md section 3).

A bath is one immutable class; everything the rest of the code asks of it is a
method or a declared field of that class. The family:

- ``AbstractBath``: what every bath has. Its parameters, declared once per field
  with ``bath_parameter`` (dimension, bounds, whether a profile of time is allowed,
  a one-line doc with units) and read back by ``parameter_specs()``; its coherence
  type ``coupling``: "current" (photons: scattering factor c+, pair factor c-) or
  "density" (phonons: scattering c-, pair c+), c+-(E, E') = (1/2)(1 +- Delta^2 /
  (E E')); its collision operator (``bilinear``) and its grid checks. Concrete
  classes set ``type_name`` and are then found by ``kinetics.bath_types()``.
- ``AbstractBosonBath``: a thermal boson bath, with a spectral coupling J(Omega) >= 0
  (``spectral_density``) on its support [omega_lo, omega_hi] (``support``; J = 0
  outside), an occupation N(Omega) (``occupation``: Bose at ``temperature``). Steps
  of J at the ends of the support are integrated exactly by the operator, so J
  itself must be smooth inside.
- ``AbstractDynamicBath``: a boson bath whose occupation may become part of the
  state (``dynamic=DynamicBosons(...)``, docs/physics.md section 9): it adds the mode
  density rho_b(Omega) and the layout of its Omega grid.
- ``ClassicalDrive`` and ``ReadoutDrive`` are ``AbstractBath``s but not boson baths: they
  have a line, not J(Omega) and N(Omega).

Units: energies and temperatures in T_c, times in hbar/(k_B T_c), J and eta
dimensionless, 1/tau0 and the drive power P in k_B T_c / hbar (rates). A parameter
declared ``time_dependent`` may be a number or a profile of time (``kinetics.Step`` ...).

The module holds the whole family (the abstract classes and the five built-in baths,
~680 lines) so that each bath is read in one place; parameter declarations and their
checks are in ``_parameters``. No ``from __future__ import annotations`` here:
equinox needs ``AbstractVar`` annotations evaluated.
"""

import abc
import dataclasses
import warnings
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from equinox import AbstractVar

from ._bosons import DEFAULT_OMEGA_CORE, MODE_DENSITY_PARAMETERS, BosonGrid, DynamicBosons
from ._distributions import thermal_occupation
from ._errors import GridError, ParameterError, PhysicsWarning, check_finite
from ._gap import gap_guess
from ._parameters import MAX_TEMPERATURE, ParameterSpec, _concrete, bath_parameter
from ._profiles import AbstractProfile, bounds_of, jumps_of, scale_parameter, value_at

# widest Omega cell of a default boson grid, in units of the temperature (boson_grid)
_MAX_CELL = 4.0

# the largest gap any n in [0, 1] has is Delta(T = 0) = 1.7639: events of the xi grid
# have energies below 2 sqrt(xi_max^2 + 1.8^2)
_DELTA_BOUND = 1.8


_REGISTRY: dict[str, type] = {}
_SPECS: dict[type, dict[str, ParameterSpec]] = {}


def bath_types() -> dict[str, type]:
    """Every concrete bath class by its ``type_name`` (a class registers itself on
    definition, wherever it is defined)."""
    return dict(_REGISTRY)


def is_dynamic(bath) -> bool:
    """Whether the bath's boson occupation is part of the model's state."""
    return bath.dynamic_capable and bath.dynamic is not None


# --------------------------------------------------------------------------- the family


class AbstractBath(eqx.Module):
    """What every bath provides (see the module docstring).

    Class attributes: ``type_name`` (the name in configs and ``bath_types()``; set
    on concrete classes only), ``dynamic_capable`` and ``mode_density_parameter``
    (the ``DynamicBosons`` field the mode density needs, for dynamic-capable baths).
    """

    type_name: ClassVar[str]
    coupling: AbstractVar[str]
    dynamic_capable: ClassVar[bool] = False
    mode_density_parameter: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("type_name")
        if name is None:  # abstract, or a variant of a registered class
            return
        old = _REGISTRY.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (
            cls.__module__,
            cls.__qualname__,
        ):
            raise TypeError(
                f"bath type_name {name!r} of {cls.__qualname__} is taken by "
                f"{old.__module__}.{old.__qualname__}."
            )
        _REGISTRY[name] = cls

    @classmethod
    def parameter_specs(cls) -> dict[str, ParameterSpec]:
        """Constructor parameter -> ``ParameterSpec``, in declaration order (every
        field but ``dynamic``)."""
        specs = _SPECS.get(cls)
        if specs is None:
            specs = {}
            for f in dataclasses.fields(cls):
                if f.name == "dynamic":
                    continue
                spec = f.metadata.get("parameter")
                if spec is None:
                    raise TypeError(
                        f"{cls.__name__}.{f.name} is not declared with kinetics.bath_parameter."
                    )
                specs[f.name] = dataclasses.replace(spec, name=f.name)
            _SPECS[cls] = specs
        return dict(specs)

    def __check_init__(self):
        owner = type(self).__name__
        for name, spec in self.parameter_specs().items():
            spec.check(owner, getattr(self, name))

    def parameters(self) -> dict:
        """Parameter name -> number or profile, for datasets and summaries.

        The settings of a dynamic bath appear as ``dynamic.<name>`` (a static bath
        has no such entries)."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, DynamicBosons):
                out.update({f"dynamic.{k}": x for k, x in v.parameters().items()})
            elif not (f.name == "dynamic" and v is None):
                out[f.name] = v
        return out

    def jump_times(self) -> tuple[float, ...]:
        """Times [hbar/(k_B T_c)] at which a parameter profile jumps."""
        out: tuple[float, ...] = ()
        for v in self.parameters().values():
            out += jumps_of(v)
        return out

    @abc.abstractmethod
    def support(self, t):
        """(omega_lo, omega_hi) [T_c]: the energies the bath exchanges; omega_hi may be inf."""

    @abc.abstractmethod
    def max_temperature(self) -> float:
        """Largest temperature [T_c] of the bath's bosons at any time (the grid must
        reach 20 times it)."""

    @abc.abstractmethod
    def scaled(self, factor):
        """The same bath with its coupling multiplied by `factor` (rates -> factor x rates)."""

    @abc.abstractmethod
    def bilinear(self, grid, delta, t=0.0, channels=("scattering", "pair")):
        """The discretized collision operator at gap `delta` [T_c] and time `t`
        [hbar/(k_B T_c)], as a ``kinetics._collision.Bilinear``; `channels` from
        ("scattering", "pair")."""

    @abc.abstractmethod
    def check_grid(self, grid, t_qp: float, index: int) -> None:
        """Warn (PhysicsWarning) or raise GridError when `grid` cannot resolve this
        bath's features; `index` is the bath's place in ``Model.baths`` (for the
        message). Called by ``Model`` on construction."""


class AbstractBosonBath(AbstractBath):
    """A boson bath: spectral coupling J(Omega), occupation N(Omega), temperature."""

    @abc.abstractmethod
    def spectral_density(self, omega, t):
        """Smooth J(Omega) [dimensionless] inside the support, at time t."""

    @abc.abstractmethod
    def temperature(self, t):
        """Bath temperature [T_c] at time t (0 is the vacuum)."""

    @abc.abstractmethod
    def temperature_parameter(self):
        """The stored temperature (number or profile)."""

    @abc.abstractmethod
    def quadrature_breakpoints(self, t) -> np.ndarray:
        """Omega values [T_c] where J is narrow or not smooth inside the support, shape
        (m,) (possibly empty): an aid for the literal eq. (14) quadrature only."""

    def occupation(self, omega, t):
        """Occupation N(Omega) of the bath modes (Bose at the bath temperature)."""
        return thermal_occupation(omega, self.temperature(t))

    def max_temperature(self) -> float:
        return bounds_of(self.temperature_parameter())[1]

    def bilinear(self, grid, delta, t=0.0, channels=("scattering", "pair")):
        from ._collision import _ThermalBilinear

        return _ThermalBilinear(self, grid, delta, t, channels)


def _check_dynamic(owner: str, d, needs: str):
    """`dynamic` must be None or a DynamicBosons carrying the mode density `needs`."""
    if d is None:
        return
    if not isinstance(d, DynamicBosons):
        raise ParameterError(
            f"{owner}.dynamic must be None (static bath) or a kinetics.DynamicBosons; "
            f"got {type(d).__name__}."
        )
    if getattr(d, needs) is None:
        raise ParameterError(
            f"{owner}.dynamic needs {needs} (the mode density: {MODE_DENSITY_PARAMETERS[needs]}"
            f"); got {needs}=None."
        )
    for other in MODE_DENSITY_PARAMETERS:
        if other != needs and getattr(d, other) is not None:
            raise ParameterError(
                f"{owner}.dynamic: {other} does not apply to this bath; give {needs} only."
            )


class AbstractDynamicBath(AbstractBosonBath):
    """A boson bath whose occupation may be a state variable (docs/physics.md section 9).

    ``dynamic``: None (the bosons stay thermal) or a ``DynamicBosons`` with the mode
    density parameter named by the class attribute ``mode_density_parameter``.
    """

    dynamic: AbstractVar[DynamicBosons | None]
    dynamic_capable: ClassVar[bool] = True

    def __check_init__(self):
        _check_dynamic(type(self).__name__, self.dynamic, type(self).mode_density_parameter)

    @abc.abstractmethod
    def mode_density(self, omega, t=0.0):
        """rho_b(Omega): boson modes per unit energy [per 4 nu_F] at time t (uses the
        ``dynamic`` settings)."""

    @abc.abstractmethod
    def omega_grid_layout(self, omega_max: float, t_qp: float) -> tuple[float, float, float, float]:
        """The bath's default Omega grid: (lo, hi, focus, core) [T_c], with hi <= `omega_max`
        (the requested top node) and the nodes Omega = focus + core sinh(s), s uniform
        (``BosonGrid.build``). ``DynamicBosons`` may override focus and core."""

    def boson_grid(self, grid, t_qp: float) -> BosonGrid:
        """The Omega grid of this dynamic bath (``DynamicBosons`` documents the defaults)."""
        d = self.dynamic
        every_event = 2.0 * float(np.sqrt(grid.xi_max**2 + _DELTA_BOUND**2))
        top = every_event if d.omega_max is None else float(d.omega_max)
        lo, hi, focus, core = self.omega_grid_layout(top, t_qp)
        if d.omega_focus is not None:
            focus = float(d.omega_focus)
        if not hi > lo:
            raise ParameterError(
                f"DynamicBosons.omega_max = {hi:g} must exceed the bath's lowest energy {lo:g} "
                "[T_c]."
            )
        n = int(d.n_omega)
        if d.omega_core is not None:
            return BosonGrid.build(lo, hi, n, focus, float(d.omega_core))
        # No Omega cell wider than _MAX_CELL thermal energies, where possible: across a
        # wider cell the occupations at its ends differ by e^{dOmega/T} and the event
        # occupation interpolated between them (beta = ln(1 + 1/N) linear) couples the two
        # nodes so strongly that the joint system gets near-singular modes. Measured
        # (aluminium at T = 0.169 T_c, Omega up to 32, 64 nodes): cells of 26 T and 10 T
        # at the top gave a Jacobian eigenvalue -9e-9 on the top node beside rates of 1e5;
        # Newton failed and BDF reached its minimum step size before t = 100. Cells of 2 T
        # (96 nodes) converge. So the sinh core is widened until the widest cell is
        # _MAX_CELL T (T the lower of T_qp and the reservoir's lowest temperature), up to
        # a uniform grid.
        t_ref = float(t_qp)
        t_res = bounds_of(self.temperature_parameter() if d.t_reservoir is None
                          else d.t_reservoir)[0]
        if t_res > 0:
            t_ref = min(t_ref, float(t_res))
        limit = _MAX_CELL * t_ref
        grid_b = BosonGrid.build(lo, hi, n, focus, core)
        while np.max(np.diff(grid_b.omega)) > limit and core < 4.0 * (hi - lo):
            core *= 1.5
            grid_b = BosonGrid.build(lo, hi, n, focus, core)
        widest = float(np.max(np.diff(grid_b.omega)))
        if widest > limit:
            warnings.warn(
                f"DynamicBosons: {n} Omega nodes up to {hi:g} [T_c] leave cells of "
                f"{widest:g} = {widest / t_ref:.3g} T (T = {t_ref:g} [T_c]); more than "
                f"{_MAX_CELL:g} T makes the joint system near-singular and the solvers may "
                f"fail. Raise n_omega to >= {int(np.ceil((hi - lo) / limit)) + 1} or lower "
                f"omega_max.",
                PhysicsWarning,
                stacklevel=3,
            )
        return grid_b


# --------------------------------------------------------------------------- cavities


def _check_cavity_threshold(bath, grid, index: int) -> None:
    """The cavity frequency omega0 must span grid cells (GridError below one)."""
    largest_step = float(np.max(grid.spacing))
    w0 = bounds_of(bath.omega0)[0]
    if w0 <= largest_step:
        raise GridError(
            f"baths[{index}].omega0 = {w0:g} is not larger than the largest grid spacing "
            f"{largest_step:g}: the cavity threshold cannot be resolved. Increase "
            f"Grid.n or lower Grid.xi_max."
        )
    # delta n has its kinks at E = omega0 -+ Delta (docs/physics.md section 6): what must
    # resolve omega0 is the spacing there, not the coarse cells at xi_max where n ~ 0
    xi_kink = w0 + 1.8  # Delta <= Delta(T = 0) = 1.764
    local = float(np.max(grid.spacing[: int(np.searchsorted(grid.xi, xi_kink)) + 1]))
    if w0 < 2 * local:
        warnings.warn(
            f"baths[{index}].omega0 = {w0:g} spans fewer than 2 grid cells near E = omega0 + "
            f"Delta (spacing {local:g} there): the kinks of delta n at omega0 +- Delta are "
            f"poorly resolved. Increase Grid.n.",
            PhysicsWarning,
            stacklevel=8,
        )


def _constant_omega0(bath) -> None:
    if bath.dynamic is not None and isinstance(bath.omega0, AbstractProfile):
        raise ParameterError(
            f"{type(bath).__name__}.omega0 must be a constant for a dynamic cavity (it fixes "
            "the photon Omega grid); got a profile."
        )


_T_CAV_DOC = "photon temperature [T_c]; 0 is the vacuum"


class MultimodeCavity(AbstractDynamicBath):
    """Planar multimode cavity, paper eq. (16):

        J(Omega) = eta * omega0 * (1 + omega0^2 / Omega^2) * theta(Omega - omega0),

    photons at temperature t_cav, current coupling.

    - `omega0`: cavity cut-off frequency [T_c] (t).
    - `t_cav`: photon temperature [T_c] (t); 0 is the vacuum.
    - `eta`: dimensionless coupling 4 alpha X D T_c / c^2 (t). The paper's Fig. 1
      corresponds to eta * tau_in = 0.0155.
    - `dynamic`: None (photons stay at t_cav), or ``DynamicBosons(tau_b=tau_cav,
      r_cav=...)``: the photon occupation becomes a state variable relaxing to
      t_cav at the rate 1/tau_cav (docs/physics.md section 9), with the mode density
      rho = r_cav Omega; omega0 must then be a constant (the first Omega node).
    """

    omega0: float | AbstractProfile = bath_parameter(
        "energy", "cavity cut-off frequency [T_c]", minimum=0.0, strict=True, time_dependent=True
    )
    t_cav: float | AbstractProfile = bath_parameter(
        "temperature", _T_CAV_DOC, minimum=0.0, maximum=MAX_TEMPERATURE, time_dependent=True
    )
    eta: float | AbstractProfile = bath_parameter(
        "coupling", "coupling 4 alpha X D T_c / c^2 [dimensionless]", minimum=0.0,
        time_dependent=True,
    )
    dynamic: DynamicBosons | None = None
    type_name: ClassVar[str] = "multimode_cavity"
    coupling: ClassVar[str] = "current"
    mode_density_parameter: ClassVar[str] = "r_cav"

    def __check_init__(self):
        _constant_omega0(self)

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

    def quadrature_breakpoints(self, t):
        return np.zeros(0)  # smooth above the step at omega0 (a support end)

    def check_grid(self, grid, t_qp, index):
        _check_cavity_threshold(self, grid, index)

    def mode_density(self, omega, t=0.0):
        return self.dynamic.r_cav * omega

    def omega_grid_layout(self, omega_max, t_qp):
        lo = float(self.omega0)
        return lo, omega_max, lo, DEFAULT_OMEGA_CORE


class SingleModeCavity(AbstractDynamicBath):
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

    omega0: float | AbstractProfile = bath_parameter(
        "energy", "mode frequency [T_c]", minimum=0.0, strict=True, time_dependent=True
    )
    t_cav: float | AbstractProfile = bath_parameter(
        "temperature", _T_CAV_DOC, minimum=0.0, maximum=MAX_TEMPERATURE, time_dependent=True
    )
    eta: float | AbstractProfile = bath_parameter(
        "coupling", "coupling [dimensionless]", minimum=0.0, time_dependent=True
    )
    kappa: float | AbstractProfile = bath_parameter(
        "energy", "half width of the line, 1/(2 tau_cav) [T_c]", minimum=0.0, strict=True,
        time_dependent=True,
    )
    dynamic: DynamicBosons | None = None
    type_name: ClassVar[str] = "single_mode_cavity"
    coupling: ClassVar[str] = "current"
    mode_density_parameter: ClassVar[str] = "r_cav"

    def __check_init__(self):
        _constant_omega0(self)

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

    def quadrature_breakpoints(self, t):
        w0 = float(value_at(self.omega0, t))
        kap = float(value_at(self.kappa, t))
        return np.array([w0 - kap, w0, w0 + kap])

    def check_grid(self, grid, t_qp, index):
        _check_cavity_threshold(self, grid, index)
        largest_step = float(np.max(grid.spacing))
        kap = bounds_of(self.kappa)[0]
        if kap < 2 * largest_step:
            warnings.warn(
                f"baths[{index}].kappa = {kap:g} is narrower than two grid cells "
                f"({2 * largest_step:g}): the Lorentzian line is under-resolved. "
                f"Increase Grid.n or lower Grid.xi_max.",
                PhysicsWarning,
                stacklevel=7,
            )

    def mode_density(self, omega, t=0.0):
        w0, k = value_at(self.omega0, t), value_at(self.kappa, t)
        return self.dynamic.r_cav * (k / np.pi) / ((omega - w0) ** 2 + k * k)

    def omega_grid_layout(self, omega_max, t_qp):
        # the line must be resolved: nodes ~ kappa / 2 apart at its centre
        core = min(DEFAULT_OMEGA_CORE, 0.5 * float(np.min(np.asarray(self.kappa))))
        return 0.0, omega_max, float(self.omega0), core


# --------------------------------------------------------------------------- other baths


class TabulatedBath(AbstractBosonBath):
    """Any bath given by a table of J(Omega) (linear interpolation, J = 0 outside).

    - `omega`: strictly increasing energies [T_c], omega[0] >= 0, shape (m,), m >= 2.
    - `j`: J at those energies [dimensionless], >= 0, shape (m,).
    - `t_bath`: bath temperature [T_c] (t).
    - `coupling`: "current" (photons) or "density" (phonons).
    - `scale`: dimensionless factor multiplying J (t), e.g. to switch it on.
    """

    omega: jax.Array = bath_parameter(
        "table", "strictly increasing energies of the table, omega[0] >= 0 [T_c]"
    )
    j: jax.Array = bath_parameter("table", "J at those energies, >= 0 [dimensionless]")
    t_bath: float | AbstractProfile = bath_parameter(
        "temperature", "bath temperature [T_c]", minimum=0.0, maximum=MAX_TEMPERATURE,
        time_dependent=True,
    )
    coupling: str = bath_parameter(
        "choice", "coherence type: current (photons) or density (phonons)",
        choices=("current", "density"), default="current",
    )
    scale: float | AbstractProfile = bath_parameter(
        "coupling", "factor multiplying J [dimensionless]", minimum=0.0, time_dependent=True,
        default=1.0,
    )
    type_name: ClassVar[str] = "tabulated"

    def __check_init__(self):
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

    def quadrature_breakpoints(self, t):
        return np.asarray(self.omega, dtype=np.float64)  # J has kinks at the nodes

    def check_grid(self, grid, t_qp, index):
        pass  # a table's features are the user's to resolve


class Phonons(AbstractDynamicBath):
    """Phonons of the film (Kaplan et al. 1976; Chang & Scalapino 1978):

        J(Omega) = Omega^2 / tau0 * theta(Omega) * theta(omega_debye - Omega),

    density coupling, phonons at t_ph. With it the relaxation-time term is not needed.

    - `tau0`: characteristic electron-phonon time [hbar/(k_B T_c)] (aluminium:
      438 ns = 6.8e4 hbar/(k_B T_c) at T_c = 1.19 K) (t).
    - `t_ph`: phonon temperature [T_c] (t).
    - `omega_debye`: optional upper cut-off [T_c] (None: no cut-off).
    - `dynamic`: None (phonons stay at t_ph), or ``DynamicBosons(tau_b=tau_esc,
      tau0_ph=...)``: the phonon occupation becomes a state variable that escapes
      to the substrate at t_ph at the rate 1/tau_esc (the phonon bottleneck,
      docs/physics.md section 9), with the Debye mode density
      rho_ph = (pi/2) (tau0_ph / tau0) Delta(0) Omega^2. ``kinetics.phonons_of``
      builds one from material constants.
    """

    tau0: float | AbstractProfile = bath_parameter(
        "time", "characteristic electron-phonon time [hbar/(k_B T_c)]", minimum=0.0,
        strict=True, time_dependent=True,
    )
    t_ph: float | AbstractProfile = bath_parameter(
        "temperature", "phonon temperature [T_c]", minimum=0.0, maximum=MAX_TEMPERATURE,
        time_dependent=True,
    )
    omega_debye: float | None = bath_parameter(
        "energy", "upper cut-off of J [T_c]; None: no cut-off", minimum=0.0, strict=True,
        default=None, static=True,
    )
    dynamic: DynamicBosons | None = None
    type_name: ClassVar[str] = "phonons"
    coupling: ClassVar[str] = "density"
    mode_density_parameter: ClassVar[str] = "tau0_ph"

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

    def quadrature_breakpoints(self, t):
        return np.zeros(0)  # smooth inside the support

    def check_grid(self, grid, t_qp, index):
        pass  # smooth from Omega = 0: nothing to resolve

    def mode_density(self, omega, t=0.0):
        from ._bosons import DELTA_ZERO

        return 0.5 * np.pi * (self.dynamic.tau0_ph / value_at(self.tau0, t)) * DELTA_ZERO * omega**2

    def omega_grid_layout(self, omega_max, t_qp):
        # nodes dense at the pair threshold 2 Delta, whose smearing is O(h)
        hi = omega_max if self.omega_debye is None else min(omega_max, float(self.omega_debye))
        return 0.0, hi, 2.0 * float(gap_guess(float(t_qp))), DEFAULT_OMEGA_CORE


class AbstractLineDrive(AbstractBath):
    """A drive on a line at omega_d (``ClassicalDrive``, ``ReadoutDrive``): no thermal
    bosons, the operator of ``kinetics._collision._drive_bilinear`` with the line of
    ``line_nodes``. Subclasses have the fields `omega_d`, `width` and `line`."""

    def _check_width(self):
        name = type(self).__name__
        w = check_finite(f"{name}.width", self.width)
        if self.line != "delta" and w <= 0:
            raise ParameterError(
                f"{name}.width must be > 0 [T_c] for a {self.line} line; got {w:g}."
            )

    def support(self, t):
        return value_at(self.omega_d, t), value_at(self.omega_d, t)

    def max_temperature(self) -> float:
        return 0.0  # no thermal bosons

    def bilinear(self, grid, delta, t=0.0, channels=("scattering", "pair")):
        from ._collision import _drive_bilinear

        return _drive_bilinear(self, grid, delta, t, channels)

    def check_grid(self, grid, t_qp, index):
        if self.line == "gaussian" and self.width > 0.1 * float(t_qp):
            warnings.warn(
                f"baths[{index}].width = {self.width:g} is not small against T_qp = "
                f"{float(t_qp):g}: the line reaches processes a narrow drive would not.",
                PhysicsWarning,
                stacklevel=7,
            )


class ClassicalDrive(AbstractLineDrive):
    """A classical microwave field (the Eliashberg effect): stimulated processes only.

    In the collision integral J * N is replaced by P * L(Omega - omega_d), a line of
    unit area, and the spontaneous terms are dropped; current coupling. The
    operator is then affine in n. Not a boson bath: it has no J(Omega), N(Omega)
    or temperature of its own.

    - `omega_d`: drive frequency [T_c] (t).
    - `power`: P [k_B T_c/hbar] (t): the rate scale (J N integrated over the line).
    - `width`: line width gamma [T_c] (standard deviation for "gaussian", half
      width for "lorentzian"); ignored for the default exact "delta" line.
    - `line`: "delta" (gamma -> 0, exact), "gaussian" or "lorentzian". A
      Lorentzian's tails reach the pair-breaking channel: at low temperature they
      can dominate (a warning says so).
    """

    omega_d: float | AbstractProfile = bath_parameter(
        "energy", "drive frequency [T_c]", minimum=0.0, strict=True, time_dependent=True
    )
    power: float | AbstractProfile = bath_parameter(
        "rate", "drive power P, J N integrated over the line [k_B T_c/hbar]", minimum=0.0,
        time_dependent=True,
    )
    width: float = bath_parameter(
        "energy", "line width gamma (gaussian: standard deviation, lorentzian: half width) "
        "[T_c]", minimum=0.0, default=0.0, static=True,
    )
    line: str = bath_parameter(
        "choice", "line shape", choices=("delta", "gaussian", "lorentzian"), default="delta"
    )
    type_name: ClassVar[str] = "classical_drive"
    coupling: ClassVar[str] = "current"

    def __check_init__(self):
        self._check_width()
        if self.line == "lorentzian":
            warnings.warn(
                "ClassicalDrive with a Lorentzian line: its tails reach the pair-breaking "
                "channel (Omega >= 2 Delta), which at low temperature is ~1000x stronger than "
                "scattering and can turn enhancement into suppression. Prefer line='delta' or "
                "'gaussian' unless the Lorentzian tails are the physics you want.",
                PhysicsWarning,
                stacklevel=3,
            )

    def scaled(self, factor):
        return eqx.tree_at(lambda b: b.power, self, scale_parameter(self.power, factor))

    def occupation_scales(self, t):
        """(stimulated scale, spontaneous terms?) of the operator: a classical field has
        stimulated processes only, at the rate `power` carried by ``line_nodes``."""
        return None, False

    def line_nodes(self, t):
        """Quadrature of the line: (centres [T_c], weights summing to P), shape (m,).

        The delta line is one node; a Gaussian uses Gauss-Hermite nodes; a Lorentzian
        Gauss-Legendre nodes in the angle theta = arctan((Omega - omega_d)/gamma),
        restricted to Omega > 0. The operator treats each node as an exact delta line.
        """
        return _line_nodes(self.line, value_at(self.omega_d, t), value_at(self.power, t),
                           self.width)


def _line_nodes(line, wd, p, width):
    """(centres [T_c], weights summing to p) of a line of shape `line` at wd [T_c]."""
    if line == "delta":
        return jnp.reshape(wd, (1,)), jnp.reshape(p, (1,))
    if line == "gaussian":
        x, w = np.polynomial.hermite_e.hermegauss(32)
        w = w / np.sqrt(2.0 * np.pi)
        centres = wd + width * jnp.asarray(x)
        weights = p * jnp.asarray(w) * (centres > 0)
        return centres, weights
    x, w = np.polynomial.legendre.leggauss(128)
    th_lo = jnp.arctan(-wd / width)
    th_hi = 0.5 * np.pi
    theta = th_lo + (th_hi - th_lo) * (jnp.asarray(x) + 1.0) / 2.0
    centres = wd + width * jnp.tan(theta)
    weights = p * jnp.asarray(w) * (th_hi - th_lo) / 2.0 / np.pi
    return centres, weights


class ReadoutDrive(AbstractLineDrive):
    """Resonator (readout) photons at energy omega_d with mean number n_bar: the drive of
    Fischer & Catelani, PR Applied 19, 054087 (2023) (docs/physics.md section 12).

    A boson bath on a line: J N = c_phot n_bar and J (N + 1) = c_phot (n_bar + 1) at
    Omega = omega_d (J N -> c_phot n_bar L(Omega - omega_d), L of unit area), current
    coupling. Absorption goes with n_bar, emission with n_bar + 1: the stimulated part
    is exactly ``ClassicalDrive`` with power P = c_phot n_bar, and the spontaneous part
    (emission E -> E - omega_d at the rate c_phot n (1 - n'), recombination of two
    quasiparticles into a photon at c_phot n n') is kept unless `spontaneous` is False;
    its relative size is 1/n_bar. Fischer's photon term, df_i/dt = c_phot sum_j rho_j K+_ij
    [f_j (n_bar + 1)(1 - f_i) - f_i n_bar (1 - f_j)] with K+ = 1 + Delta^2/(E E') = 2 c+,
    is this operator: their c_phot is ours (their K+ has no 1/2, our I has the factor 2).
    With n_bar = n_B(omega_d / T) a thermal n_F at T is a fixed point up to the O(h^2)
    discretization error (see ``kinetics._collision._drive_entries``).

    - `omega_d`: photon energy [T_c] (t).
    - `n_bar`: mean photon number [dimensionless] (t).
    - `c_phot`: coupling rate [k_B T_c/hbar] (t) (configs: e.g. "1e4 /s").
    - `width`: Gaussian line width (standard deviation) [T_c]; ignored for "delta".
    - `line`: "delta" (exact, default) or "gaussian".
    - `spontaneous`: keep the spontaneous terms (True) or drop them (False: then
      identical to ``ClassicalDrive(power = c_phot n_bar)``).
    """

    omega_d: float | AbstractProfile = bath_parameter(
        "energy", "photon energy [T_c]", minimum=0.0, strict=True, time_dependent=True
    )
    n_bar: float | AbstractProfile = bath_parameter(
        "coupling", "mean photon number n_bar [dimensionless]", minimum=0.0,
        time_dependent=True,
    )
    c_phot: float | AbstractProfile = bath_parameter(
        "rate", "photon coupling rate c_phot [k_B T_c/hbar]", minimum=0.0, time_dependent=True
    )
    width: float = bath_parameter(
        "energy", "Gaussian line width gamma (standard deviation) [T_c]", minimum=0.0,
        default=0.0, static=True,
    )
    line: str = bath_parameter("choice", "line shape", choices=("delta", "gaussian"),
                               default="delta")
    spontaneous: bool = bath_parameter(
        "choice", "keep spontaneous emission and recombination into photons",
        choices=(True, False), default=True,
    )
    type_name: ClassVar[str] = "readout_drive"
    coupling: ClassVar[str] = "current"

    def __check_init__(self):
        self._check_width()

    def scaled(self, factor):
        return eqx.tree_at(lambda b: b.c_phot, self, scale_parameter(self.c_phot, factor))

    def occupation_scales(self, t):
        """(n_bar, spontaneous): the stimulated part is n_bar x the line of weight c_phot."""
        return value_at(self.n_bar, t), self.spontaneous

    def line_nodes(self, t):
        """Quadrature of the line: (centres [T_c], weights summing to c_phot), shape (m,)."""
        return _line_nodes(self.line, value_at(self.omega_d, t), value_at(self.c_phot, t),
                           self.width)

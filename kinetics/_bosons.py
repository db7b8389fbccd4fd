"""Settings of a dynamic boson bath and its Omega grid (docs/physics.md section 9).

A bath declared dynamic (``MultimodeCavity(..., dynamic=DynamicBosons(...))``,
``SingleModeCavity``, ``Phonons``) carries its own occupation N_b(Omega, t) on an
Omega grid as part of the model's state. This module only holds the settings
(``DynamicBosons``) and the grid (``BosonGrid``); the operator is in ``_dynamic``.

Units as everywhere: energies in T_c, times in hbar/(k_B T_c); mode densities in
units of 4 nu_F (the quasiparticle density of states per unit xi, spin and branch
included), so that boson and quasiparticle numbers are directly comparable.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._errors import ParameterError, check_finite
from ._profiles import AbstractProfile

DELTA_ZERO = math.pi * math.exp(-0.5772156649015329)  # Delta(T=0) / T_c = 1.763877

# the DynamicBosons fields that give a bath's mode density, and what each means (a
# dynamic-capable bath names the one it needs in ``mode_density_parameter``)
MODE_DENSITY_PARAMETERS = {
    "r_cav": "r_cav, dimensionless, see kinetics.planar_cavity_r",
    "tau0_ph": "tau0_ph, Kaplan's phonon pair-breaking time [hbar/(k_B T_c)]",
}
DEFAULT_OMEGA_CORE = 0.1  # [T_c]: Omega node spacing at the focus, unless a bath needs finer


def _stored(x):
    """Numbers as float64 arrays (changing them never recompiles); None and profiles as is."""
    if x is None or isinstance(x, (AbstractProfile, jax.Array)) or isinstance(x, bool):
        return x
    if isinstance(x, (int, float, np.integer, np.floating)):
        return jnp.asarray(float(x), dtype=jnp.float64)
    return x


def _number_or_none(owner, name, x, *, allow_inf=False, allow_profile=False):
    if x is None or isinstance(x, jax.core.Tracer):
        return None
    if isinstance(x, AbstractProfile):
        if not allow_profile:
            raise ParameterError(
                f"{owner}.{name} must be a number; got a profile {type(x).__name__}."
            )
        lo, _ = x.bounds()
        if not lo > 0:
            raise ParameterError(
                f"{owner}.{name} must stay > 0 at all times; its profile reaches {lo:g}."
            )
        return x
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ParameterError(f"{owner}.{name} must be a number; got {x!r}.") from None
    if isinstance(x, bool) or math.isnan(v) or (math.isinf(v) and not (allow_inf and v > 0)):
        raise ParameterError(f"{owner}.{name} must be a finite number; got {x!r}.")
    return v


class DynamicBosons(eqx.Module):
    """Make a bath's bosons dynamic: N_b(Omega, t) becomes part of the state.

    Boson kinetic equation (docs/physics.md section 9):

        rho_b(Omega) dN_b/dt = P_b(Omega) - rho_b(Omega) (N_b - n_B(Omega / T_b)) / tau_b

    **Main arguments:**

    - `tau_b`: escape time to the reservoir [hbar/(k_B T_c)], > 0; ``math.inf``
      for a closed system (no escape). Cavity: the photon lifetime tau_cav;
      phonons: the escape time tau_esc into the substrate. A number or a profile.
    - `r_cav`: (cavities only) dimensionless photon mode density [per 4 nu_F]:
      rho = r_cav Omega theta(Omega - omega0) for a ``MultimodeCavity``,
      rho = r_cav (kappa / pi) / ((Omega - omega0)^2 + kappa^2) for a
      ``SingleModeCavity``. See ``kinetics.planar_cavity_r`` for real films
      (10 nm of aluminium: ~1e-12).
    - `tau0_ph`: (phonons only) Kaplan's phonon pair-breaking time tau_0^ph
      [hbar/(k_B T_c)]: rho_ph = (pi/2) (tau0_ph / tau0) Delta(0) Omega^2 (Debye),
      so that the T = 0 pair-breaking time at Omega = 2 Delta(0) is tau0_ph.

    **Other arguments** (the Omega grid; defaults are chosen by the ``Model``):

    - `t_reservoir`: reservoir temperature T_b [T_c] (number or profile); None:
      the bath's own temperature (t_cav or t_ph).
    - `n_omega`: number of Omega nodes (>= 8).
    - `omega_max`: last node [T_c]; default 2 sqrt(xi_max^2 + 1.8^2), beyond every
      event the xi grid can make. Events above a smaller omega_max are dropped on
      both sides (quasiparticles and bosons).
    - `omega_focus`, `omega_core` [T_c]: the nodes are
      Omega = focus + core sinh(s), s uniform, i.e. spacing ~ core near the focus
      and geometric away from it. Default focus: 2 Delta(T_qp) for phonons (the
      pair threshold, whose smearing is O(h): docs/physics.md section 9), omega0 for
      cavities; default core 0.1 (0.5 kappa for a single-mode cavity if smaller),
      widened until no cell is wider than 4 T (T the lower of T_qp and the reservoir
      temperature: wider cells make the joint system near-singular, docs/physics.md
      section 9); a given `omega_core` is used as is.
    """

    tau_b: float | AbstractProfile = eqx.field(converter=_stored)
    r_cav: float | None = eqx.field(converter=_stored, default=None)
    tau0_ph: float | None = eqx.field(converter=_stored, default=None)
    t_reservoir: float | AbstractProfile | None = eqx.field(converter=_stored, default=None)
    n_omega: int = eqx.field(static=True, default=128)
    omega_max: float | None = eqx.field(static=True, default=None)
    omega_focus: float | None = eqx.field(static=True, default=None)
    omega_core: float | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        o = "DynamicBosons"
        tb = _number_or_none(o, "tau_b", self.tau_b, allow_inf=True, allow_profile=True)
        if self.tau_b is None:
            raise ParameterError(f"{o}.tau_b (escape time [hbar/(k_B T_c)]) is required.")
        if tb is not None and not isinstance(tb, AbstractProfile) and not tb > 0:
            raise ParameterError(
                f"{o}.tau_b must be > 0 [hbar/(k_B T_c)] (math.inf: no escape); got {tb!r}."
            )
        for name in ("r_cav", "tau0_ph"):
            v = _number_or_none(o, name, getattr(self, name))
            if v is not None and not v > 0:
                raise ParameterError(f"{o}.{name} must be > 0; got {v!r}.")
        tr = _number_or_none(o, "t_reservoir", self.t_reservoir, allow_profile=True)
        if tr is not None and not isinstance(tr, AbstractProfile) and tr < 0:
            raise ParameterError(f"{o}.t_reservoir must be >= 0 [T_c]; got {tr!r}.")
        if isinstance(tr, AbstractProfile) and tr.bounds()[0] < 0:
            raise ParameterError(f"{o}.t_reservoir must stay >= 0 [T_c].")
        if (
            not isinstance(self.n_omega, (int, np.integer))
            or isinstance(self.n_omega, bool)
            or self.n_omega < 8
        ):
            raise ParameterError(f"{o}.n_omega must be an integer >= 8; got {self.n_omega!r}.")
        for name in ("omega_max", "omega_focus", "omega_core"):
            v = getattr(self, name)
            if v is not None and not check_finite(f"{o}.{name}", v) > 0:
                raise ParameterError(f"{o}.{name} must be > 0 [T_c]; got {v!r}.")

    def parameters(self) -> dict:
        return {f.name: getattr(self, f.name) for f in self.__dataclass_fields__.values()}


class BosonGrid(eqx.Module):
    """Omega nodes of one dynamic bath [T_c] (static, hashable).

    ``nodes`` includes Omega = 0 when the bath's spectrum starts there
    (``zero_node``): that node is not a state variable; its beta = ln(1 + 1/N) is
    0 (N infinite), so that N at an event in the first cell is interpolated from
    node 1 alone, and what is deposited on it (at zero energy) is dropped.
    """

    nodes: tuple[float, ...] = eqx.field(static=True)
    focus: float = eqx.field(static=True)
    core: float = eqx.field(static=True)

    @staticmethod
    def build(lo: float, hi: float, n: int, focus: float, core: float):
        focus = min(max(focus, lo), hi)
        s_lo, s_hi = math.asinh((lo - focus) / core), math.asinh((hi - focus) / core)
        x = focus + core * np.sinh(np.linspace(s_lo, s_hi, n))
        x[0], x[-1] = lo, hi
        if np.any(np.diff(x) <= 0):
            raise ParameterError(
                "DynamicBosons: the Omega grid is not increasing; check omega_core."
            )
        return BosonGrid(tuple(float(v) for v in x), float(focus), float(core))

    @property
    def omega(self) -> np.ndarray:
        """All nodes [T_c], shape (m_full,)."""
        return np.asarray(self.nodes)

    @property
    def zero_node(self) -> bool:
        return self.nodes[0] == 0.0

    @property
    def size(self) -> int:
        """Number of state variables (nodes without the Omega = 0 node)."""
        return len(self.nodes) - int(self.zero_node)

    @property
    def state_omega(self) -> np.ndarray:
        """Nodes that are state variables [T_c], shape (size,)."""
        return self.omega[int(self.zero_node) :]

    @property
    def weights(self) -> np.ndarray:
        """Trapezoid weights v_k [T_c] of all nodes: sum_k v_k f(Omega_k) ~ integral dOmega f."""
        x = self.omega
        w = np.zeros_like(x)
        d = np.diff(x)
        w[:-1] += 0.5 * d
        w[1:] += 0.5 * d
        return w

    def locate(self, omega):
        """Cell k0 (int, clipped to [0, m-2]) and fraction f with
        Omega = (1 - f) Omega_k0 + f Omega_k0+1 (f may leave [0, 1] outside the grid)."""
        x = jnp.asarray(self.omega)
        m = len(self.nodes)
        s_lo = math.asinh((self.nodes[0] - self.focus) / self.core)
        s_hi = math.asinh((self.nodes[-1] - self.focus) / self.core)
        u = (jnp.arcsinh((omega - self.focus) / self.core) - s_lo) / (s_hi - s_lo) * (m - 1)
        k0 = jnp.clip(jnp.floor(u).astype(jnp.int32), 0, m - 2)
        x0, x1 = x[k0], x[k0 + 1]
        return k0, (omega - x0) / (x1 - x0)

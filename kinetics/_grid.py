"""The xi grid: nonuniform, fine near the gap edge, with quadrature weights.

The grid is the image of a uniform grid u_j = j / (n - 1), j = 0 .. n - 1, under

    xi(u) = core * sinh(u * A),      A = asinh(xi_max / core),

so it is nearly uniform (spacing ~ core * A / (n - 1)) for xi << core and
geometric beyond. Every integral over xi is done in u: quadrature weights are
the trapezoid rule in u, ``w_j = xi'(u_j) du`` (half at the two ends). Because
xi(u) is odd in u, integrands that are even in xi (any function of
E = sqrt(xi^2 + Delta^2)) make the u-integrand even at u = 0, and the trapezoid
rule is then spectrally accurate at that end (Euler-Maclaurin). The collision
operator interpolates linearly in u, consistent with these weights.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._errors import GridError, check_positive


class Grid(eqx.Module):
    """Nonuniform grid of normal-state energies xi in [0, xi_max] [T_c].

    **Arguments:**

    - `n`: number of grid points (>= 16).
    - `xi_max`: last grid point [T_c]. Occupations must be negligible there:
      a `Model` refuses a grid with ``xi_max < 20 * T_qp``.
    - `core`: energy scale [T_c] below which the grid is nearly uniform; beyond
      it the spacing grows geometrically.

    The defaults (n = 400, xi_max = 30, core = 2) converge delta Delta / Delta_0 of
    the paper's Fig. 1(a) to about 1e-3 relative at omega_0 = Delta_0 and 1e-4 at
    omega_0 = 3 Delta_0 (it converges as ~h^1.5: delta n has a square-root kink at
    E = omega_0 + Delta, paper Fig. 2's kink A). The multimode cavity needs
    omega_0 above the largest spacing, ~xi_max * asinh(xi_max / core) / n.
    """

    n: int = eqx.field(static=True, default=400)
    xi_max: float = eqx.field(static=True, default=30.0)
    core: float = eqx.field(static=True, default=2.0)

    @classmethod
    def for_temperature(cls, t: float, xi_max: float = 30.0, n: int = 400) -> Grid:
        """A grid whose uniform core matches the thermal structure at temperature `t` [T_c].

        At k_B T << Delta the thermal occupation is ~ exp(-Delta/T) exp(-xi^2 / (2 Delta T))
        in xi: it lives within a few sqrt(Delta T) of the gap edge (0.3 at T = 0.05),
        while bath and drive energies reach tens of Delta. The sinh map already serves
        both: integrals of smooth functions of E (thermal occupations, rates at the gap
        edge) are the trapezoid rule in u of an integrand even at u = 0, so they converge
        spectrally, and the spacing beyond `core` grows geometrically up to
        ~ xi_max asinh(xi_max / core) / n. Measured (this project's tests/test_grid.py,
        xi_max = 30): the thermal density integral_0^inf n_F(E/T) dxi reaches 1e-6 relative
        with n = 16 points at T = 0.05, 0.1 and 0.2 with core = 3 sqrt(Delta T), and with
        n = 24-32 with the default core = 2. So no other grid is needed; what a
        smaller core buys is a finer edge (spacing ~ core asinh(xi_max/core) / n) for
        non-thermal structure there (drive-ladder kinks at E = Delta + k omega_d,
        xi ~ sqrt(2 Delta omega_d)), at a logarithmic cost in the largest spacing.

        This picks core = 3 sqrt(Delta(T) T), clipped to [0.05, 2] (2 is the default
        core, right from T ~ 0.3 on), with the interpolated BCS gap
        Delta(T) ~ 1.764 tanh(1.74 sqrt(1/T - 1)); `xi_max` [T_c] and `n` as in ``Grid``.
        """
        t = float(t)
        if not (np.isfinite(t) and 0.0 < t < 1.0):
            raise GridError(
                f"Grid.for_temperature: t must be in (0, 1) [T_c] (a superconductor); got {t!r}."
            )
        delta = 1.764 * np.tanh(1.74 * np.sqrt(1.0 / t - 1.0))
        core = float(np.clip(3.0 * np.sqrt(delta * t), 0.05, 2.0))
        return cls(n=n, xi_max=xi_max, core=core)

    def __check_init__(self):
        if not isinstance(self.n, (int, np.integer)) or isinstance(self.n, bool) or self.n < 16:
            raise GridError(f"Grid.n must be an integer >= 16; got {self.n!r}.")
        check_positive("Grid.xi_max", self.xi_max, "[T_c]")
        check_positive("Grid.core", self.core, "[T_c]")

    # --- the map u -> xi (numpy: grid-only work is done once, at trace time) ---
    @property
    def _a(self) -> float:
        return float(np.arcsinh(self.xi_max / self.core))

    @property
    def du(self) -> float:
        """Spacing of the uniform parameter u."""
        return 1.0 / (self.n - 1)

    @property
    def u(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, self.n)

    @property
    def xi(self) -> np.ndarray:
        """Grid points xi_j [T_c], shape (n,)."""
        x = self.core * np.sinh(self.u * self._a)
        x[-1] = self.xi_max
        return x

    @property
    def dxi_du(self) -> np.ndarray:
        """Jacobian d xi / d u at the grid points, shape (n,)."""
        return self.core * self._a * np.cosh(self.u * self._a)

    @property
    def weights(self) -> np.ndarray:
        """Quadrature weights w_j [T_c]: integral dxi f(xi) ~ sum_j w_j f(xi_j)."""
        w = self.dxi_du * self.du
        w[0] *= 0.5
        w[-1] *= 0.5
        return w

    @property
    def spacing(self) -> np.ndarray:
        """Cell widths xi_{j+1} - xi_j [T_c], shape (n - 1,)."""
        return np.diff(self.xi)

    def index_of(self, xi):
        """Fractional grid index s(xi) = u(xi) / du (JAX, differentiable), for xi >= 0."""
        return jnp.arcsinh(xi / self.core) / (self._a * self.du)

    def energies(self, delta):
        """Quasiparticle energies E_j = sqrt(xi_j^2 + Delta^2) [T_c].

        Written so that derivatives stay finite in the normal state (Delta = 0,
        where E_0 = |Delta| at xi_0 = 0 has the one-sided slope, not 0/0).
        """
        xi = jnp.asarray(self.xi)
        at_edge = xi == 0
        safe = jnp.sqrt(jnp.where(at_edge, 1.0, xi * xi + delta * delta))
        return jnp.where(at_edge, jnp.abs(delta), safe)

    def gap_ratio(self, delta):
        """Delta / E_j, with its Delta -> 0+ limit (1 at xi = 0) in the normal state."""
        e = self.energies(delta)
        return jnp.where(e > 0, delta / jnp.where(e > 0, e, 1.0), 1.0)

    def integrate(self, f):
        """integral_0^xi_max dxi f(xi) for node values f (last axis)."""
        return jnp.sum(jnp.asarray(self.weights) * f, axis=-1)

    def check_reaches(self, temperature: float, name: str) -> None:
        """Refuse a grid on which a thermal tail at `temperature` is not negligible."""
        if self.xi_max < 20.0 * temperature:
            raise GridError(
                f"Grid.xi_max = {self.xi_max:g} does not reach far enough for {name} = "
                f"{temperature:g}: occupations exp(-xi_max/T) must be negligible, so "
                f"xi_max >= 20 * {name} = {20.0 * temperature:g} is required. "
                f"Increase xi_max (and n with it)."
            )


def to_energy(grid: Grid, values, delta, energy):
    """Interpolate node values f(xi_j) onto quasiparticle energies E [T_c].

    Linear in E between the nodes E_j = sqrt(xi_j^2 + Delta^2). Energies below the
    gap (E < Delta, no states) and beyond the grid give NaN.
    """
    e_nodes = grid.energies(delta)
    energy = jnp.asarray(energy)
    out = jnp.interp(energy, e_nodes, values)
    inside = (energy >= e_nodes[0]) & (energy <= e_nodes[-1])
    return jnp.where(inside, out, jnp.nan)

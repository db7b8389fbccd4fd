"""The BCS gap equation (physics.md section 2) and the occupation functions.

Reference values are closed forms (pi exp(-gamma_E), the Ginzburg-Landau
coefficient 8 pi^2 / (7 zeta(3))) or independent computations (numpy/scipy on
the same grid, central finite differences); none is a number printed by the code.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.special import expit, zeta

import kinetics

DELTA0_EXACT = math.pi * math.exp(-np.euler_gamma)  # BCS: Delta(0) = pi e^{-gamma_E} T_c
GL_COEFF = 8.0 * math.pi**2 / (7.0 * zeta(3.0))  # Delta^2 -> GL_COEFF (1 - T) as T -> T_c

# One small grid for the gap tests (N = 48 keeps JAX's per-shape compilations few).
GRID = kinetics.Grid(n=48, xi_max=20.0, core=1.0)


def _perturbed_state(grid, t=0.6):
    """A non-thermal n: thermal at t plus a smooth bump (0 <= n <= 1)."""
    xi = grid.xi
    n = np.asarray(kinetics.Model(t_qp=t, tau_in=1.0, grid=grid).thermal_state())
    return n + 0.05 * np.exp(-xi) * (1.0 + np.sin(3.0 * xi))


# kinetics.equilibrium_gap re-compiles on every call (~1.5 s here), so all the
# temperatures the tests need are solved in one call.
T_ZERO = np.array([0.0])
T_GL = np.array([0.99, 0.999, 0.9999])
T_NORMAL = np.array([1.0, 1.0 + 1e-9, 1.2, 2.0, 3.5])
T_JUST_BELOW = np.array([1.0 - 1e-6])


@pytest.fixture(scope="module")
def reference_gaps():
    t = np.concatenate([T_ZERO, T_GL, T_NORMAL, T_JUST_BELOW])
    d = kinetics.equilibrium_gap(t)
    out, k = {}, 0
    blocks = (("zero", T_ZERO), ("gl", T_GL), ("normal", T_NORMAL), ("below", T_JUST_BELOW))
    for name, block in blocks:
        out[name] = d[k : k + block.size]
        k += block.size
    return out


# --------------------------------------------------------------------------- equilibrium gap


def test_zero_temperature_gap_is_bcs_value(reference_gaps):
    # 1e-6: the accuracy physics.md section 2 asks for; the reference grid (n = 3000,
    # xi_max = 80) has quadrature error ~1e-10 and a neglected tanh tail 2 E1(80) ~ 1e-36.
    assert reference_gaps["zero"][0] == pytest.approx(DELTA0_EXACT, abs=1e-6)


def test_gap_approaches_ginzburg_landau_near_tc(reference_gaps):
    t = T_GL
    delta = reference_gaps["gl"]
    rel = np.abs(delta**2 / (1.0 - t) / GL_COEFF - 1.0)
    # The next term of the expansion is O(1 - T): each decade closer to T_c must
    # shrink the relative difference by about 10. Bounds 5..20 allow the O((1-T)^2)
    # terms and the ~1e-6 relative grid error of Delta^2 at 1 - T = 1e-4, but reject a
    # wrong coefficient (which would make rel stall at a constant).
    assert np.all(rel[:-1] / rel[1:] > 5.0)
    assert np.all(rel[:-1] / rel[1:] < 20.0)
    # first-order in (1 - T): rel < 10 (1 - T) (observed ~0.8 (1 - T))
    assert np.all(rel < 10.0 * (1.0 - t))


def test_gap_vanishes_at_and_above_tc(reference_gaps):
    np.testing.assert_array_equal(reference_gaps["normal"], 0.0)  # exactly 0: normal state
    # ... and is positive just below (so the test above is not trivially satisfied)
    assert reference_gaps["below"][0] > 0.0


def _hand_gap_zero_temperature(grid, with_tail):
    """Delta(T = 0) on `grid` from G computed by hand with numpy (n = 0), scipy root."""
    xi, w = grid.xi, grid.weights
    ref = np.sum(w * np.where(xi > 0, np.tanh(xi / 2.0) / np.where(xi > 0, xi, 1.0), 0.5))
    xm = grid.xi_max

    def g(d):
        val = np.sum(w / np.sqrt(xi**2 + d * d)) - ref
        if with_tail:  # physics.md section 2: integral_{xi_max}^inf (1/E - 1/xi) dxi
            val += math.log(2.0 * xm / (xm + math.sqrt(xm * xm + d * d)))
        return val

    return brentq(g, 0.5, 3.0, xtol=1e-15, rtol=1e-15)


def test_analytic_tail_is_needed_on_a_short_grid():
    # xi_max = 20: the tail term ~ Delta^2 / (4 xi_max^2) ~ 2e-3 shifts Delta by ~3e-3,
    # while what the tail formula neglects (1 - tanh(xi/2) beyond xi_max, ~2 E1(20)
    # ~ 2e-10) is far below 1e-6. (At xi_max = 10 the neglected tanh tail alone,
    # 2 E1(10) ~ 8e-6, already moves Delta(0) by 1.5e-5 > 1e-6.)
    grid = kinetics.Grid(n=200, xi_max=20.0, core=2.0)
    with_tail = _hand_gap_zero_temperature(grid, with_tail=True)
    without_tail = _hand_gap_zero_temperature(grid, with_tail=False)
    code = kinetics.equilibrium_gap(0.0, grid=grid)
    # 1e-6: the accuracy physics.md section 2 asks for (grid quadrature error ~1e-8)
    assert abs(with_tail - DELTA0_EXACT) < 1e-6
    assert abs(without_tail - DELTA0_EXACT) > 1e-6  # so the tail is not optional
    # the code solves the same discrete equation: agreement to root-finding precision
    # (1e-12: both roots are converged to ~1e-15; G's rounding ~1e-15 / |G'| ~ 1e-15)
    assert code == pytest.approx(with_tail, rel=1e-12, abs=0)


# --------------------------------------------------------------------------- gap(grid, n)


def test_gap_is_the_root_of_the_gap_function():
    n = jnp.asarray(_perturbed_state(GRID))
    delta = float(kinetics.gap(GRID, n))
    assert 0.5 < delta < 2.0  # a superconducting state, not the Delta = 0 branch

    def g(d):
        return float(kinetics.gap_function(GRID, n, d))

    slope = float(jax.grad(lambda d: kinetics.gap_function(GRID, n, d))(delta))
    # Newton correction relative to Delta: the root is converged to machine precision
    # (1e-13: machine precision, as physics.md section 8 asks; G sums 48 O(1) terms).
    assert abs(g(delta) / slope / delta) < 1e-13
    # and G changes sign within a relative 1e-12 of Delta (|G'| Delta 1e-12 ~ 1e-12,
    # three orders above G's rounding): it is the root, not a stalled iterate.
    assert g(delta * (1.0 - 1e-12)) > 0.0 > g(delta * (1.0 + 1e-12))


def test_gap_is_zero_without_a_root():
    n = kinetics.thermal_distribution(GRID, 0.0, 1.2)  # normal metal at T = 1.2 T_c
    # G(Delta) < 0 for every Delta > 0 here, so there is no root ...
    assert float(kinetics.gap_function(GRID, n, 1e-6)) < 0.0
    assert float(kinetics.gap(GRID, n)) == 0.0  # ... and Delta = 0 exactly


def test_gap_is_zero_without_a_root_under_jit():
    n = kinetics.thermal_distribution(GRID, 0.0, 1.2)
    assert float(jax.jit(lambda x: kinetics.gap(GRID, x))(n)) == 0.0


def test_gap_gradient_matches_finite_differences():
    n = _perturbed_state(GRID)
    grad = np.asarray(jax.grad(lambda x: kinetics.gap(GRID, x))(jnp.asarray(n)))
    assert np.all(np.isfinite(grad)) and np.all(grad < 0)  # more quasiparticles, less gap
    h = 1e-4
    eye = np.eye(GRID.n) * h
    solve = jax.vmap(lambda x: kinetics.gap(GRID, x))
    fd = (np.asarray(solve(jnp.asarray(n + eye))) - np.asarray(solve(jnp.asarray(n - eye)))) / (
        2.0 * h
    )
    # central differences: truncation O(h^2) (measured 8e-9 at h = 1e-3, so ~1e-10
    # here) plus rounding eps Delta / h ~ 3e-12 absolute; 1e-8 relative to max |grad|
    # leaves margin but catches any error in the implicit-function JVP (which would be
    # O(1), e.g. a missing factor 2 or the wrong derivative of G).
    np.testing.assert_allclose(fd, grad, rtol=0, atol=1e-8 * np.max(np.abs(grad)))


def test_gap_forward_derivative_is_zero_in_the_normal_state():
    n = kinetics.thermal_distribution(GRID, 0.0, 1.2)
    jac = np.asarray(jax.jacfwd(lambda x: kinetics.gap(GRID, x))(n))
    np.testing.assert_array_equal(jac, 0.0)  # Delta = 0 on an open set of n


def test_gap_reverse_derivative_is_zero_in_the_normal_state():
    n = kinetics.thermal_distribution(GRID, 0.0, 1.2)
    grad = np.asarray(jax.grad(lambda x: kinetics.gap(GRID, x))(n))
    np.testing.assert_array_equal(grad, 0.0)


# --------------------------------------------------------------------------- occupations


def test_fermi_is_finite_and_precise_at_large_arguments():
    x = np.array([-800.0, -50.0, -1.0, 0.0, 1e-8, 1.0, 30.0, 300.0, 700.0, 800.0])
    f = np.asarray(kinetics.fermi(jnp.asarray(x)))
    assert np.all(np.isfinite(f))
    # scipy's expit(-x) = 1 / (1 + e^x) is an independent, tail-accurate logistic.
    # 1e-14 relative: a few ulps of exp; a `1 - tanh` or `1/(e^x + 1)` overflow form
    # would give 0 or inf in the tails and fail by O(1).
    np.testing.assert_allclose(f, expit(-x), rtol=1e-14, atol=0)
    assert f[0] == 1.0  # fermi(-800) is 1 to the last bit
    assert kinetics.fermi(700.0) == pytest.approx(math.exp(-700.0), rel=1e-14)
    assert float(kinetics.fermi(800.0)) == 0.0  # exp(-800) underflows float64 (< 5e-324)


def test_bose_is_finite_and_precise_at_large_and_small_arguments():
    x = np.array([1e-10, 1e-5, 0.1, 1.0, 30.0, 300.0, 700.0, 800.0])
    b = np.asarray(kinetics.bose(jnp.asarray(x)))
    assert np.all(np.isfinite(b))
    # 1 / expm1(x) is the accurate closed form at both ends (expm1 keeps x -> 0 exact);
    # 1e-14 relative = a few ulps.
    with np.errstate(over="ignore"):  # the reference overflows to 1/inf = 0 at x = 800
        reference = 1.0 / np.expm1(x)
    np.testing.assert_allclose(b, reference, rtol=1e-14, atol=0)
    assert b[0] == pytest.approx(1e10 - 0.5, rel=1e-14)  # 1/x - 1/2 + x/12
    assert kinetics.bose(700.0) == pytest.approx(math.exp(-700.0), rel=1e-14)


def test_occupation_gradients_are_finite_in_the_tails():
    for fn, x in ((kinetics.fermi, 800.0), (kinetics.fermi, -800.0), (kinetics.bose, 800.0)):
        assert np.isfinite(float(jax.grad(fn)(x)))

"""Through the normal state and back (docs/physics.md, "Through the normal state"):
which root of the gap equation is the gap, the right-hand side and its Jacobian as
Delta -> 0, conservation and detailed balance at Delta = 0, steady states and a
thermal ramp across T_c that goes normal and recovers without a solver failure.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kinetics
from solvers import evolve, steady_state
from solvers._evolve import NORMAL_GAP, normal_intervals

pytestmark = pytest.mark.filterwarnings("ignore::kinetics.PhysicsWarning")

GRID = kinetics.Grid(n=60, xi_max=20.0, core=1.0)
T0 = jnp.asarray(0.0)

# compiled once per model structure (op-by-op dispatch of the collision kernels costs
# tens of seconds per call at this size)
_rhs = eqx.filter_jit(lambda m, y: m.rhs(T0, y))
_jac = eqx.filter_jit(lambda m, y: m.jacobian(T0, y))
_rhs_at = eqx.filter_jit(lambda m, y, d: m.rhs_at_gap(T0, y, d))
_gap = eqx.filter_jit(lambda m, y: m.gap(y))
_jacfwd = eqx.filter_jit(lambda m, y: jax.jacfwd(lambda x: m.rhs(T0, x))(y))


@jax.jit
def _gs(n, deltas):
    return jax.vmap(lambda d: kinetics.gap_function(GRID, n, d, 0.5))(deltas)


def _g(n, deltas):
    """G(Delta; n) at each of `deltas` (one compiled program for every call)."""
    return np.asarray(_gs(jnp.asarray(n), jnp.atleast_1d(jnp.asarray(deltas, jnp.float64))))


# --------------------------------------------------------------------------- which root


def test_the_gap_is_the_largest_root_when_the_gap_edge_is_inverted():
    # Thermal at T = 0.5 (one root, Delta_0 ~ 1.69), then occupation 0.6 > 1/2 on the
    # first nodes: the peak of 1/E at xi = 0 contributes (1 - 2 n_0) ln(1/Delta) -> -inf
    # as Delta -> 0, so G < 0 there while G > 0 at intermediate Delta: two roots. A test at
    # Delta -> 0 alone (the rule before) calls this film normal.
    d0 = kinetics.equilibrium_gap(0.5, grid=GRID)
    n = np.asarray(kinetics.thermal_distribution(GRID, d0, 0.5))
    for m in (1, 3):
        n2 = n.copy()
        n2[:m] = 0.6
        delta = float(kinetics.gap(GRID, jnp.asarray(n2), 1.0, 0.5))
        assert _g(n2, 1e-12)[0] < 0.0
        assert 0.5 < delta < d0
        # a root, where G falls through zero (relative step 1e-9: G changes by ~1e-9
        # of its slope there, far above the rounding of the sum, ~1e-15)
        lo, hi = _g(n2, [delta * (1 - 1e-9), delta * (1 + 1e-9)])
        assert lo > 0.0 > hi
        # the largest: G < 0 on a fine scan above it
        above = np.linspace(delta * 1.001, 6.0, 400)
        assert _g(n2, above).max() < 0.0
        # and not the only one: G > 0 somewhere below it, < 0 again near 0 (where
        # -0.2 ln(spacing / Delta) outweighs the rest, ~3.5: below ~1e-10)
        below = np.geomspace(1e-12, delta * 0.999, 200)
        values = _g(n2, below)
        assert values.max() > 0.0 and values[0] < 0.0


def test_a_monotonic_gap_function_keeps_its_single_root():
    # every thermal state: G decreasing in Delta, one root; the scan must not move it
    for t in (0.2, 0.7, 0.99):
        d0 = kinetics.equilibrium_gap(t, grid=GRID)
        n = kinetics.thermal_distribution(GRID, d0, t)
        assert float(kinetics.gap(GRID, n, 1.0, t)) == pytest.approx(d0, rel=1e-12)
    # above T_c no root: the normal state
    n = kinetics.thermal_distribution(GRID, 0.0, 1.1)
    assert float(kinetics.gap(GRID, n, 1.0, 1.1)) == 0.0


# --------------------------------------------------------------------------- Delta -> 0


# n_0 lowered by eps from 1/2 gives 1 - 2 n_0 = 2 eps at xi = 0, and G(Delta) grows as
# 2 eps ln(c / Delta) over the peak of 1/E there (c ~ the width of the node's cell),
# against G = -ln(T) = -ln(1.05) of the normal thermal state: a gap
# Delta = c exp(-ln(1.05) / (2 eps)), exponentially small in 1/eps as in the continuum
# (the node xi = 0 alone gave a pole w_0 2 eps / Delta, and Delta ~ eps). These eps
# give Delta ~ 1e-6 and 1e-3 for c = half the spacing at xi = 0.
NEAR_NORMAL_EPS = (0.00234, 0.00704)


def _near_normal_states(model):
    """The normal thermal state at 1.05 T_c (Delta = 0) and the same with n_0 lowered by
    each of NEAR_NORMAL_EPS, which gives small gaps ~1e-6 and ~1e-3."""
    n = np.asarray(kinetics.thermal_distribution(GRID, 0.0, 1.05))
    out = [jnp.asarray(n)]
    for eps in NEAR_NORMAL_EPS:
        n2 = n.copy()
        n2[0] -= eps
        out.append(jnp.asarray(n2))
    return out


def _phonon_model():
    return kinetics.Model(
        t_qp=0.8, tau_in=None, grid=GRID,
        baths=kinetics.Phonons(tau0=20.0, t_ph=1.05),
    )


def test_rhs_and_jacobian_are_continuous_at_the_normal_state():
    model = _phonon_model()
    n0, n6, n3 = _near_normal_states(model)
    gaps = [float(_gap(model, n)) for n in (n0, n6, n3)]
    assert gaps[0] == 0.0 and 0.0 < gaps[1] < gaps[2] < 0.1
    assert 1e-7 < gaps[1] < 1e-5 and 1e-4 < gaps[2] < 1e-2
    # the continuum's law (NEAR_NORMAL_EPS): both gaps give the same c, of the order of
    # the spacing at xi = 0 (measured 0.0332 and 0.0320: the law holds to 4 %; the pole
    # of the xi = 0 node, Delta ~ eps, gives c's 1e4 apart). d Delta / d n_0 =
    # 2 ln(c / Delta) Delta / (2 eps) -> 0 as Delta -> 0+.
    c = [g * np.exp(np.log(1.05) / (2 * e)) for g, e in zip(gaps[1:], NEAR_NORMAL_EPS,
                                                              strict=True)]
    assert c[0] == pytest.approx(c[1], rel=0.1)
    assert 0.25 < c[0] / float(GRID.xi[1]) < 2.0
    f0 = np.asarray(_rhs(model, n0))
    scale = np.max(np.abs(np.asarray(_rhs(model, n3))))
    for n in (n6, n3):
        # n - n0 is eps at node 0 only: |f_i(n) - f_i(n0)| <= max |J_i0| eps along the
        # segment; 2 |J_i0(n)| eps (J with its rank-one term through the gap) allows for
        # its change there. A jump of f at Delta = 0 breaks it at once.
        eps = float(n0[0] - n[0])
        bound = 2 * np.abs(np.asarray(_jac(model, n))[:, 0]) * eps + 1e-15 * scale
        assert np.all(np.abs(np.asarray(_rhs(model, n)) - f0) <= bound)
    # the rhs at a given Delta is continuous in Delta (coherence factors and E = |xi|
    # at Delta = 0): O(Delta) change from Delta = 1e-6
    # at Delta = 0 and approaches it linearly (E_0 = Delta at the xi = 0 node):
    # the change from Delta = 0 grows tenfold from Delta = 1e-6 to 1e-5
    at = lambda d: np.asarray(_rhs_at(model, n6, jnp.asarray(d)))  # noqa: E731
    d6 = np.max(np.abs(at(1e-6) - at(0.0)))
    d5 = np.max(np.abs(at(1e-5) - at(0.0)))
    assert d6 > 0.0 and 9.0 < d5 / d6 < 11.0


@pytest.mark.parametrize("which", [1, 2])
def test_structured_jacobian_near_the_normal_state(which):
    # at Delta ~ 1e-6 and ~ 1e-3: the structured Jacobian (kernel terms + the rank-one
    # term through the gap, whose d Delta / d n comes from the implicit function
    # theorem) against a central finite difference of the rhs in a random direction
    model = _phonon_model()
    n = _near_normal_states(model)[which]
    delta = float(_gap(model, n))
    v = jnp.asarray(np.random.default_rng(which).standard_normal(GRID.n))
    jv = np.asarray(_jac(model, n) @ v)
    # step well inside the branch: Delta changes by ~h |dDelta/dn| << Delta
    h = 1e-3 * delta
    fd = (np.asarray(_rhs(model, n + h * v)) - np.asarray(_rhs(model, n - h * v))) / (2 * h)
    # central difference error ~ h^2 f''' plus rounding ~ 1e-16 |f| / h
    scale = np.max(np.abs(jv))
    assert np.max(np.abs(jv - fd)) < 1e-5 * scale
    # and jax.jacfwd through the gap's custom JVP gives the same matrix
    jac_ad = np.asarray(_jacfwd(model, n))  # one program for both states
    np.testing.assert_allclose(np.asarray(_jac(model, n)), jac_ad, rtol=1e-9,
                               atol=1e-11 * np.max(np.abs(jac_ad)))


# --------------------------------------------------------------------------- Delta = 0


@pytest.mark.parametrize("name", ["phonons", "drive-delta"])
def test_scattering_conserves_number_at_delta_zero(name):
    bath = {
        "phonons": kinetics.Phonons(tau0=20.0, t_ph=0.5),
        "drive-delta": kinetics.ClassicalDrive(omega_d=0.7, power=1e-3),
    }[name]
    n = jnp.asarray(np.random.default_rng(3).uniform(0.0, 1.0, GRID.n))
    i_scat = kinetics.collision(bath, GRID, n, 0.0, channels=("scattering",))
    net = float(GRID.integrate(i_scat))
    gross = float(GRID.integrate(jnp.abs(i_scat)))
    assert gross > 0.0
    # as at Delta > 0 (tests/test_collision.py): one rate per event, exact to rounding
    assert abs(net) < 1e-13 * gross


@pytest.mark.parametrize("name", ["multimode", "tabulated-density"])
def test_detailed_balance_at_delta_zero(name):
    t = 1.1
    omega = np.linspace(0.0, 12.0, 40)
    bath = {
        "multimode": kinetics.MultimodeCavity(omega0=2.5, t_cav=t, eta=2e-3),
        "tabulated-density": kinetics.TabulatedBath(
            omega=omega + 0.5, j=1e-3 * np.exp(-omega / 3.0), t_bath=t, coupling="density"
        ),
    }[name]
    n_f = kinetics.thermal_distribution(GRID, 0.0, t)
    n_pert = n_f * (1.0 + 0.1 * jnp.sin(jnp.asarray(GRID.xi)))
    residual = np.asarray(kinetics.collision(bath, GRID, n_f, 0.0))
    scale = np.max(np.abs(np.asarray(kinetics.collision(bath, GRID, n_pert, 0.0))))
    # rounding in sums of ~N terms, as in tests/test_collision.py::test_detailed_balance
    assert np.max(np.abs(residual)) < 1e-12 * scale


def test_pair_breaking_and_recombination_balance_in_the_normal_metal():
    # at Delta = 0 "pair breaking" is electron-hole creation: with n thermal at the
    # bath temperature the pair channel alone vanishes bracket by bracket
    bath = kinetics.Phonons(tau0=20.0, t_ph=1.2)
    n_f = kinetics.thermal_distribution(GRID, 0.0, 1.2)
    i_pair = np.asarray(kinetics.collision(bath, GRID, n_f, 0.0, channels=("pair",)))
    n_hot = kinetics.thermal_distribution(GRID, 0.0, 1.5)
    gross = np.max(np.abs(np.asarray(kinetics.collision(bath, GRID, n_hot, 0.0,
                                                         channels=("pair",)))))
    assert gross > 0.0
    assert np.max(np.abs(i_pair)) < 1e-12 * gross


def test_steady_state_above_tc_is_the_normal_thermal_state():
    # phonons at 1.1 T_c relax any start to n_F(|xi| / 1.1) with Delta = 0 (detailed
    # balance of the normal metal), from a superconducting start at 0.8 T_c
    model = kinetics.Model(t_qp=0.8, tau_in=None, grid=GRID,
                           baths=kinetics.Phonons(tau0=20.0, t_ph=1.1))
    ds = steady_state(model)
    assert ds.attrs["solver.status"] == "success"
    assert float(ds.gap) == 0.0
    expected = np.asarray(kinetics.thermal_distribution(GRID, 0.0, 1.1))
    np.testing.assert_allclose(ds.n.values, expected, atol=1e-9)


# --------------------------------------------------------------------------- records


def test_normal_intervals_recover_the_crossings_of_a_linear_gap_squared():
    # Delta^2 = a (t_c - t) before t_c = 3.3 and b (t - t_r) after t_r = 7.9: the record
    # must place both crossings exactly (Delta^2 linear on the superconducting side)
    t = np.linspace(0.0, 10.0, 11)
    sq = np.where(t < 3.3, 0.5 * (3.3 - t), np.where(t > 7.9, 0.2 * (t - 7.9), 0.0))
    went, back = normal_intervals(t, np.sqrt(sq))
    np.testing.assert_allclose(went, [3.3], rtol=1e-12)
    np.testing.assert_allclose(back, [7.9], rtol=1e-12)
    # normal from the start and still normal at the end: NaN where the record is blind
    went, back = normal_intervals(t, np.where((t < 2) | (t > 8), 0.0, 1.0))
    # (with one superconducting save beside a crossing Delta^2 is interpolated
    # linearly: it reaches zero at the normal save)
    assert np.isnan(went[0]) and back[0] == pytest.approx(1.0)
    assert went[1] == pytest.approx(9.0) and np.isnan(back[1])
    # never normal: empty
    assert normal_intervals(t, np.ones_like(t))[0].size == 0


def test_thermal_ramp_through_tc_goes_normal_and_recovers():
    # Phonons (fast: tau0 = 1) at T_ph(t) = 0.8 + 0.35 exp(-(t - 4 s)^2 / (2 s^2)),
    # s = 2000: up to 1.15 T_c and back, slowly. The gap must follow the equilibrium
    # Delta_BCS(T_ph(t)) on the grid, go to zero where T_ph crosses T_c and come back
    # when it crosses again, and evolve must call none of it a failure.
    sig, peak = 2000.0, 0.35
    grid = kinetics.Grid(n=100, xi_max=20.0, core=1.0)
    profile = kinetics.GaussianPulse(peak=peak, t0=4 * sig, sigma=sig, base=0.8)
    model = kinetics.Model(t_qp=0.8, tau_in=None, grid=grid,
                           baths=kinetics.Phonons(tau0=1.0, t_ph=profile))
    ts = np.linspace(0.0, 8 * sig, 81)
    ds = evolve(model, ts, solver="bdf", progress=False)
    assert ds.attrs["solver.status"] == "success"
    temps = np.asarray(profile(jnp.asarray(ts)))
    bcs = kinetics.equilibrium_gap(temps, grid=grid)
    gap = ds.gap.values
    # superconducting side: the gap lags T_ph by the relaxation time; the lag error is
    # proportional to the ramp rate (measured max 8.5e-4 at s = 1000, 4.2e-4 at s = 2000
    # where Delta_BCS > 0.3): 1e-3 here, while a wrong root or a film that stayed normal
    # is off by O(0.1 - 1)
    sc = bcs > 0.3
    assert np.max(np.abs(gap[sc] - bcs[sc])) < 1e-3
    # normal above T_c: the gap is zero up to rounding-level roots (~1e-11: the xi = 0
    # node at n_0 = 1/2 - 1e-16), far below the record's threshold
    assert np.all(gap[temps > 1.01] < 1e-3 * NORMAL_GAP)
    # one normal interval, from the first crossing of T_c to the second
    x = np.sqrt(2 * np.log(peak / 0.2))
    crossings = (4 * sig - x * sig, 4 * sig + x * sig)
    assert ds.sizes["normal_interval"] == 1
    went, back = float(ds.went_normal_at[0]), float(ds.recovered_at[0])
    # the film goes normal a few relaxation times after T_ph passes T_c (measured +5 at
    # N = 150: the lag of the distribution behind the phonons) and recovers once the
    # distribution is below T_c again, within one save interval (200) of the crossing
    assert crossings[0] - 10 < went < crossings[0] + 50
    assert crossings[1] - 10 < back < crossings[1] + 200

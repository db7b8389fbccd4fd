"""The kinetic equation (physics.md section 4): the thermal fixed point, and the
Jacobian of the self-consistent right-hand side (jax.jacfwd against central
finite differences, and the structured O(N^2) Jacobian against jax.jacfwd).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import kinetics

# A deliberately coarse grid (N = 48, largest cell 1.51 T_c): the identities tested
# here hold on any grid, and the resolution warnings (omega0 spans < 4 cells, kappa
# narrower than two cells) are about accuracy of the physics, not about them.
pytestmark = pytest.mark.filterwarnings("ignore::kinetics.PhysicsWarning")

GRID = kinetics.Grid(n=48, xi_max=20.0, core=1.0)
T_QP = 0.6  # Delta_0 = 1.60: gap edge well resolved, xi_max = 20 >= 20 T_qp
TAU_IN = 50.0
OMEGA_TAB = np.linspace(0.0, 12.0, 40)


def thermal_baths(t):
    return {
        "multimode": kinetics.MultimodeCavity(omega0=2.5, t_cav=t, eta=2e-3),
        "single-mode": kinetics.SingleModeCavity(omega0=2.0, t_cav=t, eta=2e-3, kappa=0.5),
        "tabulated-current": kinetics.TabulatedBath(
            omega=OMEGA_TAB, j=1e-3 * (0.3 + OMEGA_TAB**2), t_bath=t
        ),
        "tabulated-density": kinetics.TabulatedBath(
            omega=OMEGA_TAB + 0.5, j=1e-3 * np.exp(-OMEGA_TAB / 3.0), t_bath=t, coupling="density"
        ),
        "phonons": kinetics.Phonons(tau0=200.0, t_ph=t),
    }


def all_baths(t_bath):
    """Every bath type; the thermal ones at t_bath (the drives are never thermal)."""
    return {
        **thermal_baths(t_bath),
        # above 2 Delta_0 = 3.2: the delta line has scattering and pair parts
        "drive-delta": kinetics.ClassicalDrive(omega_d=3.6, power=2e-3),
        "drive-gaussian": kinetics.ClassicalDrive(
            omega_d=1.2, power=2e-3, line="gaussian", width=0.05
        ),
    }


def profile_baths():
    """Time-dependent parameters (evaluated at t = 5 in the tests)."""
    return {
        "multimode-ramp": kinetics.MultimodeCavity(
            omega0=2.5, t_cav=0.3, eta=kinetics.Ramp(0.0, 1e-3, 0.0, 10.0)
        ),
        "single-mode-step": kinetics.SingleModeCavity(
            omega0=2.0, t_cav=kinetics.Step(0.9, t_on=2.0, before=0.3), eta=2e-3, kappa=0.5
        ),
        "phonons-ramp": kinetics.Phonons(tau0=200.0, t_ph=kinetics.Ramp(0.3, 0.9, 0.0, 10.0)),
        "drive-pulse": kinetics.ClassicalDrive(
            omega_d=3.6, power=kinetics.GaussianPulse(peak=2e-3, t0=4.0, sigma=2.0)
        ),
    }


def nonthermal_state(model):
    """Thermal at T_qp plus a smooth bump: 0 < n < 1, Delta[n] ~ 1.47 (superconducting)."""
    xi = GRID.xi
    n = np.asarray(model.thermal_state())
    return jnp.asarray(n + 0.05 * np.exp(-xi) * (1.0 + np.sin(3.0 * xi)) + 1e-3 * np.exp(-xi / 4))


# --------------------------------------------------------------------------- fixed point


@pytest.mark.parametrize("tau_in", [TAU_IN, None])
def test_thermal_state_is_a_fixed_point(tau_in):
    baths = tuple(thermal_baths(T_QP).values())
    if tau_in is None:
        baths = (thermal_baths(T_QP)["phonons"],)  # phonons alone relax the system
    model = kinetics.Model(t_qp=T_QP, tau_in=tau_in, baths=baths, grid=GRID)
    n_f = model.thermal_state()
    # the thermal state carries its own gap: Delta[n_F] = Delta_0 on this grid
    assert float(model.gap(n_f)) == pytest.approx(float(model.delta0), rel=1e-13)
    residual = np.asarray(model.rhs(0.0, n_f))
    scale = np.max(np.abs(np.asarray(model.rhs(0.0, nonthermal_state(model)))))
    # Detailed balance holds bracket by bracket and the relaxation term vanishes on
    # n_F(E(Delta_0)); what remains is rounding in sums of ~N = 48 terms (see
    # test_collision.test_detailed_balance) plus dI/dDelta times the ~1e-16 relative
    # difference between Delta[n_F] and Delta_0. 1e-12 relative to a generic rhs.
    assert np.max(np.abs(residual)) < 1e-12 * scale


def test_thermal_state_is_a_fixed_point_with_time_dependent_baths():
    # at t = 5 every thermal bath below is at T_qp = 0.6 (Step after t_on; Ramp midway)
    baths = (
        kinetics.MultimodeCavity(omega0=2.5, t_cav=kinetics.Ramp(0.3, 0.9, 0.0, 10.0), eta=2e-3),
        kinetics.SingleModeCavity(
            omega0=2.0, t_cav=kinetics.Step(0.6, t_on=2.0, before=0.1), eta=2e-3, kappa=0.5
        ),
        kinetics.Phonons(
            tau0=200.0, t_ph=kinetics.GaussianPulse(peak=0.4, t0=5.0, sigma=1.0, base=0.2)
        ),
    )
    model = kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=baths, grid=GRID)
    n_f = model.thermal_state()
    scale = np.max(np.abs(np.asarray(model.rhs(5.0, nonthermal_state(model)))))
    assert np.max(np.abs(np.asarray(model.rhs(5.0, n_f)))) < 1e-12 * scale  # as above
    # control: at t = 0 the baths are colder than T_qp and the state is not stationary
    assert np.max(np.abs(np.asarray(model.rhs(0.0, n_f)))) > 1e-3 * scale


def test_profiles_are_evaluated_at_time_t():
    # a Ramp of eta from 0 to 1e-3 over [0, 10] is 5e-4 at t = 5 (closed form)
    ramp = kinetics.Ramp(0.0, 1e-3, 0.0, 10.0)
    ramped = kinetics.Model(
        t_qp=T_QP,
        tau_in=TAU_IN,
        grid=GRID,
        baths=kinetics.MultimodeCavity(omega0=2.5, t_cav=0.3, eta=ramp),
    )
    fixed = kinetics.Model(
        t_qp=T_QP,
        tau_in=TAU_IN,
        grid=GRID,
        baths=kinetics.MultimodeCavity(omega0=2.5, t_cav=0.3, eta=5e-4),
    )
    n = nonthermal_state(fixed)
    # same arithmetic up to the rounding of eta(5) = 0 + (1e-3 - 0) * 0.5: a few ulps
    np.testing.assert_allclose(
        np.asarray(ramped.rhs(5.0, n)), np.asarray(fixed.rhs(5.0, n)), rtol=1e-14, atol=1e-20
    )


# --------------------------------------------------------------------------- Jacobians


def test_jacfwd_matches_finite_differences():
    baths = (
        thermal_baths(0.3)["multimode"],
        thermal_baths(0.9)["single-mode"],  # J(0) > 0: the quasi-elastic flux term
        thermal_baths(0.3)["phonons"],
        all_baths(0.3)["drive-delta"],
    )
    model = kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=baths, grid=GRID)
    n = nonthermal_state(model)
    jac = np.asarray(jax.jacfwd(lambda x: model.rhs(0.0, x))(n))
    # Directional central differences J v ~ (f(n + v) - f(n - v)) / 2 along random
    # directions (every column enters each of them) and along the first and last unit
    # vectors (gap edge, tail). Steps are relative, v_j = 1e-4 r_j n_j with |r_j| <= 1:
    # n spans 1e-5 .. 0.5 and the quasi-elastic flux term depends on ln(n / (1 - n)).
    rng = np.random.default_rng(7)
    n_np = np.asarray(n)
    directions = [rng.uniform(-1.0, 1.0, GRID.n) * n_np for _ in range(4)]
    for j in (0, GRID.n - 1):
        directions.append(np.where(np.arange(GRID.n) == j, n_np, 0.0))
    for r in directions:
        v = 1e-4 * r
        fd = (np.asarray(model.rhs(0.0, n + v)) - np.asarray(model.rhs(0.0, n - v))) / 2.0
        exact = jac @ v
        # Error relative to max(|J| |v|), measured: 2e-6, 2e-8, 2e-10 at relative steps
        # 1e-2, 1e-3, 1e-4 (clean O(h^2) truncation), rounding floor ~2e-10. 1e-8 at
        # 1e-4 leaves a 30x margin yet rejects any real AD error (O(1) for a wrong
        # implicit gap derivative, O(h) = 1e-4 for a missed kink in the operator).
        scale = np.max(np.abs(jac) @ np.abs(v))
        np.testing.assert_allclose(fd, exact, rtol=0, atol=1e-8 * scale)


def _compare_structured(model, t, n):
    structured = np.asarray(model.jacobian(t, n))
    reference = np.asarray(jax.jacfwd(lambda x: model.rhs(t, x))(n))
    assert np.all(np.isfinite(structured))
    # Both are exact derivatives of the same discrete rhs, assembled in a different
    # order: they may differ by rounding only (observed <= 4e-15). 1e-10 relative
    # to max |J| is far above that; a missing or mis-scaled term (the rank-one gap
    # term, the quasi-elastic flux, tau_in) shows at 1e-3 or more (a 0.1 % change of
    # the rank-one term fails every case).
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(structured, reference, rtol=0, atol=1e-10 * scale)


JACOBIAN_CASES = [
    (name, tau_in)
    for name in all_baths(0.3)
    for tau_in in (TAU_IN, None)
    # tau_in's part of the Jacobian (-1/tau_in and the relaxation term's Delta
    # dependence in the rank-one term) does not depend on the bath and is covered by
    # every other bath; the Gaussian line costs ~10 s per eager evaluation here.
    if not (name == "drive-gaussian" and tau_in is not None)
]


@pytest.mark.parametrize(
    "name, tau_in",
    JACOBIAN_CASES,
    ids=[f"{a}-{'tau_in' if b else 'no-tau_in'}" for a, b in JACOBIAN_CASES],
)
def test_structured_jacobian_matches_jacfwd(name, tau_in):
    model = kinetics.Model(t_qp=T_QP, tau_in=tau_in, baths=all_baths(0.3)[name], grid=GRID)
    _compare_structured(model, 0.0, nonthermal_state(model))


def test_structured_jacobian_matches_jacfwd_with_time_dependent_parameters():
    model = kinetics.Model(
        t_qp=T_QP, tau_in=TAU_IN, baths=tuple(profile_baths().values()), grid=GRID
    )
    _compare_structured(model, 5.0, nonthermal_state(model))


# A state whose gap has collapsed (quasiparticles hot enough: thermal at 1.2 T_c, e.g.
# under strong pair breaking): Delta[n] = 0. Same model temperature and grid as above.
def normal_state():
    return kinetics.thermal_distribution(GRID, 0.0, 1.2)


def test_normal_state_rhs_is_finite():
    model = kinetics.Model(
        t_qp=T_QP, tau_in=TAU_IN, baths=thermal_baths(0.3)["phonons"], grid=GRID
    )
    n = normal_state()
    assert float(model.gap(n)) == 0.0
    assert np.all(np.isfinite(np.asarray(model.rhs(0.0, n))))


def test_normal_state_jacobian_is_finite():
    model = kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, grid=GRID)  # no bath: rhs is finite
    n = normal_state()
    assert float(model.gap(n)) == 0.0
    assert np.all(np.isfinite(np.asarray(model.rhs(0.0, n))))
    jac = np.asarray(model.jacobian(0.0, n))
    # Delta = 0 on an open set of n, so it does not respond to n: the Jacobian of
    # -(n - n_F(E(Delta)/T_qp)) / tau_in is -1/tau_in exactly
    np.testing.assert_array_equal(jac, -np.eye(GRID.n) / TAU_IN)


# --------------------------------------------------------------------------- gap held fixed


def _fixed_and_default(baths, tau_in=TAU_IN):
    fixed = kinetics.Model(t_qp=T_QP, tau_in=tau_in, baths=baths, grid=GRID, gap_mode="fixed")
    default = kinetics.Model(t_qp=T_QP, tau_in=tau_in, baths=baths, grid=GRID)
    return fixed, default


def test_fixed_gap_rhs_is_the_rhs_at_the_equilibrium_gap():
    baths = (thermal_baths(0.3)["phonons"], all_baths(0.3)["drive-delta"])
    fixed, default = _fixed_and_default(baths)
    assert default.gap_mode == "self_consistent" and fixed.gap_mode == "fixed"
    n = nonthermal_state(fixed)
    delta0 = float(fixed.delta0)
    # Delta_0 on this grid is the root of the equilibrium gap equation (independently:
    # G_eq changes sign there) and the state's own gap is clearly different (~1.47)
    g_eq = lambda d: float(  # noqa: E731
        kinetics.gap_function(GRID, kinetics.thermal_distribution(GRID, d, T_QP), d, T_QP)
    )
    assert g_eq(delta0 * (1 - 1e-12)) > 0.0 > g_eq(delta0 * (1 + 1e-12))
    assert float(fixed.gap(n)) == delta0
    assert abs(float(fixed.solve_gap(n)) / delta0 - 1.0) > 1e-2
    # the same operations at the same Delta: equal to rounding (1e-14 of the scale)
    ref = np.asarray(fixed.rhs_at_gap(0.0, n, delta0))
    np.testing.assert_allclose(
        np.asarray(fixed.rhs(0.0, n)), ref, rtol=0, atol=1e-14 * np.max(np.abs(ref))
    )
    # ... while the default (self-consistent) rhs is not the rhs at Delta_0
    assert np.max(np.abs(np.asarray(default.rhs(0.0, n)) - ref)) > 1e-3 * np.max(np.abs(ref))
    np.testing.assert_array_equal(
        np.asarray(default.rhs(0.0, n)),
        np.asarray(default.rhs_at_gap(0.0, n, default.solve_gap(n))),
    )


@pytest.mark.parametrize("tau_in", [TAU_IN, None])
def test_fixed_gap_jacobian_matches_jacfwd(tau_in):
    baths = (thermal_baths(0.3)["phonons"], all_baths(0.3)["drive-delta"])
    fixed, default = _fixed_and_default(baths, tau_in)
    n = nonthermal_state(fixed)
    _compare_structured(fixed, 0.0, n)
    # control: the self-consistent model's Jacobian (another Delta, plus the rank-one
    # term through the gap) differs by far more than the 1e-10 tolerance above
    diff = np.asarray(default.jacobian(0.0, n)) - np.asarray(fixed.jacobian(0.0, n))
    assert np.max(np.abs(diff)) > 1e-3 * np.max(np.abs(np.asarray(fixed.jacobian(0.0, n))))


def test_gap_mode_survives_copies_and_is_checked():
    dynamic = kinetics.MultimodeCavity(
        omega0=2.5,
        t_cav=0.3,
        eta=2e-3,
        dynamic=kinetics.DynamicBosons(tau_b=10.0, r_cav=1e-3, n_omega=8),
    )
    model = kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=dynamic, grid=GRID, gap_mode="fixed")
    assert model.static_version().gap_mode == "fixed"
    assert eqx.tree_at(lambda m: m.tau_in, model, 2.0 * TAU_IN).gap_mode == "fixed"
    with pytest.raises(kinetics.ParameterError, match="gap_mode"):
        kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, grid=GRID, gap_mode="frozen")

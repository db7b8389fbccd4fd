"""The collision operator (physics.md section 3): detailed balance, number
conservation of the scattering lines, the pair channel, and Kaplan's
electron-phonon rates at low temperature.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _reference import apply_blocked, apply_unblocked, jacobian_blocked
from scipy.integrate import quad
from scipy.special import gamma, zeta

import kinetics
from kinetics._collision import Bilinear

# One small grid (N = 48) for the structural tests. Its largest cell is 1.51 T_c: a
# multimode cavity needs omega0 above that (Model refuses smaller omega0; collision()
# itself does not check, and returns NaN there because J(0) = inf enters the cut cell).
GRID = kinetics.Grid(n=48, xi_max=20.0, core=1.0)
OMEGA_TAB = np.linspace(0.0, 12.0, 40)


def thermal_baths(t):
    """Every thermal bath type at temperature t, with steps and J(0) > 0 covered."""
    return {
        "multimode": kinetics.MultimodeCavity(omega0=2.0, t_cav=t, eta=1e-3),
        "single-mode": kinetics.SingleModeCavity(omega0=2.0, t_cav=t, eta=1e-3, kappa=0.5),
        # J(0) > 0: exercises the quasi-elastic (Omega -> 0) limit term
        "tabulated-current": kinetics.TabulatedBath(
            omega=OMEGA_TAB, j=1e-3 * (0.3 + OMEGA_TAB**2), t_bath=t
        ),
        # support starting at 0.5 > 0: a step at the lower end of J
        "tabulated-density": kinetics.TabulatedBath(
            omega=OMEGA_TAB + 0.5, j=1e-3 * np.exp(-OMEGA_TAB / 3.0), t_bath=t, coupling="density"
        ),
        "phonons": kinetics.Phonons(tau0=100.0, t_ph=t),
        "phonons-debye": kinetics.Phonons(tau0=100.0, t_ph=t, omega_debye=5.0),
    }


BATH_NAMES = list(thermal_baths(0.5))


def drives():
    return {
        "drive-delta": kinetics.ClassicalDrive(omega_d=1.2, power=1e-3),
        "drive-gaussian": kinetics.ClassicalDrive(
            omega_d=1.2, power=1e-3, line="gaussian", width=0.05
        ),
    }


# --------------------------------------------------------------------------- detailed balance


@pytest.mark.parametrize("name", BATH_NAMES)
def test_detailed_balance(name):
    xi = GRID.xi
    worst = 0.0
    for t in (0.1, 0.5, 1.0):
        bath = thermal_baths(t)[name]
        for delta in (1e-3, 0.5, 1.7):
            n_f = kinetics.thermal_distribution(GRID, delta, t)
            # a 10% perturbation sets the scale of a generic collision integral
            n_pert = n_f * (1.0 + 0.1 * jnp.sin(jnp.asarray(xi)))
            residual = np.asarray(kinetics.collision(bath, GRID, n_f, delta))
            scale = np.max(np.abs(np.asarray(kinetics.collision(bath, GRID, n_pert, delta))))
            assert scale > 0.0
            worst = max(worst, np.max(np.abs(residual)) / scale)
    # Each node bracket vanishes exactly on (n_F, N_B); what is left is rounding in the
    # sum of ~N = 48 gain and loss terms, each ~10x |I[n_pert]| (10% perturbation):
    # ~48 * 2.2e-16 * 10 = 1e-13 (observed <= 2e-13). 1e-12 keeps a 5x margin, while a
    # discretization that broke detailed balance would leave O(h^2) ~ 1e-3 here.
    assert worst < 1e-12


@pytest.mark.parametrize("name", ["phonons", "single-mode"])
def test_detailed_balance_in_the_normal_state(name):
    t = 1.2
    bath = thermal_baths(t)[name]
    n_f = kinetics.thermal_distribution(GRID, 0.0, t)
    n_pert = n_f * (1.0 + 0.1 * jnp.sin(jnp.asarray(GRID.xi)))
    residual = np.asarray(kinetics.collision(bath, GRID, n_f, 0.0))
    assert np.all(np.isfinite(residual))
    # as in test_detailed_balance (at Delta = 1e-150 the operator is finite and the
    # ratio is ~2e-15)
    scale = np.max(np.abs(np.asarray(kinetics.collision(bath, GRID, n_pert, 0.0))))
    assert np.max(np.abs(residual)) < 1e-12 * scale


# --------------------------------------------------------------------------- number


def _random_occupation(seed):
    return jnp.asarray(np.random.default_rng(seed).uniform(0.0, 1.0, GRID.n))


# physics.md section 3, property 2: the scattering lines conserve sum_j w_j n_j.
# The thermal-bath operator is assembled row by row (Nystrom product integration,
# chosen for its O(h^2) pointwise accuracy at the steps of J): event (i, j) is
# weighted from row i and its reverse from row j, with different cut cells, so
# conservation is exact (to rounding) where no cell is cut -- phonons without a
# cut-off -- and holds to discretization accuracy elsewhere. The classical drive
# shares one rate per event between its two ends, so it conserves exactly.
EXACT_CASES = ["phonons", "drive-delta"]
CONVERGING_CASES = [name for name in BATH_NAMES if name not in EXACT_CASES]


@pytest.mark.parametrize("name", EXACT_CASES)
def test_scattering_conserves_quasiparticle_number(name):
    # (the Gaussian drive line is left out only for its compile time, see
    # test_drive_below_twice_the_gap_has_no_pair_part)
    bath = {**thermal_baths(0.5), **drives()}[name]
    for seed, delta in ((1, 0.8), (2, 1.6)):
        n = _random_occupation(seed)
        i_scat = kinetics.collision(bath, GRID, n, delta, channels=("scattering",))
        net = float(GRID.integrate(i_scat))
        gross = float(GRID.integrate(jnp.abs(i_scat)))
        assert gross > 0.0
        # With one rate per event the weighted sum cancels pairwise, to rounding
        # (observed <= 1e-16 of the gross rate); 1e-13 allows for accumulation over
        # ~N^2 = 2300 terms.
        assert abs(net) < 1e-13 * gross


@pytest.mark.parametrize("name", CONVERGING_CASES)
def test_scattering_conserves_quasiparticle_number_under_refinement(name):
    bath = thermal_baths(0.5)[name]
    ratios = []
    for n_points in (100, 200, 400):
        grid = kinetics.Grid(n=n_points, xi_max=30.0)
        n = kinetics.thermal_distribution(grid, 0.8, 0.7)  # smooth, not in balance with the bath
        i_scat = kinetics.collision(bath, grid, n, 0.8, channels=("scattering",))
        ratios.append(abs(float(grid.integrate(i_scat))) / float(grid.integrate(jnp.abs(i_scat))))
    # the non-conservation is a discretization error of the cut cells: it falls under
    # refinement (observed orders 1.2 .. 3.7) and is below 1e-4 of the gross rate at
    # N = 400 (observed 4e-6 .. 8.5e-5); a missing or doubled process would leave an
    # O(1) fraction
    assert ratios[0] > ratios[1] > ratios[2], ratios
    assert ratios[2] < 1e-4, ratios


@pytest.mark.parametrize("name", BATH_NAMES)
def test_pair_channel_changes_number_with_the_right_sign(name):
    # n thermal at T_qp = 0.5; a colder bath makes quasiparticles recombine (number
    # falls), a hotter one breaks pairs (number rises). Not conserved: |net| / gross
    # must be O(1), far above the 1e-13 of the scattering test.
    delta = 1.0
    n = kinetics.thermal_distribution(GRID, delta, 0.5)
    for t_bath, sign in ((0.25, -1.0), (0.9, +1.0)):
        bath = thermal_baths(t_bath)[name]
        i_pair = kinetics.collision(bath, GRID, n, delta, channels=("pair",))
        net = float(GRID.integrate(i_pair))
        gross = float(GRID.integrate(jnp.abs(i_pair)))
        assert sign * net > 0.1 * gross


def test_drive_below_twice_the_gap_has_no_pair_part():
    delta = 1.0
    n = _random_occupation(3)
    # (the Gaussian line is left out: kinetics.collision is jitted, and the Gaussian's
    # 3 x 32 unrolled scatter updates take XLA 20-40 s to compile on this machine)
    for bath in (drives()["drive-delta"],):  # omega_d = 1.2 < 2 Delta = 2
        i_pair = np.asarray(kinetics.collision(bath, GRID, n, delta, channels=("pair",)))
        np.testing.assert_array_equal(i_pair, 0.0)  # exactly: no state at E' = omega_d - E
    # control: above 2 Delta the same drive breaks pairs
    above = kinetics.ClassicalDrive(omega_d=2.5, power=1e-3)
    i_pair = np.asarray(kinetics.collision(above, GRID, n, delta, channels=("pair",)))
    assert np.max(np.abs(i_pair)) > 1e-5  # ~P = 1e-3 times O(1) coherence and DOS factors


def test_channels_add_up():
    n = _random_occupation(4)
    for bath in (*thermal_baths(0.5).values(), drives()["drive-delta"]):
        both = np.asarray(kinetics.collision(bath, GRID, n, 0.9))
        parts = sum(
            np.asarray(kinetics.collision(bath, GRID, n, 0.9, channels=(c,)))
            for c in ("scattering", "pair")
        )
        # same floating-point terms summed in another order: a few ulps of the largest
        np.testing.assert_allclose(both, parts, rtol=0, atol=1e-13 * np.max(np.abs(both)))


# --------------------------------------------------------------------------- Kaplan


# Kaplan et al., PRB 14, 4854 (1976), T_c = 1, phonons at T = T_qp. Grid: the gap-edge
# integrands have widths sqrt(2 Delta T) >= 0.42 in xi; core = 0.3, n = 200 puts
# ~60 nodes inside that width (spacing 7e-3 near xi = 0).
KAPLAN_GRID = kinetics.Grid(n=200, xi_max=20.0, core=0.3)
KAPLAN_T = np.array([0.2, 0.1, 0.05])
TAU0 = 1.0


@eqx.filter_jit  # one compilation for the three temperatures (eager: ~3x slower)
def _gap_edge_loss_rates(bath, delta, t):
    """Loss rates per quasiparticle at the gap edge (node 0, xi = 0), from the operator.

    With I = 2 [Ma 1 + Mc n + n (Mb 1 + Md n)] and physics.md's brackets:
      scattering only:  Mb = -(M_s N + M_down), Mc = M_s N + M_up, Md = M_down - M_up, so
        loss n_i (1 - n')[(N + 1) M_down + N M_up] gives  rate_s = -2 (Mb @ (1 - n)).
      pair only:        Ma = M_p N, Mb = Mc = -M_p N, Md = -M_p, so
        loss n_i n' (N + 1) M_p gives                      rate_r = -2 ((Mb + Md) @ n).
    NB: -2 (Mb 1 + Md n) (the coefficient of n_i in I) is *not* the loss rate: it also
    contains the Pauli blocking of the gain (n'(N + 1) for absorption, N (1 - n') for
    pair breaking); at node 0 that is a relative exp(-Delta/T) (1.5e-4 at T = 0.2).
    """
    n = kinetics.thermal_distribution(KAPLAN_GRID, delta, t)
    scat = kinetics.bath_bilinear(bath, KAPLAN_GRID, delta, 0.0, channels=("scattering",))
    pair = kinetics.bath_bilinear(bath, KAPLAN_GRID, delta, 0.0, channels=("pair",))
    return -2.0 * (scat.mb[0] @ (1.0 - n)), -2.0 * ((pair.mb[0] + pair.md[0]) @ n)


@pytest.fixture(scope="module")
def kaplan_rates():
    """(T, Delta(T), 1/tau_s, 1/tau_r) at the gap edge, thermal n and phonons at T."""
    deltas = kinetics.equilibrium_gap(KAPLAN_T)
    out = []
    for t, delta in zip(KAPLAN_T, deltas, strict=True):
        bath = kinetics.Phonons(tau0=TAU0, t_ph=t)
        rate_s, rate_r = _gap_edge_loss_rates(bath, jnp.asarray(delta), jnp.asarray(t))
        out.append((float(t), float(delta), float(rate_s), float(rate_r)))
    return out


def _continuum_rates(delta, t):
    """The same two loss rates as 1-D integrals (scipy), written out independently.

    2 integral dxi' = integral dE' rho(E'), rho = E' / sqrt(E'^2 - Delta^2); at E = Delta,
    density coupling (scattering c-, pair c+), J = Omega^2 / tau0:
      1/tau_s = (1/tau0) int_0^inf dW W^2 rho(Delta + W) (1 - Delta/(Delta + W)) N(W) (1 - f)
              = (1/tau0) int_0^inf dW W^(5/2) (2 Delta + W)^(-1/2) N(W) (1 - f(Delta + W)),
      1/tau_r = (1/tau0) int dE' rho(E') (1 + Delta/E') (Delta + E')^2 f(E') (N(Delta + E') + 1)
              = (1/tau0) int_0^inf de (2 Delta + e)^(5/2) e^(-1/2) f(Delta + e) (N + 1),
    the last with e = E' - Delta, substituted e = y^2 to remove the endpoint singularity.
    """

    def bose(x):
        return 1.0 / math.expm1(x) if x < 700 else 0.0

    def fermi(x):
        return 1.0 / (math.exp(x) + 1.0) if x < 700 else 0.0

    def fs(w):
        return w**2.5 / math.sqrt(2 * delta + w) * bose(w / t) * (1.0 - fermi((delta + w) / t))

    def fr(y):
        e = y * y
        return 2.0 * (2 * delta + e) ** 2.5 * fermi((delta + e) / t) * (
            1.0 + bose((2 * delta + e) / t)
        )

    s = quad(fs, 0.0, 60.0 * t, epsabs=0.0, epsrel=1e-13, limit=400)[0]
    r = quad(fr, 0.0, math.sqrt(60.0 * t), epsabs=0.0, epsrel=1e-13, limit=400)[0]
    return s / TAU0, r / TAU0


def test_kaplan_rates_match_the_continuum_integrals(kaplan_rates):
    for t, delta, rate_s, rate_r in kaplan_rates:
        cont_s, cont_r = _continuum_rates(delta, t)
        # The operator's row 0 is the trapezoid rule in u of an integrand that is even
        # in u and smooth, so it converges spectrally (observed ~1e-15 at n = 200). An
        # O(h^2) scheme would be off by ~(h / sqrt(2 Delta T))^2 / 12 ~ 3e-5 here;
        # 1e-8 is far below that and far above quad's 1e-13.
        assert rate_s == pytest.approx(cont_s, rel=1e-8)
        assert rate_r == pytest.approx(cont_r, rel=1e-8)


def test_kaplan_low_temperature_asymptotics(kaplan_rates):
    rel_s, rel_r = [], []
    for t, delta, rate_s, rate_r in kaplan_rates:
        kaplan_s = gamma(3.5) * zeta(3.5) * (2 * delta) ** -0.5 * t**3.5 / TAU0
        kaplan_r = (
            math.sqrt(math.pi) * (2 * delta) ** 2.5 * math.sqrt(t) * math.exp(-delta / t) / TAU0
        )
        rel_s.append(rate_s / kaplan_s - 1.0)
        rel_r.append(rate_r / kaplan_r - 1.0)
        # First correction in T/Delta (expand the integrands of _continuum_rates):
        #   scattering: (1 + W/2Delta)^(-1/2) -> -<W>/(4 Delta), <W> = (7/2) T z(9/2)/z(7/2)
        #   recombination: (1 + e/2Delta)^(5/2) -> +(5/4) <e>/Delta, <e> = T/2
        # Spontaneous and Pauli factors add only exp(-Delta/T) (< 2e-4 at T <= 0.2).
        c_s = -3.5 * zeta(4.5) / zeta(3.5) / (4 * delta)
        c_r = 5.0 / (8.0 * delta)
        if t <= 0.05:
            # the second-order remainder is O((T/Delta)^2): at T = 0.05 the slopes
            # rel / T are within ~4% of c (observed 4% and 2%); allow 10%
            assert rel_s[-1] / t == pytest.approx(c_s, rel=0.1)
            assert rel_r[-1] / t == pytest.approx(c_r, rel=0.1)
    rel_s, rel_r = np.abs(rel_s), np.abs(rel_r)
    # the relative difference falls as T -> 0, roughly halving with T
    assert np.all(np.diff(rel_s) < 0) and np.all(np.diff(rel_r) < 0)
    assert rel_s[-1] < 0.03 and rel_r[-1] < 0.03  # O(T/Delta) ~ 2% at T = 0.05


# --------------------------------------------------------------------------- fast path


def _cut_on_node_deltas(grid, omega):
    """Gaps Delta that put a support end `omega` exactly on a node or the gap edge:
    the pair cut omega - Delta = E_j of row 0, the down cut E_i - omega = Delta, and
    the down cut E_i - omega = E_j of an interior pair of nodes."""
    from scipy.optimize import brentq

    xi = grid.xi
    out = [(omega**2 - xi[j] ** 2) / (2.0 * omega) for j in (1, 3) if xi[j] < omega]
    edge = [(x**2 - omega**2) / (2.0 * omega) for x in xi if x > 1.3 * omega]
    out += [d for d in edge if 0.05 < d < 1.9][:1]
    i = grid.n // 3
    for j in (2, 5):

        def f(d, i=i, j=j):
            return np.hypot(xi[i], d) - np.hypot(xi[j], d) - omega

        if f(0.01) * f(1.9) < 0:
            out.append(brentq(f, 0.01, 1.9, xtol=1e-15))
    return out


@eqx.filter_jit
def _fast_and_reference(bath, deltas, ns):
    """apply / jacobian / d apply / d Delta of the fast path and of the reference forms
    (every covered fraction evaluated, tests/_reference.py), for each (Delta, n)
    (vmapped)."""

    def one(delta, n):
        def fast(d):
            return kinetics.bath_bilinear(bath, GRID, d).apply(n)

        def ref(d):
            return apply_unblocked(kinetics.bath_bilinear(bath, GRID, d), n)

        one_ = jnp.ones_like(delta)
        bil = kinetics.bath_bilinear(bath, GRID, delta)
        return (
            jax.jvp(fast, (delta,), (one_,)),
            jax.jvp(ref, (delta,), (one_,)),
            bil.jacobian(n),
            Bilinear.jacobian(bil, n),  # from the materialized matrices
            apply_blocked(bil, n),
            jacobian_blocked(bil, n),
        )

    return jax.vmap(one)(deltas, ns)


@pytest.mark.parametrize("name", BATH_NAMES)
def test_fast_path_matches_the_reference_form(name):
    """The whole-cell / cut-node split of the covered fractions changes nothing but
    rounding: apply, its Delta derivative (the Jacobian's rank-one term) and the
    Jacobian agree with the form that evaluates every fraction, at gaps that put
    the cut points on nodes, on the gap edge and between nodes."""
    rng = np.random.default_rng(5)
    for t in (0.0, 0.5):
        bath = thermal_baths(t)[name]
        lo, hi = (float(x) for x in bath.support(0.0))
        deltas = [0.0, 1e-3, 0.37, 0.9, 1.7]
        for omega in (lo, hi):
            if 0.0 < omega < np.inf:
                deltas += _cut_on_node_deltas(GRID, omega)
        ns = rng.uniform(0.0, 1.0, (len(deltas), GRID.n))
        (f, df), (r, dr), jf, jr, rb, jb = _fast_and_reference(
            bath, jnp.asarray(deltas), jnp.asarray(ns)
        )
        for k in range(len(deltas)):
            # rounding only: the same terms, summed in another order (observed <= 4e-16)
            np.testing.assert_allclose(f[k], r[k], rtol=0, atol=1e-12 * np.max(np.abs(r[k])))
            np.testing.assert_allclose(jf[k], jr[k], rtol=0, atol=1e-12 * np.max(np.abs(jr[k])))
            np.testing.assert_allclose(rb[k], r[k], rtol=0, atol=1e-12 * np.max(np.abs(r[k])))
            np.testing.assert_allclose(jb[k], jr[k], rtol=0, atol=1e-12 * np.max(np.abs(jr[k])))
            # the Delta derivative carries the cut cells' motion (observed <= 8e-15)
            np.testing.assert_allclose(df[k], dr[k], rtol=0, atol=1e-10 * np.max(np.abs(dr[k])))


# --------------------------------------------------------------------------- node-pair pass


def _node_pair_check(size, names, channel_sets, with_jvp, jit=True):
    """``apply`` (each unordered node pair evaluated once: row blocks paired with the
    blocks after them cyclically, the grid padded to an odd number of blocks) against
    the materialized matrices (every fraction evaluated, all N x N at once), in the
    superconducting and the normal state; optionally their Delta derivatives too.

    jit=False evaluates op by op: JAX compiles each primitive for its shapes once and
    reuses it for every later bath and channel set on the layout, where jit compiles a
    whole program (~20 s of XLA) per bath and channel set. The operations are the same;
    only XLA's fusion (the order of rounding) differs, far inside the tolerances below."""
    from kinetics._collision import _pair_layout

    b, nb, npad = _pair_layout(size)
    assert nb % 2 == 1 and npad >= size and npad - size < nb
    # (cells below the multimode cavity's omega0 = 2, see GRID)
    grid = kinetics.Grid(n=size, xi_max=8.0 if size < 50 else 20.0, core=1.0)
    rng = np.random.default_rng(size)
    deltas = jnp.asarray([0.0, 0.37, 1.7])
    ns = jnp.asarray(rng.uniform(0.0, 1.0, (len(deltas), size)))
    for name in names:
        bath = thermal_baths(0.5)[name]
        for channels in channel_sets:

            def one(delta, n, bath=bath, channels=channels):
                def fast(d):
                    return kinetics.bath_bilinear(bath, grid, d, channels=channels).apply(n)

                def ref(d):
                    bil = kinetics.bath_bilinear(bath, grid, d, channels=channels)
                    return apply_unblocked(bil, n)

                if not with_jvp:
                    return (fast(delta), fast(delta)), (ref(delta), ref(delta))
                one_ = jnp.ones_like(delta)
                return jax.jvp(fast, (delta,), (one_,)), jax.jvp(ref, (delta,), (one_,))

            run = jax.jit(jax.vmap(one)) if jit else jax.vmap(one)
            (f, df), (r, dr) = run(deltas, ns)
            for k in range(len(deltas)):
                # the same terms summed in another order (observed <= 3e-15)
                msg = f"{name} {channels} Delta = {deltas[k]}"
                scale = np.max(np.abs(r[k]))
                np.testing.assert_allclose(f[k], r[k], rtol=0, atol=1e-12 * scale, err_msg=msg)
                dscale = np.max(np.abs(dr[k]))
                np.testing.assert_allclose(df[k], dr[k], rtol=0, atol=1e-10 * dscale, err_msg=msg)


def test_node_pair_pass_matches_the_materialized_form():
    """A padded grid (97 nodes: 5 blocks of 20, 3 padding nodes), both channels, a
    step at the lower support end (current and density coupling) and a Debye cut-off;
    ``test_fast_path_matches_the_reference_form`` covers N = 48 (3 blocks, no padding)
    with the Delta derivatives, the slow test below every bath, layout and channel."""
    names = ["multimode", "tabulated-density", "phonons-debye"]
    _node_pair_check(97, names, [("scattering", "pair")], with_jvp=False)


@pytest.mark.slow
@pytest.mark.parametrize("size", [20, 97, 203])
def test_node_pair_pass_every_layout_and_channel(size):
    """One block (20), padding (97) and 7 blocks of 29 (203), with the Delta derivatives
    (the Jacobian's rank-one term): every bath with both channels on each layout, and
    each channel alone on the padded layout (97: diagonal-block row terms, paired-block
    row and column terms and padding in one pass) for a current-coupled bath with
    J(0) > 0 (the quasi-elastic diagonal term, scattering only) and two density-coupled
    ones (a step at the lower end of J, a Debye cut-off). The layout (block size,
    pairing, padding) does not depend on the channels, and the channel selection
    (``_pair_terms``: which kernels enter the tile) is the same code on every layout
    and for every bath but for the coupling's coherence factors: each channel alone for
    every bath on every layout (54 compiled programs, ~5 s of CPU each) checks no code
    path these 24 leave out. Evaluated op by op (jit=False: 33 s instead of 79 s for the
    one-block layout, measured back to back); the jitted pass is compared in the tests
    above and below."""
    _node_pair_check(size, BATH_NAMES, [("scattering", "pair")], with_jvp=True, jit=False)
    if size == 97:
        singles = ["tabulated-current", "tabulated-density", "phonons-debye"]
        _node_pair_check(size, singles, [("scattering",), ("pair",)], with_jvp=True, jit=False)


def test_node_pair_pass_on_the_benchmark_grid():
    """Phonons + cold bath, the stiff benchmark's set-up (xi_max = 15, T = 0.3: n down to
    1e-22 at the grid's end, where an unguarded padding node once gave NaN) at
    N = 250 (9 blocks of 28, 2 padding nodes): finite and equal to the materialized form."""
    grid = kinetics.Grid(n=250, xi_max=15.0)
    d0 = kinetics.equilibrium_gap(0.3, grid)
    bath = kinetics.Phonons(tau0=6.8e4, t_ph=0.3)
    n = kinetics.thermal_distribution(grid, d0, 0.3) * (1.0 + 0.1 * np.sin(grid.xi))
    bil = kinetics.bath_bilinear(bath, grid, d0)
    f, r = jax.jit(bil.apply)(n), apply_unblocked(bil, n)
    assert np.all(np.isfinite(f))
    np.testing.assert_allclose(f, r, rtol=0, atol=1e-12 * np.max(np.abs(r)))

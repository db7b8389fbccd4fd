"""The line drives (ClassicalDrive, ReadoutDrive): the Galerkin delta line against an
independent quadrature of the same model (physics.md sections 2, 3 and 12), its event
bookkeeping (number, symmetry), detailed balance of the readout drive, smoothness in
Delta and omega_d, and the driven nonlinear steady state under grid refinement.
"""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq

import kinetics
from kinetics._collision import Bilinear

T_QP = 0.9
TAU_IN = 1000.0
POWER = 1e-6  # the perturbative result is linear in P: any value


# --------------------------------------------------------------------------- reference
# delta n(xi) = tau_in I_drive[n_F](xi) (physics.md section 3, stimulated brackets,
# current coupling: scattering c+, pair c-), delta Delta = 2 integral dxi delta n / E /
# (dG_eq/dDelta) (section 2), every integral by scipy quad, written so that no integrand
# is singular: the up-scattering term integrated over its lower state xi (E*/xi* >=
# (Delta + omega)/sqrt(omega^2 + 2 omega Delta)), the down-scattering term over its target
# xi' (dE = dE' turns the 1/sqrt(E - Delta - omega) of the target into 1/xi(E' + omega)),
# the pair term over the lower partner E <= omega/2 (its two halves, E' / (xi xi') and
# E / (xi xi'), add to omega / (xi xi') in the variable xi of the lower partner).


def _nf(e):
    return 0.5 * (1.0 - np.tanh(0.5 * e / T_QP))


def _g_eq(d):
    def f(x):
        e = np.hypot(x, d)
        return np.tanh(e / (2 * T_QP)) / e - (np.tanh(x / 2) / x if x > 0 else 0.5)

    # tail beyond 60: n_F ~ e^-67, tanh = 1, integral of (1/E - 1/xi) in closed form
    tail = np.log(2 * 60 / (60 + np.hypot(60, d)))
    return quad(f, 0, 60, limit=400, epsabs=1e-14, epsrel=1e-13)[0] + tail


def _g_eq_slope(d):
    def f(x):
        e = np.hypot(x, d)
        return (d / e) * (1 / np.cosh(e / (2 * T_QP)) ** 2 / (2 * T_QP * e)
                          - np.tanh(e / (2 * T_QP)) / e**2)

    return quad(f, 0, 60, limit=400, epsabs=1e-14, epsrel=1e-13)[0] - d / (2 * 60**2)


D0 = brentq(_g_eq, 0.5, 1.2, xtol=1e-15)  # Delta(T_qp = 0.9) = 0.92840
SLOPE = _g_eq_slope(D0)


def _moment(w):
    """integral dxi I_drive[n_F](xi) / E_xi per unit power, delta line at w."""
    d = D0

    def xi_of(e):
        return np.sqrt(max(e * e - d * d, 0.0))

    def up(x):
        e = np.hypot(x, d)
        ep = e + w
        return 0.5 * (1 + d * d / (e * ep)) * (ep / xi_of(ep)) * (_nf(ep) - _nf(e)) / e

    def down(xp):  # over the target xi'
        ep = np.hypot(xp, d)
        e = ep + w
        return 0.5 * (1 + d * d / (e * ep)) * (_nf(ep) - _nf(e)) / xi_of(e)

    kw = dict(limit=400, epsabs=1e-15, epsrel=1e-12)
    total = quad(up, 0, 50, **kw)[0] + quad(down, 0, 50, **kw)[0]
    if w > 2 * d:

        def pair(x):
            e = np.hypot(x, d)
            ep = w - e
            return 0.5 * (1 - d * d / (e * ep)) * (w / xi_of(ep)) * (1 - _nf(e) - _nf(ep)) / e

        total += quad(pair, 0, xi_of(w / 2), **kw)[0]
    return 2.0 * total


@functools.cache  # the N = 800 errors serve both tests below: each computed once
def reference(w, width=None):
    """delta Delta / Delta_0 (exact linear response) of the drive at power POWER."""
    if width is None:
        m = _moment(w)
    else:  # the line is a superposition of delta lines (40 Gauss-Hermite nodes)
        x, wt = np.polynomial.hermite_e.hermegauss(40)
        m = sum(wi * _moment(w + width * xi) for xi, wi in zip(x, wt, strict=True))
        m /= np.sqrt(2 * np.pi)
    return 2.0 * TAU_IN * POWER * m / SLOPE / D0


@eqx.filter_jit
def _project_value(model):
    dn = kinetics.perturbative_delta_n(model)
    return kinetics.gap_change_linear_response(model, dn)


@functools.cache
def _relative_error(w, width, n):
    kw = {} if width is None else dict(line="gaussian", width=width)
    drive = kinetics.ClassicalDrive(omega_d=w * D0, power=POWER, **kw)
    model = kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=[drive], grid=kinetics.Grid(n=n))
    return float(_project_value(model)) / reference(w * D0, width) - 1.0


CASES = [(0.5, None), (1.5, None), (2.5, None), (1.5, 0.02)]


@pytest.mark.parametrize(("w", "width"), CASES)
def test_perturbative_gap_change_matches_quadrature(w, width):
    # Measured relative errors (N = 400, 800): 1.8e-4, 4.4e-5 (omega_d = 0.5 Delta_0);
    # 4.3e-6, 1.1e-6 (1.5); -1.4e-6, -3.1e-7 (2.5); 4.4e-6, 1.2e-6 (Gaussian 0.02): O(h^2)
    # (the old node-deposit line gave 4-11 % at N = 400 and 3.5x at N = 1600). The
    # asserted 1 % is the brief's; the fall by >= 3 per doubling asserts order >= 1.6.
    errors = [_relative_error(w, width, n) for n in (400, 800)]
    assert abs(errors[0]) < 1e-2, errors
    assert abs(errors[1]) < abs(errors[0]) / 3.0, errors


@pytest.mark.slow
@pytest.mark.parametrize(("w", "width"), CASES)
def test_perturbative_gap_change_converges_at_1600(w, width):
    # N = 1600: 1.1e-5, 3.8e-7, 6.7e-8, 3.8e-7 (below the N = 800 values, table above);
    # ~1e-7 is where the reference's own accuracy and Delta_0 on the grid start to show
    e800, e1600 = (_relative_error(w, width, n) for n in (800, 1600))
    assert abs(e1600) < abs(e800) < 1e-2, (e800, e1600)


# --------------------------------------------------------------------------- structure

GRID = kinetics.Grid(n=64, xi_max=20.0, core=1.0)


def _random_occupation(seed, grid=GRID):
    return jnp.asarray(np.random.default_rng(seed).uniform(0.0, 1.0, grid.n))


def _drives():
    return {
        "classical": kinetics.ClassicalDrive(omega_d=2.5, power=1e-3),
        "classical-small-omega": kinetics.ClassicalDrive(omega_d=0.05, power=1e-3),
        "readout": kinetics.ReadoutDrive(omega_d=2.5, n_bar=3.0, c_phot=1e-3),
        "readout-gaussian": kinetics.ReadoutDrive(
            omega_d=0.7, n_bar=3.0, c_phot=1e-3, line="gaussian", width=0.05
        ),
    }


@pytest.mark.parametrize("name", list(_drives()))
def test_scattering_conserves_number_to_rounding(name):
    bath = _drives()[name]
    for seed, delta in ((1, 0.8), (2, 1.6)):
        n = _random_occupation(seed)
        i_scat = kinetics.collision(bath, GRID, n, delta, channels=("scattering",))
        net = float(GRID.integrate(i_scat))
        gross = float(GRID.integrate(jnp.abs(i_scat)))
        assert gross > 0.0
        # one rate per event, the same weight S_rc at both ends (spontaneous emission
        # included): the weighted sum cancels pairwise, to rounding (~N^2 terms)
        assert abs(net) < 1e-13 * gross


# one compiled program per channel, not op-by-op dispatch (45 s -> 16 s on a busy machine)
_matrix = eqx.filter_jit(
    lambda bath, channel, attr: getattr(kinetics.bath_bilinear(bath, GRID, 0.9, 0.0, channel), attr)
)


def test_one_rate_per_event():
    for bath in (_drives()["classical"], _drives()["classical-small-omega"]):
        for channel, attr in (("scattering", "mc"), ("pair", "ma")):
            m = np.asarray(_matrix(bath, (channel,), attr))
            wm = np.asarray(GRID.weights)[:, None] * m
            np.testing.assert_allclose(wm, wm.T, rtol=0, atol=1e-14 * np.max(np.abs(wm)))
            if channel == "scattering" or float(bath.omega_d) > 1.8:
                assert np.max(np.abs(wm)) > 0.0


def test_readout_without_spontaneous_terms_is_the_classical_drive():
    n = _random_occupation(3)
    read = kinetics.ReadoutDrive(omega_d=2.5, n_bar=7.0, c_phot=2e-4, spontaneous=False)
    classical = kinetics.ClassicalDrive(omega_d=2.5, power=7.0 * 2e-4)
    a = np.asarray(kinetics.collision(read, GRID, n, 0.9))
    b = np.asarray(kinetics.collision(classical, GRID, n, 0.9))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-14 * np.max(np.abs(b)))


@pytest.mark.parametrize("name", ["classical", "readout"])
def test_fast_apply_matches_the_bilinear_matrices_and_jacobian(name):
    bath = _drives()[name]
    n = _random_occupation(4)
    bil = kinetics.bath_bilinear(bath, GRID, 0.9)
    fast = np.asarray(bil.apply(n))
    dense = Bilinear(bil.ma, bil.mb, bil.mc, bil.md)
    scale = np.max(np.abs(fast))
    np.testing.assert_allclose(np.asarray(dense.apply(n)), fast, rtol=0, atol=1e-13 * scale)
    jac = np.asarray(jax.jacfwd(bil.apply)(n))
    np.testing.assert_allclose(np.asarray(bil.jacobian(n)), jac, rtol=0,
                               atol=1e-13 * np.max(np.abs(jac)))


def test_readout_detailed_balance_converges_at_second_order():
    # n_bar = n_B(omega/T) and n = n_F(E/T): every event's bracket vanishes in the
    # continuum; on the grid the upper state's occupation is the linear interpolant of
    # the node values, so the balance holds to O(h^2) (not to rounding: the node pair
    # (i, j) stands for events at E* between nodes; see _drive_entries). Measured
    # residual / stimulated rate, in L1 (N = 100, 200, 400): 8.2e-3, 3.1e-3, 9.1e-4 at
    # omega = 0.4 and 9.4e-3, 3.2e-3, 9.9e-4 at omega = 2.5 (observed order 1.4, then 1.7).
    t = 0.5
    ratios = []
    for nn in (100, 200, 400):
        grid = kinetics.Grid(n=nn, xi_max=20.0, core=1.0)
        for omega in (0.4, 2.5):
            nbar = 1.0 / np.expm1(omega / t)
            bath = kinetics.ReadoutDrive(omega_d=omega, n_bar=nbar, c_phot=1e-3)
            n_f = kinetics.thermal_distribution(grid, 0.9, t)
            res = np.asarray(kinetics.collision(bath, grid, n_f, 0.9))
            stim = kinetics.ReadoutDrive(omega_d=omega, n_bar=nbar, c_phot=1e-3,
                                         spontaneous=False)
            gross = np.asarray(kinetics.collision(stim, grid, n_f, 0.9))
            ratios.append(float(grid.integrate(jnp.abs(res)) / grid.integrate(jnp.abs(gross))))
    ratios = np.reshape(ratios, (3, 2))
    assert np.all(ratios[0] < 2e-2), ratios
    assert np.all(ratios[1:] < ratios[:-1] / 2.5), ratios  # order >= 1.3, and rising


@pytest.mark.parametrize("name", ["classical", "readout-gaussian"])
def test_smooth_in_delta_and_omega(name):
    bath = _drives()[name]
    n = _random_occupation(5)

    def f(delta, omega):
        b = eqx.tree_at(lambda x: x.omega_d, bath, omega)
        return kinetics.bath_bilinear(b, GRID, delta).apply(n)

    # compiled once each (op by op, every operation compiles by itself: 144 s -> 80 s for
    # the two drives on a busy machine);
    # Delta, omega and the tangents are arrays, so new values do not recompile
    derivative = jax.jit(lambda d, w, td, tw: jax.jvp(f, (d, w), (td, tw))[1])
    f = jax.jit(f)
    d, w = jnp.asarray(0.9), jnp.asarray(float(bath.omega_d))
    for tangent in ((1.0, 0.0), (0.0, 1.0)):
        jvp = derivative(d, w, *map(jnp.asarray, tangent))
        h = 1e-6
        fd = (f(d + h * tangent[0], w + h * tangent[1])
              - f(d - h * tangent[0], w - h * tangent[1])) / (2 * h)
        scale = np.max(np.abs(np.asarray(jvp)))
        assert scale > 0.0
        # central difference: truncation ~h^2 f''' and rounding ~1e-16 |f| / h ~ 1e-10
        # relative; a jump (a target crossing a node discontinuously) would leave O(1)
        np.testing.assert_allclose(np.asarray(fd), np.asarray(jvp), rtol=0, atol=1e-6 * scale)


def test_readout_drive_is_registered_with_rate_and_number_parameters():
    cls = kinetics.bath_types()["readout_drive"]
    assert cls is kinetics.ReadoutDrive
    specs = cls.parameter_specs()
    assert specs["c_phot"].dimension == "rate" and specs["n_bar"].time_dependent
    assert specs["spontaneous"].default is True
    # "1e4 /s" is a rate the unit parser accepts (T_c = 1.19 K: hbar/(k_B T_c) = 6.4 ps)
    value, unit = kinetics.parse_quantity("1e4 /s", name="c_phot")
    rate = kinetics.to_internal(value, unit, dimension="rate", name="c_phot", t_c_kelvin=1.19)
    assert rate == pytest.approx(1e4 * 6.418e-12, rel=1e-3)


# --------------------------------------------------------------------------- nonlinear


@pytest.mark.slow
def test_nonlinear_steady_state_under_refinement():
    # The driven nonlinear state at P tau_in = 1e-3 (delta Delta / Delta_0 = 1.8e-3). Its
    # second order in P is log-divergent for a delta line: the first-order delta n has the
    # target's 1/sqrt(E - Delta - omega) and the gap edge E = Delta up-scatters exactly
    # onto it, so tau_in I[delta n] ~ 1/xi at xi -> 0; the full solution is cut off in a
    # layer of width ~(2 P tau_in)^2 Delta that no grid resolves. Hence the refinement
    # adds ~ b P^2 ln 2 per doubling instead of converging (measured: the second-order
    # moment grows 6e-4 of the first-order one per doubling at this P; the state itself
    # gave 1.76182e-3, 1.76034e-3, 1.75970e-3, 1.75857e-3, 1.75786e-3 at N = 50, 100,
    # 200, 400, 800: changes 8.4e-4, 3.6e-4, 6.4e-4 and 4.1e-4 of it, against a
    # perturbative 1.77184e-3 +- 2e-8). Asserted: each doubling changes delta Delta by
    # < 2e-3 of it, and the state stays within 2 % of the (converged) perturbative value.
    # Run on N = 100, 200, 400 (N = 800 took ~3/4 of this test's ~8 min; the bound per
    # doubling holds with the same margin on every level measured).
    import solvers

    vals, pert = [], []
    for nn in (100, 200, 400):
        drive = kinetics.ClassicalDrive(omega_d=1.5 * D0, power=POWER)
        model = kinetics.Model(t_qp=T_QP, tau_in=TAU_IN, baths=[drive], grid=kinetics.Grid(n=nn))
        ds = solvers.steady_state(model, tol=1e-12)
        vals.append(float(ds["relative_gap_change"]))
        pert.append(float(_project_value(model)))
    vals = np.asarray(vals)
    assert np.all(np.abs(np.diff(vals)) < 2e-3 * np.abs(vals[-1])), vals
    assert np.all(np.abs(vals / np.asarray(pert) - 1.0) < 2e-2), (vals, pert)

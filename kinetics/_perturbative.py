"""Perturbative steady state (docs/physics.md section 5; paper eqs. (14), (15), (17), (18)).

To lowest order in the coupling, with Delta held at Delta_0 = Delta(T_qp), the steady
state of the kinetic equation (paper eq. (6)) is

    delta n(xi) = tau_in * sum_b I_b[n_F](xi),                                         (14)

and the gap responds through the linearized gap equation (docs/physics.md section 2):

    GL:    delta Delta / Delta_0 = -(1 / (1 - T_qp)) integral_0^inf dxi delta n(xi) / E_xi
    exact: delta Delta = 2 integral_0^inf dxi delta n(xi) / E_xi / (dG_eq/dDelta)(Delta_0).

The GL form is *half* of the paper's eq. (18) as printed (docs/physics.md section 2
explains why: the paper's factor 2 is a normalization of its eq. (1)).

Two independent implementations of eq. (14) live here:

- ``perturbative_delta_n``: the operator form, tau_in * I_b[n_F] with the project's
  discretized collision operator (``kinetics._collision``), on the model's xi grid (JAX);
- ``literal_delta_n``: the paper's eq. (14) with eq. (15), implemented literally as a
  1-D integral over the photon energy Omega for each quasiparticle energy E (numpy), by
  adaptive Gauss-Legendre quadrature with every singularity removed analytically.
  It shares no code with the collision operator and serves as its reference.

Units: energies and temperatures in T_c, times in hbar/(k_B T_c); delta n is a
dimensionless occupation.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from ._baths import AbstractBosonBath
from ._errors import ParameterError, PhysicsWarning, check_nonnegative, check_positive
from ._gap import equilibrium_gap_slope, gap_function_ddelta

# ---------------------------------------------------------------------------------------
# The literal eq. (14)/(15): reference quadrature (numpy)
# ---------------------------------------------------------------------------------------

_GL_ORDER = 20  # Gauss-Legendre points per panel
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_GL_ORDER)
_TAIL = 70.0  # the Omega range is cut where exp(-Omega / T) < exp(-70) ~ 4e-31
_MAX_LEVELS = 60  # bisection levels of the adaptive quadrature
_MIN_PANEL = 1e-13  # panels narrower than this (relative to their range) are accepted
_ROUNDING = 1e-13  # rounding floor of a panel, relative to the terms delta N cancels
_MAX_PANELS = 200_000  # guard of the adaptive quadrature (per chunk of energies)
_CHUNK = 64  # energies integrated together (memory ~ _CHUNK x panels x 20 points)

# The three terms of K(Omega, E) = f(Omega, E) + f(-Omega, E) - f(-Omega, -E):
_DOWN, _UP, _PAIR = 0, 1, 2


def _fermi(x):
    """n_F(x) = 1 / (exp(x) + 1), written with exp(-|x|) (no overflow, exact tails)."""
    e = np.exp(-np.abs(x))
    return np.where(x > 0, e / (1.0 + e), 1.0 / (1.0 + e))


def _fermi_difference(a, b, d):
    """n_F(a) - n_F(b) without cancellation (a, b arrays of E / T; d = a - b given exactly).

    n_F(a) - n_F(b) = -expm1(d) n_F(a) (1 - n_F(b))      for d = a - b <= 0,
                    =  expm1(-d) n_F(b) (1 - n_F(a))     for d > 0
    (both branches only ever exponentiate a non-positive number). The difference d is
    passed separately: recomputing it as a - b would lose its relative precision when
    |d| << |a| and spoil delta N(Omega) * (n_F - n_F) as Omega -> 0.
    """
    neg = d <= 0
    lower = -np.expm1(np.where(neg, d, 0.0)) * _fermi(a) * _fermi(-b)
    upper = np.expm1(np.where(neg, 0.0, -d)) * _fermi(b) * _fermi(-a)
    return np.where(neg, lower, upper)


def _bose(x):
    """n_B(x) = 1 / (exp(x) - 1) for x > 0."""
    return 1.0 / np.expm1(x)


def _f_term(term, s, e, gap_excess, delta, t_qp, coherence_sign):
    """One of the three f's of eq. (15), times |dOmega/ds|, in the variable s.

    For each term the energy E' of the other quasiparticle state (the argument of nu_qp)
    is written E' = Delta + s^2, i.e.

        f(Omega, E):    Omega = (E - Delta) - s^2,  E' = E - Omega   (down-scattering)
        f(-Omega, E):   Omega = s^2 - (E - Delta),  E' = E + Omega   (up-scattering)
        f(-Omega, -E):  Omega = (E + Delta) + s^2,  E' = Omega - E   (pair processes)

    (the substitutions Omega = edge -+ s^2 at the edges Omega = E - Delta, Delta - E and
    E + Delta where nu_qp(E') has its inverse-square-root singularity). Then

        nu_qp(E') / nu_F * |dOmega / ds| = 2 E' / sqrt(s^2 (E' + Delta)) * 2 s
                                         = 4 E' / sqrt(E' + Delta),

    which is smooth, and so is every other factor. Returns (Omega, f * |dOmega/ds|), with
    f = nu_qp(E')/nu_F * (1/2)(1 + c Delta^2 / (E_s E')) [n_F(E'/T) - n_F(E_s/T)], E_s = +-E
    the signed second argument of f and c = +1 (current coupling, eq. (15) as printed) or
    -1 (density coupling: scattering and pair coherence factors swapped).
    """
    s2 = s * s
    e_other = delta + s2
    if term == _DOWN:
        omega, e_signed = gap_excess - s2, e
    elif term == _UP:
        omega, e_signed = s2 - gap_excess, e
    else:
        omega, e_signed = e + delta + s2, -e
    omega = np.maximum(omega, 1e-300)  # only ever active at a panel end (never sampled)
    omega_signed = omega if term == _DOWN else -omega
    dos_jac = 4.0 * e_other / np.sqrt(e_other + delta)
    if delta > 0:
        coherence = 0.5 * (1.0 + coherence_sign * delta * delta / (e_signed * e_other))
    else:  # normal state: both factors are 1/2 (and E = E' = 0 is allowed)
        coherence = np.full(np.broadcast(s, e).shape, 0.5)
    # n_F(E'/T) - n_F(E_s/T): the exponent difference is (E' - E_s)/T = -Omega_signed / T,
    # computed from Omega itself so that delta N(Omega) * (difference) stays finite and
    # accurate as Omega -> 0.
    occupation_difference = _fermi_difference(
        e_other / t_qp, e_signed / t_qp, -omega_signed / t_qp
    )
    return omega, dos_jac * coherence * occupation_difference


@eqx.filter_jit
def _bath_values_jit(bath, omega, t):
    return bath.spectral_density(omega, t), bath.occupation(omega, t)


def _bath_values(bath: AbstractBosonBath, omega, t):
    """(J(Omega), N(Omega)) from the bath's public methods, as numpy arrays.

    The flattened energies are padded to a power of two so that the jitted evaluation
    compiles for a handful of shapes only (eager JAX would compile every new shape).
    """
    flat = np.asarray(omega, dtype=np.float64).reshape(-1)
    size = max(1024, 1 << int(np.ceil(np.log2(max(flat.size, 1)))))
    padded = np.full(size, flat[0] if flat.size else 1.0)
    padded[: flat.size] = flat
    jj, occ = _bath_values_jit(bath, jnp.asarray(padded), jnp.asarray(t, dtype=jnp.float64))
    jj = np.asarray(jj)[: flat.size].reshape(np.shape(omega))
    occ = np.asarray(occ)[: flat.size].reshape(np.shape(omega))
    return jj, occ


def _term_range(term, e, gap_excess, delta, lo, hi):
    """Range [s0, s1] of s for one term, per energy (empty where s1 <= s0)."""
    if term == _DOWN:  # Omega in [lo, hi] and Omega < E - Delta
        s0 = np.sqrt(np.maximum(gap_excess - hi, 0.0))
        s1 = np.sqrt(np.maximum(gap_excess - lo, 0.0))
    elif term == _UP:  # Omega in [lo, hi]
        s0 = np.sqrt(gap_excess + lo)
        s1 = np.sqrt(gap_excess + hi)
    else:  # Omega in [lo, hi] and Omega > E + Delta
        s0 = np.sqrt(np.maximum(lo - e - delta, 0.0))
        s1 = np.sqrt(np.maximum(hi - e - delta, 0.0))
    return s0, s1


def _s_of_omega(term, omega, e, gap_excess, delta):
    """Inverse map Omega -> s of `_f_term` (NaN where Omega is outside the term)."""
    with np.errstate(invalid="ignore"):
        if term == _DOWN:
            return np.sqrt(gap_excess - omega)
        if term == _UP:
            return np.sqrt(gap_excess + omega)
        return np.sqrt(omega - e - delta)


class _Setup(NamedTuple):
    """What the quadrature of one chunk of energies needs (see literal_delta_n)."""

    bath: AbstractBosonBath
    t: float
    t_qp: float
    delta: float
    coherence_sign: float
    lo: float
    hi: float
    tail: float
    extra: np.ndarray
    rtol: float


def literal_delta_n(bath, t_qp, tau_in, delta, energies, t=0.0, *, rtol=1e-13):
    """delta n(E) of the paper's eq. (14) with eq. (15), computed literally [dimensionless].

        delta n(E) = tau_in integral_0^inf dOmega J(Omega) delta N(Omega) K(Omega, E),   (14)
        K(Omega, E) = f(Omega, E) + f(-Omega, E) - f(-Omega, -E),
        f(Omega, E) = theta(E - Omega - Delta) nu_qp(E - Omega)/nu_F
                      (1/2)(1 + Delta^2 / (E (E - Omega)))
                      [n_F((E - Omega)/T_qp) - n_F(E/T_qp)],                              (15)

    with nu_qp(E)/nu_F = 2|E| / sqrt(E^2 - Delta^2) and
    delta N(Omega) = N_bath(Omega) - n_B(Omega / T_qp). The three terms are
    down-scattering E -> E - Omega, up-scattering E -> E + Omega, and pair breaking /
    recombination with a partner at Omega - E. Eq. (15) as printed is for current
    coupling (photons: scattering factor c+, pair factor c-); for a bath with
    ``coupling == "density"`` the sign of Delta^2 in the coherence factor of f is flipped,
    which swaps the two factors.

    This is a reference implementation (numpy, not differentiable, not jit-able) that
    shares no code with the collision operator: for each E it integrates over Omega by
    adaptive Gauss-Legendre quadrature (20 points per panel, bisection until two levels
    agree to `rtol` of the integral of |integrand|). The Omega range of each term is
    split at the support ends of J (the multimode cavity's step at omega0), at
    Omega = E - Delta (end of f(Omega, E)) and Omega = E + Delta (start of f(-Omega, -E)),
    and at the narrow features of J (``bath.quadrature_breakpoints``: a single-mode
    line's centre and half widths, a table's nodes; a quadrature aid only); the
    inverse-square-root singularities of nu_qp (at those edges, and at Omega -> 0 for
    E = Delta in f(-Omega, E)) are removed by the substitutions Omega = edge -+ s^2.
    delta N ~ 1/Omega as Omega -> 0 is paired with the factor [n_F - n_F] ~ Omega,
    computed without cancellation. Where J reaches to infinity the range is cut at
    Omega = E + Delta + 70 max(T_qp, T_bath) (the integrand is below exp(-70) there).

    **Arguments:**

    - `bath`: a boson bath (``kinetics.AbstractBosonBath``: MultimodeCavity,
      SingleModeCavity, TabulatedBath, Phonons, or a user's own), taken as static;
      only its public methods ``spectral_density``, ``support``, ``occupation``,
      ``temperature``, ``quadrature_breakpoints`` and its ``coupling`` are used.
      Not for a ``ClassicalDrive`` (no spontaneous processes: not of the form (14)).
    - `t_qp`: quasiparticle temperature T_qp [T_c], > 0.
    - `tau_in`: inelastic relaxation time [hbar/(k_B T_c)], > 0.
    - `delta`: the gap Delta [T_c], >= 0 (normally Delta_0 = Delta(T_qp)).
    - `energies`: quasiparticle energies E >= Delta [T_c], any shape.
    - `t`: time [hbar/(k_B T_c)] at which time-dependent bath parameters are taken.
    - `rtol`: relative accuracy goal of the quadrature (per energy, relative to the
      integral of the absolute integrand).

    Returns delta n(E) as a numpy array of the shape of `energies`.
    """
    if not isinstance(bath, AbstractBosonBath):
        raise ParameterError(
            f"literal_delta_n: eq. (14) needs a boson bath with J(Omega) and N(Omega) "
            f"(a kinetics.AbstractBosonBath); got a {type(bath).__name__}. A ClassicalDrive "
            "has only stimulated processes of a line, so eq. (14) does not apply; use "
            "perturbative_delta_n (tau_in * I_drive[n_F]) instead."
        )
    coupling = bath.coupling
    if coupling not in ("current", "density"):
        raise ParameterError(f"bath.coupling must be 'current' or 'density'; got {coupling!r}.")
    coherence_sign = 1.0 if coupling == "current" else -1.0
    t_qp = check_positive("t_qp", t_qp, "[T_c]")
    tau_in = check_positive("tau_in", tau_in, "[hbar/(k_B T_c)]")
    delta = check_nonnegative("delta", delta, "[T_c]")
    check_positive("rtol", rtol)
    shape = np.shape(energies)
    e = np.asarray(energies, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(e)):
        raise ParameterError("literal_delta_n: energies must be finite.")
    if np.any(e < delta * (1.0 - 1e-12)):
        raise ParameterError(
            f"literal_delta_n: energies must be >= Delta = {delta:g} [T_c]; the smallest is "
            f"{e.min():g}."
        )
    e = np.maximum(e, delta)
    if e.size == 0:
        return np.zeros(shape)

    lo, hi = (float(x) for x in bath.support(t))
    lo = max(lo, 0.0)
    t_bath = check_nonnegative("bath temperature", float(bath.temperature(t)))
    setup = _Setup(
        bath=bath,
        t=t,
        t_qp=t_qp,
        delta=delta,
        coherence_sign=coherence_sign,
        lo=lo,
        hi=hi,
        tail=_TAIL * max(t_qp, t_bath),
        extra=np.asarray(bath.quadrature_breakpoints(t), dtype=np.float64),
        rtol=rtol,
    )
    result = np.empty(e.size)
    unconverged = 0
    for k in range(0, e.size, _CHUNK):  # bounded memory: a chunk of energies at a time
        result[k : k + _CHUNK], bad = _literal_chunk(setup, e[k : k + _CHUNK])
        unconverged += bad
    if unconverged:
        warnings.warn(
            f"literal_delta_n: {unconverged} quadrature panels did not reach rtol = {rtol:g}.",
            PhysicsWarning,
            stacklevel=2,
        )
    return (tau_in * result).reshape(shape)


def _literal_chunk(c: _Setup, e):
    """Eq. (14)/(K) at the energies `e` (1-D): (integral without tau_in, unconverged count)."""
    delta = c.delta
    gap_excess = e - delta  # E - Delta >= 0
    hi_e = np.minimum(c.hi, e + delta + c.tail)  # per energy: the cut of an infinite support

    def integrand(term, rows, s):
        """Signed integrand of term `term` at energies e[rows] (rows broadcast with s)."""
        omega, f = _f_term(term, s, e[rows], gap_excess[rows], delta, c.t_qp, c.coherence_sign)
        jj, occ = _bath_values(c.bath, omega, c.t)
        n_b = _bose(omega / c.t_qp)
        sign = -1.0 if term == _PAIR else 1.0
        # the value, and the size of the terms that delta N = N - n_B cancels (rounding scale)
        return sign * jj * (occ - n_b) * f, jj * (np.abs(occ) + n_b) * np.abs(f)

    def gauss(term, rows, a, b):
        """Gauss-Legendre integrals over the panels [a, b]: value, |value|, rounding scale."""
        half = 0.5 * (b - a)
        s = (0.5 * (a + b))[:, None] + half[:, None] * _GL_X[None, :]
        v, gross = integrand(term, rows[:, None], s)
        return half * (v @ _GL_W), half * (np.abs(v) @ _GL_W), half * (gross @ _GL_W)

    # Initial panels: each term's s range split at the mapped breakpoints; a range with
    # few breakpoints is further cut in four (a first look for the error estimate).
    state = {}
    l1 = np.zeros(e.size)
    for term in (_DOWN, _UP, _PAIR):
        s0, s1 = _term_range(term, e, gap_excess, delta, c.lo, hi_e)
        rows, lefts, rights, spans = [], [], [], []
        for i in np.nonzero(s1 > s0)[0]:
            pts = [s0[i], s1[i]]
            if c.extra.size:
                sb = _s_of_omega(term, c.extra, e[i], gap_excess[i], delta)
                pts += [x for x in sb if np.isfinite(x) and s0[i] < x < s1[i]]
            pts = np.unique(np.asarray(pts))
            if len(pts) < 8:
                pts = np.concatenate(
                    [np.linspace(pts[k], pts[k + 1], 5)[:-1] for k in range(len(pts) - 1)]
                    + [pts[-1:]]
                )
            rows.append(np.full(len(pts) - 1, i))
            lefts.append(pts[:-1])
            rights.append(pts[1:])
            spans.append(np.full(len(pts) - 1, s1[i] - s0[i]))
        if not rows:
            continue
        rows, a, b = np.concatenate(rows), np.concatenate(lefts), np.concatenate(rights)
        span = np.concatenate(spans)
        val, absval, _ = gauss(term, rows, a, b)
        np.add.at(l1, rows, absval)
        state[term] = (rows, a, b, span, val)

    # Adaptive bisection: a panel is done when its two halves agree with it.
    scale = np.where(l1 > 0, l1, 1.0)
    result = np.zeros(e.size)
    unconverged = 0
    for term, (rows, a, b, span, val) in state.items():
        for _ in range(_MAX_LEVELS):
            if rows.size == 0:
                break
            if rows.size > _MAX_PANELS:
                raise RuntimeError(
                    "literal_delta_n: the adaptive quadrature does not converge (too many "
                    "panels); J(Omega) may have a feature the breakpoints do not cover."
                )
            mid = 0.5 * (a + b)
            both = np.concatenate([rows, rows])
            v2, _, gross2 = gauss(term, both, np.concatenate([a, mid]), np.concatenate([mid, b]))
            left, right = v2[: rows.size], v2[rows.size :]
            children = left + right
            err = np.abs(children - val)
            width = b - a
            # goal: rtol of the energy's integral of |integrand|, shared out by width; the
            # second bound is the rounding floor of the panel (delta N = N - n_B is a
            # difference: beyond eps * (N + n_B) bisection cannot improve anything, and at
            # T_bath = T_qp the integrand is rounding noise only)
            tol = np.maximum(
                c.rtol * scale[rows] * width / span,
                _ROUNDING * (gross2[: rows.size] + gross2[rows.size :]),
            )
            done = (err <= tol) | (width <= _MIN_PANEL * span)
            unconverged += int(np.count_nonzero((err > tol) & done))
            np.add.at(result, rows[done], children[done])
            keep = ~done
            rows = np.concatenate([rows[keep], rows[keep]])
            a = np.concatenate([a[keep], mid[keep]])
            b = np.concatenate([mid[keep], b[keep]])
            span = np.concatenate([span[keep], span[keep]])
            val = np.concatenate([left[keep], right[keep]])
        else:
            unconverged += rows.size
            np.add.at(result, rows, val)
    return result, unconverged


# ---------------------------------------------------------------------------------------
# Operator form and the gap response (JAX)
# ---------------------------------------------------------------------------------------


def perturbative_delta_n(model, t=0.0):
    """delta n(xi_j) = tau_in * sum_b I_b[n_F](xi_j) on the model's grid [dimensionless].

    Paper eq. (14) in operator form (docs/physics.md sections 3 and 5): the lowest-order
    steady state of the kinetic equation with Delta held at Delta_0 = ``model.delta0``
    (the equilibrium gap at T_qp on the model's grid) and n_F = ``model.thermal_state()``.
    I_b is the project's discretized collision operator (``kinetics.collision``); for a
    static bath it is exactly linear in delta N = N_b - n_B(Omega/T_qp) and vanishes at
    T_b = T_qp (detailed balance). A ``ClassicalDrive`` is included as tau_in * I_drive[n_F].

    - `model`: a ``kinetics.Model`` with ``tau_in`` [hbar/(k_B T_c)] not None.
    - `t`: time [hbar/(k_B T_c)] at which time-dependent bath parameters are taken.

    Returns delta n on the grid nodes xi_j, shape (grid.n,). JAX, jit-compatible.
    """
    if model.tau_in is None:
        raise ParameterError(
            "perturbative_delta_n needs a relaxation time: the perturbative steady state "
            "delta n = tau_in I[n_F] (paper eq. (14)) is defined by Model.tau_in, which is None."
        )
    delta = model.delta0
    return model.tau_in * model.collision(model.thermal_state(delta), delta, t)


def _check_delta_n(model, delta_n):
    delta_n = jnp.asarray(delta_n)
    if delta_n.shape != (model.grid.n,):
        raise ParameterError(
            f"delta_n must hold one value per grid node, shape ({model.grid.n},); "
            f"got shape {delta_n.shape}."
        )
    return delta_n


def gap_change_gl(model, delta_n):
    """delta Delta / Delta_0 in the Ginzburg-Landau form [dimensionless].

        delta Delta / Delta_0 = -(1 / (1 - T_qp)) integral_0^inf dxi delta n(xi) / E_xi,

    docs/physics.md section 2, from linearizing paper eq. (17) (T_c = 1). This is half of
    the paper's eq. (18) as printed, -(T_c/(T_c - T_qp)) integral dE nu_qp(E)/nu_F
    delta n(E) / E: with the standard BCS gap equation the factor 2 of the paper's
    eq. (1) is absorbed into the phenomenological coupling (docs/physics.md section 2).
    Valid for T_qp a little below T_c; see ``gap_change_linear_response`` beyond.

    - `model`: a ``kinetics.Model`` (its grid, T_qp [T_c] < 1 and Delta_0).
    - `delta_n`: delta n(xi_j) on the model's grid [dimensionless], shape (grid.n,).
    """
    delta_n = _check_delta_n(model, delta_n)
    e = model.grid.energies(model.delta0)
    return -model.grid.integrate(delta_n / e) / (1.0 - model.t_qp)


def gap_change_linear_response(model, delta_n):
    """delta Delta / Delta_0 from the exact linear response of the gap equation [dimensionless].

        delta Delta = 2 integral_0^inf dxi delta n(xi) / E_xi / (dG_eq/dDelta)(Delta_0),
        G_eq(Delta) = G(Delta; n_F(E(Delta)/T_qp)),

    docs/physics.md section 2: n = n_F(E_xi(Delta)/T_qp) + delta n linearized around
    (Delta_0, delta n = 0); dG_eq/dDelta is the *total* derivative (n_F follows E(Delta)),
    negative, so delta n > 0 lowers the gap. Tends to the GL form (``gap_change_gl``)
    as T_qp -> T_c: GL / exact = 0.980 at T_qp = 0.9 and 0.998 at 0.99.

    - `model`: a ``kinetics.Model`` (its grid, T_qp [T_c] and Delta_0 [T_c]).
    - `delta_n`: delta n(xi_j) on the model's grid [dimensionless], shape (grid.n,).
    """
    delta_n = _check_delta_n(model, delta_n)
    delta0 = model.delta0
    e = model.grid.energies(delta0)
    slope = equilibrium_gap_slope(model.grid, delta0, model.t_qp)
    return 2.0 * model.grid.integrate(delta_n / e) / slope / delta0


def gap_relaxation_time(model):
    """Relaxation time of the gap mode tau_gap [hbar/(k_B T_c)] (docs/physics.md section 4).

        tau_gap = tau_in (dG/dDelta at fixed n) / (dG_eq/dDelta),

    both at Delta_0 and n = n_F(E_xi(Delta_0)/T_qp) on the model's grid: the relaxation
    term pins n to n_F at the *current* gap, so the gap mode relaxes more slowly than
    1/tau_in (about 3 tau_in at T_qp = 0.9; it diverges as T_qp -> T_c).

    - `model`: a ``kinetics.Model`` with ``tau_in`` [hbar/(k_B T_c)] not None.
    """
    if model.tau_in is None:
        raise ParameterError(
            "gap_relaxation_time needs a relaxation time: tau_gap is a multiple of "
            "Model.tau_in, which is None."
        )
    delta0 = model.delta0
    n = model.thermal_state(delta0)
    partial = gap_function_ddelta(model.grid, n, delta0)
    total = equilibrium_gap_slope(model.grid, delta0, model.t_qp)
    return model.tau_in * partial / total


__all__ = [
    "gap_change_gl",
    "gap_change_linear_response",
    "gap_relaxation_time",
    "literal_delta_n",
    "perturbative_delta_n",
]

"""Perturbative steady state (paper eqs. (14), (15), (18)): its core and its dataset."""

from __future__ import annotations

import time as _time
import warnings

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import xarray as xr

from kinetics import (
    Model,
    ParameterError,
    PhysicsWarning,
    gap_change_gl,
    gap_change_linear_response,
    perturbative_delta_n,
)

from ._dataset import build_dataset
from ._options import PERTURBATIVE


def perturbative_core(model: Model, t) -> dict:
    """The perturbative solution, traceable (single points and sweeps call this).

    Returns arrays: ``y`` = n_F(E(Delta_0)/T_qp) + delta n (with the dynamic baths'
    reservoir occupations appended), ``gap`` = Delta_0 (1 + delta Delta/Delta_0) by the
    exact linear response, ``relative_gap_change_gl``, ``delta_n_first_order``, ``delta0``.
    """
    dn = perturbative_delta_n(model, t)
    rel = gap_change_linear_response(model, dn)
    d0 = model.delta0
    return {
        "y": model.join(model.thermal_state() + dn, model.boson_state(t)),
        "gap": d0 * (1.0 + rel),
        "relative_gap_change_gl": gap_change_gl(model, dn),
        "delta_n_first_order": dn,
        "delta0": d0,
    }


compiled_core = eqx.filter_jit(perturbative_core)

# where perturbation theory stops being a result: |delta Delta / Delta_0| beyond this, or a
# nonlinear steady state that differs from it by more than RELATIVE_LIMIT
MAGNITUDE_LIMIT = 0.05
RELATIVE_LIMIT = 0.10


def coupling_text(model: Model) -> str:
    """Each bath's coupling in the paper's units (per relaxation time), e.g.
    "eta tau_in = 15.5 (the paper's Fig. 1: 0.0155)"."""
    parts = []
    for k, b in enumerate(model.baths):
        for name, v in b.parameters().items():
            if name in ("eta", "power") and model.tau_in is not None:
                try:
                    x = float(v) * float(model.tau_in)
                except (TypeError, ValueError):  # a profile: its largest value
                    x = float(v.bounds()[1]) * float(model.tau_in)
                parts.append(f"baths[{k}].{name} tau_in = {x:.4g}")
    text = "; ".join(parts) or "the bath couplings"
    return text + " (the paper's Fig. 1 has eta tau_in = 0.0155)"


def perturbation_warnings(model, relative_change, nonlinear=None) -> list[str]:
    """Why a perturbative delta Delta / Delta_0 (or a nonlinear one beside it) should not be
    trusted as perturbation theory, as messages ([] when it can be).

    - `model`: the Model, or one Model per point (a sequence in the order of the flattened
      values): each message names the coupling of its worst point.
    - `relative_change`: perturbative delta Delta / Delta_0 (scalar or array over points).
    - `nonlinear`: the nonlinear steady state's, same shape, or None; compared with the
      perturbative value relative to the larger of its own size and half the largest one.
    """
    p = np.atleast_1d(np.asarray(relative_change, dtype=np.float64)).reshape(-1)
    models = [model] * p.size if isinstance(model, Model) else list(model)
    out = []
    big = np.abs(p) > MAGNITUDE_LIMIT
    if np.any(big):
        k = int(np.nanargmax(np.where(big, np.abs(p), -np.inf)))
        out.append(
            f"perturbation theory has failed: |delta Delta / Delta_0| = {abs(p[k]):.3g} "
            f"({int(big.sum())} of {p.size} point(s) above {MAGNITUDE_LIMIT:.0%}); it is linear "
            f"in the coupling, which is {coupling_text(models[k])} there. Was the coupling "
            f"meant per relaxation time (e.g. eta = \"0.0155 / tau_in\")?"
        )
    if nonlinear is not None:
        q = np.atleast_1d(np.asarray(nonlinear, dtype=np.float64)).reshape(-1)
        # relative to the size of the effect: the point's own value, but not less than half
        # the largest along the sweep. Near a sign change the first-order term vanishes while
        # the second-order one does not, so the ratio to the point's own value says nothing
        # about the coupling there (measured: the paper's Fig. 1(a) at eta tau_in = 0.0155
        # differs by 5e-4 = 2.5 % of its peak near omega_0 = 1.25 Delta_0, 24 % of the local
        # value)
        scale = np.maximum(np.abs(p), 0.5 * np.nanmax(np.abs(p)))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(q - p) / scale
        off = np.isfinite(rel) & (rel > RELATIVE_LIMIT) & (scale > 1e-12)
        if np.any(off):
            k = int(np.nanargmax(np.where(off, rel, -np.inf)))
            out.append(
                f"the nonlinear steady state differs from perturbation theory by up to "
                f"{rel[k]:.0%} ({int(off.sum())} of {p.size} point(s) beyond "
                f"{RELATIVE_LIMIT:.0%}): perturbation theory has failed at "
                f"{coupling_text(models[k])}."
            )
    return out


def warn_all(messages: list[str]) -> None:
    for m in messages:
        warnings.warn(m, PhysicsWarning, stacklevel=3)


def check_perturbative(model: Model) -> None:
    """Refuse, before any work, a model the perturbative formula does not apply to."""
    if model.tau_in is None:
        raise ParameterError(
            "perturbative: the model has no relaxation time (tau_in=None); the "
            "perturbative formula delta n = tau_in I[n_F] needs one."
        )
    if not float(model.delta0) > 0:
        raise ParameterError(
            f"perturbative: T_qp = {float(model.t_qp):g} >= T_c gives no equilibrium gap to "
            "perturb (Delta_0 = 0); delta Delta / Delta_0 is undefined. Use t_qp < 1."
        )


def perturbative(
    model: Model, *, t: float = PERTURBATIVE["t"], config: dict | None = None
) -> xr.Dataset:
    """Lowest order in the coupling: delta n = tau_in sum_b I_b[n_F] at Delta_0.

    Shaped like the nonlinear results, so they can be subtracted: `n` is
    n_F(E(Delta_0)/T_qp) + delta n, `gap` is Delta_0 (1 + delta Delta/Delta_0) by the
    exact linear response of the gap equation (docs/physics.md section 2);
    `relative_gap_change_gl` is the Ginzburg-Landau form. Note that `delta_n` is
    stored against n_F at the state's own (shifted) gap, like every result, while
    `delta_n_first_order` is the first-order correction itself.

    - `t`: time [hbar/(k_B T_c)] at which time-dependent bath parameters are taken.
    """
    check_perturbative(model)
    clock = _time.perf_counter()
    out = compiled_core(model, jnp.asarray(t, dtype=jnp.float64))
    wall = _time.perf_counter() - clock
    ds = build_dataset(
        model,
        np.asarray(out["y"]),
        float(out["gap"]),
        kind="perturbative",
        solver={"name": "perturbative", "status": "success", "wall_time_s": wall,
                "time_parameters_frozen_at": t},
        extra={
            "relative_gap_change_gl": ((), float(out["relative_gap_change_gl"])),
            "delta_n_first_order": (("xi",), np.asarray(out["delta_n_first_order"])),
        },
        config=config,
        rates_at=t,
    )
    ds["relative_gap_change"].attrs["long_name"] = (
        "delta Delta / Delta_0, exact linear response of the gap equation"
    )
    problems = perturbation_warnings(model, float(ds["relative_gap_change"]))
    if problems:
        ds.attrs["warnings"] = " | ".join(problems)
        warn_all(problems)
    return ds

"""Perturbative steady state (paper eqs. (14), (15), (18)): its core and its dataset."""

from __future__ import annotations

import time as _time

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import xarray as xr

from kinetics import (
    Model,
    ParameterError,
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


_core = eqx.filter_jit(perturbative_core)


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
    out = _core(model, jnp.asarray(t, dtype=jnp.float64))
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
    return ds

"""Perturbative steady state (paper eqs. (14), (15), (18)) as a dataset."""

from __future__ import annotations

import time as _time

import equinox as eqx
import numpy as np
import xarray as xr

from kinetics import Model, ParameterError
from kinetics._perturbative import (
    gap_change_gl,
    gap_change_linear_response,
    perturbative_delta_n,
)

from ._dataset import build_dataset


@eqx.filter_jit
def _first_order(model: Model, t):
    dn = perturbative_delta_n(model, t)
    return dn, gap_change_linear_response(model, dn), gap_change_gl(model, dn)


def perturbative(model: Model, *, t: float = 0.0, config: dict | None = None) -> xr.Dataset:
    """Lowest order in the coupling: delta n = tau_in sum_b I_b[n_F] at Delta_0.

    Shaped like the nonlinear results, so they can be subtracted: `n` is
    n_F(E(Delta_0)/T_qp) + delta n, `gap` is Delta_0 (1 + delta Delta/Delta_0) by the
    exact linear response of the gap equation (physics.md section 2);
    `relative_gap_change_gl` is the Ginzburg-Landau form. Note that `delta_n` is
    stored against n_F at the state's own (shifted) gap, like every result, while
    `delta_n_first_order` is the first-order correction itself.
    """
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
    clock = _time.perf_counter()
    dn, rel, rel_gl = _first_order(model, t)
    rel, rel_gl = float(rel), float(rel_gl)
    delta0 = float(model.delta0)
    n = np.asarray(model.thermal_state()) + np.asarray(dn)
    wall = _time.perf_counter() - clock
    ds = build_dataset(
        model,
        n,
        delta0 * (1.0 + rel),
        kind="perturbative",
        solver={"name": "perturbative", "status": "success", "wall_time_s": wall,
                "time_parameters_frozen_at": t},
        extra={
            "relative_gap_change_gl": ((), rel_gl),
            "delta_n_first_order": (("xi",), np.asarray(dn)),
        },
        config=config,
        rates_at=t,
    )
    ds["relative_gap_change_gl"].attrs.update(
        long_name="delta Delta / Delta_0, Ginzburg-Landau form", units="1"
    )
    ds["delta_n_first_order"].attrs.update(
        long_name="tau_in sum_b I_b[n_F] at Delta_0 (paper eq. (14))", units="1"
    )
    ds["relative_gap_change"].attrs["long_name"] = (
        "delta Delta / Delta_0, exact linear response of the gap equation"
    )
    return ds

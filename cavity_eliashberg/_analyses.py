"""Analyses of a study: quantities derived from the solved sweep, usable by any study.

A study lists them in ``[[analyses]]`` tables (``kind = "..."`` and its options); after
the solvers have run, `apply_analyses` adds their results to the study dataset, each with
``long_name`` and ``units``. Units are the internal ones (docs/physics.md section 1): times in
hbar/(k_B T_c), energies in k_B T_c. A sweep key's dimension is the key with dots
replaced by underscores (``phonons.dynamic.tau_b`` -> ``phonons_dynamic_tau_b``).

Kinds (results in brackets):

- ``static_reference`` [``<variable>_static``]: the study's main results with every bath
  static (`kinetics.Model.static_version`: bosons held at their reservoir), once per value
  of the swept parameters that are not ``<bath>.dynamic.*`` (the static model does not
  depend on those). Steady: ``relative_gap_change_static`` (the nonlinear steady state
  with ``[steady]``'s settings). Evolve: ``relative_gap_change_static`` and
  ``n_qp_static`` over ``time`` (same save times, solver settings and ``n0_excess``).
- ``slowest_time`` [``slowest_time``, ``slowest_time_static``, ``slowest_time_ratio``]:
  1 / min(-Re eig J) of the structured Jacobian J = ``model.jacobian(t, y)`` at the
  thermal state y = ``model.initial_state(t)`` (t = ``evolve.t_start``, with ``at = "end"``
  the last save time, else 0: after a pulse, not in its tail at t = 0), for each
  point and for its static version [hbar/(k_B T_c)]: the decay time of the slowest mode
  of a small excess (the relaxation time of the linearized joint system).
- ``decay_time`` [``decay_time``, ``decay_excess_fraction``, and ``..._static`` with a
  ``static_reference``]: a fitted decay time of an evolved quantity (``variable``:
  ``n_qp`` (default), ``relative_gap_change`` or ``gap``). Its excess over the thermal
  value (n_qp: 4 sum_xi w n_F(E/T_qp) at Delta_0; relative_gap_change: 0; gap: Delta_0)
  is fitted by A exp(-t / tau) on the save times within ``window`` = [start, stop] in
  units of each point's ``slowest_time`` (default [0.7, 4]: late enough that the faster
  modes have gone, early enough to stay above the integrator's tolerance). NaN with
  fewer than two usable samples. Needs ``slowest_time``.
- ``rothwarf_taylor`` [``rothwarf_taylor_time``, ``pair_breaking_time``,
  ``rothwarf_taylor_slope_ratio``] for the dynamic phonon bath ``bath``: the
  Rothwarf-Taylor estimate of the bottlenecked decay time
  tau_eff = (tau_r / 2)(1 + tau_esc / tau_B), with tau_r / 2 = ``slowest_time_static``,
  tau_esc = ``<bath>.dynamic.tau_b`` and tau_B = tau0_ph Delta(0) / Delta_0 (Kaplan's
  pair-breaking time at 2 Delta_0, T = 0 form) [hbar/(k_B T_c)]; and the slope of
  ``slowest_time`` against tau_esc between the last two values of that axis divided by
  the Rothwarf-Taylor slope (tau_r / 2) / tau_B [1]. Needs ``slowest_time`` and a sweep
  over ``<bath>.dynamic.tau_b``.
- ``crossing`` [``name``, default ``crossing``]: along the swept parameter ``along``,
  where ``variable`` (divided by its static reference with ``relative_to_static``) first
  crosses ``level``, by linear interpolation between the neighbouring points (in log x
  for a log-spaced axis); in the axis' unit, NaN when it does not cross. E.g. where the
  enhancement of a dynamic cavity has halved.
- ``reference`` [``gap_driven``, ``gap_recovery``, ``drive_rate``, ``t_bath_kelvin``,
  ``reference_t_star``, and per panel ``<name>`` and ``<name>_relative_difference``]: a
  steady readout-drive study against a published curve in a reference table
  (cavity_eliashberg._reference; the tables in cavity_eliashberg/reference/). Options:
  ``table`` (a shipped table's name, e.g. ``"fischer_catelani_2023"``, or a path ending
  in ``.csv`` relative to the study file), ``panels`` (a list of ``{ figure = 5, panel =
  "upper" }``, each with optional ``variable`` (default from the table's y_name:
  ``x_qp`` or ``gap_recovery``), ``log_y`` (interpolate in log y; default for x_qp) and
  ``name`` (default ``<variable>_reference``)), ``curve`` (the table's curve, default
  ``"numerical"``; its ``_maximum``/``_falling`` rows belong to it), ``drive`` (the
  ``readout_drive`` bath, default the only one), ``t_tolerance`` (how close the table's
  T_B must be to the point's T_B = model.t_qp, default ``"1 mK"``) and ``label`` (the
  legend of the table's points, default from the table's name: "Fischer & Catelani
  2023, digitized"). Per point: ``<name>``, the table's curve at the point's T_B
  interpolated at its drive c_phot n_bar [1/s] (piecewise linear in log drive and, with
  log_y, log y; NaN outside the digitized range or without a curve at that T_B), in the
  variable's unit; ``<name>_relative_difference`` = (ours - table) / |table| [1] (NaN
  at failed points). ``gap_recovery`` = (Delta_driven - Delta_eq(T_B)) / (Delta(0) -
  Delta_eq(T_B)) [1] (Fischer & Catelani 2023, Fig. 6): Delta_driven [``gap_driven``,
  k_B T_c] the gap equation's root on the steady n (the state's gap when self-consistent;
  `kinetics.Model.solve_gap` on the state with ``model.gap = "fixed"``), Delta_eq(T_B)
  the model's Delta_0 on its grid, Delta(0) = `kinetics.DELTA_ZERO`. ``drive_rate``
  c_phot n_bar [1/s], ``t_bath_kelvin`` [K], ``reference_t_star`` the table's drive
  measure T*/Delta (a power law in c_phot n_bar fitted to its ``t_star_over_delta``).
  Needs compute 'steady', a readout_drive bath, T_c (model.t_c or the observables'
  material) and, for x_qp, ``[observables]``. Figure kind ``reference`` draws it.

Two solver options serve studies like these (``[steady] continuation`` and ``[evolve]
n0_excess``, see `sweep_options`).
"""

from __future__ import annotations

import warnings

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import xarray as xr

import kinetics
import solvers

from ._config import Config, _sweep_target, axis_values, bath_names, dim_name, save_times
from ._reference import analysis as _reference

_TIME = "hbar/(k_B T_c)"


def sweep_options(kind: str, cfg: Config) -> dict:
    """The keyword arguments a study passes to `solvers.sweep` for `kind` beyond the
    solver's own options: ``continuation`` (the dimension of ``[steady] continuation``:
    the steady states along it are solved in order, each started from the previous one),
    ``direction`` (``[steady] direction``: "up", "down" or "both") and
    ``options["n0_excess"]`` (``[evolve] n0_excess``: the initial state is the
    thermal state with n multiplied by 1 + n0_excess)."""
    if kind == "steady" and cfg.steady.continuation is not None:
        return {"continuation": dim_name(cfg.steady.continuation),
                "direction": cfg.steady.direction}
    if kind == "evolve" and cfg.evolve is not None and cfg.evolve.n0_excess != 0.0:
        return {"options": {"n0_excess": cfg.evolve.n0_excess}}
    return {}


def apply_analyses(ds: xr.Dataset, cfg: Config, raw: dict, models: list) -> xr.Dataset:
    """Add the results of the study's ``[[analyses]]`` to its dataset (in list order, after
    the dependencies they need: static_reference and slowest_time first).

    - `ds`: the study dataset (one dimension per swept parameter).
    - `models`: the `kinetics.Model` of every sweep point, in `sweep_points` order.
    """
    if not cfg.analyses:
        return ds
    ctx = _Context(cfg, raw, models)
    order = {"static_reference": 0, "slowest_time": 1}
    for spec in sorted(cfg.analyses, key=lambda a: order.get(a.kind, 2)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", kinetics.PhysicsWarning)
            ds = _KINDS[spec.kind](ds, spec, ctx)
    ds.attrs["analyses"] = ",".join(a.kind for a in cfg.analyses)
    return ds


class _Context:
    """The sweep's layout: dimensions, models as an array, which axes are dynamic-only."""

    def __init__(self, cfg: Config, raw: dict, models: list):
        self.cfg, self.raw = cfg, raw
        self.keys = list(cfg.sweep)
        self.dims = [dim_name(k) for k in self.keys]
        self.shape = tuple(len(cfg.sweep[k].points()) for k in self.keys)
        self.models = np.empty(len(models), dtype=object)
        self.models[:] = models
        self.models = self.models.reshape(self.shape)
        # the static model does not depend on a bath's dynamic.* parameters
        self.dynamic_axis = [
            _sweep_target(cfg, k)[2].startswith("dynamic.") for k in self.keys
        ]
        self.static_dims = [d for d, dyn in zip(self.dims, self.dynamic_axis, strict=True)
                            if not dyn]
        self.t0 = self.t_end = 0.0
        if "evolve" in cfg.compute:
            self.t_save = save_times(cfg, raw=raw)
            self.t0, self.t_end = float(self.t_save[0]), float(self.t_save[-1])

    def static_models(self) -> np.ndarray:
        """The static version of one model per value of the non-dynamic axes."""
        index = tuple(slice(0, 1) if dyn else slice(None) for dyn in self.dynamic_axis)
        shape = tuple(n for n, dyn in zip(self.shape, self.dynamic_axis, strict=True) if not dyn)
        # (Ellipsis: an array even without sweep axes, where () would give the element)
        return self.models[index + (Ellipsis,)].reshape(shape)

    def to_full(self, static: np.ndarray) -> np.ndarray:
        """A static-dims array broadcast to the full sweep shape (trailing axes kept)."""
        index = tuple(None if dyn else slice(None) for dyn in self.dynamic_axis)
        return np.broadcast_to(static[index], self.shape + static.shape[len(self.static_dims):])


def _static_reference(ds, spec, ctx: _Context):
    cfg = ctx.cfg
    statics = ctx.static_models()
    flat = statics.reshape(-1)
    dims = ctx.static_dims
    shape = statics.shape
    if "evolve" in cfg.compute:
        e = cfg.evolve
        t = ctx.t_save
        gap = np.full((flat.size, t.size), np.nan)
        nqp = np.full_like(gap, np.nan)
        for k, m in enumerate(flat):
            s = m.static_version()
            n0 = np.asarray(s.thermal_state()) * (1.0 + e.n0_excess)
            try:
                out = solvers.evolve(s, t, n0=n0, solver=e.solver, rtol=e.rtol, atol=e.atol,
                                     max_steps=e.max_steps, progress=False)
            except solvers.SolverError as err:
                out = err.partial
            if out is not None:
                gap[k] = out.relative_gap_change.values
                nqp[k] = out.n_qp.values
        ds["relative_gap_change_static"] = (dims + ["time"], gap.reshape(shape + (t.size,)))
        ds["n_qp_static"] = (dims + ["time"], nqp.reshape(shape + (t.size,)))
        ds["n_qp_static"].attrs.update(
            long_name="quasiparticle density 4 integral dxi n, static baths",
            units="nu_F k_B T_c")
    else:
        s_cfg = cfg.steady
        gap = np.full(flat.size, np.nan)
        for k, m in enumerate(flat):
            try:
                out = solvers.steady_state(
                    m.static_version(), start=s_cfg.start, method=s_cfg.method, tol=s_cfg.tol,
                    max_iter=s_cfg.max_iter, continuation_steps=s_cfg.continuation_steps,
                    solver=s_cfg.solver)
            except solvers.SolverError as err:
                out = err.partial
            if out is not None:
                gap[k] = float(out.relative_gap_change)
        ds["relative_gap_change_static"] = (dims, gap.reshape(shape))
    ds["relative_gap_change_static"].attrs.update(
        long_name="delta Delta / Delta_0 with every bath static", units="1")
    return ds


@eqx.filter_jit
def _jacobian(model, t, y):
    return model.jacobian(t, y)


def _slowest(model, t: float) -> float:
    """1 / min(-Re eig J) at model.initial_state(t) [hbar/(k_B T_c)]."""
    # t as an array: a Python float is static to filter_jit (a compilation per time)
    jac = np.asarray(_jacobian(model, jnp.asarray(t, jnp.float64), model.initial_state(t)))
    rate = float(np.min(-np.linalg.eigvals(jac).real))
    return 1.0 / rate if rate > 0 else np.nan


def _slowest_time(ds, spec, ctx: _Context):
    t = ctx.t_end if spec.at == "end" else ctx.t0
    full = np.vectorize(lambda m: _slowest(m, t), otypes=[float])(ctx.models)
    static = np.vectorize(lambda m: _slowest(m.static_version(), t), otypes=[float])(
        ctx.static_models())
    ds["slowest_time"] = (ctx.dims, full)
    ds["slowest_time"].attrs.update(
        long_name="1 / min(-Re eig J) at the thermal state (slowest mode's decay time)",
        units=_TIME, linearized_at=t)
    ds["slowest_time_static"] = (ctx.static_dims, static)
    ds["slowest_time_static"].attrs.update(
        long_name="1 / min(-Re eig J) at the thermal state, every bath static", units=_TIME)
    ds["slowest_time_ratio"] = (ctx.dims, full / ctx.to_full(static))
    ds["slowest_time_ratio"].attrs.update(
        long_name="slowest_time / slowest_time_static", units="1")
    return ds


def _thermal_value(model, variable: str) -> float:
    """The evolved quantity at the thermal state (the baseline of its excess)."""
    if variable == "n_qp":
        return float(4.0 * np.sum(np.asarray(model.grid.weights)
                                  * np.asarray(model.thermal_state())))
    if variable == "gap":
        return float(model.delta0)
    return 0.0


def _fit(t: np.ndarray, excess: np.ndarray, tau: float, window) -> float:
    """tau of A exp(-t / tau) fitted to the excess on t in [window] * tau (log-linear)."""
    if not np.isfinite(tau) or excess.size == 0 or not np.isfinite(excess[0]):
        return np.nan
    sign = np.sign(_reference_excess(excess[None, :])[0, 0]) or 1.0
    d = excess * sign
    use = (t >= window[0] * tau) & (t <= window[1] * tau) & np.isfinite(d) & (d > 0)
    if use.sum() < 2:
        return np.nan
    slope = np.polyfit(t[use], np.log(d[use]), 1)[0]
    return -1.0 / slope if slope < 0 else np.nan


def _reference_excess(excess: np.ndarray) -> np.ndarray:
    """What a decay is a fraction of, shape (points, 1): the excess at t = 0 (an injected
    excess) or, where a run starts (nearly) thermal (a pump pulse), the excess of largest
    magnitude."""
    finite = np.where(np.isfinite(excess), np.abs(excess), -1.0)
    peak = np.take_along_axis(excess, np.argmax(finite, axis=1)[:, None], axis=1)
    first = excess[:, :1]
    return np.where(np.abs(first) > 1e-3 * np.abs(peak), first, peak)


def _decay_time(ds, spec, ctx: _Context):
    t = ds.time.values
    v = spec.variable
    values = ds[v].transpose(*ctx.dims, "time").values.reshape(-1, t.size)
    base = np.asarray([_thermal_value(m, v) for m in ctx.models.reshape(-1)])
    excess = values - base[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):  # no excess: NaN
        frac = excess / _reference_excess(excess)
    tau = ds["slowest_time"].transpose(*ctx.dims).values.reshape(-1)
    fitted = [_fit(t, excess[k], tau[k], spec.window) for k in range(len(tau))]
    ds["decay_time"] = (ctx.dims, np.asarray(fitted).reshape(ctx.shape))
    ds["decay_time"].attrs.update(
        long_name=f"decay time of the excess {v}: exponential fit on t in "
        f"[{spec.window[0]:g}, {spec.window[1]:g}] slowest_time", units=_TIME)
    ds["decay_excess_fraction"] = (ctx.dims + ["time"], frac.reshape(ctx.shape + (t.size,)))
    ds["decay_excess_fraction"].attrs.update(
        long_name=f"({v}(t) - {v}_thermal) / ({v}(0) - {v}_thermal)", units="1")
    static_var = f"{v}_static" if v != "gap" else None
    if static_var in ds:
        statics = ctx.static_models().reshape(-1)
        sv = ds[static_var].transpose(*ctx.static_dims, "time").values.reshape(-1, t.size)
        if v == "relative_gap_change":
            base = np.zeros(len(statics))
        else:
            base = np.asarray([_thermal_value(m.static_version(), v) for m in statics])
        sx = sv - base[:, None]
        st = ds["slowest_time_static"].transpose(*ctx.static_dims).values.reshape(-1)
        shape = ctx.static_models().shape
        ds["decay_time_static"] = (
            ctx.static_dims,
            np.asarray([_fit(t, sx[k], st[k], spec.window) for k in range(len(st))]).reshape(shape),
        )
        ds["decay_time_static"].attrs.update(
            long_name=f"decay time of the excess {v}, every bath static (fit)", units=_TIME)
        with np.errstate(divide="ignore", invalid="ignore"):
            sfrac = sx / sx[:, :1]
        ds["decay_excess_fraction_static"] = (
            ctx.static_dims + ["time"], sfrac.reshape(shape + (t.size,)))
        ds["decay_excess_fraction_static"].attrs.update(
            long_name=f"({v}(t) - {v}_thermal) / ({v}(0) - {v}_thermal), static", units="1")
    return ds


def _rothwarf_taylor(ds, spec, ctx: _Context):
    cfg = ctx.cfg
    k = bath_names(cfg).index(spec.bath)
    key = f"{spec.bath}.dynamic.tau_b"
    axis = ctx.keys.index(key) if key in ctx.keys else None
    flat = ctx.models.reshape(-1)
    tau_esc = np.asarray([float(m.baths[k].dynamic.tau_b) for m in flat]).reshape(ctx.shape)
    tau_b = np.asarray([
        float(m.baths[k].dynamic.tau0_ph) * kinetics.DELTA_ZERO / float(m.delta0) for m in flat
    ]).reshape(ctx.shape)
    static = ctx.to_full(ds["slowest_time_static"].transpose(*ctx.static_dims).values)
    ds["rothwarf_taylor_time"] = (ctx.dims, static * (1.0 + tau_esc / tau_b))
    ds["rothwarf_taylor_time"].attrs.update(
        long_name="Rothwarf-Taylor (tau_r/2)(1 + tau_esc/tau_B), tau_r/2 = slowest_time_static",
        units=_TIME)
    ds["pair_breaking_time"] = (ctx.dims, tau_b)
    ds["pair_breaking_time"].attrs.update(
        long_name="tau_B = tau0_ph Delta(0) / Delta_0 (Kaplan at 2 Delta_0)", units=_TIME)
    if axis is None:  # one escape time: the estimate only, no slope to compare
        return ds
    slow = ds["slowest_time"].transpose(*ctx.dims).values
    if ctx.shape[axis] >= 2:
        last = np.take(slow, [-2, -1], axis=axis)
        esc = np.take(tau_esc, [-2, -1], axis=axis)
        slope = np.squeeze(np.diff(last, axis=axis) / np.diff(esc, axis=axis), axis=axis)
        rt = np.take(static / tau_b, -1, axis=axis)
        ratio = slope / rt
    else:
        ratio = np.full(np.take(slow, -1, axis=axis).shape, np.nan)
    ds["rothwarf_taylor_slope_ratio"] = ([d for j, d in enumerate(ctx.dims) if j != axis], ratio)
    ds["rothwarf_taylor_slope_ratio"].attrs.update(
        long_name="d slowest_time / d tau_esc (last two points) over (tau_r/2) / tau_B",
        units="1")
    return ds


def crossing(x, g, level: float, *, log_x: bool = False) -> float:
    """The first x where g(x) crosses `level` (linear interpolation; in log x if `log_x`);
    NaN when it does not."""
    x = np.log(np.asarray(x, float)) if log_x else np.asarray(x, float)
    g = np.asarray(g, float) - level
    for b in range(len(x) - 1):
        if np.isfinite(g[b]) and np.isfinite(g[b + 1]) and (
            g[b] == 0 or g[b] * g[b + 1] < 0
        ):
            z = x[b] + g[b] / (g[b] - g[b + 1]) * (x[b + 1] - x[b])
            return float(np.exp(z) if log_x else z)
    return float("nan")


def _crossing(ds, spec, ctx: _Context):
    dim = dim_name(spec.along)
    g = ds[spec.variable]
    if spec.relative_to_static:
        ref = next((r for r in (f"{spec.variable}_static",
                                spec.variable.rsplit("_", 1)[0] + "_static") if r in ds), None)
        if ref is None:
            raise KeyError(f"crossing: no static reference of {spec.variable!r} in the result")
        g = g / ds[ref]
    others = [d for d in g.dims if d != dim]
    g = g.transpose(*others, dim)
    x = axis_values(ctx.cfg, spec.along)
    log_x = ctx.cfg.sweep[spec.along].spacing == "log" and bool(np.all(x > 0))
    values = g.values.reshape(-1, x.size)
    out = np.asarray([crossing(x, row, spec.level, log_x=log_x) for row in values])
    ds[spec.name] = (others, out.reshape(g.shape[:-1]))
    what = f"{spec.variable}{' / static' if spec.relative_to_static else ''}"
    ds[spec.name].attrs.update(
        long_name=f"{spec.along} where {what} first crosses {spec.level:g}",
        units=ds[dim].attrs.get("units", ""), analysis="crossing", along=dim)
    return ds


_KINDS = {
    "static_reference": _static_reference,
    "slowest_time": _slowest_time,
    "decay_time": _decay_time,
    "rothwarf_taylor": _rothwarf_taylor,
    "crossing": _crossing,
    "reference": _reference,
}

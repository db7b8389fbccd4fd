"""A study against a published curve: the analysis kind ``reference`` (see
cavity_eliashberg._analyses) and what its figure and comparison table read.

A **reference table** is a CSV file, shipped in ``cavity_eliashberg/reference/`` (named
without ``.csv``: ``table = "fischer_catelani_2023"``) or given as a path ending in ``.csv``
relative to the study file. Its rows are points of a paper's curves of a readout-drive
study; the columns read here (cavity_eliashberg/reference/README.md):

- ``figure``, ``panel``, ``curve``: where the point is (``curve`` e.g. ``numerical``;
  ``numerical_maximum`` and ``numerical_falling`` belong to the curve ``numerical``);
- ``t_bath_K``: the bath temperature T_B [K] of its curve;
- ``c_phot_n_bar_per_s``: the drive c_phot n_bar [1/s], the abscissa (for c_phot = 1 /s
  this is n_bar; the stimulated terms, and so the curves, depend on the product alone up
  to the spontaneous terms' relative size 1 / n_bar);
- ``y_name``, ``y_value``, ``y_uncertainty``: the value; ``y_name`` says which study
  variable it is (``x_qp=...`` -> ``x_qp``; ``(Delta_driven-Delta_eq(T_B))/(Delta_0-
  Delta_eq(T_B))`` -> ``gap_recovery``) unless a panel names its ``variable``;
- ``t_star_over_delta`` (optional): the paper's drive measure T*/Delta; a power law
  T*/Delta = A (c_phot n_bar)^p fitted to it labels the figure's top axis and gives
  ``reference_t_star``.

Interpolation: in log c_phot n_bar, and in log y where ``log_y`` (default for ``x_qp``:
densities span decades), linear in y otherwise (Fig. 6's quantity falls through 0);
NaN outside the digitized range of the curve at the point's T_B (matched within
``t_tolerance``), never extrapolated.
"""

from __future__ import annotations

import csv
import functools
import math
import os
import pathlib

import numpy as np

import kinetics

from ._errors import ConfigError

# y_name (up to its first "=") -> the study variable it is
_Y_NAMES = {
    "x_qp": "x_qp",
    "(Delta_driven-Delta_eq(T_B))/(Delta_0-Delta_eq(T_B))": "gap_recovery",
}
_LOG_Y = ("x_qp",)
_COLUMNS = ("figure", "panel", "curve", "t_bath_K", "c_phot_n_bar_per_s", "y_name", "y_value")
SHIPPED = pathlib.Path(__file__).resolve().parent / "reference"

GAP_RECOVERY_ATTRS = {
    "long_name": "(Delta_driven - Delta_eq(T_B)) / (Delta(0) - Delta_eq(T_B)): the share of "
    "the thermal gap reduction the drive undoes (Delta_driven: the gap equation's root on the "
    "steady n; Delta_eq(T_B) = Delta_0 on the model's grid; Delta(0) = 1.763877 k_B T_c)",
    "units": "1",
}


# ---------------------------------------------------------------- the table


def table_path(table: str, base_dir: str = "") -> pathlib.Path:
    """A shipped table's file (``table`` without ``.csv``), or a ``.csv`` path relative to
    ``base_dir`` (the study file's folder)."""
    if table.endswith(".csv"):
        return pathlib.Path(base_dir or ".", os.path.expanduser(table))
    return SHIPPED / f"{table}.csv"


@functools.lru_cache(maxsize=8)
def _read(path: str) -> tuple[dict, ...]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = tuple(csv.DictReader(fh))
    missing = [c for c in _COLUMNS if rows and c not in rows[0]]
    if not rows or missing:
        raise ConfigError(
            f"reference table {path}: needs the columns {', '.join(_COLUMNS)}; "
            f"missing {missing or 'every row'}."
        )
    return rows


def load_table(table: str, base_dir: str = "") -> tuple[dict, ...]:
    """The rows of a reference table (dicts of strings, as in the file)."""
    path = table_path(table, base_dir)
    if not path.is_file():
        shipped = sorted(p.stem for p in SHIPPED.glob("*.csv"))
        raise ConfigError(
            f"reference table {table!r}: no file {path}; shipped tables: {shipped} (or give "
            "a path ending in .csv, relative to the study file)."
        )
    return _read(str(path))


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _in_curve(row: dict, curve: str) -> bool:
    return row["curve"] == curve or row["curve"].startswith(curve + "_")


def panel_rows(rows, figure, panel: str, curve: str | None = None) -> list[dict]:
    """The rows of one figure panel (and of one curve with its ``_maximum``/``_falling``
    parts when `curve` is given)."""
    return [r for r in rows if r["figure"] == str(figure) and r["panel"] == panel
            and (curve is None or _in_curve(r, curve))]


def panel_variable(rows, figure, panel: str, variable: str | None = None) -> str:
    """The study variable a panel gives: `variable`, else from the rows' ``y_name``."""
    if variable:
        return variable
    names = {r["y_name"] for r in panel_rows(rows, figure, panel)}
    known = {_Y_NAMES.get(n.split("=")[0]) for n in names}
    if len(known) != 1 or None in known:
        raise ConfigError(
            f"reference panel {figure} {panel}: its y_name {sorted(names)} names no study "
            f"variable this analysis knows ({sorted(_Y_NAMES)}); give the panel a 'variable'."
        )
    return known.pop()


def default_log_y(variable: str) -> bool:
    return variable in _LOG_Y


def curve_points(rows, figure, panel: str, curve: str, t_bath_kelvin: float,
                 tolerance_kelvin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c_phot n_bar [1/s], y, y uncertainty (NaN where the table gives none)) of one curve
    at the table's T_B nearest to `t_bath_kelvin` (none beyond `tolerance_kelvin`: empty
    arrays), sorted by the drive; repeated drives averaged."""
    sel = panel_rows(rows, figure, panel, curve)
    temps = np.asarray([_number(r["t_bath_K"]) for r in sel])
    empty = np.zeros(0)
    if not temps.size or not np.isfinite(t_bath_kelvin):
        return empty, empty, empty
    gap = np.abs(temps - t_bath_kelvin)
    nearest = np.nanmin(gap) if np.any(np.isfinite(gap)) else np.inf
    if not nearest <= tolerance_kelvin:
        return empty, empty, empty
    take = [r for r, g in zip(sel, gap, strict=True) if g == nearest]
    x = np.asarray([_number(r["c_phot_n_bar_per_s"]) for r in take])
    y = np.asarray([_number(r["y_value"]) for r in take])
    err = np.asarray([_number(r.get("y_uncertainty", "")) for r in take])
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0)
    x, y, err = x[ok], y[ok], err[ok]
    ux, inverse = np.unique(x, return_inverse=True)
    known = np.isfinite(err)  # (a point read at fixed y has its error in x instead: NaN)
    n_err = np.bincount(inverse, known)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_err = np.bincount(inverse, np.where(known, err, 0.0)) / n_err
    return (ux, np.bincount(inverse, y) / np.bincount(inverse),
            np.where(n_err > 0, mean_err, np.nan))


def interpolate(x_table, y_table, x, *, log_y: bool) -> np.ndarray:
    """y of the table's curve at `x`: piecewise linear in log x (and log y with `log_y`,
    where only y > 0 is used); NaN outside [min, max] of the table's x."""
    x_table, y_table = np.asarray(x_table, float), np.asarray(y_table, float)
    x = np.asarray(x, float)
    ok = np.isfinite(x_table) & np.isfinite(y_table) & (x_table > 0)
    if log_y:
        ok &= y_table > 0
    x_table, y_table = x_table[ok], y_table[ok]
    out = np.full(x.shape, np.nan)
    if x_table.size == 0:
        return out
    order = np.argsort(x_table)
    lx, yt = np.log(x_table[order]), y_table[order]
    yt = np.log(yt) if log_y else yt
    inside = np.isfinite(x) & (x >= x_table.min()) & (x <= x_table.max())
    if x_table.size == 1:
        out[inside] = y_table[0]
        return out
    v = np.interp(np.log(x[inside]), lx, yt)
    out[inside] = np.exp(v) if log_y else v
    return out


def drive_measure(rows) -> tuple[float, float] | None:
    """(A, p) of T*/Delta = A (c_phot n_bar [1/s])^p fitted (least squares in logs) to the
    table's ``t_star_over_delta`` column; None without it or when it is no power law
    (a residual over 1 %)."""
    pairs = np.asarray([(_number(r["c_phot_n_bar_per_s"]), _number(r.get("t_star_over_delta")))
                        for r in rows], dtype=float).reshape(-1, 2)
    ok = np.all(np.isfinite(pairs), axis=1) & np.all(pairs > 0, axis=1)
    if ok.sum() < 2:
        return None
    lx, ly = np.log(pairs[ok, 0]), np.log(pairs[ok, 1])
    if np.ptp(lx) == 0:
        return None
    p, log_a = np.polyfit(lx, ly, 1)
    if np.max(np.abs(ly - (p * lx + log_a))) > 0.01:
        return None
    return float(np.exp(log_a)), float(p)


def source_label(table: str, label: str | None = None) -> str:
    """The legend of a table's points: `label`, else the table name as authors and year
    (``fischer_catelani_2023`` -> "Fischer & Catelani 2023, digitized")."""
    if label:
        return label
    parts = pathlib.Path(table).stem.split("_")
    year = parts.pop() if parts and parts[-1].isdigit() else ""
    who = " & ".join(p.capitalize() for p in parts)
    return f"{who} {year}".strip() + ", digitized"


# ---------------------------------------------------------------- the gap quantity


def gap_recovery(delta_driven, delta_eq, delta_zero=kinetics.DELTA_ZERO):
    """(Delta_driven - Delta_eq) / (Delta(0) - Delta_eq): 0 at equilibrium, 1 when the
    drive restores the T = 0 gap (Fischer & Catelani 2023, Fig. 6)."""
    delta_driven, delta_eq = np.asarray(delta_driven, float), np.asarray(delta_eq, float)
    return (delta_driven - delta_eq) / (delta_zero - delta_eq)


def driven_gap(model: kinetics.Model, gap: float, delta_n) -> float:
    """The gap equation's root on a steady state given as (its gap, delta_n against n_F at
    that gap): the state's own gap when it is self-consistent, ``solve_gap`` on
    n = delta_n + n_F(E(gap) / T_qp) when the model holds the gap fixed."""
    if not np.isfinite(gap) or not np.all(np.isfinite(delta_n)):
        return math.nan
    if not model.fixed_gap:
        return float(gap)
    n = np.asarray(delta_n, float) + np.asarray(model.thermal_state(gap))
    return float(model.solve_gap(np.clip(n, 0.0, 1.0), guess=gap))


# ---------------------------------------------------------------- the analysis


def _check_names(spec, rows) -> list[tuple]:
    """(panel, variable, name, log_y) of every panel; refuses clashing names."""
    out = []
    for p in spec.panels:
        if not panel_rows(rows, p.figure, p.panel, spec.curve):
            have = sorted({(r["figure"], r["panel"], r["curve"]) for r in rows})
            raise ConfigError(
                f"analyses (reference): table {spec.table!r} has no rows of figure "
                f"{p.figure} panel {p.panel!r} curve {spec.curve!r}; it has {have}."
            )
        var = panel_variable(rows, p.figure, p.panel, p.variable)
        log_y = default_log_y(var) if p.log_y is None else p.log_y
        out.append((p, var, p.name or f"{var}_reference", log_y))
    names = [o[2] for o in out]
    if len(set(names)) != len(names):
        raise ConfigError(
            "analyses (reference): two panels give the same result name; give each a 'name'."
        )
    return out


def drive_bath(cfg, spec) -> str:
    """The name of the readout_drive bath the analysis reads n_bar and c_phot from."""
    from ._config import bath_names

    drives = [n for n, b in zip(bath_names(cfg), cfg.baths, strict=True)
              if b.type == "readout_drive"]
    if spec.drive is not None:
        if spec.drive not in drives:
            raise ConfigError(
                f"analyses (reference): drive = {spec.drive!r} is not a readout_drive bath; "
                f"readout_drive baths: {drives}."
            )
        return spec.drive
    if len(drives) != 1:
        raise ConfigError(
            "analyses (reference): needs one [[baths]] of type 'readout_drive' (or 'drive' "
            f"naming one); found {drives or 'none'}."
        )
    return drives[0]


def t_c_kelvin(cfg) -> float | None:
    """T_c [K]: model.t_c, else the [observables] material's."""
    from ._config import observables_options, references

    t_c = references(cfg)["t_c"]
    if t_c is None and cfg.observables is not None:
        t_c = observables_options(cfg)["t_c_kelvin"]
    return t_c


def tolerance(cfg, spec) -> float:
    """``t_tolerance`` in T_c."""
    from ._config import _convert, references

    refs = references(cfg)
    return _convert(spec.t_tolerance, name="analyses (reference).t_tolerance",
                    dimension="temperature", t_c=t_c_kelvin(cfg), refs=refs)


def check(cfg, raw: dict | None = None) -> None:
    """What the analysis and the figure kind ``reference`` need (called by the
    configuration's checks)."""
    specs = [a for a in cfg.analyses if a.kind == "reference"]
    if cfg.figure.kind == "reference" and not specs:
        raise ConfigError(
            "figure.kind = 'reference' draws a study against a reference table: add "
            "[[analyses]] kind = 'reference' (table, panels)."
        )
    for spec in specs:
        where = "analyses (reference)"
        if "steady" not in cfg.compute:
            raise ConfigError(f"{where}: compares steady states; add 'steady' to compute.")
        drive = drive_bath(cfg, spec)
        if t_c_kelvin(cfg) is None:
            raise ConfigError(
                f'{where}: the table is in kelvin and 1/s; give model.t_c (e.g. "1.18 K").'
            )
        if not tolerance(cfg, spec) > 0:
            raise ConfigError(f"{where}: t_tolerance must be > 0; got {spec.t_tolerance!r}.")
        rows = load_table(spec.table, (raw or {}).get("_base_dir", ""))
        for _, var, _, _ in _check_names(spec, rows):
            if var == "x_qp" and cfg.observables is None:
                raise ConfigError(
                    f"{where}: x_qp comes from the observables; add an [observables] table."
                )
        key = f"{drive}.n_bar"
        if cfg.figure.kind == "reference" and key not in cfg.sweep:
            raise ConfigError(
                f"figure.kind = 'reference' draws against the photon number: sweep {key!r}."
            )


def _point_values(models, k: int, t_c: float):
    """Per point: (T_qp [T_c], c_phot n_bar [1/s]) of the drive bath `k`."""
    per_s = kinetics.to_internal(1.0, "/s", dimension="rate", name="c_phot",
                                 t_c_kelvin=t_c)
    t = np.asarray([float(m.t_qp) for m in models])
    rate = np.asarray([
        float(kinetics.value_at(m.baths[k].c_phot, 0.0))
        * float(kinetics.value_at(m.baths[k].n_bar, 0.0)) / per_s for m in models
    ])
    return t, rate


def analysis(ds, spec, ctx):
    """The ``reference`` analysis on a study dataset (see cavity_eliashberg._analyses)."""
    from ._config import bath_names

    cfg = ctx.cfg
    rows = load_table(spec.table, ctx.raw.get("_base_dir", ""))
    panels = _check_names(spec, rows)
    drive = drive_bath(cfg, spec)
    k = bath_names(cfg).index(drive)
    t_c = t_c_kelvin(cfg)
    tol = tolerance(cfg, spec)
    flat = list(ctx.models.reshape(-1))
    t_qp, rate = _point_values(flat, k, t_c)
    dims, shape = ctx.dims, ctx.shape

    # the Fig. 6 gap quantity of every point
    gap = ds["gap_nonlinear"].transpose(*dims).values.reshape(-1)
    dn = ds["delta_n_nonlinear"].transpose(*dims, "xi").values.reshape(len(flat), -1)
    status = (ds["steady_status"].transpose(*dims).values.reshape(-1)
              if "steady_status" in ds else np.full(len(flat), "success"))
    driven = np.asarray([
        driven_gap(m, gap[j], dn[j]) if status[j] == "success" else math.nan
        for j, m in enumerate(flat)
    ])
    delta_eq = np.asarray([float(m.delta0) for m in flat])
    ds["gap_driven"] = (dims, driven.reshape(shape))
    ds["gap_driven"].attrs.update(
        long_name="Delta_driven: the gap equation's root on the steady n (= the gap when "
        "self-consistent; solve_gap on the state when model.gap = 'fixed')", units="k_B T_c")
    ds["gap_recovery"] = (dims, gap_recovery(driven, delta_eq).reshape(shape))
    ds["gap_recovery"].attrs.update(GAP_RECOVERY_ATTRS)
    ds["drive_rate"] = (dims, rate.reshape(shape))
    ds["drive_rate"].attrs.update(long_name=f"{drive}: c_phot n_bar", units="1/s")
    ds["t_bath_kelvin"] = (dims, (t_qp * t_c).reshape(shape))
    ds["t_bath_kelvin"].attrs.update(long_name="bath temperature T_B = T_qp", units="K")
    measure = drive_measure(rows)
    if measure is not None:
        a, p = measure
        ds["reference_t_star"] = (dims, (a * rate**p).reshape(shape))
        ds["reference_t_star"].attrs.update(
            long_name=f"the reference's drive measure T*/Delta = {a:.6g} (c_phot n_bar "
            f"[1/s])^{p:.6g} (fitted to the table's t_star_over_delta)", units="1")

    tol_k = tol * t_c
    for p, var, name, log_y in panels:
        if var not in ds:
            raise KeyError(f"reference: the study has no variable {var!r} to compare with "
                           f"figure {p.figure} {p.panel}")
        ours = ds[var].transpose(*dims).values.reshape(-1)
        ref = np.full(len(flat), np.nan)
        for j in range(len(flat)):
            x, y, _ = curve_points(rows, p.figure, p.panel, spec.curve, t_qp[j] * t_c, tol_k)
            ref[j] = interpolate(x, y, rate[j], log_y=log_y)
        src = {"reference_table": spec.table, "reference_figure": str(p.figure),
               "reference_panel": p.panel, "reference_curve": spec.curve,
               "reference_variable": var}
        ds[name] = (dims, ref.reshape(shape))
        ds[name].attrs.update(
            long_name=f"{var} of {source_label(spec.table, spec.label)} Fig. {p.figure} "
            f"{p.panel} ({spec.curve}), interpolated at the point's c_phot n_bar and T_B",
            units=ds[var].attrs.get("units", "1"), **src)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(status == "success", (ours - ref) / np.abs(ref), np.nan)
        ds[f"{name}_relative_difference"] = (dims, rel.reshape(shape))
        ds[f"{name}_relative_difference"].attrs.update(
            long_name=f"({var} - {name}) / |{name}|", units="1", **src)
    ds.attrs.update({
        "reference.table": spec.table,
        "reference.curve": spec.curve,
        "reference.drive": drive,
        "reference.t_tolerance_kelvin": tol_k,
        "reference.label": source_label(spec.table, spec.label),
        "reference.results": ",".join(o[2] for o in panels),
        "reference.base_dir": str(ctx.raw.get("_base_dir", "")),
    })
    return ds


# ---------------------------------------------------------------- the comparison table


def _gap_modes(ds) -> list[tuple[dict, str]]:
    if "model_gap" in ds.dims:
        return [({"model_gap": k}, str(v)) for k, v in enumerate(ds.model_gap.values)]
    return [({}, str(ds.attrs.get("model.gap_mode", "self_consistent")))]


def comparison_table(ds, *, digits: int = 3) -> str:
    """A Markdown table of every compared point: T_B, gap convention, n_bar (and the
    reference's T*/Delta), the reference value, ours and the relative difference; points
    outside the digitized range are left out."""
    results = [r for r in ds.attrs.get("reference.results", "").split(",") if r]
    if not results:
        raise ValueError("comparison_table: the dataset has no 'reference' analysis results.")
    drive = ds.attrs["reference.drive"]
    n_bar_dim = f"{drive}_n_bar"
    head = "| T_B [K] | gap | n_bar | T*/Delta | quantity | reference | ours | rel. diff. |"
    lines = [head, "|" + "---|" * 8]
    f = f"{{:.{digits}g}}"
    for sel, mode in _gap_modes(ds):
        one = ds.isel(sel)
        for name in results:
            var = one[name].attrs["reference_variable"]
            flat = {v: np.ravel(one[v].transpose(*one[name].dims).values)
                    for v in (name, var, f"{name}_relative_difference", "t_bath_kelvin",
                              "drive_rate")}
            n_bar = (np.ravel(one[n_bar_dim].broadcast_like(one[name])
                              .transpose(*one[name].dims).values)
                     if n_bar_dim in one.coords else flat["drive_rate"])
            star = (np.ravel(one["reference_t_star"].transpose(*one[name].dims).values)
                    if "reference_t_star" in one else np.full(n_bar.shape, np.nan))
            for j in range(n_bar.size):
                if not np.isfinite(flat[name][j]):
                    continue
                lines.append(
                    f"| {flat['t_bath_kelvin'][j]:.4g} | {mode} | {n_bar[j]:.4g} | "
                    f"{star[j]:.3f} | {var} | {f.format(flat[name][j])} | "
                    f"{f.format(flat[var][j])} | "
                    f"{flat[f'{name}_relative_difference'][j]:+.1%} |"
                )
    return "\n".join(lines)

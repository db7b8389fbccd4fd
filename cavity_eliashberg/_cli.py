"""The console script ``cavity-eliashberg``: ``run [CONFIG | NAME]``, ``list``, ``show FILE``,
``plot FILE``, ``resume FILE``.

(~850 lines: the five commands, the checks of every file and argument a user can get
wrong, the worker thread that lets Ctrl-C through, and ``show``'s summary of each kind of
result; splitting ``show`` into its own module is the next step.)

``cavity-eliashberg run`` (no configuration) runs the built-in default study
(``runs/fig1a.toml``, shipped with the package): the
equilibrium gap table and the paper's Fig. 1(a), delta Delta / Delta_0 of a
multimode cavity against omega_0 / Delta_0 for several photon temperatures, by
perturbation theory (GL and exact linear response) and by the full nonlinear
steady state, written as netCDF and PNG. Exit codes: 0 success, 2 bad input
(nothing computed, nothing written), 3 solver failure (partial result saved) or a result
that could not be written where asked (kept in the system's temporary folder, the path
printed), 130 interrupted by Ctrl-C (finished sweep points kept; the same command resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
import warnings

import numpy as np
import xarray as xr

import kinetics
from solvers import Interrupted, load, save

from ._compile_cache import OPTION_HELP, use_compile_cache
from ._config import load_config, parse_override, sweep_points, unitless_values
from ._errors import ConfigError, OutputError, ResultFileError
from ._figures import gap_change_sign_changes, plot
from ._studies import DEFAULT_STUDY, study_names, study_path, study_title
from ._study import run_study

DEFAULT_CONFIG = study_path(DEFAULT_STUDY)


def _gap_table() -> str:
    ts = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99]
    gaps = kinetics.equilibrium_gap(np.asarray(ts))
    lines = ["Equilibrium BCS gap (units of T_c):", "   T/T_c    Delta/T_c"]
    lines += [f"  {t:6.2f}   {d:10.6f}" for t, d in zip(ts, gaps, strict=True)]
    return "\n".join(lines)


def _outputs(cfg, raw, args) -> tuple[str, str, str]:
    """(folder, netCDF path, PNG path), checked before any work."""
    if args.output is not None:
        folder = args.output
    elif args.config is None:
        folder = os.path.join("runs", "output")
    elif getattr(args, "by_name", False):  # a shipped study: its output folder in the cwd
        folder = os.path.abspath(cfg.output.folder)
    elif os.path.isabs(cfg.output.folder):
        folder = cfg.output.folder
    else:
        folder = os.path.join(raw["_base_dir"], cfg.output.folder)
    name = cfg.output.name or os.path.splitext(os.path.basename(args.config or DEFAULT_CONFIG))[0]
    if args.quick:
        name += "_quick"
    nc, png = os.path.join(folder, name + ".nc"), os.path.join(folder, name + ".png")
    for path in (nc, png):
        if os.path.exists(path) and not args.overwrite:
            raise OutputError(
                f"{path} exists; pass --overwrite to replace it (nothing was computed)."
            )
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the output folder {folder}: {err.strerror}.") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"the output folder {folder} is not writable (nothing was computed).")
    return folder, nc, png


def _summary(ds: xr.Dataset) -> str:
    lines = []
    if (
        ds.attrs.get("figure.kind") in ("gap_change", "coupling", "map")
        and "relative_gap_change_exact" in ds
    ):
        x = ds.attrs.get("figure.x") or [d for d in ds.dims if d not in ("xi", "time")][0]
        y = ds.relative_gap_change_exact
        if ds.attrs.get("figure.fine_x") in y.dims:  # [perturbative] refine: coarse points
            fine = ds.attrs["figure.fine_x"]
            y = y.isel({fine: slice(None, None, int(ds.attrs["figure.refine"]))})
            y = y.rename({fine: x}).assign_coords({x: ds[x].values})
        others = [d for d in y.dims if d != x]
        lines.append(f"delta Delta / Delta_0 (perturbative, exact linear response) against {x}:")
        flat = y.transpose(x, ...).values.reshape(ds.sizes[x], -1)
        cols = list(np.ndindex(*[ds.sizes[d] for d in others]))
        head = "".join(
            "  " + ",".join(
                f"{d}={float(ds[d][i]):g}" for d, i in zip(others, c, strict=True)
            ).rjust(18)
            for c in cols
        )
        lines.append(f"  {x:>14}{head}")
        for b, w in enumerate(ds[x].values):
            lines.append(f"  {w:14.4g}" + "".join(f"  {v:18.4e}" for v in flat[b]))
        for label, zs in gap_change_sign_changes(ds).items():
            where = ", ".join(f"{x} = {z:.3f}" for z in zs) or "none"
            lines.append(f"  sign change(s) at {', '.join(label) or 'the curve'}: {where}")
    if "relative_gap_change_nonlinear" in ds:
        v = ds.relative_gap_change_nonlinear.values
        if np.any(np.isfinite(v)):
            lines.append(
                "nonlinear steady state: delta Delta / Delta_0 from "
                f"{np.nanmin(v):+.4e} to {np.nanmax(v):+.4e}"
            )
        if "gap_nonlinear" in ds and not np.all(np.isfinite(v)):  # Delta_0 = 0 (T >= T_c)
            g = ds.gap_nonlinear.values
            lines.append(f"nonlinear steady state: Delta from {np.nanmin(g):.4e} to "
                         f"{np.nanmax(g):.4e} k_B T_c (delta Delta / Delta_0 undefined where "
                         "Delta_0 = 0)")
    if "hysteresis_points" in ds:
        tp = ds.hysteresis_turning_point
        for idx in np.ndindex(*ds.hysteresis_points.shape):
            sel = dict(zip(ds.hysteresis_points.dims, idx, strict=True))
            where = ", ".join(f"{d} = {float(ds[d][i]):g}" for d, i in sel.items()) or "the line"
            if int(ds.hysteresis_points[sel]) == 0:
                lines.append(f"hysteresis at {where}: none (up and down agree)")
                continue
            up = tp.isel(sel).sel(branch="up").values
            down = tp.isel(sel).sel(branch="down").values
            lines.append(f"hysteresis at {where}: up branch ends in [{np.nanmin(up):g}, "
                         f"{np.nanmax(up):g}], down branch in [{np.nanmin(down):g}, "
                         f"{np.nanmax(down):g}]")
    if "time" in ds.dims and "relative_gap_change" in ds:
        r = ds.relative_gap_change.values
        final = ds.relative_gap_change.isel(time=-1).values
        final = (
            f"{float(final):+.4e}" if final.ndim == 0
            else f"{np.nanmin(final):+.4e} .. {np.nanmax(final):+.4e}"
        )
        lines.append(
            f"evolution to t = {float(ds.time[-1]):g}: delta Delta / Delta_0 from "
            f"{np.nanmin(r):+.4e} to {np.nanmax(r):+.4e}, final {final}"
        )
    lines += [line.strip() for line in _analysis_lines(ds)]
    for kind, (bad, reason) in _failures(ds).items():
        lines.append(f"WARNING: {bad} {kind} point(s) failed; first reason: {reason}")
    return "\n".join(lines)


_ANALYSIS_RESULTS = (
    "relative_gap_change_static",
    "slowest_time_static",
    "slowest_time",
    "slowest_time_ratio",
    "decay_time_static",
    "decay_time",
    "pair_breaking_time",
)
_HBAR_OVER_K_B = 1.054571817e-34 / 1.380649e-23  # K s: hbar / (k_B T_c) = this / T_c


def _units(da_or_unit) -> str:
    """' [unit]' of a variable or unit string; nothing for a dimensionless one ('1', '')."""
    unit = da_or_unit if isinstance(da_or_unit, str) else da_or_unit.attrs.get("units", "")
    unit = str(unit or "").strip()
    return "" if unit in ("", "1") else f" [{unit}]"


def _values(values, fmt: str = "{:.4g}", most: int = 12) -> str:
    """'a, b, c' (at most `most` values, then '..., last (N values)')."""
    v = [fmt.format(x) for x in np.ravel(values)]
    if len(v) <= most:
        return ", ".join(v)
    return ", ".join(v[: most - 2]) + f", ..., {v[-1]} ({len(v)} values)"


def _seconds(ds: xr.Dataset, value: float) -> str:
    """' (= 70.8 us)' for a time in hbar/(k_B T_c) when the study gave T_c in kelvin."""
    try:
        t_c = float(str(ds.attrs.get("model.t_c", "")).split()[0])
    except (ValueError, IndexError):
        return ""
    s = value * _HBAR_OVER_K_B / t_c
    if not np.isfinite(s) or s <= 0:
        return ""
    for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us"), (1e-9, "ns"), (1e-12, "ps")):
        if s >= scale:
            return f"{s / scale:.3g} {name}"
    return f"{s:.3g} s"


def _analysis_lines(ds: xr.Dataset) -> list[str]:
    """The analyses' results (cavity_eliashberg._analyses), one line each, with units
    (and times in seconds when the study gave T_c in kelvin)."""
    names = [v for v in _ANALYSIS_RESULTS if v in ds]
    names += [v for v in ds.data_vars if str(v).startswith("rothwarf_taylor_")]
    names += [v for v in ds.data_vars
              if ds[v].attrs.get("analysis") == "crossing" or str(v).startswith("crossing")]
    lines = []
    for name in dict.fromkeys(names):
        da = ds[name]
        if "time" in da.dims or da.dtype.kind not in "fiu":
            continue
        values = np.ravel(da.values)
        over = f" over {', '.join(da.dims)}" if da.dims else ""
        line = f"  {name}{_units(da)}{over}: {_values(values)}"
        if str(da.attrs.get("units", "")).replace(" ", "") == "hbar/(k_BT_c)":
            secs = [_seconds(ds, float(x)) for x in values[:12]]
            if all(secs):
                line += f" (= {', '.join(secs)} at T_c = {ds.attrs['model.t_c']})"
        lines.append(line)
    return lines


def _failures(ds: xr.Dataset) -> dict[str, tuple[int, str]]:
    """{kind: (number of failed points, the first failed point's message)}, read from the
    dataset's ``<kind>_status`` and ``<kind>_message`` variables."""
    out = {}
    for kind in ("perturbative", "steady", "evolve"):
        if f"{kind}_status" not in ds:
            continue
        status = np.asarray(ds[f"{kind}_status"].values).reshape(-1).astype(str)
        failed = np.flatnonzero(status != "success")
        if failed.size:
            messages = np.asarray(ds[f"{kind}_message"].values).reshape(-1).astype(str)
            reason = next((messages[k] for k in failed if messages[k]), "(no message)")
            out[kind] = (int(failed.size), reason)
    return out


def _failed(ds: xr.Dataset) -> bool:
    """True when a single-point study failed (a sweep's failed points are only marked)."""
    return not ds.attrs.get("sweep") and bool(_failures(ds))


def _resolve_config(args) -> None:
    """``run NAME``: a shipped study by name when NAME is not a file (sets args.by_name)."""
    args.by_name = False
    if args.config is None or os.path.exists(args.config):
        return
    path = study_path(args.config) if os.sep not in args.config else None
    if path is not None:
        args.config, args.by_name = path, True
    elif not args.config.endswith(".toml") and os.sep not in args.config:
        raise ConfigError(
            f"{args.config!r} is neither a configuration file nor a shipped study; "
            f"shipped studies: {', '.join(study_names())} (`cavity-eliashberg list`)."
        )


def _run(args) -> int:
    _resolve_config(args)
    overrides = dict(parse_override(s) for s in args.set)
    cfg, raw = load_config(args.config or DEFAULT_CONFIG, overrides=overrides, quick=args.quick)
    folder, nc, png = _outputs(cfg, raw, args)
    if args.config is None:
        print(_gap_table())
        print("\nBuilt-in default study (runs/fig1a.toml):")
    plain = unitless_values(cfg)
    if plain:  # a number meant in other units (eta tau_in for eta) shows up here
        print("values given without a unit, read in internal units (docs/physics.md section 1):")
        print("\n".join(plain))
    return _execute(cfg, raw, nc, png, args)


_NETCDF_MAGIC = (b"\x89HDF", b"CDF\x01", b"CDF\x02", b"CDF\x05")


def _load_result(path: str) -> xr.Dataset:
    """A result file for show/plot/resume (ResultFileError when it is none)."""
    if os.path.isdir(path):
        raise ResultFileError(
            f"{path} is a folder; give a result file (NAME.nc, written by `cavity-eliashberg run`)."
        )
    if not os.path.isfile(path):
        raise ResultFileError(f"{path} does not exist.")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if not head.startswith(_NETCDF_MAGIC):
        hint = ""
        if path.endswith(".toml"):
            hint = f" It is a configuration: run it with `cavity-eliashberg run {path}`."
        raise ResultFileError(
            f"{path} is not a netCDF result (show, plot and resume read the NAME.nc files "
            f"that `cavity-eliashberg run` writes).{hint}"
        )
    try:
        return load(path)
    except (OSError, ValueError, RuntimeError) as err:
        raise ResultFileError(
            f"{path} cannot be read as netCDF ({err}); is it complete (not still being written)?"
        ) from None


def _resume(args) -> int:
    ds = _load_result(args.file)
    try:
        info = json.loads(ds.attrs["config"])
        raw = dict(info["study"], _base_dir=info["base_dir"], _source=args.file)
        nc, png = info["outputs"]
    except (KeyError, ValueError, TypeError):
        raise OutputError(
            f"{args.file} is not a checkpoint of `cavity-eliashberg run` (no study configuration "
            "in its attributes); a Python run resumes by calling evolve with the same checkpoint."
        ) from None
    cfg, raw = load_config(raw)
    raw["_outputs"] = [nc, png]
    args.overwrite = True
    return _execute(cfg, raw, nc, png, args)


def _execute(cfg, raw, nc, png, args) -> int:
    print(f"{cfg.title or 'study'}: {len(sweep_points(cfg))} point(s) x {', '.join(cfg.compute)}")
    clock = time.perf_counter()
    raw["_outputs"] = [nc, png]
    checkpoint = os.path.splitext(nc)[0] + ".checkpoint.nc"
    stem = os.path.splitext(os.path.basename(nc))[0]
    store = os.path.join(os.path.dirname(nc), f".{stem}.sweep")
    scheduler = getattr(args, "scheduler", None) or cfg.cluster.scheduler
    workers = getattr(args, "workers", None) or cfg.cluster.workers
    earlier = _earlier_work(checkpoint, store, cfg.compute)
    if earlier and not args.overwrite:
        print(f"resuming from an earlier, interrupted run: {'; '.join(earlier)} (not computed "
              "again; pass --overwrite to start afresh)")
    work = dict(progress=not args.no_progress, checkpoint=checkpoint, store=store,
                scheduler=scheduler, workers=workers, overwrite=bool(args.overwrite))
    try:
        if getattr(args, "process", False):  # the console script: Ctrl-C reaches it at once
            ds = _in_worker_thread(run_study, cfg, raw, **work)
        else:  # main() called from Python: the work stays in the caller's thread
            ds = run_study(cfg, raw, **work)
    except Interrupted as err:
        print(f"cavity-eliashberg: {err}", file=sys.stderr)
        return 130 if err.signal_name == "SIGINT" else 143
    except (KeyboardInterrupt, _Terminated) as err:
        _ignore_further_interrupts(args)
        kept = _earlier_work(checkpoint, store, cfg.compute)
        where = f"kept: {'; '.join(kept)}" if kept else "no point had finished"
        how = "stopped by SIGTERM" if isinstance(err, _Terminated) else "interrupted (Ctrl-C)"
        print(f"cavity-eliashberg: {how}; {where}; resume with: "
              f"{_same_command(args)}", file=sys.stderr)
        return 143 if isinstance(err, _Terminated) else 130
    ds.attrs["wall_time_s"] = time.perf_counter() - clock
    try:
        save(ds, nc, overwrite=args.overwrite)
    except (OSError, RuntimeError) as err:  # a full disk shows as netCDF's RuntimeError too
        return _keep_unsaved(ds, nc, err)
    for kind in cfg.compute:  # the sweep's resumable stores are merged into nc now
        if os.path.exists(f"{store}.{kind}.nc"):
            os.remove(f"{store}.{kind}.nc")
    try:
        png = plot(ds, png, overwrite=True) if ds.attrs.get("figure.kind") != "none" else ""
    except Exception as err:  # the data are safe on disk; a figure must not lose them
        print(f"warning: the figure could not be drawn ({type(err).__name__}: {err})",
              file=sys.stderr)
        png = ""
    print(_summary(ds))
    print(
        f"\nwrote {nc}"
        + (f"\nwrote {png}" if png else "")
        + f"\n(wall time {ds.attrs['wall_time_s']:.1f} s)"
    )
    if _failed(ds):
        print(
            "cavity-eliashberg: error: the solver failed; what was computed before the failure is "
            f"saved in {nc}. Reason: " + next(iter(_failures(ds).values()))[1],
            file=sys.stderr,
        )
        return 3
    return 0


class _Terminated(BaseException):
    """SIGTERM arrived while the console script waited for its worker thread."""


def _in_worker_thread(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a daemon worker thread while this (the main) thread waits
    in short steps, so that Ctrl-C (KeyboardInterrupt) and SIGTERM (`_Terminated`) reach
    the main thread within a fraction of a second even while the worker sits in one long
    compiled XLA call, which no signal interrupts. The caller then exits the process
    (``os._exit``), leaving the daemon worker behind; what it finished is on disk already
    (sweep chunks and evolve checkpoints are written atomically). An exception raised by
    `fn` is raised again here, unchanged. evolve's own signal handler (a checkpoint,
    then a stop) works in the main thread only and stands aside in the worker."""
    box = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - handed to the main thread as it is
            box["error"] = err

    def terminate(signum, frame):
        raise _Terminated

    worker = threading.Thread(target=target, name="cavity-eliashberg-work", daemon=True)
    old = signal.signal(signal.SIGTERM, terminate)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(timeout=0.2)
    finally:
        signal.signal(signal.SIGTERM, old)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _earlier_work(checkpoint: str, store: str, kinds) -> list[str]:
    """What an interrupted run left to resume from: the evolution's checkpoint, the
    finished chunks of each sweep (``<store>.<kind>.nc.parts``) or a finished sweep."""
    out = [f"the checkpoint {checkpoint}"] if os.path.exists(checkpoint) else []
    for kind in kinds:
        done, parts = f"{store}.{kind}.nc", f"{store}.{kind}.nc.parts"
        if os.path.isfile(done):
            out.append(f"the finished {kind} sweep {done}")
        elif os.path.isdir(parts):
            n = sum(f.startswith("part-") and f.endswith(".nc") for f in os.listdir(parts))
            if n:
                out.append(f"{n} finished chunk(s) of the {kind} sweep in {parts}")
    return out


def _ignore_further_interrupts(args) -> None:
    """In the console script, a second Ctrl-C must not cut the message short."""
    if getattr(args, "process", False):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _same_command(args) -> str:
    """The command line that resumes this run (without --overwrite, which would discard
    the finished points)."""
    argv = [a for a in getattr(args, "argv", []) if a != "--overwrite"]
    return shlex.join(["cavity-eliashberg", *argv])


def _keep_unsaved(ds: xr.Dataset, nc: str, err: Exception) -> int:
    """The result could not be written to `nc` (a full disk, a lost folder): write it to
    the system's temporary folder and say where (exit code 3); never lose it silently."""
    reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{os.path.splitext(os.path.basename(nc))[0]}-{stamp}-{os.getpid()}.nc"
    rescue = os.path.join(tempfile.gettempdir(), name)
    try:
        save(ds, rescue)
    except (OSError, RuntimeError) as again:
        again_reason = getattr(again, "strerror", None) or str(again)
        print(f"cavity-eliashberg run: error: cannot write {nc} ({reason}), nor {rescue} "
              f"({again_reason}); the result is lost. Free disk space and run again.",
              file=sys.stderr)
        return 3
    print(f"cavity-eliashberg run: error: cannot write {nc} ({reason}); the result is kept "
          f"in {rescue}: move it where you want it (`cavity-eliashberg show {rescue}`).",
          file=sys.stderr)
    return 3


_NOT_SWEPT = ("xi", "time", "omega", "bath", "process", "dynamic_bath", "state_index")
_GAP_CHANGES = {
    "relative_gap_change_exact": "perturbative (exact linear response)",
    "relative_gap_change_nonlinear": "nonlinear steady state",
    "relative_gap_change": "",
}


def _sweep_axes(ds: xr.Dataset) -> list[str]:
    """The study's swept dimensions, in the order of its [sweep] table."""
    named = [k.strip().replace(".", "_") for k in str(ds.attrs.get("sweep", "")).split(",")]
    axes = [d for d in named if d in ds.dims]
    fine = ds.attrs.get("figure.fine_x")  # [perturbative] refine: the curves' finer x axis
    return axes + [d for d in ds.dims if d not in axes and d not in _NOT_SWEPT and d != fine]


def _at(ds: xr.Dataset, da: xr.DataArray, flat: int) -> str:
    """'dim = value unit, ...' of the flat index `flat` of `da`."""
    idx = np.unravel_index(flat, da.shape)
    parts = []
    for d, i in zip(da.dims, idx, strict=True):
        unit = _units(ds[d]).strip(" []") if d in ds.coords else ""
        value = float(ds[d][i]) if d in ds.coords else i
        parts.append(f"{d} = {value:.6g}{' ' + unit if unit else ''}")
    return ", ".join(parts)


def _axis_line(ds: xr.Dataset, d: str) -> str:
    x = np.asarray(ds[d].values, float) if d in ds.coords else np.arange(ds.sizes[d], dtype=float)
    text = f"  {d}{_units(ds[d]) if d in ds.coords else ''}: {_values(x, '{:.6g}', 8)}"
    if x.size <= 8:
        text += f" ({x.size} value{'s' if x.size != 1 else ''})"
    if x.size >= 3 and np.all(x > 0):
        ratio = x[1:] / x[:-1]
        if np.allclose(ratio, ratio[0], rtol=1e-6) and not np.isclose(ratio[0], 1.0):
            text += f", log-spaced (x{ratio[0]:.4g} per step)"
        elif np.allclose(np.diff(x), x[1] - x[0], rtol=1e-6):
            text += f", step {x[1] - x[0]:.6g}"
    return text


def _peak_lines(ds: xr.Dataset) -> list[str]:
    lines = []
    for name, label in _GAP_CHANGES.items():
        if name not in ds or ds[name].dtype.kind not in "fiu" or "xi" in ds[name].dims:
            continue
        da = ds[name]
        v = np.asarray(da.values, float)
        what = f"peak delta Delta / Delta_0 (largest |.|){', ' + label if label else ''}"
        if not np.isfinite(v).any():
            lines.append(f"  {what}: no finite value")
            continue
        k = int(np.nanargmax(np.abs(v)))
        where = _at(ds, da, k)
        lines.append(f"  {what}: {v.flat[k]:+.4g}"
                     + (f" at {where}" if where else ""))
        if "time" in da.dims and da.ndim == 1:
            lines.append(f"  final delta Delta / Delta_0 (t = {float(ds.time[-1]):.6g}"
                         f"{_units(ds.time).strip(' []') and ' ' + _units(ds.time).strip(' []')}): "
                         f"{float(da[-1]):+.4g}")
    return lines


def _sign_change_lines(ds: xr.Dataset) -> list[str]:
    if not any(v in ds for v in ("relative_gap_change_exact", "relative_gap_change_nonlinear")):
        return []
    x = ds.attrs.get("figure.x") or (_sweep_axes(ds) or [None])[0]
    y = ds.get("relative_gap_change_exact", ds.get("relative_gap_change_nonlinear"))
    fine = ds.attrs.get("figure.fine_x")
    if fine in y.dims:  # the perturbative curve sampled finer than the sweep
        x = fine
    if x not in ds.dims or x not in y.dims or ds.sizes[x] < 2 or "time" in y.dims:
        return []
    try:
        found = gap_change_sign_changes(ds)
    except Exception as err:  # noqa: BLE001 - a summary must not fail on one number
        return [f"  sign changes: not found ({type(err).__name__}: {err})"]
    which = "perturbative" if y.name == "relative_gap_change_exact" else "nonlinear"
    head = f"  sign changes of delta Delta / Delta_0 ({which}, root find) along {x}{_units(ds[x])}"
    if list(found) == [()]:
        return [f"{head}: {_values(found[()], '{:.6g}') or 'none'}"]
    lines = [f"{head}:"]
    for label, zs in list(found.items())[:12]:
        lines.append(f"    {', '.join(label)}: {_values(zs, '{:.6g}') or 'none'}")
    if len(found) > 12:
        lines.append(f"    ... ({len(found) - 12} more curves)")
    return lines


def _ten_percent_lines(ds: xr.Dataset, level: float = 0.1) -> list[str]:
    """perturbation_check: where nonlinear and perturbative first differ by `level`
    (relative to the perturbative value), interpolated linearly in log x and log of the
    relative difference (a straight line on the figure's log-log axes)."""
    if ds.attrs.get("figure.kind") != "coupling" or not all(
        v in ds for v in ("relative_gap_change_exact", "relative_gap_change_nonlinear")
    ):
        return []
    x = ds.attrs.get("figure.x") or _sweep_axes(ds)[0]
    pert = ds.relative_gap_change_exact
    fine = ds.attrs.get("figure.fine_x")
    if fine in pert.dims:  # refined perturbative curve: its values at the nonlinear points
        pert = pert.interp({fine: ds[x].values}).rename({fine: x}).assign_coords({x: ds[x]})
    rel = abs(ds.relative_gap_change_nonlinear - pert) / abs(pert)
    unit = _units(ds[x]).strip(" []")
    unit = f" {unit}" if unit else ""
    xs = np.asarray(ds[x].values, float)
    others = [d for d in rel.dims if d != x]
    lines = []
    for idx in np.ndindex(*[ds.sizes[d] for d in others]):
        sel = dict(zip(others, idx, strict=True))
        r = np.asarray(rel.isel(sel).transpose(x).values, float)
        label = ", ".join(f"{d} = {float(ds[d][i]):g}" for d, i in sel.items())
        label = f" ({label})" if label else ""
        lines.append(f"  |nonlinear - perturbative| / |perturbative|{label}: "
                     + _values(100 * r, "{:.3g} %"))
        above = np.flatnonzero(r >= level)
        if above.size == 0:
            lines.append(f"  within {100 * level:g} % up to {x} = {xs[-1]:.6g}{unit}")
            continue
        k = int(above[0])
        if k == 0:
            lines.append(f"  off by {100 * level:g} % or more already at the smallest "
                         f"{x} = {xs[0]:.6g}{unit}")
            continue
        a, b = xs[k - 1], xs[k]
        if r[k - 1] > 0 and a > 0 and b > 0:
            f = (np.log(level) - np.log(r[k - 1])) / (np.log(r[k]) - np.log(r[k - 1]))
            z = float(np.exp(np.log(a) + f * (np.log(b) - np.log(a))))
        else:
            z = float(a + (level - r[k - 1]) / (r[k] - r[k - 1]) * (b - a))
        lines.append(f"  nonlinear and perturbative first differ by {100 * level:g} % at "
                     f"{x} = {z:.4g}{unit} (log-log interpolation between {a:.4g} and {b:.4g})")
    return lines


def _warning_lines(ds: xr.Dataset) -> list[str]:
    stored = [w.strip() for w in str(ds.attrs.get("warnings", "")).split(" | ") if w.strip()]
    for name in ds.data_vars:  # per-point warnings of a sweep (solvers.sweep)
        if str(name).endswith("warnings") and ds[name].dtype.kind in "OUS":
            for text in np.asarray(ds[name].values).reshape(-1).astype(str):
                stored += [w.strip() for w in text.split(" | ") if w.strip()]
    lines = [f"  - {w}" for w in dict.fromkeys(stored)]
    for kind, (bad, reason) in _failures(ds).items():
        total = int(np.asarray(ds[f"{kind}_status"].values).size)
        lines.append(f"  - {bad} of {total} {kind} point(s) failed; first reason: {reason}")
    return ["warnings stored with the result:", *lines] if lines else [
        "warnings stored with the result: none"]


def _show_results(ds: xr.Dataset) -> list[str]:
    """The first screen of `show`: axes, key numbers, analyses, warnings."""
    a = ds.attrs
    points = int(np.prod([ds.sizes[d] for d in _sweep_axes(ds)]))
    wall = a.get("wall_time_s")
    compute = ", ".join(str(a.get("compute", "?")).split(","))
    lines = [f"computed: {compute}; {points} point(s)"
             + (f"; wall time {float(wall):.1f} s" if wall is not None else "")]
    axes = _sweep_axes(ds)
    lines += ["sweep axes:", *(_axis_line(ds, d) for d in axes)] if axes else [
        "sweep axes: none (one point)"]
    fine = a.get("figure.fine_x")
    if fine in ds.dims:
        lines.append(f"  (the perturbative curves are sampled finer, over {fine}: "
                     f"{ds.sizes[fine]} values)")
    key = _peak_lines(ds) + _sign_change_lines(ds) + _ten_percent_lines(ds)
    if key:
        lines += ["key numbers:", *key]
    analyses = _analysis_lines(ds)
    if analyses:
        lines += ["fitted and slowest times (the study's analyses):", *analyses]
    return lines + _warning_lines(ds)


def _show(args) -> int:
    ds = _load_result(args.file)
    a = ds.attrs
    print(f"{args.file}: {a.get('title', '')}")
    print("\n".join(_show_results(ds)))
    print("variables:")
    for name in ds.data_vars:
        da = ds[name]
        if da.dtype.kind in "OUS":
            values = np.asarray(da.values).reshape(-1).astype(str)
            counts = [f"{v} x{int(np.sum(values == v))}" for v in dict.fromkeys(values) if v]
            if counts:
                print(f"  {name}: " + ", ".join(counts))
        elif da.ndim == 0:
            print(f"  {name} = {float(da):.6g}{_units(da)}")
        elif da.dims == ("time",):
            print(f"  {name} = {float(da[0]):.6g} -> {float(da[-1]):.6g} over the run{_units(da)}")
        elif "xi" not in da.dims:
            v = da.values
            print(f"  {name} ({', '.join(da.dims)}): from {np.nanmin(v):.4g} to "
                  f"{np.nanmax(v):.4g}{_units(da)}")
    groups = {"model": [], "baths": [], "solver": [], "version": [], "other": []}
    for k, v in a.items():
        if k in ("config", "warnings"):
            continue
        group = "solver" if ".solver." in k else k.split(".")[0]
        groups.get(group, groups["other"]).append(f"  {k} = {v}")
    for name in ("other", "model", "baths", "solver", "version"):
        if groups[name]:
            print(f"{name}:" if name != "other" else "about:")
            print("\n".join(groups[name]))
    if "config" in a:
        print(
            f"config: sha256 {a.get('config_hash', '(not recorded)')} "
            f"from {a.get('config_source', '?')} (full text in the 'config' attribute)"
        )
    return 0


def _plot(args) -> int:
    ds = _load_result(args.file)
    out = args.output or os.path.splitext(args.file)[0] + ".png"
    if os.path.exists(out) and not args.overwrite:
        raise OutputError(f"{out} exists; pass --overwrite to replace it.")
    if os.path.isdir(os.path.dirname(os.path.abspath(out))) is False:
        raise OutputError(f"the folder of {out} does not exist.")
    if ds.attrs.get("kind") != "study":  # a single solver's dataset from the Python API
        ds = ds.assign_attrs({"figure.kind": "transient" if "time" in ds.dims else "delta_n"})
        if "delta0" not in ds:
            ds["delta0"] = float(ds.attrs.get("model.delta0", np.nan))
        if "delta_n_first_order" not in ds and "time" not in ds.dims and "delta_n" in ds:
            ds = ds.rename({"delta_n": "delta_n_nonlinear"})
    if not plot(ds, out, overwrite=True):
        print(f"{args.file} asks for no figure (figure.kind = 'none'); nothing written.")
        return 0
    print(f"wrote {out}")
    return 0


def _list(args) -> int:
    for name in study_names():
        print(f"{name:24s} {study_title(name)}")
    return 0


def _concise_warnings() -> None:
    """Print each distinct warning once, as one line, not with a source excerpt."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message)
        if text not in seen:
            seen.add(text)
            print(f"warning ({category.__name__}): {text}", file=sys.stderr)

    warnings.showwarning = show


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="cavity-eliashberg",
        description="Kinetic equation of Bogoliubov quasiparticles coupled to cavity photons, "
        "phonons and drives, with a self-consistent BCS gap (docs/physics.md; units "
        "hbar = k_B = 1, energies in k_B T_c, times in hbar/(k_B T_c)).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser(
        "run",
        help="run a study from a TOML configuration (default: the paper's Fig. 1(a))",
        description="Run a study: validate the configuration, compute, write NAME.nc and "
        "NAME.png. Without CONFIG the built-in default study (runs/fig1a.toml) runs and writes "
        "into runs/output.",
    )
    p_run.add_argument(
        "config",
        nargs="?",
        default=None,
        help="a TOML configuration (see runs/README.md) or the name of a shipped study "
        "(`cavity-eliashberg list`)",
    )
    p_run.add_argument(
        "--output", default=None, help="output folder (default: the config's [output] folder)"
    )
    p_run.add_argument(
        "--quick", action="store_true", help="apply the config's [quick] overrides (coarse, fast)"
    )
    p_run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a configuration value, e.g. --set grid.n=800 (repeatable)",
    )
    p_run.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p_run.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run the sweep on a dask.distributed scheduler (tcp://host:8786)")
    p_run.add_argument("--workers", type=int, default=None,
                       help="run the sweep on a local cluster of this many worker processes")
    p_run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p_run.add_argument("--no-compile-cache", action="store_true", help=OPTION_HELP)
    p_run.set_defaults(func=_run)
    p_resume = sub.add_parser(
        "resume",
        help="continue an interrupted evolution from its checkpoint",
        description="Continue a run stopped by Ctrl-C, SIGTERM or a lost machine from the "
        "checkpoint it wrote (NAME.checkpoint.nc next to its output); the result is the "
        "same as an uninterrupted run's to solver tolerance.",
    )
    p_resume.add_argument("file", help="NAME.checkpoint.nc")
    p_resume.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p_resume.add_argument("--no-compile-cache", action="store_true", help=OPTION_HELP)
    p_resume.set_defaults(func=_resume)
    p_list = sub.add_parser(
        "list",
        help="list the shipped studies (run one with `cavity-eliashberg run NAME`)",
        description="Print each shipped study's name and title, one line each.",
    )
    p_list.set_defaults(func=_list)
    p_show = sub.add_parser(
        "show",
        help="summarize a saved result",
        description="Print a saved result's parameters, solver statistics, "
        "versions, configuration hash and results.",
    )
    p_show.add_argument("file", help="a netCDF file written by cavity-eliashberg")
    p_show.set_defaults(func=_show)
    p_plot = sub.add_parser(
        "plot",
        help="draw the figure of a saved result",
        description="Draw the figure of a saved result (PNG).",
    )
    p_plot.add_argument("file", help="a netCDF file written by cavity-eliashberg")
    p_plot.add_argument("--output", default=None, help="PNG path (default: next to FILE)")
    p_plot.add_argument("--overwrite", action="store_true", help="replace an existing figure")
    p_plot.set_defaults(func=_plot)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.process = argv is None  # the console script (main() from Python: a function call)
    _concise_warnings()
    if args.process and hasattr(args, "no_compile_cache"):  # run, resume: they compile
        use_compile_cache(args.no_compile_cache)
    code = _main(args)
    if code in (130, 143) and args.process:
        # leave without the interpreter's teardown: XLA compiler threads still running
        # after a Ctrl-C can crash it (a segmentation fault after the message); what was
        # finished is on disk already
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(args) -> int:
    try:
        code = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe (`| head`) shows up here
        return code
    except kinetics.CavityEliashbergError as err:
        print(f"cavity-eliashberg {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError) as err:
        print(f"cavity-eliashberg {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:  # an optional dependency (dask for --workers / --scheduler)
        print(f"cavity-eliashberg {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _ignore_further_interrupts(args)
        print(f"cavity-eliashberg {args.command}: interrupted (Ctrl-C); nothing was written.",
              file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cavity-eliashberg show FILE | head`: the reader has gone
        _stdout_to_devnull()
        return 0


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush into a closed pipe
    does not print an error (the Python documentation's recipe for SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real stdout (a test's capture)
        pass


if __name__ == "__main__":
    sys.exit(main())

"""A sweep's results on disk and in memory: chunk datasets, the resumable store
(``<output>.parts/``), and the merge into one dataset over the swept parameters."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid

import numpy as np
import xarray as xr

from kinetics import ParameterError

from ._dataset import save

# per-point statistics of a chunk: name -> dtype
STATISTICS = {
    "status": object,
    "message": object,
    "warnings": object,
    "sweep_run": object,
    "converged": np.int8,
    "residual": np.float64,
    "iterations": np.int64,
    "wall_time": np.float64,
}


def part_dataset(result: dict) -> xr.Dataset:
    """One chunk's results (as returned by a worker) -> a dataset over ``point``.

    Each point's variables are ``name -> (dims, values)`` (``solvers.state_variables``
    and the solver's extras); a variable is kept where every point that has it agrees on
    its coordinates (xi, omega, time), and NaN for the points that do not have it.
    """
    pts = result["points"]
    idx = np.asarray([p["index"] for p in pts], dtype=np.int64)
    data = {}
    for name, dtype in STATISTICS.items():
        values = [result["run_id"] if name == "sweep_run" else p[name] for p in pts]
        data[name] = ("point", np.asarray(values, dtype=dtype))
    coords = {"point": ("point", idx)}
    agreed = {}
    for p in pts:
        for c, (dim, v) in p["coords"].items():
            v = np.asarray(v)
            if c not in agreed:
                agreed[c] = (dim, v)
            elif agreed[c] is not None and not (
                agreed[c][1].shape == v.shape and np.array_equal(agreed[c][1], v)
            ):
                agreed[c] = None  # differs between points: variables over it are dropped
    for c, v in agreed.items():
        if v is not None:
            coords[c] = v
    names = list(dict.fromkeys(n for p in pts for n in p["values"]))
    for name in names:
        dims, first = next(p["values"][name] for p in pts if name in p["values"])
        if any(d not in coords and d != "time" for d in dims):
            continue
        first = np.asarray(first)
        arr = np.full((len(pts),) + first.shape, np.nan)
        for k, p in enumerate(pts):
            if name in p["values"]:
                arr[k] = p["values"][name][1]
        data[name] = (("point",) + tuple(dims), arr)
    if "time" in result:
        coords["time"] = ("time", np.asarray(result["time"]))
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update({"compile_s": result["compile_s"], "worker": result["worker"]})
    return ds


def spec_of(
    kind, params, opts, keep_n, factory_label: str, continuation=None, direction="up"
) -> dict:
    """What a sweep computes (not where or how): the key of its resumable store.

    `direction` enters only when it is not the default "up", so that the stores and
    digests of sweeps made before it existed stay valid (a rerun resumes them)."""
    spec = {
        "kind": kind,
        "parameters": {k: v.tolist() for k, v in params.items()},
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(opts.items())},
        "keep_n": bool(keep_n),
        "factory": factory_label,
    }
    if continuation is not None:
        spec["continuation"] = continuation
    if direction != "up":
        spec["direction"] = direction
    return spec


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class Store:
    """``<output>.parts/``: manifest.json + one atomic netCDF file per finished chunk."""

    def __init__(self, output: str, spec: dict, overwrite: bool):
        self.output = output
        self.folder = output + ".parts"
        self.spec = spec
        self.digest = spec_hash(spec)
        manifest = os.path.join(self.folder, "manifest.json")
        if overwrite and os.path.isdir(self.folder):
            shutil.rmtree(self.folder)
        if os.path.isdir(self.folder):
            try:
                with open(manifest) as fh:
                    old = json.load(fh)
            except (OSError, ValueError):
                old = None
            if old is None or old.get("digest") != self.digest:
                differ = (
                    "unreadable manifest"
                    if old is None
                    else ", ".join(
                        k
                        for k in spec
                        if old.get("spec", {}).get(k) != json.loads(json.dumps(spec))[k]
                    )
                )
                raise ParameterError(
                    f"sweep: {self.folder} holds the partial results of a different sweep "
                    f"(differs in: {differ}). Pass overwrite=True to discard them, or choose "
                    f"another output."
                )
        else:
            os.makedirs(self.folder)
            tmp = manifest + f".tmp-{uuid.uuid4().hex[:8]}"
            with open(tmp, "w") as fh:
                json.dump({"digest": self.digest, "spec": spec}, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, manifest)

    def parts(self) -> list[str]:
        return sorted(
            os.path.join(self.folder, f)
            for f in os.listdir(self.folder)
            if f.startswith("part-") and f.endswith(".nc")
        )

    def done(self) -> set[int]:
        out: set[int] = set()
        for path in self.parts():
            with xr.open_dataset(path, engine="netcdf4") as ds:
                out.update(int(i) for i in ds.point.values)
        return out

    def write(self, part: xr.Dataset) -> str:
        first = int(part.point.values.min())
        name = f"part-{first:09d}-{uuid.uuid4().hex[:8]}.nc"
        return save(part, os.path.join(self.folder, name))


def merge(parts: list[xr.Dataset], params: dict) -> xr.Dataset:
    """Chunk datasets -> arrays over the swept parameters (first result of a point wins);
    points that no chunk holds are marked ``status = "missing"``."""
    shape = tuple(v.size for v in params.values())
    n_points = int(np.prod(shape))
    seen = np.zeros(n_points, dtype=bool)
    coords: dict = {}
    for part in parts:  # coordinates other than `point`: kept where every part agrees
        for c, da in part.coords.items():
            if c == "point":
                continue
            if c not in coords:
                coords[c] = da
            elif coords[c] is not None and not (
                coords[c].shape == da.shape and np.array_equal(coords[c].values, da.values)
            ):
                coords[c] = None
    out: dict = {}
    for part in parts:
        idx = part.point.values.astype(np.int64)
        fresh = ~seen[idx]
        seen[idx[fresh]] = True
        for name, da in part.data_vars.items():
            if any(d != "point" and d in coords and coords[d] is None for d in da.dims):
                continue
            if name not in out:
                trailing = da.shape[1:]
                if da.dtype == object or da.dtype.kind in "US":
                    arr = np.full((n_points,) + trailing, "", dtype=object)
                elif da.dtype.kind in "iub":
                    arr = np.zeros((n_points,) + trailing, dtype=da.dtype)
                else:
                    arr = np.full((n_points,) + trailing, np.nan)
                out[name] = (da.dims[1:], arr)
            out[name][1][idx[fresh]] = da.values[fresh]
    dims = tuple(params)
    data = {
        name: (dims + trailing, arr.reshape(shape + arr.shape[1:]))
        for name, (trailing, arr) in out.items()
    }
    if "status" in data:
        data["status"][1][~seen.reshape(shape)] = "missing"
    else:
        data["status"] = (dims, np.full(shape, "missing", dtype=object))
    coord_vars = {k: (k, v) for k, v in params.items()}
    for c, da in coords.items():
        if da is not None:
            coord_vars[c] = (da.dims, da.values)
    ds = xr.Dataset(data, coords=coord_vars)
    if "converged" in ds:
        ds["converged"] = ds.converged.astype(bool)
    return ds

"""Parameter sweeps: compiled once per problem shape, in-process or on dask.distributed.

``sweep(model_factory, {"omega0": [...], "t_cav": [...]}, kind="steady")`` solves
the model ``model_factory(omega0=..., t_cav=...)`` at every point of the outer
product of the parameter values and returns one ``xarray.Dataset`` with one
dimension per swept parameter.

How the work is organised
-------------------------

- The points still to compute are cut into *chunks* (the unit of work, of
  streaming and of resumption). A chunk runs :func:`_run_chunk`: it builds the
  models, groups the points whose models share a structure (grid, bath types, every
  static setting: only float64 parameter values differ) and solves each group with
  *one* compiled program, kept in a per-process cache, so a process compiles once
  per problem shape and never again (changing parameter values never recompiles:
  they are traced arrays). ``batch="vmap"`` runs a group as one ``jax.vmap``-ed
  program over the stacked models (padded to the chunk size, so that the last
  chunk reuses the program); ``batch="loop"`` calls the single-point program once
  per point. "auto" picks "loop" on CPU, where XLA already spreads one point's
  N x N kernels and N^3 LU over the cores and a batch only adds lock-step work
  (benchmarks/sweep.py), and "vmap" on accelerators.
- Without ``output`` the results stay in memory. With ``output="map.nc"``, every
  chunk's results are written, as they arrive, to ``map.nc.parts/`` (atomic netCDF
  files, one per chunk, and a manifest of the sweep); a rerun of the same sweep
  computes only the points not in that folder. When every point is there they are
  merged into ``map.nc`` (atomic) and the folder is removed. A rerun of a finished
  sweep returns the file.
- ``scheduler="tcp://host:8786"`` sends the chunks as tasks to a dask.distributed
  cluster; each worker keeps its compiled programs across tasks. Without an
  address, a ``distributed.LocalCluster`` is started when it helps (``workers`` > 1,
  or ``workers=None`` with >= 4 cores and dask installed), else the chunks run in
  this process. dask is optional: ``pip install "cavity-eliashberg[distributed]"``.

The store records *what* is computed (factory, parameter values, kind, options),
not *where* or *how*: a sweep started in-process may be resumed on a cluster, with
another ``chunk_size`` or ``batch``. ``compilation_cache=FOLDER`` points JAX's
persistent compilation cache of every process at FOLDER, so that a worker that
finds a program there loads it instead of compiling it.

A point that cannot be built or solved is marked in the dataset (``status``
"failed" or "error", ``message`` says why) and never stops the sweep.

The model factory
-----------------

Any callable ``model_factory(**values) -> kinetics.Model`` whose keyword arguments
are the swept parameter names; each value is a Python float in the unit stated by
``units`` (coordinates carry it). For a cluster it must be picklable: a module-level
function, or ``functools.partial`` of one to fix the other settings::

    def cavity(omega0, t_cav, *, eta, grid_n=400):
        grid = kinetics.Grid(n=grid_n)
        bath = kinetics.MultimodeCavity(omega0=omega0, t_cav=t_cav, eta=eta)
        return kinetics.Model(t_qp=0.9, tau_in=1000.0, baths=[bath], grid=grid)

    factory = functools.partial(cavity, eta=0.0155 / 1000.0)
    ds = solvers.sweep(factory, {"omega0": [1.0, 2.0], "t_cav": [0.0, 0.45]})

The resumable store is keyed by the factory's name (module, qualified name and the
arguments of a partial), the parameter values, ``kind`` and the solver options: if
the factory's *code* changes, pass ``overwrite=True`` or another ``output``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time as _time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence

import jax
import numpy as np
import xarray as xr

from kinetics import Model, ParameterError

from ._dataset import _attr_value, annotate, load, model_attributes, package_versions, save
from ._options import DEFAULTS
from ._resources import available_memory, check_resources
from ._sweep_checks import (
    check_factory,
    check_linear_solver,
    check_options,
    check_parameters,
    check_units,
    factory_name,
)
from ._sweep_chunk import Task, describe_error, run_chunk
from ._sweep_store import Store, merge, part_dataset, spec_hash, spec_of

KINDS = ("steady", "evolve", "perturbative")

# the order in which a continuation follows its axis; "both" gives the dimension `branch`
DIRECTIONS = ("up", "down", "both")
BRANCHES = ("up", "down")

BATCH_MODES = ("auto", "vmap", "loop")

# Bytes per point and per grid point squared (float64 N x N arrays alive at once in
# the Newton step: kernels, Jacobian, its LU, line-search copies; XLA's temporaries
# for one Jacobian are ~19 N^2 x 8 bytes, benchmarks/README.md). Generous on purpose.
_BYTES_PER_N2 = 64 * 8
_MAX_CHUNK = 64


# ---------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------


def _import_distributed():
    try:
        import distributed
    except ImportError as err:
        raise ImportError(
            "sweep on a cluster needs dask.distributed, which is not installed: "
            "pip install 'cavity-eliashberg[distributed]' (or 'dask[distributed]')."
        ) from err
    return distributed


def _dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def default_chunk_size(
    n_pending: int, grid_n: int, workers: int, batch: str, n_save: int = 1
) -> int:
    """Points per chunk: >= 4 chunks per worker (load balance, streaming), at most 64,
    and, for ``batch="vmap"``, at most what fits in half the available memory
    (~64 N^2 float64 per point, plus the saved states)."""
    target = math.ceil(n_pending / (4 * max(1, workers)))
    cap = _MAX_CHUNK
    if batch == "vmap":
        per_point = _BYTES_PER_N2 * grid_n**2 + 8 * grid_n * n_save * 4
        cap = min(cap, max(1, int(0.5 * available_memory() // per_point)))
    return int(max(1, min(target, cap)))


def sweep(
    model_factory: Callable[..., Model],
    parameters: Mapping[str, Sequence[float]],
    *,
    kind: str = "steady",
    options: Mapping | None = None,
    units: Mapping[str, str | tuple[str, str]] | None = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = False,
    scheduler: str | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    batch: str = "auto",
    keep_n: bool = True,
    continuation: str | None = None,
    direction: str = "up",
    max_memory_gb: float | None = None,
    compilation_cache: str | os.PathLike | None = None,
    progress: bool = True,
    config: dict | None = None,
    linear_solver: str = "dense",
) -> xr.Dataset:
    """Solve a model over the outer product of parameter values; one dataset back.

    **Main arguments:**

    - `model_factory`: ``model_factory(**{name: value}) -> kinetics.Model``; each value is
      a Python float in the unit of its coordinate (see the module docstring; picklable
      for a cluster: a module-level function or a ``functools.partial`` of one).
    - `parameters`: name -> 1-D sequence of distinct finite values. The dataset has one
      dimension per name, in this order.
    - `kind`: "steady" (nonlinear steady state, as ``steady_state``), "evolve" (time
      evolution from the thermal state, as ``evolve``) or "perturbative" (as
      ``perturbative``).
    - `options`: solver settings, as the solver's keyword arguments. steady: `tol`
      (relative residual and step, 1e-10), `max_iter` (200), `start` ("perturbative"),
      `continuation_steps` (8), `t` (0.0 [hbar/(k_B T_c)]); evolve: `t_save` (required,
      [hbar/(k_B T_c)]), `solver` ("auto"), `rtol` (1e-8), `atol` (1e-12), `max_steps`,
      `n0_excess` (0: the initial n is the thermal n times 1 + n0_excess, bosons at their
      reservoirs); perturbative: `t`. Defaults: ``solvers.DEFAULTS``.
    - `units`: name -> unit string or (long_name, units) of a swept parameter; needed for
      names outside ``PARAMETER_UNITS`` (omega0, t_cav, eta, ... [k_B T_c], ...).

    **Where and how:**

    - `output`: netCDF path of the result. Chunks are written as they finish to
      ``<output>.parts/`` and a rerun resumes from them (no point computed twice); the
      merged file is written atomically at the end, and the folder removed. A rerun of a
      finished sweep returns the file. Without `output`, nothing is written.
    - `overwrite`: discard an existing result or partial results at `output`.
    - `scheduler`: address of a dask.distributed scheduler ("tcp://host:8786"); chunks
      become tasks and every worker compiles once.
    - `workers`: without `scheduler`: 1 runs in this process; k > 1 starts a
      ``distributed.LocalCluster`` of k single-threaded worker processes on loopback;
      None starts one (of cores // 2 workers) only with >= 4 cores and dask installed.
    - `chunk_size`: points per task (default: `default_chunk_size`).
    - `batch`: "vmap" (a group of points as one vectorized program), "loop" (the
      single-point program once per point) or "auto" ("loop" on CPU, "vmap" on GPU/TPU).
    - `keep_n`: store each point's occupation n(xi) (evolve: n(time, xi)) and the other
      variables over xi and omega.
    - `continuation`: (kind "steady") the name of a swept parameter: the points along it
      are solved in order, each started from the previous point's steady state (a warm
      start: follows a branch, and converges where a cold start would not); the other
      axes give independent lines. A point whose predecessor failed starts cold.
    - `direction`: (with `continuation`) the order in which each line is followed: "up"
      (the default: the values in the order given), "down" (the reverse order) or "both"
      (each line both ways: the dataset gains a dimension ``branch`` = ["up", "down"] on
      every per-point variable, and the hysteresis of the gap between the two branches,
      ``hysteresis(ds, continuation)``: `hysteresis_turning_point`,
      `hysteresis_interval`, `hysteresis_points`). Where the model is bistable along the
      axis, "up" and "down" follow different branches up to their turning points.
    - `max_memory_gb`: refuse (``ResourceError``, before any work) a sweep whose points
      held at once (a vmap chunk, the local workers) need more memory than this
      (default: 80 % of the memory available now).
    - `compilation_cache`: a folder for JAX's persistent compilation cache, used by this
      process and every worker (on a cluster: a path all nodes see). A process that
      finds a program there loads it instead of compiling it (steady state: ~20 s ->
      ~3 s of tracing), which helps workers that join late, reruns and resumed sweeps.
    - `progress`: a tqdm bar of finished points with the estimated time left.
    - `config`: the configuration that produced the sweep (stored as JSON).
    - `linear_solver`: the Newton systems of kind "steady" and of evolve's "bdf": "dense"
      (the LU; the default), "krylov" (GMRES with the structured Jacobian), "krylov-jvp"
      (steady only: matrix-free products) or "auto" (Krylov from ``KRYLOV["auto_size"]``
      / ``KRYLOV["bdf_auto_size"]`` state variables on), as in ``steady_state`` and
      ``evolve``; vmap-batched points run the Krylov path batched. A point whose Krylov
      path fails is redone with the LU: a steady point through the continuation fallback
      on the dense path, an evolve point whose GMRES gave up as a dense run. Anything
      but "dense" is recorded in ``solver.linear_solver``.

    Returns a dataset with coordinates = the swept parameters (with units), results
    `gap` [k_B T_c], `relative_gap_change`, `delta0`, `n_qp`, `energy` (evolve: over
    `time` as well; perturbative adds `relative_gap_change_gl`), optionally `n`, and
    per-point statistics: `status` ("success", "failed": did not converge, "error":
    raised; "missing": a chunk was lost), `message`, `warnings`, `converged`, `residual`,
    `iterations`, `wall_time` [s], `sweep_run`. With ``direction="both"`` every per-point
    variable is also over ``branch`` (after the swept dimensions) and the dataset holds
    `hysteresis_turning_point`, `hysteresis_interval` and `hysteresis_points` of the gap
    (`hysteresis`). Attributes ``sweep.*`` give the totals
    (points computed in this run and resumed, compile time per worker, backend);
    ``model.*``/``baths.*`` are those of the first point.
    """
    # ---- checks, before any work ----
    if kind not in KINDS:
        raise ParameterError(f"sweep: kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    if batch not in BATCH_MODES:
        raise ParameterError(
            f"sweep: batch must be one of {', '.join(BATCH_MODES)}; got {batch!r}."
        )
    params = check_parameters(parameters)
    names = tuple(params)
    check_factory(model_factory, names)
    if not isinstance(direction, str) or direction not in DIRECTIONS:
        raise ParameterError(
            f"sweep: direction must be one of {', '.join(map(repr, DIRECTIONS))} (the order in "
            f"which the continuation follows its axis); got {direction!r}."
        )
    if direction != "up" and continuation is None:
        raise ParameterError(
            f"sweep: direction={direction!r} needs continuation=<a swept parameter> (the axis "
            "the steady states are followed along); got continuation=None."
        )
    if direction == "both" and "branch" in names:
        raise ParameterError(
            "sweep: with direction='both' the dataset gains a dimension 'branch'; rename the "
            "swept parameter 'branch'."
        )
    if continuation is not None:
        if kind != "steady":
            raise ParameterError(
                f"sweep: continuation applies to kind='steady' only; got kind={kind!r}."
            )
        if continuation not in names:
            raise ParameterError(
                f"sweep: continuation must name a swept parameter ({', '.join(names)}); got "
                f"{continuation!r}."
            )
    coord_units = check_units(names, units)
    opts = check_options(kind, options)
    check_linear_solver(kind, linear_solver)
    if linear_solver != "dense":
        # (only then: the store keys and digests of dense sweeps stay those they were)
        opts["linear_solver"] = linear_solver
    if chunk_size is not None and (
        not isinstance(chunk_size, (int, np.integer))
        or isinstance(chunk_size, bool)
        or chunk_size < 1
    ):
        raise ParameterError(
            f"sweep: chunk_size must be a positive integer or None; got {chunk_size!r}."
        )
    if workers is not None and (
        not isinstance(workers, (int, np.integer)) or isinstance(workers, bool) or workers < 1
    ):
        raise ParameterError(f"sweep: workers must be a positive integer or None; got {workers!r}.")
    if scheduler is not None and not isinstance(scheduler, str):
        raise ParameterError(
            f"sweep: scheduler must be an address string such as 'tcp://10.0.0.1:8786'; got "
            f"{scheduler!r}."
        )
    if scheduler is not None and workers is not None:
        raise ParameterError(
            "sweep: pass either scheduler (an existing cluster) or workers, not both."
        )
    if output is not None:
        output = os.fspath(output)
        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):
            raise ParameterError(f"sweep: the folder of output, {folder}, does not exist.")
    if batch == "auto":
        batch = "loop" if jax.default_backend() == "cpu" else "vmap"
    use_cluster = scheduler is not None or (workers is not None and workers > 1)
    if workers is None and scheduler is None:
        use_cluster = (os.cpu_count() or 1) >= 4 and _dask_available()
        n_local = max(2, (os.cpu_count() or 1) // 2)
    else:
        n_local = workers or 1
    if use_cluster:
        _import_distributed()
        import cloudpickle

        try:
            cloudpickle.dumps(model_factory)
        except Exception as err:
            raise ParameterError(
                "sweep: model_factory must be picklable to run on a cluster (a module-level "
                f"function or functools.partial of one); pickling failed: {describe_error(err)}."
            ) from None

    cache_dir = None if compilation_cache is None else os.path.abspath(os.fspath(compilation_cache))
    spec = spec_of(kind, params, opts, keep_n, factory_name(model_factory), continuation,
                   direction)
    t_save = opts.get("t_save")
    shape = tuple(v.size for v in params.values())
    n_points = int(np.prod(shape))
    # direction "both": every point twice, flat index = branch * n_points + point (the
    # up branch first); the store and the merge see 2 n_points points
    n_branches = 2 if direction == "both" else 1
    n_total = n_points * n_branches
    grid_values = [dict(zip(names, vals, strict=True)) for vals in _outer(params)]

    # ---- what is already done ----
    store = None
    if output is not None:
        if os.path.exists(output) and not overwrite:
            old = load(output)
            if old.attrs.get("sweep.digest") == spec_hash(spec):
                return old
            raise ParameterError(
                f"sweep: {output} exists and holds another sweep; pass overwrite=True or choose "
                "another output."
            )
        store = Store(output, spec, overwrite)
    done = store.done() if store is not None else set()
    pending = [i for i in range(n_total) if i not in done]

    # a probe model for the chunk size and the attributes
    probe = _probe(model_factory, grid_values[pending[0] % n_points if pending else 0])
    grid_n = probe.grid.n if probe is not None else 400
    if probe is not None and pending:
        local = n_local if use_cluster and scheduler is None else 1
        at_once = local * (chunk_size or 1 if batch == "vmap" else 1)
        check_resources(probe, kind, opts.get("solver"), points=at_once,
                        max_memory_gb=max_memory_gb, what="sweep",
                        linear_solver=linear_solver if kind != "perturbative" else "dense")

    run_id = f"{_time.strftime('%Y%m%dT%H%M%S', _time.gmtime())}-{uuid.uuid4().hex[:6]}"
    clock = _time.perf_counter()
    compile_by_worker: dict[str, float] = {}
    parts_here: list[xr.Dataset] = []
    lost: list[str] = []

    def collect(result: dict):
        part = part_dataset(result)
        if store is not None:
            store.write(part)
        else:
            parts_here.append(part)
        w = result["worker"]
        compile_by_worker[w] = compile_by_worker.get(w, 0.0) + result["compile_s"]

    backend = "in-process"
    if pending:
        n_workers = 1
        cluster = client = None
        if use_cluster:
            distributed = _import_distributed()
            if scheduler is not None:
                client = distributed.Client(scheduler)
                backend = f"dask.distributed scheduler {scheduler}"
            else:
                cluster = distributed.LocalCluster(
                    n_workers=n_local,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
                client = distributed.Client(cluster)
                backend = f"dask.distributed LocalCluster ({n_local} workers)"
            n_workers = max(1, len(client.scheduler_info().get("workers", {})) or n_local)
        size = chunk_size or default_chunk_size(
            len(pending), grid_n, n_workers, batch, len(t_save) if t_save else 1
        )
        common = dict(
            kind=kind, factory=model_factory, names=names, options=tuple(sorted(opts.items())),
            batch=batch, pad_to=size, keep_n=keep_n, run_id=run_id, compilation_cache=cache_dir,
        )

        def points_of(indices):
            return tuple(
                (i, tuple(grid_values[i % n_points][k] for k in names)) for i in indices
            )

        if continuation is None:
            tasks = [
                Task(points=points_of(pending[s : s + size]), **common)
                for s in range(0, len(pending), size)
            ]
        else:
            tasks = [
                Task(points=points_of(chunk), previous=previous, **common)
                for chunk, previous in _lines(
                    pending, (n_branches, *shape), 1 + names.index(continuation), size, direction
                )
            ]
        from tqdm.auto import tqdm

        with tqdm(
            total=n_total,
            initial=len(done),
            unit="point",
            desc=f"sweep ({kind})",
            disable=not progress,
        ) as bar:
            try:
                if client is None:
                    for task in tasks:
                        try:
                            result = run_chunk(task)
                        except Exception as err:  # a bug in one chunk must not sink the sweep
                            lost.append(describe_error(err))
                            continue
                        collect(result)
                        bar.update(len(task.points))
                else:
                    futures = {client.submit(run_chunk, t, pure=False): t for t in tasks}
                    for fut in distributed.as_completed(list(futures)):
                        try:
                            result = fut.result()
                        except Exception as err:
                            lost.append(describe_error(err))
                            continue
                        collect(result)
                        bar.update(len(futures[fut].points))
                        fut.release()
            finally:
                if client is not None:
                    client.close()
                if cluster is not None:
                    cluster.close()
    wall = _time.perf_counter() - clock

    # ---- merge ----
    parts = [load(p) for p in store.parts()] if store is not None else parts_here
    if direction == "both":
        ds = merge(parts, {"branch": np.asarray(BRANCHES), **params})
        ds = ds.transpose(*names, "branch", ...)
        ds["branch"].attrs.update(
            long_name="direction of the continuation: up = the swept values in the order "
            "given, down = in reverse order (each point started from its predecessor's state)",
            units="1",
        )
    else:
        ds = merge(parts, params)
    if kind == "evolve" and "time" not in ds.coords:
        ds = ds.assign_coords(time=("time", np.asarray(t_save)))
    computed_here = int(sum(int(np.sum(p.sweep_run.values == run_id)) for p in parts))
    for name in params:
        long_name, unit = coord_units[name]
        ds[name].attrs.update(long_name=long_name, units=unit)
    annotate(ds)
    loop = None
    if direction == "both" and "gap" in ds:
        loop = hysteresis(ds, continuation, rtol=_RTOL_PER_TOL * opts["tol"])
        ds = ds.merge(loop)
    attrs = {
        "title": f"cavity-eliashberg {kind} sweep over {', '.join(names)}",
        "kind": f"sweep:{kind}",
        "units": "hbar = k_B = 1; energies in k_B T_c, times in hbar/(k_B T_c)",
        "created": _time.strftime("%Y-%m-%dT%H:%M:%S+00:00", _time.gmtime()),
        "sweep.parameters": ", ".join(names),
        "sweep.factory": factory_name(model_factory),
        "sweep.points": n_total,
        "sweep.points_computed": computed_here,
        "sweep.points_resumed": len(done),
        "sweep.points_failed": int(np.sum(ds.status.values != "success")) if "status" in ds else 0,
        "sweep.chunks_lost": len(lost),
        "sweep.backend": backend,
        "sweep.batch": batch,
        "sweep.wall_time_s": wall,
        "sweep.compile_time_per_worker_s": json.dumps(compile_by_worker, sort_keys=True),
        "sweep.run_id": run_id,
        "sweep.digest": spec_hash(spec),
        "sweep.note": "model.* and baths.* attributes are those of the first point",
    }
    if continuation is not None:
        attrs["sweep.continuation"] = continuation
        attrs["sweep.direction"] = direction
    if loop is not None:
        attrs.update(loop.attrs)
    for k, v in opts.items():
        attrs[f"solver.{k}"] = _attr_value(list(v) if isinstance(v, tuple) else v)
    if probe is not None:
        attrs.update(model_attributes(probe))
    for k, v in package_versions().items():
        attrs[f"version.{k}"] = v
    if config is not None:
        attrs["config"] = json.dumps(config, sort_keys=True, default=str)
    ds.attrs.update(attrs)
    missing = int(np.sum(ds.status.values == "missing")) if "status" in ds else n_points
    if lost or missing:
        warnings.warn(
            f"sweep: {missing} point(s) were not computed ({len(lost)} chunk(s) lost: "
            f"{'; '.join(lost[:3])}). "
            + (
                f"Rerun the same sweep to compute only them (partial results in {store.folder})."
                if store is not None
                else "Rerun with output=... to be able to resume."
            ),
            RuntimeWarning,
            stacklevel=2,
        )
        return ds
    if store is not None:
        save(ds, output, overwrite=True)
        shutil.rmtree(store.folder, ignore_errors=True)
    return ds


# hysteresis(): two branches differ at a point where |up - down| > rtol * (the largest
# |value| of the line). Default rtol = _RTOL_PER_TOL * the steady tolerance (1e-10 -> 1e-5).
# Why: Newton stops at a residual max|dn/dt| tau_in <= tol, so a state is off its exact
# root by about tol / s, s the smallest singular value of tau_in * Jacobian; the same
# branch reached from two sides therefore agrees to ~tol / s. s falls to 0 at a turning
# point (like sqrt of the distance to it), and the factor 1e5 accepts s down to 1e-5, i.e.
# the last grid point before a fold at a fraction ~1e-10 of the axis from it. Measured on
# the drive-induced loop (N = 60, tests/test_hysteresis.py): the same branch from both
# sides agrees to <= 4e-12 of the line's largest gap, the two branches differ by >= 0.32.
_RTOL_PER_TOL = 1e5


def hysteresis(
    ds: xr.Dataset,
    dim: str,
    variable: str = "gap",
    *,
    rtol: float | None = None,
    atol: float | None = None,
) -> xr.Dataset:
    """Where the up and down branches of a ``direction="both"`` sweep differ along `dim`:
    the hysteresis interval and the two turning points, bracketed on the swept grid.

    - `ds`: a dataset with the dimension ``branch`` = ["up", "down"] and `dim` (a sweep
      with ``continuation=dim, direction="both"``; a study's steady part works too).
    - `dim`: the dimension the continuation followed.
    - `variable`: compared between the branches ("gap"; a variable over more dimensions,
      such as ``n`` over xi, is compared by its largest difference).
    - `rtol`, `atol`: the branches differ at a point where |up - down| > atol + rtol *
      (the largest |value| of `variable` on that line, both branches). Default rtol: 1e5
      times the steady tolerance (``ds.attrs["solver.tol"]``, else ``solvers.DEFAULTS``):
      1e-5 for the default tol = 1e-10. A Newton state is within ~tol / s of its root (s
      the smallest singular value of tau_in * Jacobian, ~0.08 on the drive-induced loop
      of docs/physics.md section 2, smaller near a saddle-node), so 1e5 tolerates s >=
      1e-5.
      Default atol: rtol * 1 k_B T_c for a variable in k_B T_c such as the gap (the error
      of n is absolute and |dDelta/dn| is 1-3 k_B T_c), else 0; it keeps a line whose gap
      is 0 on one branch and a rounding-level root (~1e-11) on the other loop-free.

    Points where a branch did not converge (``status`` other than "success", or a value
    that is not finite) are not judged. Per line (every other dimension is kept):

    - ``hysteresis_turning_point`` (over ``branch`` and ``side``): the bracket of each
      branch's turning point on the swept grid, in the unit of `dim`. The up branch's
      lies between the last point where the branches differ (``side`` = "on_branch", the
      last value the up continuation reached on its branch) and the next value
      ("off_branch": where it had left it); the down branch's between the first point
      where they differ ("on_branch") and the value before it ("off_branch"). "up" and
      "down" are the order of the values as given (increasing for an increasing axis).
      "off_branch" is NaN where the branch reached the end of the axis without leaving.
    - ``hysteresis_interval`` (over ``bound`` = ["first", "last"]): the first and the last
      swept value at which the branches differ: both branches were found there.
    - ``hysteresis_points``: the number of points where the branches differ (0: no loop;
      fewer than the points from first to last: the differing points are not contiguous).

    Everything is NaN on a line where the branches agree everywhere (no loop found).
    """
    if not isinstance(ds, xr.Dataset):
        raise ParameterError(f"hysteresis: ds must be an xarray.Dataset; got {type(ds).__name__}.")
    if "branch" not in ds.dims or not set(BRANCHES) <= set(np.asarray(ds["branch"]).tolist()):
        raise ParameterError(
            "hysteresis: ds needs the dimension 'branch' = ['up', 'down'] of a sweep with "
            "direction='both' (solvers.sweep(..., continuation=..., direction='both'))."
        )
    if not isinstance(dim, str) or dim not in ds.dims or dim == "branch":
        dims = [d for d in ds.dims if d != "branch"]
        raise ParameterError(
            f"hysteresis: dim must be the swept dimension the continuation followed, one of "
            f"{dims}; got {dim!r}."
        )
    if variable not in ds.data_vars or not {"branch", dim} <= set(ds[variable].dims):
        raise ParameterError(
            f"hysteresis: variable must be a variable of ds over 'branch' and {dim!r}; got "
            f"{variable!r}."
        )
    if rtol is None:
        tol = ds.attrs.get("solver.tol", DEFAULTS["steady"]["tol"])
        rtol = _RTOL_PER_TOL * float(tol)
    if not (isinstance(rtol, (int, float)) and math.isfinite(rtol) and rtol > 0):
        raise ParameterError(f"hysteresis: rtol must be a number > 0; got {rtol!r}.")
    if atol is None:
        atol = rtol if ds[variable].attrs.get("units") == "k_B T_c" else 0.0
    if not (isinstance(atol, (int, float)) and math.isfinite(atol) and atol >= 0):
        raise ParameterError(f"hysteresis: atol must be a number >= 0; got {atol!r}.")
    da = ds[variable].astype(np.float64)
    if "status" in ds and {"branch", dim} <= set(ds.status.dims):
        da = da.where(ds.status == "success")
    up, down = da.sel(branch="up", drop=True), da.sel(branch="down", drop=True)
    # the lines: the other swept dimensions (those of `status`, else all but the state's)
    swept = ds.status.dims if "status" in ds else [
        d for d in da.dims if d not in ("xi", "omega", "time")]
    lines = [d for d in up.dims if d in swept and d != dim]
    extra = [d for d in up.dims if d != dim and d not in lines]
    diff = abs(up - down)
    scale = np.maximum(abs(up), abs(down))
    if extra:
        diff, scale = diff.max(extra), scale.max(extra)
    scale = scale.max(dim)
    differ = (diff > atol + rtol * scale).transpose(*lines, dim)
    x = np.asarray(ds[dim].values, dtype=np.float64)
    m = differ.values.reshape(-1, x.size)
    shape = tuple(ds.sizes[d] for d in lines)
    turning = np.full((m.shape[0], 2, 2), np.nan)
    interval = np.full((m.shape[0], 2), np.nan)
    count = m.sum(axis=1).astype(np.int64)
    for k, row in enumerate(m):
        idx = np.flatnonzero(row)
        if idx.size == 0:
            continue
        first, last = idx[0], idx[-1]
        interval[k] = x[first], x[last]
        turning[k, 0] = x[last], x[last + 1] if last + 1 < x.size else np.nan
        turning[k, 1] = x[first], x[first - 1] if first > 0 else np.nan
    unit = ds[dim].attrs.get("units", "")
    name = ds[dim].attrs.get("long_name", dim)
    convention = (
        f"brackets on the swept grid of {dim}: the up branch's turning point lies between the "
        "last point where the up and down branches differ (on_branch) and the next value "
        "(off_branch); the down branch's between the first point where they differ "
        "(on_branch) and the value before it (off_branch); up/down = the order of the values "
        f"as given. Branches differ where |up - down| of {variable} > {atol:.3g} + {rtol:.3g} "
        "times its largest |value| on the line; points that did not converge are not judged; "
        "NaN: no loop on the line (or, off_branch, the branch reached the end of the axis)"
    )
    out = xr.Dataset(
        {
            "hysteresis_turning_point": (
                (*lines, "branch", "side"), turning.reshape(shape + (2, 2)),
                {"long_name": f"turning point of each branch along {name} (bracket)",
                 "units": unit, "comment": convention},
            ),
            "hysteresis_interval": (
                (*lines, "bound"), interval.reshape(shape + (2,)),
                {"long_name": f"first and last {name} at which the up and down branches "
                 f"differ (both found there)", "units": unit, "comment": convention},
            ),
            "hysteresis_points": (
                lines, count.reshape(shape),
                {"long_name": f"number of swept points where the up and down branches of "
                 f"{variable} differ (0: no loop)", "units": "1"},
            ),
        },
        coords={
            **{d: ds[d] for d in lines},
            "branch": ("branch", np.asarray(BRANCHES), ds["branch"].attrs),
            "side": ("side", np.asarray(["on_branch", "off_branch"]), {
                "long_name": "end of a turning-point bracket: on_branch = the last swept value "
                "the continuation reached on its branch, off_branch = the next value in its "
                "direction (where it had left the branch)", "units": "1"}),
            "bound": ("bound", np.asarray(["first", "last"]), {
                "long_name": "first or last swept value (in the order given) of the "
                "hysteresis interval", "units": "1"}),
        },
    )
    out.attrs.update({"hysteresis.dim": dim, "hysteresis.variable": variable,
                      "hysteresis.rtol": float(rtol), "hysteresis.atol": float(atol),
                      "hysteresis.convention": convention})
    return out


def _lines(pending: list[int], shape: tuple, axis: int, size: int, direction: str = "up"):
    """Chunks of whole lines along `axis` (for continuation): [(flat indices in the order
    they are solved, position of each point's predecessor in the chunk or -1), ...].

    `shape` starts with the branch axis (1, or 2 for direction "both": 0 up, 1 down); a
    line is followed in the order of its values ("up") or in reverse ("down", and branch 1
    of "both"). A chunk holds whole lines of one direction (a line longer than `size` is
    a chunk of its own)."""
    lines: dict = {}
    for i in pending:
        multi = np.unravel_index(i, shape)
        key = tuple(int(m) for k, m in enumerate(multi) if k != axis)
        lines.setdefault(key, []).append((int(multi[axis]), i))
    chunks, current, previous = [], [], []
    branch = 0
    for key in sorted(lines):
        down = direction == "down" or (direction == "both" and key[0] == 1)
        line = [i for _, i in sorted(lines[key], reverse=down)]
        if current and (len(current) + len(line) > size or key[0] != branch):
            chunks.append((tuple(current), tuple(previous)))
            current, previous = [], []
        previous += [-1] + [len(current) + k for k in range(len(line) - 1)]
        current += line
        branch = key[0]
    if current:
        chunks.append((tuple(current), tuple(previous)))
    return chunks


def _outer(params: dict[str, np.ndarray]):
    grids = np.meshgrid(*params.values(), indexing="ij")
    return list(zip(*(g.reshape(-1).tolist() for g in grids), strict=True))


def _probe(model_factory, values: dict) -> Model | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            m = model_factory(**values)
        except Exception:
            return None
    return m if isinstance(m, Model) else None


__all__ = ["sweep", "hysteresis", "default_chunk_size", "factory_name"]

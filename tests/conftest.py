"""Test configuration: float64 everywhere, strict rank promotion, one compilation cache.

Strict rank promotion (``jax_numpy_rank_promotion = "raise"``) turns silent
broadcasting between arrays of different rank into an error, so that a
shape bug cannot hide behind broadcasting.

Most of the suite's time is XLA compiling solver programs (seconds to tens of seconds
each, measured 42 s for one BDF evolution of a driven phonon model). The same program
comes back in other modules and, above all, in other processes: the console script run
as a subprocess, the rerun after an interruption, dask workers. JAX's persistent
compilation cache, in a folder of this test session only (made empty here, removed at
the end; subprocesses inherit it through the environment), compiles each of them once
per session. The cache key is the program itself (HLO, compile options, JAX and XLA
versions): a hit is the executable XLA would have produced, so nothing a test checks
changes. Set CAVITY_TEST_NO_COMPILATION_CACHE=1 to run without it (the console script
run as a subprocess too: it would otherwise use the user's cache folder).

The suite runs in one process by default. pytest-xdist is installed with the test extra:
``-n 2 --dist loadfile --no-loadscope-reorder`` runs two worker processes (in CI on 2
cores it took 44.6 min, no clear gain over one process, and two tests that time a Ctrl-C
of a subprocess failed under the second worker's load). The controller imports this file first and
makes the cache folder; the workers inherit JAX_COMPILATION_CACHE_DIR from its
environment and share that one folder, which the controller removes when it exits. Each
test file runs whole on one worker, the longest files first (LONG_FIRST below), so that
no long file starts last while the other worker idles.
"""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

# XLA:CPU options that cut compile time (the suite's main cost) 2-3x: the older elemental
# code emitters instead of the fusion emitters, and LLVM at -O0 without its expensive
# passes. They change how XLA writes machine code, not what the program computes: the
# operations, their order and IEEE float64 semantics stay (no fast math), so results
# agree to rounding, and every comparison in the suite is between programs compiled
# alike. Measured (2026-12-03, 2-core machine, load 3-5): tests/test_hysteresis.py
# 41-49 s against 60-110 s; first steady_state / bdf evolve / tsit5 evolve at N = 300
# 15.7 / 23.3 / 5.8 s against 50 / 42.5 / 14.5 s, warm runs within noise. Users' runs
# keep XLA's defaults. Set CAVITY_TEST_XLA_DEFAULTS=1 to test with them; an XLA that no
# longer knows a flag (it would abort) is detected by a one-line probe and keeps its own.
_FAST_COMPILE = (
    "--xla_cpu_use_fusion_emitters=false",
    "--xla_backend_optimization_level=0",
    "--xla_llvm_disable_expensive_passes=true",
)
if not os.environ.get("CAVITY_TEST_XLA_DEFAULTS") and not os.environ.get("CAVITY_TEST_XLA_SET"):
    _flags = " ".join((os.environ.get("XLA_FLAGS", ""),) + _FAST_COMPILE).strip()
    _probe = subprocess.run(
        [sys.executable, "-c", "import jax; jax.jit(lambda x: x + 1)(1.0).block_until_ready()"],
        env={**os.environ, "XLA_FLAGS": _flags}, capture_output=True, timeout=300,
    )
    if _probe.returncode == 0:
        os.environ["XLA_FLAGS"] = _flags  # before jax starts its backend; inherited by subprocesses
    os.environ["CAVITY_TEST_XLA_SET"] = "1"  # pytest-xdist workers: probed once, here

_OFF = os.environ.get("CAVITY_TEST_NO_COMPILATION_CACHE")
if _OFF:  # cavity_eliashberg._compile_cache: the console script's own cache, off
    os.environ["CAVITY_ELIASHBERG_NO_COMPILE_CACHE"] = "1"
if not _OFF and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _CACHE = tempfile.mkdtemp(prefix="cavity-test-jax-cache-")
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
    # every program of ours is worth keeping (the default keeps those over 1 s only)
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
if not _OFF and "JAX_COMPILATION_CACHE_DIR" in os.environ:
    jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


import pytest  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _free_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Every compiled XLA:CPU executable keeps memory mappings; the whole suite in one
    process compiles enough of them to reach the kernel's default limit of 65530
    mappings per process (vm.max_map_count), and the next compilation then crashes
    with a segmentation fault (seen in tests/test_sweep.py, ~60 000 mappings by then).
    Tests share compilations within their module; across modules the persistent cache
    above turns a recompilation into a load from disk.
    """
    yield
    jax.clear_caches()


# The test files that take longest (minutes each in CI: s6/s7 profiles of the suite),
# longest first. With --dist loadfile and --no-loadscope-reorder the workers take files
# in collection order; starting with these keeps the two workers' loads even at the end.
LONG_FIRST = (
    "test_low_temperature.py",
    "test_dynamic.py",
    "test_drive_line.py",
    "test_collision.py",
    "test_krylov.py",
    "test_bdf.py",
    "test_model.py",
    "test_observables.py",
    "test_config.py",
    "test_normal_state.py",
    "test_cli.py",
    "test_docs.py",
)


def pytest_collection_modifyitems(session, config, items):
    """The files of LONG_FIRST first, in that order; the rest after them, each file's
    tests in their own order (a stable sort: no test depends on another file's)."""

    def rank(item):
        name = item.path.name
        return LONG_FIRST.index(name) if name in LONG_FIRST else len(LONG_FIRST)

    items.sort(key=rank)

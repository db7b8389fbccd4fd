"""Helpers of the benchmark suite (benchmarks/run.py): timing, memory, provenance."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import threading
import time
from importlib import metadata

import jax
import numpy as np

import kinetics  # noqa: I001  (enables float64 before any JAX work)
import solvers


def _source_digest() -> dict:
    """sha256 of the imported kinetics/ and solvers/ sources (read right after import,
    so that results can be matched to the working tree they measured)."""
    import hashlib

    h, files = hashlib.sha256(), []
    for mod in (kinetics, solvers):
        folder = os.path.dirname(os.path.abspath(mod.__file__))
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as fh:
                    h.update(name.encode() + b"\0" + fh.read())
                files.append(f"{os.path.basename(folder)}/{name}")
    return {"sha256": h.hexdigest()[:16], "files": len(files)}


SOURCE_DIGEST = _source_digest()

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- memory
def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return None


def _maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024


class PeakRSS:
    """Peak RSS increase [MiB] during a block: /proc/self/statm sampled every 5 ms,
    else the (monotone, less useful) ru_maxrss delta."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.source = "statm" if _rss_bytes() is not None else "ru_maxrss"

    def __enter__(self):
        if self.source == "statm":
            self._base = self._peak = _rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self._base = _maxrss_bytes()
        return self

    def _sample(self):
        while not self._stop.is_set():
            v = _rss_bytes()
            if v is not None and v > self._peak:
                self._peak = v
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        if self.source == "statm":
            self._stop.set()
            self._thread.join()
            v = _rss_bytes()
            self._peak = max(self._peak, v or 0)
        else:
            self._peak = _maxrss_bytes()
        self.peak_mib = (self._peak - self._base) / 2**20
        return False


# ---------------------------------------------------------------- helpers


def _block(x):
    return jax.block_until_ready(x)


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads."""
    t = os.times()
    return t.user + t.system


def _minflt() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_kernel(fn, *args, reps: int = 5):
    """(compile_s, run_s, minor page faults per warm call): first call minus the
    fastest of `reps` warm calls."""
    t = time.perf_counter()
    _block(fn(*args))
    first = time.perf_counter() - t
    runs, faults = [], []
    for _ in range(reps):
        f0 = _minflt()
        t = time.perf_counter()
        _block(fn(*args))
        runs.append(time.perf_counter() - t)
        faults.append(_minflt() - f0)
    run = min(runs)
    return max(first - run, 0.0), run, min(faults)


def _temp_mib(jitted, *args):
    """XLA's temporary-buffer size of a jitted function [MiB], or None."""
    try:
        return jitted.lower(*args).compile().memory_analysis().temp_size_in_bytes / 2**20
    except Exception:
        return None


def _repeat(call, reps: int, long_s: float):
    """Run `call` up to `reps` times (at least once); stop after one run longer
    than `long_s`, or after two runs that together took longer than `long_s`.
    Returns (list of wall times, last result, process CPU seconds of the fastest run)."""
    times, cpus, out = [], [], None
    for _ in range(max(reps, 1)):
        c = _cpu_s()
        t = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t)
        cpus.append(_cpu_s() - c)
        if times[-1] > long_s or (len(times) >= 2 and sum(times) > long_s):
            break
    return times, out, cpus[int(np.argmin(times))]


def _fmt_t(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} us"
    if s < 1.0:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def machine_info():
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "jax_devices": [str(d) for d in jax.devices()],
        "loadavg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            info["mem_total_gib"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    return info


def versions():
    out = {}
    for pkg in (
        "jax",
        "jaxlib",
        "diffrax",
        "equinox",
        "lineax",
        "optimistix",
        "numpy",
        "scipy",
        "threadpoolctl",
        "cavity-eliashberg",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def git_info():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return {"commit": head or None, "modified_files": len(dirty.splitlines())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}


def _clean(row):
    return {k: v for k, v in row.items() if not k.startswith("_")}

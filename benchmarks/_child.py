"""A benchmark size in its own process, stopped when its memory passes a bound.

Standard library only: the parent process of a benchmark stays free of JAX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

_PAGE = os.sysconf("SC_PAGE_SIZE")


def run_child(args: list[str], max_gib: float) -> tuple[int | None, str | None]:
    """Run ``python -m <args>`` from the repository root, reading its resident memory every
    50 ms; kill it above `max_gib`. Returns (exit code, None) or (None, "stopped at X GiB")."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/statm") as fh:
                rss = int(fh.read().split()[1]) * _PAGE / 2**30
        except OSError:
            rss = 0.0
        if rss > max_gib:
            proc.kill()
            proc.wait()
            return None, f"stopped at {rss:.1f} GiB"
        time.sleep(0.05)
    return proc.returncode, None


def child_rows(module: str, prefix: str, n: int, kinds, max_gib: float, tmp: str) -> list[dict]:
    """Run ``python -m <module> --child N OUT KINDS...`` (its rows, one per kind, in the JSON
    file OUT, rewritten after each kind); a kind the child did not finish (stopped at
    `max_gib`, or an exit) gets a row with its status."""
    out = os.path.join(tmp, f"{prefix}-{n}.json")
    if os.path.exists(out):
        os.remove(out)
    code, stopped = run_child([module, "--child", str(n), out, *kinds], max_gib)
    rows = []
    if os.path.exists(out):
        with open(out) as fh:
            rows = json.load(fh)
    done = {r["kind"] for r in rows}
    for kind in kinds:
        if kind not in done:
            rows.append({"n": n, "kind": kind, "status": stopped or f"exit {code}"})
    return rows

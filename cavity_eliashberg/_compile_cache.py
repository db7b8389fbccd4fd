"""JAX's persistent compilation cache for the console script (on by default).

Why: most of a short study's wall time is XLA compiling the solver programs (seconds per
solver and grid shape), and every new process compiled them all again. With the cache,
each compiled program is written to a folder once, and a later process that needs the
same program (same grid size and solver options, same JAX and XLA: the cache key is the
program's HLO, compile options and versions) loads it from disk instead of compiling
it. A hit is the executable XLA would have produced, so no result changes.

The folder: ``$JAX_COMPILATION_CACHE_DIR`` when it is set (JAX's own variable: the test
suite points it at a folder of its session), else
``$XDG_CACHE_HOME/cavity-eliashberg/jax``, else ``~/.cache/cavity-eliashberg/jax``;
created when needed. Off with ``--no-compile-cache`` or
``CAVITY_ELIASHBERG_NO_COMPILE_CACHE=1`` (or JAX's ``JAX_ENABLE_COMPILATION_CACHE=false``).
Only the console script's computing commands (``run``, ``resume``) set it up:
``cavity_eliashberg.main()`` called from Python leaves the caller's JAX configuration
alone. A folder that cannot be created or written costs one warning, and the run
compiles as it would without the cache.

Every program is kept (minimum compile time 0 s, not JAX's default 1 s). The default
study compiles 9 programs (measured under load ~5): ~20 s and 2-4 s for the solvers',
1.2-1.6 s for the gap's, 0.01-0.12 s for four small ones; 1.3 MB on disk in all, the
small ones 2-8 KB each. With a 1 s threshold, whether a program near it is kept would
depend on the machine's load when it was compiled. A user's
``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` is honoured.

Worker processes get the same setting through the environment (JAX reads
``JAX_COMPILATION_CACHE_DIR``, ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` and
``JAX_ENABLE_COMPILATION_CACHE`` when it is imported): the dask ``LocalCluster`` that
``solvers.sweep`` starts spawns its workers from this process, after this set-up.
Workers of a remote scheduler (``--scheduler``) keep their own JAX settings.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import MutableMapping

OFF_VARIABLE = "CAVITY_ELIASHBERG_NO_COMPILE_CACHE"
OPTION_HELP = (
    "do not use JAX's persistent compilation cache (by default compiled programs are kept "
    "in $JAX_COMPILATION_CACHE_DIR, else $XDG_CACHE_HOME/cavity-eliashberg/jax or "
    f"~/.cache/cavity-eliashberg/jax, and loaded by later runs; also {OFF_VARIABLE}=1)"
)
_FALSE = ("", "0", "false", "no", "off")

# Concurrent sweeps and dask workers share the folder. What JAX guarantees (read in
# jax/_src/lru_cache.py and compiler.py of JAX 0.10.2; its documentation promises nothing
# about concurrent processes): each program is one file, <key>-cache, written in place
# (Path.write_bytes: no temporary file renamed into place; JAX <= 0.4.30, which pyproject
# still allows, did rename one, see jax-ml/jax#22718) after a check that it does not
# exist yet, and never rewritten once it exists. With no size limit
# (jax_compilation_cache_max_size = -1, JAX's default, kept here) there is no lock and no
# eviction: the folder grows by one file per new program until it is deleted. So:
# - two processes that compile the same program at once both write it; one complete
#   write remains (one write() call each; zlib ignores a longer earlier write's tail);
# - a process that reads an entry while another is still writing it finds it truncated:
#   JAX fails to decompress it, warns ("Error reading persistent compilation cache
#   entry") and compiles the program itself (jax_raise_persistent_cache_errors is False
#   by default): a lost hit, never a wrong executable;
# - a writer killed mid-write leaves a truncated entry for good: each later process that
#   needs that program warns and compiles it, until the folder is deleted.
# JAX's LRU eviction (jax_compilation_cache_max_size > 0) would lock every read and write
# (filelock) and bound the folder, but needs the filelock package, not among our
# dependencies (without it JAX refuses the cache), and has had races of its own
# (jax-ml/jax#39880: an orphaned -atime file stops all writes).


def cache_folder(environ: MutableMapping[str, str] | None = None) -> str:
    """The cache folder the environment asks for (see the module docstring)."""
    env = os.environ if environ is None else environ
    if env.get("JAX_COMPILATION_CACHE_DIR"):
        return env["JAX_COMPILATION_CACHE_DIR"]
    base = env.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # the XDG specification: a relative path is ignored
        base = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cavity-eliashberg", "jax")


def wanted(option_off: bool = False, environ: MutableMapping[str, str] | None = None) -> bool:
    """False when the option, CAVITY_ELIASHBERG_NO_COMPILE_CACHE or JAX's
    JAX_ENABLE_COMPILATION_CACHE turns the cache off."""
    env = os.environ if environ is None else environ
    return (not option_off
            and env.get(OFF_VARIABLE, "").strip().lower() in _FALSE
            and env.get("JAX_ENABLE_COMPILATION_CACHE", "1").strip().lower() not in _FALSE)


def _unusable(folder: str) -> str | None:
    """None when `folder` exists (created now if needed) and can be written, else why not."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        return err.strerror or str(err)
    return None if os.access(folder, os.W_OK | os.X_OK) else "not writable"


def use_compile_cache(option_off: bool = False) -> str | None:
    """Turn JAX's persistent compilation cache on (or off) for this process and the
    worker processes it starts; the folder, or None when the cache is off.

    Call it before the first compilation: JAX decides once per process whether the
    cache is used (reset here), and a program compiled earlier is not written.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    env = os.environ
    folder = cache_folder(env) if wanted(option_off, env) else None
    why = None if folder is None else _unusable(folder)
    if why is not None:
        warnings.warn(f"the compilation cache folder {folder} cannot be used ({why}); "
                      f"compiling without it ({OFF_VARIABLE}=1 turns the cache off)",
                      RuntimeWarning, stacklevel=2)
        folder = None
    if folder is None:
        env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
        jax.config.update("jax_enable_compilation_cache", False)
    else:
        env["JAX_COMPILATION_CACHE_DIR"] = folder
        jax.config.update("jax_compilation_cache_dir", folder)
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in env:  # else JAX read it
            env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    compilation_cache.reset_cache()
    return folder

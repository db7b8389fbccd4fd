"""The console script's persistent compilation cache (cavity_eliashberg._compile_cache).

Where it goes (JAX's variable, then XDG, then ~/.cache), how it is turned off, what an
unusable folder costs (a warning), and, end to end, that a run of the console script
fills the folder and a second process compiles nothing. No timing here: the speed-up is
measured, not tested (issue 18).
"""

import os
import subprocess
import sys
import warnings

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache

from cavity_eliashberg import main
from cavity_eliashberg._compile_cache import (
    OFF_VARIABLE,
    cache_folder,
    use_compile_cache,
    wanted,
)

_JAX_VARIABLES = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                  "JAX_ENABLE_COMPILATION_CACHE", "JAX_EXPLAIN_CACHE_MISSES")


def test_the_folder_is_jaxs_variable_then_xdg_then_home():
    home = {"HOME": "/home/u"}
    assert cache_folder({**home, "JAX_COMPILATION_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x"}) == "/c"
    assert cache_folder({**home, "XDG_CACHE_HOME": "/x"}) == "/x/cavity-eliashberg/jax"
    assert cache_folder(home) == "/home/u/.cache/cavity-eliashberg/jax"
    # empty variables count as unset; a relative XDG_CACHE_HOME is invalid (XDG spec)
    assert cache_folder({**home, "JAX_COMPILATION_CACHE_DIR": "", "XDG_CACHE_HOME": ""}) == (
        "/home/u/.cache/cavity-eliashberg/jax")
    assert cache_folder({**home, "XDG_CACHE_HOME": "cache"}) == (
        "/home/u/.cache/cavity-eliashberg/jax")


def test_the_option_and_the_variables_turn_it_off():
    assert wanted(False, {})
    assert not wanted(True, {})
    assert not wanted(False, {OFF_VARIABLE: "1"})
    assert not wanted(False, {OFF_VARIABLE: "yes"})
    assert wanted(False, {OFF_VARIABLE: "0"})
    assert wanted(False, {OFF_VARIABLE: ""})
    assert not wanted(False, {"JAX_ENABLE_COMPILATION_CACHE": "false"})  # JAX's own switch


@pytest.fixture
def jax_cache_settings(monkeypatch):
    """use_compile_cache() changes this process's JAX settings and environment: put the
    test session's back afterwards (tests/conftest.py)."""
    for name in (*_JAX_VARIABLES, OFF_VARIABLE, "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)  # restored at the end, set or not
    names = ("jax_enable_compilation_cache", "jax_compilation_cache_dir",
             "jax_persistent_cache_min_compile_time_secs")
    before = {name: getattr(jax.config, name) for name in names}
    yield
    for name, value in before.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


def test_set_up_on_off_and_on_an_unusable_folder(tmp_path, monkeypatch, jax_cache_settings):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = use_compile_cache()
    assert folder == str(tmp_path / "xdg" / "cavity-eliashberg" / "jax")
    assert os.path.isdir(folder)  # created
    assert jax.config.jax_compilation_cache_dir == folder
    assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0  # keep every program
    # worker processes (dask LocalCluster) read the same from the environment
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == folder
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"

    assert use_compile_cache(option_off=True) is None
    assert not jax.config.jax_enable_compilation_cache
    assert os.environ["JAX_ENABLE_COMPILATION_CACHE"] == "false"

    # a folder that cannot be created (its parent is a file): one warning, no cache
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR")
    monkeypatch.delenv("JAX_ENABLE_COMPILATION_CACHE")
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    with pytest.warns(RuntimeWarning, match="compilation cache folder .* cannot be used"):
        assert use_compile_cache() is None
    assert not jax.config.jax_enable_compilation_cache


def test_run_and_resume_take_the_option(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it
    # main() from Python: parsed (no argparse exit), then the missing file is the error
    assert main(["run", "--no-compile-cache", str(tmp_path / "missing.toml")]) == 2
    assert main(["resume", "--no-compile-cache", str(tmp_path / "missing.nc")]) == 2
    assert "unrecognized" not in capsys.readouterr().err


TINY = """
title = "tiny"
compute = ["perturbative"]
[model]
t_qp = 0.9
tau_in = 1000
[grid]
n = 60
[[baths]]
type = "multimode_cavity"
name = "cavity"
omega0 = "3 Delta0"
t_cav = "0.5 T_qp"
eta = "0.0155 / tau_in"
[output]
name = "tiny"
[figure]
kind = "none"
"""
_MISS = "PERSISTENT COMPILATION CACHE MISS"  # JAX's log line under JAX_EXPLAIN_CACHE_MISSES


def test_a_run_fills_the_users_cache_and_a_second_process_compiles_nothing(tmp_path):
    """The quickest study (perturbative only, N = 60: ~15 s, then ~5 s), twice, in new
    processes with an empty cache folder of their own (XDG_CACHE_HOME; not the test
    session's): the first writes every program it compiles, the second loads them all
    (no persistent-cache miss logged)."""
    (tmp_path / "tiny.toml").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k not in (*_JAX_VARIABLES, OFF_VARIABLE)}
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), JAX_EXPLAIN_CACHE_MISSES="1",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    folder = tmp_path / "xdg" / "cavity-eliashberg" / "jax"
    misses, files = [], []
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, "-m", "cavity_eliashberg", "run", "tiny.toml", "--no-progress",
             "--overwrite"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        assert run.returncode == 0, run.stderr
        for warning in ("cannot be used", "Error reading persistent", "Error writing persistent"):
            assert warning not in run.stderr
        misses.append(run.stderr.count(_MISS))
        files.append(sorted(os.listdir(folder)))
    assert misses[0] > 0 and len(files[0]) == misses[0]  # every compiled program written
    assert all(name.endswith("-cache") for name in files[0])
    assert misses[1] == 0 and files[1] == files[0]  # all loaded, nothing new

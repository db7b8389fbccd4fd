"""Test configuration: float64 everywhere and strict rank promotion.

Strict rank promotion (``jax_numpy_rank_promotion = "raise"``) turns silent
broadcasting between arrays of different rank into an error, so that a
shape bug cannot hide behind broadcasting.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


import pytest  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _free_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    Every compiled XLA:CPU executable keeps memory mappings; the whole suite in one
    process compiles enough of them to reach the kernel's default limit of 65530
    mappings per process (vm.max_map_count), and the next compilation then crashes
    with a segmentation fault (seen in tests/test_sweep.py, ~60 000 mappings by then).
    Tests share compilations within their module; across modules there is little to
    share, so clearing costs a few recompilations.
    """
    yield
    jax.clear_caches()

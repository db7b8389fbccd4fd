"""Test configuration: float64 everywhere and strict rank promotion.

Strict rank promotion (``jax_numpy_rank_promotion = "raise"``) turns silent
broadcasting between arrays of different rank into an error, so that a
shape bug cannot hide behind broadcasting.
"""

import jax

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

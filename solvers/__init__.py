"""cavity-eliashberg numerics: time evolution, steady states, results."""

import kinetics as _kinetics  # noqa: F401  (enables float64 before any JAX work)

from ._dataset import SolverError as SolverError
from ._dataset import build_dataset as build_dataset
from ._dataset import load as load
from ._dataset import save as save
from ._evolve import choose_solver as choose_solver
from ._evolve import evolve as evolve
from ._evolve import stiffness_estimate as stiffness_estimate
from ._perturbative import perturbative as perturbative
from ._steady import steady_state as steady_state
from ._sweep import sweep as sweep
from ._config import ConfigError as ConfigError
from ._config import build_model as build_model
from ._config import load_config as load_config
from ._figures import plot as plot
from ._study import run_study as run_study

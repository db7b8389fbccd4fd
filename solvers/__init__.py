"""cavity-eliashberg numerics over a ``kinetics.Model``: time evolution, steady states,
the perturbative formula, parameter sweeps, and the datasets they return.

Knows no configuration files, figures or command lines (those are the application,
``cavity_eliashberg``).
"""

import kinetics as _kinetics  # noqa: F401  (enables float64 before any JAX work)

from ._dataset import add_observables as add_observables
from ._dataset import annotate as annotate
from ._dataset import build_dataset as build_dataset
from ._dataset import load as load
from ._dataset import model_attributes as model_attributes
from ._dataset import package_versions as package_versions
from ._dataset import save as save
from ._dataset import state_variables as state_variables
from ._errors import REASONS as REASONS
from ._errors import Interrupted as Interrupted
from ._errors import ResourceError as ResourceError
from ._errors import SolverError as SolverError
from ._evolve import DIFFRAX_SOLVERS as DIFFRAX_SOLVERS
from ._evolve import SOLVERS as SOLVERS
from ._evolve import choose_solver as choose_solver
from ._evolve import evolve as evolve
from ._evolve import evolve_core as evolve_core
from ._evolve import stiffness_estimate as stiffness_estimate
from ._options import DEFAULTS as DEFAULTS
from ._perturbative import perturbation_warnings as perturbation_warnings
from ._perturbative import perturbative as perturbative
from ._perturbative import perturbative_core as perturbative_core
from ._resources import LargeSolveWarning as LargeSolveWarning
from ._resources import memory_estimate as memory_estimate
from ._steady import steady_core as steady_core
from ._steady import steady_start as steady_start
from ._steady import steady_state as steady_state
from ._sweep import hysteresis as hysteresis
from ._sweep import sweep as sweep
from ._variables import PARAMETER_UNITS as PARAMETER_UNITS
from ._variables import VARIABLES as VARIABLES
from ._variables import Variable as Variable
from ._variables import attributes as variable_attributes  # noqa: F401  (public name)
from ._variables import study_names as study_names

"""cavity-eliashberg, the application: study configurations (TOML), the study runner,
figures and the console script ``cavity-eliashberg``.

Built on the numerics (``solvers``) and the physics (``kinetics``), through their
public names only.
"""

import kinetics as _kinetics  # noqa: F401  (enables float64 before any JAX work)

from ._cli import main as main
from ._config import build_model as build_model
from ._config import load_config as load_config
from ._errors import ConfigError as ConfigError
from ._errors import OutputError as OutputError
from ._errors import ResultFileError as ResultFileError
from ._figures import plot as plot
from ._study import run_study as run_study

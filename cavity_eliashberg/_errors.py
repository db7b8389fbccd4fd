"""The application's own exceptions (all are `kinetics.CavityEliashbergError`s).

- `ConfigError`: a study configuration is malformed or has a value that is not allowed
  (the console script exits with code 2, nothing computed, nothing written);
- `OutputError`: an output file or folder cannot be written (exit code 2 before any work);
- `ResultFileError`: a file given to ``show``, ``plot`` or ``resume`` is not a result
  (a folder, a configuration, not netCDF; exit code 2).

A solver's failure is `solvers.SolverError` (exit code 3); its reason travels as data: the
study dataset's ``<kind>_status`` / ``<kind>_message`` variables.
"""

from __future__ import annotations

from kinetics import CavityEliashbergError, ParameterError


class ConfigError(ParameterError):
    """A configuration is malformed or has a value that is not allowed."""


class OutputError(CavityEliashbergError, OSError):
    """An output file or folder cannot be written."""


class ResultFileError(CavityEliashbergError, ValueError):
    """A file given as a result (``show``, ``plot``, ``resume``) is not one."""

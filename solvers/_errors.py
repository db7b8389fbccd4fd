"""The numerics' errors: a solver failure keeps what was computed and says why.

Input errors are kinetics' own (``kinetics.ParameterError`` and its family), raised before
any work starts; these two are raised after work has been done.
"""

from __future__ import annotations

from kinetics import CavityEliashbergError, ParameterError

# short, machine-readable codes of why a solve stopped (``SolverError.reason``)
REASONS = {
    "not_converged": "the steady-state iteration did not reach its tolerance",
    "max_steps": "the integrator reached max_steps",
    "step_size": "the integrator's step size collapsed",
    "nonfinite": "a non-finite value appeared in the state",
    "left_unit_interval": "an occupation left [0, 1]",
    "unphysical": "the result is not a physical state (an occupation outside [0, 1])",
    "interrupted": "stopped by a signal after writing a checkpoint",
    "failed": "the solver failed",
}


class SolverError(CavityEliashbergError, RuntimeError):
    """A solver failed after doing work.

    - ``partial``: the dataset of what was computed before the failure (or None);
    - ``reason``: one of ``REASONS`` (a code to act on; the message says it in words).
    """

    def __init__(self, message: str, partial=None, reason: str = "failed"):
        super().__init__(message)
        self.partial = partial
        self.reason = reason if reason in REASONS else "failed"


class Interrupted(SolverError):
    """A run stopped by SIGINT or SIGTERM after writing its checkpoint."""

    def __init__(self, message, partial=None, signal_name="SIGTERM"):
        super().__init__(message, partial, reason="interrupted")
        self.signal_name = signal_name


class ResourceError(ParameterError):
    """A solve would need more memory than the machine has (refused before any work)."""

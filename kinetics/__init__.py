"""cavity-eliashberg physics: grid, gap equation, baths, collision operators."""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from ._baths import AbstractBath as AbstractBath  # noqa: E402
from ._baths import AbstractBosonBath as AbstractBosonBath  # noqa: E402
from ._baths import AbstractDynamicBath as AbstractDynamicBath  # noqa: E402
from ._baths import ClassicalDrive as ClassicalDrive  # noqa: E402
from ._baths import MultimodeCavity as MultimodeCavity  # noqa: E402
from ._baths import Phonons as Phonons  # noqa: E402
from ._baths import ReadoutDrive as ReadoutDrive  # noqa: E402
from ._baths import SingleModeCavity as SingleModeCavity  # noqa: E402
from ._baths import TabulatedBath as TabulatedBath  # noqa: E402
from ._baths import bath_types as bath_types  # noqa: E402
from ._bosons import DELTA_ZERO as DELTA_ZERO  # noqa: E402
from ._bosons import BosonGrid as BosonGrid  # noqa: E402
from ._bosons import DynamicBosons as DynamicBosons  # noqa: E402
from ._collision import bath_bilinear as bath_bilinear  # noqa: E402
from ._collision import collision as collision  # noqa: E402
from ._collision import relaxation as relaxation  # noqa: E402
from ._conductivity import complex_conductivity as complex_conductivity  # noqa: E402
from ._distributions import bose as bose  # noqa: E402
from ._distributions import fermi as fermi  # noqa: E402
from ._errors import CavityEliashbergError as CavityEliashbergError  # noqa: E402
from ._errors import GridError as GridError  # noqa: E402
from ._errors import ParameterError as ParameterError  # noqa: E402
from ._errors import PhysicsWarning as PhysicsWarning  # noqa: E402
from ._gap import equilibrium_gap as equilibrium_gap  # noqa: E402
from ._gap import gap as gap  # noqa: E402
from ._gap import gap_function as gap_function  # noqa: E402
from ._gap import thermal_distribution as thermal_distribution  # noqa: E402
from ._grid import Grid as Grid  # noqa: E402
from ._grid import to_energy as to_energy  # noqa: E402
from ._materials import ALUMINIUM as ALUMINIUM  # noqa: E402
from ._materials import Material as Material  # noqa: E402
from ._materials import kaplan_pair_breaking_rate as kaplan_pair_breaking_rate  # noqa: E402
from ._materials import phonons_of as phonons_of  # noqa: E402
from ._materials import planar_cavity_r as planar_cavity_r  # noqa: E402
from ._model import PROCESSES as PROCESSES  # noqa: E402
from ._model import Model as Model  # noqa: E402
from ._parameters import REQUIRED as REQUIRED  # noqa: E402
from ._parameters import ParameterSpec as ParameterSpec  # noqa: E402
from ._parameters import bath_parameter as bath_parameter  # noqa: E402
from ._perturbative import gap_change_gl as gap_change_gl  # noqa: E402
from ._perturbative import gap_change_linear_response as gap_change_linear_response  # noqa: E402
from ._perturbative import gap_relaxation_time as gap_relaxation_time  # noqa: E402
from ._perturbative import literal_delta_n as literal_delta_n  # noqa: E402
from ._perturbative import perturbative_delta_n as perturbative_delta_n  # noqa: E402
from ._profiles import AbstractProfile as AbstractProfile  # noqa: E402
from ._profiles import GaussianPulse as GaussianPulse  # noqa: E402
from ._profiles import Ramp as Ramp  # noqa: E402
from ._profiles import Step as Step  # noqa: E402
from ._profiles import scale_parameter as scale_parameter  # noqa: E402
from ._profiles import value_at as value_at  # noqa: E402
from ._units import allowed_units as allowed_units  # noqa: E402
from ._units import parse_quantity as parse_quantity  # noqa: E402
from ._units import to_internal as to_internal  # noqa: E402

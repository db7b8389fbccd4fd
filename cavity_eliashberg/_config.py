"""TOML configurations: schema, validation, unit conversion, Model construction.

(~1360 lines, over the house's ~600: the pydantic sections, the [[baths]] tables built
from the bath classes, unit conversion, sweep targets and every configuration check live
together because each check names keys the schema defines. The planned split: the schema
and bath tables into ``_schema.py``, units and sweep targets into ``_resolve.py``.)

A configuration describes one study: the model (temperatures, relaxation time,
grid, baths with optional time dependence), what to compute (``perturbative``,
``steady``, ``evolve``), an optional sweep over named parameters, solver
options, the output and the figure. `load_config` reads and validates it
completely before any computation; every mistake raises `ConfigError` naming
the key, the value and what is allowed. `build_model` turns it (and one point
of the sweep) into a `kinetics.Model`.

Values are numbers in the internal units of docs/physics.md section 1 (energies and
temperatures in k_B T_c, times in hbar / (k_B T_c)) or strings with a unit:
``"3 Delta0"``, ``"0.5 T_qp"``, ``"0.0155 / tau_in"``, ``"208 GHz"`` (an
ordinary frequency f, energy h f), ``"1.31e12 rad/s"`` (angular), ``"10 K"``,
``"5 ns"``; physical units need ``model.t_c``. See `kinetics.to_internal`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import json
import math
import operator
import os
import tomllib
from typing import Annotated, Any, Literal

import numpy as np
import pydantic
from pydantic import BaseModel, ConfigDict, Field

import kinetics
from kinetics import ParameterError, parse_quantity, to_internal
from solvers import DEFAULTS, DIFFRAX_SOLVERS, SOLVERS

from ._errors import ConfigError

COMPUTE_KINDS = ("perturbative", "steady", "evolve")
FIGURE_KINDS = (
    "gap_change", "delta_n", "transient", "coupling", "map", "decay", "dynamic_gap_change",
    "resonator", "reference", "none",
)


Number = float | int
Value = Number | str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# ---------------------------------------------------------------- time dependence


class StepProfile(_Strict):
    """``before`` for t < t_on, ``after`` from t_on on."""

    profile: Literal["step"]
    after: Value
    t_on: Value = 0.0
    before: Value = 0.0


class RampProfile(_Strict):
    """``start`` until t0, linear to ``end`` at t1."""

    profile: Literal["ramp"]
    start: Value
    end: Value
    t0: Value
    t1: Value


class PulseProfile(_Strict):
    """``base + peak exp(-(t - t0)^2 / (2 sigma^2))``."""

    profile: Literal["gaussian_pulse"]
    peak: Value
    t0: Value
    sigma: Value
    base: Value = 0.0


Profile = Annotated[StepProfile | RampProfile | PulseProfile, Field(discriminator="profile")]
Param = Value | Profile
_PROFILE_TIMES = {"t_on", "t0", "t1", "sigma"}

# ---------------------------------------------------------------- baths
# The [[baths]] schema is derived from the bath classes (kinetics.bath_types(): every class
# with a type_name, wherever it is defined): one table per class, its keys the class's
# declared parameters (cls.parameter_specs()), plus ``type``, an optional ``name`` and, for
# dynamic-capable classes, ``dynamic``. A class's table parameters ("table" dimension) may
# also come from a ``file`` of columns; the first is the abscissa Omega, whose unit
# ``<first table>_unit`` converts (tabulated: ``omega_unit``).


class DynamicSpec(_Strict):
    """The bath's bosons as state variables (docs/physics.md section 9; kinetics.DynamicBosons)."""

    tau_b: Param  # escape time; inf (TOML `inf`) for a closed system
    r_cav: Number | None = None
    tau0_ph: Value | None = None
    t_reservoir: Param | None = None
    n_omega: Annotated[int, Field(ge=8, le=20000)] = 128
    omega_max: Value | None = None
    omega_focus: Value | None = None
    omega_core: Value | None = None


_DYNAMIC_DIMENSIONS = {
    "tau_b": "time", "r_cav": "coupling", "tau0_ph": "time", "t_reservoir": "temperature",
    "omega_max": "energy", "omega_focus": "energy", "omega_core": "energy",
}
_NUMBER_DIMENSIONS = ("energy", "temperature", "time", "rate", "coupling")


def bath_class(type_name: str) -> type:
    """The bath class of a ``[[baths]]`` ``type`` (ConfigError naming the types if unknown)."""
    types = kinetics.bath_types()
    if type_name not in types:
        raise ConfigError(
            f"baths: unknown type {type_name!r}; the bath types are {sorted(types)}."
        )
    return types[type_name]


def number_parameters(cls: type) -> dict[str, str]:
    """A bath class's numeric parameters -> dimension (energy, temperature, time, rate,
    coupling), in declaration order: what the config converts from units and can sweep."""
    return {
        n: s.dimension for n, s in cls.parameter_specs().items()
        if s.dimension in _NUMBER_DIMENSIONS
    }


def table_parameters(cls: type) -> list[str]:
    """A bath class's table parameters (1-D arrays), in declaration order."""
    return [n for n, s in cls.parameter_specs().items() if s.dimension == "table"]


def _table_unit_key(cls: type) -> str:
    return f"{table_parameters(cls)[0]}_unit"


def _spec_field(spec) -> tuple[Any, Any]:
    """(annotation, default) of one bath parameter's TOML key."""
    default = ... if spec.required else spec.default
    if spec.dimension == "choice":
        return Literal[tuple(spec.choices)], default
    if spec.dimension == "table":  # inline numbers, or the columns of `file`
        return list[Number] | None, None
    typ = Param if spec.time_dependent else Value
    return (typ | None if default is None else typ), default


def _bath_spec_model(cls: type) -> type[BaseModel]:
    """The pydantic model of one bath class's ``[[baths]]`` table."""
    fields: dict[str, Any] = {
        "type": (Literal[cls.type_name], ...),
        "name": (str | None, None),
    }
    for name, spec in cls.parameter_specs().items():
        annotation, default = _spec_field(spec)
        fields[name] = (annotation, Field(default, description=spec.doc))
    if table_parameters(cls):
        fields["file"] = (str | None, None)
        fields[_table_unit_key(cls)] = (str, "")
    if cls.dynamic_capable:
        fields["dynamic"] = (DynamicSpec | None, None)
    return pydantic.create_model(
        f"{cls.__name__}Spec", __base__=_Strict, __doc__=_bath_doc(cls), **fields
    )


def _bath_doc(cls: type) -> str:
    return f"A [[baths]] table of type {cls.type_name!r} ({cls.__module__}.{cls.__qualname__})."



def _registry_key() -> tuple:
    return tuple(sorted((n, id(c)) for n, c in kinetics.bath_types().items()))


@functools.lru_cache(maxsize=8)
def _config_class(key: tuple) -> type:
    """`Config` with ``baths`` validated against the bath classes registered now (`key`:
    the registry's names and class ids, so that a class defined later is found)."""
    types = kinetics.bath_types()
    models = tuple(_bath_spec_model(types[name]) for name, _ in key)
    if not models:
        return Config
    if len(models) == 1:
        spec = models[0]
    else:
        spec = Annotated[functools.reduce(operator.or_, models), Field(discriminator="type")]
    return pydantic.create_model("Config", __base__=Config, baths=(list[spec], []))


def config_class() -> type:
    """The `Config` model for the bath classes defined now (a subclass of `Config`)."""
    return _config_class(_registry_key())



# ---------------------------------------------------------------- sections


class ModelSection(_Strict):
    t_qp: Value
    tau_in: Value | Literal["none"]
    t_c: Value | None = None
    # T_qp >= T_c (the normal state: no gap, nothing for the baths to enhance) is refused
    # unless a study asks for it explicitly
    allow_normal_state: bool = False
    # "fixed": Delta held at Delta_0 = Delta(T_qp) whatever n is (kinetics.Model.gap_mode;
    # the convention of Fischer & Catelani and most resonator papers)
    gap: Literal["self_consistent", "fixed"] = "self_consistent"


class GridSection(_Strict):
    n: Annotated[int, Field(ge=20, le=20000)] = 400
    xi_max: Annotated[float, Field(gt=0)] = 30.0
    core: Annotated[float, Field(gt=0)] = 2.0


# the solver options' defaults are the solvers' own (solvers.DEFAULTS, one table)
_STEADY = DEFAULTS["steady"]
_EVOLVE = DEFAULTS["evolve"]


class SteadySection(_Strict):
    start: Literal["perturbative", "thermal"] = _STEADY["start"]
    method: Literal["newton", "integrate"] = _STEADY["method"]
    tol: Annotated[float, Field(gt=0)] = _STEADY["tol"]
    max_iter: Annotated[int, Field(gt=0, le=10000)] = _STEADY["max_iter"]
    continuation_steps: Annotated[int, Field(ge=0, le=1000)] = _STEADY["continuation_steps"]
    solver: Literal[tuple(sorted(DIFFRAX_SOLVERS))] = _STEADY["solver"]  # type: ignore[valid-type]
    # a sweep key: the steady states along that axis are solved in order, each started from
    # the previous point's (warm start; solvers.sweep(..., continuation=<dimension>))
    continuation: str | None = None
    # the order along it: "up" (the values as given), "down" (reversed) or "both" (each
    # line both ways: a dimension `branch` and the hysteresis between the branches;
    # solvers.sweep(..., direction=...)); only with `continuation`
    direction: Literal["up", "down", "both"] = "up"


class EvolveSection(_Strict):
    t_end: Value
    t_start: Value = 0.0
    n_save: Annotated[int, Field(ge=2, le=100000)] = 200
    spacing: Literal["linear", "log"] = "linear"
    # spacing "log" from t_start = 0: the first save after 0 (default t_end / 1e4)
    first_save: Value | None = None
    solver: Literal[("auto", *sorted(SOLVERS))] = _EVOLVE["solver"]  # type: ignore[valid-type]
    rtol: Annotated[float, Field(gt=0, lt=1)] = _EVOLVE["rtol"]
    atol: Annotated[float, Field(gt=0, lt=1)] = _EVOLVE["atol"]
    max_steps: Annotated[int, Field(gt=0)] = _EVOLVE["max_steps"]
    checkpoint_every: Annotated[int, Field(ge=1)] | None = None
    # the initial state: the thermal state with n multiplied by (1 + n0_excess)
    n0_excess: Annotated[float, Field(gt=-1.0, le=1e6)] = 0.0


class SweepAxis(_Strict):
    """Values of one swept parameter: a list, or start/stop/num (linear or log)."""

    values: list[Number] | None = None
    start: Number | None = None
    stop: Number | None = None
    num: Annotated[int, Field(ge=1, le=100000)] | None = None
    spacing: Literal["linear", "log"] = "linear"
    unit: str = ""

    @pydantic.model_validator(mode="after")
    def _one_form(self):
        ranged = (self.start, self.stop, self.num)
        if self.values is None and any(v is None for v in ranged):
            raise ValueError("give either 'values' or all of 'start', 'stop', 'num'")
        if self.values is not None and any(v is not None for v in ranged):
            raise ValueError("give either 'values' or 'start'/'stop'/'num', not both")
        if self.values is not None and len(self.values) == 0:
            raise ValueError("'values' is empty")
        if self.values is not None and len(set(self.values)) != len(self.values):
            raise ValueError("'values' has a repeated value")
        if self.values is not None and not all(math.isfinite(v) for v in self.values):
            raise ValueError("'values' must be finite numbers (the unit goes in 'unit')")
        if self.spacing == "log" and self.values is None and not (self.start > 0 and self.stop > 0):
            raise ValueError("log spacing needs start > 0 and stop > 0")
        return self

    def points(self) -> list[Value]:
        if self.values is not None:
            return list(self.values)
        f = np.geomspace if self.spacing == "log" else np.linspace
        return [float(v) for v in f(self.start, self.stop, self.num)]


class ClusterSection(_Strict):
    """Where a sweep runs: a dask.distributed scheduler, or k local worker processes."""

    scheduler: str | None = None
    workers: Annotated[int, Field(ge=1, le=4096)] | None = None


class ObservablesSection(_Strict):
    """What a resonator made of the film sees (solvers.add_observables; docs/physics.md
    section 11): sigma_1, sigma_2 at each probe frequency, delta f_r / f_r, 1 / Q_qp,
    x_qp, T*, n_qp in um^-3 (and L_s with ``r_sq``), for steady and evolve results."""

    # the resonance (probe) frequencies: "5 GHz", "20 ueV", "0.1 Delta0", or T_c numbers
    probe_frequencies: list[Value]
    alpha: float  # kinetic-inductance fraction, 0 < alpha <= 1
    material: str = "Al"  # kinetics.MATERIALS: N_0 and (without model.t_c) T_c
    r_sq: Value | None = None  # normal-state sheet resistance: ohms, or "1.5 ohm"

    @pydantic.field_validator("probe_frequencies")
    @classmethod
    def _some(cls, v):
        if not v:
            raise ValueError(
                'give at least one probe frequency, e.g. probe_frequencies = ["5 GHz"]'
            )
        return v

    @pydantic.field_validator("alpha")
    @classmethod
    def _fraction(cls, v):
        if not (math.isfinite(v) and 0.0 < v <= 1.0):
            raise ValueError(
                f"the kinetic-inductance fraction must be in (0, 1] (e.g. 0.1); got {v!r}"
            )
        return v

    @pydantic.field_validator("material")
    @classmethod
    def _known(cls, v):
        try:
            return kinetics.material(v).name
        except ParameterError:
            raise ValueError(
                f"unknown material {v!r}; allowed: {', '.join(kinetics.MATERIALS)}"
            ) from None


class PerturbativeSection(_Strict):
    """The perturbative curves: cheap, so they may be sampled more finely than the
    nonlinear points. ``refine = k`` solves them on the figure's x axis (``figure.x`` or the
    first swept key) with k - 1 extra points in every interval (geometric for a log axis),
    stored over the dimension ``<x>_fine``; the nonlinear points keep the coarse axis."""

    refine: Annotated[int, Field(ge=1, le=100)] = 1


class OutputSection(_Strict):
    folder: str = "output"
    name: str | None = None


class FigureSection(_Strict):
    kind: Literal[FIGURE_KINDS] | None = None  # type: ignore[valid-type]
    x: str | None = None
    per_unit_coupling: str | None = None
    snapshots: list[Value] = []
    log_x: bool = False
    # dynamic_gap_change: draw the boson occupation spectra at this value of the other
    # swept parameter (in that axis' unit)
    spectra_at: Number | None = None


# ---------------------------------------------------------------- analyses
# what each kind computes: cavity_eliashberg._analyses (the names of its results there)


class StaticReferenceAnalysis(_Strict):
    """The compute kinds' main results with every bath static (``<variable>_static``)."""

    kind: Literal["static_reference"]


class SlowestTimeAnalysis(_Strict):
    """1 / min(-Re eig J) at the thermal state, dynamic and static (``slowest_time``), with
    the baths' parameters at the first save time (`at` = "start") or the last ("end": after
    a pulse, whose tail at t = 0 is still in the linearization)."""

    kind: Literal["slowest_time"]
    at: Literal["start", "end"] = "start"


class DecayTimeAnalysis(_Strict):
    """Late-time exponential fit of an evolved quantity's excess (``decay_time``); the window
    is in units of each point's slowest-eigenvalue time."""

    kind: Literal["decay_time"]
    variable: Literal["n_qp", "relative_gap_change", "gap"] = "n_qp"
    window: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(gt=0)]] = (0.7, 4.0)

    @pydantic.model_validator(mode="after")
    def _ordered(self):
        if not self.window[1] > self.window[0]:
            raise ValueError("window: [start, stop] with stop > start (slowest times)")
        return self


class RothwarfTaylorAnalysis(_Strict):
    """The Rothwarf-Taylor decay time (tau_r/2)(1 + tau_esc / tau_B) of a dynamic phonon
    bath (``rothwarf_taylor_time``) and, with a sweep over its ``dynamic.tau_b``, the
    slope of the slowest time against tau_esc over the formula's
    (``rothwarf_taylor_slope_ratio``)."""

    kind: Literal["rothwarf_taylor"]
    bath: str


class CrossingAnalysis(_Strict):
    """Where a result first crosses `level` along a swept axis (``<name>``)."""

    kind: Literal["crossing"]
    variable: str
    along: str
    level: float
    relative_to_static: bool = False
    name: str = "crossing"


class ReferencePanel(_Strict):
    """One panel of a reference table and the study variable it gives."""

    figure: int | str
    panel: str
    variable: str | None = None  # default: from the table's y_name (x_qp, gap_recovery)
    log_y: bool | None = None  # interpolate in log y (default: for x_qp)
    name: str | None = None  # result name (default <variable>_reference)


class ReferenceAnalysis(_Strict):
    """A shipped reference table's curves at each point's drive and T_B (``<variable>_
    reference``, ``..._relative_difference``) and ``gap_recovery`` (cavity_eliashberg._
    reference)."""

    kind: Literal["reference"]
    table: str
    panels: Annotated[list[ReferencePanel], Field(min_length=1)]
    curve: str = "numerical"
    drive: str | None = None
    t_tolerance: Value = "1 mK"
    label: str | None = None


Analysis = Annotated[
    StaticReferenceAnalysis
    | SlowestTimeAnalysis
    | DecayTimeAnalysis
    | RothwarfTaylorAnalysis
    | CrossingAnalysis
    | ReferenceAnalysis,
    Field(discriminator="kind"),
]
ANALYSIS_KINDS = ("static_reference", "slowest_time", "decay_time", "rothwarf_taylor", "crossing",
                  "reference")


class Config(_Strict):
    """A whole study (see the module docstring and runs/README.md)."""

    title: str = ""
    compute: list[Literal[COMPUTE_KINDS]]  # type: ignore[valid-type]
    model: ModelSection
    grid: GridSection = GridSection()
    # validated against the bath classes defined when a configuration is read
    # (`config_class`; `Config.model_validate` dispatches there)
    baths: list[Any] = []
    perturbative: PerturbativeSection = PerturbativeSection()
    steady: SteadySection = SteadySection()
    evolve: EvolveSection | None = None
    sweep: dict[str, SweepAxis] = {}
    cluster: ClusterSection = ClusterSection()
    output: OutputSection = OutputSection()
    figure: FigureSection = FigureSection()
    observables: ObservablesSection | None = None
    analyses: list[Analysis] = []
    quick: dict[str, Any] = {}

    @classmethod
    def model_validate(cls, obj, **kwargs):
        if cls is Config:
            return config_class().model_validate(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    @pydantic.model_validator(mode="after")
    def _consistent(self):
        if not self.compute:
            raise ValueError("compute: name at least one of " + ", ".join(COMPUTE_KINDS))
        if len(set(self.compute)) != len(self.compute):
            raise ValueError("compute: a kind is listed twice")
        if "evolve" in self.compute and self.evolve is None:
            raise ValueError(
                "compute includes 'evolve' but there is no [evolve] section (t_end, ...)"
            )
        if "evolve" in self.compute and len(self.compute) > 1:
            raise ValueError("compute: 'evolve' cannot be combined with other kinds in one study")
        kinds = [a.kind for a in self.analyses]
        if len(set(kinds)) != len(kinds) and kinds.count("crossing") < 2:
            raise ValueError("analyses: a kind is listed twice")
        names = [a.name for a in self.analyses if a.kind == "crossing"]
        if len(set(names)) != len(names):
            raise ValueError("analyses: two crossings share a name; give each its own 'name'")
        return self


# ---------------------------------------------------------------- reading


def _format_validation_error(err: pydantic.ValidationError, source: str) -> str:
    types = kinetics.bath_types()
    tags = _TAGS | set(types)
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and p in tags))
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (a typo?)" + _bath_keys_hint(e["loc"], types)
        elif e["type"] == "missing":
            msg = "required key is missing" + _bath_doc_hint(e["loc"], types)
        elif e["type"] == "union_tag_not_found" and e["loc"][:1] == ("baths",):
            msg = f"a bath needs a 'type', one of {sorted(types)}"
        elif _constant_given_a_profile(e, types):
            msg = "a profile of time is not allowed here (a constant parameter); give a number"
        elif "input" in e and e["type"] != "union_tag_invalid":
            msg = f"{msg}; got {e['input']!r}"
        lines.append(f"  {loc or '(top level)'}: {msg}")
    return f"invalid configuration {source}:\n" + "\n".join(dict.fromkeys(lines))


def _bath_field(loc: tuple, types: dict) -> tuple[type | None, tuple]:
    """(bath class, the path inside its table) of an error's location under ``baths``."""
    if len(loc) >= 3 and loc[0] == "baths" and loc[2] in types:
        return types[loc[2]], tuple(loc[3:])
    return None, ()


def _constant_given_a_profile(e: dict, types: dict) -> bool:
    cls, rest = _bath_field(e["loc"], types)
    spec = cls.parameter_specs().get(rest[0]) if cls is not None and rest else None
    given = e.get("input")
    return (
        spec is not None and not spec.time_dependent and isinstance(given, dict)
        and "profile" in given
    )


def _bath_keys_hint(loc: tuple, types: dict) -> str:
    cls, rest = _bath_field(loc, types)
    if cls is None:
        return ""
    if rest == ("dynamic",):
        capable = sorted(n for n, c in types.items() if c.dynamic_capable)
        return f"; 'dynamic' applies to the dynamic-capable bath types only: {capable}"
    if len(rest) == 1:
        return f"; a {cls.type_name} bath takes {', '.join(_bath_keys(cls))}"
    if len(rest) == 2 and rest[0] == "dynamic":
        return f"; 'dynamic' takes {', '.join(DynamicSpec.model_fields)}"
    return ""


def _bath_keys(cls: type) -> list[str]:
    keys = ["type", "name", *cls.parameter_specs()]
    if table_parameters(cls):
        keys += ["file", _table_unit_key(cls)]
    if cls.dynamic_capable:
        keys.append("dynamic")
    return keys


def _bath_doc_hint(loc: tuple, types: dict) -> str:
    cls, rest = _bath_field(loc, types)
    spec = cls.parameter_specs().get(rest[0]) if cls is not None and len(rest) == 1 else None
    return f" ({spec.doc})" if spec is not None else ""


_TAGS = set(ANALYSIS_KINDS) | {
    "StaticReferenceAnalysis",
    "SlowestTimeAnalysis",
    "DecayTimeAnalysis",
    "RothwarfTaylorAnalysis",
    "CrossingAnalysis",
    "ReferenceAnalysis",
    "step",
    "ramp",
    "gaussian_pulse",
    "float",
    "int",
    "str",
    "StepProfile",
    "RampProfile",
    "PulseProfile",
}


def _set_dotted(raw: dict, key: str, value, *, source: str) -> None:
    """Set ``section.key = value``; ``<bath name>.field`` targets that bath, and
    ``sweep.<bath>.<field>`` one sweep axis (sweep keys contain dots themselves)."""
    parts = key.split(".")
    if parts[0] == "sweep" and len(parts) > 1:
        node, parts = raw.setdefault("sweep", {}), ["sweep", ".".join(parts[1:])]
        node[parts[1]] = value
        return
    if parts[0] not in Config.model_fields and len(parts) > 1:
        node = _bath_by_name(raw, parts[0])
        if node is None:
            raise ConfigError(
                f"{source}: {key!r} names neither a section "
                f"({', '.join(Config.model_fields)}) nor a bath."
            )
        parts = parts[1:]
    else:
        node = raw
    for p in parts[:-1]:
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {key!r}: {p!r} is not a table.")
        node = node.setdefault(p, {})
    if not isinstance(node, dict):
        raise ConfigError(f"{source}: {key!r} does not name a key of a table.")
    node[parts[-1]] = value


def _bath_by_name(raw: dict, name: str):
    for k, b in enumerate(raw.get("baths", []) or []):
        if isinstance(b, dict) and _bath_name(b, k) == name:
            return b
    return None


def _bath_name(spec, k: int) -> str:
    get = spec.get if isinstance(spec, dict) else lambda key, d=None: getattr(spec, key, d)
    return get("name", None) or get("type", None) or f"bath{k}"


def parse_override(text: str) -> tuple[str, Any]:
    """``"grid.n=120"`` -> ("grid.n", 120) (the value is read as TOML, else a string)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: write KEY=VALUE, e.g. --set grid.n=120.")
    key, value = text.split("=", 1)
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip(), parsed


def load_config(
    source, *, overrides: dict | None = None, quick: bool = False
) -> tuple[Config, dict]:
    """Read and validate a configuration.

    - `source`: a path to a TOML file, TOML text (a ``str`` with a newline), or a dict.
    - `overrides`: dotted keys -> values, applied after reading (``--set``).
    - `quick`: apply the file's own ``[quick]`` overrides (a coarse, fast version).

    Returns (config, raw dict after overrides). Raises `ConfigError`.
    """
    base_dir = os.getcwd()
    if isinstance(source, dict):
        raw, name = copy.deepcopy(source), "(dict)"
    elif isinstance(source, str) and "\n" in source:
        raw, name = _parse_toml(source, "(text)"), "(text)"
    else:
        path = os.fspath(source)
        raw = _read_toml_file(path)
        name, base_dir = path, os.path.dirname(os.path.abspath(path))
    if quick:
        q = raw.get("quick")
        if not isinstance(q, dict) or not q:
            raise ConfigError(
                f"{name} has no [quick] section: quick = true (--quick) would run the study at "
                "full size. Run it without --quick, or add a [quick] table of overrides "
                '(e.g. "grid.n" = 120) to the file.'
            )
        for key, value in q.items():
            _set_dotted(raw, key, value, source=f"{name} [quick]")
    for key, value in (overrides or {}).items():
        _set_dotted(raw, key, value, source=name)
    _check_overrides_not_swept(raw, overrides or {}, name)
    private = {k: raw.pop(k) for k in list(raw) if isinstance(k, str) and k.startswith("_")}
    try:
        cfg = Config.model_validate(raw)
    except pydantic.ValidationError as err:
        raise ConfigError(_format_validation_error(err, name)) from None
    raw.update(private)
    raw.setdefault("_base_dir", base_dir)
    raw.setdefault("_source", name)
    try:
        _check_semantics(cfg, raw)
    except ConfigError:
        raise
    except ParameterError as err:  # from the physics' own checks: same message, config type
        raise ConfigError(f"{name}: {err}") from None
    return cfg, raw


def _read_toml_file(path: str) -> dict:
    """A configuration file's TOML (ConfigError for a folder, a binary file, bad TOML)."""
    if os.path.isdir(path):
        raise ConfigError(
            f"{path!r} is a folder, not a configuration file; give a .toml file (or the name "
            "of a shipped study: `cavity-eliashberg list`)."
        )
    if not os.path.isfile(path):
        raise ConfigError(f"configuration file {path!r} does not exist.")
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        raise ConfigError(f"cannot read the configuration file {path!r}: {err.strerror}.") from None
    if data.startswith((b"\x89HDF", b"CDF\x01", b"CDF\x02")):
        raise ConfigError(
            f"{path} is a netCDF result, not a configuration; read it with "
            f"`cavity-eliashberg show {path}` or `cavity-eliashberg plot {path}`."
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path} is not a text file (binary data: an image or a result?); a configuration "
            "is a TOML text file (see runs/README.md)."
        ) from None
    return _parse_toml(text, path)


def _check_overrides_not_swept(raw: dict, overrides: dict, name: str) -> None:
    """A --set on a parameter the study sweeps would be overwritten by the sweep: refuse."""
    swept = raw.get("sweep")
    if not isinstance(swept, dict):
        return
    for key in overrides:
        if key == "sweep" or key.startswith("sweep."):
            continue
        for axis in swept:
            if key == axis or axis.startswith(key + ".") or key.startswith(axis + "."):
                raise ConfigError(
                    f"{name}: --set {key}=...: the study sweeps {axis!r} ([sweep]), which "
                    f"would replace the value you set. Set the sweep instead, e.g. "
                    f"--set 'sweep.{axis}={{values = [...], unit = \"...\"}}', or remove "
                    f"the axis with a configuration of your own."
                )


def _parse_toml(text: str, name: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{name}: not valid TOML: {err}") from None


def bath_names(cfg: Config) -> list[str]:
    return [_bath_name(b, k) for k, b in enumerate(cfg.baths)]


def _check_semantics(cfg: Config, raw: dict) -> None:
    names = bath_names(cfg)
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(
            f"baths: two baths share the name {sorted(dup)[0]!r}; give each a distinct 'name'."
        )
    if cfg.model.tau_in == "none" and not cfg.baths:
        raise ConfigError("model.tau_in = 'none' needs at least one bath ([[baths]]).")
    if cfg.perturbative.refine > 1 and "perturbative" in cfg.compute and not cfg.sweep:
        raise ConfigError(
            "perturbative.refine needs a [sweep]: it refines the figure's x axis (without "
            "'perturbative' in compute it has no effect)."
        )
    if "perturbative" in cfg.compute and cfg.model.tau_in == "none":
        raise ConfigError(
            "compute = 'perturbative' needs a relaxation time: model.tau_in must not be 'none'."
        )
    for key in cfg.sweep:
        _sweep_target(cfg, key)
    if cfg.figure.x is not None and cfg.figure.x not in cfg.sweep:
        raise ConfigError(
            f"figure.x = {cfg.figure.x!r} is not a swept parameter; "
            f"swept: {sorted(cfg.sweep) or 'none'}."
        )
    if cfg.figure.per_unit_coupling is not None:
        _sweep_target(cfg, cfg.figure.per_unit_coupling, what="figure.per_unit_coupling")
    if cfg.steady.continuation is not None:
        if "steady" not in cfg.compute or cfg.steady.continuation not in cfg.sweep:
            raise ConfigError(
                f"steady.continuation = {cfg.steady.continuation!r} must name a swept parameter "
                f"of a steady study; swept: {sorted(cfg.sweep) or 'none'}."
            )
    if cfg.steady.direction != "up" and cfg.steady.continuation is None:
        raise ConfigError(
            f"steady.direction = {cfg.steady.direction!r} needs steady.continuation = "
            "'<sweep key>' (the axis the steady states are followed along, up and down)."
        )
    if cfg.evolve is not None and cfg.evolve.n0_excess != 0.0 and "evolve" not in cfg.compute:
        raise ConfigError("evolve.n0_excess applies to compute = ['evolve'] only.")
    _check_analyses(cfg)
    from ._reference import check as _check_reference  # the kind "reference"

    _check_reference(cfg, raw)
    if cfg.observables is not None:
        observables_options(cfg)
    elif cfg.figure.kind == "resonator":
        raise ConfigError(
            "figure.kind = 'resonator' draws the observables: add an [observables] table "
            '(probe_frequencies = ["5 GHz"], alpha = 0.1, material = "Al").'
        )
    # every point of the sweep must build: resolve units and construct the models now
    for point in sweep_points(cfg):
        build_model(cfg, point, raw=raw)
    if "evolve" in cfg.compute:
        save_times(cfg, raw=raw)


def _check_analyses(cfg: Config) -> None:
    """What each analysis needs (see cavity_eliashberg._analyses)."""
    kinds = {a.kind for a in cfg.analyses}
    dynamic = [
        name for name, b in zip(bath_names(cfg), cfg.baths, strict=True)
        if getattr(b, "dynamic", None) is not None
    ]
    for a in cfg.analyses:
        where = f"analyses ({a.kind})"
        if a.kind in ("static_reference", "slowest_time") and not dynamic:
            raise ConfigError(f"{where}: needs a dynamic bath (a [[baths]] with 'dynamic').")
        if a.kind in ("static_reference",) and cfg.compute == ["perturbative"]:
            raise ConfigError(f"{where}: needs compute 'steady' or 'evolve'.")
        if a.kind == "decay_time":
            if "evolve" not in cfg.compute:
                raise ConfigError(f"{where}: needs compute = ['evolve'].")
            if "slowest_time" not in kinds:
                raise ConfigError(
                    f"{where}: its window is in slowest times; add an analysis "
                    "{ kind = 'slowest_time' }."
                )
        if a.kind == "rothwarf_taylor":
            spec = dict(zip(bath_names(cfg), cfg.baths, strict=True)).get(a.bath)
            if spec is None or spec.type != "phonons" or a.bath not in dynamic:
                raise ConfigError(
                    f"{where}: bath = {a.bath!r} must name a dynamic phonon bath; "
                    f"dynamic baths: {dynamic}."
                )
            if spec.dynamic.tau0_ph is None:
                raise ConfigError(f"{where}: needs {a.bath}.dynamic.tau0_ph.")
            if "slowest_time" not in kinds:
                raise ConfigError(f"{where}: add an analysis {{ kind = 'slowest_time' }}.")
        if a.kind == "crossing":
            if a.along not in cfg.sweep:
                raise ConfigError(
                    f"{where}: along = {a.along!r} is not a swept parameter; "
                    f"swept: {sorted(cfg.sweep) or 'none'}."
                )
            if a.relative_to_static and "static_reference" not in kinds:
                raise ConfigError(
                    f"{where}: relative_to_static needs an analysis "
                    "{ kind = 'static_reference' }."
                )


def _sweep_target(cfg: Config, key: str, what: str = "sweep") -> tuple[str, str | None, str]:
    """``"cavity.omega0"`` -> ("bath", "cavity", "omega0");
    ``"model.t_qp"`` -> ("model", None, "t_qp")."""
    parts = key.split(".")
    names = bath_names(cfg)
    if parts[0] == "model" and len(parts) == 2 and parts[1] in ("t_qp", "tau_in"):
        return ("model", None, parts[1])
    if parts[0] in names and len(parts) in (2, 3):
        spec = cfg.baths[names.index(parts[0])]
        field = parts[1]
        if field == "dynamic" and len(parts) == 3 and getattr(spec, "dynamic", None) is not None:
            if parts[2] not in _DYNAMIC_DIMENSIONS:
                raise ConfigError(
                    f"{what} key {key!r}: a dynamic bath's numeric fields are "
                    f"{sorted(_DYNAMIC_DIMENSIONS)}."
                )
            return ("bath", parts[0], ".".join(parts[1:]))
        numbers = number_parameters(bath_class(spec.type))
        if field not in numbers:
            allowed = list(numbers)
            raise ConfigError(
                f"{what} key {key!r}: bath {parts[0]!r} has no numeric field {field!r}; "
                f"allowed: {allowed}."
            )
        if len(parts) == 3:
            prof = getattr(spec, field)
            if (
                not isinstance(prof, BaseModel)
                or parts[2] not in type(prof).model_fields
                or parts[2] == "profile"
            ):
                raise ConfigError(
                    f"{what} key {key!r}: {parts[0]}.{field} is not a profile with a field "
                    f"{parts[2]!r}."
                )
        return ("bath", parts[0], ".".join(parts[1:]))
    raise ConfigError(
        f"{what} key {key!r} does not name a parameter; write 'model.t_qp', 'model.tau_in' or "
        f"'<bath name>.<field>' with a bath name among {names}."
    )


def sweep_points(cfg: Config) -> list[dict]:
    """Every point of the sweep (the product of the axes), as {key: value-with-unit}."""
    if not cfg.sweep:
        return [{}]
    keys = list(cfg.sweep)
    axes = [cfg.sweep[k].points() for k in keys]
    return [
        {k: _with_unit(v, cfg.sweep[k].unit) for k, v in zip(keys, combo, strict=True)}
        for combo in itertools.product(*axes)
    ]


def _with_unit(v: Value, unit: str) -> Value:
    if isinstance(v, str) or not unit:
        return v
    return f"{v!r} {unit}"


def dim_name(key: str) -> str:
    """Sweep key -> dimension name: ``"cavity.omega0"`` -> ``"cavity_omega0"``."""
    return key.replace(".", "_")


def refined_axis(values, refine: int) -> np.ndarray:
    """`values` with `refine` - 1 points added in every interval: linear, or geometric when
    the values are all positive and evenly spaced in their logarithm. Every original value
    stays, at index k * refine."""
    values = np.asarray(values, dtype=np.float64)
    if refine <= 1 or values.size < 2:
        return values
    steps = np.diff(np.log(values)) if np.all(values > 0) else None
    geometric = steps is not None and np.allclose(steps, steps[0], rtol=1e-9)
    f = np.arange(refine) / refine
    a, b = values[:-1, None], values[1:, None]
    inner = a * (b / a) ** f if geometric else a + (b - a) * f
    return np.concatenate([inner.reshape(-1), values[-1:]])


def figure_axis(cfg: Config) -> str:
    """The sweep key of the figure's x axis: ``figure.x``, else the first swept key."""
    return cfg.figure.x or next(iter(cfg.sweep))


def axis_values(cfg: Config, key: str) -> np.ndarray:
    """The numbers along a sweep axis, in the axis' own unit."""
    return np.asarray(cfg.sweep[key].points(), dtype=np.float64)


# ---------------------------------------------------------------- building models


def _convert(value, *, name: str, dimension: str, t_c, refs) -> float:
    if isinstance(value, str):
        number, unit = parse_quantity(value, name=name)
    else:
        number, unit = float(value), ""
    if unit == "Delta0" and "Delta0" in refs and refs["Delta0"] is None:
        raise ConfigError(
            f"{name} = {value!r}: Delta0 is zero in the normal state (model.t_qp >= 1); "
            "give the value in T_c, T_qp or a physical unit."
        )
    try:
        out = to_internal(
            number, unit, dimension=dimension, name=name, t_c_kelvin=t_c, references=refs
        )
    except ParameterError as err:
        raise ConfigError(str(err)) from None
    if not math.isfinite(out):
        raise ConfigError(f"{name}: must be finite; got {value!r}.")
    return out


def _resolve_param(value, *, name, dimension, t_c, refs):
    if not isinstance(value, BaseModel):
        return _convert(value, name=name, dimension=dimension, t_c=t_c, refs=refs)
    fields = {}
    for f in type(value).model_fields:
        if f == "profile":
            continue
        dim = "time" if f in _PROFILE_TIMES else dimension
        fields[f] = _convert(
            getattr(value, f), name=f"{name}.{f}", dimension=dim, t_c=t_c, refs=refs
        )
    cls = {"step": kinetics.Step, "ramp": kinetics.Ramp, "gaussian_pulse": kinetics.GaussianPulse}[
        value.profile
    ]
    try:
        return cls(**fields)
    except ParameterError as err:
        raise ConfigError(f"{name}: {err}") from None


def _apply_point(cfg: Config, point: dict) -> Config:
    """The configuration with the swept values of one point substituted."""
    if not point:
        return cfg
    data = cfg.model_dump()
    names = bath_names(cfg)
    for key, value in point.items():
        where, bath, field = _sweep_target(cfg, key)
        node = data["model"] if where == "model" else data["baths"][names.index(bath)]
        parts = field.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return Config.model_validate(data)


def _t_c(cfg: Config) -> float | None:
    if cfg.model.t_c is None:
        return None
    v = cfg.model.t_c
    number, unit = parse_quantity(v, name="model.t_c") if isinstance(v, str) else (float(v), "K")
    if unit not in ("K", "mK") or not number > 0:
        raise ConfigError(
            f'model.t_c: the critical temperature in kelvin, e.g. "1.19 K"; got {v!r}.'
        )
    return number * (1e-3 if unit == "mK" else 1.0)


def build_grid(cfg: Config) -> kinetics.Grid:
    g = cfg.grid
    try:
        return kinetics.Grid(n=g.n, xi_max=g.xi_max, core=g.core)
    except ParameterError as err:
        raise ConfigError(f"grid: {err}") from None


def references(cfg: Config, point: dict | None = None) -> dict:
    """The relative units of one point: Delta0, T_qp, tau_in (internal units)."""
    cfg = _apply_point(cfg, point or {})
    t_c = _t_c(cfg)
    t_qp = _convert(cfg.model.t_qp, name="model.t_qp", dimension="temperature", t_c=t_c, refs={})
    if not t_qp > 0:
        raise ConfigError(f"model.t_qp: must be > 0 [T_c]; got {cfg.model.t_qp!r}.")
    if t_qp >= 1.0 and not cfg.model.allow_normal_state:
        at = f" (at the sweep point {point})" if point else ""
        raise ConfigError(
            f"model.t_qp = {cfg.model.t_qp!r}{at} is {t_qp:g} T_c: at or above T_c the film is "
            "in the normal state (Delta = 0), where the gap change and the perturbative "
            "formula are meaningless and the steady state ends in NaN. Give t_qp < 1 [T_c] "
            "(e.g. 0.9), or set [model] allow_normal_state = true to run the normal state "
            "on purpose."
        )
    tau_in = None
    if cfg.model.tau_in != "none":
        tau_in = _convert(cfg.model.tau_in, name="model.tau_in", dimension="time", t_c=t_c, refs={})
        if not tau_in > 0:
            raise ConfigError(f"model.tau_in: must be > 0 (or 'none'); got {cfg.model.tau_in!r}.")
    delta0 = float(kinetics.equilibrium_gap(t_qp, build_grid(cfg)))
    return {"Delta0": delta0 if delta0 > 0 else None, "T_qp": t_qp, "tau_in": tau_in, "t_c": t_c}


_INTERNAL_UNIT = {
    "energy": "T_c", "temperature": "T_c", "time": "hbar/(k_B T_c)", "rate": "k_B T_c/hbar",
    "coupling": "dimensionless",
}


def _in_relative_units(value: float, dimension: str, refs: dict, field: str) -> str:
    """`value` [internal] in the relative units a TOML value may carry ("" if none apply)."""
    if dimension == "energy" and refs.get("Delta0"):
        return f" = {value / refs['Delta0']:.4g} Delta0"
    if dimension == "temperature":
        return f" = {value / refs['T_qp']:.4g} T_qp"
    if refs.get("tau_in") is None:
        return ""
    if dimension == "time":
        return f" = {value / refs['tau_in']:.4g} tau_in"
    if dimension in ("coupling", "rate"):
        return f"; {field} tau_in = {value * refs['tau_in']:.4g}"
    return ""


def _axis_dimension(cfg: Config, key: str) -> str:
    where, bath, field = _sweep_target(cfg, key)
    if where == "model":
        return "temperature" if field == "t_qp" else "time"
    parts = field.split(".")
    if parts[0] == "dynamic":
        return _DYNAMIC_DIMENSIONS[parts[1]]
    if len(parts) == 2 and parts[1] in _PROFILE_TIMES:
        return "time"
    spec = cfg.baths[bath_names(cfg).index(bath)]
    return number_parameters(bath_class(spec.type))[parts[0]]


def unitless_values(cfg: Config) -> list[str]:
    """One line per parameter the file gives as a plain number (read in internal units),
    with its value in the relative units the TOML allows, e.g.
    ``baths.cavity.eta = 0.0155: 0.0155 [dimensionless]; eta tau_in = 15.5``: a plain
    number meant in the paper's units (eta tau_in) shows up here. Zeros and the
    dimensionless mode density r_cav (no other unit) are left out."""
    refs = references(cfg)
    lines = []

    def add(key: str, value, dimension: str, field: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if value == 0 or not math.isfinite(value):
            return
        plain = key in ("model.t_qp", "model.tau_in")  # T_qp, tau_in are their own units
        note = "" if plain else _in_relative_units(value, dimension, refs, field)
        lines.append(f"  {key} = {value!r}: {float(value):.6g} [{_INTERNAL_UNIT[dimension]}]{note}")

    add("model.t_qp", cfg.model.t_qp, "temperature", "t_qp")
    if cfg.model.tau_in != "none":
        add("model.tau_in", cfg.model.tau_in, "time", "tau_in")
    for spec, name in zip(cfg.baths, bath_names(cfg), strict=True):
        numbers = number_parameters(bath_class(spec.type))
        for field in numbers:
            if field not in spec.model_fields_set:
                continue
            value = getattr(spec, field)
            if isinstance(value, BaseModel):  # a profile: the numbers it is given
                for f in [f for f in type(value).model_fields if f in value.model_fields_set]:
                    dim = "time" if f in _PROFILE_TIMES else numbers[field]
                    add(f"baths.{name}.{field}.{f}", getattr(value, f), dim, field)
            else:
                add(f"baths.{name}.{field}", value, numbers[field], field)
        dyn = getattr(spec, "dynamic", None)
        for field in [] if dyn is None else sorted(dyn.model_fields_set):
            dimension = _DYNAMIC_DIMENSIONS.get(field)
            if dimension not in (None, "coupling"):  # r_cav has no other unit
                add(f"baths.{name}.dynamic.{field}", getattr(dyn, field), dimension, field)
    for key, axis in cfg.sweep.items():
        if axis.unit or _axis_dimension(cfg, key) == "coupling" and key.endswith("r_cav"):
            continue
        values = axis.points()
        lines.append(
            f"  sweep {key}: {len(values)} value(s) from {min(values):.4g} to {max(values):.4g} "
            f"[{_INTERNAL_UNIT[_axis_dimension(cfg, key)]}] (no unit given: internal units)"
        )
    return lines


def _tables(spec, cls: type, base_dir: str, name: str, t_c, refs) -> dict:
    """The table parameters of a bath (inline lists, or the columns of ``file`` in
    declaration order); the first, the abscissa Omega, converted by ``<first>_unit``."""
    names = table_parameters(cls)
    inline = [getattr(spec, n) for n in names]
    if (spec.file is None) == any(v is None for v in inline):
        both = " and ".join(repr(n) for n in names)
        raise ConfigError(f"{name}: give either 'file' or {'all of' if len(names) > 2 else 'both'} "
                          f"{both}.")
    if spec.file is not None:
        path = spec.file if os.path.isabs(spec.file) else os.path.join(base_dir, spec.file)
        what = f"{len(names)} columns ({', '.join(names)})"
        try:
            table = np.loadtxt(path, ndmin=2, comments="#", delimiter=None)
        except (OSError, ValueError) as err:
            raise ConfigError(f"{name}.file: cannot read {path!r} as {what}: {err}") from None
        if table.shape[1] != len(names):
            raise ConfigError(
                f"{name}.file: {path!r} must have {what}; it has {table.shape[1]}."
            )
        columns = [table[:, k] for k in range(len(names))]
    else:
        columns = [np.asarray(v, float) for v in inline]
    unit_key = _table_unit_key(cls)
    unit = getattr(spec, unit_key)
    if unit:
        columns[0] = columns[0] * _convert(
            f"1 {unit}", name=f"{name}.{unit_key}", dimension="energy", t_c=t_c, refs=refs
        )
    return dict(zip(names, columns, strict=True))


def _dynamic(spec: DynamicSpec, name: str, t_c, refs) -> kinetics.DynamicBosons:
    kwargs = {"n_omega": spec.n_omega}
    refs, times = dict(refs), {}
    # plain-number fields first, so that siblings can serve as units ("10 tau0_ph")
    fields = sorted(
        _DYNAMIC_DIMENSIONS, key=lambda f: _unit_of(getattr(spec, f)) in _DYNAMIC_DIMENSIONS
    )
    for f in fields:
        dim = _DYNAMIC_DIMENSIONS[f]
        v = getattr(spec, f)
        if v is None:
            continue
        if f == "tau_b" and isinstance(v, (int, float)) and math.isinf(v) and v > 0:
            kwargs[f] = math.inf  # a closed system: no escape
            continue
        unit = _unit_of(v)
        if dim == "time" and unit in times:  # a time in units of a sibling time
            kwargs[f] = parse_quantity(v, name=f"{name}.{f}")[0] * times[unit]
        else:
            kwargs[f] = _resolve_param(v, name=f"{name}.{f}", dimension=dim, t_c=t_c, refs=refs)
        if not isinstance(kwargs[f], kinetics.AbstractProfile):
            refs[f] = kwargs[f]
            if dim == "time":
                times[f] = kwargs[f]
    try:
        return kinetics.DynamicBosons(**kwargs)
    except ParameterError as err:
        raise ConfigError(f"{name}: {err}") from None


def _unit_of(value) -> str:
    try:
        return parse_quantity(value, name="")[1] if isinstance(value, str) else ""
    except ParameterError:
        return ""  # reported with the parameter's name when it is converted


def build_model(
    cfg: Config, point: dict | None = None, *, raw: dict | None = None
) -> kinetics.Model:
    """The `kinetics.Model` of one point of the study (no point: the base values)."""
    point = point or {}
    refs = references(cfg, point)
    cfg = _apply_point(cfg, point)
    t_c = refs["t_c"]
    base_dir = (raw or {}).get("_base_dir", os.getcwd())
    baths = []
    for spec, name in zip(cfg.baths, bath_names(cfg), strict=True):
        cls = bath_class(spec.type)
        where = f"baths.{name}"
        kwargs = {}
        local = dict(refs)
        # plain-number fields first, so that siblings can serve as units ("0.1 omega0")
        numbers = number_parameters(cls)
        fields = sorted(numbers, key=lambda f: _unit_of(getattr(spec, f)) in numbers)
        for f in fields:
            v = getattr(spec, f)
            if v is None:
                continue
            kwargs[f] = _resolve_param(
                v, name=f"{where}.{f}", dimension=numbers[f], t_c=t_c, refs=local
            )
            if not isinstance(kwargs[f], kinetics.AbstractProfile):
                local[f] = kwargs[f]
        for f, p in cls.parameter_specs().items():
            if p.dimension == "choice":
                kwargs[f] = getattr(spec, f)
        if table_parameters(cls):
            kwargs.update(_tables(spec, cls, base_dir, where, t_c, refs))
        if getattr(spec, "dynamic", None) is not None:
            kwargs["dynamic"] = _dynamic(spec.dynamic, f"{where}.dynamic", t_c, local)
        try:
            baths.append(cls(**kwargs))
        except ParameterError as err:
            raise ConfigError(f"{where}: {err}") from None
    try:
        return kinetics.Model(
            t_qp=refs["T_qp"], tau_in=refs["tau_in"], baths=baths, grid=build_grid(cfg),
            gap_mode=cfg.model.gap,
        )
    except ParameterError as err:
        raise ConfigError(f"model: {err}") from None


def observables_options(cfg: Config) -> dict:
    """The ``[observables]`` table as keyword arguments of `solvers.add_observables`
    (probe energies in T_c, alpha, the material, T_c [K], R_sq [ohm]); {} without one.

    Physical units use ``model.t_c`` when given, else the material's T_c (N_0 is always
    the material's)."""
    obs = cfg.observables
    if obs is None:
        return {}
    where = "observables"
    if obs is not None and cfg.compute == ["perturbative"]:
        raise ConfigError(
            f"{where}: the observables are computed from the states of 'steady' or 'evolve'; "
            "compute = ['perturbative'] has none. Add 'steady' to compute, or remove "
            "[observables]."
        )
    mat = kinetics.material(obs.material)
    refs = dict(references(cfg))
    t_c = refs["t_c"] if refs["t_c"] is not None else mat.t_c
    energies = []
    for k, v in enumerate(obs.probe_frequencies):
        name = f"{where}.probe_frequencies[{k}]"
        e = _convert(v, name=name, dimension="energy", t_c=t_c, refs=refs)
        if not e > 0:
            raise ConfigError(
                f"{name} = {v!r}: a probe frequency must be > 0; write e.g. '5 GHz', "
                "'20 ueV' or '0.1 Delta0'."
            )
        energies.append(e)
    if len(set(energies)) != len(energies):
        raise ConfigError(f"{where}.probe_frequencies: a frequency is listed twice.")
    r_sq = None
    if obs.r_sq is not None:
        r_sq = _resistance(obs.r_sq, f"{where}.r_sq")
    return {"hbar_omega": np.asarray(energies), "alpha": float(obs.alpha), "material": mat,
            "t_c_kelvin": float(t_c), "r_sq": r_sq}


_OHMS = {"ohm": 1.0, "Ohm": 1.0, "Ω": 1.0, "mohm": 1e-3, "mOhm": 1e-3, "kohm": 1e3, "kOhm": 1e3}


def _resistance(value, name: str) -> float:
    """A sheet resistance in ohms: a number, or a string "1.5 ohm" (ohm, mohm, kohm)."""
    if isinstance(value, str):
        try:
            number, unit = parse_quantity(value, name=name)
        except ParameterError as err:
            raise ConfigError(str(err)) from None
        unit = unit.removesuffix("/sq").removesuffix("/square")
        if unit not in _OHMS and unit != "":
            raise ConfigError(
                f"{name} = {value!r}: a sheet resistance takes the units "
                f"{', '.join(sorted(set(_OHMS)))} (per square); e.g. '1.5 ohm'."
            )
        ohms = number * _OHMS.get(unit, 1.0)
    else:
        ohms = float(value)
    if not (math.isfinite(ohms) and ohms > 0):
        raise ConfigError(f"{name} = {value!r}: the sheet resistance must be > 0 [ohm].")
    return ohms


def save_times(cfg: Config, *, raw: dict | None = None) -> np.ndarray:
    """The save times of an evolution [hbar/(k_B T_c)]."""
    ev = cfg.evolve
    refs = references(cfg)
    t0 = _convert(ev.t_start, name="evolve.t_start", dimension="time", t_c=refs["t_c"], refs=refs)
    t1 = _convert(ev.t_end, name="evolve.t_end", dimension="time", t_c=refs["t_c"], refs=refs)
    if not t1 > t0:
        raise ConfigError(
            f"evolve.t_end must be after evolve.t_start; got {ev.t_start!r} .. {ev.t_end!r}."
        )
    if ev.first_save is not None and ev.spacing != "log":
        raise ConfigError("evolve.first_save applies to spacing = 'log' only.")
    if ev.spacing == "log":
        if not t0 >= 0:
            raise ConfigError("evolve.spacing = 'log' needs t_start >= 0.")
        first = t1 * 1e-4 if t0 == 0 else t0
        if ev.first_save is not None:
            if t0 != 0:
                raise ConfigError("evolve.first_save applies to spacing = 'log' from t_start = 0.")
            first = _convert(ev.first_save, name="evolve.first_save", dimension="time",
                             t_c=refs["t_c"], refs=refs)
            if not 0 < first < t1:
                raise ConfigError(
                    f"evolve.first_save must be between 0 and t_end; got {ev.first_save!r}.")
        return (
            np.concatenate([[t0], np.geomspace(first, t1, ev.n_save - 1)])
            if t0 == 0
            else np.geomspace(t0, t1, ev.n_save)
        )
    return np.linspace(t0, t1, ev.n_save)


def config_hash(raw: dict) -> str:
    """SHA-256 of the configuration (without the private keys), for provenance."""
    public = {k: v for k, v in raw.items() if not k.startswith("_")}
    return hashlib.sha256(json.dumps(public, sort_keys=True, default=str).encode()).hexdigest()

"""The three layers and their one-way arrows (README, "Architecture").

- ``kinetics`` (physics) imports nothing of ours;
- ``solvers`` (numerics) imports ``kinetics`` only, never the application;
- ``cavity_eliashberg`` (application) imports both;
- outside a package, nobody imports that package's private (``_x``) modules or names:
  the packages, ``benchmarks/`` and the study folder ``runs/`` use public names only.

The test modules themselves are white-box tests and may reach private functions of the
package they test; they are not scanned.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("kinetics", "solvers", "cavity_eliashberg")
# what each layer may import of ours
ALLOWED = {
    "kinetics": set(),
    "solvers": {"kinetics"},
    "cavity_eliashberg": {"kinetics", "solvers"},
    "benchmarks": {"kinetics", "solvers", "cavity_eliashberg", "benchmarks"},
}


def _imports(path: pathlib.Path):
    """(module, imported names) of every absolute import in a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ()
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, tuple(a.name for a in node.names)


def _files(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_downwards(layer):
    bad = []
    for path in _files(layer):
        for module, _ in _imports(path):
            top = module.split(".")[0]
            if top in PACKAGES + ("benchmarks",) and top != layer and top not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


@pytest.mark.parametrize("folder", ["kinetics", "solvers", "cavity_eliashberg", "benchmarks"])
def test_no_private_reach_across_packages(folder):
    bad = []
    for path in _files(folder):
        for module, names in _imports(path):
            parts = module.split(".")
            if parts[0] not in PACKAGES or parts[0] == folder:
                continue
            private = [p for p in parts[1:] if p.startswith("_")]
            private += [n for n in names if n.startswith("_")]
            if private:
                bad.append(f"{path.relative_to(ROOT)}: {module} {names}")
    assert not bad, "private names used across packages:\n" + "\n".join(bad)


def test_runs_holds_study_files_only():
    code = sorted(p.name for p in (ROOT / "runs").iterdir() if p.suffix == ".py")
    assert not code, f"runs/ holds study files only; found code: {code}"
    assert sorted(p.name for p in (ROOT / "runs").glob("*.toml")), "no study in runs/"


def test_the_scan_sees_every_package():
    # guard against a vacuous pass: every layer has modules, and imports are found
    for folder in PACKAGES:
        files = _files(folder)
        assert len(files) >= 3, folder
        assert any(True for f in files for _ in _imports(f)), folder

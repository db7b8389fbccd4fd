"""The shipped studies: the TOML files of the repository's ``runs/`` folder.

An installed distribution carries them as the package data ``cavity_eliashberg/studies``
(``runs/`` mapped there in pyproject.toml); a source checkout reads ``runs/`` itself. Each
study exists once, in ``runs/``, and is found by name from any folder
(``cavity-eliashberg run fig3``).
"""

from __future__ import annotations

import os
import tomllib

DEFAULT_STUDY = "fig1a"


def studies_folder() -> str:
    """The folder holding the shipped study files."""
    here = os.path.dirname(os.path.abspath(__file__))
    installed = os.path.join(here, "studies")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(here), "runs")


def study_names() -> list[str]:
    """Names of the shipped studies (file names without ``.toml``), sorted."""
    folder = studies_folder()
    if not os.path.isdir(folder):
        return []
    return sorted(f[:-5] for f in os.listdir(folder) if f.endswith(".toml"))


def study_path(name: str) -> str | None:
    """The file of a shipped study, or None when there is no study of that name."""
    path = os.path.join(studies_folder(), name + ".toml")
    return path if os.path.isfile(path) else None


def study_title(name: str) -> str:
    """A shipped study's ``title`` (its one-line description); "" when it has none."""
    path = study_path(name)
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            return str(tomllib.load(fh).get("title", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return ""

"""Every path the project uses, derived from the project root and three environment variables.

* ``SNNBP_ROOT``: the project (a clone of the repository: ``pyproject.toml``, ``notebooks/``,
  ``params/``). Needed only when snnbp is installed as a library (``pip install .``, not
  editable) and run outside the clone; otherwise the project is the checkout the package is
  imported from, or else the working directory (:func:`project_root`).
* ``SNNBP_DATA_DIR``: writable folder for data the project fetches or generates itself
  (default ``<project>/data``, git-ignored).
* ``SNNBP_DATA_ROOT``: read-only folder of real data that cannot be downloaded here
  (N-MNIST recordings, FSDD, Caltech, EMNIST test splits, the HM2-BP golden test). Read in place.

Paths written in params files and notebook parameters are relative to the project root (or
absolute), whatever the working directory: :func:`resolve` turns them into absolute paths, so a
notebook runs the same from JupyterLab (working directory ``notebooks/``), from ``papermill`` typed
at the repository root, and from ``snnbp run``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ROOT_ENV = "SNNBP_ROOT"
"""The environment variable that names the project root."""

_CHECKOUT = Path(__file__).resolve().parents[2]  # <root>/lib/snnbp/paths.py in a clone (editable install)


class ProjectRootError(RuntimeError):
    """No snnbp project (a clone of the repository) was found; the message says where it looked."""


def is_project(folder: str | Path) -> bool:
    """True when ``folder`` is an snnbp project: ``pyproject.toml`` of ``snnbp``, ``notebooks/`` and ``params/``."""
    folder = Path(folder)
    pyproject = folder / "pyproject.toml"
    if not ((folder / "notebooks").is_dir() and (folder / "params").is_dir() and pyproject.is_file()):
        return False
    try:
        return 'name = "snnbp"' in pyproject.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def project_root() -> Path:
    """The project root: ``$SNNBP_ROOT``, else the clone the package is imported from (an editable
    install), else the working directory.

    Raises:
        ProjectRootError: ``$SNNBP_ROOT`` is set but holds no project, or neither the package's
            location nor the working directory is a project (a library install used outside a clone).
    """
    named = os.environ.get(ROOT_ENV)
    if named:
        root = Path(named).expanduser().resolve()
        if not is_project(root):
            raise ProjectRootError(
                f"{ROOT_ENV}={named} does not hold an snnbp project (expected pyproject.toml of "
                "snnbp, notebooks/ and params/ there); point it at a clone of the repository"
            )
        return root
    if is_project(_CHECKOUT):
        return _CHECKOUT
    here = Path.cwd().resolve()
    if is_project(here):
        return here
    raise ProjectRootError(
        f"no snnbp project found: the package is installed at {Path(__file__).resolve().parent}, "
        f"outside a clone, and the working directory {here} is not a clone either; run snnbp "
        f"inside a clone of the repository or set {ROOT_ENV}=/path/to/the/clone"
    )


def __getattr__(name: str) -> Any:
    """``PROJECT_ROOT``: :func:`project_root`, looked up when used (not when the module is imported)."""
    if name == "PROJECT_ROOT":
        return project_root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve(path: str | Path) -> Path:
    """A path from a params file or a notebook parameter as an absolute path: absolute paths (and
    ``~``) as they are, relative ones from the project root (never from the working directory)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path


def root_relative(path: str | Path) -> str:
    """``path`` relative to the project root when it lies inside it (so that a record reads the
    same on every clone), else as an absolute path."""
    absolute = Path(path).expanduser().resolve()
    try:
        return str(absolute.relative_to(project_root().resolve()))
    except (ValueError, ProjectRootError):  # outside the project, or no project at all
        return str(absolute)


def without_root(text: str) -> str:
    """``text`` with every ``<project root>/`` prefix removed: the paths a stored notebook or log
    holds, relative to the project root."""
    return text.replace(f"{project_root().resolve()}{os.sep}", "")


def record_form(path: str | Path) -> str:
    """How a run's identity (params hash) and its records write a params path: absolute paths as
    given, project paths relative to ``notebooks/``, the form the records had while the notebooks'
    working directory was ``notebooks/`` (so moving a params file to root-relative paths keeps
    the identity of its runs)."""
    given = Path(path).expanduser()
    if given.is_absolute():
        return str(path)
    return os.path.relpath(resolve(given), notebooks_dir())


def from_record(path: str) -> Path:
    """The absolute path of a path written by :func:`record_form` (relative to ``notebooks/``)."""
    given = Path(path).expanduser()
    return given if given.is_absolute() else Path(os.path.normpath(notebooks_dir() / given))


def data_dir() -> Path:
    """The writable data folder (``$SNNBP_DATA_DIR`` or ``<project>/data``)."""
    named = os.environ.get("SNNBP_DATA_DIR")
    return Path(named).resolve() if named else project_root() / "data"


def data_root() -> Path:
    """The read-only data root (``$SNNBP_DATA_ROOT``, else ``<project>/../shared/data``)."""
    named = os.environ.get("SNNBP_DATA_ROOT")
    return Path(named).resolve() if named else (project_root().parent / "shared" / "data").resolve()


def results_dir() -> Path:
    """Where runs write their records (``<project>/results``)."""
    return project_root() / "results"


def params_dir() -> Path:
    """Where the parameter files live (``<project>/params``)."""
    return project_root() / "params"


NOT_RUN_FOLDERS = ("yoso", "sweeps")  # the accelerator's constants and sweep definitions, not runs


def run_params_files() -> list[Path]:
    """Every committed run's params file, ``<project>/params/<profile>/<run>.yaml`` (sorted), leaving
    out the folders that hold other kinds of file (:data:`NOT_RUN_FOLDERS`)."""
    return sorted(p for p in params_dir().glob("*/*.yaml") if p.parent.name not in NOT_RUN_FOLDERS)


def notebooks_dir() -> Path:
    """Where the numbered notebooks live (``<project>/notebooks``)."""
    return project_root() / "notebooks"

"""What a notebook checks about the parameters it was given (by Papermill, or by hand in JupyterLab).

Papermill inserts the values it is given (``-f`` a YAML file, ``-y`` YAML text, ``-p`` one value)
as a cell of assignments after the cell tagged ``parameters``, and only warns about a name that
the notebook does not use. :func:`check_parameters` turns that into an error: it reads the two
cells from the kernel's input history (``In``) and refuses

* a name that the ``parameters`` cell does not assign (``-p epochs 1``: the epochs are a key of
  the ``train`` section), and
* a params file written for another notebook (its ``notebook`` differs from the ``parameters``
  cell's own), e.g. an STDBP file run in the HM2-BP notebook.

The ``parameters`` cell of every notebook starts with a ``# parameters`` comment line (the marker
this module looks for); Papermill's cell starts with ``# Parameters``. Nothing is checked outside
IPython or when nothing was injected (a notebook run with its own defaults, or edited in Lab).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from snnbp.config import ConfigError

INJECTED_MARKER = "# Parameters"
"""The first line of the cell Papermill inserts."""

PARAMETERS_MARKER = "# parameters"
"""The first line of every notebook's ``parameters`` cell."""

SOURCE = "notebook parameters"


def _first_line(source: str) -> str:
    return source.lstrip("\n").split("\n", 1)[0].rstrip()


def _assignments(source: str) -> dict[str, Any]:
    """Names assigned at the top level of ``source`` and their literal values (``...`` when not a literal)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    found[target.id] = ast.literal_eval(value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    found[target.id] = ...
    return found


def parameter_cells(history: Sequence[str]) -> tuple[str | None, str | None]:
    """``(parameters cell, injected cell)`` sources from a kernel's input history, latest first.

    The injected cell is the last entry that starts with :data:`INJECTED_MARKER`; the parameters
    cell the last entry before it that starts with :data:`PARAMETERS_MARKER` (None when absent).
    """
    for index in range(len(history) - 1, -1, -1):
        if _first_line(history[index]) == INJECTED_MARKER:
            for before in range(index - 1, -1, -1):
                if _first_line(history[before]).lower().startswith(PARAMETERS_MARKER):
                    return history[before], history[index]
            return None, history[index]
    return None, None


def _history(namespace: dict[str, Any]) -> list[str]:
    history = namespace.get("In")
    if history is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return []
        shell = get_ipython()
        history = shell.user_ns.get("In") if shell is not None else None
    return [entry for entry in history if isinstance(entry, str)] if isinstance(history, list) else []


def check_cells(declared_source: str | None, injected_source: str | None) -> None:
    """Refuse injected names that ``declared_source`` (the parameters cell) does not assign, and an
    injected ``notebook`` other than the cell's own.

    Raises:
        ConfigError: one line naming the parameters and what to do instead.
    """
    if injected_source is None or declared_source is None:
        return
    declared, injected = _assignments(declared_source), _assignments(injected_source)
    own, given = declared.get("notebook"), injected.get("notebook")
    if isinstance(own, str) and isinstance(given, str) and given != own:
        method = injected.get("method")
        kind = f" (method {method!r})" if isinstance(method, str) else ""
        raise ConfigError(
            f"{SOURCE}: these parameters are for notebooks/{given}{kind}, but this notebook is {own}; "
            f"run them there: papermill notebooks/{given} OUTPUT.ipynb -f PARAMS.yaml"
        )
    unknown = [name for name in injected if name not in declared]
    if unknown:
        names = ", ".join(repr(name) for name in unknown)
        sections = [name for name, value in declared.items() if isinstance(value, dict)]
        hint = (
            f"; a key inside a section ({', '.join(sections)}) is set by giving the whole section, e.g. "
            f"-y '{{{sections[0]}: {{...}}}}'"
            if sections
            else ""
        )
        raise ConfigError(
            f"{SOURCE}: unknown parameter {names} (given with papermill -p, -y or -f); this notebook's "
            f"parameters are {', '.join(declared)}{hint}"
        )


def check_parameters(namespace: dict[str, Any]) -> None:
    """Check the parameters a notebook received (pass ``globals()``); see the module docstring.

    Raises:
        ConfigError: an unknown injected name, or parameters written for another notebook.
    """
    check_cells(*parameter_cells(_history(namespace)))

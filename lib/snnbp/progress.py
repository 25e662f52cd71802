"""Progress bars and per-epoch lines, the same way everywhere.

Bars come from ``tqdm.auto``: a widget in JupyterLab (with ``ipywidgets`` installed, the dev
extra), a text bar on stderr in a terminal; none in a log file or a pipe (stderr not a TTY
outside a kernel), none when ``progress`` is False, and none under ``TQDM_DISABLE=1`` (what the
notebook regression and ``snnbp run`` set, so that no bar lands in a stored output). Per-epoch
lines (:func:`line`) go to stderr whenever ``progress`` is on, bars or not: ``snnbp run`` streams
them while the notebook runs.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from typing import Any

OFF_VALUES = ("1", "true", "yes", "on")


def disabled_by_environment() -> bool:
    """True under ``TQDM_DISABLE=1`` (or true/yes/on)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in OFF_VALUES


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules and "IPython" in sys.modules


def bar(iterable: Iterable[Any] | None = None, *, progress: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm.auto`` bar over ``iterable`` (``desc``, ``total``, ``leave`` ... as tqdm takes them),
    disabled as the module docstring says."""
    in_kernel = _in_kernel()
    off = not progress or disabled_by_environment()
    if in_kernel and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:  # a terminal (or a kernel without widgets, where a text bar would only clutter the cell)
        from tqdm.std import tqdm

        off = off or in_kernel or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    return tqdm(iterable, disable=off, **kwargs)


def line(text: str, *, progress: bool = True, file: Any = None) -> None:
    """Print one progress line (an epoch's summary) on ``file`` (default stderr) without breaking a running bar."""
    if progress:
        from tqdm.std import tqdm

        tqdm.write(text, file=file or sys.stderr)

"""pytest set-up for the unit tests and the notebook regression (pytest --nbval).

``pytest --nbval notebooks/`` typed as is behaves like ``make nbval``: the sanitize file
``tests/nbval_sanitize.cfg`` is used unless another one is given, Jupyter's state stays in
``.build/jupyter`` and the kernels get a fixed hash seed (set here, before any kernel starts).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("PYTHONHASHSEED", "0")
for _name, _sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_RUNTIME_DIR", "runtime")):
    os.environ.setdefault(_name, str(ROOT / ".build" / "jupyter" / _sub))


def pytest_configure(config):
    """nbval: the project's sanitize file by default (memory addresses, timestamps, absolute paths)."""
    option = config.option
    if (getattr(option, "nbval", False) or getattr(option, "nbval_lax", False)) and not getattr(option, "nbval_sanitize_with", None):
        option.nbval_sanitize_with = str(SANITIZE)


def pytest_collectstart(collector):
    """nbval: progress bars, warnings and per-epoch logs go to stderr, which is not compared."""
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)

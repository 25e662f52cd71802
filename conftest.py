"""pytest set-up for the unit tests and the notebook regression (pytest --nbval)."""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_collectstart(collector):
    """nbval: progress bars, warnings and per-epoch logs go to stderr, which is not compared."""
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)

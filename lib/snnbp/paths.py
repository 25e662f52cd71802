"""Every path the project uses, derived from the project root and two environment variables.

* ``SNNBP_DATA_DIR``: writable folder for data the project fetches or generates itself
  (default ``<project>/data``, git-ignored).
* ``SNNBP_DATA_ROOT``: read-only folder of real data that cannot be downloaded here
  (N-MNIST recordings, FSDD, Caltech, EMNIST test splits, the HM2-BP golden test). Read in place.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The writable data folder (``$SNNBP_DATA_DIR`` or ``<project>/data``)."""
    return Path(os.environ.get("SNNBP_DATA_DIR", PROJECT_ROOT / "data")).resolve()


def data_root() -> Path:
    """The read-only data root (``$SNNBP_DATA_ROOT``, else ``<project>/../shared/data``)."""
    default = PROJECT_ROOT.parent / "shared" / "data"
    return Path(os.environ.get("SNNBP_DATA_ROOT", default)).resolve()


def results_dir() -> Path:
    """Where runs write their records (``<project>/results``)."""
    return PROJECT_ROOT / "results"


def params_dir() -> Path:
    """Where the parameter files live (``<project>/params``)."""
    return PROJECT_ROOT / "params"


def notebooks_dir() -> Path:
    """Where the numbered notebooks live (``<project>/notebooks``)."""
    return PROJECT_ROOT / "notebooks"

"""The registry of learning methods: the params file's ``method:`` key -> its package.

Each package exposes ``ModelParams`` (the ``model:`` section) and
``build_learner(model, info, *, seed, device) -> snnbp.learner.Learner``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

METHODS = {"ann": "snnbp.ann", "hm2bp": "snnbp.hm2bp", "stdbp": "snnbp.stdbp"}


def method_module(name: str) -> ModuleType:
    """Import the package of method ``name``.

    Raises:
        KeyError: with a message listing the known methods.
    """
    if name not in METHODS:
        raise KeyError(f"names an unknown method {name!r}; known methods: {sorted(METHODS)}")
    return importlib.import_module(METHODS[name])

"""The registry of methods: the params file's ``method:`` key -> its package or module.

Training methods (:data:`METHODS`): each package exposes ``ModelParams`` (the ``model:`` section)
and ``build_learner(model, info, *, seed, device) -> snnbp.learner.Learner``.

Evaluations (:data:`EVALUATIONS`: notebooks that study trained checkpoints, no training): each
module exposes ``StudyParams`` (a frozen dataclass of the file's own top-level keys) and
``params_from_mapping(mapping, source) -> StudyParams``, which validates types and value ranges
and raises :class:`snnbp.config.ConfigError` naming the file and the key.
"""

from __future__ import annotations

import importlib
from types import ModuleType

METHODS = {"ann": "snnbp.ann", "hm2bp": "snnbp.hm2bp", "stdbp": "snnbp.stdbp"}
EVALUATIONS = {"yoso": "snnbp.yoso.study"}


def method_module(name: str) -> ModuleType:
    """Import the package of method ``name``.

    Raises:
        KeyError: with a message listing the known methods.
    """
    if name not in METHODS:
        raise KeyError(f"names an unknown method {name!r}; known methods: {sorted(METHODS)}")
    return importlib.import_module(METHODS[name])


def evaluation_module(name: str) -> ModuleType:
    """Import the module of evaluation ``name``.

    Raises:
        KeyError: with a message listing the known evaluations.
    """
    if name not in EVALUATIONS:
        raise KeyError(f"names an unknown evaluation {name!r}; known evaluations: {sorted(EVALUATIONS)}")
    return importlib.import_module(EVALUATIONS[name])

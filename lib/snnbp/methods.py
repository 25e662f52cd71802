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


def _import_registered(registry: dict[str, str], kind: str, name: str) -> ModuleType:
    if name not in registry:
        raise KeyError(f"names an unknown {kind} {name!r}; known {kind}s: {sorted(registry)}")
    return importlib.import_module(registry[name])


def method_module(name: str) -> ModuleType:
    """Import the package of method ``name``.

    Raises:
        KeyError: with a message listing the known methods.
    """
    return _import_registered(METHODS, "method", name)


def evaluation_module(name: str) -> ModuleType:
    """Import the module of evaluation ``name``.

    Raises:
        KeyError: with a message listing the known evaluations.
    """
    return _import_registered(EVALUATIONS, "evaluation", name)

"""Central finite differences for the gradient tests: the one slow, obvious reference every
hand-written or autograd gradient of the project is compared against (float64)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import torch


def central_differences(
    scalar: Callable[[torch.Tensor], torch.Tensor | float],
    x: torch.Tensor,
    eps: float = 1e-6,
    entries: Iterable[tuple[int, ...]] | None = None,
) -> torch.Tensor:
    """``(f(x + eps e_k) - f(x - eps e_k)) / (2 eps)`` for every entry ``k`` of ``x`` (or only
    ``entries``, multi-indices into ``x``; the others stay 0).

    Args:
        scalar: a function of a tensor shaped like ``x`` returning a scalar.
        x: the point (float64; not modified).
        eps: the step.
        entries: the entries to differentiate (None: all).

    Shape:
        - Output: like ``x``.
    """
    numeric = torch.zeros_like(x)
    indices = entries if entries is not None else itertools.product(*(range(n) for n in x.shape))
    for index in indices:
        plus, minus = x.clone(), x.clone()
        plus[index] += eps
        minus[index] -= eps
        numeric[index] = (float(scalar(plus)) - float(scalar(minus))) / (2 * eps)
    return numeric

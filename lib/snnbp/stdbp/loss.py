"""Loss and decision on output spike times (ALGORITHMS.md 2.4).

Softmax cross-entropy over the negated output spike times, ``p_k = softmax(-t)_k``,
``L = -ln p_label``, so ``dL/dt_k = 1[k = label] - p_k``: the label neuron is pushed earlier,
the others later. The prediction is the earliest output spike.

The loss reads output times through a decision window: an output that is silent (``t = inf``)
or fires at or after ``t_silent`` counts as firing at ``t_silent``, with zero gradient. This keeps
the logits bounded (a label neuron firing very late would otherwise give an unbounded loss and,
through its tiny slope, exploding gradients) and gives silent outputs a finite time. The
prediction uses the exact times.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def windowed_times(t_out: torch.Tensor, t_silent: float) -> torch.Tensor:
    """``t`` where ``t < t_silent``, else the constant ``t_silent`` (no gradient through it).

    Shape:
        - t_out: any; Output: same.
    """
    return torch.where(t_out < t_silent, t_out, torch.full_like(t_out, t_silent))


def spike_time_cross_entropy(
    t_out: torch.Tensor, labels: torch.Tensor, t_silent: float, temperature: float = 1.0
) -> torch.Tensor:
    """Mean softmax cross-entropy of the logits ``-min(t, t_silent) / temperature`` (ALGORITHMS.md 2.4).

    ``temperature`` (ms) is the time difference that changes a logit by 1: larger values soften
    the softmax (the loss keeps pushing until the label neuron leads by several temperatures),
    smaller ones sharpen it. The paper's loss is ``temperature = 1`` in its time unit.

    Shape:
        - t_out: ``[B, C]`` output spike times (``inf`` = silent); labels: ``[B]`` int64
        - Output: scalar.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return F.cross_entropy(-windowed_times(t_out, t_silent) / temperature, labels)


def first_spike_prediction(t_out: torch.Tensor) -> torch.Tensor:
    """The class of the earliest output spike; ties go to the lowest index.

    When every output is silent all times are ``inf`` and the prediction is class 0 (the lowest
    index), i.e. such samples count as errors unless their label is 0.

    Shape:
        - t_out: ``[B, C]``; Output: ``[B]`` int64.
    """
    return torch.argmin(t_out, dim=1)


def late_label_penalty(
    t_in: torch.Tensor, weight: torch.Tensor, t_out: torch.Tensor, labels: torch.Tensor, t_silent: float
) -> torch.Tensor:
    """Mean over the batch of ``-sum_{i fired} w_label,i`` where the label neuron fires at or after
    ``t_silent`` (or never).

    Such a label neuron gets no spike-time gradient through the windowed loss. A ReL-PSP neuron
    fires earlier the larger its slope ``sum_C w`` (and fires at all iff its total weight from
    the inputs that fired is positive), so this term, the weight-sum regulariser of Mostafa 2017
    (ALGORITHMS.md 2.4/2.5) restricted to late label neurons, raises that sum until the neuron
    fires inside the window. Zero when every label neuron fired in time.

    Shape:
        - t_in: ``[B, N_in]``; weight: ``[C, N_in]``; t_out: ``[B, C]``; labels: ``[B]``
        - Output: scalar.
    """
    late = t_out.gather(1, labels[:, None]).squeeze(1) >= t_silent
    fired_in = torch.isfinite(t_in).to(weight.dtype)
    total = (fired_in * weight[labels]).sum(dim=1)
    return torch.where(late, -total, torch.zeros_like(total)).mean()

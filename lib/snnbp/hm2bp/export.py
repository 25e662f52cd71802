"""What a trained HM2-BP network gives a tool outside training (the accelerator model's rate-coded
comparison): its layer sizes and the spike rasters of every layer on its own rate code of a batch.
Plain tensors; nothing here imports the tool.
"""

from __future__ import annotations

import math

import torch

from snnbp.hm2bp.learner import Hm2bpLearner
from snnbp.hm2bp.model import forward
from snnbp.learner import Batch


def fc_layer_sizes(learner: Hm2bpLearner) -> list[int]:
    """``[N_0, N_1, ..., N_L]`` of a fully connected network.

    Raises:
        ValueError: the network has convolution or pooling layers.
    """
    if any(layer.kind != "fc" for layer in learner.layers):
        raise ValueError(f"network {learner.network} is not fully connected")
    return [math.prod(learner.layers[0].in_shape)] + [math.prod(layer.out_shape) for layer in learner.layers]


def spike_rasters(learner: Hm2bpLearner, batch: Batch) -> list[torch.Tensor]:
    """The rasters of every layer, input first, on the learner's rate code of ``batch`` (the
    torch reference forward pass, no gradient), flattened per sample, on the CPU.

    Shape:
        - Output: ``L + 1`` binary ``[T, B, N_l]``.
    """
    with torch.no_grad():
        rasters, _ = forward(learner.layers, learner.weights, learner.encode(batch), learner.model)
    return [r.reshape(r.shape[0], r.shape[1], -1).cpu() for r in rasters]

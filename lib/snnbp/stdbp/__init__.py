"""ReL-PSP neurons and STDBP (Zhang et al., IEEE TNNLS 2022): exact first-spike times, backprop on them.

Also the alpha-PSP neuron the paper compares against (same interface).
"""

from snnbp.stdbp.alpha import alpha_spike_times, alpha_time_weight_gradient
from snnbp.stdbp.layers import conv_spike_times, first_spike_pool, neuron_function
from snnbp.stdbp.learner import ModelParams, StdbpLearner, build_learner
from snnbp.stdbp.loss import first_spike_prediction, late_label_penalty, spike_time_cross_entropy, windowed_times
from snnbp.stdbp.model import LayerSpec, architecture, forward, network_name
from snnbp.stdbp.relpsp import relpsp_spike_times, relpsp_spike_times_dense, relpsp_time_weight_gradient

__all__ = [
    "LayerSpec",
    "ModelParams",
    "StdbpLearner",
    "alpha_spike_times",
    "alpha_time_weight_gradient",
    "architecture",
    "build_learner",
    "conv_spike_times",
    "first_spike_pool",
    "first_spike_prediction",
    "forward",
    "network_name",
    "neuron_function",
    "relpsp_spike_times",
    "relpsp_spike_times_dense",
    "relpsp_time_weight_gradient",
    "late_label_penalty",
    "spike_time_cross_entropy",
    "windowed_times",
]

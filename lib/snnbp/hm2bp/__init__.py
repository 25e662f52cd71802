"""HM2-BP (Jin, Zhang & Li, NeurIPS 2018): hybrid macro/micro backpropagation through S-PSPs.

Public names: :func:`simulate_lif` (and the conv / pooling variants), :func:`spsp` (and the conv /
pooling variants), :class:`ModelParams` and :func:`build_learner` (the training loop's seam).
"""

from snnbp.hm2bp.learner import Hm2bpLearner, build_learner
from snnbp.hm2bp.lif import simulate_lif, simulate_lif_conv, simulate_lif_pool
from snnbp.hm2bp.params import ModelParams
from snnbp.hm2bp.spsp import spsp, spsp_conv, spsp_pool

__all__ = [
    "Hm2bpLearner",
    "ModelParams",
    "build_learner",
    "simulate_lif",
    "simulate_lif_conv",
    "simulate_lif_pool",
    "spsp",
    "spsp_conv",
    "spsp_pool",
]

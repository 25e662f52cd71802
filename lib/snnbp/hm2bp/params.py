"""The ``model:`` section of an HM2-BP params file (defaults: the official MNIST MLP configuration).

Official configurations: ``Config/SpikingMnistConfig.txt`` (784-800-10 MLP) and
``Config/SpikingCNNMnistConfig.txt`` (spiking CNN) of ``jinyyy666/mm-bp-snn``; every quirk of the
official code is a field here whose default reproduces it (ALGORITHMS.md 1.2-1.11).
"""

from __future__ import annotations

from dataclasses import dataclass

from snnbp.encoding.distortion import ImageDistortion
from snnbp.hm2bp.lif import NeuronParams


@dataclass(frozen=True)
class ModelParams:
    """HM2-BP network, neuron, loss and optimiser settings.

    Attributes:
        layers: hidden layers, input side first: ``"800"`` a fully connected layer of 800 LIF
            neurons, ``"15C5"`` a spiking valid stride-1 convolution with 15 maps of 5x5
            kernels, ``"P2"`` a spiking 2x2 pooling layer (fixed unit weights, stride 2). The
            output layer (one neuron per class, lateral inhibition) is always added. Default
            784-800-10; the official CNN is ``["15C5", "P2", "40C5", "P2", "300"]``.
        thresholds: firing threshold ``vth`` of every layer in ``layers`` followed by the output
            layer's (official MLP: 20, 8; CNN: 5, 2, 12, 4, 10, 10).
        time_steps: simulation length ``T`` in 1-ms steps (END_TIME; 400 for MNIST).
        tau_m: membrane time constant (steps; official 64).
        tau_s: synaptic time constant (steps; official 8).
        t_ref: absolute refractory period (steps; official 2).
        threshold_margin: fully connected and pooling neurons fire when ``v > vth - margin``
            (official 1e-6).
        conv_threshold_margin: the same margin for convolutional neurons (official 0: ``v > vth``).
        rate_scale: the Bernoulli input fires with probability ``pixel / (rate_scale * 255)`` per
            step for ``t = 1 .. T-1`` (official 5.5).
        fixed_encoding: encode every sample once, from a generator derived from
            ``(seed, split, sample index)``, so that a sample keeps its spike trains across
            epochs (the official MLP loader); false: fresh trains at every training
            presentation (the official CNN re-encodes every presentation, after ``distortion``).
            Test samples are always encoded the fixed way.
        init_fc: fully connected weights start uniform in ``[-init_fc, init_fc]`` (official 1).
        init_conv: convolution kernels start uniform in ``[-init_conv, init_conv]`` (official 0.5).
        desired: target spike count of the label neuron (DESIRED_LEVEL 35).
        undesired: target spike count of the other output neurons (UNDESIRED_LEVEL 5).
        margin: no error where ``|o - y| <= margin`` (MARGIN 5).
        lateral_strength: output lateral inhibition ``w0``; each output neuron receives
            ``-w0`` from every other output neuron's spike at ``t-1`` (localInbStrength 1).
        inject_silent_target: give a silent label neuron spikes at ``k floor(T / desired)``
            before the S-PSPs are computed (official ``g_modifySpikes``).
        spsp_pre_shift: the official S-PSP shifts pre spike times by this many steps
            (None: ``t_ref``, the official value).
        spsp_lookback: S-PSP look-back window in units of ``tau_m`` (official 4).
        silent_post_probe: S-PSP value where the post neuron is silent and the pre neuron fired
            (official 0.1).
        use_effect_ratio: propagate errors with ``rho = e / o_j`` (EFFECT_RATIO true); false:
            ``rho = 1``.
        use_side_effect: multiply weight gradients by ``1 + sigma`` (official on).
        silent_post_side_ratio: ``r_il`` used in ``sigma_i`` when ``i`` is silent (official 0.5).
        use_lateral_factor: multiply output weight gradients by the lateral loop factor
            ``lambda`` (official on).
        pool_divide_by_area: pooling layers route errors divided by ``p^2`` (official), not
            divided at all when false.
        lambda_reg: weight regulariser strength (LAMBDA_REG; MLP 10, CNN 0 = off).
        beta_reg: weight regulariser exponent (BETA_REG; MLP 0.04).
        weight_limit: weight scale ``L`` of the regulariser (WEIGHT_LIMIT 8).
        boost: per-class boosting of misclassified training samples after every epoch
            (BOOST_METHOD true).
        boost_divisor: a misclassified sample's weight grows by ``exp(err_c / boost_divisor)`` (20).
        lr: Adam base learning rate (official 1e-3 at batch size 1).
        lr_decay: official schedule ``lr / sqrt(max(1, e))`` for 0-based epoch ``e``; false: constant.
        adam_beta1: Adam first-moment decay (0.9).
        adam_beta2: Adam second-moment decay (0.999).
        adam_eps: Adam epsilon (1e-8).
        fused_first_layer: compute the first fully connected layer's gradient without forming
            its S-PSP matrix (same numbers up to rounding; memory ``O(N_out N_in)``).
        dtype: ``"float32"`` (fast) or ``"float64"``.
        engine: ``"event"`` (the fused event-driven CPU engine, :mod:`snnbp.hm2bp.event`),
            ``"torch"`` (the dense reference path, any device) or ``"auto"`` (the event engine
            on the CPU when numba is importable, else torch). Both give the same spikes and
            gradients up to float rounding.
        distortion: training-image distortions applied to the pixel intensities before the rate
            code (:class:`snnbp.encoding.distortion.ImageDistortion`; the official CNN: scale 12,
            rotation 12, elastic 3.4); image datasets only. None (default): none, as in the
            official MLP; test images are never distorted.
    """

    layers: tuple[str, ...] = ("800",)
    thresholds: tuple[float, ...] = (20.0, 8.0)
    time_steps: int = 400
    tau_m: float = 64.0
    tau_s: float = 8.0
    t_ref: int = 2
    threshold_margin: float = 1e-6
    conv_threshold_margin: float = 0.0
    rate_scale: float = 5.5
    fixed_encoding: bool = True
    init_fc: float = 1.0
    init_conv: float = 0.5
    desired: float = 35.0
    undesired: float = 5.0
    margin: float = 5.0
    lateral_strength: float = 1.0
    inject_silent_target: bool = True
    spsp_pre_shift: int | None = None
    spsp_lookback: float = 4.0
    silent_post_probe: float = 0.1
    use_effect_ratio: bool = True
    use_side_effect: bool = True
    silent_post_side_ratio: float = 0.5
    use_lateral_factor: bool = True
    pool_divide_by_area: bool = True
    lambda_reg: float = 10.0
    beta_reg: float = 0.04
    weight_limit: float = 8.0
    boost: bool = True
    boost_divisor: float = 20.0
    lr: float = 1e-3
    lr_decay: bool = True
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    fused_first_layer: bool = True
    dtype: str = "float32"
    engine: str = "auto"
    distortion: ImageDistortion | None = None

    @property
    def neuron(self) -> NeuronParams:
        """The LIF constants (``tau_m``, ``tau_s``, ``t_ref``) as one object, for
        :mod:`snnbp.hm2bp.lif` and :mod:`snnbp.hm2bp.spsp`."""
        return NeuronParams(self.tau_m, self.tau_s, self.t_ref)

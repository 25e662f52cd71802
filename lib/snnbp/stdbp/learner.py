"""The STDBP learner: exact first-spike networks trained by backprop on spike times.

Input: time-to-first-spike latency code (brighter pixel earlier, ALGORITHMS.md 2.6). Forward:
exact spike times layer by layer (ReL-PSP, ALGORITHMS.md 2.2, or the alpha-PSP comparison
kernel). Loss: softmax cross-entropy over negated output times (2.4), plus an optional
weight-sum term for late or silent label neurons (2.5). Backward: the hand-written spike-time gradients
(2.3). Adam with a per-epoch multiplicative learning-rate decay.

``end_epoch`` returns the statistics of the problem analysis (2.9) gathered over the epoch's
training batches: dead-neuron fraction per hidden layer, log-binned histograms and mean/max of
``|dt/dw|`` (from the first ``stats_samples`` samples of each batch) and of ``|dL/dw|`` (every
step), and the timing of hidden spikes relative to the decision.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch

from snnbp.analysis import MagnitudeStats, dead_fraction, fire_counts, hidden_output_times, timing_correlation
from snnbp.data.base import DatasetInfo
from snnbp.encoding.latency import latency_code
from snnbp.learner import Batch
from snnbp.seeding import derive_seed
from snnbp.stdbp.alpha import alpha_time_weight_gradient
from snnbp.stdbp.layers import conv_neuron_function, neuron_function
from snnbp.stdbp.loss import first_spike_prediction, late_label_penalty, spike_time_cross_entropy
from snnbp.stdbp.model import architecture, forward, init_weights, network_name, weighted_layer_io
from snnbp.stdbp.relpsp import relpsp_time_weight_gradient


@dataclass(frozen=True)
class ModelParams:
    """The ``model:`` section of an STDBP params file.

    Attributes:
        kernel: PSP kernel, ``"relpsp"`` (the paper's neuron) or ``"alpha"`` (the comparison).
        hidden: fully connected hidden widths (``[800]`` gives 784-800-10).
        conv_channels: channels of the valid convolutions, each followed by first-spike pooling
            (``[]``: a fully connected network).
        conv_kernel: convolution kernel size (ALGORITHMS.md 2.8: 3 or 5, unresolved).
        pool_size: first-spike pooling window and stride.
        layers: the hidden layers in the grammar HM2-BP's params use (:data:`snnbp.notation.LAYER_TOKEN`:
            ``["16C3", "P2", "32C3", "P2", "128"]``; pooling is first-spike pooling). When given it
            replaces ``conv_channels``, ``conv_kernel``, ``pool_size`` and ``hidden``; ``[]``
            (default): those four fields describe the network.
        theta: firing threshold of every neuron.
        t_max: latency-code window in ms: pixel ``p`` spikes at ``t_max * (1 - p / 255)``.
        zero_pixels_spike: black pixels spike at ``t_max`` (else never).
        tau: alpha kernel peak time in ms (alpha only).
        init_mean, init_std: weights ``~ (theta / t_max) * (init_mean + init_std * z) / sqrt(fan_in)``.
        lr: Adam learning rate.
        lr_decay: learning rate multiplied by this after every epoch.
        warmup_steps: the learning rate rises linearly from ``lr / warmup_steps`` to ``lr`` over
            the first steps (0: none). Adam's first steps move every weight by about ``lr``
            whatever its gradient; without a warm-up they push all output neurons out of the
            decision window at once.
        weight_decay: Adam L2 coefficient.
        clip: cap on ``1 / V'(t_j)`` in the backward (None: exact gradients).
        t_silent: end of the decision window (ms): outputs that fire later, or never, count as
            firing at ``t_silent`` in the loss, with zero gradient.
        silent_penalty: weight of the weight-sum term for label neurons that fire at or after
            ``t_silent`` (or never).
        temperature: softmax temperature of the loss in ms (logits ``-t / temperature``; 1: the
            paper's loss in ms).
        shift_pixels: training images are translated by a random whole number of pixels in
            ``[-shift_pixels, shift_pixels]`` along each axis (zero fill), drawn anew for every
            sample and step from the learner's own seeded generator (0: no augmentation; image
            datasets only). Evaluation never shifts.
        dropout: probability that a neuron of a fully connected hidden layer is silenced (never
            fires) for one training sample, with the next layer's weights scaled by
            ``1 / (1 - dropout)`` in training (:func:`snnbp.stdbp.model.forward`); the masks come
            from the augmentation generator. Evaluation never drops (0: none). On the Fashion-MNIST
            MLP every rate tried hurt: silenced hidden neurons can leave an output neuron's
            summed weight negative, it falls silent and gets no gradient
            (``results/cpu/stdbp_probes/README.md``).
        chunk: ReL-PSP inputs visited between exact resolutions (speed only).
        engine: the engine of ReL-PSP convolution layers (:data:`snnbp.stdbp.layers.CONV_ENGINES`:
            ``auto``, ``rows`` compiled per receptive field on the CPU, ``scan`` vectorised on any
            device); the same spike times and gradients, so not part of a run's identity.
        stats_samples: samples per batch whose every ``dt/dw`` enters the gradient statistics.
    """

    kernel: Literal["relpsp", "alpha"] = "relpsp"
    hidden: tuple[int, ...] = (800,)
    conv_channels: tuple[int, ...] = ()
    conv_kernel: int = 5
    pool_size: int = 2
    layers: tuple[str, ...] = ()
    theta: float = 1.0
    t_max: float = 1.0
    zero_pixels_spike: bool = False
    tau: float = 1.0
    init_mean: float = 0.5
    init_std: float = 1.0
    lr: float = 1e-3
    lr_decay: float = 1.0
    warmup_steps: int = 0
    weight_decay: float = 0.0
    clip: float | None = None
    t_silent: float = 2.0
    silent_penalty: float = 0.0
    temperature: float = 1.0
    shift_pixels: int = 0
    dropout: float = 0.0
    chunk: int = 16
    engine: Literal["auto", "scan", "rows"] = "auto"
    stats_samples: int = 2


class StdbpLearner:
    """Trains an exact first-spike network (``snnbp.learner.Learner`` protocol)."""

    def __init__(self, model: ModelParams, info: DatasetInfo, *, seed: int, device: str = "cpu") -> None:
        if info.kind not in ("image", "spike_times"):
            raise ValueError(
                f"STDBP takes images (latency-coded here) or spike times; dataset {info.name!r} is of kind {info.kind!r}"
            )
        if info.kind == "spike_times" and model.shift_pixels:
            raise ValueError(
                f"dataset {info.name!r} holds flat spike times; shift_pixels applies to images only (set it to 0)"
            )
        if info.kind == "spike_times" and model.conv_channels:
            raise ValueError(
                f"dataset {info.name!r} holds flat spike times; it takes a fully connected network (conv_channels: [])"
            )
        self.params = model
        self.input_kind = info.kind
        self.device = device
        self.input_shape = tuple(info.input_shape)
        self.specs = architecture(
            self.input_shape,
            info.num_classes,
            conv_channels=model.conv_channels,
            conv_kernel=model.conv_kernel,
            pool_size=model.pool_size,
            hidden=model.hidden,
            layers=model.layers,
        )
        self.network = network_name(self.specs, self.input_shape)
        generator = torch.Generator(device=device).manual_seed(derive_seed(seed, "model"))
        weights = init_weights(
            self.specs,
            self.input_shape,
            scale=model.theta / model.t_max,
            init_mean=model.init_mean,
            init_std=model.init_std,
            generator=generator,
            device=device,
        )
        self.weights = [w.requires_grad_() for w in weights]
        self.layer_names = [f"{spec.kind}{index + 1}" for index, spec in enumerate(self.specs) if spec.kind != "pool"]
        self.neuron = neuron_function(model.kernel, model.theta, tau=model.tau, clip=model.clip, chunk=model.chunk)
        self.conv_neuron = conv_neuron_function(
            model.kernel,
            model.theta,
            engine=model.engine,
            device=device,
            tau=model.tau,
            clip=model.clip,
            chunk=model.chunk,
        )
        self.optimizer = torch.optim.Adam(self.weights, lr=model.lr, weight_decay=model.weight_decay)
        self.steps = 0
        self.epoch_lr = model.lr
        self.augment_generator = torch.Generator().manual_seed(derive_seed(seed, "augment"))
        self._reset_statistics()

    def _reset_statistics(self) -> None:
        self.fired: list[torch.Tensor | None] = [None] * (len(self.specs) - 1)
        self.dtdw = MagnitudeStats()
        self.dldw = MagnitudeStats()
        self.timing: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.silent_outputs = 0
        self.samples = 0

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Latency code of uint8 images: ``[B, H, W]`` times for conv nets, ``[B, H*W]`` otherwise.

        Datasets of kind ``"spike_times"`` are already coded (``[B, N]`` ms, ``inf`` = silent): passed through.
        """
        if self.input_kind == "spike_times":
            return images.to(self.device, torch.float32)
        times = latency_code(images.to(self.device), self.params.t_max, zero_pixels_spike=self.params.zero_pixels_spike)
        return times.reshape(images.shape[0], *self.input_shape) if self.specs[0].kind == "conv" else times

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` ``[B, H, W]`` each translated by its own random ``(dy, dx)`` (``shift_pixels``), zero fill."""
        n = self.params.shift_pixels
        if n == 0:
            return images
        batch, height, width = images.shape[0], *self.input_shape
        frames = images.reshape(batch, height, width)
        offsets = torch.randint(-n, n + 1, (batch, 2), generator=self.augment_generator)
        padded = torch.nn.functional.pad(frames, (n, n, n, n))
        rows = (torch.arange(height)[None, :] + n - offsets[:, :1]).to(frames.device)
        cols = (torch.arange(width)[None, :] + n - offsets[:, 1:]).to(frames.device)
        shifted = padded[torch.arange(batch, device=frames.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
        return shifted.reshape(images.shape)

    def _time_weight_gradients(self, t_in: torch.Tensor, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
        count = min(self.params.stats_samples, t_in.shape[0])
        if count == 0:
            return []
        few = [o[:count].detach() for o in outputs]
        weights = [w.detach() for w in self.weights]
        result = []
        for inputs, weight, times in weighted_layer_io(t_in[:count], self.specs, weights, few):
            if self.params.kernel == "relpsp":
                result.append(relpsp_time_weight_gradient(inputs, weight, times))
            else:
                result.append(alpha_time_weight_gradient(inputs, weight, times, self.params.tau))
        return result

    def _record(self, t_in: torch.Tensor, outputs: list[torch.Tensor]) -> None:
        for index, times in enumerate(outputs[:-1]):
            counts = fire_counts(times)
            self.fired[index] = counts if self.fired[index] is None else self.fired[index] + counts
        for gradient in self._time_weight_gradients(t_in, outputs):
            self.dtdw.add(gradient)
        for weight in self.weights:
            self.dldw.add(weight.grad)
        hidden = outputs[-2].reshape(outputs[-2].shape[0], -1) if len(outputs) > 1 else t_in.reshape(t_in.shape[0], -1)
        self.timing.append(hidden_output_times(hidden, outputs[-1]))
        self.silent_outputs += int((~torch.isfinite(outputs[-1].detach())).sum())
        self.samples += int(t_in.shape[0])

    def _check_finite(self, quantity: str, tensors: list[torch.Tensor | None]) -> None:
        """Raise ``FloatingPointError`` naming the first layer whose ``quantity`` is not finite."""
        for name, values in zip(self.layer_names, tensors):
            if values is not None and not bool(torch.isfinite(values).all()):
                raise FloatingPointError(f"non-finite {quantity} in layer {name}")

    def train_step(self, batch: Batch) -> dict[str, float]:
        """One Adam step on the spike-time cross-entropy (+ late-label term) of ``batch``."""
        self._check_finite("weights", self.weights)
        t_in = self.encode(self.augment(batch.inputs))
        labels = batch.labels.to(self.device)
        outputs = forward(
            t_in,
            self.specs,
            self.weights,
            self.neuron,
            self.conv_neuron,
            dropout=self.params.dropout,
            generator=self.augment_generator,
        )
        loss = spike_time_cross_entropy(outputs[-1], labels, self.params.t_silent, self.params.temperature)
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(f"non-finite loss ({float(loss)}) at the output layer {self.layer_names[-1]}")
        total = loss
        if self.params.silent_penalty > 0:
            last_in = outputs[-2].reshape(t_in.shape[0], -1) if len(outputs) > 1 else t_in.reshape(t_in.shape[0], -1)
            total = loss + self.params.silent_penalty * late_label_penalty(
                last_in.detach(), self.weights[-1], outputs[-1].detach(), labels, self.params.t_silent
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self._check_finite("gradient dL/dw", [w.grad for w in self.weights])
        self._record(t_in, outputs)
        self.steps += 1
        warmup = min(1.0, self.steps / self.params.warmup_steps) if self.params.warmup_steps > 0 else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = self.epoch_lr * warmup
        self.optimizer.step()
        correct = (first_spike_prediction(outputs[-1].detach()) == labels).sum()
        return {"loss": float(loss.item()), "correct": float(correct.item())}

    @torch.no_grad()
    def output_times(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Spike times of every layer for uint8 ``images`` (no gradient, model unchanged)."""
        return forward(
            self.encode(images), self.specs, [w.detach() for w in self.weights], self.neuron, self.conv_neuron
        )

    def predict(self, batch: Batch) -> torch.Tensor:
        """The earliest-spiking output neuron of every sample, ``[B]``."""
        return first_spike_prediction(self.output_times(batch.inputs)[-1]).cpu()

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """Decay the learning rate; return and reset the epoch's analysis statistics."""
        stats: dict[str, Any] = {"lr": self.epoch_lr}
        hidden_names = [f"{spec.kind}{index + 1}" for index, spec in enumerate(self.specs[:-1])]
        for name, spec, counts in zip(hidden_names, self.specs[:-1], self.fired):
            if spec.kind != "pool" and counts is not None:
                stats[f"dead_fraction_{name}"] = dead_fraction(counts)
        stats.update(self.dtdw.summary("dtdw"))
        stats.update(self.dldw.summary("dldw"))
        if self.timing:
            mean_hidden, decision, before = (torch.cat(parts) for parts in zip(*self.timing))
            stats.update({f"timing_{k}": v for k, v in timing_correlation(mean_hidden, decision, before).items()})
        stats["silent_output_fraction"] = self.silent_outputs / max(1, self.samples * self.specs[-1].size)
        self.epoch_lr *= self.params.lr_decay
        self._reset_statistics()
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Weights, optimiser state, step count, learning rate and the augmentation generator's state
        (the epoch statistics restart at every epoch end): a copy, which later training steps leave
        unchanged (torch's optimiser ``state_dict`` hands out its live moment tensors)."""
        return {
            "weights": [w.detach().clone() for w in self.weights],
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "steps": self.steps,
            "epoch_lr": self.epoch_lr,
            "augment_rng": self.augment_generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        with torch.no_grad():
            for weight, saved in zip(self.weights, state["weights"]):
                weight.copy_(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = int(state["steps"])
        self.epoch_lr = float(state["epoch_lr"])
        if "augment_rng" in state:  # absent from checkpoints written before the augmentation existed
            self.augment_generator.set_state(state["augment_rng"])


def build_learner(model: ModelParams, info: DatasetInfo, *, seed: int, device: str = "cpu") -> StdbpLearner:
    """The STDBP learner for ``info``'s image size and classes."""
    return StdbpLearner(model, info, seed=seed, device=device)

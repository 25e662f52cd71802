"""The HM2-BP learner: the training loop's seam (:class:`snnbp.learner.Learner`) for HM2-BP networks.

Forward: Bernoulli rate code of the images (ALGORITHMS.md 1.10; training images distorted first
where ``model.distortion`` says so) or the dataset's own spike rasters, through the LIF layers
(1.2, 1.9), lateral inhibition on the output layer. Backward
(no autograd graph over time): :func:`snnbp.hm2bp.model.gradients` (1.3-1.7, 1.9). Update: Adam
with ``lr(e) = lr / sqrt(max(1, e))`` (1.7). After every epoch: per-class boosting of the
misclassified samples (1.8). Prediction: arg-max of the output spike counts, first index on ties.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from snnbp.data.base import DatasetInfo
from snnbp.encoding.distortion import warp_images
from snnbp.hm2bp.boosting import boost_weights
from snnbp.hm2bp.inputs import distortion_fields, encode_fixed, encode_fresh, fit_raster
from snnbp.hm2bp.model import (
    AdamState,
    Layer,
    adam_step,
    build_layers,
    describe,
    forward,
    gradients,
    init_weights,
    learning_rate,
    torch_dtype,
)
from snnbp.hm2bp.params import ModelParams
from snnbp.learner import Batch
from snnbp.seeding import torch_generator

if TYPE_CHECKING:
    from snnbp.distributed import DataParallel

ENGINES = ("auto", "event", "torch")


def resolve_engine(name: str, device: str | torch.device) -> str:
    """The engine ``model.engine`` names on ``device``: ``"event"`` or ``"torch"``.

    ``auto`` takes the event engine on the CPU when numba imports, else the torch path.

    Raises:
        ValueError: an unknown name, or ``event`` off the CPU or without numba.
    """
    if name not in ENGINES:
        raise ValueError(f"model.engine must be one of {', '.join(ENGINES)}, got {name!r}")
    on_cpu = torch.device(device).type == "cpu"
    if name == "torch" or (name == "auto" and not on_cpu):
        return "torch"
    if not on_cpu:
        raise ValueError(f"model.engine 'event' runs on the CPU only (device {device}); use 'torch' or 'auto'")
    try:
        import snnbp.hm2bp.event  # noqa: F401  (numba)
    except ImportError as exc:
        if name == "event":
            raise ValueError(f"model.engine 'event' needs numba ({exc}); pip install numba, or use 'torch'") from exc
        return "torch"
    return "event"


class Hm2bpLearner:
    """HM2-BP on a spiking MLP or CNN; see the module docstring.

    Attributes:
        layers: the network's layers (:func:`snnbp.hm2bp.model.build_layers`).
        network: the network in the paper's notation, e.g. ``784-800-10``.
        engine: ``"event"`` (:mod:`snnbp.hm2bp.event`) or ``"torch"`` (:mod:`snnbp.hm2bp.model`).
        weights: weight tensor per layer in the official layout (None for pooling layers); with
            the event engine, views of the arrays it updates in place.
    """

    def __init__(self, model: ModelParams, info: DatasetInfo, *, seed: int, device: str = "cpu") -> None:
        if info.kind not in ("image", "raster"):
            raise ValueError(f"HM2-BP takes image or raster datasets, got kind {info.kind!r}")
        if model.distortion is not None and info.kind != "image":
            raise ValueError(
                f"model.distortion distorts images; dataset {info.name!r} holds {info.kind}s (remove model.distortion)"
            )
        input_shape = tuple(info.input_shape) if info.kind == "image" else (info.input_shape[-1],)
        self.model, self.info, self.seed, self.device = model, info, seed, torch.device(device)
        self.engine = resolve_engine(model.engine, self.device)
        self.dtype = torch_dtype(model)
        self.layers: list[Layer] = build_layers(model, input_shape, info.num_classes)
        self.network = describe(self.layers)
        initial = init_weights(self.layers, model, torch_generator(seed, "hm2bp/init"), self.device)
        self._set_parameters(
            initial, [None if w is None else (torch.zeros_like(w), torch.zeros_like(w), 0) for w in initial]
        )
        self.lr = learning_rate(model.lr, 0, model.lr_decay)
        self.encoding_generator = torch_generator(seed, "hm2bp/encoding/fresh")
        self.epoch = 0  # 0-based index of the epoch being trained (selects the distortion fields)
        self.sample_weights = torch.ones(0, dtype=torch.float64)
        self.sample_labels = torch.zeros(0, dtype=torch.long)
        self.sample_wrong = torch.zeros(0, dtype=torch.bool)
        self.sample_seen = torch.zeros(0, dtype=torch.bool)
        self.epoch_sums: dict[str, float] = {}
        self.ever_fired: list[torch.Tensor] = []
        self.data_parallel: DataParallel | None = None

    def use_data_parallel(self, group: DataParallel) -> None:
        """Train on shards of every global batch, with the gradients summed over ``group``'s ranks
        before each update (:mod:`snnbp.distributed`), and the per-sample tables and firing
        statistics merged over the ranks at every epoch's end (before the boosting).

        Raises:
            ConfigError: fresh encoding of images (``model.fixed_encoding: false``), whose trains a
                whole batch draws from one running generator, so a shard's would differ from one
                process's.
        """
        if self.info.kind == "image" and not self.model.fixed_encoding:
            from snnbp.config import ConfigError

            raise ConfigError(
                "key 'model.fixed_encoding' is false: a batch's input trains are drawn from one running "
                "generator, which a shard cannot reproduce; data-parallel HM2-BP needs fixed_encoding: true "
                "(each sample's trains from its own generator) or a dataset of spike rasters"
            )
        self.data_parallel = group

    def _set_parameters(
        self, weights: list[torch.Tensor | None], adam: list[tuple[torch.Tensor, torch.Tensor, int] | None]
    ) -> None:
        """Install weights and Adam moments ``(m, v, step)`` (official layouts) in the engine's storage."""
        if self.engine == "torch":
            self.weights = [None if w is None else w.to(self.device, self.dtype) for w in weights]
            self.adam = [
                None
                if a is None
                else AdamState(a[0].to(self.device, self.dtype), a[1].to(self.device, self.dtype), int(a[2]))
                for a in adam
            ]
            return
        from snnbp.hm2bp import event

        self.event_network = event.EventNetwork.of(self.layers, weights, event.numpy_dtype(self.model))
        for k, (layer, state) in enumerate(zip(self.layers, adam)):
            if state is not None:
                self.event_network.first_moments[k][...] = event.kernel_layout(
                    layer, state[0], self.event_network.weights[k].dtype
                )
                self.event_network.second_moments[k][...] = event.kernel_layout(
                    layer, state[1], self.event_network.weights[k].dtype
                )
                self.event_network.steps[k] = int(state[2])
        self.weights = [event.official_view(layer, w) for layer, w in zip(self.layers, self.event_network.weights)]

    def _adam_states(self) -> list[tuple[torch.Tensor, torch.Tensor, int] | None]:
        """Adam moments ``(m, v, step)`` per layer in the official layout."""
        if self.engine == "torch":
            return [None if a is None else (a.m, a.v, a.step) for a in self.adam]
        from snnbp.hm2bp import event

        net = self.event_network
        return [
            None if m is None else (event.official_view(layer, m), event.official_view(layer, v), step)
            for layer, m, v, step in zip(self.layers, net.first_moments, net.second_moments, net.steps)
        ]

    # ------------------------------------------------------------------------------ forward
    def encode(self, batch: Batch, flags: bool = False) -> torch.Tensor:
        """Input raster ``[T, B, N_in]`` of ``batch`` in the compute dtype, on the device.

        Args:
            flags: return the event engine's ``uint8 [B, T, N_in]`` flags (CPU) instead.
        """
        m = self.model
        if self.info.kind == "raster":
            raster = fit_raster(batch.inputs, m.time_steps, flags)
        elif m.fixed_encoding or batch.split != "train":
            raster = encode_fixed(
                self.training_images(batch),
                batch.indices,
                batch.split,
                m.time_steps,
                seed=self.seed,
                scale=m.rate_scale,
                flags=flags,
            )
        else:
            raster = encode_fresh(
                self.training_images(batch),
                m.time_steps,
                generator=self.encoding_generator,
                scale=m.rate_scale,
                flags=flags,
            )
        return raster if flags else raster.to(device=self.device, dtype=self.dtype)

    def training_images(self, batch: Batch) -> torch.Tensor:
        """``batch.inputs``, distorted (float32) when ``model.distortion`` is set and the batch is training data.

        Shape:
            - output: ``[B, H, W]``, as ``batch.inputs``.
        """
        params = self.model.distortion
        if params is None or batch.split != "train" or params.is_identity:
            return batch.inputs
        images = batch.inputs.reshape(batch.inputs.shape[0], *self.info.input_shape[-2:])
        dx, dy = distortion_fields(params, self.seed, self.epoch, batch.indices.cpu(), *images.shape[1:])
        return warp_images(images, dx.to(images.device), dy.to(images.device)).reshape(batch.inputs.shape)

    def _event_forward(self, batch: Batch) -> list:
        """Every layer's spikes (:class:`snnbp.hm2bp.event.LayerSpikes`, input first) from the event engine."""
        from snnbp.hm2bp import event

        inputs = event.spikes_from_flags(self.encode(batch, flags=True).numpy())
        return event.forward(self.layers, self.event_network.weights, inputs, self.model, self.event_network.workspace)

    @torch.no_grad()
    def output_counts(self, batch: Batch) -> torch.Tensor:
        """Output spike counts ``[B, C]`` of ``batch`` (no learning)."""
        if self.engine == "event":
            return torch.from_numpy(self._event_forward(batch)[-1].counts).to(self.dtype)
        rasters, _ = forward(self.layers, self.weights, self.encode(batch), self.model)
        return rasters[-1].sum(dim=0)

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        """Arg-max of the output spike counts (first index on ties), ``[B]`` int64 on the CPU."""
        return self.output_counts(batch).argmax(dim=1).cpu()

    # ----------------------------------------------------------------------------- learning
    def _grow(self, size: int) -> None:
        """Extend the per-sample tables (boosting weights, labels, epoch outcome) to ``size`` samples."""
        extra = size - self.sample_weights.numel()
        if extra > 0:
            self.sample_weights = torch.cat([self.sample_weights, torch.ones(extra, dtype=torch.float64)])
            self.sample_labels = torch.cat([self.sample_labels, torch.zeros(extra, dtype=torch.long)])
            self.sample_wrong = torch.cat([self.sample_wrong, torch.zeros(extra, dtype=torch.bool)])
            self.sample_seen = torch.cat([self.sample_seen, torch.zeros(extra, dtype=torch.bool)])

    @torch.no_grad()
    def train_step(self, batch: Batch) -> dict[str, float]:
        """One HM2-BP update on ``batch`` (per-sample S-PSPs, mean gradient, one Adam step)."""
        m = self.model
        indices = batch.indices.cpu()
        self._grow(int(indices.max()) + 1)
        boost = self.sample_weights[indices] if m.boost else torch.ones(len(indices), dtype=torch.float64)
        if self.engine == "event":
            cost, output_counts, hidden_counts = self._event_step(batch, boost)
        else:
            cost, output_counts, hidden_counts = self._torch_step(batch, boost)
        labels = batch.labels.cpu()
        wrong = output_counts.argmax(dim=1) != labels
        self.sample_labels[indices] = labels
        self.sample_wrong[indices] = wrong
        self.sample_seen[indices] = True
        self._accumulate(hidden_counts, output_counts, labels)
        return {"loss": float(cost.mean()), "correct": float((~wrong).sum())}

    def _torch_step(self, batch: Batch, boost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Torch path: forward, gradients, Adam; returns cost ``[B]``, output counts, hidden counts ``[B, N]``."""
        m = self.model
        labels = batch.labels.to(self.device)
        rasters, currents = forward(self.layers, self.weights, self.encode(batch), m)
        result = gradients(self.layers, self.weights, rasters, currents, labels, boost.to(self.device, self.dtype), m)
        if self.data_parallel is not None:  # each rank's mean over its shard -> the mean over the global batch
            self.data_parallel.average_([grad for grad in result.grads if grad is not None])
        for k, grad in enumerate(result.grads):
            if grad is None:
                continue
            if not torch.isfinite(grad).all():
                raise FloatingPointError(
                    f"HM2-BP: non-finite weight gradient in layer {k} ({self.layers[k].kind}, "
                    f"weights {tuple(grad.shape)})"
                )
            self.weights[k], self.adam[k] = adam_step(
                self.weights[k], grad, self.adam[k], self.lr, beta1=m.adam_beta1, beta2=m.adam_beta2, eps=m.adam_eps
            )
        hidden = [r.sum(dim=0).reshape(r.shape[1], -1).cpu() for r in rasters[1:-1]]
        return result.cost.cpu(), result.output_counts.cpu(), hidden

    def _event_step(self, batch: Batch, boost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Event engine: forward, backward, regulariser + Adam in place; same returns as :meth:`_torch_step`."""
        from snnbp.hm2bp import event_backward

        spikes = self._event_forward(batch)
        result = event_backward.backward(
            self.layers,
            self.event_network.weights,
            spikes,
            batch.labels.cpu().numpy(),
            boost.numpy(),
            self.model,
            self.event_network.workspace,
        )
        samples = len(batch.labels)
        if self.data_parallel is not None:  # sums over the shards -> sums over the global batch
            self.data_parallel.sum_([torch.from_numpy(grad) for grad in result.grad_sums if grad is not None])
            samples = self.data_parallel.global_size
        self.event_network.update(result.grad_sums, samples, self.lr, self.model)
        hidden = [torch.from_numpy(s.counts) for s in spikes[1:-1]]
        return torch.from_numpy(result.cost), torch.from_numpy(result.output_counts).to(self.dtype), hidden

    def _accumulate(self, hidden_counts: list[torch.Tensor], counts: torch.Tensor, labels: torch.Tensor) -> None:
        """Add the batch's firing statistics to the epoch sums and the hidden neurons that fired to ``ever_fired``.

        Shape:
            - hidden_counts: per hidden layer ``[B, N]``; counts: output ``[B, C]``; labels: ``[B]``.
        """
        batch = counts.shape[0]
        label_counts = counts.gather(1, labels[:, None]).squeeze(1)
        sums = {
            "samples": float(batch),
            "output_spikes_label": float(label_counts.sum()),
            "output_spikes_other": float((counts.sum(dim=1) - label_counts).sum() / max(counts.shape[1] - 1, 1)),
            "silent_label": float((label_counts == 0).sum()),
        }
        steps = self.model.time_steps
        if not self.ever_fired:
            self.ever_fired = [torch.zeros(c.shape[1], dtype=torch.bool) for c in hidden_counts]
        for k, layer_counts in enumerate(hidden_counts):
            sums[f"rate_hz_{k}"] = float(layer_counts.sum()) / (steps * layer_counts.shape[1]) * 1000.0
            self.ever_fired[k] |= layer_counts.sum(dim=0) > 0
        for key, value in sums.items():
            self.epoch_sums[key] = self.epoch_sums.get(key, 0.0) + value

    def _merge_ranks(self, group: DataParallel) -> None:
        """Make every rank's per-sample tables and epoch statistics those of the whole epoch.

        The ranks saw disjoint samples this epoch and held the same tables before it: a sample's
        outcome comes from the rank that saw it, labels (0 where never seen) by maximum, the firing
        sums by sum, the hidden neurons that ever fired by "any rank".
        """
        size = torch.tensor([self.sample_weights.numel()], dtype=torch.int64, device=group.device)
        group.max_([size])
        self._grow(int(size))
        seen = self.sample_seen.to(group.device, torch.int32)
        fresh_wrong = (self.sample_seen & self.sample_wrong).to(group.device, torch.int32)
        labels = self.sample_labels.to(group.device)
        group.sum_([seen, fresh_wrong])
        group.max_([labels])
        seen_any = seen.cpu() > 0
        self.sample_wrong = torch.where(seen_any, fresh_wrong.cpu() > 0, self.sample_wrong)
        self.sample_seen, self.sample_labels = seen_any, labels.cpu()
        keys = sorted(self.epoch_sums)
        if keys:
            self.epoch_sums = dict(zip(keys, group.sum_values(*(self.epoch_sums[k] for k in keys))))
        fired = [f.to(group.device, torch.int32) for f in self.ever_fired]
        group.sum_(fired)
        self.ever_fired = [f.cpu() > 0 for f in fired]

    def weight_row_norms(self) -> list[list[float]]:
        """Minimum, median and maximum L2 norm of the fan-in rows of every trainable layer, input side first."""
        norms = []
        for w in self.weights:
            if w is not None:
                rows = w.detach().reshape(w.shape[0], -1).to(torch.float64).norm(dim=1)
                norms.append([float(rows.min()), float(rows.median()), float(rows.max())])
        return norms

    def end_epoch(self, epoch: int) -> dict[str, Any]:
        """Boost the epoch's misclassified samples, set the next epoch's learning rate, return statistics.

        Returns:
            ``lr`` (used in the epoch that ended), ``next_lr``, mean spike counts of the label and
            the other output neurons, the fraction of samples whose label neuron stayed silent,
            the mean firing rate of every hidden layer (Hz, one step = 1 ms), the fraction of every
            hidden layer's neurons that never fired in the epoch, the weight-row norms
            (:meth:`weight_row_norms`) and the boosting weights' mean and maximum.
        """
        if self.data_parallel is not None:
            self._merge_ranks(self.data_parallel)
        if self.model.boost and bool(self.sample_seen.any()):
            seen = torch.nonzero(self.sample_seen).flatten()
            self.sample_weights[seen] = boost_weights(
                self.sample_weights[seen],
                self.sample_labels[seen],
                self.sample_wrong[seen],
                self.info.num_classes,
                self.model.boost_divisor,
            )
        used_lr, self.lr = self.lr, learning_rate(self.model.lr, epoch, self.model.lr_decay)
        self.epoch = epoch
        n = max(self.epoch_sums.get("samples", 0.0), 1.0)
        hidden = [kind for kind in self.epoch_sums if kind.startswith("rate_hz_")]
        stats: dict[str, Any] = {
            "lr": used_lr,
            "next_lr": self.lr,
            "output_spikes_label": self.epoch_sums.get("output_spikes_label", 0.0) / n,
            "output_spikes_other": self.epoch_sums.get("output_spikes_other", 0.0) / n,
            "silent_label_fraction": self.epoch_sums.get("silent_label", 0.0) / n,
            "hidden_rate_hz": [
                self.epoch_sums[key] / n for key in sorted(hidden, key=lambda s: int(s.rsplit("_", 1)[1]))
            ],
            "hidden_never_fired_fraction": [float((~fired).double().mean()) for fired in self.ever_fired],
            "weight_row_norms": self.weight_row_norms(),
            "boost_weight_mean": float(self.sample_weights[self.sample_seen].mean())
            if bool(self.sample_seen.any())
            else 1.0,
            "boost_weight_max": float(self.sample_weights.max()) if self.sample_weights.numel() else 1.0,
        }
        self.epoch_sums = {}
        self.ever_fired = []
        self.sample_seen.zero_()
        return stats

    # ---------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Weights, Adam moments and step counts, learning rate, per-sample tables, encoding generator.

        Official layouts, contiguous, whichever engine trained: either engine resumes the other's state.
        """
        return {
            "weights": [None if w is None else w.detach().cpu().contiguous().clone() for w in self.weights],
            "adam": [
                None
                if a is None
                else {"m": a[0].cpu().contiguous().clone(), "v": a[1].cpu().contiguous().clone(), "step": a[2]}
                for a in self._adam_states()
            ],
            "lr": self.lr,
            "sample_weights": self.sample_weights.clone(),
            "sample_labels": self.sample_labels.clone(),
            "sample_wrong": self.sample_wrong.clone(),
            "sample_seen": self.sample_seen.clone(),
            "epoch_sums": dict(self.epoch_sums),
            "encoding_generator": self.encoding_generator.get_state(),
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        self._set_parameters(
            list(state["weights"]), [None if a is None else (a["m"], a["v"], int(a["step"])) for a in state["adam"]]
        )
        self.lr = float(state["lr"])
        self.sample_weights = state["sample_weights"].clone()
        self.sample_labels = state["sample_labels"].clone()
        self.sample_wrong = state["sample_wrong"].clone()
        self.sample_seen = state["sample_seen"].clone()
        self.epoch_sums = dict(state["epoch_sums"])
        self.encoding_generator.set_state(state["encoding_generator"])
        self.epoch = int(state.get("epoch", 0))  # absent in checkpoints written before distortions existed


def build_learner(model: ModelParams, info: DatasetInfo, *, seed: int, device: str = "cpu") -> Hm2bpLearner:
    """The HM2-BP learner for ``info`` (``model.layers`` hidden layers and an output layer of ``num_classes``)."""
    return Hm2bpLearner(model, info, seed=seed, device=device)

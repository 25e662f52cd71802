"""Exact STDBP (784-800-10, batch 128) against snntorch's time-to-first-spike training, in one run.

Measured in the same run, each variant in its own process (so its peak memory is its own), all
with the same thread count, the same real MNIST training batches in the same order, the same
initial weights where the neuron model allows it, and Adam at the same learning rate:

(a) ``fast``: the event-driven exact ReL-PSP layer (:func:`snnbp.stdbp.relpsp_spike_times`,
    hand-written backward) inside the STDBP learner, with the model settings of ``--params``
    (default ``params/cpu/stdbp_mnist_fc.yaml``: latency window ``t_max`` = 5 ms, decision window
    ``t_silent`` = 10 ms) without their training-image shifts (``shift_pixels``), so that every
    variant trains on the same images;
(b) ``dense``: the same learner with the dense vectorised ``B x N_in x N_out`` cumulative-sum
    formulation of the same exact layer (:func:`snnbp.stdbp.relpsp_spike_times_dense`,
    autograd); speed and memory only (its spike times, hence its accuracy, are those of ``fast``);
(c) ``snntorch``: the peer, snntorch 1.0's own time-to-first-spike recipe on ``T = 100`` steps of
    ``dt = t_silent / T = 0.1 ms``: inputs from ``snntorch.spikegen.latency`` (linear,
    normalised to 51 steps so that a pixel ``p`` spikes at step ``round(50 (1 - p / 255))``, the
    exact model's ``t = 5 (1 - p / 255)`` ms on the grid; black pixels clipped, as the exact
    model's silent black pixels), non-leaky ``snntorch.Leaky(beta=1)`` neurons (threshold 1,
    reset by subtraction, snntorch's default arc-tangent surrogate) behind bias-free
    ``nn.Linear`` layers, the loss ``snntorch.functional.ce_temporal_loss()`` (cross-entropy of
    the negated first-spike steps, snntorch's sign estimator ``dt/ds = -1``), prediction by the
    earliest output spike (snntorch's ``accuracy_temporal`` rule, first index on ties), BPTT over
    all steps. The first layer is applied once to the whole ``[T, B, 784]`` raster and the second
    once to the recorded hidden spikes (the same arithmetic as the per-step loop, faster).
    Weights: snntorch's neuron adds ``w`` to its potential at each input spike (a delta synapse)
    where ReL-PSP adds a ramp of slope ``w``, so the two need not share a weight scale; the peer
    starts from the exact model's initial weights times ``SNNTORCH_INIT_GAIN`` (chosen by a
    recorded probe, ``benchmarks/results/bench_stdbp_snntorch_init_probe.jsonl``);
(d) ``surrogate``: a plain-PyTorch time-stepped network with the ReL-PSP dynamics themselves
    discretised on ``T = 100`` steps (``I += W s_in``, ``V += I dt``, one spike per neuron,
    fast-sigmoid surrogate, first-spike times read from the spike trains, the exact model's loss
    with its ``temperature``):
    the same neuron model as (a) on a grid;
(e) ``fast_equal_time``: (a) trained for as long as (c) took to train on the sample budget.

Reported per variant: training samples/s (timed batches after one warm-up step), inference
samples/s (prediction of the test images), peak resident memory, test accuracy of a fresh model
after one pass over the first ``--budget`` training images (first ``--test-limit`` test images;
no model selection happens, so the test split only reports), and the ratios to the peer.

Run: ``.venv/bin/python benchmarks/bench_stdbp.py [--quick] [--threads 1] [--budget 8192] [--params FILE]``;
writes ``benchmarks/results/bench_stdbp.json`` (``bench_stdbp.quick.json`` with ``--quick``;
``bench_stdbp.<params name>.json`` for another ``--params``),
including the command, the commit and the load average at the start and the end. The accuracy
part needs the MNIST files (``snnbp fetch``); without them the speed part uses MNIST-like random
images. Without snntorch (``make bench`` installs it) the peer is left out and said so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import replace as replace_fields
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from snnbp.config import load_params
from snnbp.data.base import DatasetInfo, MissingDatasetError
from snnbp.encoding.latency import latency_code
from snnbp.io import atomic_write_text
from snnbp.learner import Batch
from snnbp.seeding import derive_seed, torch_generator
from snnbp.stdbp import build_learner, first_spike_prediction, relpsp_spike_times_dense
from snnbp.stdbp.model import architecture, init_weights

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PARAMS = ROOT / "params" / "cpu" / "stdbp_mnist_fc.yaml"
INFO = DatasetInfo(name="MNIST", key="mnist", num_classes=10, input_shape=(28, 28), kind="image")
BATCH = 128
STEPS = 100
"""Time steps of the time-stepped networks (c) and (d)."""
SNNTORCH_INIT_GAIN = 2.0
"""The peer's initial weights are the exact model's times this gain: the best of gains 0.5, 1, 2 and 10
and snntorch's default ``nn.Linear`` init after 2,048 training samples
(``benchmarks/results/bench_stdbp_snntorch_init_probe.jsonl``)."""
EVAL_BATCH = 500


def load_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """MNIST train/test images and labels, or MNIST-like random images when the files are absent."""
    try:
        from snnbp.data.mnist import load_mnist

        train, test, _ = load_mnist()
        return train.inputs, train.labels, test.inputs, test.labels, "MNIST"
    except MissingDatasetError:
        generator = torch_generator(0, "bench_stdbp/images")
        on = torch.rand(4096, 28, 28, generator=generator) < 0.19
        values = torch.where(
            torch.rand(4096, 28, 28, generator=generator) < 0.5,
            255.0,
            torch.rand(4096, 28, 28, generator=generator) * 255,
        )
        images = torch.where(on, values, torch.zeros(())).to(torch.uint8)
        labels = torch.randint(0, 10, (4096,), generator=generator)
        return images, labels, images[:0], labels[:0], "MNIST-like random images (no accuracy)"


def surrogate_spike(x: torch.Tensor, slope: float = 5.0) -> torch.Tensor:
    """Heaviside forward, fast-sigmoid derivative ``1 / (1 + slope |x|)^2`` backward."""
    soft = x / (1.0 + slope * x.abs())
    return soft + ((x >= 0).to(x.dtype) - soft).detach()


class SurrogateNetwork:
    """Time-stepped non-leaky IF first-spike network with the ReL-PSP dynamics (variant d)."""

    def __init__(
        self, weights: list[torch.Tensor], theta: float, window: float, lr: float, temperature: float = 1.0
    ) -> None:
        self.weights = [w.clone().requires_grad_() for w in weights]
        self.theta = theta
        self.temperature = temperature
        self.dt = window / STEPS
        self.optimizer = torch.optim.Adam(self.weights, lr=lr)

    def _layer(self, spikes: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        steps, batch, n_in = spikes.shape
        current = (spikes.reshape(steps * batch, n_in) @ weight.t()).reshape(steps, batch, -1).cumsum(dim=0)
        potential = torch.zeros_like(current[0])
        done = torch.zeros_like(current[0])
        out = []
        for step in range(steps):
            potential = potential + current[step] * self.dt
            spike = surrogate_spike(potential - self.theta) * (1.0 - done)
            done = done + spike
            out.append(spike)
        return torch.stack(out)

    def output_times(self, t_in: torch.Tensor) -> torch.Tensor:
        """First-spike times ``[B, 10]`` (``window`` when silent) of latency-coded ``t_in`` ``[B, 784]``."""
        step = torch.ceil(t_in / self.dt).clamp(max=STEPS - 1)
        grid = torch.arange(STEPS, dtype=t_in.dtype)[:, None, None]
        spikes = (grid == torch.where(torch.isfinite(step), step, torch.full_like(step, -1.0))[None]).to(t_in.dtype)
        for weight in self.weights:
            spikes = self._layer(spikes, weight)
        fired = spikes.sum(dim=0)
        return (grid * spikes).sum(dim=0) * self.dt + (1.0 - fired) * STEPS * self.dt

    def train_step(self, t_in: torch.Tensor, labels: torch.Tensor) -> float:
        loss = F.cross_entropy(-self.output_times(t_in) / self.temperature, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


class SnntorchTTFS:
    """The peer (variant c): snntorch's latency code, ``Leaky(beta=1)`` neurons and ``ce_temporal_loss``.

    ``input_steps`` is the step of a black pixel's spike before clipping (``latency`` normalises
    the code to ``input_steps + 1`` steps, then the raster is padded with silent steps to ``STEPS``).
    """

    def __init__(self, weights: list[torch.Tensor], lr: float, input_steps: int) -> None:
        import snntorch
        import snntorch.functional
        import snntorch.spikegen

        self.spikegen = snntorch.spikegen
        self.input_steps = input_steps
        self.layers = torch.nn.ModuleList()
        for weight in weights:
            linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
            with torch.no_grad():
                linear.weight.copy_(weight)
            self.layers.append(linear)
        self.neurons = [snntorch.Leaky(beta=1.0) for _ in weights]
        self.loss = snntorch.functional.ce_temporal_loss()
        self.optimizer = torch.optim.Adam(self.layers.parameters(), lr=lr)

    def raster(self, images: torch.Tensor) -> torch.Tensor:
        """``[T, B, 784]`` input spikes: ``spikegen.latency`` (linear, normalised, black pixels clipped)."""
        data = images.reshape(images.shape[0], -1).to(torch.float32) / 255.0
        spikes = self.spikegen.latency(
            data, num_steps=self.input_steps + 1, threshold=1.0 / 255.0, clip=True, normalize=True, linear=True
        )
        return torch.cat([spikes, spikes.new_zeros(STEPS - spikes.shape[0], *spikes.shape[1:])])

    def output_spikes(self, images: torch.Tensor) -> torch.Tensor:
        """``[T, B, 10]`` output spike record."""
        spikes = self.raster(images)
        for layer, neuron in zip(self.layers, self.neurons):
            current = layer(spikes)  # [T, B, N_out] at once: the layer has no state
            mem = neuron.init_leaky()
            record = []
            for step in range(current.shape[0]):
                spike, mem = neuron(current[step], mem)
                record.append(spike)
            spikes = torch.stack(record)
        return spikes

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        loss = self.loss(self.output_spikes(images), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Earliest output spike (no spike counts as step ``T``), first index on ties."""
        spikes = self.output_spikes(images)
        steps = torch.arange(1, STEPS + 1, dtype=spikes.dtype)[:, None, None]
        first = torch.where(spikes > 0, steps, torch.full_like(spikes, STEPS + 1)).amin(dim=0)
        return torch.argmin(first, dim=1)


def model_params(path: Path = PARAMS):
    """The STDBP model settings of the params file ``path``, without per-step dt/dw statistics and
    without training-image shifts (every variant sees the same images)."""
    return replace_fields(load_params(path).model, stats_samples=0, shift_pixels=0)


def initial_weights(model) -> list[torch.Tensor]:
    """The exact learner's initial weights (seed 1), for the time-stepped networks."""
    specs = architecture((28, 28), 10, hidden=model.hidden)
    generator = torch.Generator().manual_seed(derive_seed(1, "model"))
    return init_weights(
        specs,
        (28, 28),
        scale=model.theta / model.t_max,
        init_mean=model.init_mean,
        init_std=model.init_std,
        generator=generator,
    )


def make_trainer(variant: str, snntorch_init: str = str(SNNTORCH_INIT_GAIN), params: Path = PARAMS):
    """``(train_step(images, labels), predict(images))`` of ``variant``."""
    model = model_params(params)
    if variant in ("fast", "dense"):
        learner = build_learner(model, INFO, seed=1)
        if variant == "dense":  # the same learner on the dense exact layer
            learner.neuron = partial(relpsp_spike_times_dense, theta=model.theta)

        def step(images, labels):
            learner.train_step(Batch(images, labels, torch.arange(len(labels)), "train"))

        return step, lambda images: learner.predict(Batch(images, images.new_zeros(len(images)), None, "test"))
    weights = initial_weights(model)
    if variant == "snntorch":
        input_steps = round(model.t_max / (model.t_silent / STEPS))
        if snntorch_init == "default":  # nn.Linear's own initialisation
            torch.manual_seed(derive_seed(1, "model"))
            weights = [torch.nn.Linear(w.shape[1], w.shape[0], bias=False).weight.detach() for w in weights]
        else:
            weights = [w * float(snntorch_init) for w in weights]
        network = SnntorchTTFS(weights, model.lr, input_steps)
        return network.train_step, network.predict
    network = SurrogateNetwork(weights, model.theta, 3.0 * model.t_max, model.lr, model.temperature)

    def encode(images):
        return latency_code(images, model.t_max, zero_pixels_spike=model.zero_pixels_spike)

    def predict(images):
        with torch.no_grad():
            return first_spike_prediction(network.output_times(encode(images)))

    return (lambda images, labels: network.train_step(encode(images), labels)), predict


def measure(
    variant: str,
    batches: int,
    train_limit: int,
    test_limit: int,
    time_budget: float,
    snntorch_init: str,
    params: Path = PARAMS,
) -> dict:
    """Samples/s over ``batches`` timed steps (after one warm-up step); then, when the data has a
    test split, the test accuracy and inference speed of a fresh model trained on ``train_limit``
    samples (one pass in order) or, if ``time_budget > 0``, for ``time_budget`` seconds of
    training (passes repeat)."""
    train_x, train_y, test_x, test_y, data_name = load_data()
    result: dict = {"variant": variant, "data": data_name}
    if batches:
        step, predict = make_trainer(variant, snntorch_init, params)
        step(train_x[:BATCH], train_y[:BATCH])
        started = time.perf_counter()
        for index in range(1, batches + 1):
            part = slice(index * BATCH, (index + 1) * BATCH)
            step(train_x[part], train_y[part])
        seconds = time.perf_counter() - started
        result.update({"timed_batches": batches, "samples_per_s": batches * BATCH / seconds})
    if (train_limit or time_budget) and len(test_y):
        step, predict = make_trainer(variant, snntorch_init, params)
        started = time.perf_counter()
        seen = 0
        while (time.perf_counter() - started < time_budget) if time_budget else seen < train_limit:
            start = seen % len(train_y)
            stop = min(start + BATCH, len(train_y)) if time_budget else min(start + BATCH, train_limit)
            step(train_x[start:stop], train_y[start:stop])
            seen += stop - start
        result["train_seconds"] = time.perf_counter() - started
        result["train_samples"] = seen
        started = time.perf_counter()
        predictions = torch.cat(
            [predict(test_x[s : min(s + EVAL_BATCH, test_limit)]) for s in range(0, test_limit, EVAL_BATCH)]
        )
        result["inference_samples_per_s"] = test_limit / (time.perf_counter() - started)
        result["test_accuracy"] = float((predictions == test_y[:test_limit]).float().mean())
        result["test_samples"] = test_limit
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def run_variant(
    variant: str, args: argparse.Namespace, batches: int, train_limit: int = 0, time_budget: float = 0.0
) -> dict:
    """Run :func:`measure` for ``variant`` in a fresh process; return its JSON result."""
    command = [
        sys.executable,
        __file__,
        "--variant",
        variant,
        "--threads",
        str(args.threads),
        "--batches",
        str(batches),
        "--train-limit",
        str(train_limit),
        "--time-budget",
        str(time_budget),
        "--test-limit",
        str(args.test_limit),
        "--snntorch-init",
        args.snntorch_init,
        "--params",
        str(args.params),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"  {variant}: {json.dumps(result)}", flush=True)
    return result


def git_commit() -> str:
    """The commit of the work tree, with ``+dirty`` when ``lib/`` or this script differ from it."""

    def git(*words: str) -> str:
        return subprocess.run(["git", *words], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "lib", "benchmarks/bench_stdbp.py", "params/cpu")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


def snntorch_version() -> str | None:
    try:
        import snntorch
    except ImportError:
        return None
    return snntorch.__version__


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few batches, small accuracy budget (2048 samples)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of every variant")
    parser.add_argument(
        "--budget", type=int, default=8192, help="training samples of the equal-sample accuracy comparison"
    )
    parser.add_argument("--test-limit", type=int, default=2000, help="test images for the accuracy comparison")
    parser.add_argument("--no-surrogate", action="store_true", help="leave out the plain-PyTorch surrogate (d)")
    parser.add_argument(
        "--snntorch-init",
        default=str(SNNTORCH_INIT_GAIN),
        help="the peer's initial weights: a gain on the exact model's, or 'default' (nn.Linear's)",
    )
    parser.add_argument(
        "--params",
        type=Path,
        default=PARAMS,
        help="STDBP params file whose model settings the exact variants use (default params/cpu/stdbp_mnist_fc.yaml)",
    )
    parser.add_argument("--variant", choices=["fast", "dense", "snntorch", "surrogate"], help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--train-limit", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--time-budget", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.variant:
        print(
            json.dumps(
                measure(
                    args.variant,
                    args.batches,
                    args.train_limit,
                    args.test_limit,
                    args.time_budget,
                    args.snntorch_init,
                    args.params,
                )
            )
        )
        return
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    fast_batches, dense_batches, peer_batches, budget = (3, 1, 1, 2048) if args.quick else (12, 2, 4, args.budget)
    command = " ".join([".venv/bin/python", "benchmarks/bench_stdbp.py", *sys.argv[1:]])
    load_at_start = os.getloadavg()
    started = time.time()
    runs = {
        "fast": run_variant("fast", args, fast_batches, train_limit=budget),
        "dense": run_variant("dense", args, dense_batches),
    }
    has_snntorch = snntorch_version() is not None
    if has_snntorch:
        runs["snntorch"] = run_variant("snntorch", args, peer_batches, train_limit=budget)
        if "train_seconds" in runs["snntorch"]:
            runs["fast_equal_time"] = run_variant("fast", args, 0, time_budget=runs["snntorch"]["train_seconds"])
    if not args.no_surrogate:
        runs["surrogate"] = run_variant("surrogate", args, peer_batches, train_limit=budget)
    fast = runs["fast"]
    peer = runs.get("snntorch", {})
    report = {
        "benchmark": "STDBP 784-800-10, batch 128: exact event-driven vs dense exact vs snntorch TTFS (T = 100) vs a time-stepped ReL-PSP surrogate",
        "command": command,
        "commit": git_commit(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "snntorch": snntorch_version(),
        "loadavg_at_start": list(load_at_start),
        "loadavg_at_end": list(os.getloadavg()),
        "wall_seconds": time.time() - started,
        "quick": args.quick,
        "model_params": str(args.params.resolve().relative_to(ROOT)),
        "model_changes": "shift_pixels 0 (the same images for every variant), stats_samples 0",
        "steps": STEPS,
        "snntorch_init": args.snntorch_init,
        "sample_budget": budget,
        "runs": runs,
        "speedup_vs_dense": ratio(fast["samples_per_s"], runs["dense"]["samples_per_s"]),
        "speedup_vs_snntorch": ratio(fast["samples_per_s"], peer.get("samples_per_s")),
        "inference_speedup_vs_snntorch": ratio(
            fast.get("inference_samples_per_s"), peer.get("inference_samples_per_s")
        ),
        "memory_ratio_snntorch_over_fast": ratio(peer.get("peak_rss_mb"), fast["peak_rss_mb"]),
        "memory_ratio_dense_over_fast": ratio(runs["dense"]["peak_rss_mb"], fast["peak_rss_mb"]),
        "goal": "at least 5x snntorch's training throughput at equal or better accuracy (equal samples)",
        "accuracy_equal_samples": {
            name: runs[name].get("test_accuracy") for name in ("fast", "snntorch", "surrogate") if name in runs
        },
        "accuracy_equal_time": {
            name: runs[name].get("test_accuracy") for name in ("fast_equal_time", "snntorch") if name in runs
        },
    }
    if "surrogate" in runs:
        report["speedup_vs_surrogate"] = ratio(fast["samples_per_s"], runs["surrogate"]["samples_per_s"])
        report["memory_ratio_surrogate_over_fast"] = ratio(runs["surrogate"]["peak_rss_mb"], fast["peak_rss_mb"])
    if not has_snntorch:
        report["snntorch_missing"] = "snntorch is not installed (make bench installs it); the peer was left out"
    speedup, peer_accuracy = report["speedup_vs_snntorch"], peer.get("test_accuracy")
    if speedup is not None and peer_accuracy is not None and "test_accuracy" in fast:
        report["goal_met"] = speedup >= 5.0 and fast["test_accuracy"] >= peer_accuracy
    stem = "bench_stdbp" if args.params.resolve() == PARAMS.resolve() else f"bench_stdbp.{args.params.stem}"
    path = RESULTS / (f"{stem}.quick.json" if args.quick else f"{stem}.json")
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    for name, run in runs.items():
        speed = f"{run['samples_per_s']:8.1f} samples/s" if "samples_per_s" in run else " " * 18
        accuracy = (
            (
                f", test accuracy {run['test_accuracy']:.4f} after {run['train_samples']} samples ({run['train_seconds']:.0f} s),"
                f" inference {run['inference_samples_per_s']:.0f}/s"
            )
            if "test_accuracy" in run
            else ""
        )
        print(f"{name:15s}: {speed}, peak RSS {run['peak_rss_mb']:7.0f} MB{accuracy}")
    for key in ("speedup_vs_dense", "speedup_vs_snntorch", "inference_speedup_vs_snntorch", "speedup_vs_surrogate"):
        if report.get(key):
            print(f"{key}: {report[key]:.1f}x")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

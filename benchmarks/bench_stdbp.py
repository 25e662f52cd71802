"""Training speed and memory of exact STDBP (784-800-10, batch 128) against two baselines.

Measured in the same run, each variant in its own process (so its peak memory is its own):

(a) ``fast``: the event-driven exact ReL-PSP layer (:func:`snnbp.stdbp.relpsp_spike_times`,
    hand-written backward) inside the STDBP learner;
(b) ``dense``: the same learner with the dense vectorised ``B x N_in x N_out`` cumulative-sum
    formulation of the same exact layer (:func:`snnbp.stdbp.relpsp_spike_times_dense`, autograd);
(c) ``surrogate``: a time-stepped first-spike network of the same size in plain PyTorch:
    non-leaky integrate-and-fire neurons with the ReL-PSP dynamics discretised on ``T = 100``
    steps (``I += W s_in``, ``V += I dt``, one spike per neuron), a fast-sigmoid surrogate for the
    spike derivative, backprop through time, first-spike times read from the spike trains.

All three minimise the softmax cross-entropy over negated output spike times with Adam, with
the model settings of ``params/cpu/stdbp_mnist_fc.yaml``. Reported: training samples/s and peak
resident memory per variant, ratios to the fast path, and quick accuracy comparisons against
the surrogate network at an equal training budget: the same number of training samples (one pass
over the first 10240, or 2048 with ``--quick``), and the same wall-clock training time
(``fast_equal_time``: the fast path trained for as long as the surrogate took). The dense path
computes the same exact spike times as the fast one, hence the same accuracy.

Run: ``.venv/bin/python benchmarks/bench_stdbp.py [--quick] [--threads 2]``; writes
``benchmarks/results/bench_stdbp.json``. The accuracy part needs the MNIST files
(``snnbp fetch``); without them the speed part uses MNIST-like random images.
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
from dataclasses import replace
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
from snnbp.stdbp import build_learner, first_spike_prediction, relpsp_spike_times_dense, spike_time_cross_entropy
from snnbp.stdbp.model import architecture, init_weights

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_stdbp.json"
PARAMS = ROOT / "params" / "cpu" / "stdbp_mnist_fc.yaml"
INFO = DatasetInfo(name="MNIST", key="mnist", num_classes=10, input_shape=(28, 28), kind="image")
BATCH = 128
SURROGATE_STEPS = 100


def load_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """MNIST train/test images and labels, or MNIST-like random images when the files are absent."""
    try:
        from snnbp.data.mnist import load_mnist

        train, test, _ = load_mnist()
        return train.inputs, train.labels, test.inputs, test.labels, "MNIST"
    except MissingDatasetError:
        generator = torch_generator(0, "bench_stdbp/images")
        on = torch.rand(4096, 28, 28, generator=generator) < 0.19
        values = torch.where(torch.rand(4096, 28, 28, generator=generator) < 0.5, 255.0, torch.rand(4096, 28, 28, generator=generator) * 255)
        images = torch.where(on, values, torch.zeros(())).to(torch.uint8)
        labels = torch.randint(0, 10, (4096,), generator=generator)
        return images, labels, images[:0], labels[:0], "MNIST-like random images (no accuracy)"


def surrogate_spike(x: torch.Tensor, slope: float = 5.0) -> torch.Tensor:
    """Heaviside forward, fast-sigmoid derivative ``1 / (1 + slope |x|)^2`` backward."""
    soft = x / (1.0 + slope * x.abs())
    return soft + ((x >= 0).to(x.dtype) - soft).detach()


class SurrogateNetwork:
    """Time-stepped non-leaky IF first-spike network (baseline c), weights as the STDBP init."""

    def __init__(self, weights: list[torch.Tensor], theta: float, window: float, lr: float) -> None:
        self.weights = [w.clone().requires_grad_() for w in weights]
        self.theta = theta
        self.dt = window / SURROGATE_STEPS
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
        step = torch.ceil(t_in / self.dt).clamp(max=SURROGATE_STEPS - 1)
        grid = torch.arange(SURROGATE_STEPS, dtype=t_in.dtype)[:, None, None]
        spikes = (grid == torch.where(torch.isfinite(step), step, torch.full_like(step, -1.0))[None]).to(t_in.dtype)
        for weight in self.weights:
            spikes = self._layer(spikes, weight)
        fired = spikes.sum(dim=0)
        return (grid * spikes).sum(dim=0) * self.dt + (1.0 - fired) * SURROGATE_STEPS * self.dt

    def train_step(self, t_in: torch.Tensor, labels: torch.Tensor) -> float:
        loss = F.cross_entropy(-self.output_times(t_in), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss)


def make_trainer(variant: str):
    """``(train_step(images, labels), predict(images))`` of ``variant`` with the cpu-profile model."""
    model = replace(load_params(PARAMS).model, stats_samples=0)  # no per-step dt/dw statistics
    if variant in ("fast", "dense"):
        learner = build_learner(model, INFO, seed=1)
        if variant == "dense":  # the same learner on the dense exact layer
            learner.neuron = partial(relpsp_spike_times_dense, theta=model.theta)

        def step(images, labels):
            learner.train_step(Batch(images, labels, torch.arange(len(labels)), "train"))

        return step, lambda images: learner.predict(Batch(images, images.new_zeros(len(images)), None, "test"))
    specs = architecture((28, 28), 10, hidden=model.hidden)
    generator = torch.Generator().manual_seed(derive_seed(1, "model"))
    weights = init_weights(specs, (28, 28), scale=model.theta / model.t_max, init_mean=model.init_mean, init_std=model.init_std, generator=generator)
    network = SurrogateNetwork(weights, model.theta, 3.0 * model.t_max, model.lr)

    def encode(images):
        return latency_code(images, model.t_max, zero_pixels_spike=model.zero_pixels_spike)

    def predict(images):
        with torch.no_grad():
            return first_spike_prediction(network.output_times(encode(images)))

    return (lambda images, labels: network.train_step(encode(images), labels)), predict


def measure(variant: str, batches: int, train_limit: int, test_limit: int, time_budget: float) -> dict:
    """Samples/s over ``batches`` timed steps (after one warm-up step); then, when the data has a
    test split, the test accuracy of a fresh model trained on ``train_limit`` samples (one pass in
    order) or, if ``time_budget > 0``, for ``time_budget`` seconds of training (passes repeat)."""
    train_x, train_y, test_x, test_y, data_name = load_data()
    step, predict = make_trainer(variant)
    step(train_x[:BATCH], train_y[:BATCH])
    started = time.perf_counter()
    for index in range(1, batches + 1):
        part = slice(index * BATCH, (index + 1) * BATCH)
        step(train_x[part], train_y[part])
    seconds = time.perf_counter() - started
    result = {"variant": variant, "data": data_name, "timed_batches": batches, "samples_per_s": batches * BATCH / seconds}
    if (train_limit or time_budget) and len(test_y):
        step, predict = make_trainer(variant)
        started = time.perf_counter()
        seen = 0
        while (time.perf_counter() - started < time_budget) if time_budget else seen < train_limit:
            start = seen % len(train_y)
            step(train_x[start : start + BATCH], train_y[start : start + BATCH])
            seen += len(train_y[start : start + BATCH])
        result["train_seconds"] = time.perf_counter() - started
        result["train_samples"] = seen
        predictions = torch.cat([predict(test_x[s : s + 500]) for s in range(0, test_limit, 500)])
        result["test_accuracy"] = float((predictions == test_y[:test_limit]).float().mean())
        result["test_samples"] = test_limit
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def run_variant(variant: str, args: argparse.Namespace, batches: int, train_limit: int = 0, time_budget: float = 0.0) -> dict:
    """Run :func:`measure` for ``variant`` in a fresh process; return its JSON result."""
    command = [sys.executable, __file__, "--variant", variant, "--threads", str(args.threads), "--batches", str(batches),
               "--train-limit", str(train_limit), "--time-budget", str(time_budget), "--test-limit", str(args.test_limit)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="few batches, small accuracy budget")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the goal is stated for 2 cores)")
    parser.add_argument("--variant", choices=["fast", "dense", "surrogate"], help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--train-limit", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--time-budget", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--test-limit", type=int, default=2000, help="test images for the accuracy comparison")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.variant:
        print(json.dumps(measure(args.variant, args.batches, args.train_limit, args.test_limit, args.time_budget)))
        return
    fast_batches, dense_batches, budget = (3, 1, 2048) if args.quick else (12, 2, 10240)
    load_at_start = os.getloadavg()[0]
    runs = {
        "fast": run_variant("fast", args, fast_batches, train_limit=budget),
        "dense": run_variant("dense", args, dense_batches),
        "surrogate": run_variant("surrogate", args, max(1, fast_batches // 3), train_limit=budget),
    }
    runs["fast_equal_time"] = run_variant("fast", args, 1, time_budget=runs["surrogate"]["train_seconds"])
    fast = runs["fast"]
    report = {
        "benchmark": "STDBP training throughput, 784-800-10, batch 128 (exact fast path vs dense exact vs time-stepped surrogate)",
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "loadavg_at_start": load_at_start,
        "quick": args.quick,
        "model_params": str(PARAMS.relative_to(ROOT)),
        "surrogate_steps": SURROGATE_STEPS,
        "runs": runs,
        "speedup_vs_dense": fast["samples_per_s"] / runs["dense"]["samples_per_s"],
        "speedup_vs_surrogate": fast["samples_per_s"] / runs["surrogate"]["samples_per_s"],
        "memory_ratio_dense_over_fast": runs["dense"]["peak_rss_mb"] / fast["peak_rss_mb"],
        "memory_ratio_surrogate_over_fast": runs["surrogate"]["peak_rss_mb"] / fast["peak_rss_mb"],
        "goal_samples_per_s": 500,
        "accuracy_equal_samples": {name: runs[name].get("test_accuracy") for name in ("fast", "surrogate")},
        "accuracy_equal_time": {name: runs[name].get("test_accuracy") for name in ("fast_equal_time", "surrogate")},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps(report, indent=2) + "\n")
    for name, run in runs.items():
        accuracy = f", test accuracy {run['test_accuracy']:.4f} after {run['train_samples']} samples ({run['train_seconds']:.0f} s)" if "test_accuracy" in run else ""
        print(f"{name:15s}: {run['samples_per_s']:8.1f} samples/s, peak RSS {run['peak_rss_mb']:7.0f} MB{accuracy}")
    print(f"fast / dense: {report['speedup_vs_dense']:.1f}x   fast / surrogate: {report['speedup_vs_surrogate']:.1f}x")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

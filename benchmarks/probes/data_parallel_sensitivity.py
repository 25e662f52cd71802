"""Why do 1 and 2 data-parallel processes end at different accuracies? Exactness of the shard
reduction, and the sensitivity of STDBP training to one-ulp changes of the initial weights.

The run of ``benchmarks/bench_data_parallel.py`` (STDBP 784-800-10, the first 4,096 MNIST training
images, one epoch, global batch 64) ended at 73.6 % test accuracy with one process and 78.6 % with
two. Two measurements tell a reduction error from the float32 sensitivity of the training itself:

1. **Exactness**: on the first ``--check-batches`` global batches (from the untrained model), the
   gradient of the whole batch against the mean of the two half-batch gradients, both in float64
   (``g = (g_A + g_B) / 2`` is what the all-reduce computes for equal shards).
2. **Sensitivity**: the same one-process training (the learner's own ``train_step``, the same
   batches in the same order) started from the built initial weights and from ``--perturbed``
   copies in which every weight is moved by one float32 ulp up or down (a random sign each): the
   size of change that a different summation order makes. Reported: each run's test accuracy on
   the first 1,000 test images (the benchmark's) and its largest weight difference to the
   unperturbed run.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probes/data_parallel_sensitivity.py``; the result is
written to ``benchmarks/results/data_parallel_sensitivity.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "lib"))

from snnbp.config import load_params  # noqa: E402
from snnbp.datasets import load_dataset  # noqa: E402
from snnbp.io import atomic_write_json  # noqa: E402
from snnbp.learner import Batch  # noqa: E402
from snnbp.seeding import derive_seed  # noqa: E402
from snnbp.stdbp import build_learner  # noqa: E402
from snnbp.stdbp.loss import late_label_penalty, spike_time_cross_entropy  # noqa: E402
from snnbp.stdbp.model import forward  # noqa: E402


def float64_gradient(learner, images: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
    """The learner's training objective (spike-time cross-entropy + late-label term) differentiated
    in float64 at its current weights, for one batch."""
    p = learner.params
    weights = [w.detach().double().requires_grad_() for w in learner.weights]
    outputs = forward(learner.encode(images).double(), learner.specs, weights, learner.neuron)
    total = spike_time_cross_entropy(outputs[-1], labels, p.t_silent, p.temperature)
    if p.silent_penalty > 0:
        last_in = outputs[-2].reshape(len(labels), -1)
        total = total + p.silent_penalty * late_label_penalty(
            last_in.detach(), weights[-1], outputs[-1].detach(), labels, p.t_silent
        )
    return list(torch.autograd.grad(total, weights))


def one_ulp_moved(weights: list[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
    """Every entry moved to its float32 neighbour above or below (a random direction each)."""
    moved = []
    for w in weights:
        up = torch.rand(w.shape, generator=generator) < 0.5
        target = torch.where(up, torch.full_like(w, float("inf")), torch.full_like(w, float("-inf")))
        moved.append(torch.nextafter(w.detach(), target))
    return moved


def train_and_test(
    model, info, seed: int, start: list[torch.Tensor] | None, train, test, order: torch.Tensor, batch_size: int
) -> tuple[float, list[torch.Tensor]]:
    """One pass over ``order`` with the learner's ``train_step``; the test accuracy and final weights."""
    learner = build_learner(model, info, seed=seed)
    if start is not None:
        with torch.no_grad():
            for w, w0 in zip(learner.weights, start):
                w.copy_(w0)
    for offset in range(0, len(order), batch_size):
        index = order[offset : offset + batch_size]
        learner.train_step(Batch(train.inputs[index], train.labels[index], index, "train"))
    predictions = learner.predict(Batch(test.inputs, test.labels, None, "test"))
    return float((predictions == test.labels).float().mean()), [w.detach().clone() for w in learner.weights]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "cpu" / "stdbp_mnist_fc.yaml")
    parser.add_argument("--train", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--perturbed", type=int, default=4, help="runs from one-ulp-moved initial weights")
    parser.add_argument("--check-batches", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "data_parallel_sensitivity.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    started, load = time.perf_counter(), os.getloadavg()
    params = load_params(args.params)
    train, test, info = load_dataset(dataclasses.replace(params.data, train_limit=args.train, test_limit=1000))
    order = torch.randperm(args.train, generator=torch.Generator().manual_seed(derive_seed(params.seed, "probe/order")))

    learner = build_learner(params.model, info, seed=params.seed)
    exactness = []
    for offset in range(0, args.check_batches * args.batch_size, args.batch_size):
        index = order[offset : offset + args.batch_size]
        half = len(index) // 2
        whole = float64_gradient(learner, train.inputs[index], train.labels[index])
        first = float64_gradient(learner, train.inputs[index[:half]], train.labels[index[:half]])
        second = float64_gradient(learner, train.inputs[index[half:]], train.labels[index[half:]])
        exactness.append(
            [float(((a + b) / 2 - g).abs().max() / g.abs().max()) for g, a, b in zip(whole, first, second)]
        )
    print(f"largest relative difference, whole batch vs mean of halves (float64): {max(map(max, exactness)):.2e}")

    initial = [w.detach().clone() for w in learner.weights]
    base_accuracy, base_weights = train_and_test(
        params.model, info, params.seed, None, train, test, order, args.batch_size
    )
    runs = [{"start": "as built", "test_accuracy": base_accuracy, "max_weight_difference": [0.0] * len(base_weights)}]
    generator = torch.Generator().manual_seed(derive_seed(params.seed, "probe/ulp"))
    for k in range(args.perturbed):
        accuracy, weights = train_and_test(
            params.model, info, params.seed, one_ulp_moved(initial, generator), train, test, order, args.batch_size
        )
        runs.append(
            {
                "start": f"every weight moved by one ulp (draw {k + 1})",
                "test_accuracy": accuracy,
                "max_weight_difference": [float((a - b).abs().max()) for a, b in zip(weights, base_weights)],
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    accuracies = [r["test_accuracy"] for r in runs]
    atomic_write_json(
        args.out,
        {
            "probe": __doc__.splitlines()[0],
            "command": " ".join([".venv/bin/python", *sys.argv]),
            "params": str(args.params.resolve().relative_to(ROOT)),
            "train_images": args.train,
            "batch_size": args.batch_size,
            "test_images": 1000,
            "loadavg_at_start": list(load),
            "wall_seconds": time.perf_counter() - started,
            "gradient_exactness": {"batches": args.check_batches, "largest_relative_difference_per_layer": exactness},
            "runs": runs,
            "accuracy_range": [min(accuracies), max(accuracies)],
            "data_parallel_gap": "73.6 % (1 process) vs 78.6 % (2 processes): results/bench_data_parallel.json",
        },
    )
    print(f"test accuracies {', '.join(f'{a:.3f}' for a in accuracies)}; written: {args.out}")


if __name__ == "__main__":
    main()

"""Short HM2-BP runs on a fixed MNIST subset that test one hypothesis each about the training dynamics.

The official MNIST recipe (batch 1, Adam lr 1e-3, boosting, the fixed encoding; the params
defaults) is trained for one pass over the first ``--train`` training images and evaluated on the
first ``--test`` test images, under one change at a time:

- ``--order full``: a fresh random permutation every epoch (this library's loop);
  ``--order swaps``: the official loader's order, the file order perturbed by 5,000 random swaps
  per epoch (``cuMatrixVector::shuffle(5000, ...)`` of jinyyy666/mm-bp-snn);
- ``--seed``: the initial weights, the encoding and the order;
- ``--set KEY=VALUE``: any :class:`snnbp.hm2bp.params.ModelParams` field (YAML value), repeatable.

``--every N`` adds a trajectory: every ``N`` training images, the dead fraction, the fraction of
those images whose output error was zero (every count within the margin) and their mean cost.

Reported per run: test and running train accuracy, mean cost, the fraction of hidden neurons whose
fan-in row norm fell below 0.01 (dead), and the hidden firing rate. One JSON line per run is
appended to ``--out``.

Run: ``.venv/bin/python benchmarks/probes/hm2bp_recipe.py --order swaps --seed 1 --out FILE``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from snnbp.data.base import DatasetInfo
from snnbp.data.mnist import load_mnist
from snnbp.hm2bp.learner import build_learner
from snnbp.hm2bp.params import ModelParams
from snnbp.io import atomic_write_text
from snnbp.learner import Batch

OFFICIAL_SWAPS = 5000


def training_order(count: int, epoch: int, order: str, generator: torch.Generator, previous: list[int]) -> list[int]:
    """Sample order of one epoch: a permutation, or the previous order perturbed by random swaps."""
    if order == "full":
        return torch.randperm(count, generator=generator).tolist()
    current = list(previous) if previous else list(range(count))
    pairs = torch.randint(0, count, (OFFICIAL_SWAPS, 2), generator=generator).tolist()
    for a, b in pairs:
        current[a], current[b] = current[b], current[a]
    return current


def parse_overrides(pairs: list[str]) -> dict:
    """``["lambda_reg=0", ...]`` -> ``{"lambda_reg": 0}`` (values read as YAML); a bad pair is refused."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in ModelParams.__dataclass_fields__:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE with KEY a ModelParams field")
        overrides[key] = yaml.safe_load(value)
    return overrides


def dead_fraction(learner) -> float:
    """Fraction of first-layer neurons whose fan-in row norm is below 0.01."""
    rows = learner.weights[0].reshape(learner.weights[0].shape[0], -1).norm(dim=1)
    return float((rows < 0.01).double().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--order", choices=("full", "swaps"), default="full", help="sample order per epoch")
    parser.add_argument("--seed", type=int, default=1, help="seed of the weights, the encoding and the order")
    parser.add_argument("--train", type=int, default=10000, help="first N training images")
    parser.add_argument("--test", type=int, default=2000, help="first N test images")
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training subset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="ModelParams override")
    parser.add_argument("--every", type=int, default=0, help="trajectory interval in training images (0: none)")
    parser.add_argument("--out", type=Path, required=True, help="JSON-lines file to append the result to")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    torch.set_num_threads(1)
    train, test, _ = load_mnist()
    learner = build_learner(
        ModelParams(**{"engine": "event", **overrides}),
        DatasetInfo("MNIST", "mnist", 10, (28, 28), "image"),
        seed=args.seed,
    )
    generator = torch.Generator().manual_seed(args.seed)
    order: list[int] = []
    trajectory: list[dict] = []
    started = time.time()
    for epoch in range(1, args.epochs + 1):
        order = training_order(args.train, epoch, args.order, generator, order)
        correct, cost = 0.0, 0.0
        segment_costs: list[float] = []
        for seen, index in enumerate(order, start=1):
            part = torch.tensor([index])
            stats = learner.train_step(Batch(train.inputs[part], train.labels[part], part, "train"))
            correct += stats["correct"]
            cost += stats["loss"]
            segment_costs.append(stats["loss"])
            if args.every and seen % args.every == 0:
                trajectory.append(
                    {
                        "epoch": epoch,
                        "images": seen,
                        "dead_hidden_fraction": dead_fraction(learner),
                        "zero_error_fraction": sum(c == 0.0 for c in segment_costs) / len(segment_costs),
                        "cost": sum(segment_costs) / len(segment_costs),
                    }
                )
                print(json.dumps(trajectory[-1]), flush=True)
                segment_costs = []
        epoch_stats = learner.end_epoch(epoch)
    part = torch.arange(args.test)
    predictions = torch.cat(
        [learner.predict(Batch(test.inputs[p], test.labels[p], p, "test")) for p in part.split(100)]
    )
    record = {
        "order": args.order,
        "seed": args.seed,
        "overrides": overrides,
        "train_images": args.train,
        "test_images": args.test,
        "epochs": args.epochs,
        "test_accuracy": float((predictions == test.labels[: args.test]).double().mean()),
        "train_accuracy_running": correct / args.train,
        "train_cost": cost / args.train,
        "dead_hidden_fraction": dead_fraction(learner),
        "hidden_rate_hz": epoch_stats["hidden_rate_hz"],
        "seconds": time.time() - started,
        "trajectory": trajectory,
    }
    earlier = args.out.read_text() if args.out.is_file() else ""  # appended, never overwritten
    atomic_write_text(args.out, earlier + json.dumps(record) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()

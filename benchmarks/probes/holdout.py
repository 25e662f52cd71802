"""Short training runs on a fixed training subset, scored on a validation hold-out, one change at a time.

Any method's params file works (STDBP, HM2-BP, the ANN: the learner is the one ``method:`` names).
The model settings of a params file (default ``params/cpu/stdbp_mnist_fc.yaml``), changed by
``--set key=value`` (any ``model:`` field; the value is read as YAML), are trained for
``--epochs`` passes over the first ``--train`` training images (a seeded permutation every
epoch, as ``snnbp run``) and evaluated after every epoch on the last ``--validation`` training
images (the hold-out of the full runs; never the test split), or with ``--stratified`` on the
stratified hold-out of ``LabelledSplit.hold_out`` (for data stored class by class, such as
Caltech's), training then on the first ``--train`` of the rest (0: all of it). Reported per epoch: validation and
running train accuracy, mean loss, the learning rate, the seconds, and every number (or list of
numbers) the learner's ``end_epoch`` reports (STDBP: dead hidden and silent output fractions;
HM2-BP: hidden rates, never-fired fractions, silent label fraction). One JSON line per run (the command, the load average, the settings and the
curve) is appended to ``--out``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/probes/holdout.py --set lr=0.002 --out FILE``.
(Lines recorded before the HM2-BP support name this script ``benchmarks/probes/stdbp.py``: same options.)
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
import yaml

from snnbp.config import load_params
from snnbp.datasets import load_dataset
from snnbp.io import atomic_write_text
from snnbp.run_folder import build_learner
from snnbp.seeding import derive_seed
from snnbp.train import batches, predict_split

ROOT = Path(__file__).resolve().parents[2]


def is_number_or_numbers(value: object) -> bool:
    """Whether an epoch statistic is a number or a flat list of numbers (kept in the probe's curve)."""
    if isinstance(value, list | tuple):
        return all(isinstance(item, int | float) for item in value)
    return isinstance(value, int | float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "cpu" / "stdbp_mnist_fc.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a model field")
    parser.add_argument("--dataset", default=None, help="override data.dataset (another front end of the same data)")
    parser.add_argument("--batch-size", type=int, default=None, help="override train.batch_size")
    parser.add_argument("--train", type=int, default=10000, help="first N training images")
    parser.add_argument("--validation", type=int, default=5000, help="last N training images, the hold-out")
    parser.add_argument(
        "--stratified", action="store_true", help="hold out a stratified, evenly spaced validation part"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default="", help="a name for the run in the output")
    parser.add_argument("--out", type=Path, required=True, help="JSON-lines file to append the result to")
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params(args.params)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
        if isinstance(overrides[key], list):
            overrides[key] = tuple(overrides[key])
    model = dataclasses.replace(params.model, **overrides)
    batch_size = args.batch_size or params.train.batch_size
    data = dataclasses.replace(params.data, dataset=args.dataset or params.data.dataset, train_limit=None, test_limit=1)
    train_split, _, info = load_dataset(data)
    try:
        rest, held = train_split.hold_out(args.validation, stratified=args.stratified)
    except ValueError as error:
        raise SystemExit(f"--validation {args.validation}: {error}") from None
    args.train = args.train or len(rest)
    if args.train > len(rest):
        raise SystemExit(f"--train exceeds the {len(rest)} training samples left after the hold-out")
    train_part = rest.head(args.train)
    learner = build_learner(dataclasses.replace(params, model=model, seed=args.seed), info)
    generator = torch.Generator().manual_seed(derive_seed(args.seed, "probe/order"))
    load = os.getloadavg()
    curve = []
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        order = torch.randperm(args.train, generator=generator)
        correct = losses = 0.0
        for batch in batches(train_part, batch_size, "train", order):
            out = learner.train_step(batch)
            correct += out["correct"]
            losses += out["loss"] * len(batch.labels)
        train_seconds = time.perf_counter() - started
        stats = learner.end_epoch(epoch)
        predictions = predict_split(learner, held, 1000, "validation", progress=False)
        entry = {
            "epoch": epoch,
            "validation_accuracy": float((predictions == held.labels).float().mean()),
            "train_accuracy": correct / args.train,
            "train_loss": losses / args.train,
            "train_seconds": train_seconds,
        }
        entry.update({key: value for key, value in stats.items() if is_number_or_numbers(value)})
        curve.append(entry)
        print(json.dumps(entry), flush=True)
    record = {
        "label": args.label,
        "command": " ".join([".venv/bin/python", "benchmarks/probes/holdout.py", *sys.argv[1:]]),
        "loadavg_at_start": list(load),
        "params": str(args.params.resolve().relative_to(ROOT)),
        "dataset": info.key,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "batch_size": batch_size,
        "train": args.train,
        "validation": args.validation,
        "stratified": args.stratified,
        "seed": args.seed,
        "best_validation_accuracy": max(e["validation_accuracy"] for e in curve),
        "final_validation_accuracy": curve[-1]["validation_accuracy"],
        "curve": curve,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = args.out.read_text() if args.out.exists() else ""
    atomic_write_text(args.out, previous + json.dumps(record) + "\n")


if __name__ == "__main__":
    main()

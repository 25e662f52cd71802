"""Data-parallel training throughput: one run trained by 1 process and by N processes (torchrun, gloo).

Trains the same params file (an STDBP 784-800-10 MNIST run on a subset, one torch thread per
process) with ``snnbp train --processes P`` for every P given, each into a fresh temporary run
folder, and records the wall time of the training loop (the epochs' ``train_seconds``, read from
the run's ``metrics.json``), the training samples per second and the load average before and
after. The runs compute the same weights (``tests/test_distributed.py``), so only the speed
differs. Results: ``benchmarks/results/bench_data_parallel.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from snnbp.io import atomic_write_json, atomic_write_text  # noqa: E402


def run_params(train_limit: int, epochs: int, batch_size: int) -> dict:
    """The STDBP MNIST MLP of ``params/cpu/stdbp_mnist_fc.yaml`` on ``train_limit`` images."""
    base = yaml.safe_load((ROOT / "params" / "cpu" / "stdbp_mnist_fc.yaml").read_text())
    base.update(name="bench_data_parallel", profile="bench")
    base["data"] = {**base["data"], "train_limit": train_limit, "test_limit": 1000}
    base["train"] = {**base["train"], "epochs": epochs, "batch_size": batch_size, "num_threads": 1}
    base["train"].pop("validation", None)
    base["train"].pop("validation_stratified", None)
    return base


def train_once(params: dict, processes: int, folder: Path) -> dict:
    """Train ``params`` over ``processes`` local processes; the loop's seconds and samples/s."""
    path = folder / f"p{processes}.yaml"
    atomic_write_text(path, yaml.safe_dump(params))
    run_dir = folder / f"run{processes}"
    command = [
        sys.executable,
        "-m",
        "snnbp",
        "train",
        str(path),
        "--output-dir",
        str(run_dir),
        "--processes",
        str(processes),
    ]
    load_before = os.getloadavg()[0]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    )
    if done.returncode != 0:
        raise SystemExit(f"snnbp train --processes {processes} failed: {done.stderr[-2000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    seconds = sum(epoch["train_seconds"] for epoch in metrics["history"])
    samples = sum(epoch["train_samples"] for epoch in metrics["history"])
    return {
        "processes": processes,
        "train_seconds": seconds,
        "train_samples": samples,
        "samples_per_second": samples / seconds,
        "test_accuracy": metrics["final_test_accuracy"],
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="process counts to time (default 1 2)")
    parser.add_argument("--train-limit", type=int, default=4096, help="training images (default 4096)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "bench_data_parallel.json"))
    args = parser.parse_args()
    params = run_params(args.train_limit, args.epochs, args.batch_size)
    with tempfile.TemporaryDirectory() as scratch:
        rows = [train_once(params, p, Path(scratch)) for p in args.processes]
    one = rows[0]["samples_per_second"]
    for row in rows:
        row["speedup_vs_first"] = row["samples_per_second"] / one
        print(
            f"{row['processes']} process(es): {row['samples_per_second']:.1f} samples/s "
            f"({row['speedup_vs_first']:.2f}x), test accuracy {row['test_accuracy']:.4f}, "
            f"load {row['loadavg_before']:.2f} -> {row['loadavg_after']:.2f}"
        )
    record = {
        "benchmark": "data-parallel STDBP 784-800-10 MNIST training (snnbp train --processes P, gloo)",
        "train_limit": args.train_limit,
        "epochs": args.epochs,
        "global_batch_size": args.batch_size,
        "torch_threads_per_process": 1,
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "rows": rows,
    }
    atomic_write_json(args.output, record)
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()

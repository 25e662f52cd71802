"""Training throughput of the exact STDBP spiking CNN: the convolution engines, 1 and 2 threads.

The network and settings of ``params/cpu/stdbp_mnist_cnn.yaml`` (``28x28-16C3-P2-32C3-P2-128-10``,
batch 128) trained on the first real MNIST training images, one configuration per process:
``model.engine`` ``scan`` (the vectorised event scan of :mod:`snnbp.stdbp.relpsp` applied to every
receptive field) and ``rows`` (the compiled per-row engine :mod:`snnbp.stdbp.relpsp_rows`), each
with 1 and 2 torch threads. Timed: ``--batches`` training steps after one warm-up step (which
also compiles the kernels). Both engines compute the same spike times and gradients
(``tests/test_stdbp_relpsp_rows.py``), so only speed is measured; snntorch has no exact
first-spike convolution to compare with (its time-stepped peers are in ``bench_stdbp.py``).

Run: ``.venv/bin/python benchmarks/bench_stdbp_cnn.py [--batches 6]``; writes
``benchmarks/results/bench_stdbp_cnn.json`` with the command, the commit and the load average
at the start and the end (the result is only as good as the machine was quiet).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from snnbp.config import load_params  # noqa: E402
from snnbp.datasets import load_dataset  # noqa: E402
from snnbp.io import atomic_write_json  # noqa: E402
from snnbp.learner import Batch  # noqa: E402
from snnbp.stdbp import build_learner  # noqa: E402

PARAMS = ROOT / "params" / "cpu" / "stdbp_mnist_cnn.yaml"
RESULT = ROOT / "benchmarks" / "results" / "bench_stdbp_cnn.json"


def measure(engine: str, threads: int, batches: int) -> dict:
    """Training samples/s of one engine and thread count over ``batches`` timed steps."""
    torch.set_num_threads(threads)
    params = load_params(PARAMS)
    model = dataclasses.replace(params.model, engine=engine)
    batch_size = params.train.batch_size
    train, _, info = load_dataset(
        dataclasses.replace(params.data, train_limit=(batches + 1) * batch_size, test_limit=1)
    )
    learner = build_learner(model, info, seed=params.seed)

    def step(index: int) -> None:
        part = slice(index * batch_size, (index + 1) * batch_size)
        learner.train_step(Batch(train.inputs[part], train.labels[part], torch.arange(batch_size), "train"))

    step(0)
    started = time.perf_counter()
    for index in range(1, batches + 1):
        step(index)
    seconds = time.perf_counter() - started
    return {
        "engine": engine,
        "threads": threads,
        "timed_batches": batches,
        "batch_size": batch_size,
        "samples_per_second": batches * batch_size / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6, help="timed training steps per configuration")
    parser.add_argument("--engines", nargs="+", default=["scan", "rows"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--one", nargs=2, metavar=("ENGINE", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.batches)))
        return
    load_at_start, started = os.getloadavg(), time.time()
    runs = []
    for threads in args.threads:
        for engine in args.engines:
            done = subprocess.run(
                [sys.executable, __file__, "--one", engine, str(threads), "--batches", str(args.batches)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "OMP_NUM_THREADS": str(threads)},
            )
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]), flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "lib", "benchmarks/bench_stdbp_cnn.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    speed = {(r["engine"], r["threads"]): r["samples_per_second"] for r in runs}
    atomic_write_json(
        RESULT,
        {
            "benchmark": __doc__.splitlines()[0],
            "command": " ".join([".venv/bin/python", "benchmarks/bench_stdbp_cnn.py", *sys.argv[1:]]),
            "commit": commit + ("+dirty" if dirty else ""),
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
            "host": platform.node(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "params": str(PARAMS.relative_to(ROOT)),
            "loadavg_at_start": list(load_at_start),
            "loadavg_at_end": list(os.getloadavg()),
            "wall_seconds": time.time() - started,
            "runs": runs,
            "speedup_rows_over_scan": {
                str(t): speed[("rows", t)] / speed[("scan", t)]
                for t in args.threads
                if ("rows", t) in speed and ("scan", t) in speed
            },
            "goal": "at least 200 training samples/s on 2 cores (full MNIST CNN runs)",
        },
    )
    print(f"written: {RESULT}")


if __name__ == "__main__":
    main()

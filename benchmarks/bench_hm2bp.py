"""Training speed and memory of HM2-BP (784-800-10, T = 400) against surrogate-gradient BPTT.

Measured in the same run, every configuration in its own process (so its peak resident memory,
``ru_maxrss``, is its own):

(a) ``hm2bp``: the HM2-BP learner (:func:`snnbp.hm2bp.build_learner`, the official MNIST MLP
    settings, float32): forward LIF simulation, exact S-PSPs, no autograd graph over time;
(b) ``bptt``: a plain-PyTorch LIF network of the same size and ``T`` (leak ``exp(-1/tau_m)``,
    subtractive-free reset to 0, threshold 1, fast-sigmoid surrogate gradient), trained by
    backpropagation through time with Adam on the squared error of the output spike counts
    against the same 35/5 targets.

Both receive the same Bernoulli rate code of the same images (MNIST when the files are present,
MNIST-like random images otherwise). Reported per configuration: training samples/s (median over
the timed batches, after one warm-up batch), peak resident memory, and for HM2-BP the share of
the step spent in S-PSP computations (post kernels, their contractions with the pre spikes and
the S-PSP matrices). Configurations: batch 1, 32, 128 at T = 400 (speed), and T = 100, 200, 400
at batch 32 (memory). Ratios are HM2-BP over BPTT in the same run.

Run: ``.venv/bin/python benchmarks/bench_hm2bp.py [--quick] [--threads 2] [--batches 3]``;
writes ``benchmarks/results/bench_hm2bp.json`` and ``benchmarks/results/bench_hm2bp.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
HIDDEN, CLASSES, PIXELS = 800, 10, 784


def images(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``count`` MNIST training images and labels, or MNIST-like random images without the files."""
    try:
        from snnbp.data.mnist import load_mnist

        train, _, _ = load_mnist()
        return train.inputs[:count], train.labels[:count], "MNIST"
    except Exception:  # noqa: BLE001 - any missing-data condition falls back to synthetic images
        g = torch.Generator().manual_seed(seed)
        ink = torch.rand(count, 28, 28, generator=g) < 0.19
        values = torch.randint(1, 256, (count, 28, 28), generator=g)
        return (values * ink).to(torch.uint8), torch.randint(0, CLASSES, (count,), generator=g), "MNIST-like random images"


def spike_function():
    """Heaviside forward, fast-sigmoid surrogate backward (slope 10)."""

    class Spike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return (v > 0).to(v.dtype)

        @staticmethod
        def backward(ctx, grad):
            (v,) = ctx.saved_tensors
            return grad / (1.0 + 10.0 * v.abs()) ** 2

    return Spike.apply


def bptt_runner(batch: int, steps: int):
    """A surrogate-gradient BPTT step for a 784-800-10 LIF network on rate-coded inputs."""
    spike = spike_function()
    g = torch.Generator().manual_seed(0)
    w1 = torch.nn.Parameter((torch.rand(HIDDEN, PIXELS, generator=g) * 2 - 1) * 0.1)
    w2 = torch.nn.Parameter((torch.rand(CLASSES, HIDDEN, generator=g) * 2 - 1) * 0.1)
    optimiser = torch.optim.Adam([w1, w2], lr=1e-3)
    decay = torch.exp(torch.tensor(-1.0 / 64.0)).item()

    def step(raster: torch.Tensor, labels: torch.Tensor) -> None:
        currents = (raster.reshape(steps * batch, PIXELS) @ w1.t()).reshape(steps, batch, HIDDEN)
        v1 = torch.zeros(batch, HIDDEN)
        v2 = torch.zeros(batch, CLASSES)
        counts = torch.zeros(batch, CLASSES)
        for t in range(steps):
            v1 = decay * v1 + currents[t]
            s1 = spike(v1 - 1.0)
            v1 = v1 * (1.0 - s1)
            v2 = decay * v2 + s1 @ w2.t()
            s2 = spike(v2 - 1.0)
            v2 = v2 * (1.0 - s2)
            counts = counts + s2
        target = torch.full_like(counts, 5.0).scatter_(1, labels[:, None], 35.0)
        loss = ((counts - target) ** 2).sum(dim=1).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    return step


def spsp_timer(module) -> dict:
    """Wrap the S-PSP entry points that :mod:`snnbp.hm2bp.model` calls with wall-clock accumulators."""
    spent = {"seconds": 0.0}
    for name in ("post_kernel", "spsp", "spsp_batch_weighted", "spsp_conv", "spsp_pool"):
        original = getattr(module, name)

        def timed(*args, _original=original, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                spent["seconds"] += time.perf_counter() - started

        setattr(module, name, timed)
    return spent


def worker(config: dict) -> dict:
    """Run one configuration (in its own process) and return its measurements."""
    torch.set_num_threads(config["threads"])
    from snnbp.data.base import DatasetInfo
    from snnbp.encoding.rate import bernoulli_rate_code
    from snnbp.hm2bp import ModelParams, build_learner
    from snnbp.hm2bp import model as hm2bp_model
    from snnbp.learner import Batch

    batch, steps, batches = config["batch"], config["steps"], config["batches"]
    x, y, source = images(batch * (batches + 1), seed=1)
    spent = {"seconds": 0.0}
    if config["method"] == "hm2bp":
        spent = spsp_timer(hm2bp_model)
        info = DatasetInfo("MNIST", "mnist", CLASSES, (28, 28), "image")
        learner = build_learner(ModelParams(time_steps=steps), info, seed=1)

        def run(k: int) -> None:
            part = torch.arange(k * batch, (k + 1) * batch)
            learner.train_step(Batch(x[part], y[part], part, "train"))
    else:
        step = bptt_runner(batch, steps)
        generator = torch.Generator().manual_seed(2)

        def run(k: int) -> None:
            part = slice(k * batch, (k + 1) * batch)
            step(bernoulli_rate_code(x[part], steps, generator=generator), y[part])

    durations, spsp_shares = [], []
    for k in range(batches + 1):
        spent["seconds"] = 0.0
        started = time.perf_counter()
        run(k)
        elapsed = time.perf_counter() - started
        if k:  # the first batch is a warm-up
            durations.append(elapsed)
            spsp_shares.append(spent["seconds"] / elapsed)
    median = statistics.median(durations)
    return {
        **config,
        "data": source,
        "samples_per_second": batch / median,
        "seconds_per_batch": durations,
        "spsp_share": statistics.median(spsp_shares) if config["method"] == "hm2bp" else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def measure(config: dict) -> dict:
    """Run ``config`` in a fresh interpreter (its own peak memory)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(config)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(results: dict) -> str:
    """The results as a Markdown section (speed table, memory table, ratios)."""
    rows = results["runs"]
    lines = [f"### HM2-BP vs surrogate-gradient BPTT (784-800-10, {results['threads']} thread(s), {rows[0]['data']})", "",
             "| batch | T | HM2-BP samples/s | BPTT samples/s | speed-up | HM2-BP peak MB | BPTT peak MB | S-PSP share |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key in results["pairs"]:
        h, b = key["hm2bp"], key["bptt"]
        lines.append(f"| {h['batch']} | {h['steps']} | {h['samples_per_second']:.1f} | {b['samples_per_second']:.2f} | "
                     f"{h['samples_per_second'] / b['samples_per_second']:.1f}x | {h['peak_rss_mb']:.0f} | "
                     f"{b['peak_rss_mb']:.0f} | {100 * h['spsp_share']:.0f} % |")
    lines += ["", f"Timed batches per configuration: {results['batches']} (median; one warm-up batch first). "
              f"Machine: {results['machine']}; load average at start {results['loadavg']}.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="batch 1 and 32 at T=400, T=100 for memory, 1 timed batch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per configuration (default 1)")
    parser.add_argument("--batches", type=int, default=2, help="timed batches per configuration (default 2)")
    parser.add_argument("--bptt-batches", type=int, default=1, help="timed batches for BPTT (slow; default 1)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    batches = 1 if args.quick else args.batches
    speed = [(1, 400), (32, 400)] if args.quick else [(1, 400), (32, 400), (128, 400)]
    memory = [(32, 100)] if args.quick else [(32, 100), (32, 200)]
    pairs, runs = [], []
    for batch, steps in speed + memory:
        pair = {}
        for method in ("hm2bp", "bptt"):
            config = {"method": method, "batch": batch, "steps": steps, "threads": args.threads,
                      "batches": batches if method == "hm2bp" else min(batches, args.bptt_batches)}
            pair[method] = measure(config)
            runs.append(pair[method])
            print(f"{method:6s} batch {batch:3d} T {steps}: {pair[method]['samples_per_second']:8.2f} samples/s, "
                  f"peak {pair[method]['peak_rss_mb']:.0f} MB", flush=True)
        pairs.append(pair)
    results = {
        "benchmark": "hm2bp_vs_bptt", "network": "784-800-10", "threads": args.threads, "batches": batches,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}",
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "n/a",
        "pairs": pairs, "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_hm2bp.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (RESULTS / "bench_hm2bp.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()

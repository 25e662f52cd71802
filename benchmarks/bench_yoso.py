"""Throughput of the YOSO simulator (inferences/s with full operation, cycle and energy accounting)
on random-weight 784-800-10 ReL-PSP networks, against a naive per-event Python simulation of the
same hardware recursion measured in the same run.

Inputs: MNIST-like latency codes (random sparse images) and, when the MNIST files are present, real
MNIST test images (``snnbp.data.mnist.load_mnist``), latency-coded with ``t_max`` ms. The weights are
random (NOT a trained network), so the energy numbers printed here only illustrate the model.

Run: ``.venv/bin/python benchmarks/bench_yoso.py [--n 2000] [--baseline-n 3]``; writes
``benchmarks/results/bench_yoso.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from snnbp.encoding.latency import latency_code
from snnbp.io import atomic_write_text
from snnbp.seeding import numpy_generator, torch_generator
from snnbp.yoso import evaluate, load_arch, load_energy, map_network, simulate, to_hardware, with_changes

RESULTS = Path(__file__).resolve().parent / "results" / "bench_yoso.json"


def random_network(seed: int) -> tuple[list[torch.Tensor], list[float]]:
    """784-800-10 with slightly positive mean weights, so most neurons fire within a few ms."""
    gen = torch_generator(seed, "bench_yoso/weights")
    w1 = torch.randn(800, 784, generator=gen, dtype=torch.float64) * 0.05 + 0.01
    w2 = torch.randn(10, 800, generator=gen, dtype=torch.float64) * 0.05 + 0.01
    return [w1, w2], [5.0, 10.0]


def mnist_like_images(n: int, seed: int) -> torch.Tensor:
    """Random uint8 images with MNIST's sparsity (~19 % non-zero pixels, many saturated)."""
    rng = numpy_generator(seed, "bench_yoso/images")
    on = rng.random((n, 784)) < 0.19
    values = np.where(rng.random((n, 784)) < 0.5, 255, rng.integers(1, 255, (n, 784)))
    return torch.from_numpy(np.where(on, values, 0).astype(np.uint8))


def naive_simulation(
    t_in: np.ndarray, weights: list[np.ndarray], thetas: list[float], dt: float, n_steps: int
) -> list[list[float]]:
    """Per-event, per-neuron Python loop over time steps (no accounting beyond the spike times):
    sweep (V += S, compare) then events (S += w) for each layer at each step, stop at the first
    output spike. The baseline of the speed ratio."""
    steps_in = [math.ceil(t / dt - 1e-9) if math.isfinite(t) else -1 for t in t_in]
    slope = [[0.0] * w.shape[0] for w in weights]
    pot = [[0.0] * w.shape[0] for w in weights]
    touched = [[False] * w.shape[0] for w in weights]
    fire = [[math.inf] * w.shape[0] for w in weights]
    rows = [w.tolist() for w in weights]
    for n in range(n_steps):
        spikes = [i for i, k in enumerate(steps_in) if k == n]
        for l, w in enumerate(rows):
            fired_now = []
            for j in range(len(w)):
                if touched[l][j] and fire[l][j] == math.inf:
                    pot[l][j] += slope[l][j]
                    if pot[l][j] >= thetas[l]:
                        fire[l][j] = n
                        fired_now.append(j)
            for i in spikes:
                for j in range(len(w)):
                    if fire[l][j] == math.inf:
                        slope[l][j] += w[j][i]
                        touched[l][j] = True
            spikes = fired_now
        if any(f < math.inf for f in fire[-1]):
            break
    return fire


def decisions_agree(naive_steps: list[list[float]], fast_steps: list[np.ndarray]) -> bool:
    """The naive loop stops at the first output spike; the simulator reports every output's time.
    They agree when the first output step, the output neurons firing at it, and every hidden spike
    before it are the same."""
    naive_out, fast_out = np.asarray(naive_steps[-1]), fast_steps[-1]
    first = naive_out.min()
    if first != fast_out.min() or not np.array_equal(naive_out == first, fast_out == first):
        return False
    return all(
        np.array_equal(np.asarray(n)[np.asarray(n) < first], f[np.asarray(n) < first])
        and np.array_equal(np.asarray(n) < first, f < first)
        for n, f in zip(naive_steps[:-1], fast_steps[:-1])
    )


def time_fast(weights, thetas, t_in, repeats: int) -> tuple[float, dict]:
    """Median inferences/s of the full pipeline (hardware conversion, mapping, simulation with
    counts and cycles, energy) and the metrics of the last run."""
    speeds, run = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        run = evaluate(weights, thetas, t_in)
        speeds.append(t_in.shape[0] / (time.perf_counter() - start))
    return statistics.median(speeds), run.metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="images for the fast simulator")
    parser.add_argument("--baseline-n", type=int, default=3, help="images for the naive baseline")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--t-max", type=float, default=10.0, help="latency code window (ms)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    arch, energy = load_arch(), load_energy()
    weights, thetas = random_network(args.seed)
    inputs = {"mnist_like_random": latency_code(mnist_like_images(args.n, args.seed), args.t_max).double()}
    labels = {}
    try:
        from snnbp.data.mnist import load_mnist

        _, test, _ = load_mnist()
        inputs["mnist_test"] = latency_code(test.inputs[: args.n], args.t_max).double()
        labels["mnist_test"] = test.labels[: args.n]
    except (ImportError, FileNotFoundError) as exc:
        print(f"real MNIST skipped: {exc}")
    evaluate(weights, thetas, inputs["mnist_like_random"][:64])  # warm-up

    net = to_hardware(weights, thetas, arch)
    mapping = map_network(net.layer_sizes, arch)
    t_base = inputs["mnist_like_random"][: args.baseline_n]
    start = time.perf_counter()
    naive = [
        naive_simulation(t.numpy(), [w.numpy() for w in net.weights], list(net.thresholds), arch.dt_ms, arch.n_steps)
        for t in t_base
    ]
    baseline_speed = len(t_base) / (time.perf_counter() - start)
    fast = simulate(net, mapping, t_base)
    agree = all(
        decisions_agree(naive[b], [(t[b] / arch.dt_ms).round().numpy() for t in fast.spike_times])
        for b in range(len(t_base))
    )

    record = {
        "benchmark": "YOSO simulator throughput (inferences/s, full accounting), 784-800-10 random weights",
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": 1,
        "loadavg_at_start": os.getloadavg()[0],
        "t_max_ms": args.t_max,
        "dt_ms": arch.dt_ms,
        "baseline": {
            "what": "naive per-event Python loop (spike times only)",
            "n_images": len(t_base),
            "inferences_per_s": baseline_speed,
            "output_spike_steps_agree_with_fast": agree,
        },
        "runs": {},
    }
    for name, t_in in inputs.items():
        speed, metrics = time_fast(weights, thetas, t_in, args.repeats)
        if name in labels:
            run = evaluate(weights, thetas, t_in, labels=labels[name])
            metrics = run.metrics
        record["runs"][name] = {
            "n_images": int(t_in.shape[0]),
            "inferences_per_s": speed,
            "speedup_vs_baseline": speed / baseline_speed,
            "metrics": metrics,
        }
        print(
            f"{name}: {speed:.0f} inferences/s ({speed / baseline_speed:.0f}x the naive loop); "
            f"{metrics['power_mw']:.3f} mW, {metrics['latency_ms']:.4f} ms, {metrics['energy_per_image_uj']:.4f} uJ/image"
        )
    # the same random network without early stop (whole window), for reference
    whole = evaluate(
        weights,
        thetas,
        inputs["mnist_like_random"][:256],
        arch=with_changes(arch, stop_at_first_output=False),
        energy=energy,
    )
    record["runs"]["mnist_like_random_whole_window"] = {"n_images": 256, "metrics": whole.metrics}
    record["loadavg_at_end"] = os.getloadavg()[0]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps(record, indent=2, default=float))
    print(f"baseline {baseline_speed:.2f} inferences/s; wrote {RESULTS}")


if __name__ == "__main__":
    main()

"""On a CUDA machine: the learners compute on the GPU what they compute on the CPU.

Skipped where torch sees no CUDA device (``test_device.py`` covers the device setting everywhere).
"""

from __future__ import annotations

import pytest
import torch

from snnbp.data.base import DatasetInfo
from snnbp.hm2bp import model as hm2bp_model
from snnbp.hm2bp.learner import build_learner as build_hm2bp
from snnbp.hm2bp.params import ModelParams as Hm2bpModel
from snnbp.learner import Batch
from snnbp.stdbp.learner import ModelParams as StdbpModel
from snnbp.stdbp.learner import build_learner as build_stdbp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")

IMAGES = DatasetInfo(name="toy images", key="toy", num_classes=4, input_shape=(8, 8), kind="image")


def _batch(count: int = 6, seed: int = 0) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    images = (torch.rand(count, 8, 8, generator=generator) * 255).to(torch.uint8)
    labels = torch.randint(0, IMAGES.num_classes, (count,), generator=generator)
    return Batch(images, labels, torch.arange(count), "train")


def test_hm2bp_auto_engine_is_torch_on_cuda():
    learner = build_hm2bp(
        Hm2bpModel(layers=("12",), thresholds=(2.0, 2.0), time_steps=40), IMAGES, seed=0, device="cuda"
    )
    assert learner.engine == "torch" and all(w.device.type == "cuda" for w in learner.weights if w is not None)


@pytest.mark.parametrize("layers", [("16",), ("2C3", "P2", "10")])
def test_hm2bp_torch_path_gradients_on_cuda_equal_the_cpu_in_float64(layers):
    model = Hm2bpModel(
        layers=layers,
        thresholds=(1.5,) * (len(layers) + 1),
        time_steps=60,
        dtype="float64",
        engine="torch",
        rate_scale=1.0,
    )
    batch = _batch()
    results = {}
    for device in ("cpu", "cuda"):
        learner = build_hm2bp(model, IMAGES, seed=3, device=device)
        rasters, currents = hm2bp_model.forward(learner.layers, learner.weights, learner.encode(batch), model)
        boost = torch.ones(len(batch.labels), dtype=torch.float64, device=device)
        results[device] = (
            rasters,
            hm2bp_model.gradients(
                learner.layers, learner.weights, rasters, currents, batch.labels.to(device), boost, model
            ),
        )
    (cpu_rasters, cpu), (gpu_rasters, gpu) = results["cpu"], results["cuda"]
    assert sum(float(r.sum()) for r in cpu_rasters[1:]) > 0, "the network must fire for the check to mean anything"
    for a, b in zip(cpu_rasters, gpu_rasters):
        assert torch.equal(a, b.cpu())
    torch.testing.assert_close(gpu.cost.cpu(), cpu.cost, rtol=1e-10, atol=1e-10)
    for k, (a, b) in enumerate(zip(cpu.grads, gpu.grads)):
        if a is not None:
            assert b.device.type == "cuda", k
            torch.testing.assert_close(b.cpu(), a, rtol=1e-9, atol=1e-12, msg=f"layer {k}")


def test_hm2bp_train_step_on_cuda_matches_the_cpu():
    model = Hm2bpModel(
        layers=("16",), thresholds=(1.5, 1.5), time_steps=60, dtype="float64", engine="torch", rate_scale=1.0
    )
    learners = {d: build_hm2bp(model, IMAGES, seed=3, device=d) for d in ("cpu", "cuda")}
    stats = {d: learner.train_step(_batch()) for d, learner in learners.items()}
    assert stats["cpu"] == pytest.approx(stats["cuda"], rel=1e-9)
    for a, b in zip(learners["cpu"].state_dict()["weights"], learners["cuda"].state_dict()["weights"]):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


def test_one_stdbp_step_on_cuda_matches_the_cpu():
    model = StdbpModel(hidden=(20,), t_max=5.0, t_silent=10.0, lr=1e-3, stats_samples=2)
    cpu = build_stdbp(model, IMAGES, seed=1, device="cpu")
    gpu = build_stdbp(model, IMAGES, seed=1, device="cuda")
    gpu.load_state_dict(cpu.state_dict())  # the same start (each device draws its own initial weights)
    batch = _batch(16)
    cpu_stats, gpu_stats = cpu.train_step(batch), gpu.train_step(batch)
    assert all(w.device.type == "cuda" for w in gpu.weights)
    assert gpu_stats["loss"] == pytest.approx(cpu_stats["loss"], rel=1e-4)
    for a, b in zip(cpu.weights, gpu.weights):
        torch.testing.assert_close(b.detach().cpu(), a.detach(), rtol=1e-4, atol=1e-6)
    assert torch.equal(gpu.predict(batch), cpu.predict(batch))

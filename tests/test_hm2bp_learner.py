"""The HM2-BP learner behind the training loop's seam: learning, encodings, resume, guards, params files."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from snnbp.config import load_params
from snnbp.data.base import DatasetInfo
from snnbp.hm2bp import ModelParams, build_learner
from snnbp.hm2bp.inputs import encode_fixed
from snnbp.learner import Batch
from snnbp.paths import run_params_files

T, N = 100, 20
TOY_INFO = DatasetInfo("two-rate toy", "toy", 2, (T, N), "raster", True)
TOY_MODEL = ModelParams(
    layers=("16",),
    thresholds=(3.0, 3.0),
    time_steps=T,
    desired=10.0,
    undesired=2.0,
    margin=2.0,
    lr=0.01,
    lambda_reg=0.0,
)
IMAGE_INFO = DatasetInfo("tiny images", "tiny", 3, (12, 12), "image", True)


def toy(n, seed):
    """Two classes told apart by which half of 20 inputs fires at a high rate (linearly separable)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    rate = torch.full((n, N), 0.02)
    rate[labels == 0, :10] = 0.15
    rate[labels == 1, 10:] = 0.15
    return (torch.rand(n, T, N, generator=g) < rate[:, None, :]).to(torch.uint8), labels


def images(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 12, 12), generator=g, dtype=torch.int64).to(torch.uint8), torch.randint(
        0, 3, (n,), generator=g
    )


def run_epochs(learner, x, y, epochs, batch=8):
    index = torch.arange(len(y))
    for epoch in range(1, epochs + 1):
        for part in index.split(batch):
            learner.train_step(Batch(x[part], y[part], part, "train"))
        stats = learner.end_epoch(epoch)
    return stats


def test_tiny_network_learns_a_separable_toy_task():
    x, y = toy(64, 0)
    xt, yt = toy(64, 1)
    learner = build_learner(TOY_MODEL, TOY_INFO, seed=0)
    test = Batch(xt, yt, torch.arange(64), "test")
    before = (learner.predict(test) == yt).float().mean().item()
    stats = run_epochs(learner, x, y, 3)
    after = (learner.predict(test) == yt).float().mean().item()
    assert learner.network == "20-16-2"
    assert before < 0.7 and after >= 0.9, (before, after)
    assert stats["output_spikes_label"] > stats["output_spikes_other"]
    assert stats["lr"] == pytest.approx(0.01 / 2**0.5) and stats["next_lr"] == pytest.approx(0.01 / 3**0.5)
    assert len(stats["hidden_rate_hz"]) == 1 and stats["hidden_rate_hz"][0] > 0


def test_state_dict_resumes_exactly():
    x, y = toy(24, 2)
    model = dataclasses.replace(TOY_MODEL, boost=True)
    a = build_learner(model, TOY_INFO, seed=3)
    run_epochs(a, x, y, 1)
    b = build_learner(model, TOY_INFO, seed=99)
    b.load_state_dict(a.state_dict())
    run_epochs(a, x, y, 1)
    run_epochs(b, x, y, 1)
    for wa, wb in zip(a.weights, b.weights):
        assert torch.equal(wa, wb)
    assert torch.equal(a.sample_weights, b.sample_weights) and a.lr == b.lr


def test_fixed_encoding_is_per_sample_and_fresh_encoding_is_not():
    x, y = images(4, 4)
    fixed = encode_fixed(x, torch.tensor([0, 1, 2, 3]), "train", 50, seed=1, scale=5.5)
    again = encode_fixed(x[[2, 0]], torch.tensor([2, 0]), "train", 50, seed=1, scale=5.5)
    assert torch.equal(again[:, 0], fixed[:, 2]) and torch.equal(again[:, 1], fixed[:, 0])
    assert not torch.equal(encode_fixed(x[:1], torch.tensor([0]), "test", 50, seed=1, scale=5.5)[:, 0], fixed[:, 0])
    assert fixed[0].sum() == 0 and (fixed.sum(0)[x.reshape(4, -1) == 0] == 0).all()
    learner = build_learner(
        dataclasses.replace(TOY_MODEL, layers=("10",), time_steps=50, fixed_encoding=False), IMAGE_INFO, seed=1
    )
    batch = Batch(x, y, torch.arange(4), "train")
    assert not torch.equal(learner.encode(batch), learner.encode(batch))
    test_batch = Batch(x, y, torch.arange(4), "test")
    assert torch.equal(learner.encode(test_batch), learner.encode(test_batch))


def test_spiking_cnn_trains_one_step_and_reports_its_shape():
    x, y = images(2, 5)
    model = ModelParams(
        layers=("3C3", "P2", "8"),
        thresholds=(2.0, 1.0, 1.0, 1.0),
        time_steps=60,
        lambda_reg=0.0,
        desired=10.0,
        undesired=2.0,
        margin=2.0,
    )
    learner = build_learner(model, IMAGE_INFO, seed=2)
    assert learner.network == "12x12-3C3-P2-8-3"
    before = [w.clone() for w in learner.weights if w is not None]
    stats = learner.train_step(Batch(x, y, torch.arange(2), "train"))
    assert set(stats) == {"loss", "correct"}
    after = [w for w in learner.weights if w is not None]
    assert all(not torch.equal(b, a) for b, a in zip(before, after))
    assert learner.predict(Batch(x, y, torch.arange(2), "test")).shape == (2,)


def test_prediction_takes_the_first_index_on_ties():
    learner = build_learner(TOY_MODEL, TOY_INFO, seed=0)
    silent = torch.zeros(3, T, N, dtype=torch.uint8)
    assert learner.predict(Batch(silent, torch.zeros(3, dtype=torch.long), torch.arange(3), "test")).tolist() == [
        0,
        0,
        0,
    ]


def test_non_finite_gradient_raises_floating_point_error():
    x, y = toy(4, 6)
    learner = build_learner(TOY_MODEL, TOY_INFO, seed=0)
    learner.weights[0][0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="layer"):
        learner.train_step(Batch(x, y, torch.arange(4), "train"))


def test_bad_layer_specs_are_clear_errors():
    with pytest.raises(ValueError, match="thresholds"):
        build_learner(dataclasses.replace(TOY_MODEL, thresholds=(1.0,)), TOY_INFO, seed=0)
    with pytest.raises(ValueError, match="image input"):
        build_learner(dataclasses.replace(TOY_MODEL, layers=("4C3",)), TOY_INFO, seed=0)
    with pytest.raises(ValueError, match="not"):
        build_learner(dataclasses.replace(TOY_MODEL, layers=("x",)), TOY_INFO, seed=0)


@pytest.mark.parametrize(
    "path", [p for p in run_params_files() if p.name.startswith("hm2bp_")], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_params_files_validate_and_build(path):
    params = load_params(path)
    assert params.method == "hm2bp" and isinstance(params.model, ModelParams)
    learner = build_learner(params.model, DatasetInfo("MNIST", "mnist", 10, (28, 28), "image"), seed=params.seed)
    assert learner.network.split("-")[1:-1] == list(params.model.layers)  # built as the file says

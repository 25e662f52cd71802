"""The STDBP learner: learning a toy task, statistics, exact resume, NaN stop, params files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from snnbp.analysis import LOG_BIN_EDGES
from snnbp.config import load_params
from snnbp.data.base import DatasetInfo
from snnbp.learner import Batch
from snnbp.stdbp import ModelParams, build_learner
from snnbp.stdbp.learner import StdbpLearner

INFO = DatasetInfo(name="toy bars", key="toy", num_classes=3, input_shape=(6, 6), kind="image")
PARAMS = Path(__file__).resolve().parents[1] / "params"


def _bars(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class c: a bright horizontal bar in rows 2c..2c+1, plus dim noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (count,), generator=generator)
    images = (torch.rand(count, 6, 6, generator=generator) * 60).to(torch.uint8)
    for index, label in enumerate(labels.tolist()):
        images[index, 2 * label : 2 * label + 2] = 200 + (torch.rand(2, 6, generator=generator) * 55).to(torch.uint8)
    return images, labels


def _batches(images, labels, size, split="train"):
    for start in range(0, len(labels), size):
        index = torch.arange(start, min(start + size, len(labels)))
        yield Batch(images[index], labels[index], index, split)


def _accuracy(learner, images, labels):
    predictions = torch.cat([learner.predict(b) for b in _batches(images, labels, 50, "test")])
    return float((predictions == labels).float().mean())


@pytest.mark.parametrize("kernel", ["relpsp", "alpha"])
def test_tiny_network_learns_toy_task(kernel):
    init_mean = 0.5 if kernel == "relpsp" else 3.0  # the bounded alpha PSP needs more weight to fire at the start
    model = ModelParams(
        kernel=kernel,
        hidden=(12,),
        t_max=5.0,
        tau=5.0,
        init_mean=init_mean,
        lr=3e-3,
        clip=2.0,
        t_silent=10.0,
        silent_penalty=0.1,
    )
    learner = build_learner(model, INFO, seed=0)
    images, labels = _bars(300, 1)
    test_images, test_labels = _bars(150, 2)
    before = _accuracy(learner, test_images, test_labels)
    for epoch in range(1, 5):
        for batch in _batches(images, labels, 25):
            stats = learner.train_step(batch)
            assert set(stats) >= {"loss", "correct"}
        learner.end_epoch(epoch)
    after = _accuracy(learner, test_images, test_labels)
    assert after >= 0.9 and after > before


def test_cnn_learner_trains_one_step_and_reports_statistics():
    model = ModelParams(hidden=(6,), conv_channels=(2,), conv_kernel=3, t_max=5.0, t_silent=30.0, stats_samples=1)
    learner = build_learner(model, INFO, seed=0)
    assert learner.network == "6x6-2C3-P2-8-6-3"
    images, labels = _bars(20, 3)
    learner.train_step(Batch(images, labels, torch.arange(20), "train"))
    stats = learner.end_epoch(1)
    assert 0.0 <= stats["dead_fraction_conv1"] <= 1.0 and 0.0 <= stats["dead_fraction_fc3"] <= 1.0
    assert "dead_fraction_pool2" not in stats
    assert len(stats["dtdw_hist"]) == len(LOG_BIN_EDGES) - 1 and sum(stats["dtdw_hist"]) == stats["dtdw_count"] > 0
    assert len(stats["dldw_hist"]) == len(LOG_BIN_EDGES) - 1 and stats["dldw_mean_abs"] > 0
    assert {"timing_pearson_r", "timing_before_fraction", "silent_output_fraction", "lr"} <= set(stats)
    assert learner.end_epoch(2)["dtdw_count"] == 0.0  # statistics restart every epoch


def test_state_dict_gives_exact_resume():
    model = ModelParams(hidden=(8,), t_max=5.0, lr=1e-2, lr_decay=0.5, warmup_steps=3)
    images, labels = _bars(40, 4)
    first = build_learner(model, INFO, seed=1)
    first.train_step(Batch(images[:20], labels[:20], torch.arange(20), "train"))
    first.end_epoch(1)
    second = build_learner(model, INFO, seed=99)
    second.load_state_dict(first.state_dict())
    assert second.epoch_lr == pytest.approx(5e-3) and second.steps == 1
    for learner in (first, second):
        learner.train_step(Batch(images[20:], labels[20:], torch.arange(20, 40), "train"))
    for a, b in zip(first.weights, second.weights):
        assert torch.equal(a, b)
    assert second.optimizer.param_groups[0]["lr"] == pytest.approx(5e-3 * 2 / 3)  # warm-up step 2 of 3


def test_non_finite_weights_stop_training_with_the_layer_name():
    learner = build_learner(ModelParams(hidden=(4,)), INFO, seed=0)
    with torch.no_grad():
        learner.weights[1][0, 0] = float("nan")
    images, labels = _bars(5, 5)
    with pytest.raises(FloatingPointError, match="fc2"):
        learner.train_step(Batch(images, labels, torch.arange(5), "train"))


def test_raster_datasets_are_refused():
    info = DatasetInfo(name="spikes", key="spikes", num_classes=2, input_shape=(10, 4), kind="raster")
    with pytest.raises(ValueError, match="latency"):
        build_learner(ModelParams(), info, seed=0)


@pytest.mark.parametrize(
    "name",
    [
        "paper/stdbp_mnist_fc",
        "paper/stdbp_mnist_cnn",
        "cpu/stdbp_mnist_fc",
        "cpu/stdbp_mnist_cnn",
        "cpu/alpha_mnist_fc",
        "cpu/relpsp_analysis_mnist_fc",
    ],
)
def test_params_files_validate_and_build(name):
    params = load_params(PARAMS / f"{name}.yaml")
    assert params.method == "stdbp" and params.name == Path(name).name
    learner = build_learner(
        params.model,
        DatasetInfo(name="MNIST", key="mnist", num_classes=10, input_shape=(28, 28), kind="image"),
        seed=params.seed,
    )
    assert learner.network.endswith("-10")


def test_spike_time_datasets_pass_through_and_learn():
    """Kind ``spike_times`` (e.g. DoG latency codes): inputs are used as they are, and a toy task is learnt."""
    generator = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (200,), generator=generator)
    times = torch.full((200, 8), float("inf"))
    early = 5.0 * torch.rand(200, 4, generator=generator)
    for index, label in enumerate(labels.tolist()):
        times[index, 4 * label : 4 * label + 4] = early[index]
    info = DatasetInfo(name="toy times", key="toy_times", num_classes=2, input_shape=(8,), kind="spike_times")
    model = ModelParams(hidden=(12,), t_max=5.0, lr=3e-3, clip=2.0, t_silent=10.0, silent_penalty=0.1)
    learner = build_learner(model, info, seed=0)
    assert torch.equal(learner.encode(times[:3]), times[:3])
    for _ in range(5):
        for batch in _batches(times, labels, 20):
            learner.train_step(batch)
    assert _accuracy(learner, times, labels) > 0.9


def test_spike_time_datasets_refuse_conv_networks():
    info = DatasetInfo(name="toy times", key="toy_times", num_classes=2, input_shape=(8,), kind="spike_times")
    with pytest.raises(ValueError, match="fully connected"):
        build_learner(ModelParams(conv_channels=(4,)), info, seed=0)


def test_shift_augmentation_translates_each_training_image_and_resumes_exactly():
    model = ModelParams(hidden=(8,), t_max=5.0, shift_pixels=2)
    learner = build_learner(model, INFO, seed=1)
    image = torch.zeros(1, 6, 6, dtype=torch.uint8)
    image[0, 2, 3] = 255
    shifted = learner.augment(image.expand(200, 6, 6).contiguous())
    moved = shifted.flatten(1).argmax(dim=1)
    dy, dx = moved // 6 - 2, moved % 6 - 3
    assert (
        shifted.flatten(1).amax(dim=1).eq(255).all() and shifted.flatten(1).sum(dim=1).eq(255).all()
    )  # one pixel, kept
    assert (
        dy.abs().max() == 2
        and dx.abs().max() == 2
        and {(int(a), int(b)) for a, b in zip(dy, dx)} >= {(0, 0), (2, -2), (-2, 1)}
    )
    edge = torch.zeros(1, 6, 6, dtype=torch.uint8)
    edge[0, 0, 0] = 255
    assert (
        learner.augment(edge.expand(200, 6, 6).contiguous()).flatten(1).sum(dim=1).lt(255).any()
    )  # shifted out: zero fill
    unshifted = build_learner(ModelParams(hidden=(8,)), INFO, seed=1)
    assert torch.equal(unshifted.augment(image), image)
    _assert_exact_resume(model)


def _assert_exact_resume(model: ModelParams) -> StdbpLearner:
    """Train one step, restore the state into a learner of another seed, train both one more step:
    equal weights. Returns the first learner."""
    images, labels = _bars(40, 4)
    first = build_learner(model, INFO, seed=1)
    first.train_step(Batch(images[:20], labels[:20], torch.arange(20), "train"))
    second = build_learner(model, INFO, seed=5)
    second.load_state_dict(first.state_dict())
    for learner in (first, second):
        learner.train_step(Batch(images[20:], labels[20:], torch.arange(20, 40), "train"))
    for a, b in zip(first.weights, second.weights):
        assert torch.equal(a, b)
    return first


def test_loss_temperature_divides_the_logits():
    from snnbp.stdbp.loss import spike_time_cross_entropy

    t_out = torch.tensor([[1.0, 3.0, float("inf")], [4.0, 2.0, 12.0]])
    labels = torch.tensor([0, 1])
    expected = torch.nn.functional.cross_entropy(-torch.tensor([[1.0, 3.0, 10.0], [4.0, 2.0, 10.0]]) / 2.5, labels)
    assert torch.allclose(spike_time_cross_entropy(t_out, labels, 10.0, temperature=2.5), expected)
    with pytest.raises(ValueError, match="temperature"):
        spike_time_cross_entropy(t_out, labels, 10.0, temperature=0.0)


def test_options_added_later_keep_the_identity_of_older_runs():
    from snnbp.config import params_to_dict
    from snnbp.train import params_hash

    params = load_params(PARAMS / "cpu/stdbp_mnist_fc.yaml")
    resolved = params_to_dict(params)
    older = {
        **resolved,
        "model": {k: v for k, v in resolved["model"].items() if k not in ("temperature", "shift_pixels", "layers")},
    }
    assert params_hash(resolved) == params_hash(older)
    changed = {**resolved, "model": {**resolved["model"], "shift_pixels": 1}}
    assert params_hash(changed) != params_hash(resolved)


def test_layers_in_the_shared_grammar_build_the_same_network():
    """``model.layers`` (the grammar of HM2-BP's params, snnbp.notation) gives the architecture
    that conv_channels / conv_kernel / pool_size / hidden give, with the same initial weights."""
    old = ModelParams(hidden=(6,), conv_channels=(2,), conv_kernel=3, t_max=5.0)
    new = ModelParams(layers=("2C3", "P2", "6"), t_max=5.0)
    a, b = build_learner(old, INFO, seed=4), build_learner(new, INFO, seed=4)
    assert a.specs == b.specs and b.network == "6x6-2C3-P2-8-6-3"
    assert all(torch.equal(x, y) for x, y in zip(a.weights, b.weights))
    flat = build_learner(ModelParams(layers=("12", "7")), INFO, seed=0)
    assert flat.network == "36-12-7-3"
    for layers, match in (
        (("8", "2C3"), "comes after a fully connected layer"),
        (("2X3",), "is not '<N>' \\(fully connected\\)"),
    ):
        with pytest.raises(ValueError, match=match):
            build_learner(ModelParams(layers=layers), INFO, seed=0)
    with pytest.raises(ValueError, match="replaces conv_channels"):
        build_learner(ModelParams(layers=("2C3", "P2"), conv_channels=(2,)), INFO, seed=0)


def test_dropout_silences_hidden_neurons_and_rescales_the_next_layer():
    """forward with dropout = the obvious computation: mask the hidden times with the generator's
    draws, then the output layer on the masked times with weights / (1 - p)."""
    from snnbp.stdbp.model import forward
    from snnbp.stdbp.relpsp import relpsp_spike_times

    learner = build_learner(ModelParams(hidden=(400,), t_max=5.0), INFO, seed=2)
    t_in = learner.encode(_bars(30, 6)[0]).double()
    weights = [w.detach().double() for w in learner.weights]
    p = 0.25
    dropped = forward(
        t_in, learner.specs, weights, learner.neuron, dropout=p, generator=torch.Generator().manual_seed(7)
    )
    plain = forward(t_in, learner.specs, weights, learner.neuron)
    keep = torch.rand(plain[0].shape, generator=torch.Generator().manual_seed(7)) >= p
    hidden = torch.where(keep, plain[0], torch.full_like(plain[0], float("inf")))
    assert torch.equal(dropped[0], hidden)
    assert 0.2 < float((~keep).double().mean()) < 0.3
    expected = relpsp_spike_times(hidden, weights[1] / (1 - p), learner.params.theta)
    assert torch.allclose(dropped[1], expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="generator"):
        forward(t_in, learner.specs, weights, learner.neuron, dropout=p)


def test_dropout_gradient_matches_finite_differences_in_float64():
    from snnbp.stdbp.loss import spike_time_cross_entropy
    from snnbp.stdbp.model import forward

    learner = build_learner(ModelParams(hidden=(16,), t_max=5.0, init_mean=1.0), INFO, seed=3)
    images, labels = _bars(6, 8)
    t_in = learner.encode(images).double()
    start = [w.detach().double() for w in learner.weights]

    def loss_of(w1: torch.Tensor) -> torch.Tensor:
        outputs = forward(
            t_in, learner.specs, [start[0], w1], learner.neuron, dropout=0.3, generator=torch.Generator().manual_seed(1)
        )
        return spike_time_cross_entropy(outputs[-1], labels, 10.0)

    w1 = start[1].clone().requires_grad_()
    loss_of(w1).backward()
    step = 1e-6
    for index in [(0, 0), (1, 3), (2, 15), (0, 9)]:
        up, down = start[1].clone(), start[1].clone()
        up[index] += step
        down[index] -= step
        numeric = (loss_of(up) - loss_of(down)) / (2 * step)
        assert float(w1.grad[index]) == pytest.approx(float(numeric), rel=1e-5, abs=1e-9)


def test_dropout_trains_resumes_exactly_and_never_drops_in_evaluation():
    model = ModelParams(hidden=(12,), t_max=5.0, lr=3e-3, clip=2.0, t_silent=10.0, silent_penalty=0.1, dropout=0.2)
    first = _assert_exact_resume(model)
    images, labels = _bars(40, 4)
    test = Batch(images, labels, None, "test")
    assert torch.equal(first.predict(test), first.predict(test))
    undropped = build_learner(dataclasses.replace(model, dropout=0.0), INFO, seed=1)
    undropped.load_state_dict(first.state_dict())
    assert torch.equal(first.output_times(images)[-1], undropped.output_times(images)[-1])


def test_dropout_keeps_the_identity_of_older_runs_and_is_validated(tmp_path):
    from snnbp.config import ConfigError, params_to_dict
    from snnbp.train import params_hash

    params = load_params(PARAMS / "cpu/stdbp_mnist_fc.yaml")
    resolved = params_to_dict(params)
    older = {**resolved, "model": {k: v for k, v in resolved["model"].items() if k != "dropout"}}
    assert params_hash(resolved) == params_hash(older)
    assert params_hash({**resolved, "model": {**resolved["model"], "dropout": 0.1}}) != params_hash(resolved)
    text = (PARAMS / "cpu/stdbp_mnist_fc.yaml").read_text().replace("model:\n", "model:\n  dropout: 1.0\n", 1)
    (tmp_path / "cpu").mkdir()
    bad = tmp_path / "cpu" / "stdbp_mnist_fc.yaml"
    bad.write_text(text)
    with pytest.raises(
        ConfigError, match=r"stdbp_mnist_fc.yaml: key 'model.dropout' must be a probability in \[0, 1\)"
    ):
        load_params(bad)

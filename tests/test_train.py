"""The training loop: resume equivalence, records, NaN stop, checkpoint safety."""

from __future__ import annotations

import json

import pytest
import torch

from snnbp.config import params_from_dict
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.train import CheckpointMismatchError, CorruptCheckpointError, fit, load_checkpoint

INFO = DatasetInfo(name="toy", key="toy", num_classes=3, input_shape=(6,), kind="image")


def _data(nan: bool = False):
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 6, generator=generator) * 3
    labels = torch.randint(0, 3, (90,), generator=generator)
    inputs = centres[labels] + torch.randn(90, 6, generator=generator)
    if nan:
        inputs[5, 2] = float("nan")
    return LabelledSplit(inputs[:60], labels[:60]), LabelledSplit(inputs[60:], labels[60:]), INFO


def _params(epochs: int = 3, **model):
    return params_from_dict(
        {
            "name": "toy",
            "method": "ann",
            "notebook": "04_train_ann.ipynb",
            "seed": 5,
            "data": {"dataset": "mnist"},
            "train": {"epochs": epochs, "batch_size": 8},
            "model": {"hidden": [7], "lr": 0.01, **model},
        },
        "test",
    )


def _weights(result):
    return {k: v.clone() for k, v in result.learner.state_dict()["net"].items()}


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    straight = fit(_params(), tmp_path / "straight", data=_data(), progress=False)
    first = fit(_params(), tmp_path / "resumed", data=_data(), progress=False, stop_after_epoch=1)
    assert len(first.history) == 1
    assert json.loads((tmp_path / "resumed" / "run.json").read_text())["status"] == "failed"
    resumed = fit(_params(), tmp_path / "resumed", data=_data(), progress=False)
    assert resumed.resumed_from_epoch == 1 and len(resumed.history) == 3
    for key, value in _weights(straight).items():
        assert torch.equal(value, _weights(resumed)[key]), key
    assert [h["test_accuracy"] for h in straight.history] == [h["test_accuracy"] for h in resumed.history]


def test_records_hold_provenance_and_metrics(tmp_path):
    result = fit(_params(epochs=2), tmp_path / "run", data=_data(), progress=False)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "completed" and run["root_seed"] == 5
    assert set(run["derived_seeds"]) >= {"model", "shuffle", "encoding"}
    assert run["params"]["model"]["hidden"] == [7]
    assert {"commit", "dirty"} <= set(run["git"])
    assert run["versions"]["torch"] and run["versions"]["python"]
    assert {"hostname", "cpu", "cpu_count", "gpu"} <= set(run["host"])
    assert run["start_utc"] <= run["stop_utc"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key in (
        "method",
        "dataset",
        "network",
        "epochs",
        "test_accuracy",
        "best_test_accuracy",
        "train_seconds",
        "samples_per_second",
        "peak_rss_mb",
    ):
        assert metrics[key] is not None, key
    assert metrics["network"] == "6-7-3" and metrics["epochs"] == 2
    assert metrics["test_accuracy"] == result.history[-1]["test_accuracy"]


def test_checkpoint_holds_what_resume_needs(tmp_path):
    fit(_params(epochs=1), tmp_path / "run", data=_data(), progress=False)
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert {"params", "params_hash", "epoch", "learner", "history", "torch_rng_state", "versions"} <= set(state)
    assert "optimizer" in state["learner"]


def test_nan_stops_with_a_clear_error(tmp_path):
    with pytest.raises(FloatingPointError, match="non-finite training loss .* epoch 1, batch"):
        fit(_params(), tmp_path / "run", data=_data(nan=True), progress=False)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def test_other_params_never_overwrite_a_run(tmp_path):
    fit(_params(epochs=1), tmp_path / "run", data=_data(), progress=False)
    with pytest.raises(CheckpointMismatchError, match="made with other params"):
        fit(_params(epochs=1, lr=0.5), tmp_path / "run", data=_data(), progress=False)


def test_corrupt_checkpoint_is_named(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CorruptCheckpointError, match="checkpoint.pt"):
        fit(_params(), tmp_path / "run", data=_data(), progress=False)


def _params_with(train: dict, epochs: int = 6):
    return params_from_dict(
        {
            "name": "toy",
            "method": "ann",
            "notebook": "04_train_ann.ipynb",
            "seed": 5,
            "data": {"dataset": "mnist"},
            "train": {"epochs": epochs, "batch_size": 8, **train},
            "model": {"hidden": [7], "lr": 0.05},
        },
        "test",
    )


def test_validation_selects_the_model_and_the_test_split_never_does(tmp_path):
    result = fit(_params_with({"validation": 20}), tmp_path / "run", data=_data(), progress=False)
    validation = [h["validation_accuracy"] for h in result.history]
    chosen = validation.index(max(validation)) + 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["selected_epoch"] == chosen and metrics["validation_samples"] == 20
    assert metrics["test_accuracy"] == result.history[chosen - 1]["test_accuracy"]
    assert metrics["final_test_accuracy"] == result.history[-1]["test_accuracy"]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] == chosen and metrics["model_checkpoint"] == "best.pt"
    # the returned learner and predictions are the selected model's
    assert float((result.predictions == result.labels).double().mean()) == pytest.approx(metrics["test_accuracy"])
    for key, value in best["learner"]["net"].items():
        assert torch.equal(value, result.learner.state_dict()["net"][key]), key


def test_validation_is_held_out_of_training(tmp_path):
    held = fit(_params_with({"validation": 20}, epochs=1), tmp_path / "held", data=_data(), progress=False)
    assert held.history[0]["train_samples"] == 40


def test_unset_options_keep_the_identity_of_older_runs():
    from snnbp.config import params_to_dict
    from snnbp.train import params_hash

    resolved = params_to_dict(_params_with({}))
    older = json.loads(json.dumps(resolved))
    del older["train"]["validation"]  # a run recorded before the option existed
    assert params_hash(resolved) == params_hash(older)
    assert params_hash(params_to_dict(_params_with({"validation": 20}))) != params_hash(resolved)


def test_a_validation_split_that_leaves_nothing_to_train_on_is_refused(tmp_path):
    from snnbp.config import ConfigError

    with pytest.raises(ConfigError, match="train.validation"):
        fit(_params_with({"validation": 60}), tmp_path / "run", data=_data(), progress=False)


def test_summary_lines_and_curves_show_the_selected_model(tmp_path):
    from snnbp.plots import learning_curves
    from snnbp.runs import summary_lines

    fit(_params_with({"validation": 20}, epochs=3), tmp_path / "run", data=_data(), progress=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    text = summary_lines(metrics)
    assert f"selected_epoch: {metrics['selected_epoch']}" in text and "model_checkpoint: best.pt" in text
    assert "selected_epoch" not in summary_lines({**metrics, "selected_epoch": None})
    figure = learning_curves(metrics["history"], "toy")
    assert {line.get_label() for line in figure.axes[1].get_lines()} >= {
        "validation (hold-out)",
        "test",
        f"selected on validation (epoch {metrics['selected_epoch']})",
    }

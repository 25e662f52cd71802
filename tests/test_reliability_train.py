"""Nothing lost, nothing run from a checkpoint, nothing non-finite saved (the training loop's side)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

import snnbp.train as train_module
from snnbp.config import params_from_dict
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.io import RunLockedError, atomic_write_json, run_lock
from snnbp.learner import Batch
from snnbp.train import CheckpointMismatchError, RunFolderError, UnsafeCheckpointError, fit, load_checkpoint

INFO = DatasetInfo(name="toy", key="toy", num_classes=3, input_shape=(6,), kind="image")


def _data():
    generator = torch.Generator().manual_seed(0)
    centres = torch.randn(3, 6, generator=generator) * 3
    labels = torch.randint(0, 3, (90,), generator=generator)
    inputs = centres[labels] + torch.randn(90, 6, generator=generator)
    return LabelledSplit(inputs[:60], labels[:60]), LabelledSplit(inputs[60:], labels[60:]), INFO


def _params(epochs: int = 2, lr: float = 0.01):
    return params_from_dict(
        {
            "name": "toy",
            "method": "ann",
            "notebook": "04_train_ann.ipynb",
            "seed": 5,
            "data": {"dataset": "mnist"},
            "train": {"epochs": epochs, "batch_size": 8},
            "model": {"hidden": [7], "lr": lr},
        },
        "test",
    )


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_record_of_other_params_without_a_checkpoint_is_never_overwritten(tmp_path):
    fit(_params(lr=0.5), tmp_path / "other", data=_data(), progress=False)
    committed = tmp_path / "committed"  # as committed when the checkpoint is too large to keep
    committed.mkdir()
    for name in ("run.json", "metrics.json"):
        shutil.copy(tmp_path / "other" / name, committed / name)
    before = _snapshot(committed)
    with pytest.raises(CheckpointMismatchError, match="run.json records a run of other params"):
        fit(_params(), committed, data=_data(), progress=False)
    assert _snapshot(committed) == before


def test_results_without_any_record_are_never_overwritten(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "metrics.json").write_text('{"test_accuracy": 0.9}\n')
    with pytest.raises(RunFolderError, match="holds results .*metrics.json.* but no run record"):
        fit(_params(), folder, data=_data(), progress=False)
    assert (folder / "metrics.json").read_text() == '{"test_accuracy": 0.9}\n'


def test_a_completed_run_is_left_exactly_as_it_is(tmp_path):
    first = fit(_params(), tmp_path / "run", data=_data(), progress=False)
    before = _snapshot(tmp_path / "run")
    again = fit(_params(), tmp_path / "run", data=_data(), progress=False)
    assert _snapshot(tmp_path / "run") == before
    assert again.metrics["test_accuracy"] == first.metrics["test_accuracy"]
    assert torch.equal(again.predictions, first.predictions)


def test_a_completed_record_without_its_checkpoint_is_not_retrained(tmp_path):
    fit(_params(), tmp_path / "run", data=_data(), progress=False)
    (tmp_path / "run" / "checkpoint.pt").unlink()
    before = _snapshot(tmp_path / "run")
    with pytest.raises(RunFolderError, match="completed run of these params, but .*checkpoint.pt is absent"):
        fit(_params(), tmp_path / "run", data=_data(), progress=False)
    assert _snapshot(tmp_path / "run") == before


def test_provenance_keeps_the_first_start_and_appends_each_resume(tmp_path):
    folder = tmp_path / "run"
    fit(_params(epochs=3), folder, data=_data(), progress=False, stop_after_epoch=1)
    first = json.loads((folder / "run.json").read_text())
    fit(_params(epochs=3), folder, data=_data(), progress=False, stop_after_epoch=2)
    fit(_params(epochs=3), folder, data=_data(), progress=False)
    record = json.loads((folder / "run.json").read_text())
    assert record["start_utc"] == first["start_utc"] and record["git"] == first["git"]
    assert record["first_start"]["status"] == "failed" and record["first_start"]["epochs_trained"] == 1
    assert [r["resumed_from_epoch"] for r in record["resumes"]] == [1, 2]
    assert [r["epochs_trained"] for r in record["resumes"]] == [1, 1]
    assert [r["status"] for r in record["resumes"]] == ["failed", "completed"]
    for entry in record["resumes"]:
        assert (
            {"commit", "dirty"} <= set(entry["git"]) and entry["hostname"] and entry["start_utc"] <= entry["stop_utc"]
        )
    assert record["status"] == "completed" and "error" not in record and record["metrics"]["epochs"] == 3
    state = load_checkpoint(folder / "checkpoint.pt")
    assert state["git"] == record["resumes"][-1]["git"]  # the commit that trained the last epoch


def test_a_run_that_died_silently_is_marked_so_on_resume(tmp_path):
    folder = tmp_path / "run"
    fit(_params(epochs=3), folder, data=_data(), progress=False, stop_after_epoch=1)
    record = json.loads((folder / "run.json").read_text())
    record["status"] = "running"  # as a kill -9 leaves it
    (folder / "run.json").write_text(json.dumps(record))
    fit(_params(epochs=3), folder, data=_data(), progress=False)
    assert json.loads((folder / "run.json").read_text())["first_start"]["status"] == "died"


def test_a_locked_folder_is_refused(tmp_path):
    with run_lock(tmp_path / "run"):
        with pytest.raises(RunLockedError, match="in use by another run"):
            fit(_params(), tmp_path / "run", data=_data(), progress=False)
    assert not (tmp_path / "run" / "run.json").exists()
    fit(_params(), tmp_path / "run", data=_data(), progress=False)  # free again


def test_leftover_temporary_files_are_cleaned(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / ".checkpoint.pt.x1y2.tmp").write_bytes(b"half a checkpoint")
    fit(_params(), folder, data=_data(), progress=False)
    assert not list(folder.glob(".*.tmp"))


class _Diverging:
    """An ANN learner whose weights turn NaN in the last step of ``epoch`` (the loss of that step is still finite)."""

    def __init__(self, inner, epoch: int, steps: int):
        self.inner, self.epoch, self.steps, self.calls = inner, epoch, steps, 0
        self.network = inner.network

    def train_step(self, batch):
        stats = self.inner.train_step(batch)
        self.calls += 1
        if self.calls == self.epoch * self.steps:
            with torch.no_grad():
                next(self.inner.net.parameters()).fill_(float("nan"))
        return stats

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_divergence_in_an_epochs_last_step_is_never_saved(tmp_path, monkeypatch):
    real = train_module.build_learner
    monkeypatch.setattr(train_module, "build_learner", lambda *a, **k: _Diverging(real(*a, **k), epoch=2, steps=8))
    folder = tmp_path / "run"
    with pytest.raises(
        FloatingPointError,
        match=r"non-finite model state learner\['net'\].* after epoch 2; not saved. "
        r"The last good checkpoint is .*checkpoint.pt \(epoch 1\)",
    ):
        fit(_params(epochs=3), folder, data=_data(), progress=False)
    state = load_checkpoint(folder / "checkpoint.pt")
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["learner"]["net"].values())
    assert json.loads((folder / "run.json").read_text())["status"] == "failed"


def test_a_learners_nan_error_gains_the_epoch_and_batch(tmp_path, monkeypatch):
    real = train_module.build_learner

    class Raising(_Diverging):
        def train_step(self, batch):
            self.calls += 1
            if self.calls == 8 + 3:
                raise FloatingPointError("non-finite gradient dL/dw in layer fc1")
            return self.inner.train_step(batch)

    monkeypatch.setattr(train_module, "build_learner", lambda *a, **k: Raising(real(*a, **k), epoch=0, steps=8))
    with pytest.raises(
        FloatingPointError,
        match=r"^non-finite gradient dL/dw in layer fc1 at epoch 2, batch 3 of 8; "
        r"the run stops here. The last good checkpoint is .*\(epoch 1\)$",
    ):
        fit(_params(epochs=3), tmp_path / "run", data=_data(), progress=False)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "payload-ran"
    crafted = tmp_path / "checkpoint.pt"
    torch.save({"params": {}, "learner": {}, "epoch": 1, "x": _Payload(marker)}, crafted)
    with pytest.raises(UnsafeCheckpointError, match="refused: the file holds Python objects.*could run code"):
        load_checkpoint(crafted)
    assert not marker.exists()
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(crafted, folder / "checkpoint.pt")
    with pytest.raises(UnsafeCheckpointError):
        fit(_params(), folder, data=_data(), progress=False)  # resume refuses it too
    assert not marker.exists()


def test_committed_checkpoints_load_safely():
    root = Path(__file__).resolve().parents[1] / "results"
    for path in sorted(root.glob("*/*/*.pt")):
        state = load_checkpoint(path)
        assert state["params_hash"], path


def test_state_that_would_not_load_back_is_never_saved():
    with pytest.raises(
        TypeError, match=r"checkpoint\['learner'\]\['stats'\] is a .*MagnitudeStats|is a builtins.object"
    ):
        train_module.check_loadable({"learner": {"stats": object()}})
    train_module.check_loadable({"a": [1, 2.0, "x", None, torch.zeros(2), torch.float32, torch.Size([2])]})


def test_records_are_valid_json_even_with_non_finite_numbers(tmp_path):
    atomic_write_json(tmp_path / "m.json", {"a": float("nan"), "b": [float("inf"), 1.0], "c": {"d": -math.inf}})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name} token")) == {
        "a": None,
        "b": [None, 1.0],
        "c": {"d": None},
    }


def test_a_damaged_checkpoint_is_called_damaged_not_unsafe(tmp_path):
    from snnbp.train import CorruptCheckpointError

    (tmp_path / "garbage.pt").write_bytes(b"garbage")
    with pytest.raises(CorruptCheckpointError, match="cannot read the checkpoint") as error:
        load_checkpoint(tmp_path / "garbage.pt")
    assert not isinstance(error.value, UnsafeCheckpointError)


@pytest.mark.parametrize("method", ["ann", "stdbp"])
def test_a_learner_state_is_a_copy_that_later_training_leaves_unchanged(method):
    """torch's optimiser (and module) ``state_dict`` hand out live tensors; the learners' must not."""
    from snnbp.methods import method_module

    module = method_module(method)
    info = DatasetInfo(name="toy", key="toy", num_classes=3, input_shape=(6, 6), kind="image")
    model = (
        module.ModelParams(hidden=(8,), t_max=5.0, t_silent=10.0)
        if method == "stdbp"
        else module.ModelParams(hidden=(8,))
    )
    learner = module.build_learner(model, info, seed=1)
    generator = torch.Generator().manual_seed(2)
    images = (torch.rand(12, 6, 6, generator=generator) * 255).to(torch.uint8)
    labels = torch.arange(12) % 3
    batch = Batch(images, labels, torch.arange(12), "train")
    learner.train_step(batch)
    state = learner.state_dict()
    frozen = [t.clone() for t in _tensors(state)]
    learner.train_step(batch)
    assert all(torch.equal(a, b) for a, b in zip(_tensors(state), frozen))


def _tensors(value) -> list[torch.Tensor]:
    """Every tensor in a nested state (dicts, lists), in a fixed order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for key in sorted(value, key=str) for t in _tensors(value[key])]
    if isinstance(value, list | tuple):
        return [t for item in value for t in _tensors(item)]
    return []

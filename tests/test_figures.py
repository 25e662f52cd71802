"""``snnbp figures``: a run's figures redrawn from its records, never by training."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

from snnbp import results_view as rv
from snnbp.config import params_from_dict
from snnbp.data.fetch import is_complete
from snnbp.figures import PredictionsMismatchError, predictions_from_checkpoint, render_run, write_predictions

needs_mnist = pytest.mark.skipif(not is_complete("mnist"), reason="MNIST not fetched (make data)")


def _fake_run(root: Path, *, predictions: bool) -> Path:
    folder = root / "cpu" / "stdbp_caltech"
    folder.mkdir(parents=True)
    history = [{"epoch": e, "train_loss": 1.0 / e, "test_accuracy": 0.5 + 0.1 * e} for e in (1, 2)]
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "method": "stdbp",
                "dataset": "Caltech-101 face/motorbike",
                "dataset_key": "caltech_face_motor",
                "network": "80000-100-2",
                "epochs": 2,
                "test_accuracy": 0.75,
                "history": history,
            }
        )
    )
    (folder / "run.json").write_text(
        json.dumps(
            {
                "status": "completed",
                "params": {"method": "stdbp", "model": {"kernel": "alpha"}, "data": {"dataset": "caltech_face_motor"}},
            }
        )
    )
    if predictions:
        write_predictions(folder, [0, 1, 1, 1], [0, 1, 0, 1])
    return folder


def test_render_draws_both_figures_from_stored_predictions(tmp_path):
    folder = _fake_run(tmp_path, predictions=True)
    report = render_run(folder)
    assert sorted(p.name for p in report.written) == ["confusion_matrix.png", "learning_curves.png"]
    assert not report.skipped and all(p.stat().st_size > 1000 for p in report.written)


def test_without_predictions_the_confusion_matrix_is_left_as_it_is(tmp_path):
    folder = _fake_run(tmp_path, predictions=False)
    (folder / "figures").mkdir()
    (folder / "figures" / "confusion_matrix.png").write_bytes(b"old")
    report = render_run(folder, evaluate=True)  # no checkpoint to evaluate either
    assert [p.name for p in report.written] == ["learning_curves.png"]
    assert "no stored predictions" in report.skipped["confusion_matrix.png"]
    assert (folder / "figures" / "confusion_matrix.png").read_bytes() == b"old"


def test_a_folder_without_a_training_record_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError):
        render_run(tmp_path)


def test_the_confusion_matrix_names_the_classes_and_keeps_the_title_off_the_colour_bar():
    from snnbp import plots

    fig = plots.confusion_matrix([0, 1, 1], [0, 1, 0], 2, "a long title " * 8, class_names=("face", "motorbike"))
    heat = fig.axes[0]
    assert [t.get_text() for t in heat.get_xticklabels()] == ["face", "motorbike"]
    assert heat.get_title() == "" and "2 of 3 test images correct" in fig._suptitle.get_text()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title_box, bar_box = fig._suptitle.get_window_extent(renderer), fig.axes[1].get_window_extent(renderer)
    assert title_box.y0 >= bar_box.y1


def test_learning_curves_name_the_loss_and_mark_the_selected_epoch():
    from snnbp import plots

    history = [
        {"epoch": e, "train_loss": 1.0 / e, "test_accuracy": 0.5, "validation_accuracy": 0.4 + 0.1 * (e == 2)}
        for e in (1, 2, 3)
    ]
    fig = plots.learning_curves(history, "t", loss_name=rv.LOSS_NAMES["hm2bp"])
    ax_loss, ax_acc = fig.axes
    assert "margin loss" in ax_loss.get_ylabel()
    labels = [line.get_label() for line in ax_acc.get_lines()]
    assert "validation (hold-out)" in labels and "selected on validation (epoch 2)" in labels
    assert all(float(t).is_integer() for t in ax_acc.get_xticks())


@needs_mnist
def test_fit_stores_predictions_and_the_cli_redraws_from_them(tmp_path):
    from snnbp.train import fit

    params = params_from_dict(
        {
            "name": "ann_figures",
            "method": "ann",
            "notebook": "04_train_ann.ipynb",
            "seed": 1,
            "data": {"dataset": "mnist", "train_limit": 300, "test_limit": 200},
            "train": {"epochs": 1, "batch_size": 50},
            "model": {"hidden": [16]},
        },
        "test",
    )
    run_dir = tmp_path / "cpu" / "ann_figures"
    result = fit(params, run_dir, progress=False)
    stored = rv.read_predictions(run_dir)
    assert stored is not None and stored[0] == result.predictions.tolist() and len(stored[1]) == 200
    assert json.loads((run_dir / "metrics.json").read_text())["test_samples"] == 200
    done = subprocess.run(
        [sys.executable, "-m", "snnbp", "figures", str(run_dir)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "confusion_matrix.png" in done.stdout and "learning_curves.png" in done.stdout
    # a run recorded before predictions were stored: evaluated once, checked, stored
    (run_dir / rv.PREDICTIONS_NAME).unlink()
    report = render_run(run_dir, evaluate=True)
    assert len(report.written) == 2 and rv.read_predictions(run_dir) == stored
    with pytest.raises(PredictionsMismatchError):
        predictions_from_checkpoint(run_dir, result.metrics["test_accuracy"] + 0.01, "checkpoint.pt")

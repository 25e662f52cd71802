"""``snnbp run`` streams the epoch lines while the notebook runs and ends with the headline metric;
its kernels use local sockets (no warning about TCP without encryption)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from snnbp.cli import headline
from snnbp.data.fetch import is_complete


@pytest.mark.skipif(not is_complete("mnist"), reason="MNIST not fetched (make data)")
def test_run_streams_epoch_lines_and_ends_with_the_headline(tmp_path):
    params = {
        "name": "ann_stream",
        "profile": "testprofile",
        "method": "ann",
        "notebook": "04_train_ann.ipynb",
        "seed": 1,
        "data": {"dataset": "mnist", "train_limit": 300, "test_limit": 100},
        "train": {"epochs": 2, "batch_size": 100, "num_threads": 1},
        "model": {"hidden": [8]},
    }
    folder = tmp_path / "testprofile"
    folder.mkdir()
    (folder / "ann.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run(
        [sys.executable, "-m", "snnbp", "run", str(folder / "ann.yaml"), "--output-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(" |")[0] for line in epochs] == ["epoch 1", "epoch 2"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert lines[-1] == f"test_accuracy={metrics['test_accuracy']:.4f}"
    assert "without encryption" not in done.stderr and "without encryption" not in done.stdout
    stored = json.dumps(json.loads((tmp_path / "run" / "04_train_ann.ipynb").read_text()))
    assert "it/s" not in stored  # no bar in the stored notebook


def test_headline_of_an_evaluation_and_of_a_folder_without_metrics(tmp_path):
    assert headline(tmp_path, "ann") is None
    (tmp_path / "metrics.json").write_text(
        json.dumps({"test_accuracy": 0.97351, "energy_per_image_uj": 1.61658, "power_mw": 6.7341, "latency_ms": 0.24})
    )
    assert (
        headline(tmp_path, "yoso")
        == "test_accuracy=0.9735 energy_per_image_uj=1.6166 power_mw=6.7341 latency_ms=0.2400"
    )
    assert headline(tmp_path, "stdbp") == "test_accuracy=0.9735"

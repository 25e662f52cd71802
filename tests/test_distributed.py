"""Data-parallel training (torch.distributed, gloo): two processes train the weights one process trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import data_parallel_cases as cases
from snnbp.config import ConfigError, params_from_dict
from snnbp.data.fetch import is_complete
from snnbp.distributed import DataParallel, check_shards, shard_bounds
from snnbp.learner import Batch
from snnbp.methods import method_module
from snnbp.train import fit, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
TOLERANCE = {"hm2bp_torch": 1e-10, "hm2bp_event": 1e-10, "stdbp": 1e-5, "ann": 1e-5}
"""Largest absolute weight difference allowed: float64 for HM2-BP, float32 for STDBP and the ANN
(their models compute in float32; the two processes sum the batch's gradients in another order)."""

needs_mnist = pytest.mark.skipif(not is_complete("mnist"), reason="MNIST not fetched (make data)")


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
    }


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    """Every case trained over two local gloo processes (one ``torchrun``)."""
    out = tmp_path_factory.mktemp("data_parallel")
    done = subprocess.run(
        [*TORCHRUN, str(ROOT / "tests" / "data_parallel_cases.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        env=_environment(),
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


@pytest.mark.parametrize("case", list(cases.CASES))
def test_two_gloo_processes_train_the_weights_of_one(two_processes, tmp_path, case):
    one = fit(cases.params(case), tmp_path / case, progress=False, data=cases.data())
    two = load_checkpoint(two_processes / case / "checkpoint.pt")
    assert two["epoch"] == 3
    expected = cases.weights(one.learner.state_dict())
    for got, want in zip(cases.weights(two["learner"]), expected, strict=True):
        assert got.dtype == want.dtype and torch.allclose(got, want, rtol=0.0, atol=TOLERANCE[case])
    untrained = method_module(cases.params(case).method).build_learner(cases.params(case).model, cases.INFO, seed=3)
    assert any(not torch.allclose(w, w0) for w, w0 in zip(expected, cases.weights(untrained.state_dict())))
    for mine, theirs in zip(one.history, two["history"]):  # the epoch's loss and sample count are the global batch's
        assert theirs["train_samples"] == mine["train_samples"] == 30
        assert theirs["train_loss"] == pytest.approx(mine["train_loss"], rel=1e-5)
        assert theirs["test_accuracy"] == mine["test_accuracy"]
    record = json.loads((two_processes / case / "run.json").read_text())
    assert record["status"] == "completed" and record["processes"] == 2


def test_a_data_parallel_run_stopped_and_resumed_equals_one_process_straight(two_processes, tmp_path):
    one = fit(cases.params(cases.RESUMED), tmp_path / "straight", progress=False, data=cases.data())
    resumed = load_checkpoint(two_processes / f"{cases.RESUMED}_resumed" / "checkpoint.pt")
    for got, want in zip(cases.weights(resumed["learner"]), cases.weights(one.learner.state_dict()), strict=True):
        assert torch.allclose(got, want, rtol=0.0, atol=1e-10)
    record = json.loads((two_processes / f"{cases.RESUMED}_resumed" / "run.json").read_text())
    assert record["status"] == "completed" and record["resumes"][0]["resumed_from_epoch"] == 1
    # rank 0 alone writes, and only the run's own files (no other rank's, no temporary left)
    names = {p.name for p in (two_processes / f"{cases.RESUMED}_resumed").iterdir()}
    assert "checkpoint.pt" in names and names <= {"checkpoint.pt", "metrics.json", "run.json", "test_predictions.json"}


def test_shards_are_contiguous_and_cover_the_batch():
    for size in (2, 7, 30):
        bounds = [shard_bounds(size, rank, 3 if size >= 3 else 2) for rank in range(3 if size >= 3 else 2)]
        assert bounds[0][0] == 0 and bounds[-1][1] == size
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        assert max(b - a for a, b in bounds) - min(b - a for a, b in bounds) <= 1
    group = DataParallel(rank=1, world_size=2)
    batch = Batch(torch.arange(7), torch.arange(7), torch.arange(7), "train")
    part = group.shard(batch)
    assert part.labels.tolist() == [3, 4, 5, 6] and group.share == pytest.approx(4 / 7) and group.global_size == 7


def test_a_batch_that_leaves_a_process_empty_is_refused_before_any_work():
    check_shards(30, 7, 2)
    with pytest.raises(ConfigError, match=r"'train.batch_size' \(1\) .* gives a batch of 1, fewer samples than the 2"):
        check_shards(60000, 1, 2)
    with pytest.raises(ConfigError, match="gives a batch of 1"):
        check_shards(29, 7, 2)  # the last batch holds one sample


def test_hm2bp_with_fresh_encoding_is_refused_for_data_parallel_training():
    params = params_from_dict(
        {
            "name": "x",
            "method": "hm2bp",
            "notebook": "10_train_hm2bp.ipynb",
            "seed": 1,
            "data": {"dataset": "mnist"},
            "train": {"epochs": 1, "batch_size": 4},
            "model": {**cases.HM2BP, "fixed_encoding": False},
        },
        "test",
    )
    learner = method_module("hm2bp").build_learner(params.model, cases.INFO, seed=1)
    with pytest.raises(ConfigError, match="key 'model.fixed_encoding' is false"):
        DataParallel(rank=0, world_size=2).attach(learner, "hm2bp")


@needs_mnist
def test_snnbp_train_over_two_processes_writes_one_run_and_then_has_nothing_to_do(tmp_path):
    folder = tmp_path / "prof"
    folder.mkdir()
    path = folder / "ann_dp.yaml"
    path.write_text(
        json.dumps(
            {
                "name": "ann_dp",
                "profile": "prof",
                "method": "ann",
                "notebook": "04_train_ann.ipynb",
                "seed": 2,
                "data": {"dataset": "mnist", "train_limit": 300, "test_limit": 100},
                "train": {"epochs": 2, "batch_size": 50, "num_threads": 1},
                "model": {"hidden": [8]},
            }
        )
    )
    command = [
        sys.executable,
        "-m",
        "snnbp",
        "train",
        str(path),
        "--output-dir",
        str(tmp_path / "run"),
        "--processes",
        "2",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_environment())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1].startswith("test_accuracy=")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "completed" and record["processes"] == 2
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=_environment())
    assert again.returncode == 0 and "nothing to do" in again.stdout + again.stderr

"""The command line: evaluate reproduces a run's accuracy, table joins runs with the papers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from snnbp.config import params_from_dict
from snnbp.data.fetch import is_complete
from snnbp.table import build_table
from snnbp.train import fit

needs_mnist = pytest.mark.skipif(not is_complete("mnist"), reason="MNIST not fetched (make data)")


def _snnbp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnbp", *args], capture_output=True, text=True, timeout=300)


@needs_mnist
def test_evaluate_reproduces_the_recorded_accuracy(tmp_path):
    params = params_from_dict(
        {
            "name": "ann_eval",
            "method": "ann",
            "notebook": "04_train_ann.ipynb",
            "seed": 1,
            "data": {"dataset": "mnist", "train_limit": 500, "test_limit": 300},
            "train": {"epochs": 1, "batch_size": 50},
            "model": {"hidden": [16]},
        },
        "test",
    )
    result = fit(params, tmp_path / "run", progress=False)
    done = _snnbp("evaluate", str(tmp_path / "run" / "checkpoint.pt"))
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("accuracy=") and float(last.split("=")[1]) == pytest.approx(
        result.metrics["test_accuracy"], abs=1e-9
    )


def test_evaluate_on_a_corrupt_checkpoint_fails_clearly(tmp_path):
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"garbage")
    done = _snnbp("evaluate", str(bad))
    assert done.returncode != 0 and "cannot read the checkpoint" in done.stderr


def test_run_with_a_malformed_params_file_fails_clearly(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmethod: ann\n")
    done = _snnbp("run", str(bad))
    assert done.returncode == 2 and "missing key" in done.stderr and str(bad) in done.stderr


def test_table_joins_metrics_with_paper_numbers(tmp_path):
    run = tmp_path / "cpu" / "hm2bp_mnist_fc"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "method": "hm2bp",
                "dataset": "MNIST",
                "dataset_key": "mnist",
                "network": "784-800-10",
                "epochs": 3,
                "test_accuracy": 0.975,
                "best_test_accuracy": 0.976,
                "samples_per_second": 500.0,
                "train_seconds": 10.0,
                "peak_rss_mb": 100.0,
            }
        )
    )
    (run / "run.json").write_text(
        json.dumps({"status": "completed", "git": {"commit": "abcdef1234567", "dirty": False}})
    )
    evaluation = tmp_path / "cpu" / "yoso_mnist"
    evaluation.mkdir()
    (evaluation / "metrics.json").write_text(json.dumps({"method": "yoso", "test_accuracy": 0.97, "power_mw": 5.0}))
    frame, text = build_table(tmp_path, write=True)
    assert list(frame["run"]) == ["hm2bp_mnist_fc"]  # evaluations are not training rows
    assert frame.loc[0, "paper_best"] == pytest.approx(0.9893)
    assert "97.50 %" in text and "98.93 %" in text and "V (best, log)" in text
    assert (tmp_path / "summary.csv").is_file() and (tmp_path / "summary.md").is_file()


def _fake_run(root: Path, profile: str, name: str, status: str = "completed", accuracy: float = 0.9) -> None:
    run = root / profile / name
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(
        json.dumps(
            {
                "method": "stdbp",
                "dataset": "MNIST",
                "dataset_key": "mnist",
                "network": "784-100-10",
                "epochs": 1,
                "test_accuracy": accuracy,
                "best_test_accuracy": accuracy,
            }
        )
    )
    (run / "run.json").write_text(json.dumps({"status": status, "git": {"commit": "0123456789ab", "dirty": False}}))


def test_table_writes_the_tracked_summaries_only_when_asked_and_never_smoke_rows(tmp_path):
    _fake_run(tmp_path, "cpu", "kept_run", accuracy=0.9512)
    _fake_run(tmp_path, "cpu", "running_run", status="running", accuracy=0.4321)
    _fake_run(tmp_path, "smoke", "smoke_run", accuracy=0.1234)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold table\n<!-- results:end -->\nrest\n")
    frame, text = build_table(tmp_path)  # the default prints every row and writes nothing
    assert set(frame["run"]) == {"kept_run", "running_run", "smoke_run"} and "12.34 %" in text
    assert not (tmp_path / "summary.csv").exists() and not (tmp_path / "summary.md").exists()
    assert "old table" in readme.read_text()
    build_table(tmp_path, write=True, readme=readme)
    for written in (tmp_path / "summary.md", tmp_path / "summary.csv", readme):
        content = written.read_text()
        assert "kept_run" in content and "smoke_run" not in content and "running_run" not in content, written
    assert "old table" not in readme.read_text() and readme.read_text().endswith("<!-- results:end -->\nrest\n")


def _seeded_run(root: Path, name: str, seed: int, accuracy: float, best: float, lr: float = 0.001) -> None:
    params = {
        "name": name,
        "method": "stdbp",
        "notebook": "20_train_stdbp.ipynb",
        "profile": "cpu",
        "seed": seed,
        "data": {"dataset": "mnist"},
        "train": {"epochs": 1, "batch_size": 64, "num_threads": seed},
        "model": {"hidden": [100], "lr": lr},
    }
    _fake_run(root, "cpu", name, accuracy=accuracy)
    metrics_path = root / "cpu" / name / "metrics.json"
    metrics_path.write_text(json.dumps({**json.loads(metrics_path.read_text()), "best_test_accuracy": best}))
    record = json.loads((root / "cpu" / name / "run.json").read_text())
    (root / "cpu" / name / "run.json").write_text(json.dumps({**record, "params": params}))


def test_runs_that_differ_only_in_the_seed_are_one_row_with_mean_and_sd(tmp_path):
    _seeded_run(tmp_path, "net-seed3", 3, 0.96, 0.97)
    _seeded_run(tmp_path, "net", 1, 0.95, 0.96)
    _seeded_run(tmp_path, "net-seed2", 2, 0.97, 0.98)  # threads differ too: not part of a run's identity
    _seeded_run(tmp_path, "net-lr0.01", 1, 0.50, 0.50, lr=0.01)
    frame, text = build_table(tmp_path, write=True)
    assert len(frame) == 4  # one row per run in the frame and in summary_runs.csv
    groups = pd.read_csv(tmp_path / "summary.csv")
    net = groups[groups["run"] == "net"].iloc[0]
    assert (net["seeds"], net["runs"], net["seed"]) == (3, "net, net-seed2, net-seed3", "1, 2, 3")
    assert net["test_accuracy"] == pytest.approx(0.96) and net["test_accuracy_sd"] == pytest.approx(0.01)
    assert net["best_test_accuracy"] == pytest.approx(0.97) and net["best_test_accuracy_sd"] == pytest.approx(0.01)
    alone = groups[groups["run"] == "net-lr0.01"].iloc[0]
    assert alone["seeds"] == 1 and pd.isna(alone["test_accuracy_sd"])
    assert "| 3 | 96.00 ± 1.00 % | 97.00 ± 1.00 % |" in text and "| 1 | 50.00 % | 50.00 % |" in text
    assert len(pd.read_csv(tmp_path / "summary_runs.csv")) == 4


def test_the_table_command_writes_only_with_its_flag(tmp_path):
    _fake_run(tmp_path, "cpu", "kept_run")
    _fake_run(tmp_path, "smoke", "smoke_run")
    done = _snnbp("table", "--results", str(tmp_path))
    assert done.returncode == 0 and "smoke_run" in done.stdout, done.stderr
    assert not (tmp_path / "summary.md").exists()
    done = _snnbp("table", "--results", str(tmp_path), "--write-readme")
    assert done.returncode == 0 and "written: summary.csv" in done.stdout, done.stderr
    assert (
        "smoke_run" not in (tmp_path / "summary.md").read_text()
        and "kept_run" in (tmp_path / "summary.csv").read_text()
    )


def test_python_dash_m_and_help():
    done = _snnbp("--help")
    assert done.returncode == 0 and "evaluate" in done.stdout and "table" in done.stdout


@pytest.mark.parametrize(
    ("method", "key", "network", "paper_dataset"),
    [
        ("hm2bp", "nmnist_subset", "2312-800-10", "N-MNIST"),
        ("hm2bp", "fsdd", "78-400-10", "TI46-Alpha"),
        ("stdbp", "caltech_face_motor", "80000-100-2", "Caltech face/motorbike"),
        ("stdbp", "fashion_mnist", "784-800-10", "Fashion-MNIST"),
    ],
)
def test_every_dataset_of_a_cpu_run_finds_its_paper_row(method, key, network, paper_dataset):
    from snnbp.targets import find_target

    assert find_target(method, key, network).paper_dataset == paper_dataset


@pytest.mark.parametrize(
    ("network", "paper_best"),
    [("784-800-10", 0.88), ("28x28-16C3-P2-32C3-P2-800-128-10", 0.90)],
)
def test_a_fully_connected_and_a_convolutional_run_find_their_own_paper_number(network, paper_best):
    from snnbp.targets import find_target

    assert find_target("stdbp", "fashion_mnist", network).paper_best == paper_best


def test_table_names_the_subset_a_run_used():
    from snnbp.table import dataset_label

    assert dataset_label("MNIST", {"train_limit": 20000, "test_limit": None}) == "MNIST (first 20,000 train)"
    assert (
        dataset_label("MNIST", {"train_limit": 3000, "test_limit": 1000})
        == "MNIST (first 3,000 train, first 1,000 test)"
    )
    assert dataset_label("MNIST", {"train_limit": None}) == "MNIST"

"""The read-only results view: recorded runs as tables, titles from params, the results figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

from snnbp import results_view as rv
from snnbp.classes import EMNIST_BYMERGE, class_names
from snnbp.plots import results as plots_results
from snnbp.targets import OTHER_CHIPS

ROOT = Path(__file__).resolve().parents[1]


def _run(
    root: Path,
    profile: str,
    name: str,
    *,
    method: str = "stdbp",
    key: str = "mnist",
    dataset: str = "MNIST",
    network: str = "784-400-10",
    model: dict | None = None,
    data: dict | None = None,
    status: str = "completed",
    standin: bool = False,
    validation: bool = False,
) -> Path:
    folder = root / profile / name
    folder.mkdir(parents=True)
    history = [
        {
            "epoch": e,
            "train_loss": 1.0 / e,
            "train_accuracy": 0.5 + 0.1 * e,
            "test_accuracy": 0.6 + 0.1 * e,
            **({"validation_accuracy": 0.65 + 0.1 * e - (0.2 if e == 3 else 0)} if validation else {}),
        }
        for e in (1, 2, 3)
    ]
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "method": method,
                "dataset": dataset,
                "dataset_key": key,
                "is_standin": standin,
                "network": network,
                "epochs": 3,
                "test_accuracy": 0.8,
                "best_test_accuracy": 0.9,
                "best_epoch": 3,
                "selected_epoch": 2 if validation else None,
                "history": history,
            }
        )
    )
    (folder / "run.json").write_text(
        json.dumps(
            {
                "status": status,
                "params": {"method": method, "model": model or {}, "data": {"dataset": key, **(data or {})}},
            }
        )
    )
    return folder


def test_method_labels_name_the_psp_kernel():
    assert rv.method_label("stdbp", {"kernel": "alpha"}) == "alpha-PSP + STDBP"
    assert rv.method_label("stdbp", {"kernel": "relpsp"}) == "ReL-PSP + STDBP"
    assert rv.method_label("stdbp", {}) == "ReL-PSP + STDBP"
    assert rv.method_label("hm2bp", {}) == "HM2-BP" and rv.method_label("ann") == "ANN"


def test_a_title_names_method_kernel_network_subset_test_images_and_profile(tmp_path):
    folder = _run(tmp_path, "cpu", "alpha_mnist_fc", model={"kernel": "alpha"}, data={"train_limit": 20000})
    title = rv.read_run(folder).title()
    assert title == "alpha-PSP + STDBP 784-400-10 on MNIST (first 20,000 train), 10,000 test images (cpu profile)"
    assert "ReL-PSP" not in title


def test_test_images_come_from_stored_predictions_first(tmp_path):
    folder = _run(tmp_path, "cpu", "letters", method="hm2bp", key="letters_synthetic", dataset="Spoken letters A-Z")
    assert rv.read_run(folder).test_images is None  # nothing records it
    (folder / rv.PREDICTIONS_NAME).write_text(json.dumps({"predictions": [0, 1, 2], "labels": [0, 1, 1]}))
    assert rv.read_run(folder).test_images == 3
    assert rv.read_predictions(folder) == ([0, 1, 2], [0, 1, 1])


def test_the_runs_table_joins_paper_numbers_flags_stand_ins_and_skips_runs_in_progress(tmp_path):
    _run(tmp_path, "cpu", "stdbp_mnist_fc", network="784-800-10")
    _run(
        tmp_path,
        "cpu",
        "hm2bp_fsdd",
        method="hm2bp",
        key="fsdd",
        dataset="FSDD (stand-in)",
        network="78-400-10",
        standin=True,
    )
    _run(tmp_path, "cpu", "hm2bp_mnist_fc", method="hm2bp", status="running")
    _run(tmp_path, "smoke", "stdbp_mnist_fc")
    runs = rv.recorded_runs(tmp_path, profiles=["cpu"])
    table = rv.runs_table(runs)
    assert list(table["run"]) == ["hm2bp_fsdd", "stdbp_mnist_fc"]
    row = table.set_index("run").loc["stdbp_mnist_fc"]
    assert row["paper_best"] == pytest.approx(0.985) and row["paper_provenance"] == "~"
    assert bool(table.set_index("run").loc["hm2bp_fsdd", "is_standin"])
    text = rv.format_runs(table)
    assert "[stand-in]" in text and "98.50" in text and "80.00" in text
    assert len(rv.recorded_runs(tmp_path, profiles=["cpu"], completed_only=False)) == 3


def test_histories_keep_the_validation_curve_and_the_selected_epoch(tmp_path):
    _run(tmp_path, "cpu", "stdbp_mnist_fc", validation=True)
    histories = rv.histories_table(rv.recorded_runs(tmp_path))
    assert set(histories["split"]) == {"train", "validation", "test"}
    assert set(histories["selected_epoch"]) == {2} and histories["epoch"].dtype.kind == "i"


def test_the_chips_table_holds_the_published_chips_the_paper_and_the_recorded_model(tmp_path):
    folder = tmp_path / "cpu" / "yoso_mnist"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "method": "yoso",
                "energy_per_image_uj": 1.5,
                "latency_ms": 0.25,
                "test_accuracy": 0.97,
                "network": "784-800-10",
            }
        )
    )
    (folder / "run.json").write_text(json.dumps({"status": "completed"}))
    chips = rv.chips_table(rv.recorded_runs(tmp_path))
    assert len(chips) == len(OTHER_CHIPS) + 2
    assert list(chips["kind"]).count("simulated") == 1 and list(chips["kind"]).count("paper") == 1
    paper = chips[chips["kind"] == "paper"].iloc[0]
    assert paper["energy_low_uj"] == pytest.approx(0.751 * 47.71, rel=1e-3) and paper["latency_low_ms"] == 47.71
    text = rv.format_chips(chips)
    assert "µJ" in text and "not given" in text and "3,300" in text and "Renner et al." in text


def test_runs_of_several_seeds_are_one_row_with_mean_sd_and_error_bars(tmp_path):
    for name, seed, accuracy in (("net", 1, 0.80), ("net-seed2", 2, 0.84), ("other", 1, 0.5)):
        folder = _run(tmp_path, "cpu", name)
        metrics = json.loads((folder / "metrics.json").read_text())
        (folder / "metrics.json").write_text(json.dumps({**metrics, "test_accuracy": accuracy}))
        record = json.loads((folder / "run.json").read_text())
        record["params"].update(name=name, seed=seed, train={"epochs": 3, "lr": 0.1 if name == "other" else 0.2})
        (folder / "run.json").write_text(json.dumps(record))
    groups = rv.by_seed(rv.runs_table(rv.recorded_runs(tmp_path)))
    assert list(groups["run"]) == ["net", "other"] and list(groups["seeds"]) == [2, 1]
    net = groups.iloc[0]
    assert net["test_accuracy"] == pytest.approx(0.82) and net["test_accuracy_sd"] == pytest.approx(0.02 * 2**0.5)
    assert net["runs"] == "net, net-seed2" and "82.00 ± 2.83" in rv.format_runs(groups)
    figure = plots_results.runs_vs_paper(groups, "seeds")
    assert any(text.get_text() == "2 seeds" for text in figure.axes[0].texts)


def test_the_results_figures_draw_from_tables(tmp_path):
    _run(tmp_path, "cpu", "a", model={"kernel": "alpha"}, validation=True)
    _run(tmp_path, "cpu", "b", method="hm2bp", key="fsdd", dataset="FSDD", network="78-400-10", standin=True)
    runs = rv.recorded_runs(tmp_path)
    figures = [
        plots_results.runs_vs_paper(rv.runs_table(runs), "runs"),
        plots_results.curves_by_method(rv.histories_table(runs), "curves"),
        plots_results.chips_comparison(rv.chips_table(runs), "chips"),
    ]
    assert [len(f.axes) for f in figures] == [1, 2, 2]
    assert any("µJ" in ax.get_xlabel() for ax in figures[2].axes)
    assert all(float(t).is_integer() for t in figures[1].axes[0].get_xticks())


def test_the_results_view_imports_no_method_and_no_training_loop():
    code = (
        "import sys, snnbp.results_view, snnbp.plots.results; "
        "bad = [m for m in sys.modules if m in ('snnbp.train', 'snnbp.runs') or m.split('.')[:2] in "
        "(['snnbp', 'hm2bp'], ['snnbp', 'stdbp'], ['snnbp', 'ann'], ['snnbp', 'yoso'])]; print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("module", ["analysis", "data", "hm2bp", "results", "stdbp", "yoso"])
def test_a_figure_module_imports_no_method_no_analysis_and_no_training_loop(module):
    code = (
        f"import sys, snnbp.plots.{module}; "
        "bad = [m for m in sys.modules if m in ('snnbp.train', 'snnbp.runs', 'snnbp.datasets') or m.split('.')[:2] in "
        "(['snnbp', 'hm2bp'], ['snnbp', 'stdbp'], ['snnbp', 'ann'], ['snnbp', 'yoso'], ['snnbp', 'problem_analysis'])]; "
        "print(bad)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize("module", ["problem_analysis", "yoso.study", "results_view", "table"])
def test_an_analysis_reads_runs_without_importing_the_training_loop(module):
    code = (
        f"import sys, snnbp.{module}; "
        "print([m for m in sys.modules if m in ('snnbp.train', 'snnbp.runs', 'snnbp.distributed', 'snnbp.sweep')])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_results_notebook_reads_results_only():
    notebook = json.loads((ROOT / "notebooks" / "90_results.ipynb").read_text())
    source = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    for forbidden in ("snnbp.train", "runs.train", "fit(", "evaluate", "plots.save", "write"):
        assert forbidden not in source, forbidden


def test_class_names_of_every_dataset_of_a_run():
    assert class_names("caltech_face_motor") == ("face", "motorbike")
    assert "".join(class_names("letters_synthetic")) == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert len(EMNIST_BYMERGE) == 47 and "".join(EMNIST_BYMERGE[36:]) == "abdefghnqrt"
    assert class_names("fashion_mnist")[9] == "ankle boot"
    assert class_names("mnist", 12) is None and class_names("unknown") is None

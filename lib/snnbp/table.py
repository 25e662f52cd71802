"""``snnbp table``: every run's metrics joined with the papers' numbers and its provenance.

The table is printed; the tracked copies (``results/summary.csv``, ``results/summary.md`` and the
README's results section) are written only when asked (``snnbp table --write-readme``), and hold
only the completed runs of the shared profiles: never a smoke run (:data:`UNTRACKED_PROFILES`) and
never a run in progress, which exist only on the machine that made them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from snnbp.io import atomic_write_bytes
from snnbp.methods import METHODS
from snnbp.paths import results_dir
from snnbp.targets import find_target

COLUMNS = [
    "profile", "run", "method", "dataset", "network", "epochs", "test_accuracy", "best_test_accuracy",
    "paper_best", "paper_mean", "paper_provenance", "samples_per_second", "train_seconds", "peak_rss_mb",
    "status", "commit", "dirty",
]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def dataset_label(name: str | None, data: dict[str, Any]) -> str | None:
    """The dataset's name, plus the sample limits of the run's ``data:`` section when it used a subset."""
    limits = [f"first {data[key]:,} {split}" for key, split in (("train_limit", "train"), ("test_limit", "test"))
              if data.get(key) is not None]
    return f"{name} ({', '.join(limits)})" if name and limits else name


def collect_rows(root: Path) -> list[dict[str, Any]]:
    """One row per ``<root>/<profile>/<run>/metrics.json`` that records a training run."""
    rows = []
    for metrics_path in sorted(root.glob("*/*/metrics.json")):
        metrics = _read_json(metrics_path)
        if "test_accuracy" not in metrics or metrics.get("method") not in METHODS:
            continue  # not a training run (e.g. an accelerator evaluation)
        run = _read_json(metrics_path.with_name("run.json"))
        target = find_target(metrics["method"], metrics.get("dataset_key", ""), str(metrics.get("network", "")))
        rows.append({
            "profile": metrics_path.parent.parent.name,
            "run": metrics_path.parent.name,
            "method": metrics["method"],
            "dataset": dataset_label(metrics.get("dataset"), run.get("params", {}).get("data", {})),
            "network": metrics.get("network"),
            "epochs": metrics.get("epochs"),
            "test_accuracy": metrics.get("test_accuracy"),
            "best_test_accuracy": metrics.get("best_test_accuracy"),
            "paper_best": target.paper_best if target else None,
            "paper_mean": target.paper_mean if target else "",
            "paper_provenance": target.provenance if target else "",
            "samples_per_second": metrics.get("samples_per_second"),
            "train_seconds": metrics.get("train_seconds"),
            "peak_rss_mb": metrics.get("peak_rss_mb"),
            "status": run.get("status", "unknown"),
            "commit": (run.get("git", {}).get("commit") or "")[:10],
            "dirty": run.get("git", {}).get("dirty"),
        })
    return rows


def _percent(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{100 * float(value):.2f} %"


def markdown_table(frame: pd.DataFrame) -> str:
    """A compact Markdown table of the runs (accuracies in percent)."""
    header = "| profile | run | method | dataset | network | epochs | test acc. | best test acc. | paper best | paper mean | prov. | samples/s | status | commit |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in frame.to_dict("records"):
        speed = "" if row["samples_per_second"] is None or pd.isna(row["samples_per_second"]) else f"{row['samples_per_second']:.0f}"
        lines.append(
            f"| {row['profile']} | {row['run']} | {row['method']} | {row['dataset']} | {row['network']} | {row['epochs']} | "
            f"{_percent(row['test_accuracy'])} | {_percent(row['best_test_accuracy'])} | {_percent(row['paper_best'])} | "
            f"{row['paper_mean']} | {row['paper_provenance']} | {speed} | {row['status']} | {row['commit']}{'+dirty' if row['dirty'] else ''} |"
        )
    return "\n".join(lines) + "\n"


README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


def update_readme(readme: Path, table: str) -> bool:
    """Replace the text between the README's results markers by ``table``; False when no markers."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    atomic_write_bytes(readme, f"{head}{README_START}\n{table}{README_END}{tail}".encode())
    return True


UNTRACKED_PROFILES = ("smoke",)
"""Profiles whose runs are local checks, never written into the tracked summaries or the README."""


def tracked_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the tracked summaries show: completed runs outside :data:`UNTRACKED_PROFILES`."""
    keep = ~frame["profile"].isin(UNTRACKED_PROFILES) & (frame["status"] == "completed")
    return frame[keep].reset_index(drop=True)


SUMMARY_HEADER = ("# Results\n\nGenerated by `snnbp table --write-readme` from every completed `results/*/*/metrics.json` "
                  "outside the smoke profile; test-set accuracies. `paper best` is the paper's best test accuracy "
                  "(provenance: V verified, R review, ~ recalled and unverified). A dataset that is not the paper's "
                  "own says so in its name.\n\n")


def write_summaries(root: Path, frame: pd.DataFrame, readme: Path | None = None) -> pd.DataFrame:
    """Write ``<root>/summary.csv``, ``<root>/summary.md`` and (when given) the README's results section
    from :func:`tracked_rows` of ``frame``; return those rows."""
    tracked = tracked_rows(frame)
    text = markdown_table(tracked)
    atomic_write_bytes(root / "summary.csv", tracked.to_csv(index=False).encode())
    atomic_write_bytes(root / "summary.md", (SUMMARY_HEADER + text).encode())
    if readme is not None:
        update_readme(readme, text)
    return tracked


def build_table(root: Path | None = None, *, write: bool = False, readme: Path | None = None) -> tuple[pd.DataFrame, str]:
    """Collect every run under ``root`` (default ``results/``) into a frame and its Markdown table.

    Args:
        root: the results folder.
        write: also write the tracked summaries (:func:`write_summaries`: no smoke rows, no runs in
            progress) into ``root``, and the README's section when ``readme`` is given.
        readme: the README whose results section to replace (only with ``write``).
    """
    root = Path(root) if root is not None else results_dir()
    frame = pd.DataFrame(collect_rows(root), columns=COLUMNS)
    if write:
        write_summaries(root, frame, readme)
    return frame, markdown_table(frame)

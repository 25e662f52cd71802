"""``snnbp table``: every run's metrics joined with the papers' numbers and its provenance.

Runs that differ only in their seed (same profile, same params but ``name`` and ``seed``) are one
row: their accuracies as mean ± sample standard deviation over the seeds (column ``seeds``), the
final model's (``test_accuracy``) and the best epoch's on the test set (``best_test_accuracy``)
apart; ``results/summary_runs.csv`` keeps one row per run.

The table is printed; the tracked copies (``results/summary.csv``, ``results/summary.md`` and the
README's results section) are written only when asked (``snnbp table --write-readme``), and hold
only the completed runs of the shared profiles: never a smoke run (:data:`UNTRACKED_PROFILES`) and
never a run in progress, which exist only on the machine that made them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from snnbp.config import run_identity
from snnbp.io import atomic_write_bytes
from snnbp.methods import METHODS
from snnbp.paths import results_dir
from snnbp.targets import find_target

COLUMNS = [
    "profile",
    "run",
    "method",
    "dataset",
    "network",
    "epochs",
    "test_accuracy",
    "best_test_accuracy",
    "paper_best",
    "paper_mean",
    "paper_provenance",
    "samples_per_second",
    "train_seconds",
    "peak_rss_mb",
    "status",
    "commit",
    "dirty",
    "seed",
    "seed_group",
]
"""One row per run (:func:`collect_rows`)."""

AVERAGED = ["test_accuracy", "best_test_accuracy", "samples_per_second", "train_seconds", "peak_rss_mb"]
"""The columns :func:`seed_summary` averages over the seeds of a group (with a ``<column>_sd``)."""

SEED_FREE_KEYS = ("name", "seed")
"""The params that runs of one seed group may differ in."""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def dataset_label(name: str | None, data: dict[str, Any]) -> str | None:
    """The dataset's name, plus the sample limits of the run's ``data:`` section when it used a subset."""
    limits = [
        f"first {data[key]:,} {split}"
        for key, split in (("train_limit", "train"), ("test_limit", "test"))
        if data.get(key) is not None
    ]
    return f"{name} ({', '.join(limits)})" if name and limits else name


def seed_group(params: Any) -> str:
    """The key shared by runs that differ only in the seed: sha256 (16 hex digits) of the canonical
    JSON of :func:`snnbp.config.run_identity` of the run's recorded params without
    :data:`SEED_FREE_KEYS`; ``""`` when the record holds no training params."""
    if not isinstance(params, dict) or not isinstance(params.get("train"), dict):
        return ""
    identity = {k: v for k, v in run_identity(params).items() if k not in SEED_FREE_KEYS}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _common(values: Sequence[Any]) -> Any:
    """The value all of ``values`` share, else their distinct values joined by ``", "``."""
    distinct = list(dict.fromkeys(None if v is None or (isinstance(v, float) and pd.isna(v)) else v for v in values))
    return distinct[0] if len(distinct) == 1 else ", ".join(str(v) for v in distinct)


def seed_summary(frame: pd.DataFrame, averaged: Sequence[str] = tuple(AVERAGED)) -> pd.DataFrame:
    """One row per seed group of ``frame`` (rows of one ``profile`` and one non-empty ``seed_group``;
    a row without a group stands alone).

    Each column of ``averaged`` becomes the mean over the group's runs and gains ``<column>_sd``,
    the sample standard deviation (ddof 1; NaN for a single seed); every other column keeps the
    value the runs share, else their distinct values joined by ``", "``; ``run`` is the run of the
    lowest seed (the base run of a sweep), ``runs`` lists all, ``seeds`` counts them.

    Args:
        frame: rows with at least ``profile``, ``run``, ``seed``, ``seed_group`` and ``averaged``.
    """
    keys = [group or f"run:{run}" for group, run in zip(frame["seed_group"], frame["run"])]
    rows = []
    for (profile, _), group in frame.assign(_key=keys).groupby(["profile", "_key"], sort=False):
        group = group.sort_values("seed", kind="stable")
        row = {column: _common(list(group[column])) for column in frame.columns if column not in averaged}
        for column in averaged:
            values = pd.to_numeric(group[column], errors="coerce").dropna()
            row[column] = float(values.mean()) if len(values) else None
            row[f"{column}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else None
        row.update(
            profile=profile,
            run=group["run"].iloc[0],
            runs=", ".join(group["run"]),
            seeds=len(group),
            seed=", ".join(str(s) for s in group["seed"]),
        )
        rows.append(row)
    columns = [*frame.columns, *(f"{c}_sd" for c in averaged), "runs", "seeds"]
    return pd.DataFrame(rows, columns=columns).sort_values(["profile", "run"], kind="stable").reset_index(drop=True)


def collect_rows(root: Path) -> list[dict[str, Any]]:
    """One row per ``<root>/<profile>/<run>/metrics.json`` that records a training run."""
    rows = []
    for metrics_path in sorted(root.glob("*/*/metrics.json")):
        metrics = _read_json(metrics_path)
        if "test_accuracy" not in metrics or metrics.get("method") not in METHODS:
            continue  # not a training run (e.g. an accelerator evaluation)
        run = _read_json(metrics_path.with_name("run.json"))
        target = find_target(metrics["method"], metrics.get("dataset_key", ""), str(metrics.get("network", "")))
        rows.append(
            {
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
                "seed": run.get("params", {}).get("seed"),
                "seed_group": seed_group(run.get("params")),
            }
        )
    return rows


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _percent(value: Any, sd: Any = None) -> str:
    """``98.60 %``, or ``98.60 ± 0.05 %`` with a standard deviation."""
    if _missing(value):
        return ""
    return f"{100 * float(value):.2f} %" if _missing(sd) else f"{100 * float(value):.2f} ± {100 * float(sd):.2f} %"


def _dirty_mark(dirty: Any) -> str:
    return "+dirty" if dirty is True else ("" if dirty in (False, None) else "+dirty (some)")


def markdown_table(frame: pd.DataFrame) -> str:
    """A compact Markdown table of :func:`seed_summary` rows (accuracies in percent, mean ± sd over
    the seeds where there are several)."""
    header = (
        "| profile | run | method | dataset | network | epochs | seeds | test acc. | best test acc. | paper best "
        "| paper mean | prov. | samples/s | status | commit |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in frame.to_dict("records"):
        speed = "" if _missing(row["samples_per_second"]) else f"{row['samples_per_second']:.0f}"
        lines.append(
            f"| {row['profile']} | {row['run']} | {row['method']} | {row['dataset']} | {row['network']} | {row['epochs']} | "
            f"{row['seeds']} | {_percent(row['test_accuracy'], row['test_accuracy_sd'])} | "
            f"{_percent(row['best_test_accuracy'], row['best_test_accuracy_sd'])} | {_percent(row['paper_best'])} | "
            f"{row['paper_mean']} | {row['paper_provenance']} | {speed} | {row['status']} | {row['commit']}{_dirty_mark(row['dirty'])} |"
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


SUMMARY_HEADER = (
    "# Results\n\nGenerated by `snnbp table --write-readme` from every completed `results/*/*/metrics.json` "
    "outside the smoke profile; test-set accuracies. Runs that differ only in the seed are one row: "
    "`seeds` counts them, accuracies are mean ± sample standard deviation over the seeds; `test acc.` "
    "is the final model's (chosen on a validation hold-out where the run has one), `best test acc.` "
    "the best epoch on the test set. `paper best` is the paper's best test accuracy "
    "(provenance: V verified, R review, ~ recalled and unverified). A dataset that is not the paper's "
    "own says so in its name. One row per run: `summary_runs.csv`.\n\n"
)


def write_summaries(root: Path, frame: pd.DataFrame, readme: Path | None = None) -> pd.DataFrame:
    """Write ``<root>/summary_runs.csv`` (one row per run), ``<root>/summary.csv`` and
    ``<root>/summary.md`` (one row per seed group) and (when given) the README's results section
    from :func:`tracked_rows` of ``frame``; return the tracked runs."""
    tracked = tracked_rows(frame)
    groups = seed_summary(tracked)
    text = markdown_table(groups)
    atomic_write_bytes(root / "summary_runs.csv", tracked.to_csv(index=False).encode())
    atomic_write_bytes(root / "summary.csv", groups.to_csv(index=False).encode())
    atomic_write_bytes(root / "summary.md", (SUMMARY_HEADER + text).encode())
    if readme is not None:
        update_readme(readme, text)
    return tracked


def build_table(
    root: Path | None = None, *, write: bool = False, readme: Path | None = None
) -> tuple[pd.DataFrame, str]:
    """Collect every run under ``root`` (default ``results/``) into a frame (one row per run) and
    the Markdown table of its seed groups (:func:`seed_summary`).

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
    return frame, markdown_table(seed_summary(frame))

"""The README's Papermill commands, run as written from the repository root (on tiny settings).

Each ``papermill`` line of the README's "Papermill directly" section runs with its output notebook
moved into a temporary folder and, appended, ``-y`` options that make the run tiny and an
``output_dir`` in the temporary folder (so no committed run is touched). The two refused
commands must fail with their one-line reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from snnbp.data.fetch import is_complete

ROOT = Path(__file__).resolve().parents[1]
PAPERMILL = Path(sys.executable).with_name("papermill")
needs_mnist = pytest.mark.skipif(not is_complete("mnist"), reason="MNIST not fetched (make data)")
TINY_TRAINING = "{data: {dataset: mnist, train_limit: 200, test_limit: 100}, train: {epochs: 1, batch_size: 100, num_threads: 1}, model: {kernel: relpsp, hidden: [16]}}"
TINY = {
    "20_train_stdbp.ipynb": ["-y", TINY_TRAINING],
    "30_yoso.ipynb": ["-y", "{test_images: 20, hm2bp_images: 4, mesh_sizes: [[3, 4]], hidden_sizes: [100]}"],
    "01_problem_analysis.ipynb": [
        "-y",
        "{sweep_points: 21, theory_patterns: 2, theory_neurons: 20, test_samples: 20, gradient_samples: 2}",
    ],
}


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def readme_commands() -> tuple[list[str], list[str]]:
    """``(commands, refused)``: the papermill lines of the section's first code block and of its refusals."""
    blocks = re.findall(r"```bash\n(.*?)```", readme_section("Papermill directly"), flags=re.S)
    lines = [
        [line.split("   #")[0].strip() for line in block.splitlines() if line.startswith("papermill ")]
        for block in blocks
    ]
    return lines[0], lines[1]


def _run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run(
        [str(PAPERMILL), *argv[1:], "--no-progress-bar"], cwd=ROOT, capture_output=True, text=True, timeout=900, env=env
    )


def _tiny(command: str, tmp_path: Path, index: int) -> tuple[list[str], Path | None]:
    argv = shlex.split(command)
    if "--help-notebook" in argv:
        return argv, None
    notebook = Path(argv[1]).name
    output = tmp_path / f"out{index}.ipynb"
    argv[2] = str(output)  # the output notebook, wherever the README puts it
    argv += TINY.get(notebook, [])
    if notebook.startswith(("04_", "10_", "20_")):
        argv += ["-p", "output_dir", str(tmp_path / f"run{index}")]
    return argv, output


def test_the_readme_names_the_commands():
    commands, refused = readme_commands()
    assert any(" -f params/cpu/" in c for c in commands) and any(" -p " in c for c in commands)
    assert any(" -y " in c for c in commands) and any("--help-notebook" in c for c in commands)
    assert any("30_yoso" in c for c in commands) and any("01_problem_analysis" in c for c in commands)
    assert not any("--cwd" in c for c in commands + refused)
    assert len(refused) == 2


@needs_mnist
@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(readme_commands()[0])))
def test_a_readme_command_runs_from_the_repository_root(index, tmp_path):
    command = readme_commands()[0][index]
    if "30_yoso" in command and not (ROOT / "results" / "cpu" / "hm2bp_mnist_fc" / "checkpoint.pt").is_file():
        pytest.skip("the YOSO study's HM2-BP checkpoint is not here (snnbp run params/cpu/hm2bp_mnist_fc.yaml)")
    argv, output = _tiny(command, tmp_path, index)
    done = _run(argv, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    if output is None:  # --help-notebook: every parameter has a type and a help text
        assert "Unknown type" not in done.stdout and "train: dict" in done.stdout
        return
    cells = json.loads(output.read_text())["cells"]
    assert not any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", []))
    if "-f params/cpu/" in command:  # the params file's profile reaches the titles and the run folder
        run = json.loads((tmp_path / f"run{index}" / "run.json").read_text())
        assert run["status"] == "completed" and run["params"]["profile"] == "cpu"
        injected = next(c for c in cells if "injected-parameters" in c["metadata"].get("tags", []))
        assert 'profile = "cpu"' in "".join(injected["source"])


@needs_mnist
@pytest.mark.parametrize(
    "index, reason", [(0, "unknown parameter 'epochs'"), (1, "these parameters are for notebooks/20_train_stdbp.ipynb")]
)
def test_a_refused_readme_command_fails_with_its_reason(index, reason, tmp_path):
    argv, _ = _tiny(readme_commands()[1][index], tmp_path, index)
    done = _run(argv, tmp_path)
    assert done.returncode != 0 and "ConfigError" in done.stderr and reason in done.stderr
    assert not list(tmp_path.glob("run*"))  # nothing was trained

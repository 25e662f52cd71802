"""The README's Python quickstart runs as written (its scratch folder moved into a temporary one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from snnbp.data.fetch import is_complete

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not is_complete("mnist"), reason="MNIST not fetched (make data)")
def test_the_readme_quickstart_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python quickstart\n") :]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    assert "load_params(" in code and "fit(" in code and "relpsp_spike_times(" in code and "study.load_stdbp(" in code
    code = code.replace("results/scratch/", f"{tmp_path}/")
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("784-800-10 ") and 0.0 < float(lines[0].split()[1]) <= 1.0
    assert float(lines[1]) == pytest.approx(float(lines[0].split()[1]))  # the saved model gives the recorded accuracy
    assert lines[2] == "tensor([[2.7500]])"
    accuracy, energy, latency = map(float, lines[3].split())
    assert 0.8 < accuracy <= 1.0 and energy > 0 and latency > 0
    assert (tmp_path / "stdbp_quickstart" / "checkpoint.pt").is_file()

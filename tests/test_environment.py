"""environment.yml (for conda users) must agree with pyproject.toml (the source of truth)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def _torch_range(requirement: str) -> str:
    return re.sub(r"\s", "", requirement.split("torch", 1)[1])


def test_torch_range_agrees():
    torch_req = next(d for d in _pyproject()["project"]["dependencies"] if d.startswith("torch"))
    conda_torch = next(d for d in _environment()["dependencies"] if isinstance(d, str) and d.startswith("pytorch"))
    assert _torch_range(torch_req) == _torch_range(conda_torch.replace("pytorch", "torch"))
    assert "<2.14" in _torch_range(torch_req), "an open-ended torch pulls a multi-GB CUDA build"


def test_python_floor_agrees():
    floor = _pyproject()["project"]["requires-python"]
    conda_python = next(d for d in _environment()["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert conda_python.replace("python", "") == floor


def test_pip_section_installs_the_project_with_dev_extras():
    pip_section = next(d["pip"] for d in _environment()["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip_section == ["-e .[dev]"]
    assert "dev" in _pyproject()["project"]["optional-dependencies"]


def test_forbidden_packages_absent():
    deps = " ".join(_pyproject()["project"]["dependencies"] + _pyproject()["project"]["optional-dependencies"]["dev"])
    assert "torchvision" not in deps and "torchaudio" not in deps and "tonic[" not in deps

"""snnbp installed as a library (``pip install .``, not editable): it finds the project from
``SNNBP_ROOT`` or the working directory and says so clearly when neither holds one; the command
line has a version and help for every argument; ``snnbp smoke`` refuses to run nothing.

The install goes into a temporary virtual environment with ``--no-deps --no-build-isolation
--no-index``: the dependencies (torch, ...) come from this environment's site-packages through a
``.pth`` file, never from a package index.
"""

from __future__ import annotations

import argparse
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from snnbp.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SNNBP_ROOT", "PYTHONPATH")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The ``bin/`` folder of a fresh venv holding a non-editable install of this tree."""
    base = tmp_path_factory.mktemp("library_install")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    target = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (target / "outer_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    source = base / "source"  # a copy, so the build leaves nothing in the working tree
    top = {".git", ".venv", ".build", "data", "results", "build", "benchmarks"}

    def ignore(folder: str, names: list[str]) -> list[str]:
        skipped = [n for n in names if n in ("__pycache__",) or n.endswith(".egg-info")]
        return skipped + ([n for n in names if n in top] if Path(folder) == ROOT else [])

    shutil.copytree(ROOT, source, ignore=ignore)
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=_clean_env(PIP_NO_INPUT="1"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    where = subprocess.run(
        [str(python), "-c", "import snnbp; print(snnbp.__file__)"],
        capture_output=True,
        text=True,
        cwd=base,
        env=_clean_env(),
    )
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr  # not the editable checkout
    return venv / "bin"


def _snnbp(bin_dir: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_dir / "snnbp"), *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=_clean_env(**env)
    )


def test_outside_a_project_every_command_says_where_it_looked(installed, tmp_path):
    done = _snnbp(installed, "smoke", cwd=tmp_path)
    assert done.returncode == 2
    assert "no snnbp project found" in done.stderr and "SNNBP_ROOT" in done.stderr and str(tmp_path) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_project_comes_from_snnbp_root_or_the_working_directory(installed, tmp_path):
    code = "from snnbp.paths import project_root, results_dir; print(project_root()); print(results_dir())"
    python = installed / "python"
    from_env = subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=_clean_env(SNNBP_ROOT=str(ROOT))
    )
    assert from_env.stdout.split() == [str(ROOT), str(ROOT / "results")], from_env.stderr
    from_cwd = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=ROOT, env=_clean_env())
    assert from_cwd.stdout.split()[0] == str(ROOT), from_cwd.stderr
    wrong = _snnbp(installed, "smoke", cwd=ROOT, SNNBP_ROOT=str(tmp_path))
    assert wrong.returncode == 2 and f"SNNBP_ROOT={tmp_path} does not hold an snnbp project" in wrong.stderr


def test_smoke_fails_when_it_finds_no_notebooks(installed, tmp_path):
    project = tmp_path / "empty_clone"
    (project / "notebooks").mkdir(parents=True)
    (project / "params").mkdir()
    shutil.copy(ROOT / "pyproject.toml", project)
    done = _snnbp(installed, "smoke", cwd=project)
    assert done.returncode == 2 and "no notebooks found in" in done.stderr and not (project / "results").exists()


def test_version(installed, tmp_path):
    from snnbp import __version__

    done = _snnbp(installed, "--version", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == f"snnbp {__version__}"


def _actions(parser: argparse.ArgumentParser, where: str = "snnbp"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{where} {name}")
        yield where, action


def test_every_argument_has_help():
    missing = [
        f"{where}: {action.dest}"
        for where, action in _actions(build_parser())
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert not missing
    assert sum(1 for _ in _actions(build_parser())) > 15

"""Progress bars: tqdm.auto where a person watches, nothing under TQDM_DISABLE=1 or in a log."""

from __future__ import annotations

from snnbp import progress


def test_bars_are_off_under_tqdm_disable(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress.bar(range(3)).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not progress.disabled_by_environment()


def test_bars_are_off_when_asked_and_outside_a_terminal(monkeypatch, capsys):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert progress.bar(range(3), progress=False).disable
    assert list(progress.bar(range(3))) == [0, 1, 2]


def test_epoch_lines_print_with_or_without_bars(monkeypatch, capsys):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    progress.line("epoch 1 | loss 0.5")
    progress.line("not shown", progress=False)
    assert capsys.readouterr().err == "epoch 1 | loss 0.5\n"


def test_the_library_uses_no_plain_tqdm():
    from pathlib import Path

    lib = Path(progress.__file__).parent
    for path in lib.rglob("*.py"):
        if path.name != "progress.py":
            assert "from tqdm" not in path.read_text() and "import tqdm" not in path.read_text(), path

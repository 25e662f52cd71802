"""Every result file is written atomically (through :mod:`snnbp.io`): a reader never sees half a file,
and a failed write leaves the previous file as it was."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from snnbp import plots  # noqa: E402
from snnbp.data.idx import read_idx, write_idx  # noqa: E402
from snnbp.io import atomic_write_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

WRITERS = {
    "write_text",
    "write_bytes",
    "savefig",
    "save",
    "savez",
    "savez_compressed",
    "to_csv",
    "to_json",
    "to_parquet",
    "to_pickle",
    "dump",
    "copy",
    "copyfile",
    "copy2",
    "move",
    "rename",
    "replace",
    "write_notebook",
}
"""Calls that write a file when given a path (``torch.save``, ``np.save``, ``json.dump`` to a handle,
``shutil.copy``, ``os.replace`` ...); ``str.replace`` and ``dict.copy`` are told apart below."""

ALLOWED = {
    ("lib/snnbp/plots/__init__.py", "save", "savefig"): "renders into a BytesIO that atomic_write_bytes then writes",
    ("lib/snnbp/encoding/events.py", "save", "savez_compressed"): "compresses into a BytesIO, written atomically",
    (
        "lib/snnbp/execution.py",
        "execute_notebook",
        "replace",
    ): "moves the executed notebook's temporary file into place",
}
"""Reviewed exceptions: (file, enclosing function, call) -> why the call does not write a result in place."""


MODULE_OPENERS = {"gzip", "bz2", "lzma", "io", "os", "codecs", "tarfile", "zipfile", "wave", "Image"}


def _mode(call: ast.Call) -> str | None:
    """The literal mode of an ``open`` call, "r" by default: ``open(path, mode)``, ``gzip.open(path, mode)``,
    ``Path.open(mode)`` or ``mode=``; None when it is not a literal."""
    func = call.func
    path_method = isinstance(func, ast.Attribute) and not (
        isinstance(func.value, ast.Name) and func.value.id in MODULE_OPENERS
    )
    position = 0 if path_method and func.attr == "open" else 1
    node = next((k.value for k in call.keywords if k.arg == "mode"), None)
    if node is None and len(call.args) > position:
        node = call.args[position]
    if node is None:
        return "r"
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _writes(call: ast.Call) -> str | None:
    """The name of the writing call ``call`` is, or None."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name in ("open", "fdopen", "NamedTemporaryFile"):
        mode = _mode(call)
        return name if mode is None or set(mode) & set("wax+") else None
    if name not in WRITERS:
        return None
    owner = func.value if isinstance(func, ast.Attribute) else None
    if name == "replace" and not (isinstance(owner, ast.Name) and owner.id in ("os", "shutil")):
        return None  # str.replace, dataclasses.replace
    if (
        name in ("copy", "move", "rename")
        and not (isinstance(owner, ast.Name) and owner.id in ("os", "shutil"))
        and not call.args
    ):
        return None  # dict.copy(), tensor.copy() ...
    if name == "save" and not (isinstance(owner, ast.Name) and owner.id in ("torch", "np", "numpy")):
        return None  # plots.save and the other helpers of this package are checked where they write
    if name in ("to_csv", "to_json") and not call.args and not any(k.arg == "path_or_buf" for k in call.keywords):
        return None  # returns the text; the caller writes it
    if name == "dump" and not (
        isinstance(owner, ast.Name) and (owner.id in ("json", "pickle") or (owner.id == "yaml" and len(call.args) > 1))
    ):
        return None  # yaml.dump(data) returns the text
    return name


def _violations(source: str, relative: str) -> list[str]:
    found = []
    tree = ast.parse(source)
    parents: dict[ast.AST, ast.AST] = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (name := _writes(node)) is None:
            continue
        function, up = "<module>", parents.get(node)
        while up is not None:
            if isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef)):
                function = up.name
                break
            up = parents.get(up)
        if (relative, function, name) not in ALLOWED:
            found.append(f"{relative}:{node.lineno} {function}: {name}(...)")
    return found


def _sources() -> list[tuple[str, str]]:
    files = [p for p in sorted((ROOT / "lib" / "snnbp").rglob("*.py")) if p.name != "io.py" or p.parent.name != "snnbp"]
    files += sorted((ROOT / "benchmarks").rglob("*.py"))
    out = [(p.read_text(), str(p.relative_to(ROOT))) for p in files]
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for index, cell in enumerate(json.loads(notebook.read_text())["cells"]):
            code = "".join(cell["source"]) if cell["cell_type"] == "code" else ""
            lines = [line for line in code.splitlines() if not line.lstrip().startswith(("%", "!"))]
            out.append(("\n".join(lines), f"{notebook.relative_to(ROOT)}[cell {index}]"))
    return out


def test_nothing_but_snnbp_io_writes_files_in_place():
    violations = [v for source, name in _sources() for v in _violations(source, name)]
    assert not violations, "write through snnbp.io (atomic_write_bytes/_text/_json, atomic_torch_save):\n" + "\n".join(
        violations
    )


@pytest.mark.parametrize(
    "snippet",
    [
        'open(p, "w")',
        'p.open("a")',
        "p.write_text(s)",
        "p.write_bytes(b)",
        "fig.savefig(p)",
        "torch.save(x, p)",
        "np.save(p, a)",
        "frame.to_csv(p)",
        "json.dump(x, handle)",
        "shutil.copy(a, b)",
        "os.replace(a, b)",
        'gzip.open(p, "wb")',
        "yaml.dump(x, handle)",
    ],
)
def test_the_guard_sees_each_kind_of_raw_write(snippet):
    assert _violations(f"def f():\n    {snippet}\n", "lib/snnbp/x.py")


@pytest.mark.parametrize(
    "snippet",
    [
        'open(p, "rb")',
        "open(p)",
        "s.replace('a', 'b')",
        "frame.to_csv(index=False)",
        "plots.save(fig, p)",
        "d.copy()",
        "yaml.dump(x)",
    ],
)
def test_the_guard_lets_reads_and_in_memory_calls_pass(snippet):
    assert not _violations(f"def f():\n    {snippet}\n", "lib/snnbp/x.py")


def test_a_figure_that_fails_to_render_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "figures" / "curve.png"
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    plots.save(fig, path)
    before = path.read_bytes()
    assert before.startswith(b"\x89PNG")

    def broken(target, **kwargs):
        if hasattr(target, "write"):
            target.write(b"half a figure")
        else:
            Path(target).write_bytes(b"half a figure")
        raise RuntimeError("renderer died")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError, match="renderer died"):
        plots.save(fig, path)
    plt.close(fig)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["curve.png"]


def test_idx_files_are_written_whole_and_deterministically(tmp_path):
    array = (np.arange(24).reshape(2, 3, 4) * 10).astype(np.uint8)
    write_idx(array, tmp_path / "a-idx3-ubyte.gz")
    first = (tmp_path / "a-idx3-ubyte.gz").read_bytes()
    write_idx(array, tmp_path / "a-idx3-ubyte.gz")
    assert (tmp_path / "a-idx3-ubyte.gz").read_bytes() == first
    assert (read_idx(tmp_path / "a-idx3-ubyte.gz") == array).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-idx3-ubyte.gz"]


def test_atomic_text_is_utf8(tmp_path):
    atomic_write_text(tmp_path / "r.md", "µJ per image\n")
    assert (tmp_path / "r.md").read_bytes() == "µJ per image\n".encode()

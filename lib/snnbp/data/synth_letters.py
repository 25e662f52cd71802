"""Generate spoken letters A-Z with Debian's espeak-ng and flite: a synthetic stand-in for TI46-Alpha.

TI46-Alpha has 16 speakers (8 female, 8 male) saying each letter 10 times for training and in
8 later sessions for testing. This generator mimics that design with :data:`VOICES` (20 clearly
distinct voices: 16 espeak-ng accent/voice-variant pairs, 4 flite voices): each voice says each
letter ``train_repetitions + test_repetitions`` times with a small seeded pitch and speed
variation; the first ``train_repetitions`` takes are the training set (same voices in both
sets, as in TI46). Letters are spoken as their US names ("zee", "double you").

Output (``<data_dir>/letters_synthetic`` by default): ``<voice>/<letter>_<take>.wav`` and
``manifest.json`` (one entry per file: file, letter, voice, engine, take, split, pitch,
speed, and the tool versions). Files are written atomically; an existing manifest with the same
settings is reused.

Command line: ``python -m snnbp.data.synth_letters [--out DIR] [--train N] [--test N] [--seed S]``.
Needs ``apt-get install -y espeak-ng flite``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from snnbp.data.base import MissingDatasetError
from snnbp.io import atomic_write_bytes, atomic_write_json
from snnbp.paths import data_dir
from snnbp.seeding import numpy_generator

LETTER_NAMES = {
    "a": "ay",
    "b": "bee",
    "c": "see",
    "d": "dee",
    "e": "ee",
    "f": "eff",
    "g": "jee",
    "h": "aitch",
    "i": "eye",
    "j": "jay",
    "k": "kay",
    "l": "ell",
    "m": "em",
    "n": "en",
    "o": "oh",
    "p": "pee",
    "q": "cue",
    "r": "ar",
    "s": "ess",
    "t": "tee",
    "u": "you",
    "v": "vee",
    "w": "double you",
    "x": "ex",
    "y": "why",
    "z": "zee",
}


@dataclass(frozen=True)
class Voice:
    """A synthetic speaker: ``engine`` ("espeak-ng" or "flite") and its voice name."""

    name: str
    engine: str
    voice: str


VOICES = (
    Voice("espeak-us-f1", "espeak-ng", "en-us+f1"),
    Voice("espeak-us-f2", "espeak-ng", "en-us+f2"),
    Voice("espeak-gb-f3", "espeak-ng", "en-gb+f3"),
    Voice("espeak-scotland-f4", "espeak-ng", "en-gb-scotland+f4"),
    Voice("espeak-caribbean-f5", "espeak-ng", "en-029+f5"),
    Voice("espeak-rp-annie", "espeak-ng", "en-gb-x-rp+Annie"),
    Voice("espeak-us-belinda", "espeak-ng", "en-us+belinda"),
    Voice("espeak-gb-linda", "espeak-ng", "en-gb+linda"),
    Voice("espeak-us-m1", "espeak-ng", "en-us+m1"),
    Voice("espeak-gb-m2", "espeak-ng", "en-gb+m2"),
    Voice("espeak-rp-m3", "espeak-ng", "en-gb-x-rp+m3"),
    Voice("espeak-lancaster-m4", "espeak-ng", "en-gb-x-gbclan+m4"),
    Voice("espeak-westmidlands-m6", "espeak-ng", "en-gb-x-gbcwmd+m6"),
    Voice("espeak-us-m7", "espeak-ng", "en-us+m7"),
    Voice("espeak-us-klatt2", "espeak-ng", "en-us+klatt2"),
    Voice("espeak-scotland-klatt4", "espeak-ng", "en-gb-scotland+klatt4"),
    Voice("flite-slt", "flite", "slt"),
    Voice("flite-rms", "flite", "rms"),
    Voice("flite-awb", "flite", "awb"),
    Voice("flite-kal16", "flite", "kal16"),
)
PITCH_JITTER = 0.08  # relative standard deviation of the pitch per take
SPEED_JITTER = 0.08  # relative standard deviation of the speaking rate per take


def default_folder() -> Path:
    """``<data_dir>/letters_synthetic``."""
    return data_dir() / "letters_synthetic"


def synthesis_command(voice: Voice, text: str, pitch: float, speed: float, out: Path) -> list[str]:
    """The command that writes ``text`` spoken by ``voice`` to ``out`` (WAV).

    ``pitch`` and ``speed`` are relative factors (1 = the voice's default): espeak-ng's pitch
    50 and 175 words per minute are scaled; flite's mean F0 is scaled (its voices' defaults
    differ, so the F0 is set relative to 100 Hz for male and 170 Hz for the female slt) and
    ``duration_stretch`` is ``1 / speed``.
    """
    if voice.engine == "espeak-ng":
        return [
            "espeak-ng",
            "-v",
            voice.voice,
            "-p",
            str(int(round(50 * pitch))),
            "-s",
            str(int(round(175 * speed))),
            "-w",
            str(out),
            text,
        ]
    base_f0 = 170.0 if voice.voice == "slt" else 100.0
    return [
        "flite",
        "-voice",
        voice.voice,
        "--setf",
        f"duration_stretch={1.0 / speed:.3f}",
        "--setf",
        f"int_f0_target_mean={base_f0 * pitch:.1f}",
        "-t",
        text,
        "-o",
        str(out),
    ]


def tool_versions() -> dict[str, str]:
    """Versions of espeak-ng and flite (raises MissingDatasetError naming the install command)."""
    missing = [tool for tool in ("espeak-ng", "flite") if shutil.which(tool) is None]
    if missing:
        raise MissingDatasetError(
            f"{', '.join(missing)} not installed; install with: apt-get install -y espeak-ng flite"
        )
    espeak = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout.strip()
    flite = subprocess.run(["flite", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    flite_version = next((line.strip() for line in flite.splitlines() if "version" in line), "flite")
    return {"espeak-ng": espeak, "flite": flite_version}


def plan(train_repetitions: int, test_repetitions: int, seed: int, voices: tuple[Voice, ...] = VOICES) -> list[dict]:
    """Every take to synthesise, with its seeded pitch and speed factors (deterministic)."""
    entries = []
    for voice in voices:
        rng = numpy_generator(seed, f"letters-synthetic/{voice.name}")
        for letter in LETTER_NAMES:
            for take in range(train_repetitions + test_repetitions):
                pitch, speed = 1.0 + PITCH_JITTER * rng.standard_normal(), 1.0 + SPEED_JITTER * rng.standard_normal()
                entries.append(
                    {
                        "file": f"{voice.name}/{letter}_{take:02d}.wav",
                        "letter": letter,
                        "voice": voice.name,
                        "engine": voice.engine,
                        "engine_voice": voice.voice,
                        "take": take,
                        "split": "train" if take < train_repetitions else "test",
                        "pitch": round(float(min(max(pitch, 0.7), 1.3)), 4),
                        "speed": round(float(min(max(speed, 0.7), 1.3)), 4),
                    }
                )
    return entries


def generate_letters(
    out: Path | None = None,
    *,
    train_repetitions: int = 8,
    test_repetitions: int = 4,
    seed: int = 0,
    voices: tuple[Voice, ...] = VOICES,
) -> Path:
    """Synthesise every take of :func:`plan` into ``out`` and write ``manifest.json`` last.

    Returns:
        The manifest path.
    """
    out = Path(out) if out is not None else default_folder()
    settings = {
        "train_repetitions": train_repetitions,
        "test_repetitions": test_repetitions,
        "seed": seed,
        "voices": [v.__dict__ for v in voices],
    }
    manifest = out / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("settings") == settings:
        return manifest
    versions = tool_versions()
    entries = plan(train_repetitions, test_repetitions, seed, voices)
    by_name = {v.name: v for v in voices}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "take.wav"
        for entry in entries:
            target = out / entry["file"]
            if not target.is_file():
                command = synthesis_command(
                    by_name[entry["voice"]], LETTER_NAMES[entry["letter"]], entry["pitch"], entry["speed"], scratch
                )
                subprocess.run(command, check=True, capture_output=True)
                atomic_write_bytes(target, scratch.read_bytes())
    atomic_write_json(manifest, {"settings": settings, "tools": versions, "utterances": entries})
    return manifest


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default <data_dir>/letters_synthetic)")
    parser.add_argument("--train", type=int, default=8, help="training takes per voice and letter")
    parser.add_argument("--test", type=int, default=4, help="test takes per voice and letter")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    manifest = generate_letters(args.out, train_repetitions=args.train, test_repetitions=args.test, seed=args.seed)
    print(f"wrote {manifest}")


if __name__ == "__main__":
    main()

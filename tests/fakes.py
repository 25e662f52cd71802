"""Small fake datasets written in the real on-disk formats and layouts (no network, no shared data).

Every writer packs its format by hand (independently of the readers under test).
"""

from __future__ import annotations

import gzip
import json
import struct
import wave
from pathlib import Path

import numpy as np
from PIL import Image


def nmnist_bytes(x, y, p, t) -> bytes:
    """40-bit N-MNIST events: x byte, y byte, polarity in bit 7 of byte 2, 23-bit timestamp (us)."""
    out = bytearray()
    for xi, yi, pi, ti in zip(x, y, p, t):
        out += bytes(
            [int(xi), int(yi), (int(pi) << 7) | ((int(ti) >> 16) & 0x7F), (int(ti) >> 8) & 0xFF, int(ti) & 0xFF]
        )
    return bytes(out)


def random_events(rng: np.random.Generator, count: int, duration_us: int = 320_000) -> dict[str, np.ndarray]:
    """Sorted random events on the 34 x 34 sensor."""
    return {
        "x": rng.integers(0, 34, count),
        "y": rng.integers(0, 34, count),
        "p": rng.integers(0, 2, count),
        "t": np.sort(rng.integers(0, duration_us, count)),
    }


def write_nmnist_tree(root: Path, per_digit: dict[str, int], seed: int = 0) -> dict[Path, dict[str, np.ndarray]]:
    """``root/{Train,Test}/<digit>/<NNNNN>.bin`` with ``per_digit[split]`` random recordings per digit."""
    rng = np.random.default_rng(seed)
    written = {}
    number = 1
    for split, count in per_digit.items():
        for digit in range(10):
            for _ in range(count):
                events = random_events(rng, int(rng.integers(50, 300)))
                path = root / split / str(digit) / f"{number:05d}.bin"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(nmnist_bytes(events["x"], events["y"], events["p"], events["t"]))
                written[path] = events
                number += 1
    return written


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """A gzip IDX file of uint8 data (magic 0x00000803 / 0x00000801, big-endian sizes)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def write_emnist_official(
    folder: Path, split: str, upright: dict[str, np.ndarray], labels: dict[str, np.ndarray]
) -> None:
    """The four official gz files of ``split``; images are stored transposed, as EMNIST does."""
    for part in ("train", "test"):
        write_idx_gz(folder / f"emnist-{split}-{part}-images-idx3-ubyte.gz", upright[part].transpose(0, 2, 1))
        write_idx_gz(folder / f"emnist-{split}-{part}-labels-idx1-ubyte.gz", labels[part])


def write_emnist_packed(folder: Path, images: np.ndarray, labels: np.ndarray, classes: str, per_sheet: int) -> None:
    """Lossless WebP sprite sheets ``X_test_A_to_B.webp`` (square, row-major 28 x 28 tiles, RGB grey) + ``test.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for first in range(0, len(images), per_sheet):
        tiles = images[first : first + per_sheet]
        side = int(np.ceil(np.sqrt(len(tiles))))
        sheet = np.zeros((side * side, 28, 28), dtype=np.uint8)
        sheet[: len(tiles)] = tiles
        grid = sheet.reshape(side, side, 28, 28).transpose(0, 2, 1, 3).reshape(side * 28, side * 28)
        name = f"X_test_{first}_to_{first + len(tiles) - 1}.webp"
        Image.fromarray(np.stack([grid] * 3, axis=-1)).save(folder / name, lossless=True)
        names.append(name)
    meta = {
        "width": 28,
        "height": 28,
        "files": names,
        "mapping": [ord(c) for c in classes],
        "id": [int(v) for v in labels],
        "bbox": [],
    }
    (folder / "test.json").write_text(json.dumps(meta))


def write_wav(path: Path, signal: np.ndarray, rate: int) -> None:
    """16-bit mono PCM WAV of ``signal`` in [-1, 1]."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.round(np.asarray(signal) * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())


def write_sphere(path: Path, signal: np.ndarray, rate: int) -> None:
    """Uncompressed 16-bit little-endian NIST SPHERE file (1024-byte header), TI46's format."""
    pcm = np.clip(np.round(np.asarray(signal) * 32767), -32768, 32767).astype("<i2")
    lines = [
        "NIST_1A",
        "   1024",
        f"sample_count -i {pcm.size}",
        f"sample_rate -i {rate}",
        "channel_count -i 1",
        "sample_n_bytes -i 2",
        "sample_byte_format -s2 01",
        "sample_coding -s3 pcm",
        "end_head",
    ]
    header = ("\n".join(lines) + "\n").encode().ljust(1024, b" ")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + pcm.tobytes())


def tone(frequency: float, seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A short windowed tone with a little noise (a stand-in utterance)."""
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return 0.5 * np.sin(2 * np.pi * frequency * t) * np.hanning(t.size) + noise


def write_fsdd_tree(root: Path, speakers=("jackson", "theo"), digits=(0, 1), indices=(0, 7), rate: int = 8000) -> None:
    """``root/recordings/<digit>_<speaker>_<index>.wav`` (8 kHz)."""
    for d in digits:
        for s, speaker in enumerate(speakers):
            for i in indices:
                write_wav(
                    root / "recordings" / f"{d}_{speaker}_{i}.wav",
                    tone(300 + 200 * d + 20 * s, 0.3, rate, seed=i),
                    rate,
                )


def write_ti46_tree(
    root: Path, letters="ab", speakers=("f1", "m1"), takes=(0, 1), sessions=(1,), tokens=(0, 1), suffix=".wav"
) -> None:
    """``root/ti_alpha/{train,test}/<spk>/`` with TI46 file names, at 12.5 kHz."""
    writer = write_wav if suffix == ".wav" else write_sphere
    for k, letter in enumerate(letters):
        for speaker in speakers:
            for take in takes:
                writer(
                    root / "ti_alpha" / "train" / speaker / f"0{letter}{speaker}set{take}{suffix}",
                    tone(400 + 300 * k, 0.25, 12500, take),
                    12500,
                )
            for session in sessions:
                for token in tokens:
                    writer(
                        root / "ti_alpha" / "test" / speaker / f"0{letter}{speaker}s{session}t{token}{suffix}",
                        tone(400 + 300 * k, 0.25, 12500, token),
                        12500,
                    )


def write_caltech_tree(root: Path, counts: dict[str, int], seed: int = 0) -> None:
    """``root/{split}/{Face,Motor}/*.jpg`` grayscale JPEGs of varied sizes (faces bright blobs, motorbikes bars)."""
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        for cls in ("Face", "Motor"):
            for i in range(count):
                h, w = int(rng.integers(120, 200)), int(rng.integers(180, 300))
                yy, xx = np.mgrid[0:h, 0:w]
                if cls == "Face":
                    img = 255 * np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (2 * (h / 5) ** 2))
                else:
                    img = 255 * ((xx // 12) % 2)
                path = root / split / cls / f"image_{i + 1:04d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img.astype(np.uint8), mode="L").save(path, quality=95)

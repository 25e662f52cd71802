"""N-MNIST: real recordings (tonic's on-disk layout) and a saccade simulation from real MNIST.

Real data. The layout is the official one that ``tonic.datasets.NMNIST`` unpacks:
``<folder>/{Train,Test}/<digit>/<NNNNN>.bin`` (file number = MNIST index, label = folder name).
Here ``<data_root>/nmnist`` holds a real 1100-sample subset (1000 train, 100 test) in that
layout. :func:`download_nmnist` keeps tonic's official download for users with internet access;
nothing else in this module touches the network (tonic's dataset class downloads whenever fewer
than 10000 files are present, so the files are read with :func:`snnbp.encoding.events.read_nmnist_bin`).

Simulated data (:func:`simulate_nmnist`). Each MNIST digit is replayed along the recording's
three saccades (:func:`snnbp.encoding.events.saccade_displacement`) and a log-intensity change
detector emits events, which then go through exactly the pipeline of the real recordings
(stabilisation, 600 us bins, ``[540, 2312]`` rasters). Details and calibration in
:class:`SaccadeSimParams`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from snnbp.data.base import DataIntegrityError, DatasetInfo, LabelledSplit, MissingDatasetError
from snnbp.encoding.events import (
    NMNIST_BIN_US,
    NMNIST_CHANNELS,
    NMNIST_TIME_STEPS,
    SACCADE_MS,
    SENSOR_SIZE,
    SparseRasters,
    cached_rasters,
    nmnist_raster_indices,
    raster_indices,
    read_nmnist_bin,
    saccade_displacement,
)
from snnbp.paths import data_dir, data_root
from snnbp.seeding import derive_seed

FULL_SIZES = {"Train": 60000, "Test": 10000}
INPUT_SHAPE = (NMNIST_TIME_STEPS, NMNIST_CHANNELS)
MNIST_SIDE = 28
# Where MNIST pixel (row r, column c) lands on the 34 x 34 sensor at t = 0 (and, after
# stabilisation, at all times): (y, x) = (r + 1, c - 1). Measured on the real recordings: the
# stabilised event-count image correlates best (r = 0.79, 200 samples) with the MNIST image at
# this offset.
DIGIT_ORIGIN = (1, -1)


def default_folder() -> Path:
    """``<data_root>/nmnist``: the real recordings."""
    return data_root() / "nmnist"


def download_nmnist(save_to: str | Path) -> Path:
    """Download and unpack the full official N-MNIST with tonic (needs internet; never called in tests).

    Returns:
        The folder holding ``Train/`` and ``Test/`` (pass it to :func:`load_nmnist`).
    """
    import tonic

    for train in (True, False):
        dataset = tonic.datasets.NMNIST(save_to=str(save_to), train=train)
    return Path(dataset.location_on_system)


def list_recordings(folder: Path, split: str) -> tuple[list[Path], np.ndarray]:
    """Sorted ``.bin`` files of ``folder/split/<digit>/`` and their labels (the folder digit).

    Raises:
        MissingDatasetError: naming the folder and how to get the data.
    """
    split_dir = folder / split
    files = sorted(split_dir.glob("[0-9]/*.bin"))
    if not files:
        raise MissingDatasetError(
            f"N-MNIST recordings not found in {split_dir} (expected {split}/<digit>/NNNNN.bin). Put the "
            f"real files there (tonic's layout; set SNNBP_DATA_ROOT to the folder holding nmnist/), or "
            f"download the full set with snnbp.data.nmnist.download_nmnist(<folder>)"
        )
    labels = np.array([int(f.parent.name) for f in files], dtype=np.int64)
    return files, labels


SUMS_NAME = "SHA256SUMS"


def verify_recordings(folder: Path) -> int:
    """Check the recordings under ``folder`` against ``folder/SHA256SUMS`` when the corpus ships one.

    The file lists ``<sha256>  <Train|Test>/<digit>/<NNNNN>.bin`` (``sha256sum`` format). Every listed
    file must be present and match; a recording in ``Train/`` or ``Test/`` that is not listed is refused.

    Returns:
        The number of files verified (0 without a ``SHA256SUMS``).

    Raises:
        DataIntegrityError: naming the file (or the line of ``SHA256SUMS``) that fails.
    """
    import hashlib

    sums = folder / SUMS_NAME
    if not sums.is_file():
        return 0
    listed: dict[str, str] = {}
    for number, line in enumerate(sums.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64 or any(c not in "0123456789abcdef" for c in parts[0].lower()):
            raise DataIntegrityError(f"{sums}: line {number} is not '<sha256>  <path>': {line[:80]!r}")
        listed[parts[1].strip().lstrip("*")] = parts[0].lower()
    for relative, expected in listed.items():
        path = folder / relative
        if not path.is_file():
            raise DataIntegrityError(f"{path}: listed in {sums} but missing")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise DataIntegrityError(
                f"{path}: sha256 {digest} does not match {expected} in {sums} (damaged or replaced)"
            )
    for split in ("Train", "Test"):
        for path in sorted((folder / split).glob("[0-9]/*.bin")):
            if path.relative_to(folder).as_posix() not in listed:
                raise DataIntegrityError(f"{path}: a recording not listed in {sums}")
    return len(listed)


def read_recording(path: Path) -> np.ndarray:
    """:func:`snnbp.encoding.events.read_nmnist_bin`, with a format error naming the file."""
    try:
        return read_nmnist_bin(path)
    except ValueError as exc:
        raise DataIntegrityError(f"{path}: {exc}") from None


def recordings_to_rasters(files: list[Path]) -> SparseRasters:
    """Read, stabilise and bin each recording (ALGORITHMS.md 1.10).

    Shape:
        - Output: ``[len(files), 540, 2312]``.
    """
    flats = [nmnist_raster_indices(read_recording(f)) for f in files]
    return SparseRasters.from_lists(flats, NMNIST_TIME_STEPS, NMNIST_CHANNELS)


def load_nmnist(folder: Path | None = None) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Real N-MNIST recordings as stabilised 600 us rasters ``[N, 540, 2312]`` (sparse, bool).

    The name says "subset" (and ``is_standin`` is True) unless the folder holds all 70000 files.

    When the folder holds a ``SHA256SUMS``, every recording is checked against it first
    (:func:`verify_recordings`).

    Raises:
        MissingDatasetError: when ``folder/Train`` or ``folder/Test`` has no recordings.
        DataIntegrityError: a recording that fails its checksum or its format, naming the file.
    """
    folder = Path(folder) if folder is not None else default_folder()
    list_recordings(folder, "Train")
    verify_recordings(folder)
    splits = {}
    for split in ("Train", "Test"):
        files, labels = list_recordings(folder, split)
        splits[split] = LabelledSplit(recordings_to_rasters(files), torch.from_numpy(labels))
    total = len(splits["Train"]) + len(splits["Test"])
    full = all(len(splits[s]) == n for s, n in FULL_SIZES.items())
    name = "N-MNIST" if full else f"N-MNIST (real, {total}-sample subset)"
    key = "nmnist" if full else "nmnist_subset"
    info = DatasetInfo(name=name, key=key, num_classes=10, input_shape=INPUT_SHAPE, kind="raster", is_standin=not full)
    return splits["Train"], splits["Test"], info


@dataclass(frozen=True)
class SaccadeSimParams:
    """Parameters of the simulated N-MNIST recording.

    Model (per sensor pixel, sampled once per 600 us bin ``b``, ``t_b = 600 b`` us, for
    ``t_b <= 315 ms``):

    * luminance: the MNIST image (``I / 255``, Gaussian optical blur ``blur_px``), shifted by the
      smooth saccade displacement ``(dx(t), dy(t))`` (``saccade_displacement(t, smooth=True)``) with bilinear interpolation, placed at
      :data:`DIGIT_ORIGIN`; outside the digit the luminance is 0;
    * ``L = log(luminance + dark_level)``;
    * change detector with hysteresis: when ``|L - L_ref| >= theta`` the pixel fires once in
      this bin (several crossings in one bin make one event, as the binning would merge them)
      and ``L_ref`` moves by the whole multiples of ``theta`` crossed; after an event the pixel
      is blind for ``refractory_ms`` (changes during that time fire afterwards);
    * per-pixel threshold mismatch ``theta_i = theta * (1 + mismatch * z_i)``, ``z_i ~ N(0, 1)``,
      and initial reference ``L_ref = L(0) + u_i theta_i``, ``u_i ~ U(-1/2, 1/2)`` (the detector's
      state when a recording starts is unknown; without the offset every pixel whose light
      returns exactly to its start value would fire in the last bin), drawn per sample from a
      generator derived from ``(seed, "nmnist-simulated/<index>")``;
    * polarity bit: 1 for a decrease of the digit's luminance, 0 for an increase. In the real
      recordings the bit-1 events lie on the trailing edge of the moving (white) strokes
      (measured: during the first saccade, which moves the digit by +x, +y, their mean x and y
      are 0.9 and 3.5 px below those of bit-0 events), so this reproduces the recordings.

    The events then take the real data's path: stabilisation with rounding, 600 us bins,
    ``T = 540``. The defaults were calibrated so that the spikes per sample match the real
    1100-sample subset on the same MNIST digits (see the report in ``tests/test_data_nmnist.py``).

    Attributes:
        threshold: contrast threshold ``theta`` (natural-log units).
        dark_level: luminance of a black pixel relative to white (sets the log contrast).
        blur_px: standard deviation of the optical blur in sensor pixels (0 = none).
        refractory_ms: dead time after an event (0 = none).
        mismatch: relative standard deviation of the per-pixel threshold.
    """

    threshold: float = 0.45
    dark_level: float = 0.1
    blur_px: float = 0.7
    refractory_ms: float = 0.0
    mismatch: float = 0.05

    def tag(self) -> str:
        """Short stable hash of the parameters (part of every cache file name)."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of ``[n, H, W]`` float images (zero outside)."""
    if sigma <= 0:
        return images
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(images, sigma=(0, sigma, sigma), mode="constant", truncate=3.0)


def render_frames(padded: np.ndarray, margin: int, dx: float, dy: float) -> np.ndarray:
    """Sensor view of the padded digits displaced by ``(dx, dy)`` pixels (bilinear).

    Sensor pixel ``(y, x)`` shows the image at ``(row, col) = (y - r0 - dy, x - c0 - dx)`` with
    ``(r0, c0) = DIGIT_ORIGIN``; ``padded`` is the image with ``margin`` zero pixels around it.

    Shape:
        - padded: ``[n, 28 + 2 margin, 28 + 2 margin]``; output: ``[n, 34, 34]``.
    """
    row, col = -DIGIT_ORIGIN[0] - dy, -DIGIT_ORIGIN[1] - dx
    r0, c0 = int(np.floor(row)), int(np.floor(col))
    fr, fc = row - r0, col - c0
    r0, c0 = r0 + margin, c0 + margin
    s = SENSOR_SIZE

    def window(dr: int, dc: int) -> np.ndarray:
        return padded[:, r0 + dr : r0 + dr + s, c0 + dc : c0 + dc + s]

    return (
        ((1 - fr) * (1 - fc)) * window(0, 0)
        + ((1 - fr) * fc) * window(0, 1)
        + (fr * (1 - fc)) * window(1, 0)
        + (fr * fc) * window(1, 1)
    )


def simulate_saccade_events(
    images: np.ndarray, params: SaccadeSimParams, *, seed: int, first_index: int = 0, indices: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw sensor events of simulated saccade recordings of ``images`` (model in :class:`SaccadeSimParams`).

    Vectorised over images and pixels; one loop step per 600 us bin (the detector has state).

    Args:
        images: ``[n, 28, 28]`` uint8 MNIST digits.
        params: simulation parameters.
        seed: root seed; sample ``i`` uses ``derive_seed(seed, f"nmnist-simulated/{first_index + i}")``.
        first_index: global index of ``images[0]`` (keeps draws independent of chunking).
        indices: the global index of every image (``[n]``), instead of ``first_index + i``.

    Returns:
        ``(sample, x, y, p, t_us)`` int64 arrays, one entry per event (sensor coordinates).
    """
    n = images.shape[0]
    pixels = SENSOR_SIZE * SENSOR_SIZE
    margin = 10
    lum = _blur(images.astype(np.float32) / 255.0, params.blur_px)
    padded = np.pad(lum, ((0, 0), (margin, margin), (margin, margin)))
    indices = np.arange(n) + first_index if indices is None else np.asarray(indices)
    generators = [np.random.default_rng(derive_seed(seed, f"nmnist-simulated/{int(i)}")) for i in indices]
    z = np.stack([g.standard_normal(pixels) for g in generators])
    u = np.stack([g.uniform(-0.5, 0.5, pixels) for g in generators]).astype(np.float32)
    theta = np.maximum(params.threshold * (1.0 + params.mismatch * z), 1e-3).astype(np.float32)
    refractory_bins = params.refractory_ms * 1e3 / NMNIST_BIN_US
    n_bins = int(3 * SACCADE_MS * 1e3 // NMNIST_BIN_US)

    def log_frame(b: int) -> np.ndarray:
        dx, dy = saccade_displacement(np.array(b * NMNIST_BIN_US), smooth=True)
        return np.log(render_frames(padded, margin, float(dx), float(dy)).reshape(n, pixels) + params.dark_level)

    reference = log_frame(0) + u * theta
    last = np.full((n, pixels), -np.inf, dtype=np.float32)
    signs = np.zeros((n_bins + 1, n, pixels), dtype=np.int8)
    for b in range(1, n_bins + 1):
        steps = np.trunc((log_frame(b) - reference) / theta)
        fired = steps != 0
        if refractory_bins > 0:
            fired &= (b - last) > refractory_bins
            last = np.where(fired, np.float32(b), last)
        reference += np.where(fired, steps * theta, np.float32(0.0))
        signs[b] = np.sign(steps) * fired
    bins, sample, pixel = np.nonzero(signs)
    polarity = (signs[bins, sample, pixel] < 0).astype(np.int64)
    return sample, pixel % SENSOR_SIZE, pixel // SENSOR_SIZE, polarity, (bins * NMNIST_BIN_US).astype(np.int64)


def simulate_nmnist(
    images: np.ndarray | torch.Tensor,
    *,
    seed: int,
    params: SaccadeSimParams = SaccadeSimParams(),
    chunk: int = 128,
    first_index: int = 0,
) -> SparseRasters:
    """Simulated N-MNIST rasters of MNIST digits, binned exactly like the real recordings.

    Args:
        images: ``[N, 28, 28]`` uint8 MNIST digits.
        seed: root seed (the result is a deterministic function of images, params and seed).
        params: see :class:`SaccadeSimParams`.
        chunk: images simulated at once (memory only; the result does not depend on it).
        first_index: global index of ``images[0]``.

    Shape:
        - Output: ``[N, 540, 2312]`` sparse bool rasters.
    """
    images = np.asarray(images.cpu() if isinstance(images, torch.Tensor) else images)
    parts = []
    for start in range(0, images.shape[0], chunk):
        sample, x, y, p, t = simulate_saccade_events(
            images[start : start + chunk], params, seed=seed, first_index=first_index + start
        )
        keep, flat = raster_indices(x, y, p, t)
        parts.append(
            SparseRasters.from_events(
                sample[keep], flat, min(chunk, images.shape[0] - start), NMNIST_TIME_STEPS, NMNIST_CHANNELS
            )
        )
    if not parts:
        return SparseRasters(
            np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64), NMNIST_TIME_STEPS, NMNIST_CHANNELS
        )
    return SparseRasters.concatenate(parts)


def load_nmnist_simulated(
    mnist: tuple[LabelledSplit, LabelledSplit] | None = None,
    *,
    seed: int = 0,
    params: SaccadeSimParams = SaccadeSimParams(),
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> tuple[LabelledSplit, LabelledSplit, DatasetInfo]:
    """Simulated N-MNIST from real MNIST (60000 + 10000), cached as compressed ``.npz``.

    Args:
        mnist: ``(train, test)`` MNIST splits (uint8 ``[N, 28, 28]``); default: the full MNIST of
            :func:`snnbp.data.mnist.load_mnist`.
        seed: root seed of the simulation.
        params: simulation parameters (their hash is part of the cache file name).
        cache_dir: default ``<data_dir>/nmnist_simulated``.
        use_cache: read/write the cache.

    Raises:
        MissingDatasetError: when MNIST itself is missing (names the fetch command).
    """
    if mnist is None:
        from snnbp.data.mnist import load_mnist

        train_images, test_images, _ = load_mnist()
        mnist = (train_images, test_images)
    cache_dir = Path(cache_dir) if cache_dir is not None else data_dir() / "nmnist_simulated"
    splits = []
    for name, split in zip(("train", "test"), mnist):
        path = cache_dir / f"{name}_n{len(split)}_seed{seed}_{params.tag()}.npz"
        rasters = cached_rasters(
            path,
            lambda s=split, nm=name: simulate_nmnist(s.inputs, seed=derive_seed(seed, nm), params=params),
            use_cache=use_cache,
        )
        splits.append(LabelledSplit(rasters, split.labels.clone()))
    info = DatasetInfo(
        name="N-MNIST (simulated from MNIST)",
        key="nmnist_simulated",
        num_classes=10,
        input_shape=INPUT_SHAPE,
        kind="raster",
        is_standin=True,
    )
    return splits[0], splits[1], info


EventList = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""One recording's raw sensor events ``(x, y, p, t_us)``: 0-based column and row, polarity bit, microseconds."""


@dataclass(frozen=True)
class EventStatistics:
    """Event statistics of a set of N-MNIST recordings (:func:`event_statistics`), one entry per recording.

    Attributes:
        events: raw sensor events per recording.
        per_saccade: raw events in each of the three 105-ms saccades (``[0, 105)``, ``[105, 210)``,
            ``[210, inf)`` ms; the real recordings end at about 306-316 ms).
        on_fraction: fraction of the events with polarity bit 0 (ON, a luminance increase; bit 1
            is OFF); nan for a recording without events.
        raster_spikes: spikes of the stabilised 600 us raster (one per channel and bin, what the
            network sees).

    Shape:
        - events, on_fraction, raster_spikes: ``[n]``; per_saccade: ``[n, 3]``.
    """

    events: np.ndarray
    per_saccade: np.ndarray
    on_fraction: np.ndarray
    raster_spikes: np.ndarray

    def as_arrays(self) -> dict[str, np.ndarray]:
        """The fields by name (what :func:`snnbp.plots.data.event_statistics_figure` takes)."""
        return asdict(self)


def event_statistics(recordings: list[EventList]) -> EventStatistics:
    """Events per recording, per saccade, the ON fraction and the raster spikes (see :class:`EventStatistics`).

    The ON/OFF ratio of a recording is ``on_fraction / (1 - on_fraction)``.
    """
    saccade_us = SACCADE_MS * 1e3
    events, per_saccade, on_fraction, raster_spikes = [], [], [], []
    for x, y, p, t in recordings:
        t = np.asarray(t, dtype=np.int64)
        segment = np.clip(t // int(saccade_us), 0, 2)
        events.append(len(t))
        per_saccade.append(np.bincount(segment, minlength=3)[:3])
        on_fraction.append(float(np.mean(np.asarray(p) == 0)) if len(t) else float("nan"))
        raster_spikes.append(len(np.unique(raster_indices(x, y, p, t)[1])))
    return EventStatistics(
        np.asarray(events, dtype=np.int64),
        np.asarray(per_saccade, dtype=np.int64).reshape(-1, 3),
        np.asarray(on_fraction, dtype=np.float64),
        np.asarray(raster_spikes, dtype=np.int64),
    )


def real_event_lists(files: list[Path]) -> list[EventList]:
    """The raw events of real recordings (:func:`read_recording`), as :data:`EventList` tuples."""
    lists = []
    for path in files:
        events = read_recording(path)
        lists.append(
            (
                events["x"].astype(np.int64),
                events["y"].astype(np.int64),
                events["p"].astype(np.int64),
                events["t"].astype(np.int64),
            )
        )
    return lists


def simulated_event_lists(
    images: np.ndarray, *, seed: int, first_index: int | np.ndarray = 0, params: SaccadeSimParams = SaccadeSimParams()
) -> list[EventList]:
    """The raw events of simulated recordings of ``images`` (:func:`simulate_saccade_events`), one list per image.

    Args:
        images: ``[n, 28, 28]`` uint8 MNIST digits.
        seed: the simulation's seed (``load_nmnist_simulated`` uses ``derive_seed(seed, "train")``
            for the training images).
        first_index: global index of ``images[0]``, or the global index of every image (``[n]``,
            e.g. the MNIST indices of the real recordings), so that each image gets the draws it
            gets in the simulated data set.
    """
    images = np.asarray(images)
    indices = np.arange(len(images)) + first_index if np.ndim(first_index) == 0 else np.asarray(first_index)
    if len(indices) != len(images):
        raise ValueError(f"first_index: {len(indices)} indices for {len(images)} images")
    sample, x, y, p, t = simulate_saccade_events(images, params, seed=seed, indices=indices)
    return [(x[sample == k], y[sample == k], p[sample == k], t[sample == k]) for k in range(len(images))]


def main() -> None:
    """``python -m snnbp.data.nmnist``: build (or check) the simulated N-MNIST cache and time it."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    train, test, info = load_nmnist_simulated()
    print(f"{info.name}: {len(train)} train, {len(test)} test, {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()

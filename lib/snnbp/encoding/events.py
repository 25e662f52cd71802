"""Address events to binary rasters: the N-MNIST file format, saccade stabilisation, 600 us binning.

The pipeline follows the official HM2-BP converter (``nmnist/NMNIST_Converter.m`` +
``readData/readNMnistData.cpp``; ALGORITHMS.md section 1.10):

1. decode the 40-bit events of a ``.bin`` file (:func:`decode_nmnist_bytes`);
2. undo the three saccades (:func:`saccade_displacement`, :func:`raster_indices`), round, drop
   events that leave the 34 x 34 field;
3. channel and time bin: ``channel = 34 * x + y + 1156 * p`` (0-based ``x``, ``y``; polarity bit
   ``p``), ``bin = ceil(t / 600 us)``, stored at row ``bin + 1`` of a ``T = 540`` row raster;
   several events of one channel in one bin make one spike.

Index conventions. The official converter works in 1-based MATLAB coordinates
(``x1 = x + 1``, ``p1 = p + 1``) and writes 1-based channel ids ``(x1 - 1) * 34 + y1 (+ 1156 if
p1 == 2)``. This module uses 0-based channels throughout: ``channel = 34 * x + y + 1156 * p`` is
the official id minus one. Rounding after stabilisation is MATLAB's (half away from zero), done on
the 1-based coordinates exactly as the official code, so the same events survive.

Rasters are stored sparsely in :class:`SparseRasters`, which indexes like a ``[N, T, C]`` bool
tensor (a batch index gives a dense tensor); a full N-MNIST split as dense bools would need
75 GB.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnbp.io import atomic_write_bytes

SENSOR_SIZE = 34
NMNIST_CHANNELS = 2 * SENSOR_SIZE * SENSOR_SIZE  # 2312
NMNIST_BIN_US = 600.0
NMNIST_TIME_STEPS = 540
SACCADE_MS = 105.0
OVERFLOW_Y = 240  # the address of a timestamp-overflow event in the ATIS format
OVERFLOW_US = 1 << 13

EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", np.int8)])
"""One address event (tonic's ``xytp`` field names): pixel column ``x``, row ``y``, time ``t``
in microseconds, polarity bit ``p`` (bit 7 of the third byte)."""


def decode_nmnist_bytes(raw: bytes) -> np.ndarray:
    """Decode the N-MNIST / N-Caltech101 binary event format.

    Each event is 5 bytes (40 bits): byte 0 = x, byte 1 = y, bit 7 of byte 2 = polarity, then a
    23-bit timestamp in microseconds (bits 0-6 of byte 2, bytes 3 and 4, big-endian). An event
    with ``y == 240`` marks a timestamp overflow: ``2**13`` us is added to every later event
    and the marker itself is dropped (Orchard et al. 2015's reader; never seen in N-MNIST).

    Returns:
        Structured array of :data:`EVENT_DTYPE`, in file order.

    Raises:
        ValueError: when the byte count is not a multiple of 5.
    """
    if len(raw) % 5:
        raise ValueError(f"N-MNIST event data must be a multiple of 5 bytes, got {len(raw)}")
    fields = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    stamp = ((fields[:, 2] & 0x7F) << 16) | (fields[:, 3] << 8) | fields[:, 4]
    overflow = fields[:, 1] == OVERFLOW_Y
    stamp = stamp + OVERFLOW_US * np.cumsum(overflow)
    keep = ~overflow
    events = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
    events["x"] = fields[keep, 0]
    events["y"] = fields[keep, 1]
    events["t"] = stamp[keep]
    events["p"] = fields[keep, 2] >> 7
    return events


def read_nmnist_bin(path: str | Path) -> np.ndarray:
    """Read one N-MNIST ``.bin`` file (see :func:`decode_nmnist_bytes`)."""
    return decode_nmnist_bytes(Path(path).read_bytes())


SACCADE_WAYPOINTS = np.array([[0.0, 0.0], [3.5, 7.0], [7.0, 0.0], [0.0, 0.0]])
"""Image displacement (dx, dy) in pixels at 0, 105, 210 and 315 ms (Orchard et al. 2015)."""


def saccade_displacement(t_us: np.ndarray, *, smooth: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Image displacement (pixels) of the N-MNIST recording platform at time ``t_us``.

    Three saccades of 105 ms through :data:`SACCADE_WAYPOINTS`, in (x, y) = (column, row) sensor
    coordinates: (0, 0) -> (3.5, 7) -> (7, 0) -> (0, 0). Within segment ``k`` at phase
    ``tau = t / 105 ms - k``, ``d = w_k + (w_{k+1} - w_k) e(tau)`` with

    * ``e(tau) = tau`` (``smooth=False``): the linear path of the official stabilisation; beyond
      315 ms the third segment is extrapolated, as in the official code;
    * ``e(tau) = tau - sin(2 pi tau) / (2 pi)`` (``smooth=True``): zero speed at the turning points
      and peak speed mid-saccade, the profile the simulator uses. The real recordings' event
      rate peaks mid-saccade (bins 60-120, 240-270 and 420-450 of 540), which a constant speed
      would not produce.

    Shape:
        - t_us: any shape; outputs: ``(dx, dy)`` of the same shape, float64.
    """
    phase = np.asarray(t_us, dtype=np.float64) / (SACCADE_MS * 1e3)
    segment = np.clip(np.ceil(phase) - 1, 0, 2).astype(np.int64)
    tau = phase - segment
    ease = tau - np.sin(2 * np.pi * tau) / (2 * np.pi) if smooth else tau
    start, step = SACCADE_WAYPOINTS[segment], SACCADE_WAYPOINTS[segment + 1] - SACCADE_WAYPOINTS[segment]
    return start[..., 0] + step[..., 0] * ease, start[..., 1] + step[..., 1] * ease


def round_half_away(values: np.ndarray) -> np.ndarray:
    """MATLAB's ``round``: halves go away from zero (numpy's ``round`` goes to even)."""
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def raster_indices(
    x: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    t_us: np.ndarray,
    *,
    stabilise: bool = True,
    bin_us: float = NMNIST_BIN_US,
    time_steps: int = NMNIST_TIME_STEPS,
) -> tuple[np.ndarray, np.ndarray]:
    """Map events to flat raster positions ``row * 2312 + channel`` (ALGORITHMS.md 1.10).

    ``x1 = round(x + 1 - dx(t))``, ``y1 = round(y + 1 - dy(t))`` (1-based, MATLAB rounding), keep
    ``1 <= x1, y1 <= 34``; ``channel = 34 (x1 - 1) + (y1 - 1) + 1156 p``;
    ``row = ceil(t / bin_us) + 1``, kept when ``row < time_steps`` (row 0 stays empty, as the
    official loader shifts every spike by one step).

    Args:
        x, y: 0-based sensor column and row; p: polarity bit (0/1); t_us: time in microseconds.
        stabilise: undo the saccades first (the official ``2312_600_stable`` data).
        bin_us: bin width in microseconds.
        time_steps: raster length ``T``.

    Returns:
        ``(keep, flat)``: bool mask over the events, and int64 flat positions of the kept ones.

    Shape:
        - inputs: ``[E]``; keep: ``[E]``; flat: ``[E_kept]``.
    """
    x1 = np.asarray(x, dtype=np.float64) + 1.0
    y1 = np.asarray(y, dtype=np.float64) + 1.0
    t = np.asarray(t_us, dtype=np.float64)
    if stabilise:
        dx, dy = saccade_displacement(t)
        x1, y1 = round_half_away(x1 - dx), round_half_away(y1 - dy)
    row = np.ceil(t / bin_us) + 1.0
    keep = (x1 >= 1) & (y1 >= 1) & (x1 <= SENSOR_SIZE) & (y1 <= SENSOR_SIZE) & (row < time_steps)
    channel = (
        SENSOR_SIZE * (x1[keep] - 1) + (y1[keep] - 1) + SENSOR_SIZE * SENSOR_SIZE * np.asarray(p, dtype=np.int64)[keep]
    )
    return keep, (row[keep] * NMNIST_CHANNELS + channel).astype(np.int64)


def nmnist_raster_indices(events: np.ndarray, *, stabilise: bool = True) -> np.ndarray:
    """Flat raster positions (``row * 2312 + channel``) of one recording; see :func:`raster_indices`."""
    _, flat = raster_indices(events["x"], events["y"], events["p"], events["t"], stabilise=stabilise)
    return flat


@dataclass(frozen=True)
class SparseRasters:
    """Binary spike rasters ``[N, T, C]`` stored as sorted flat positions per sample (CSR).

    Indexing follows a bool tensor of shape ``[N, T, C]``: an int gives a dense ``[T, C]`` bool
    tensor, an index array / list / LongTensor gives a dense ``[B, T, C]`` bool tensor (what a
    training batch needs), a slice gives another :class:`SparseRasters`.

    Attributes:
        offsets: ``[N + 1]`` int64; sample ``i`` owns ``flat[offsets[i]:offsets[i + 1]]``.
        flat: ``[nnz]`` positions ``t * C + c`` (int32 when ``T * C < 2**31``, else int64), sorted
            and unique within a sample.
        time_steps: ``T``.
        channels: ``C``.
    """

    offsets: np.ndarray
    flat: np.ndarray
    time_steps: int
    channels: int

    @classmethod
    def from_events(
        cls, sample: np.ndarray, flat: np.ndarray, num_samples: int, time_steps: int, channels: int
    ) -> SparseRasters:
        """Build from (sample id, flat position) pairs; duplicates (same bin, channel) collapse.

        Shape:
            - sample, flat: ``[E]`` integer arrays.
        """
        key = np.sort(np.asarray(sample, dtype=np.int64) * (time_steps * channels) + np.asarray(flat, dtype=np.int64))
        key = key[np.concatenate([[True], key[1:] != key[:-1]])] if key.size else key
        owner = key // (time_steps * channels)
        offsets = np.searchsorted(owner, np.arange(num_samples + 1), side="left").astype(np.int64)
        flat = key - owner * (time_steps * channels)
        return cls(offsets, flat.astype(np.int32) if time_steps * channels < 2**31 else flat, time_steps, channels)

    @classmethod
    def from_lists(cls, flats: Sequence[np.ndarray], time_steps: int, channels: int) -> SparseRasters:
        """Build from one array of flat positions per sample."""
        lengths = np.array([len(f) for f in flats], dtype=np.int64)
        sample = np.repeat(np.arange(len(flats)), lengths)
        flat = np.concatenate(list(flats)) if len(flats) else np.zeros(0, dtype=np.int64)
        return cls.from_events(sample, flat, len(flats), time_steps, channels)

    @classmethod
    def from_dense(cls, rasters: np.ndarray | torch.Tensor) -> SparseRasters:
        """Build from a dense ``[N, T, C]`` array of zeros and ones."""
        dense = np.asarray(rasters).astype(bool)
        n, t, c = dense.shape
        sample, flat = np.nonzero(dense.reshape(n, t * c))
        return cls.from_events(sample, flat, n, t, c)

    @classmethod
    def concatenate(cls, parts: Sequence[SparseRasters]) -> SparseRasters:
        """Stack several collections of the same ``T`` and ``C`` along the sample axis."""
        starts = np.cumsum([0] + [p.offsets[-1] for p in parts[:-1]])
        offsets = np.concatenate([[0]] + [p.offsets[1:] + s for p, s in zip(parts, starts)]).astype(np.int64)
        return cls(offsets, np.concatenate([p.flat for p in parts]), parts[0].time_steps, parts[0].channels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(N, T, C)``."""
        return (len(self), self.time_steps, self.channels)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the dense tensors this collection yields (``torch.bool``)."""
        return torch.bool

    def __len__(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def spike_counts(self) -> np.ndarray:
        """Spikes per sample, ``[N]`` int64."""
        return np.diff(self.offsets)

    def _positions(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spike counts of the samples ``idx`` and the positions of their spikes in ``flat``."""
        starts, lengths = self.offsets[idx], self.offsets[idx + 1] - self.offsets[idx]
        position = (
            np.arange(int(lengths.sum()))
            - np.repeat(np.cumsum(lengths) - lengths, lengths)
            + np.repeat(starts, lengths)
        )
        return lengths, position

    def to_dense(
        self, index: np.ndarray | Sequence[int] | torch.Tensor, device: str | torch.device = "cpu"
    ) -> torch.Tensor:
        """Dense bool rasters of the samples ``index``.

        Shape:
            - Output: ``[B, T, C]`` bool on ``device``.
        """
        idx = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64).reshape(-1)
        lengths, position = self._positions(idx)
        row = np.repeat(np.arange(idx.size), lengths)
        dense = torch.zeros(idx.size, self.time_steps * self.channels, dtype=torch.bool, device=device)
        dense[
            torch.as_tensor(row, device=device), torch.as_tensor(self.flat[position].astype(np.int64), device=device)
        ] = True
        return dense.reshape(idx.size, self.time_steps, self.channels)

    def subset(self, index: np.ndarray | Sequence[int]) -> SparseRasters:
        """The samples ``index`` (in that order) as a new collection."""
        lengths, position = self._positions(np.asarray(index, dtype=np.int64).reshape(-1))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return SparseRasters(offsets, self.flat[position], self.time_steps, self.channels)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self.subset(np.arange(len(self))[key])
        if isinstance(key, (int, np.integer)):
            return self.to_dense([int(key) % len(self)])[0]
        return self.to_dense(key)

    def save(self, path: str | Path) -> None:
        """Write a compressed ``.npz`` atomically (the file appears complete or not at all)."""
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, offsets=self.offsets, flat=self.flat, shape=np.array([self.time_steps, self.channels])
        )
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> SparseRasters:
        """Read a collection written by :meth:`save`."""
        with np.load(path) as data:
            time_steps, channels = (int(v) for v in data["shape"])
            return cls(data["offsets"].astype(np.int64), data["flat"], time_steps, channels)


def cached_rasters(path: Path, build: Callable[[], SparseRasters], *, use_cache: bool = True) -> SparseRasters:
    """Load ``path`` when it exists, else ``build()`` and save it there (when ``use_cache``).

    The caller puts every parameter that changes the rasters into the file name, so a changed
    encoding never reads a stale cache.
    """
    if use_cache and path.is_file():
        return SparseRasters.load(path)
    rasters = build()
    if use_cache:
        rasters.save(path)
    return rasters

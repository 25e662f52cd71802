"""Front ends: N-MNIST events -> rasters, Lyon + BSA audio, DoG + latency images; each against a slow reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fakes import nmnist_bytes, random_events
from snnbp.encoding.audio import bsa_encode, bsa_kernel, lyon_cochleagram, resample
from snnbp.encoding.events import (
    SparseRasters,
    decode_nmnist_bytes,
    raster_indices,
    saccade_displacement,
)
from snnbp.encoding.image import dog_kernel, dog_responses, response_latencies


# ---------------------------------------------------------------- events
def test_decode_matches_written_events_and_handles_overflow():
    rng = np.random.default_rng(1)
    ev = random_events(rng, 40, duration_us=(1 << 23) - 1)
    raw = nmnist_bytes(ev["x"], ev["y"], ev["p"], ev["t"])
    overflow = nmnist_bytes([0], [240], [0], [0])
    tail = nmnist_bytes([5], [6], [1], [10])
    decoded = decode_nmnist_bytes(raw + overflow + tail)
    assert decoded.size == 41
    for field in "xypt":
        np.testing.assert_array_equal(decoded[field][:40], ev[field])
    assert (decoded["x"][40], decoded["y"][40], decoded["p"][40], decoded["t"][40]) == (5, 6, 1, 10 + (1 << 13))
    with pytest.raises(ValueError):
        decode_nmnist_bytes(raw[:-1])


def test_saccade_path_waypoints_and_smooth_profile():
    t = np.array([0, 105e3, 210e3, 315e3, 52.5e3])
    dx, dy = saccade_displacement(t)
    np.testing.assert_allclose(dx, [0, 3.5, 7, 0, 1.75])
    np.testing.assert_allclose(dy, [0, 7, 0, 0, 3.5])
    sx, sy = saccade_displacement(t[:4], smooth=True)
    np.testing.assert_allclose(sx, dx[:4], atol=1e-12)
    np.testing.assert_allclose(sy, dy[:4], atol=1e-12)
    # smooth profile is slow at the turning points and fast mid-saccade
    early_dy = saccade_displacement(np.array([5e3]), smooth=True)[1]
    middle_speed = np.diff(saccade_displacement(np.array([50e3, 55e3]), smooth=True)[1])
    assert early_dy[0] < 7 * 5 / 105 < middle_speed[0]


def _matlab_round(v: float) -> float:
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def _reference_stabilised(x, y, p, t, T=540):
    """The official converter's steps, one event at a time (1-based MATLAB conventions)."""
    dense = np.zeros((T, 2312), dtype=bool)
    for xi, yi, pi, ti in zip(x, y, p, t):
        X, Y, P = xi + 1, yi + 1, pi + 1
        if ti <= 105e3:
            X, Y = X - 3.5 * ti / 105e3, Y - 7 * ti / 105e3
        elif ti <= 210e3:
            X, Y = X - 3.5 - 3.5 * (ti - 105e3) / 105e3, Y - 7 + 7 * (ti - 105e3) / 105e3
        else:
            X = X - 7 + 7 * (ti - 210e3) / 105e3
        X, Y = _matlab_round(X), _matlab_round(Y)
        if X < 1 or Y < 1 or X > 34 or Y > 34:
            continue
        channel = (X - 1) * 34 + Y + (1156 if P == 2 else 0)  # 1-based official id
        time = math.ceil(ti / 600) + 1
        if time < T:
            dense[time, channel - 1] = True
    return dense


def test_raster_indices_match_official_converter_loop():
    rng = np.random.default_rng(2)
    ev = random_events(rng, 3000, duration_us=340_000)
    ev["t"][:5] = [0, 600, 105_000, 210_000, 52_500]  # bin edges and a half-pixel shift
    keep, flat = raster_indices(ev["x"], ev["y"], ev["p"], ev["t"])
    got = SparseRasters.from_lists([flat], 540, 2312)[0].numpy()
    np.testing.assert_array_equal(got, _reference_stabilised(ev["x"], ev["y"], ev["p"], ev["t"]))
    assert keep.sum() == flat.size


def test_sparse_rasters_index_slice_and_roundtrip(tmp_path):
    dense = np.random.default_rng(3).random((5, 7, 4)) < 0.2
    rasters = SparseRasters.from_dense(dense)
    assert rasters.shape == (5, 7, 4) and len(rasters) == 5
    np.testing.assert_array_equal(rasters[torch.tensor([4, 0, 4])].numpy(), dense[[4, 0, 4]])
    np.testing.assert_array_equal(rasters[2].numpy(), dense[2])
    np.testing.assert_array_equal(rasters[1:4][torch.arange(3)].numpy(), dense[1:4])
    np.testing.assert_array_equal(rasters.spike_counts(), dense.reshape(5, -1).sum(1))
    both = SparseRasters.concatenate([rasters[:2], rasters[2:]])
    np.testing.assert_array_equal(both[np.arange(5)].numpy(), dense)
    rasters.save(tmp_path / "r.npz")
    np.testing.assert_array_equal(SparseRasters.load(tmp_path / "r.npz")[np.arange(5)].numpy(), dense)
    # duplicates collapse
    dup = SparseRasters.from_lists([np.array([3, 3, 1])], 2, 2)
    np.testing.assert_array_equal(dup.flat, [1, 3])


# ---------------------------------------------------------------- audio
def _reference_bsa(frames: np.ndarray, T: int) -> np.ndarray:
    """HM2-BP's BSA for one channel, loop by loop (readSpeechData.cpp)."""
    h = np.array([math.exp(-((i - 12) ** 2) / 25) for i in range(24)])
    h /= h.sum()
    signal = [v * 2000.0 for v in frames for _ in range(10)] + [0.0] * 24
    spikes = np.zeros(T, dtype=bool)
    for i in range(len(signal) - 24):
        e1 = sum(abs(signal[i + j] - h[j]) for j in range(24))
        e2 = sum(abs(signal[i + j]) for j in range(24))
        if e1 < e2 - 0.6:
            if i + 1 < T:
                spikes[i + 1] = True
            for j in range(24):
                signal[i + j] -= h[j]
    return spikes


@pytest.mark.parametrize("T", [200, 45])
def test_bsa_matches_reference_loop(T):
    rng = np.random.default_rng(4)
    analog = np.abs(rng.normal(0, 1e-3, (2, 12, 3))) * rng.integers(0, 3, (2, 12, 3))
    got = bsa_encode(analog, T)
    assert got.shape == (2, T, 3) and got.any()
    for b in range(2):
        for c in range(3):
            np.testing.assert_array_equal(got[b, :, c], _reference_bsa(analog[b, :, c], T))


def test_bsa_kernel():
    h = bsa_kernel()
    assert h.shape == (24,) and math.isclose(h.sum(), 1.0) and h.argmax() == 12


def test_resample_length_and_tone():
    x = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    y = resample(x, 8000, 12500)
    assert y.size == 12500
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.fft.rfftfreq(y.size, 1 / 12500)[spectrum.argmax()] - 440) < 2


def test_lyon_cochleagram_shape_and_tonotopy():
    pytest.importorskip("lyon")
    rate = 12500
    t = np.arange(rate // 2) / rate
    low, high = (lyon_cochleagram(0.3 * np.sin(2 * np.pi * f * t)) for f in (300.0, 3000.0))
    assert low.shape == (rate // 2 // 200, 78) and np.all(low >= 0)
    # channel 0 is the highest frequency: the 3 kHz tone peaks at a lower channel index
    assert high[10:].mean(0).argmax() < low[10:].mean(0).argmax()


# ---------------------------------------------------------------- images
def test_dog_kernel_properties():
    k = dog_kernel()
    assert k.shape == (7, 7) and abs(k.mean()) < 1e-12 and k.max() == k[3, 3] == 1.0
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])


def test_dog_responses_match_reference_loop():
    img = np.random.default_rng(5).integers(0, 256, (1, 9, 11)).astype(np.float64)
    k = dog_kernel()
    padded = np.pad(img[0], 3, mode="edge")
    ref = np.array([[np.sum(padded[r : r + 7, c : c + 7] * k) for c in range(11)] for r in range(9)])
    got = dog_responses(img)
    np.testing.assert_allclose(got[0, 0], np.maximum(ref, 0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(got[0, 1], np.maximum(-ref, 0), rtol=1e-5, atol=1e-3)


def test_response_latencies():
    r = np.array([[[[40.0, 20.0], [10.0, 0.0]]]])
    t = response_latencies(r, t_max=100.0, threshold=15.0)
    np.testing.assert_allclose(t.numpy(), [[0.0, 50.0, math.inf, math.inf]])

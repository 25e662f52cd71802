"""Auditory front end of the HM2-BP speech experiments: Lyon's cochlear model, then BSA spikes.

ALGORITHMS.md section 1.10 (official code: ST-RSBP ``TI46_Lyon_ear.m`` and HM2-BP
``readData/readSpeechData.cpp``):

1. waveform in [-1, 1] at 12.5 kHz (TI46's own rate; other rates are resampled);
2. ``LyonPassiveEar(wav, 12500, 200)``: Lyon's passive cochlear model (Slaney's Auditory
   Toolbox), decimated by 200, i.e. one frame per 16 ms, 78 channels at 12.5 kHz. Computed with
   the PyPI package ``lyon`` (Apache-2.0), a ctypes port of the Auditory Toolbox C code;
3. Ben's Spiker Algorithm (BSA) per channel: the frame values ``x 2000``, each held for 10 time
   steps, are deconvolved by a 24-tap Gaussian FIR filter into spikes (:func:`bsa_encode`).

One time step is therefore 1.6 ms of audio; a raster of ``T = 1000`` steps covers 1.6 s.
"""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np

LYON_RATE = 12500
LYON_DECIMATION = 200
LYON_CHANNELS = 78
BSA_TAPS = 24
BSA_THRESHOLD = 0.6
BSA_SCALE = 2000.0
BSA_HOLD = 10
SPEECH_TIME_STEPS = 1000


def resample(signal: np.ndarray, rate_in: int, rate_out: int = LYON_RATE) -> np.ndarray:
    """Polyphase resampling (``scipy.signal.resample_poly``, Kaiser-windowed anti-aliasing filter).

    Shape:
        - signal: ``[S]``; output: ``[ceil(S * rate_out / rate_in)]`` float64.
    """
    if rate_in == rate_out:
        return np.asarray(signal, dtype=np.float64)
    from scipy.signal import resample_poly

    g = gcd(int(rate_in), int(rate_out))
    return resample_poly(np.asarray(signal, dtype=np.float64), rate_out // g, rate_in // g)


@lru_cache(maxsize=1)
def _lyon_calculator():
    try:
        from lyon.calc import LyonCalc
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("the cochlear front end needs the PyPI package 'lyon' (pip install lyon==1.0.0)") from error
    return LyonCalc()


def lyon_cochleagram(signal: np.ndarray, sample_rate: int = LYON_RATE, decimation: int = LYON_DECIMATION) -> np.ndarray:
    """Lyon's passive ear (``LyonPassiveEar(signal, sample_rate, decimation)``), with AGC.

    Args:
        signal: waveform in [-1, 1] at ``sample_rate``.
        sample_rate: 12500 Hz gives the paper's 78 channels.
        decimation: output frame every ``decimation`` samples (200 -> 16 ms).

    Shape:
        - signal: ``[S]``; output: ``[S // decimation, 78]`` float64, non-negative.
    """
    x = np.ascontiguousarray(signal, dtype=np.float64)
    return np.ascontiguousarray(
        _lyon_calculator().lyon_passive_ear(x, sample_rate=sample_rate, decimation_factor=decimation)
    )


def bsa_kernel(taps: int = BSA_TAPS) -> np.ndarray:
    """BSA's FIR filter ``h[i] = exp(-(i - taps/2)^2 / 25) / sum_j exp(-(j - taps/2)^2 / 25)``, ``i = 0..taps-1``.

    Shape:
        - Output: ``[taps]`` float64, sums to 1.
    """
    i = np.arange(taps, dtype=np.float64)
    h = np.exp(-((i - taps / 2) ** 2) / 25.0)
    return h / h.sum()


def bsa_encode(
    analog: np.ndarray,
    time_steps: int = SPEECH_TIME_STEPS,
    *,
    hold: int = BSA_HOLD,
    scale: float = BSA_SCALE,
    threshold: float = BSA_THRESHOLD,
    taps: int = BSA_TAPS,
) -> np.ndarray:
    """Ben's Spiker Algorithm, as in the official HM2-BP reader (ALGORITHMS.md 1.10).

    Per channel: ``s`` = frames ``x scale``, each repeated ``hold`` times, then ``taps`` zeros.
    For ``i = 0, 1, ...``: with the window ``w = s[i : i + taps]``, if
    ``sum |w - h| < sum |w| - threshold`` then a spike is emitted at step ``i + 1`` and
    ``s[i : i + taps] -= h``. Steps ``>= time_steps`` are dropped (longer inputs are cut,
    shorter ones leave the rest of the raster silent).

    Sequential in time (each subtraction changes later decisions); vectorised over samples and
    channels.

    Args:
        analog: cochleagram frames.
        time_steps: raster length ``T``.

    Shape:
        - analog: ``[B, F, C]``; output: ``[B, T, C]`` bool.
    """
    batch, frames, channels = analog.shape
    kernel = bsa_kernel(taps)
    frames = min(frames, -(-(time_steps - 1 + taps) // hold))
    signal = np.zeros((batch * channels, frames * hold + taps), dtype=np.float64)
    per_channel = np.asarray(analog[:, :frames], dtype=np.float64).transpose(0, 2, 1).reshape(batch * channels, frames)
    signal[:, : frames * hold] = np.repeat(per_channel, hold, axis=1) * scale
    spikes = np.zeros((batch * channels, time_steps), dtype=bool)
    for i in range(min(frames * hold, time_steps - 1)):
        window = signal[:, i : i + taps]
        fire = np.abs(window - kernel).sum(axis=1) < np.abs(window).sum(axis=1) - threshold
        window[fire] -= kernel
        spikes[:, i + 1] = fire
    return spikes.reshape(batch, channels, time_steps).transpose(0, 2, 1)


def speech_front_end(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """Waveform -> 12.5 kHz -> Lyon cochleagram ``[F, 78]`` (BSA follows in batches, :func:`bsa_encode`)."""
    return lyon_cochleagram(resample(signal, sample_rate, LYON_RATE))

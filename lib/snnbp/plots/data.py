"""Figures of the data notebook: event frames, image-map grids and the speech front end.

Every figure names its dataset in its title (real, simulated, re-split or stand-in); the
callers pass that name. Units: milliseconds for time, sensor pixels for space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from snnbp.encoding.events import NMNIST_CHANNELS, SENSOR_SIZE, raster_indices


@dataclass(frozen=True)
class Panel:
    """One image panel of :func:`panel_grid`.

    Attributes:
        image: ``[H, W]`` values; ``nan`` (or ``inf``) pixels are left blank.
        title: the panel's title.
        cmap: matplotlib colour map.
        colorbar: colour-bar label (with units); ``None`` draws no colour bar.
        blank: colour of the blank (``nan`` / ``inf``) pixels.
    """

    image: np.ndarray
    title: str
    cmap: str = "magma"
    colorbar: str | None = None
    blank: str = "white"


def polarity_frames(x: np.ndarray, y: np.ndarray, p: np.ndarray, t_us: np.ndarray, *, stabilise: bool) -> np.ndarray:
    """Spikes per sensor pixel and polarity after the N-MNIST binning (ALGORITHMS.md 1.10).

    The events go through :func:`snnbp.encoding.events.raster_indices` (optional saccade
    stabilisation, 600 us bins, ``T = 540``, one spike per channel and bin), and the raster's
    channels ``34 x + y + 1156 p`` are counted back onto the sensor grid.

    Args:
        x, y: 0-based sensor column and row; p: polarity bit; t_us: time in microseconds.
        stabilise: undo the three saccades first.

    Shape:
        - inputs: ``[E]``; output: ``[2, 34, 34]`` int64 counts indexed ``[p, y, x]``.
    """
    _, flat = raster_indices(x, y, p, t_us, stabilise=stabilise)
    channel = np.unique(flat) % NMNIST_CHANNELS
    pixels = SENSOR_SIZE * SENSOR_SIZE
    polarity, within = channel // pixels, channel % pixels
    column, row = within // SENSOR_SIZE, within % SENSOR_SIZE
    counts = np.zeros((2, SENSOR_SIZE, SENSOR_SIZE), dtype=np.int64)
    np.add.at(counts, (polarity, row, column), 1)
    return counts


def on_off_panels(
    maps: np.ndarray,
    prefix: str,
    colorbar: str,
    names: Sequence[str] = ("ON", "OFF"),
    cmap: str = "magma",
    blank: str = "white",
) -> list[Panel]:
    """Two panels, ``"<prefix>, ON"`` and ``"<prefix>, OFF"``, of a channel-first map pair.

    Shape:
        - maps: ``[2, H, W]`` (channel 0 = ON, 1 = OFF).
    """
    return [
        Panel(np.asarray(maps[c]), f"{prefix}, {names[c]}", cmap=cmap, colorbar=colorbar, blank=blank) for c in range(2)
    ]


def panel_grid(panels: Sequence[Panel | None], columns: int, title: str, panel_size: float = 2.1) -> plt.Figure:
    """Image panels in rows of ``columns`` (``None`` leaves a cell empty), axes off, one suptitle.

    Shape:
        - each ``Panel.image``: ``[H, W]``; the grid has ``ceil(len(panels) / columns)`` rows.
    """
    rows = max(1, -(-len(panels) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(panel_size * columns, panel_size * rows + 0.5), squeeze=False)
    for ax, panel in zip(axes.flat, list(panels) + [None] * (rows * columns - len(panels))):
        ax.axis("off")
        if panel is None:
            continue
        image = np.asarray(panel.image, dtype=np.float64).copy()
        image[~np.isfinite(image)] = np.nan
        cmap = plt.get_cmap(panel.cmap).with_extremes(bad=panel.blank)
        shown = ax.imshow(image, cmap=cmap, interpolation="nearest")
        ax.set_title(panel.title, fontsize=8)
        if panel.colorbar is not None:
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03).set_label(panel.colorbar, fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def speech_front_end_figure(
    waveform: np.ndarray,
    sample_rate: int,
    cochleagram: np.ndarray,
    frame_ms: float,
    raster: np.ndarray,
    step_ms: float,
    title: str,
) -> plt.Figure:
    """Waveform, cochleagram and BSA spike raster of one utterance on a shared time axis (ms).

    The time axis spans the longer of the waveform and the cochleagram; the raster's silent
    remainder (after the utterance) is cut off.

    Args:
        waveform: samples in [-1, 1] at ``sample_rate`` Hz.
        cochleagram: ``[F, C]`` non-negative frames, one every ``frame_ms``.
        raster: ``[T, C]`` binary spikes, one step every ``step_ms``.

    Shape:
        - waveform: ``[S]``; cochleagram: ``[F, C]``; raster: ``[T, C]``.
    """
    duration_ms = max(1e3 * len(waveform) / sample_rate, frame_ms * cochleagram.shape[0])
    fig, (ax_wave, ax_coch, ax_spikes) = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    ax_wave.plot(1e3 * np.arange(len(waveform)) / sample_rate, waveform, lw=0.6, color="black")
    ax_wave.set(ylabel="amplitude", title="waveform")
    ax_coch.imshow(
        np.asarray(cochleagram).T,
        aspect="auto",
        origin="lower",
        cmap="magma",
        interpolation="nearest",
        extent=(0, frame_ms * cochleagram.shape[0], -0.5, cochleagram.shape[1] - 0.5),
    )
    ax_coch.set(
        ylabel="channel",
        title=f"Lyon cochleagram ({cochleagram.shape[1]} channels, 0 = highest frequency; {frame_ms:g} ms frames)",
    )
    steps, channels = np.nonzero(np.asarray(raster))
    ax_spikes.scatter(steps * step_ms, channels, s=1.5, color="black")
    ax_spikes.set(
        xlabel="time (ms)",
        ylabel="channel",
        title=f"BSA spikes ({step_ms:g} ms steps)",
        ylim=(-1, raster.shape[1]),
        xlim=(0, duration_ms),
    )
    ax_coch.grid(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def distorted_digits_figure(
    originals: np.ndarray, distorted: np.ndarray, labels: Sequence[int], title: str
) -> plt.Figure:
    """A few digits (top row) and their distorted versions (one row per draw), grey scale 0-255.

    Args:
        originals: the undistorted images.
        distorted: ``distorted[k, i]`` is draw ``k`` of image ``i``.
        labels: the class of every image (named in its column's top panel).
        title: the figure's title (names the dataset and the distortion).

    Shape:
        - originals: ``[N, H, W]``; distorted: ``[K, N, H, W]``; labels: ``[N]``.
    """
    originals, distorted = np.asarray(originals, dtype=np.float64), np.asarray(distorted, dtype=np.float64)
    if distorted.ndim != 4 or distorted.shape[1:] != originals.shape:
        raise ValueError(f"distorted must be [K, N, H, W] with [N, H, W] = {originals.shape}, got {distorted.shape}")
    count = originals.shape[0]
    panels = [Panel(originals[i], f"digit {int(labels[i])}, original", cmap="gray") for i in range(count)]
    for k, row in enumerate(distorted):
        panels += [Panel(image, f"draw {k + 1}", cmap="gray") for image in row]
    return panel_grid(panels, count, title, panel_size=1.6)


def event_statistics_figure(statistics: dict[str, dict[str, np.ndarray]], title: str) -> plt.Figure:
    """Event statistics of N-MNIST sources side by side: events per recording, per saccade, ON fraction, raster spikes.

    Args:
        statistics: per source (e.g. ``"real subset"``, ``"simulated"``) the arrays ``events``
            ``[n]``, ``per_saccade`` ``[n, 3]``, ``on_fraction`` ``[n]`` and ``raster_spikes``
            ``[n]`` (:meth:`snnbp.data.nmnist.EventStatistics.as_arrays`).
        title: the figure's title (names every source and whether it is a stand-in).

    Shape:
        - four panels: histograms of the events and of the raster spikes per recording, the mean
          (± standard deviation) events of each saccade, and a histogram of the ON fraction.
    """
    if not statistics:
        raise ValueError("statistics: no source given")
    fig, (ax_events, ax_saccade, ax_on, ax_raster) = plt.subplots(1, 4, figsize=(15, 3.8))
    width = 0.8 / len(statistics)

    def common_bins(key: str) -> np.ndarray:
        values = np.concatenate([np.asarray(stats[key], dtype=np.float64).ravel() for stats in statistics.values()])
        values = values[np.isfinite(values)]
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
        return np.linspace(low, high if high > low else low + 1.0, 21)

    bins = {key: common_bins(key) for key in ("events", "raster_spikes", "on_fraction")}
    for k, (source, stats) in enumerate(statistics.items()):
        events, per_saccade = np.asarray(stats["events"]), np.asarray(stats["per_saccade"], dtype=np.float64)
        label = f"{source} (n = {len(events)})"
        ax_events.hist(events, bins=bins["events"], alpha=0.55, label=label)
        ax_raster.hist(np.asarray(stats["raster_spikes"]), bins=bins["raster_spikes"], alpha=0.55, label=label)
        ax_saccade.bar(
            np.arange(3) + (k - (len(statistics) - 1) / 2) * width,
            per_saccade.mean(axis=0),
            width,
            yerr=per_saccade.std(axis=0),
            capsize=3,
            label=label,
        )
        on = np.asarray(stats["on_fraction"], dtype=np.float64)
        ax_on.hist(on[np.isfinite(on)], bins=bins["on_fraction"], alpha=0.55, label=label)
    ax_events.set(xlabel="raw events per recording", ylabel="recordings", title="events per recording")
    ax_saccade.set(
        xticks=range(3),
        xticklabels=["first\n0-105 ms", "second\n105-210 ms", "third\n210-315 ms"],
        ylabel="raw events (mean ± sd)",
        title="events per saccade",
    )
    ax_on.set(xlabel="ON fraction (polarity bit 0)", ylabel="recordings", title="ON / OFF balance")
    ax_raster.set(
        xlabel="spikes per recording (600 µs raster)", ylabel="recordings", title="raster spikes (network input)"
    )
    for ax in (ax_events, ax_saccade, ax_on, ax_raster):
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig

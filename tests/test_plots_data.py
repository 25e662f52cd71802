"""The data notebook's figures on tiny synthetic inputs: shapes, counts, axes and titles."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from snnbp.encoding.events import SENSOR_SIZE, saccade_displacement  # noqa: E402
from snnbp.plots.data import Panel, on_off_panels, panel_grid, polarity_frames, speech_front_end_figure  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_polarity_frames_counts_one_spike_per_channel_and_bin():
    # two events of one channel in one 600 us bin collapse; a later bin counts again
    x = np.array([3, 3, 3, 10])
    y = np.array([5, 5, 5, 20])
    p = np.array([0, 0, 0, 1])
    t = np.array([100, 200, 1500, 700])
    frames = polarity_frames(x, y, p, t, stabilise=False)
    assert frames.shape == (2, SENSOR_SIZE, SENSOR_SIZE)
    assert frames[0, 5, 3] == 2 and frames[1, 20, 10] == 1 and frames.sum() == 3


def test_polarity_frames_stabilisation_moves_events_back():
    # an event seen at the saccade's turning point (105 ms) is shifted back by (3.5, 7) -> round
    t = np.array([105_000])
    dx, dy = saccade_displacement(t)
    assert (float(dx[0]), float(dy[0])) == (3.5, 7.0)
    raw = polarity_frames(np.array([20]), np.array([17]), np.array([1]), t, stabilise=False)
    stable = polarity_frames(np.array([20]), np.array([17]), np.array([1]), t, stabilise=True)
    assert raw[1, 17, 20] == 1
    # 1-based x1 = round(21 - 3.5) = 18 (half away from zero), y1 = 18 - 7 = 11 -> 0-based (17, 10)
    assert stable[1, 10, 17] == 1 and stable.sum() == 1


def test_polarity_frames_of_no_events_are_empty():
    empty = np.zeros(0, dtype=np.int64)
    assert polarity_frames(empty, empty, empty, empty, stabilise=True).sum() == 0


def test_panel_grid_titles_blanks_and_colour_bars():
    image = np.arange(12, dtype=np.float64).reshape(3, 4)
    latency = image.copy()
    latency[0, 0] = np.inf
    panels = [Panel(image, "first", cmap="gray"), None, Panel(latency, "latency", colorbar="time (ms)")]
    fig = panel_grid(panels, columns=2, title="Toy data (synthetic)")
    assert fig._suptitle.get_text() == "Toy data (synthetic)"
    grid = fig.axes[:4]
    assert [ax.get_title() for ax in grid] == ["first", "", "latency", ""]
    assert len(grid[0].images) == 1 and len(grid[1].images) == 0
    assert np.ma.getmaskarray(grid[2].images[0].get_array())[0, 0]
    assert len(fig.axes) == 5 and fig.axes[4].get_ylabel() == "time (ms)"


def test_on_off_panels_name_both_channels():
    maps = np.stack([np.zeros((2, 3)), np.ones((2, 3))])
    on, off = on_off_panels(maps, "face: DoG", "response", names=("ON-centre", "OFF-centre"))
    assert (on.title, off.title) == ("face: DoG, ON-centre", "face: DoG, OFF-centre")
    assert on.colorbar == "response" and off.image.sum() == 6
    fig = panel_grid(on_off_panels(maps, "toy", "spikes"), columns=2, title="Toy events (synthetic)")
    assert [ax.get_title() for ax in fig.axes[:2]] == ["toy, ON", "toy, OFF"]


def test_speech_front_end_figure_has_three_labelled_panels():
    rate = 8000
    waveform = np.sin(2 * np.pi * 440 * np.arange(800) / rate)  # 100 ms
    cochleagram = np.abs(np.random.default_rng(0).standard_normal((5, 4)))  # 5 frames of 16 ms
    raster = np.zeros((100, 4), dtype=bool)
    raster[[3, 10, 40], [0, 1, 3]] = True
    fig = speech_front_end_figure(waveform, rate, cochleagram, 16.0, raster, 1.6, "Toy speech (synthetic)")
    wave, coch, spikes = fig.axes
    assert fig._suptitle.get_text() == "Toy speech (synthetic)"
    assert (
        wave.get_title() == "waveform"
        and coch.get_title() == "Lyon cochleagram (4 channels, 0 = highest frequency; 16 ms frames)"
    )
    assert spikes.get_title() == "BSA spikes (1.6 ms steps)" and spikes.get_xlabel() == "time (ms)"
    assert spikes.get_xlim() == pytest.approx((0.0, 100.0))
    assert spikes.collections[0].get_offsets().shape == (3, 2)

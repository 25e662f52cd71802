"""N-MNIST event statistics of real and simulated recordings (snnbp.data.nmnist.event_statistics) and their figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from fakes import write_nmnist_tree  # noqa: E402
from snnbp.data.nmnist import (  # noqa: E402
    SaccadeSimParams,
    event_statistics,
    list_recordings,
    real_event_lists,
    simulate_nmnist,
    simulate_saccade_events,
    simulated_event_lists,
)
from snnbp.plots.data import event_statistics_figure  # noqa: E402


def test_counts_per_recording_saccade_and_polarity():
    # events at 0, 104.999, 105, 250 and 320 ms (the last one beyond 315 ms belongs to the third saccade)
    t = np.array([0, 104_999, 105_000, 250_000, 320_000])
    x, y, p = np.array([3, 3, 4, 5, 6]), np.array([7, 7, 8, 9, 10]), np.array([0, 0, 1, 0, 1])
    empty = (np.zeros(0, dtype=np.int64),) * 4
    stats = event_statistics([(x, y, p, t), empty])
    assert stats.events.tolist() == [5, 0]
    assert stats.per_saccade.tolist() == [[2, 1, 2], [0, 0, 0]]
    assert stats.on_fraction[0] == pytest.approx(0.6) and np.isnan(stats.on_fraction[1])
    assert stats.raster_spikes[1] == 0 and 1 <= stats.raster_spikes[0] <= 5
    # two events of one pixel in one 600 us bin are one raster spike
    same_bin = event_statistics([(np.array([3, 3]), np.array([7, 7]), np.array([0, 0]), np.array([100, 200]))])
    assert same_bin.events[0] == 2 and same_bin.raster_spikes[0] == 1
    assert set(stats.as_arrays()) == {"events", "per_saccade", "on_fraction", "raster_spikes"}


def test_real_event_lists_read_the_recordings(tmp_path):
    written = write_nmnist_tree(tmp_path, {"Train": 1, "Test": 1})
    files, _ = list_recordings(tmp_path, "Train")
    lists = real_event_lists(files[:3])
    for path, (x, y, p, t) in zip(files[:3], lists):
        truth = written[path]
        assert all(np.array_equal(got, truth[key]) for got, key in zip((x, y, p, t), "xypt"))
    stats = event_statistics(lists)
    assert stats.events.tolist() == [len(written[f]["t"]) for f in files[:3]]


def _digits(count: int) -> np.ndarray:
    rng = np.random.default_rng(2)
    images = np.zeros((count, 28, 28), dtype=np.uint8)
    images[:, 8:20, 10:18] = rng.integers(100, 256, (count, 12, 8))
    return images


def test_simulated_event_lists_are_the_simulated_data_sets_events():
    images = _digits(3)
    params = SaccadeSimParams()
    lists = simulated_event_lists(images, seed=9, first_index=40)
    sample, x, y, p, t = simulate_saccade_events(images, params, seed=9, first_index=40)
    for k, (xk, yk, pk, tk) in enumerate(lists):
        assert all(np.array_equal(got, full[sample == k]) for got, full in zip((xk, yk, pk, tk), (x, y, p, t)))
    # per-image indices: the same draws as the contiguous range they spell
    again = simulated_event_lists(images[[2, 0]], seed=9, first_index=np.array([42, 40]))
    assert np.array_equal(again[0][3], lists[2][3]) and np.array_equal(again[1][0], lists[0][0])
    # the raster spikes are those of the simulated data set's rasters
    rasters = simulate_nmnist(images, seed=9, first_index=40)
    assert event_statistics(lists).raster_spikes.tolist() == rasters.spike_counts().tolist()
    with pytest.raises(ValueError, match="first_index: 2 indices for 3 images"):
        simulated_event_lists(images, seed=9, first_index=np.array([1, 2]))


def test_event_statistics_figure_names_both_sources():
    stats = {
        "real subset": event_statistics(
            [(np.array([1, 2]), np.array([3, 4]), np.array([0, 1]), np.array([10, 200_000]))]
        ).as_arrays(),
        "simulated": event_statistics(simulated_event_lists(_digits(2), seed=1)).as_arrays(),
    }
    fig = event_statistics_figure(stats, "N-MNIST: real subset vs simulated")
    assert fig._suptitle.get_text() == "N-MNIST: real subset vs simulated"
    assert len(fig.axes) == 4
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["real subset (n = 1)", "simulated (n = 2)"]
    assert fig.axes[1].get_xticklabels()[2].get_text() == "third\n210-315 ms"
    with pytest.raises(ValueError, match="no source"):
        event_statistics_figure({}, "x")
    plt.close(fig)

"""The problem analysis of notebook 01: single-neuron sweeps, random neurons, histogram tails, verdicts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from snnbp import problem_analysis as pa
from snnbp.analysis import LOG_BIN_EDGES
from snnbp.data.base import DatasetInfo
from snnbp.stdbp import ModelParams, build_learner
from snnbp.stdbp.relpsp import relpsp_time_weight_gradient

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64
N_BINS = len(LOG_BIN_EDGES) - 1


def _hist(**bins: float) -> torch.Tensor:
    """Counts with ``b<index>=count`` entries, zeros elsewhere."""
    counts = torch.zeros(N_BINS, dtype=F64)
    for key, value in bins.items():
        counts[int(key[1:])] = value
    return counts


# --- single neuron ---------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["relpsp", "alpha"])
def test_sweep_gradient_matches_finite_differences(kernel):
    t_in = torch.tensor([0.5, 1.0, 2.0, 3.0], dtype=F64)
    weight = torch.tensor([0.0, 0.04, -0.02, 0.03] if kernel == "relpsp" else [0.0, 0.4, -0.2, 0.3], dtype=F64)
    wide, _ = pa.threshold_sweeps(kernel, t_in, weight, 0, theta=1.0, tau=5.0, window=10.0, points=41, near_decades=3)
    values = wide.critical * torch.tensor([1.5, 2.0, 2.5], dtype=F64)
    step = 1e-6
    sweep = pa.sweep_weight(kernel, t_in, weight, 0, values, theta=1.0, tau=5.0, window=10.0)
    up = pa.sweep_weight(kernel, t_in, weight, 0, values + step, theta=1.0, tau=5.0, window=10.0)
    down = pa.sweep_weight(kernel, t_in, weight, 0, values - step, theta=1.0, tau=5.0, window=10.0)
    assert bool(sweep.fired.all())
    assert torch.allclose(sweep.dtdw, (up.t_out - down.t_out) / (2 * step), rtol=1e-5)


def test_critical_weights_of_a_single_input_are_analytic():
    t_in, weight = torch.tensor([0.0], dtype=F64), torch.tensor([0.0], dtype=F64)
    # ReL-PSP: V = w t reaches theta = 1 at t = 1 / w, before T = 10 iff w > 0.1
    relpsp = pa.critical_weight("relpsp", t_in, weight, 0, 0.0, 1.0, theta=1.0, tau=5.0, window=10.0)
    # alpha: V = w K(t) peaks at w (t = tau), so it fires iff w >= theta = 1
    alpha = pa.critical_weight("alpha", t_in, weight, 0, 0.0, 5.0, theta=1.0, tau=5.0, window=10.0)
    assert relpsp == pytest.approx(0.1, rel=1e-9) and alpha == pytest.approx(1.0, rel=1e-6)
    assert math.isnan(pa.critical_weight("relpsp", t_in, weight, 0, 0.5, 1.0, theta=1.0, tau=5.0, window=10.0))


def test_alpha_gradient_diverges_at_threshold_and_relpsp_stays_finite():
    t_in, weight = torch.tensor([0.0], dtype=F64), torch.tensor([0.0], dtype=F64)
    offsets = [1e-8, 1e-6]
    _, near_alpha = pa.threshold_sweeps(
        "alpha", t_in, weight, 0, theta=1.0, tau=5.0, window=10.0, points=11, near_decades=9
    )
    _, near_relpsp = pa.threshold_sweeps(
        "relpsp", t_in, weight, 0, theta=1.0, tau=5.0, window=10.0, points=11, near_decades=9
    )
    g_alpha = pa.gradient_at_offsets(near_alpha, offsets)
    g_relpsp = pa.gradient_at_offsets(near_relpsp, offsets)
    assert g_alpha[0] / g_alpha[1] == pytest.approx(10.0, rel=0.05)  # |dt/dw| ~ (w - w*)^(-1/2)
    assert g_relpsp == pytest.approx([100.0, 100.0], rel=1e-4)  # (t_i - t_j) / w* = -10 / 0.1
    with pytest.raises(ValueError, match="does not step"):
        pa.threshold_sweeps(
            "alpha", t_in, weight, 0, theta=1.0, tau=5.0, window=10.0, points=11, near_decades=2, bracket=(0.0, 0.5)
        )


def test_crossing_slope_is_dv_dt():
    t_in = torch.tensor([[0.0, 1.0, 2.0, math.inf]], dtype=F64)
    weight = torch.tensor([[0.5, 0.3, -0.1, 0.7], [-1.0, 0.0, 0.0, 0.0]], dtype=F64)
    for kernel, theta in (("relpsp", 0.8), ("alpha", 0.2)):
        t_out = pa.kernel_spike_times(kernel, t_in, weight, theta, tau=2.0)
        slope = pa.crossing_slope(kernel, t_in, weight, t_out, tau=2.0)
        assert torch.isfinite(t_out[0, 0]) and not torch.isfinite(t_out[0, 1]) and torch.isnan(slope[0, 1])
        eps = 1e-6
        t = float(t_out[0, 0])
        if kernel == "relpsp":
            assert t == pytest.approx(1.375) and float(slope[0, 0]) == pytest.approx(
                0.5 + 0.3
            )  # V(1) = 0.5, then slope 0.8
        else:
            from snnbp.stdbp.alpha import alpha_kernel

            def potential(s: float) -> float:
                return float((weight[0] * alpha_kernel(torch.tensor(s, dtype=F64) - t_in[0], 2.0)).nan_to_num().sum())

            assert float(slope[0, 0]) == pytest.approx((potential(t + eps) - potential(t - eps)) / (2 * eps), rel=1e-5)
    with pytest.raises(ValueError, match="unknown kernel"):
        pa.kernel_spike_times("step", t_in, weight, 1.0, tau=1.0)


def test_within_window_keeps_early_neurons_only():
    values = torch.ones(1, 3, 2)
    t_out = torch.tensor([[1.0, 10.0, math.inf]])
    assert pa.within_window(values, t_out, 10.0)[0].sum(dim=1).tolist() == [2.0, 0.0, 0.0]


# --- random neurons and histograms -------------------------------------------------------------


def test_random_neurons_are_seeded_and_excitatory_weights_are_non_negative():
    make = lambda excitatory: pa.random_neurons(  # noqa: E731
        patterns=3,
        inputs=20,
        neurons=7,
        mean_low=0.0,
        mean_high=2.0,
        t_max=5.0,
        theta=1.0,
        generator=torch.Generator().manual_seed(3),
        excitatory=excitatory,
    )
    t_in, weight = make(False)
    assert t_in.shape == (3, 20) and weight.shape == (7, 20) and weight.dtype == F64
    assert bool(((t_in >= 0) & (t_in <= 5.0)).all()) and bool((weight < 0).any())
    assert torch.equal(make(False)[1], weight)
    assert bool((make(True)[1] >= 0).all())


def test_summarise_gradients_counts_and_windows():
    dtdw = torch.tensor([[[1.0, 0.0], [100.0, 2.0], [0.0, 0.0]]])
    t_out = torch.tensor([[1.0, 20.0, math.inf]])
    summary = pa.summarise_gradients([(dtdw, t_out)], window=10.0)
    assert int(summary.all_spikes.sum()) == 3 and int(summary.before_window.sum()) == 1
    assert summary.fired == pytest.approx(2 / 3) and summary.fired_before_window == pytest.approx(1 / 3)
    assert summary.max_all == 100.0 and summary.max_before_window == 1.0


def test_median_bin_tail_fraction_and_quantile():
    counts = _hist(b20=60, b24=30, b28=10)  # bins 4 = one decade apart
    assert pa.BINS_PER_DECADE == 4
    assert pa.median_bin(counts) == 20
    assert pa.tail_fraction(counts, 1.0) == pytest.approx(0.4)
    assert pa.tail_fraction(counts, 2.0) == pytest.approx(0.1)
    assert pa.tail_fraction(counts, 2.25) == 0.0
    assert pa.bin_quantile(counts, 0.5) == LOG_BIN_EDGES[21] and pa.bin_quantile(counts, 0.95) == LOG_BIN_EDGES[29]
    assert math.isnan(pa.tail_fraction(torch.zeros(N_BINS), 1.0))
    with pytest.raises(ValueError, match="multiple"):
        pa.tail_fraction(counts, 0.1)
    with pytest.raises(ValueError, match="bin counts"):
        pa.median_bin([1.0, 2.0])


def test_aligned_log_distance_ignores_scale_and_measures_shape():
    a = _hist(b10=50, b14=50)
    assert pa.aligned_log_distance(a, _hist(b22=50, b26=50)) == pytest.approx(0.0)  # same shape, other scale
    assert pa.aligned_log_distance(a, _hist(b30=100)) == pytest.approx(0.5)  # half the mass one decade off
    assert pa.aligned_log_distance(a, _hist(b30=100)) == pytest.approx(pa.aligned_log_distance(_hist(b30=100), a))
    assert math.isnan(pa.aligned_log_distance(a, torch.zeros(N_BINS)))


# --- histories --------------------------------------------------------------------------------


def _history(dead, tails_at_three_decades):
    """Synthetic per-epoch entries as StdbpLearner.end_epoch writes them."""
    return [
        {"epoch": e + 1, "dead_fraction_fc1": d, "dtdw_hist": _hist(b20=1000 * (1 - t), b32=1000 * t).tolist()}
        for e, (d, t) in enumerate(zip(dead, tails_at_three_decades))
    ]


def test_history_helpers():
    history = _history([0.0, 0.1, 0.2], [0.0, 0.01, 0.5])
    assert pa.history_tail_fractions(history, "dtdw_hist", 3.0) == pytest.approx([0.0, 0.01, 0.5])
    assert pa.dead_fractions(history) == pytest.approx([0.0, 0.1, 0.2])
    assert pa.dead_fractions([{"dead_fraction_fc1": 0.2, "dead_fraction_fc2": 0.4}, {}])[0] == pytest.approx(0.3)
    assert math.isnan(pa.dead_fractions([{}])[0])
    assert pa.history_values([{"x": 1}, {"x": None}, {}], "x")[0] == 1.0
    assert all(math.isnan(v) for v in pa.history_values([{"x": None}, {}], "x"))
    assert pa.least_squares_slope([1.0, 3.0, 5.0]) == pytest.approx(2.0)
    assert pa.least_squares_slope([1.0, math.nan, 5.0]) == pytest.approx(2.0)
    assert math.isnan(pa.least_squares_slope([1.0]))


def test_hidden_timing_helpers():
    inf = math.inf
    hidden = torch.tensor([[1.0, 2.0, 9.0], [inf, inf, inf], [3.0, 5.0, inf]])
    output = torch.tensor([[4.0, 6.0], [1.0, 2.0], [inf, inf]])
    medians = pa.median_hidden_times(hidden)
    assert medians[0] == 2.0 and torch.isnan(medians[1]) and medians[2] == 3.0  # nanmedian: lower middle
    assert pa.hidden_lags(hidden, output).tolist() == [-3.0, -2.0, 5.0]  # sample 3 has no decision
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, math.nan])
    assert pa.rank_correlation(x, torch.tensor([1.0, 4.0, 9.0, 16.0, 0.0])) == pytest.approx(1.0)
    assert pa.rank_correlation(x, -x) == pytest.approx(-1.0)
    assert math.isnan(pa.rank_correlation(x, torch.ones(5)))


# --- verdicts ---------------------------------------------------------------------------------


def test_lower_verdict_on_synthetic_histories():
    claim, test, quantity = "claim", "test", "tail"
    relpsp = pa.history_tail_fractions(_history([0] * 3, [0.0, 0.001, 0.002]), "dtdw_hist", 3.0)
    alpha = pa.history_tail_fractions(_history([0] * 3, [0.01, 0.02, 0.03]), "dtdw_hist", 3.0)
    supports = pa.lower_verdict(claim, test, quantity, relpsp, alpha)
    assert (
        supports.outcome == "supports"
        and "lower by a factor 2 in 3, higher in 0, similar in 0 of 3 epochs" in supports.evidence
    )
    assert pa.lower_verdict(claim, test, quantity, alpha, relpsp).outcome == "contradicts"
    assert pa.lower_verdict(claim, test, quantity, [0.1, 0.2], [0.2, 0.1]).outcome == "inconclusive"  # mixed
    assert pa.lower_verdict(claim, test, quantity, [0.0, 0.0], [0.0, 0.0]).outcome == "inconclusive"  # equal
    assert pa.lower_verdict(claim, test, quantity, [0.15], [0.2]).outcome == "inconclusive"  # within the margin
    assert pa.lower_verdict(claim, test, quantity, [0.15], [0.2], margin=1.2).outcome == "supports"
    assert pa.lower_verdict(claim, test, quantity, [0.0, 0.0], [0.0, 0.0025], atol=0.005).outcome == "inconclusive"
    assert pa.lower_verdict(claim, test, quantity, [0.0, 0.0], [0.0, 0.01], atol=0.005).outcome == "supports"
    assert pa.lower_verdict(claim, test, quantity, [math.nan], [0.1]).outcome == "inconclusive"
    assert "0.00123" in pa.lower_verdict(claim, test, quantity, [0.00123456], [0.5]).evidence  # rounded to 3 digits


def test_growth_and_majority_verdicts():
    grows = pa.growth_verdict("c", "t", "dead", pa.dead_fractions(_history([0.0, 0.01, 0.03], [0.0] * 3)))
    assert grows.outcome == "supports" and "slope 0.015 per epoch" in grows.evidence
    assert pa.growth_verdict("c", "t", "dead", [0.03, 0.01, 0.0]).outcome == "contradicts"
    assert pa.growth_verdict("c", "t", "dead", [0.0, 0.0025], atol=0.005).outcome == "inconclusive"
    assert pa.growth_verdict("c", "t", "dead", [0.2]).outcome == "inconclusive"
    assert pa.majority_verdict("c", "t", "before", 0.7).outcome == "supports"
    assert pa.majority_verdict("c", "t", "before", 0.3).outcome == "contradicts"
    assert pa.majority_verdict("c", "t", "before", math.nan).outcome == "inconclusive"


def test_verdict_text_and_table():
    verdict = pa.Verdict("ReL-PSP avoids |dt/dw| explosions", "theory", "contradicts", "tail: 0.1 vs 0.01.")
    assert verdict.markdown().startswith(
        "**ReL-PSP avoids |dt/dw| explosions** (theory): the data **contradict** the claim."
    )
    table = pa.verdict_table([verdict, pa.Verdict("c", "t", "inconclusive", "e")]).splitlines()
    assert len(table) == 4 and table[2].count(" | ") == 3 and "\\|dt/dw\\|" in table[2]
    assert table[3] == "| c | t | **inconclusive** | e |"


# --- runs on disk, learners --------------------------------------------------------------------


def test_load_metrics_names_the_folder_and_the_command(tmp_path):
    run = tmp_path / "cpu" / "alpha_mnist_fc"
    with pytest.raises(
        FileNotFoundError,
        match=r"alpha_mnist_fc has no metrics.json; make it with `snnbp run params/cpu/alpha_mnist_fc.yaml`",
    ):
        pa.load_metrics(run)
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"epochs": 3, "epochs_planned": 10, "history": []}))
    with pytest.raises(RuntimeError, match="3 of 10 epochs"):
        pa.load_metrics(run)
    assert pa.load_metrics(run, require_complete=False)["epochs"] == 3
    with pytest.raises(
        FileNotFoundError, match="has no checkpoint.pt; make it with `snnbp run params/cpu/alpha_mnist_fc.yaml`"
    ):
        pa.load_trained(run)


def test_trained_time_weight_gradients_are_the_layers_exact_values():
    info = DatasetInfo(name="toy", key="toy", num_classes=3, input_shape=(4, 4), kind="image")
    learner = build_learner(ModelParams(kernel="relpsp", hidden=(5,), t_max=5.0), info, seed=1)
    images = (torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    layers = pa.trained_time_weight_gradients(learner, images)
    hidden_times = learner.output_times(images)[0]
    assert [tuple(g.shape) for g, _ in layers] == [(3, 5, 16), (3, 3, 5)]
    expected = relpsp_time_weight_gradient(learner.encode(images), learner.weights[0].detach(), hidden_times)
    assert torch.equal(layers[0][0], expected) and torch.equal(layers[0][1], hidden_times)


def test_the_ann_records_its_weight_gradients_every_step_only_when_asked():
    from snnbp.ann import ModelParams as AnnParams
    from snnbp.ann import build_learner as build_ann
    from snnbp.learner import Batch

    info = DatasetInfo(name="toy", key="toy", num_classes=3, input_shape=(2, 2), kind="image")
    generator = torch.Generator().manual_seed(0)
    images = (torch.rand(12, 2, 2, generator=generator) * 255).to(torch.uint8)
    labels = torch.randint(0, 3, (12,), generator=generator)
    learners = [build_ann(AnnParams(hidden=(6,), lr=1e-2, gradient_stats=on), info, seed=1) for on in (True, False)]
    for learner in learners:
        for start in range(0, 12, 4):
            learner.train_step(Batch(images[start : start + 4], labels[start : start + 4], torch.arange(4), "train"))
    recorded, plain = (learner.end_epoch(1) for learner in learners)
    assert "dldw_hist" not in plain
    assert 0 < recorded["dldw_count"] <= 3 * (4 * 6 + 6 * 3)  # 3 steps, weight matrices only (no biases)
    assert sum(recorded["dldw_hist"]) == recorded["dldw_count"] and recorded["dldw_max_abs"] > 0
    for a, b in zip(learners[0].net.parameters(), learners[1].net.parameters()):
        assert torch.equal(a, b)  # recording changes nothing
    assert learners[0].end_epoch(2)["dldw_count"] == 0.0  # the statistics restart every epoch


def test_the_recorded_ann_reference_of_the_analysis_holds_its_gradients():
    metrics = pa.load_metrics(ROOT / "results" / "cpu" / "ann_analysis_mnist_fc")
    assert metrics["network"] == "784-400-10" and all(h["dldw_count"] > 0 for h in metrics["history"])

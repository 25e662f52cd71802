"""The S-PSP walk-through helpers (ALGORITHMS.md 1.3-1.7) against spsp, simulate_lif and hand-computed values (float64)."""

from __future__ import annotations

import math

import matplotlib
import pytest
import torch

from snnbp.hm2bp import spsp_examples
from snnbp.hm2bp.backprop import side_effect
from snnbp.hm2bp.lif import NeuronParams, simulate_lif
from snnbp.hm2bp.spsp import spsp

matplotlib.use("Agg")

TAU_M, TAU_S, T_REF = 64.0, 8.0, 2
NEURON = NeuronParams(TAU_M, TAU_S, T_REF)


def eps(s: float, u: float) -> float:
    """ALGORITHMS.md 1.3, written out."""
    m = min(s, u)
    return math.exp(-max(u - s, 0) / TAU_S) * (math.exp(-m / TAU_M) - math.exp(-m / TAU_S)) / (1 - TAU_S / TAU_M)


def random_train(steps: int, p: float, seed: int) -> torch.Tensor:
    train = (torch.rand(steps, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) < p).to(
        torch.float64
    )
    train[0] = 0
    return train


def test_psp_contributions_by_hand():
    pre = torch.tensor([0, 3, 9, 19])
    post = torch.tensor([10, 20])
    got = spsp_examples.psp_contributions(pre, post, post, neuron=NEURON)
    # tau_1 = 10: s = 10 - 1; only t_g = 3 counts (t_g = 0 is before step 1, 9 + 2 > 10)
    # tau_2 = 20: s = 20 - 12; t_g = 3 and 9 count (decayed through the reset), 19 + 2 > 20 does not
    expected = torch.tensor([[0.0, eps(9, 5), 0.0, 0.0], [0.0, eps(8, 15), eps(8, 9), 0.0]], dtype=torch.float64)
    assert torch.allclose(got, expected, rtol=1e-12, atol=0)


def test_psp_contributions_lookback_and_shift():
    pre, post = torch.tensor([1, 50, 299]), torch.tensor([300])
    official = spsp_examples.psp_contributions(pre, post, post, neuron=NEURON)
    assert official[0, 0] == 0 and official[0, 1] > 0 and official[0, 2] == 0  # 300 - 256 = 44 > 1; 299 + 2 > 300
    no_shift = spsp_examples.psp_contributions(pre, post, post, neuron=NEURON, pre_shift=0, lookback=8.0)
    assert no_shift[0, 0] == pytest.approx(eps(299, 299)) and no_shift[0, 2] == pytest.approx(eps(299, 1))


@pytest.mark.parametrize(
    "steps, p_pre, p_post, seed, shift, lookback",
    [
        (120, 0.2, 0.1, 0, None, 4.0),
        (400, 0.05, 0.03, 1, None, 4.0),
        (300, 0.3, 0.4, 2, 0, 0.5),
        (200, 0.1, 0.2, 3, 3, 1.0),
    ],
)
def test_firing_terms_sum_to_spsp(steps, p_pre, p_post, seed, shift, lookback):
    pre, post = random_train(steps, p_pre, seed), random_train(steps, p_post, seed + 100)
    assert pre.sum() > 0 and post.sum() > 1
    terms = spsp_examples.firing_terms(pre, post, neuron=NEURON, pre_shift=shift, lookback=lookback)
    e = spsp(
        pre[:, None, None],
        post[:, None, None],
        neuron=NEURON,
        pre_shift=shift,
        lookback=lookback,
    )
    assert terms.shape == (int(post.sum()), int(pre.sum()))
    assert terms.sum().item() == pytest.approx(e.item(), rel=1e-10)


def test_membrane_contributions_match_terms_and_clamp_refractory():
    pre = random_train(300, 0.2, 5)
    post = simulate_lif(
        pre[:, None, None], torch.tensor([[1.0]], dtype=torch.float64), vth=4.0, neuron=NeuronParams(TAU_M, TAU_S, 4)
    )[:, 0, 0]
    shares = spsp_examples.membrane_contributions(pre, post, neuron=NeuronParams(TAU_M, TAU_S, 4))
    terms = spsp_examples.firing_terms(pre, post, neuron=NeuronParams(TAU_M, TAU_S, 4))
    times = spsp_examples.firing_steps(post)
    assert len(times) >= 3 and shares.shape == (300, int(pre.sum()))
    assert torch.allclose(shares[times], terms, rtol=1e-12, atol=0)
    for tau in times.tolist():
        assert torch.all(shares[tau + 1 : tau + 4] == 0)  # clamped until the reset ends at tau + t_ref
    assert torch.all(
        shares[: int(spsp_examples.firing_steps(pre)[0]) + 3] == 0
    )  # nothing before the first shifted pre spike


def test_firing_table_columns():
    pre, post = random_train(250, 0.15, 7), random_train(250, 0.04, 8)
    table = spsp_examples.firing_table(pre, post, 2.0, neuron=NEURON)
    times = spsp_examples.firing_steps(post)
    e = spsp(pre[:, None, None], post[:, None, None], neuron=NEURON).item()
    assert table["tau_f"].tolist() == times.tolist() and table.index.tolist() == list(range(1, len(times) + 1))
    assert table["s_f"].iloc[0] == times[0] - 1 and table["s_f"].iloc[1] == times[1] - times[0] - T_REF
    assert table["term"].sum() == pytest.approx(e, rel=1e-10)
    assert table["w_term"].sum() == pytest.approx(2.0 * e, rel=1e-10)


def test_random_layer_is_seeded():
    pre, weight = spsp_examples.random_layer(3, steps=50, batch=2, n_in=30, n_out=5, weight_low=-0.5, weight_high=1.5)
    again, weight_again = spsp_examples.random_layer(
        3, steps=50, batch=2, n_in=30, n_out=5, weight_low=-0.5, weight_high=1.5
    )
    other, _ = spsp_examples.random_layer(4, steps=50, batch=2, n_in=30, n_out=5, weight_low=-0.5, weight_high=1.5)
    assert pre.shape == (50, 2, 30) and weight.shape == (5, 30) and pre.dtype == weight.dtype == torch.float64
    assert torch.equal(pre, again) and torch.equal(weight, weight_again) and not torch.equal(pre, other)
    assert pre[0].sum() == 0 and set(pre.unique().tolist()) <= {0.0, 1.0}
    assert weight.min() >= -0.5 and weight.max() < 1.5 and weight.min() < 0 < weight.max()


def test_layer_response_and_macro_relation():
    pre, weight = spsp_examples.random_layer(1, steps=300, batch=2, n_in=80, n_out=40, weight_low=-1.0, weight_high=1.5)
    response = spsp_examples.layer_response(pre, weight, vth=10.0)
    post = simulate_lif(pre, weight, vth=10.0)
    assert torch.equal(response.post, post) and torch.equal(response.counts, post.sum(dim=0))
    assert torch.allclose(response.total_psp, torch.einsum("bij,ij->bi", spsp(pre, post), weight), rtol=1e-12)
    fired = response.counts > 0
    assert fired.sum() > 40
    macro = spsp_examples.prediction_agreement(response.counts[fired], response.total_psp[fired] / 10.0)
    assert macro["correlation"] > 0.99 and 0.9 < macro["slope"] < 1.15  # o_i ~ a_i / vth (ALGORITHMS.md 1.4)


def test_agreement_values():
    got = spsp_examples.prediction_agreement(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0]))
    assert got == pytest.approx(
        {"points": 3.0, "correlation": 1.0, "mean_abs_deviation": 2.0, "mean_deviation": 2.0, "slope": 2.0}
    )
    assert spsp_examples.prediction_agreement(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0]))[
        "correlation"
    ] == pytest.approx(-1.0)


def test_effect_ratio_by_post():
    e = torch.tensor([[[2.0, 9.0, 0.1], [4.0, 4.0, 1.0], [0.1, 0.1, 0.0]]], dtype=torch.float64)
    post_counts = torch.tensor([[3.0, 1.0, 0.0]], dtype=torch.float64)
    pre_counts = torch.tensor([[2.0, 3.0, 0.0]], dtype=torch.float64)  # pre 2 silent: left out
    mean, std = spsp_examples.effect_ratio_by_post(e, post_counts, pre_counts)
    assert torch.allclose(mean[0, :2], torch.tensor([2.0, 5.0 / 3.0], dtype=torch.float64))
    assert torch.allclose(std[0, :2], torch.tensor([1.0, 1.0 / 3.0], dtype=torch.float64))
    assert torch.isnan(mean[0, 2])  # silent post neuron


def test_weight_sweep_matches_separate_simulations():
    pre, weight = spsp_examples.random_layer(2, steps=250, batch=1, n_in=40, n_out=3, weight_low=-0.5, weight_high=1.0)
    values = torch.tensor([-2.0, 0.0, 1.0, 3.0], dtype=torch.float64)
    sweep = spsp_examples.weight_sweep(pre, weight[1], 7, values, vth=8.0)
    for k, value in enumerate(values.tolist()):
        row = weight[1:2].clone()
        row[0, 7] = value
        post = simulate_lif(pre, row, vth=8.0)
        e = spsp(pre, post)
        assert sweep.counts[k] == post.sum()
        assert sweep.e[k].item() == pytest.approx(e[0, 0, 7].item(), rel=1e-12)
        assert sweep.total_psp[k].item() == pytest.approx((e[0, 0] * row[0]).sum().item(), rel=1e-12)
        assert sweep.sigma[k].item() == pytest.approx(side_effect(e, row, post.sum(dim=0), 8.0)[0, 0].item(), rel=1e-12)
    assert sweep.counts[-1] > sweep.counts[0]


def test_linear_count_change_and_secant_gain():
    sweep = spsp_examples.CountSweep(
        values=torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64),
        counts=torch.tensor([1.0, 2.0, 4.0, 7.0], dtype=torch.float64),
        total_psp=torch.zeros(4, dtype=torch.float64),
        e=torch.tensor([5.0, 10.0, 20.0, 30.0], dtype=torch.float64),
        sigma=torch.tensor([0.0, 0.5, 1.0, 1.0], dtype=torch.float64),
    )
    full = spsp_examples.linear_count_change(sweep, 1, vth=5.0)
    plain = spsp_examples.linear_count_change(sweep, 1, vth=5.0, with_side_effect=False)
    assert torch.allclose(full, torch.tensor([-1.0, 2.0, 5.0, 8.0], dtype=torch.float64))  # gain 10 * 1.5 / 5
    assert torch.allclose(plain, torch.tensor([0.0, 2.0, 4.0, 6.0], dtype=torch.float64))  # gain 10 / 5
    assert spsp_examples.secant_gain(sweep, 1, 1) == pytest.approx(1.5)
    assert spsp_examples.secant_gain(sweep, 1, 5) == pytest.approx(2.0)  # clipped to the ends


def test_figures_draw():
    from snnbp.plots import hm2bp as plots_hm2bp

    pre = random_train(200, 0.2, 9)
    post = simulate_lif(pre[:, None, None], torch.tensor([[1.0]], dtype=torch.float64), vth=4.0)[:, 0, 0]
    shares = spsp_examples.membrane_contributions(pre, post)
    figures = [plots_hm2bp.spsp_pair(pre, post, shares, 1.0, 4.0, t_ref=T_REF, lookback_steps=256, title="pair")]
    counts = torch.tensor([1.0, 5.0, 9.0], dtype=torch.float64)
    figures.append(plots_hm2bp.macro_relation(counts, counts + 0.5, "macro"))
    figures.append(plots_hm2bp.effect_ratio(counts, counts, 0.5, "post 0", counts, counts / 10, counts / 100, "micro"))
    values = torch.linspace(-1.0, 1.0, 5, dtype=torch.float64)
    sweep = spsp_examples.CountSweep(
        values=values,
        counts=torch.arange(5.0, dtype=torch.float64),
        total_psp=values + 2,
        e=torch.ones(5, dtype=torch.float64),
        sigma=torch.ones(5, dtype=torch.float64),
    )
    figures.append(plots_hm2bp.weight_staircase(sweep, 2, 1.0, {"line": values}, "sweep"))
    for fig in figures:
        assert fig.axes and "(" in fig.axes[-1].get_xlabel()  # a unit on the bottom axis
        matplotlib.pyplot.close(fig)

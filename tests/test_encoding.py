"""Rate and latency codes: statistics, determinism from the seed, edge cases."""

from __future__ import annotations

import torch

from snnbp.encoding.latency import latency_code
from snnbp.encoding.rate import bernoulli_rate_code
from snnbp.seeding import derive_seed, torch_generator


def test_rate_code_probability_and_silent_first_step():
    images = torch.tensor([[0, 255, 128]], dtype=torch.uint8).repeat(64, 1)
    spikes = bernoulli_rate_code(images, 400, generator=torch_generator(1, "enc"))
    assert spikes.shape == (400, 64, 3)
    assert spikes[0].sum() == 0 and spikes[:, :, 0].sum() == 0
    rate = spikes[1:, :, 1].mean().item()
    assert abs(rate - 1 / 5.5) < 0.01
    assert abs(spikes[1:, :, 2].mean().item() - 128 / (5.5 * 255)) < 0.01


def test_rate_code_is_reproducible_from_the_seed():
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = bernoulli_rate_code(images, 50, generator=torch_generator(7, "enc"))
    b = bernoulli_rate_code(images, 50, generator=torch_generator(7, "enc"))
    c = bernoulli_rate_code(images, 50, generator=torch_generator(8, "enc"))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_latency_code_brighter_is_earlier_and_black_is_silent():
    images = torch.tensor([[255, 128, 1, 0]], dtype=torch.uint8)
    times = latency_code(images, 10.0)
    assert times[0, 0] == 0.0 and times[0, 0] < times[0, 1] < times[0, 2] < 10.0
    assert torch.isinf(times[0, 3])
    assert latency_code(images, 10.0, zero_pixels_spike=True)[0, 3] == 10.0


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(1, "a") == derive_seed(1, "a")
    assert len({derive_seed(1, "a"), derive_seed(1, "b"), derive_seed(2, "a")}) == 3

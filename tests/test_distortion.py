"""Training-image distortions of the HM2-BP spiking CNN (snnbp.encoding.distortion, ALGORITHMS.md 1.10)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from snnbp.config import ConfigError, load_params, params_from_dict, params_to_dict  # noqa: E402
from snnbp.data.base import DatasetInfo  # noqa: E402
from snnbp.encoding.distortion import (  # noqa: E402
    ImageDistortion,
    affine_displacement,
    distort_images,
    draw_displacements,
    gaussian_window,
    warp_images,
)
from snnbp.hm2bp.inputs import distortion_fields  # noqa: E402
from snnbp.hm2bp.learner import build_learner  # noqa: E402
from snnbp.hm2bp.params import ModelParams  # noqa: E402
from snnbp.learner import Batch  # noqa: E402
from snnbp.plots.data import distorted_digits_figure  # noqa: E402
from snnbp.train import params_hash  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL = ImageDistortion(scale=12.0, rotation=12.0, elastic=3.4)


def _digits(count: int = 3, seed: int = 0) -> torch.Tensor:
    """Blob-like uint8 ``[count, 28, 28]`` test images (ink in the middle 20 x 20 box)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(count, 28, 28, dtype=torch.uint8)
    images[:, 4:24, 4:24] = torch.randint(0, 256, (count, 20, 20), generator=generator, dtype=torch.uint8)
    return images


def test_all_amplitudes_zero_is_the_identity():
    params = ImageDistortion()
    assert params.is_identity and not OFFICIAL.is_identity
    dx, dy = draw_displacements(params, 4, 28, 28, generator=torch.Generator().manual_seed(3))
    assert torch.count_nonzero(dx) == 0 and torch.count_nonzero(dy) == 0
    images = _digits(4)
    images[:, 27, 27] = 200  # the last row and column too (a zero displacement keeps the pixel)
    out = distort_images(images, params, generator=torch.Generator().manual_seed(3))
    assert out.dtype == torch.float32 and torch.equal(out, images.to(torch.float32))


def test_seeded_draws_repeat_and_differ_with_the_seed():
    images = _digits(3)
    first = distort_images(images, OFFICIAL, generator=torch.Generator().manual_seed(11))
    again = distort_images(images, OFFICIAL, generator=torch.Generator().manual_seed(11))
    other = distort_images(images, OFFICIAL, generator=torch.Generator().manual_seed(12))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert not torch.equal(first, images.to(torch.float32))


def test_epoch_fields_are_shared_by_the_batches_of_an_epoch_and_redrawn_the_next():
    indices_a, indices_b = torch.tensor([5, 9, 2]), torch.tensor([0, 1, 7])
    a = distortion_fields(OFFICIAL, 1, 0, indices_a, 28, 28)
    b = distortion_fields(OFFICIAL, 1, 0, indices_b, 28, 28)
    later = distortion_fields(OFFICIAL, 1, 1, indices_a, 28, 28)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # batch position b -> field b, whatever the samples
    assert not torch.equal(a[0], later[0])
    assert not torch.equal(a[0][0], a[0][1])  # positions in a batch get different fields


def test_sample_fields_follow_the_sample_not_its_batch():
    params = ImageDistortion(scale=12.0, rotation=12.0, elastic=3.4, redraw="sample")
    together = distortion_fields(params, 1, 2, torch.tensor([4, 8]), 28, 28)
    alone = distortion_fields(params, 1, 2, torch.tensor([8]), 28, 28)
    assert torch.equal(together[0][1], alone[0][0]) and torch.equal(together[1][1], alone[1][0])
    assert not torch.equal(together[0][0], together[0][1])


def test_rotation_by_90_degrees_moves_a_known_pixel():
    # output (14 + x, 14 + y) samples input (14 + x cos - y sin, 14 + x sin + y cos): the pixel six
    # columns right of the centre, (14, 20), lands six rows below it, (20, 14) (clockwise on screen)
    image = torch.zeros(1, 28, 28)
    image[0, 14, 20] = 200.0
    zero = torch.zeros(1, dtype=torch.float64)
    dx, dy = affine_displacement(zero, zero, torch.tensor([90.0], dtype=torch.float64), 28, 28)
    out = warp_images(image, dx, dy)
    assert out[0, 20, 14] == pytest.approx(200.0, abs=1e-3)
    assert float(out.sum()) == pytest.approx(200.0, abs=1e-2)
    back = warp_images(out, *affine_displacement(zero, zero, torch.tensor([-90.0], dtype=torch.float64), 28, 28))
    assert back[0, 14, 20] == pytest.approx(200.0, abs=1e-2)


def test_rotation_by_a_small_angle_interpolates_between_neighbours():
    # 12 degrees: output (14, 14 + 5) samples (14 - 5 sin 12, 14 + 5 cos 12) = (12.960, 18.891)
    image = torch.zeros(1, 28, 28, dtype=torch.float64)
    image[0, 12:14, 18:20] = torch.tensor([[10.0, 20.0], [30.0, 40.0]], dtype=torch.float64)
    zero = torch.zeros(1, dtype=torch.float64)
    out = warp_images(image, *affine_displacement(zero, zero, torch.tensor([12.0], dtype=torch.float64), 28, 28))
    r, c = 14 - 5 * math.sin(math.radians(12)), 14 + 5 * math.cos(math.radians(12))
    fr, fc = r - 12, c - 18
    expected = (1 - fr) * (1 - fc) * 10 + (1 - fr) * fc * 20 + fr * (1 - fc) * 30 + fr * fc * 40
    assert float(out[0, 14, 19]) == pytest.approx(expected, rel=1e-5)


def test_stretch_enlarges_about_the_centre():
    # f = 0.5: output column 14 + c samples input column 14 + 0.5 c, so input 14 + 4 appears at 14 + 8
    image = torch.zeros(1, 28, 28)
    image[0, 14, 18] = 100.0
    half, zero = torch.tensor([0.5]), torch.zeros(1)
    out = warp_images(image, *affine_displacement(half, zero, zero, 28, 28))
    assert out[0, 14, 22] == pytest.approx(100.0)
    assert out[0, 14, 18] == 0.0


def test_source_points_outside_the_image_are_black():
    image = torch.full((1, 28, 28), 50.0)
    shift = torch.full((1, 28, 28), 3.0)  # samples 3 columns to the left: the first 3 columns fall outside
    out = warp_images(image, shift, torch.zeros(1, 28, 28))
    assert torch.all(out[0, :, :3] == 0) and torch.all(out[0, :27, 3:] == 50.0)
    # the last row's source points have no neighbour below them: black (the official rule), although
    # an undisplaced pixel there would keep its value
    assert torch.all(out[0, 27] == 0)


def test_gaussian_window_is_the_official_unnormalised_one():
    window = gaussian_window(4.0, 21, torch.float64)
    assert window.shape == (21, 21)
    assert float(window[10, 10]) == pytest.approx(1.0 / (8.0 * math.pi))
    assert float(window[10, 14]) == pytest.approx(math.exp(-16.0 / 32.0) / (8.0 * math.pi))
    assert float(window.sum()) == pytest.approx(3.93, abs=0.01)  # about sigma, not 1
    with pytest.raises(ValueError, match="odd"):
        gaussian_window(4.0, 20)


def test_elastic_field_amplitude_and_smoothness_match_the_smoothed_noise():
    # away from the border, d = a (G * U) with U ~ U(-1, 1): Var d = a^2 sum G^2 / 3, and the lag-1
    # covariance is a^2 sum G(i, j) G(i, j + 1) / 3 (a correlation near 1: a smooth field)
    amplitude = 3.4
    window = gaussian_window(4.0, 21, torch.float64)
    variance = amplitude**2 * float((window**2).sum()) / 3.0
    lag1 = float((window[:, :-1] * window[:, 1:]).sum() / (window**2).sum())
    dx, dy = draw_displacements(
        ImageDistortion(elastic=amplitude), 3000, 28, 28, generator=torch.Generator().manual_seed(5)
    )
    core = dx[:, 11:17, 11:17].to(torch.float64)
    assert float(core.var()) == pytest.approx(variance, rel=0.05)  # about (0.55 px)^2
    left, right = dx[:, 11:17, 11:16].to(torch.float64), dx[:, 11:17, 12:17].to(torch.float64)
    measured = float(((left - left.mean()) * (right - right.mean())).mean() / (left.std() * right.std()))
    assert measured == pytest.approx(lag1, abs=0.01) and measured > 0.97
    assert torch.equal(dx, dy)  # official draws: the vertical noise is the horizontal one
    raw = (
        torch.rand(3000, 28, 28, generator=torch.Generator().manual_seed(5)) * 2 - 1
    )  # unsmoothed: no such correlation
    white = torch.corrcoef(torch.stack([raw[:, 14, 14], raw[:, 14, 15]]))[0, 1]
    assert abs(float(white)) < 0.1


def test_independent_draws_decouple_the_axes_and_allow_shrinking():
    params = ImageDistortion(scale=12.0, rotation=12.0, elastic=3.4, official_draws=False)
    dx, dy = draw_displacements(params, 2000, 28, 28, generator=torch.Generator().manual_seed(6))
    correlation = torch.corrcoef(torch.stack([dx[:, 14, 14], dy[:, 14, 14]]))[0, 1]
    assert abs(float(correlation)) < 0.1
    stretch_only = ImageDistortion(scale=12.0, official_draws=False)
    sx, _ = draw_displacements(stretch_only, 2000, 28, 28, generator=torch.Generator().manual_seed(6))
    factor = sx[:, 0, 27] / 13.0  # dx = f_x (col - 14)
    assert float(factor.min()) < -0.1 and float(factor.max()) > 0.1 and float(factor.abs().max()) <= 0.12 + 1e-6


def test_official_draws_only_enlarge_and_rotate_within_the_range():
    stretch_rotate = ImageDistortion(scale=12.0, rotation=12.0)
    dx, dy = draw_displacements(stretch_rotate, 2000, 28, 28, generator=torch.Generator().manual_seed(7))
    # on the centre row (x = 0): dx = f_x y + y (1 - cos phi), dy = y sin phi, y = col - 14
    y = 13.0
    phi = torch.asin(dy[:, 14, 27] / y)
    f_x = (dx[:, 14, 27] - y * (1 - torch.cos(phi))) / y
    assert float(phi.abs().max()) <= math.radians(12.0) + 1e-5 and float(phi.abs().max()) > math.radians(11.0)
    assert float(f_x.min()) >= -1e-5 and float(f_x.max()) <= 0.12 + 1e-5
    assert float((f_x.abs() < 1e-6).float().mean()) == pytest.approx(0.5, abs=0.05)  # clamped where u_1 < 0
    assert torch.allclose(f_x.clamp(min=0), 0.12 * phi.clamp(min=0) / math.radians(12.0), atol=1e-4)  # f_x from u_1


def _info() -> DatasetInfo:
    return DatasetInfo(name="MNIST", key="mnist", num_classes=3, input_shape=(28, 28), kind="image")


def _learner(distortion: ImageDistortion | None, **kw):
    model = ModelParams(
        layers=("5",),
        thresholds=(2.0, 2.0),
        time_steps=12,
        fixed_encoding=False,
        engine="torch",
        distortion=distortion,
        **kw,
    )
    return build_learner(model, _info(), seed=4)


def test_the_learner_distorts_training_batches_only():
    images, labels, indices = _digits(2), torch.tensor([0, 1]), torch.tensor([0, 1])
    plain, zero, distorted = _learner(None), _learner(ImageDistortion()), _learner(OFFICIAL)
    train = Batch(images, labels, indices, "train")
    assert torch.equal(plain.encode(train), zero.encode(train))  # amplitudes 0: the same trains
    assert torch.equal(distorted.training_images(train), distort_like_epoch(images, 0))
    assert not torch.equal(plain.encode(train), distorted.encode(train))
    test = Batch(images, labels, indices, "test")
    assert torch.equal(distorted.training_images(test), images)
    assert torch.equal(plain.encode(test), distorted.encode(test))


def distort_like_epoch(images: torch.Tensor, epoch: int) -> torch.Tensor:
    dx, dy = distortion_fields(OFFICIAL, 4, epoch, torch.arange(len(images)), 28, 28)
    return warp_images(images, dx, dy)


def test_the_learner_redraws_after_an_epoch_and_resumes_the_epoch():
    images, labels, indices = _digits(2), torch.tensor([0, 1]), torch.tensor([0, 1])
    learner = _learner(OFFICIAL)
    batch = Batch(images, labels, indices, "train")
    learner.train_step(batch)
    learner.end_epoch(1)
    assert learner.epoch == 1
    assert torch.equal(learner.training_images(batch), distort_like_epoch(images, 1))
    resumed = _learner(OFFICIAL)
    resumed.load_state_dict(learner.state_dict())
    assert resumed.epoch == 1
    old_state = learner.state_dict()
    del old_state["epoch"]  # a checkpoint written before distortions existed
    resumed.load_state_dict(old_state)
    assert resumed.epoch == 0


def test_a_raster_dataset_refuses_distortions():
    info = DatasetInfo(name="N-MNIST", key="nmnist", num_classes=10, input_shape=(540, 2312), kind="raster")
    with pytest.raises(ValueError, match="model.distortion distorts images"):
        build_learner(ModelParams(distortion=OFFICIAL), info, seed=1)


def _params(model: dict) -> dict:
    return {
        "name": "x",
        "method": "hm2bp",
        "notebook": "10_train_hm2bp.ipynb",
        "seed": 1,
        "data": {"dataset": "mnist"},
        "train": {"epochs": 1, "batch_size": 1},
        "model": model,
    }


def test_params_read_the_distortion_block_and_refuse_bad_keys_and_values():
    params = params_from_dict(_params({"distortion": {"scale": 12, "rotation": 12, "elastic": 3.4}}), "f.yaml")
    assert params.model.distortion == OFFICIAL
    with pytest.raises(ConfigError, match=r"f.yaml: unknown key 'model.distortion.shear'"):
        params_from_dict(_params({"distortion": {"shear": 1.0}}), "f.yaml")
    with pytest.raises(ConfigError, match=r"f.yaml: key 'model.distortion.elastic_window' must be an odd integer"):
        params_from_dict(_params({"distortion": {"elastic_window": 20}}), "f.yaml")
    with pytest.raises(ConfigError, match=r"f.yaml: key 'model.distortion.scale' must be a number in \[0, 100\)"):
        params_from_dict(_params({"distortion": {"scale": -1}}), "f.yaml")
    with pytest.raises(ConfigError, match=r"f.yaml: key 'model.distortion.redraw' expected one of"):
        params_from_dict(_params({"distortion": {"redraw": "batch"}}), "f.yaml")


def test_without_distortions_the_recorded_params_hashes_are_unchanged():
    for run in ("hm2bp_fsdd", "hm2bp_nmnist_subset"):
        record = json.loads((ROOT / "results" / "cpu" / run / "run.json").read_text())
        params = load_params(ROOT / "params" / "cpu" / f"{run}.yaml")
        assert params.model.distortion is None
        assert params_hash(params_to_dict(params)) == record["params_hash"], run
    on = params_to_dict(params_from_dict(_params({"distortion": {"scale": 12}}), "f.yaml"))
    off = params_to_dict(params_from_dict(_params({}), "f.yaml"))
    assert params_hash(on) != params_hash(off)


def test_distorted_digits_figure_has_a_row_per_draw():
    images = _digits(3).numpy()
    draws = torch.stack(
        [
            distort_images(torch.from_numpy(images), OFFICIAL, generator=torch.Generator().manual_seed(k))
            for k in range(2)
        ]
    ).numpy()
    fig = distorted_digits_figure(images, draws, [1, 2, 3], "MNIST: official CNN distortions")
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 9 and shown[0].get_title() == "digit 1, original" and shown[3].get_title() == "draw 1"
    assert fig._suptitle.get_text() == "MNIST: official CNN distortions"
    with pytest.raises(ValueError, match="distorted must be"):
        distorted_digits_figure(images, draws[0], [1, 2, 3], "x")
    plt.close(fig)

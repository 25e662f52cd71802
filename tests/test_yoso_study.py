"""The YOSO study: checkpoints into the simulator (predictions as the model's), sweeps, the
rate-coded comparison, and results that are never silently overwritten. Tiny networks on toy
images written to tmp_path; one end-to-end notebook run on MNIST-shaped random networks."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from snnbp.config import eval_params_from_dict, params_from_dict, params_to_dict
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.data.fetch import is_complete
from snnbp.encoding.latency import latency_code
from snnbp.io import atomic_torch_save
from snnbp.learner import Batch
from snnbp.train import build_learner, fit
from snnbp.yoso import DEFAULT_PARAMS, load_arch, load_energy, study, with_changes

INFO = DatasetInfo(name="toy bars", key="toy", num_classes=3, input_shape=(6, 6), kind="image", is_standin=True)
needs_mnist = pytest.mark.skipif(not is_complete("mnist"), reason="MNIST not fetched (make data)")


def _bars(count: int, seed: int) -> LabelledSplit:
    """Class c: a bright horizontal bar in rows 2c..2c+1, plus dim noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (count,), generator=generator)
    images = (torch.rand(count, 6, 6, generator=generator) * 60).to(torch.uint8)
    for index, label in enumerate(labels.tolist()):
        images[index, 2 * label : 2 * label + 2] = 200 + (torch.rand(2, 6, generator=generator) * 55).to(torch.uint8)
    return LabelledSplit(images, labels)


def _stdbp_params(hidden: int = 12, epochs: int = 3, dataset: str = "mnist"):
    return params_from_dict(
        {
            "name": "toy_stdbp",
            "method": "stdbp",
            "notebook": "20_train_stdbp.ipynb",
            "seed": 3,
            "data": {"dataset": dataset},
            "train": {"epochs": epochs, "batch_size": 25},
            "model": {
                "hidden": [hidden],
                "t_max": 5.0,
                "lr": 3e-3,
                "clip": 2.0,
                "t_silent": 10.0,
                "silent_penalty": 0.1,
            },
        },
        "test",
    )


def _hm2bp_params(hidden: int = 12, time_steps: int = 20, dataset: str = "mnist"):
    return params_from_dict(
        {
            "name": "toy_hm2bp",
            "method": "hm2bp",
            "notebook": "10_train_hm2bp.ipynb",
            "seed": 4,
            "data": {"dataset": dataset},
            "train": {"epochs": 1, "batch_size": 10},
            "model": {"layers": [str(hidden)], "thresholds": [2.0, 2.0], "time_steps": time_steps, "rate_scale": 2.0},
        },
        "test",
    )


def _save_untrained(path, params, info):
    """A checkpoint of a freshly initialised learner, in the layout ``snnbp.train.fit`` writes."""
    learner = build_learner(params, info)
    atomic_torch_save(
        path,
        {
            "params": params_to_dict(params),
            "params_hash": "untrained",
            "epoch": 0,
            "learner": learner.state_dict(),
            "history": [],
        },
    )
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 36-12-3 ReL-PSP network trained on toy bars by the real training loop."""
    folder = tmp_path_factory.mktemp("stdbp")
    test = _bars(60, 2)
    result = fit(_stdbp_params(), folder, data=(_bars(300, 1), test, INFO), progress=False)
    return folder / "checkpoint.pt", test, result


@pytest.fixture(scope="module")
def hm2bp_checkpoint(tmp_path_factory):
    return _save_untrained(tmp_path_factory.mktemp("hm2bp") / "checkpoint.pt", _hm2bp_params(), INFO)


def _fine_arch(**changes):
    """Time grid fine enough that quantisation cannot reorder the toy network's output spikes."""
    return with_changes(load_arch(), dt_ms=1e-3, t_window_ms=30.0, **changes)


# ------------------------------------------------------------------ loading a checkpoint


def test_loaded_network_is_the_learners_own(trained):
    checkpoint, test, result = trained
    net = study.load_stdbp(checkpoint, test=(test, INFO))
    assert net.layer_sizes == [36, 12, 3] and net.network == "36-12-3" and net.n_images == 60
    for mine, theirs in zip(net.weights, result.learner.weights):
        assert mine.dtype == torch.float64 and torch.equal(mine, theirs.detach().double())
    assert torch.equal(net.t_in, latency_code(test.inputs, 5.0).double())
    assert net.model_accuracy == pytest.approx(result.metrics["test_accuracy"], abs=1e-12)
    assert net.recorded_test_accuracy == result.metrics["test_accuracy"] and net.epoch == 3
    assert net.model_accuracy >= 0.8  # the toy task is learnt, so agreement below is not trivial


def test_simulated_accelerator_predicts_what_the_trained_model_predicts(trained):
    checkpoint, test, result = trained
    net = study.load_stdbp(checkpoint, test=(test, INFO))
    energy = load_energy()
    exact = study.run_accelerator(net, _fine_arch(), energy, quantise=False)
    assert study.decision_agreement(exact, net) == 1.0
    # every layer's spike times as the model's, up to a few steps of the fine grid (so the threshold,
    # the time unit and the weights all reached the simulator unchanged)
    for sim_times, model_times in zip(exact.sim.spike_times, result.learner.output_times(test.inputs)):
        model_times = model_times.double()
        fired = torch.isfinite(sim_times) & torch.isfinite(model_times)
        assert (torch.isfinite(sim_times) == torch.isfinite(model_times)).double().mean() >= 0.99
        assert ((sim_times - model_times).abs()[fired] < 5e-3).double().mean() >= 0.99
    assert exact.metrics["accuracy"] == pytest.approx(net.model_accuracy)
    default = study.run_accelerator(net, load_arch(), energy)  # dt 0.1 ms, 8-bit weights
    assert study.decision_agreement(default, net) >= 0.9
    table = study.fidelity_table(net, default, load_arch(), energy)
    assert list(table["agreement_with_model"])[0] == 1.0 and table.loc[2, "accuracy"] == default.metrics["accuracy"]


def test_first_images_and_the_limits(trained, hm2bp_checkpoint, tmp_path):
    checkpoint, test, _ = trained
    net = study.load_stdbp(checkpoint, 7, test=(test, INFO))
    assert net.n_images == 7 and torch.equal(net.labels, test.labels[:7])
    assert study.subset(net, 3).n_images == 3
    with pytest.raises(ValueError, match="61 test images requested"):
        study.load_stdbp(checkpoint, 61, test=(test, INFO))
    with pytest.raises(ValueError, match="a 'hm2bp' checkpoint, expected 'stdbp'"):
        study.load_stdbp(hm2bp_checkpoint, test=(test, INFO))
    with pytest.raises(FileNotFoundError, match="stdbp checkpoint not found"):
        study.load_stdbp(tmp_path / "absent.pt", test=(test, INFO))


def test_alpha_checkpoints_are_refused(tmp_path):
    base = _stdbp_params()
    params = dataclasses.replace(base, model=dataclasses.replace(base.model, kernel="alpha"))
    path = _save_untrained(tmp_path / "alpha.pt", params, INFO)
    with pytest.raises(ValueError, match="ReL-PSP"):
        study.load_stdbp(path, test=(_bars(5, 0), INFO))


def test_cnn_checkpoint_runs_on_the_accelerator_as_the_model_decides(tmp_path):
    """A (briefly trained) spiking CNN: sparse layers from its conv + pooling, inputs flattened, and
    on a fine time grid with float64 weights the accelerator decides as the exact model does."""
    base = _stdbp_params(epochs=2)
    changes = {"conv_channels": (3,), "conv_kernel": 3, "pool_size": 2, "hidden": (6,)}
    params = dataclasses.replace(base, model=dataclasses.replace(base.model, **changes))
    test = _bars(30, 2)
    fit(params, tmp_path, data=(_bars(100, 1), test, INFO), progress=False)
    net = study.load_stdbp(tmp_path / "checkpoint.pt", test=(test, INFO))
    assert net.is_convolutional and net.network == "6x6-3C3-P2-12-6-3"
    assert net.outputs == [12, 6, 3] and net.t_in.shape == (30, 36)
    arch = with_changes(load_arch(), dt_ms=0.001, t_window_ms=40.0, mesh_rows=4, mesh_cols=4)
    run = study.run_accelerator(net, arch, load_energy(), quantise=False)
    assert [layer.wiring is not None for layer in run.mapping.layers] == [True, False, False]
    assert study.decision_agreement(run, net) >= 0.9
    with pytest.raises(ValueError, match="convolutional"):
        study.truncate_hidden(net, 3)


# --------------------------------------------------------------------------------- sweeps


def _random_net(sizes=(20, 16, 4), images=12, seed=0):
    rng = np.random.default_rng(seed)
    weights = tuple(
        torch.tensor(np.abs(rng.normal(0.2, 0.3, (n_out, n_in)))) for n_in, n_out in zip(sizes[:-1], sizes[1:])
    )
    t_in = torch.tensor(np.where(rng.random((images, sizes[0])) < 0.6, rng.uniform(0, 5, (images, sizes[0])), np.inf))
    labels = torch.arange(images) % sizes[-1]
    return study.TtfsNetwork(
        weights, 1.0, t_in, labels, labels.clone(), "-".join(map(str, sizes)), "random", "random", 5.0, 0, None
    )


def test_truncate_hidden_keeps_the_first_neurons():
    net = _random_net()
    small = study.truncate_hidden(net, 5)
    assert small.layer_sizes == [20, 5, 4] and small.network == "20-5-4"
    assert torch.equal(small.weights[0], net.weights[0][:5]) and torch.equal(small.weights[1], net.weights[1][:, :5])
    assert all(torch.equal(a, b) for a, b in zip(study.truncate_hidden(net, 16).weights, net.weights))
    with pytest.raises(ValueError, match="cannot truncate"):
        study.truncate_hidden(net, 17)
    deep = _random_net((20, 10, 8, 4))
    assert study.truncate_hidden(deep, 6).layer_sizes == [20, 6, 6, 4]


def test_spread_mapping_uses_the_mesh():
    arch = load_arch()  # 4x4
    assert study.spread_pes_per_layer([784, 800, 10], arch) == (15, 1)
    assert study.spread_pes_per_layer([784, 8, 10], arch) == (8, 1)  # at most one PE per neuron
    assert study.spread_pes_per_layer([20, 10], arch) == (10,)  # no hidden layer: the output layer spreads
    counts = study.spread_pes_per_layer([784, 300, 500, 10], with_changes(arch, mesh_rows=8, mesh_cols=8))
    assert sum(counts) <= 64 and counts[-1] == 1 and counts[1] > counts[0]


def test_mesh_sweep_marks_meshes_that_do_not_fit_and_keeps_the_function():
    net = _random_net()
    energy = load_energy()
    arch = with_changes(load_arch(), neurons_per_pe=4)  # 16 hidden neurons need 4 PEs, plus 1 for the output
    frame = study.mesh_sweep(net, arch, energy, [(1, 2), (3, 3)])
    small, big = frame[frame["mesh"] == "1x2"], frame[frame["mesh"] == "3x3"]
    assert not small["fits"].any() and small["energy_per_image_uj"].isna().all()
    assert big["fits"].all() and list(big["pes_used"]) == [5, 9]
    assert big["accuracy"].nunique() == 1  # placement changes the cost, never the spikes
    spread = big[big["placement"] == "spread"].iloc[0]
    compact = big[big["placement"] == "compact"].iloc[0]
    assert spread["latency_ms"] < compact["latency_ms"]


def test_size_sweep_full_width_row_is_the_full_network():
    net = _random_net()
    arch, energy = load_arch(), load_energy()
    frame = study.size_sweep(net, arch, energy, [4, 16])
    full = study.run_accelerator(net, arch, energy).metrics
    assert list(frame["network"]) == ["20-4-4", "20-16-4"]
    assert frame.iloc[1]["energy_per_image_uj"] == pytest.approx(full["energy_per_image_uj"])
    assert frame.iloc[0]["hidden_spikes"] <= 4


def test_per_image_frame_adds_up():
    net = _random_net(images=20)
    run = study.run_accelerator(net, load_arch(), load_energy())
    frame = study.per_image_frame(run, net)
    assert len(frame) == 20
    assert frame["energy_uj"].mean() == pytest.approx(run.metrics["energy_per_image_uj"])
    assert (frame["input_spikes"] == torch.isfinite(net.t_in).sum(1).numpy()).all()
    assert (frame["input_spikes_processed"] <= frame["input_spikes"]).all()
    assert (frame["output_spikes"] >= 1).all() and frame["correct"].mean() == pytest.approx(run.metrics["accuracy"])


def test_spike_fits_recover_a_line():
    frame = pd.DataFrame(
        {
            "input_spikes": [1.0, 2.0, 3.0, 4.0],
            "input_spikes_processed": [1.0, 1.0, 1.0, 1.0],
            "hidden_spikes": [0.0, 1.0, 0.0, 1.0],
            "energy_uj": [0.5, 0.7, 0.9, 1.1],
        }
    )
    fits = study.spike_fits(frame).set_index("spikes")
    assert fits.loc["input_spikes", "nj_per_spike"] == pytest.approx(200.0)
    assert fits.loc["input_spikes", "intercept_uj"] == pytest.approx(0.3)
    assert fits.loc["input_spikes", "pearson_r"] == pytest.approx(1.0)
    assert math.isnan(fits.loc["input_spikes_processed", "pearson_r"])  # no spread, no fit


# ------------------------------------------------------------------------ rate vs temporal


def test_rate_coded_run_charges_the_hm2bp_models_own_spikes(hm2bp_checkpoint):
    test = _bars(9, 5)
    arch, energy = load_arch(), load_energy()
    rate = study.evaluate_rate_coded(hm2bp_checkpoint, 9, arch, energy, test=(test, INFO), chunk_size=4)
    params = _hm2bp_params()
    learner = build_learner(params, INFO)
    batch = Batch(test.inputs, test.labels, torch.arange(9), "test")
    assert rate.metrics["accuracy"] == float((learner.predict(batch) == test.labels).double().mean())
    counts = learner.output_counts(batch)
    assert rate.metrics["spikes_per_layer"][-1] == pytest.approx(float(counts.sum(1).mean()))
    assert rate.metrics["n_images"] == 9 and rate.metrics["time_steps"] == 20 and rate.network == "36-12-3"
    assert rate.counts.cycles.shape == (9,) and (rate.counts.stop_step == 19).all()  # the whole window
    whole = study.evaluate_rate_coded(hm2bp_checkpoint, 9, arch, energy, test=(test, INFO), chunk_size=50)
    assert whole.metrics["energy_per_image_uj"] == pytest.approx(rate.metrics["energy_per_image_uj"], rel=1e-12)
    sweeps = rate.counts.total("compares")  # every neuron at every step
    assert torch.all(sweeps == 20 * (12 + 3))


def test_rate_vs_temporal_rows_and_checks(trained, hm2bp_checkpoint):
    checkpoint, test, _ = trained
    arch, energy = load_arch(), load_energy()
    net = study.load_stdbp(checkpoint, 9, test=(test, INFO))
    temporal = study.run_accelerator(net, arch, energy)
    rate = study.evaluate_rate_coded(hm2bp_checkpoint, 9, arch, energy, test=(test, INFO))
    frame = study.rate_vs_temporal(temporal, net.network, rate)
    assert list(frame["coding"]) == ["temporal (ReL-PSP, TTFS)", "rate (HM2-BP)"]
    assert frame.loc[0, "energy_per_image_uj"] == temporal.metrics["energy_per_image_uj"]
    assert frame.loc[1, "energy_per_image_uj"] == rate.metrics["energy_per_image_uj"]
    groups = frame[[f"{g}_uj" for g in study.GROUPS]].sum(axis=1)
    assert np.allclose(groups, frame["energy_per_image_uj"])
    assert "rate" in study.rate_ratio_lines(frame) and "9 images" in study.rate_ratio_lines(frame)
    with pytest.raises(ValueError, match="images"):
        study.rate_vs_temporal(study.run_accelerator(study.subset(net, 4), arch, energy), net.network, rate)
    with pytest.raises(ValueError, match="same size"):
        study.rate_vs_temporal(temporal, "36-99-3", rate)


# --------------------------------------------------------------------------------- records


def _eval_params(stdbp, hm2bp, **changes):
    content = {
        "name": "yoso_t",
        "method": "yoso",
        "notebook": "30_yoso.ipynb",
        "seed": 1,
        "stdbp_checkpoint": str(stdbp),
        "hm2bp_checkpoint": str(hm2bp),
        "yoso_params": str(DEFAULT_PARAMS),
        "test_images": 9,
        "hm2bp_images": 9,
        **changes,
    }
    return eval_params_from_dict(content, "test")


def _metrics(params, trained, hm2bp):
    checkpoint, test, _ = trained
    arch, energy = load_arch(), load_energy()
    net = study.load_stdbp(checkpoint, 9, test=(test, INFO))
    run = study.run_accelerator(net, arch, energy)
    rate = study.evaluate_rate_coded(hm2bp, 9, arch, energy, test=(test, INFO))
    return study.collect_metrics(
        params=params,
        net=net,
        run=run,
        fidelity=study.fidelity_table(net, run, arch, energy),
        timing=study.timing_variants(net, arch, energy),
        meshes=study.mesh_sweep(net, arch, energy, [(2, 2)]),
        sizes=study.size_sweep(net, arch, energy, [6, 12]),
        fits=study.spike_fits(study.per_image_frame(run, net)),
        rate=study.rate_vs_temporal(run, net.network, rate),
    )


def test_results_are_written_and_never_silently_replaced(trained, hm2bp_checkpoint, tmp_path):
    checkpoint = trained[0]
    params = _eval_params(checkpoint, hm2bp_checkpoint)
    writer = study.open_results(tmp_path / "run", params)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"
    metrics = _metrics(params, trained, hm2bp_checkpoint)
    writer.finish(metrics)
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key in (
        "power_mw",
        "latency_ms",
        "energy_per_image_uj",
        "test_accuracy",
        "model_accuracy",
        "agreement",
        "breakdown_uj",
        "breakdown_fraction",
        "power_ratio",
        "latency_ratio",
        "energy_ratio",
        "n_images",
        "rate_vs_temporal",
        "mesh_sweep",
        "size_sweep",
        "params_hash",
    ):
        assert key in stored, key
    assert stored["inputs"]["stdbp_checkpoint"]["sha256"] == study.sha256_file(checkpoint)
    assert stored["rate_vs_temporal"]["energy_ratio"] > 0 and stored["n_images"] == 9
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "completed" and run["params"]["test_images"] == 9 and run["metrics"]["power_mw"] > 0
    study.open_results(tmp_path / "run", params)  # the same params and inputs: a rerun may overwrite
    with pytest.raises(study.ResultsMismatchError, match="other params or inputs"):
        study.open_results(tmp_path / "run", _eval_params(checkpoint, hm2bp_checkpoint, test_images=8, hm2bp_images=8))
    changed = tmp_path / "changed.pt"
    changed.write_bytes(checkpoint.read_bytes() + b"\0")
    with pytest.raises(study.ResultsMismatchError):
        study.open_results(tmp_path / "run", _eval_params(changed, hm2bp_checkpoint))


def test_smoke_runs_write_nothing_and_missing_inputs_are_named(trained, hm2bp_checkpoint, tmp_path):
    writer = study.open_results(None, _eval_params(trained[0], hm2bp_checkpoint))
    writer.save_figure(None, "x.png")
    writer.finish({"power_mw": 1.0})
    assert writer.run_dir is None and not list(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError, match="HM2-BP checkpoint not found"):
        study.open_results(tmp_path / "run", _eval_params(trained[0], tmp_path / "absent.pt"))
    assert not (tmp_path / "run").exists()


def test_printed_tables_are_rounded():
    frame = pd.DataFrame({"a": [1.23456789, float("nan")], "b": ["x", "y"], "c": [0.000123456, 2.0]})
    text = study.table_text(frame)
    assert "1.235" in text and "0.0001235" in text and "1.23456" not in text


# -------------------------------------------------------------------- the notebook, end to end


@needs_mnist
def test_notebook_runs_from_a_params_file_and_refuses_to_overwrite(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    from snnbp.cli import execute_params

    mnist = DatasetInfo(name="MNIST", key="mnist", num_classes=10, input_shape=(28, 28), kind="image")
    stdbp = _save_untrained(tmp_path / "stdbp.pt", _stdbp_params(hidden=24), mnist)
    hm2bp = _save_untrained(tmp_path / "hm2bp.pt", _hm2bp_params(hidden=24, time_steps=30), mnist)
    base = _stdbp_params(hidden=8)
    cnn_model = dataclasses.replace(base.model, conv_channels=(2,), conv_kernel=3, pool_size=2, hidden=(8,))
    cnn = _save_untrained(tmp_path / "cnn.pt", dataclasses.replace(base, model=cnn_model), mnist)
    profile = tmp_path / "testprofile"
    profile.mkdir()
    content = {
        "name": "yoso_test",
        "method": "yoso",
        "notebook": "30_yoso.ipynb",
        "seed": 1,
        "stdbp_checkpoint": str(stdbp),
        "hm2bp_checkpoint": str(hm2bp),
        "test_images": 40,
        "hm2bp_images": 5,
        "mesh_sizes": [[2, 2], [3, 3]],
        "hidden_sizes": [8, 24],
        "cnn_checkpoint": str(cnn),
        "cnn_images": 6,
        "cnn_mesh": [4, 4],
    }
    path = profile / "yoso.yaml"
    path.write_text(yaml.safe_dump(content))
    run_dir = tmp_path / "run"
    execute_params(path, output_dir=run_dir, progress=False)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["network"] == "784-24-10" and metrics["n_images"] == 40 and metrics["method"] == "yoso"
    assert metrics["rate_vs_temporal"]["n_images"] == 5 and len(metrics["mesh_sweep"]) == 4
    assert metrics["cnn"]["network"] == "28x28-2C3-P2-338-8-10" and metrics["cnn"]["n_images"] == 6
    assert [row["pes"] for row in metrics["cnn"]["mapping"]] == [11, 1, 1]
    assert {p.name for p in (run_dir / "figures").iterdir()} == {
        "energy_breakdown.png",
        "mesh_sweep.png",
        "size_sweep.png",
        "energy_vs_spikes.png",
        "rate_vs_temporal.png",
        "quantization.png",
        "chips_energy_vs_accuracy.png",
        "calibration.png",
        "cnn_energy_breakdown.png",
    }
    assert {"quantization", "chip_comparison", "calibrated"} <= set(metrics)
    assert {"weight_bits", "test_accuracy", "energy_per_image_uj", "latency_ms"} <= set(metrics["quantization"][0])
    # keys the params file leaves out take the evaluation's defaults, never the notebook's smoke literals
    assert {row["dt_ms"] for row in metrics["quantization"]} == set(study.StudyParams.quantization_dt_ms)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    path.write_text(yaml.safe_dump({**content, "test_images": 30}))
    with pytest.raises(PapermillExecutionError, match="ResultsMismatchError"):
        execute_params(path, output_dir=run_dir, progress=False)
    assert json.loads((run_dir / "metrics.json").read_text())["n_images"] == 40


def test_figures_have_titles_and_units():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from snnbp.plots import yoso as plots_yoso

    net = _random_net(images=10)
    arch, energy = load_arch(), load_energy()
    run = study.run_accelerator(net, arch, energy)
    rng = np.random.default_rng(0)
    rasters = [torch.tensor(rng.random((15, 10, n)) < 0.2, dtype=torch.float32) for n in net.layer_sizes]
    from snnbp.yoso import energy_report, rate_coded_counts

    counts = rate_coded_counts(rasters, run.mapping)
    report = energy_report(counts, run.mapping, energy)
    rate = study.RateRun(
        counts, report, run.mapping, {**report.metrics(), "accuracy": 0.5, "n_images": 10}, net.network
    )
    figures = [
        plots_yoso.energy_breakdown(run.metrics["breakdown_uj"], "breakdown, random"),
        plots_yoso.mesh_sweep(study.mesh_sweep(net, arch, energy, [(2, 2), (1, 4), (3, 3)]), "mesh, random"),
        plots_yoso.size_sweep(study.size_sweep(net, arch, energy, [4, 16]), "size, random"),
        plots_yoso.spike_scatter(study.per_image_frame(run, net), "spikes, random"),
        plots_yoso.rate_vs_temporal(study.rate_vs_temporal(run, net.network, rate), "rate, random"),
    ]
    for fig in figures:
        titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
        assert any("random" in t for t in titles)
        labels = " ".join(ax.get_xlabel() + " " + ax.get_ylabel() for ax in fig.axes)
        assert any(unit in labels for unit in ("(µJ", "(ms)", "(mW)")), labels
        plt.close(fig)


def test_closest_timing_line_picks_the_smallest_log_ratio():
    timing = pd.DataFrame(
        {
            "timing": ["fast", "slow", "real"],
            "latency_ms": [0.5, 500.0, 40.0],
            "latency_ratio": [0.01, 10.0, 0.84],
            "power_ratio": [3.0, 1.0, 2.0],
        }
    )
    assert "'real'" in study.closest_timing_line(timing) and "ratio 0.84" in study.closest_timing_line(timing)


COMMITTED_STDBP = Path(__file__).resolve().parents[1] / "results" / "cpu" / "stdbp_mnist_fc" / "best.pt"


@needs_mnist
@pytest.mark.skipif(not COMMITTED_STDBP.is_file(), reason="the committed STDBP MNIST run is absent")
def test_committed_mnist_network_on_the_accelerator_matches_the_exact_model():
    """Functional equivalence on the committed network: the simulator's hidden and output spike
    times are the exact ReL-PSP times up to the time grid, and its decisions are the model's."""
    from snnbp.stdbp import relpsp_spike_times

    net = study.load_stdbp(COMMITTED_STDBP, 200)
    arch, energy = load_arch(), load_energy()
    run = study.run_accelerator(net, arch, energy, quantise=False)
    exact_hidden = relpsp_spike_times(net.t_in, net.weights[0], net.theta)
    simulated = run.sim.spike_times[0]
    both = torch.isfinite(exact_hidden) & torch.isfinite(simulated)
    only_one = torch.isfinite(exact_hidden) ^ torch.isfinite(simulated)  # near-tangent crossings, window edge
    assert both.sum() > 10_000 and only_one.sum() < 0.01 * both.sum()
    # inputs are rounded up to the grid (<= dt) and a crossing is seen at the next step (<= dt), so
    # typical errors are about one step; slopes near zero stretch a few
    error = (simulated - exact_hidden)[both].abs()
    assert float(error.median()) <= 1.5 * arch.dt_ms and float(torch.quantile(error, 0.99)) <= 5 * arch.dt_ms
    assert study.decision_agreement(run, net) >= 0.98
    assert study.decision_agreement(study.run_accelerator(net, arch, energy, quantise=True), net) >= 0.98

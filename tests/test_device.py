"""The device setting on any machine: ``train.device`` / ``snnbp run --device`` resolve as documented, a
CUDA request without CUDA is refused in one line before any work, and the device never changes a
run's identity. (What runs on a GPU is checked in ``test_gpu.py``.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from snnbp import cli, execution
from snnbp.config import ConfigError, load_params, params_from_dict, params_to_dict
from snnbp.data.base import DatasetInfo, LabelledSplit
from snnbp.devices import cpu_only_reason, resolve_device, run_device
from snnbp.hm2bp.learner import resolve_engine
from snnbp.hm2bp.params import ModelParams as Hm2bpModel
from snnbp.train import fit, params_hash

ROOT = Path(__file__).resolve().parents[1]
INFO = DatasetInfo(name="toy", key="toy", num_classes=3, input_shape=(6,), kind="image")


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch claims one GPU (nothing is ever placed on it in these tests)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def _params(**train):
    return params_from_dict(
        {
            "name": "toy",
            "method": "ann",
            "notebook": "04_train_ann.ipynb",
            "seed": 5,
            "data": {"dataset": "mnist"},
            "train": {"epochs": 1, "batch_size": 8, **train},
            "model": {"hidden": [4], "lr": 0.01},
        },
        "test",
    )


def _data():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (24,), generator=generator)
    inputs = torch.randn(24, 6, generator=generator) + labels[:, None]
    return LabelledSplit(inputs[:16], labels[:16]), LabelledSplit(inputs[16:], labels[16:]), INFO


def test_auto_is_the_cpu_without_cuda_and_cuda_with_it(no_cuda, monkeypatch):
    assert resolve_device("auto", source="s") == torch.device("cpu")
    assert resolve_device("cpu", source="s") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", source="s") == torch.device("cuda")


def test_cuda_without_cuda_is_one_line_naming_the_source(no_cuda):
    with pytest.raises(ConfigError) as error:
        resolve_device("cuda", source="p.yaml: key 'train.device'")
    message = str(error.value)
    assert message.startswith("p.yaml: key 'train.device' is 'cuda', but torch ") and "\n" not in message
    assert "install a CUDA build of torch" in message


def test_more_gpus_than_the_machine_has_are_refused(fake_cuda):
    assert resolve_device("cuda:0", source="s") == torch.device("cuda:0")
    with pytest.raises(ConfigError, match=r"s is 'cuda:3', but this machine has 1 GPU\(s\)"):
        resolve_device("cuda:3", source="s")


def test_the_hm2bp_event_engine_keeps_auto_on_the_cpu_and_refuses_cuda(fake_cuda):
    event = Hm2bpModel(engine="event")
    assert cpu_only_reason(event) and cpu_only_reason(Hm2bpModel()) is None
    assert resolve_device("auto", source="s", cpu_only=cpu_only_reason(event)) == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"s is 'cuda', but model.engine 'event' .* runs on the CPU only"):
        resolve_device("cuda", source="s", cpu_only=cpu_only_reason(event))


def test_hm2bp_engine_auto_takes_torch_on_cuda_and_event_there_is_refused():
    assert resolve_engine("auto", "cuda") == "torch" and resolve_engine("torch", "cuda:0") == "torch"
    with pytest.raises(ValueError, match="model.engine 'event' runs on the CPU only"):
        resolve_engine("event", "cuda")


@pytest.mark.parametrize("value", ["gpu", "CUDA", "cuda:x", "", 3])
def test_an_unknown_device_in_a_params_file_is_refused_at_load_time(tmp_path, value):
    content = yaml.safe_load((ROOT / "params" / "cpu" / "ann_mnist_fc.yaml").read_text())
    content["train"]["device"] = value
    path = tmp_path / "cpu" / "ann.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError, match=r"ann.yaml: key 'train.device' (must be one of|expected str)"):
        load_params(path)


def test_the_device_is_not_part_of_a_runs_identity():
    default = params_to_dict(_params())
    assert default["train"]["device"] == "auto"
    before_the_key = json.loads(json.dumps(default))
    del before_the_key["train"]["device"]
    digests = {params_hash(params_to_dict(_params(device=d))) for d in ("auto", "cpu", "cuda", "cuda:1")}
    assert digests == {params_hash(default)} == {params_hash(before_the_key)}


def test_a_run_override_wins_over_the_params_file(no_cuda):
    params = _params(device="cpu")
    assert run_device(params) == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"^x.yaml: --device is 'cuda', but torch"):
        run_device(params, "cuda", source="x.yaml")


def test_fit_on_cuda_without_cuda_stops_before_touching_the_run_folder(tmp_path, no_cuda):
    with pytest.raises(ConfigError, match=r"key 'train.device' is 'cuda'"):
        fit(_params(device="cuda"), tmp_path / "run", data=_data(), progress=False)
    assert not (tmp_path / "run").exists()


def test_the_record_names_the_device_each_start_used(tmp_path, no_cuda):
    fit(_params(), tmp_path / "run", data=_data(), progress=False)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["device"] == "cpu" and record["params"]["train"]["device"] == "auto"


def _cpu_params_copy(tmp_path: Path, name: str, **train) -> Path:
    content = yaml.safe_load((ROOT / "params" / "cpu" / name).read_text())
    content["train"].update(train)
    path = tmp_path / "cpu" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.mark.parametrize(
    ("name", "train", "argv", "fragment"),
    [
        ("ann_mnist_fc.yaml", {"device": "cuda"}, [], "key 'train.device' is 'cuda', but torch"),
        ("ann_mnist_fc.yaml", {}, ["--device", "cuda"], "--device is 'cuda', but torch"),
        ("stdbp_mnist_fc.yaml", {"device": "cpu"}, ["--device", "cuda"], "--device is 'cuda', but torch"),
    ],
)
def test_snnbp_run_refuses_cuda_without_cuda_before_papermill(
    tmp_path, capsys, no_cuda, monkeypatch, name, train, argv, fragment
):
    started = []
    monkeypatch.setattr(execution, "execute_notebook", lambda *a, **k: started.append(a))
    path = _cpu_params_copy(tmp_path, name, **train)
    code = cli.main(["run", str(path), "--output-dir", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == cli.EXIT_BAD_INPUT and not started and not (tmp_path / "out").exists()
    assert err.count("\n") == 0 and err.startswith(f"error: {path}: ") and fragment in err


def test_snnbp_run_refuses_the_event_engine_on_cuda_before_papermill(tmp_path, capsys, fake_cuda, monkeypatch):
    monkeypatch.setattr(execution, "execute_notebook", lambda *a, **k: pytest.fail("papermill started"))
    path = _cpu_params_copy(tmp_path, "hm2bp_mnist_fc.yaml")
    assert yaml.safe_load(path.read_text())["model"]["engine"] == "event"
    code = cli.main(["run", str(path), "--output-dir", str(tmp_path / "out"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_BAD_INPUT and "model.engine 'event'" in err and "runs on the CPU only" in err


def test_snnbp_run_passes_the_device_to_the_notebook(tmp_path, capsys, no_cuda, monkeypatch):
    injected = {}
    monkeypatch.setattr(
        execution, "execute_notebook", lambda notebook, output, parameters, **k: injected.update(parameters)
    )
    path = _cpu_params_copy(tmp_path, "ann_mnist_fc.yaml")
    assert cli.main(["run", str(path), "--output-dir", str(tmp_path / "out"), "--device", "cpu"]) == cli.EXIT_OK
    assert injected["train"]["device"] == "cpu"
    assert {k: v for k, v in injected["train"].items() if k != "device"} == yaml.safe_load(path.read_text())["train"]


def test_snnbp_run_device_on_an_evaluation_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(execution, "execute_notebook", lambda *a, **k: pytest.fail("papermill started"))
    path = tmp_path / "cpu" / "yoso_mnist.yaml"
    path.parent.mkdir()
    shutil.copy(ROOT / "params" / "cpu" / "yoso_mnist.yaml", path)
    code = cli.main(["run", str(path), "--output-dir", str(tmp_path / "out"), "--device", "cpu"])
    assert code == cli.EXIT_BAD_INPUT and "--device applies to training runs" in capsys.readouterr().err

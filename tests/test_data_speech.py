"""Speech: TI46 and FSDD readers on fake files, the letter synthesiser (mocked), real FSDD when present."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fakes import tone, write_fsdd_tree, write_sphere, write_ti46_tree, write_wav
from snnbp.data import synth_letters
from snnbp.data.base import MissingDatasetError
from snnbp.data.speech import (
    list_fsdd,
    list_ti46,
    load_fsdd,
    load_synthetic_letters,
    load_ti46,
    read_audio,
    read_sphere,
)
from snnbp.paths import data_root

pytest.importorskip("lyon")


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SNNBP_DATA_DIR", str(tmp_path / "data_dir"))


def test_sphere_and_wav_readers(tmp_path):
    signal = tone(500, 0.05, 12500)
    write_sphere(tmp_path / "a.sph", signal, 12500)
    write_wav(tmp_path / "a.wav", signal, 12500)
    x, rate = read_sphere(tmp_path / "a.sph")
    y, rate_wav = read_audio(tmp_path / "a.wav")
    assert rate == rate_wav == 12500
    np.testing.assert_allclose(x, signal, atol=1e-4)
    np.testing.assert_allclose(y, x)


def test_fsdd_official_split_and_rasters(tmp_path):
    write_fsdd_tree(tmp_path / "fsdd")
    train_list, test_list = list_fsdd(tmp_path / "fsdd")
    assert all("_7.wav" in u.path.name for u in train_list) and all("_0.wav" in u.path.name for u in test_list)
    train, test, info = load_fsdd(tmp_path / "fsdd")
    assert (len(train), len(test)) == (4, 4) and train.inputs.shape == (4, 1000, 78)
    assert info.is_standin and "stand-in for TI46" in info.name
    assert sorted(train.labels.tolist()) == [0, 0, 1, 1] and (train.inputs.spike_counts() > 0).all()
    cached = list((tmp_path / "data_dir" / "speech_cache").glob("fsdd-*.npz"))
    assert len(cached) == 2
    again, _, _ = load_fsdd(tmp_path / "fsdd")
    np.testing.assert_array_equal(again.inputs.flat, train.inputs.flat)


@pytest.mark.parametrize("suffix", [".wav", ".sph"])
def test_ti46_layout(tmp_path, suffix):
    write_ti46_tree(tmp_path / "ti46", suffix=suffix)
    train_list, test_list = list_ti46(tmp_path / "ti46")
    assert len(train_list) == 8 and len(test_list) == 4  # token 0 only by default
    assert len(list_ti46(tmp_path / "ti46", test_tokens=(0, 1))[1]) == 8
    train, test, info = load_ti46(tmp_path / "ti46", use_cache=False)
    assert info.name == "TI46-Alpha" and info.num_classes == 26 and not info.is_standin
    assert sorted(set(train.labels.tolist())) == [0, 1] and test.inputs.shape == (4, 1000, 78)


def test_missing_speech_data(tmp_path):
    with pytest.raises(MissingDatasetError, match="LDC93S9"):
        list_ti46(tmp_path)
    with pytest.raises(MissingDatasetError, match="recordings"):
        list_fsdd(tmp_path)
    with pytest.raises(MissingDatasetError, match="python -m snnbp.data.synth_letters"):
        load_synthetic_letters(tmp_path)


def test_letter_plan_is_deterministic_and_varied():
    plan = synth_letters.plan(2, 1, seed=0)
    assert len(plan) == len(synth_letters.VOICES) * 26 * 3 and len(synth_letters.VOICES) >= 16
    assert plan == synth_letters.plan(2, 1, seed=0) and plan != synth_letters.plan(2, 1, seed=1)
    assert len({(e["pitch"], e["speed"]) for e in plan}) > 0.9 * len(plan)
    assert {e["split"] for e in plan if e["take"] < 2} == {"train"} and {
        e["split"] for e in plan if e["take"] == 2
    } == {"test"}


def test_generate_letters_with_mocked_synthesisers(tmp_path, monkeypatch):
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        out = command[command.index("-w") + 1] if command[0] == "espeak-ng" else command[command.index("-o") + 1]
        write_wav(Path(out), tone(200 + len(calls), 0.2, 16000), 16000)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(synth_letters, "tool_versions", lambda: {"espeak-ng": "fake", "flite": "fake"})
    monkeypatch.setattr(synth_letters.subprocess, "run", fake_run)
    voices = synth_letters.VOICES[:1] + synth_letters.VOICES[-1:]
    manifest = synth_letters.generate_letters(
        tmp_path / "letters", train_repetitions=1, test_repetitions=1, voices=voices
    )
    entries = json.loads(manifest.read_text())["utterances"]
    assert len(entries) == len(calls) == 2 * 26 * 2
    assert {c[0] for c in calls} == {"espeak-ng", "flite"}
    assert all((tmp_path / "letters" / e["file"]).is_file() for e in entries)
    synth_letters.generate_letters(tmp_path / "letters", train_repetitions=1, test_repetitions=1, voices=voices)
    assert len(calls) == 104  # same settings: nothing regenerated


def test_real_synthesisers_if_installed(tmp_path):
    if shutil.which("espeak-ng") is None or shutil.which("flite") is None:
        pytest.skip("espeak-ng/flite not installed")
    for voice in (synth_letters.VOICES[0], synth_letters.VOICES[-2]):
        out = tmp_path / f"{voice.name}.wav"
        subprocess.run(synth_letters.synthesis_command(voice, "bee", 1.05, 0.95, out), check=True, capture_output=True)
        signal, rate = read_audio(out)
        assert rate in (16000, 22050) and 0.1 < signal.size / rate < 2.0 and np.abs(signal).max() > 0.05


def test_real_fsdd_few_files():
    folder = data_root() / "fsdd"
    if not (folder / "recordings").is_dir():
        pytest.skip(f"FSDD not present in {folder}")
    train, test = list_fsdd(folder)
    assert (len(train), len(test)) == (2700, 300)
    from snnbp.data.speech import encode_utterances

    rasters = encode_utterances([u.path for u in test[:3]])
    assert rasters.shape == (3, 1000, 78) and (rasters.spike_counts() > 200).all()

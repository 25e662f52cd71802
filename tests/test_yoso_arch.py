"""YOSO configuration: the default params load; bad files name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from snnbp.config import ConfigError
from snnbp.yoso import DEFAULT_PARAMS, load_arch, load_energy, with_changes


def _write(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "yoso.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def _default() -> dict:
    return yaml.safe_load(Path(DEFAULT_PARAMS).read_text())


def test_default_params_load_with_derived_sizes():
    arch = load_arch()
    assert arch.n_pes == arch.mesh_rows * arch.mesh_cols
    assert arch.weight_sram.kbytes == arch.weight_sram.words * arch.weight_sram.width_bits / 8 / 1024
    assert arch.n_steps == round(arch.t_window_ms / arch.dt_ms) + 1
    assert arch.state_words_per_neuron == -(-(arch.slope_bits + arch.potential_bits + 1) // arch.state_sram.width_bits)
    assert arch.weight_row_words(80) == -(-80 * arch.weight_bits // arch.weight_sram.width_bits)
    energy = load_energy()
    assert set(energy.sources) == {
        "node_nm",
        "add32_pj",
        "sram64_8kb_pj",
        "sram64_32kb_pj",
        "hop_pj",
        "delivery_pj",
        "sram_leak_uw_per_kb",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["arch"].update(mesh_colz=4), r"unknown key 'arch.mesh_colz'"),
        (lambda c: c["arch"].pop("clock_mhz"), r"missing key 'arch.clock_mhz'"),
        (lambda c: c["arch"].update(fifo_depth="deep"), r"key 'arch.fifo_depth' expected int"),
        (lambda c: c["arch"]["weight_sram"].update(words=0), r"key 'arch.weight_sram.words' must be > 0"),
        (lambda c: c["arch"].update(dt_ms=-0.1), r"key 'arch.dt_ms' must be > 0"),
        (lambda c: c["arch"].update(io_port=[9, 0]), r"key 'arch.io_port' \[9, 0\] lies outside the 4x4 mesh"),
        (lambda c: c["arch"].update(t_window_ms=0.01), r"key 'arch.t_window_ms'"),
        (lambda c: c["arch"].update(weight_bits=128), r"key 'arch.weight_bits' \(128\) exceeds"),
        (lambda c: c.pop("arch"), r"missing key 'arch'"),
    ],
)
def test_bad_arch_names_file_and_key(tmp_path, change, message):
    content = _default()
    change(content)
    path = _write(tmp_path, content)
    with pytest.raises(ConfigError, match=message) as info:
        load_arch(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["energy"]["sources"].pop("hop_pj"), r"missing key 'energy.sources.hop_pj'"),
        (lambda c: c["energy"]["sources"].update(hop_pj="  "), r"missing key 'energy.sources.hop_pj'"),
        (lambda c: c["energy"]["sources"].update(mult_pj="x"), r"unknown key 'energy.sources.mult_pj'"),
        (lambda c: c["energy"].update(add32_pj=-1.0), r"key 'energy.add32_pj' must be > 0"),
        (lambda c: c["energy"].update(hop_pj="cheap"), r"key 'energy.hop_pj' expected float"),
        (lambda c: c["energy"].update(sram64_32kb_pj=1.0), r"'energy.sram64_32kb_pj' must be >="),
    ],
)
def test_bad_energy_names_file_and_key(tmp_path, change, message):
    content = _default()
    change(content)
    path = _write(tmp_path, content)
    with pytest.raises(ConfigError, match=message) as info:
        load_energy(path)
    assert str(path) in str(info.value)


def test_missing_file_and_with_changes():
    with pytest.raises(ConfigError, match="params file not found"):
        load_arch("/nonexistent/yoso.yaml")
    arch = with_changes(load_arch(), dt_ms=0.05)
    assert arch.dt_ms == 0.05 and arch.n_steps == round(arch.t_window_ms / 0.05) + 1
    with pytest.raises(ConfigError, match="'arch.adder_lanes' must be > 0"):
        with_changes(arch, adder_lanes=0)

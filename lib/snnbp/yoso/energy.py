"""Energy and power of an inference: counts x per-operation energies + leakage x latency (ALGORITHMS.md 3.6).

    E = sum_op N_op * e_op + P_leak * latency

The per-operation energies ``e_op`` come from named public sources (``params/yoso/default.yaml``,
``energy.sources``): Horowitz (ISSCC 2014, 45 nm) for adds and SRAM accesses, Loihi (Davies et al.,
IEEE Micro 2018, scaled from 14 nm) for router hops and packet delivery, and a Loihi-derived SRAM
leakage per KB. The YOSO paper's own per-operation figures were NOT available; the only YOSO numbers
used are its published results (0.751 mW, 47.71 ms per MNIST image), for comparison only.

Rules applied (stated once): SRAM access energy for a ``w``-bit word of a ``size`` KB macro is
``e_8KB * (size / 8 KB)^alpha * w / 64`` with ``alpha = log(e_32KB / e_8KB) / log 4`` (the two
Horowitz points; alpha = 0.5), writes cost as reads; a ``b``-bit add costs ``e_add32 * b / 32`` and a
compare costs an add; leakage is ``leak_per_KB x`` the SRAM (+ FIFO) KB of the powered PEs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snnbp.config import ConfigError, from_mapping, read_yaml
from snnbp.paths import resolve
from snnbp.yoso.arch import DEFAULT_PARAMS, YosoArch
from snnbp.yoso.counts import Counts
from snnbp.yoso.mapping import Mapping

PAPER_POWER_MW = 0.751
"""YOSO running the STDBP MNIST network: total power (ReL-PSP paper abstract; TARGETS.md, V)."""
PAPER_LATENCY_MS = 47.71
"""YOSO running the STDBP MNIST network: latency per image (ReL-PSP paper abstract; TARGETS.md, V)."""

BREAKDOWN = {
    "weight_sram": ("weight_sram_reads",),
    "state_sram": ("state_sram_reads", "state_sram_writes"),
    "route_sram": ("route_sram_reads",),
    "fifo": ("fifo_push", "fifo_pop"),
    "compute": ("slope_adds", "potential_adds", "compares"),
    "routing": ("hops", "deliveries"),
}
"""Energy groups of the breakdown (plus ``leakage``) and the counters each one sums."""


@dataclass(frozen=True)
class EnergyParams:
    """Per-operation energies (pJ) and leakage, each with its source in ``sources``.

    Attributes:
        node_nm: process node the energies refer to.
        add32_pj: 32-bit integer add.
        sram64_8kb_pj: 64-bit access of an 8 KB SRAM.
        sram64_32kb_pj: 64-bit access of a 32 KB SRAM.
        hop_pj: one router-to-router hop of a spike packet.
        delivery_pj: ejecting a packet into its destination PE (or the I/O port).
        sram_leak_uw_per_kb: leakage power per KB of SRAM.
        sources: a citation for every numeric field above (same keys).
    """

    node_nm: float
    add32_pj: float
    sram64_8kb_pj: float
    sram64_32kb_pj: float
    hop_pj: float
    delivery_pj: float
    sram_leak_uw_per_kb: float
    sources: dict[str, str]


def _numeric_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(EnergyParams) if f.name != "sources"]


def energy_from_mapping(mapping: Any, source: str, prefix: str = "energy") -> EnergyParams:
    """Validate the ``energy:`` section: types, positive values, and one citation per constant.

    Raises:
        ConfigError: naming ``source`` and the dotted key.
    """
    params = from_mapping(EnergyParams, mapping, source=source, prefix=prefix)
    for name in _numeric_fields():
        if not getattr(params, name) > 0:
            raise ConfigError(f"{source}: key '{prefix}.{name}' must be > 0, got {getattr(params, name)!r}")
        text = params.sources.get(name)
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{source}: missing key '{prefix}.sources.{name}' (every constant needs a citation)")
    extra = sorted(set(params.sources) - set(_numeric_fields()))
    if extra:
        raise ConfigError(f"{source}: unknown key '{prefix}.sources.{extra[0]}'; allowed keys: {_numeric_fields()}")
    if params.sram64_32kb_pj < params.sram64_8kb_pj:
        raise ConfigError(f"{source}: key '{prefix}.sram64_32kb_pj' must be >= '{prefix}.sram64_8kb_pj'")
    return params


def load_energy(path: str | Path = DEFAULT_PARAMS) -> EnergyParams:
    """Load the ``energy:`` section of a YOSO params file (see :func:`energy_from_mapping`); a relative
    ``path`` is from the project root."""
    content = read_yaml(resolve(path))
    if "energy" not in content:
        raise ConfigError(f"{path}: missing key 'energy'")
    return energy_from_mapping(content["energy"], str(path))


def sram_access_pj(params: EnergyParams, kbytes: float, width_bits: int) -> float:
    """Energy of one ``width_bits`` access to a ``kbytes`` SRAM: ``e_8KB (size/8)^alpha w/64``."""
    alpha = math.log(params.sram64_32kb_pj / params.sram64_8kb_pj) / math.log(4.0)
    return params.sram64_8kb_pj * (kbytes / 8.0) ** alpha * width_bits / 64.0


def add_pj(params: EnergyParams, bits: int) -> float:
    """Energy of a ``bits``-wide integer add (or compare): linear in width from the 32-bit add."""
    return params.add32_pj * bits / 32.0


def fifo_kbytes(arch: YosoArch) -> float:
    """Size of one PE's input FIFO in KB."""
    return arch.fifo_depth * arch.fifo_width_bits / 8.0 / 1024.0


def op_energies_pj(arch: YosoArch, params: EnergyParams) -> dict[str, float]:
    """Energy per counted operation (pJ), keyed like :data:`snnbp.yoso.counts.COUNTERS`
    (counters that cost no energy by themselves, e.g. cycles, are absent)."""
    weight = sram_access_pj(params, arch.weight_sram.kbytes, arch.weight_sram.width_bits)
    state = sram_access_pj(params, arch.state_sram.kbytes, arch.state_sram.width_bits)
    fifo = sram_access_pj(params, fifo_kbytes(arch), arch.fifo_width_bits)
    return {
        "fifo_push": fifo,
        "fifo_pop": fifo,
        "weight_sram_reads": weight,
        "state_sram_reads": state,
        "state_sram_writes": state,
        "route_sram_reads": sram_access_pj(params, arch.route_sram.kbytes, arch.route_sram.width_bits),
        "slope_adds": add_pj(params, arch.slope_bits),
        "potential_adds": add_pj(params, arch.potential_bits),
        "compares": add_pj(params, arch.potential_bits),
        "hops": params.hop_pj,
        "deliveries": params.delivery_pj,
    }


def leakage_power_uw(mapping: Mapping, params: EnergyParams) -> float:
    """Leakage of the powered PEs' SRAMs and FIFOs (all PEs unless unused ones are power-gated)."""
    arch = mapping.arch
    n_powered = len(mapping.used_pes) if arch.power_gate_unused_pes else arch.n_pes
    kbytes = arch.weight_sram.kbytes + arch.state_sram.kbytes + arch.route_sram.kbytes + fifo_kbytes(arch)
    return n_powered * kbytes * params.sram_leak_uw_per_kb


@dataclass(frozen=True)
class EnergyReport:
    """Per-image energy by group and latency.

    Attributes:
        energy_pj: ``{group: [B]}`` for the groups of :data:`BREAKDOWN` and ``leakage``.
        latency_ms: ``[B]``.
        leakage_uw: leakage power of the chip.
    """

    energy_pj: dict[str, torch.Tensor]
    latency_ms: torch.Tensor
    leakage_uw: float

    @property
    def total_pj(self) -> torch.Tensor:
        """``[B]`` energy per image."""
        return sum(self.energy_pj.values())

    def metrics(self) -> dict[str, Any]:
        """Batch averages: ``power_mw`` (total energy / total time), ``latency_ms``,
        ``energy_per_image_uj``, ``breakdown_uj`` and ``breakdown_fraction`` (dicts by group)."""
        energy_uj = float(self.total_pj.mean()) * 1e-6
        latency = float(self.latency_ms.mean())
        breakdown = {k: float(v.mean()) * 1e-6 for k, v in self.energy_pj.items()}
        return {
            "power_mw": energy_uj / latency,
            "latency_ms": latency,
            "energy_per_image_uj": energy_uj,
            "breakdown_uj": breakdown,
            "breakdown_fraction": {k: v / energy_uj for k, v in breakdown.items()},
        }


def energy_report(counts: Counts, mapping: Mapping, params: EnergyParams) -> EnergyReport:
    """``E = sum_op N_op e_op + P_leak * latency`` per image, split into :data:`BREAKDOWN` groups.

    Shape: counters ``[B, L, n_pes]`` in ``counts``; output tensors ``[B]``.
    """
    arch = mapping.arch
    per_op = op_energies_pj(arch, params)
    latency = counts.cycles / (arch.clock_mhz * 1e3)
    energy = {group: sum(counts.total(op) * per_op[op] for op in ops) for group, ops in BREAKDOWN.items()}
    leak = leakage_power_uw(mapping, params)
    energy["leakage"] = leak * latency * 1e3  # uW x ms = nJ = 1e3 pJ
    return EnergyReport(energy, latency, leak)


def paper_ratio(metrics: dict[str, Any]) -> dict[str, float]:
    """This model's numbers over YOSO's published ones (0.751 mW, 47.71 ms, and their product
    35.8 uJ per image, derived). A ratio > 1 means this model costs more."""
    return {
        "power_ratio": metrics["power_mw"] / PAPER_POWER_MW,
        "latency_ratio": metrics["latency_ms"] / PAPER_LATENCY_MS,
        "energy_ratio": metrics["energy_per_image_uj"] / (PAPER_POWER_MW * PAPER_LATENCY_MS),
    }

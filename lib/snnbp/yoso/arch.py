"""The accelerator's configuration: a 2-D mesh of processing elements (PEs), ALGORITHMS.md 3.5-3.6.

The YOSO paper's own hardware description (PE internals, SRAM sizes, clock, node) was not available
to this project (ALGORITHMS.md 3.2); every number here is a *design assumption* of this simulator,
stated in ``params/yoso/default.yaml`` and overridable per run. The structure follows the public
review of the ReL-PSP paper (ALGORITHMS.md 3.5): a network-on-chip, one router per PE, per-PE SRAMs
split by purpose (weights, neuron state, spike routing), and a LOAD -> COMPUTE -> STORE core fed by
a FIFO.

Units: time in ms, clock in MHz, sizes in words of ``width_bits`` bits.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnbp.config import ConfigError, from_mapping, read_yaml
from snnbp.paths import resolve

DEFAULT_PARAMS = Path("params/yoso/default.yaml")
"""The accelerator's params file, relative to the project root (:func:`snnbp.paths.resolve`)."""


@dataclass(frozen=True)
class SramSpec:
    """One SRAM macro of a PE.

    Attributes:
        words: number of addressable words.
        width_bits: bits per word (one access reads or writes one word).
    """

    words: int
    width_bits: int

    @property
    def bits(self) -> int:
        """Capacity in bits."""
        return self.words * self.width_bits

    @property
    def kbytes(self) -> float:
        """Capacity in KB (1 KB = 1024 bytes)."""
        return self.bits / 8.0 / 1024.0


@dataclass(frozen=True)
class YosoArch:
    """The accelerator: mesh, per-PE memories, pipeline timing, neuron time step and number formats.

    Attributes:
        mesh_rows: PE rows of the 2-D mesh (XY routing).
        mesh_cols: PE columns.
        neurons_per_pe: most neurons one PE's datapath serves.
        weight_sram: per-PE weight memory; a PE stores the incoming weights of its neurons, laid
            out one row per presynaptic neuron (its weights to all local neurons, packed).
        state_sram: per-PE neuron-state memory: slope ``S_j``, potential ``V_j`` and a fired flag.
        route_sram: per-PE spike routing table: one entry per (local neuron, destination PE).
        fifo_depth: entries of the PE's input-spike FIFO.
        fifo_width_bits: bits per FIFO entry (a spike packet: source neuron id and step).
        clock_mhz: core and router clock.
        dt_ms: neuron time step: ``V_j += S_j * dt`` once per step; spike times are multiples of it.
        t_window_ms: simulated horizon; spikes later than this never happen.
        weight_bits: signed fixed-point weight width.
        slope_bits: signed slope accumulator width (saturating).
        potential_bits: signed potential accumulator width (saturating; when the threshold does not
            fit, the potential drops low bits: see :mod:`snnbp.yoso.sim`).
        adder_lanes: neuron updates the COMPUTE stage performs per cycle.
        load_cycles: LOAD stage latency (pipeline fill), cycles.
        compute_cycles: COMPUTE stage latency, cycles.
        store_cycles: STORE stage latency, cycles.
        router_cycles_per_hop: router + link latency per hop, cycles.
        step_sync_cycles: cycles to close a time step (global tick / barrier).
        io_port: ``[row, col]`` of the router where input spikes enter and output spikes leave.
        stop_at_first_output: end the inference at the step of the first output spike (the
            classification is then known); otherwise run the whole window.
        real_time: a time step lasts at least ``dt_ms`` of wall-clock time.
        power_gate_unused_pes: PEs holding no neuron are powered off (no leakage).
        rounding: how fixed-point values are rounded: ``"nearest"`` (ties to even) or ``"floor"``
            (truncation, an arithmetic right shift).
        step_period_ms: wall-clock length of a real-time step (``real_time``); None: ``dt_ms``.
    """

    mesh_rows: int
    mesh_cols: int
    neurons_per_pe: int
    weight_sram: SramSpec
    state_sram: SramSpec
    route_sram: SramSpec
    fifo_depth: int
    fifo_width_bits: int
    clock_mhz: float
    dt_ms: float
    t_window_ms: float
    weight_bits: int
    slope_bits: int
    potential_bits: int
    adder_lanes: int = 1
    load_cycles: int = 1
    compute_cycles: int = 1
    store_cycles: int = 1
    router_cycles_per_hop: int = 1
    step_sync_cycles: int = 1
    io_port: tuple[int, int] = (0, 0)
    stop_at_first_output: bool = True
    real_time: bool = False
    power_gate_unused_pes: bool = True
    rounding: str = "nearest"
    step_period_ms: float | None = None

    @property
    def n_pes(self) -> int:
        """PEs in the mesh."""
        return self.mesh_rows * self.mesh_cols

    @property
    def n_steps(self) -> int:
        """Time steps in the window: steps ``0 .. n_steps - 1`` (``t = n * dt``)."""
        return int(math.floor(self.t_window_ms / self.dt_ms + 1e-9)) + 1

    @property
    def state_bits_per_neuron(self) -> int:
        """Slope + potential + fired flag."""
        return self.slope_bits + self.potential_bits + 1

    @property
    def state_words_per_neuron(self) -> int:
        """State-SRAM words one neuron occupies (read or written per neuron update)."""
        return math.ceil(self.state_bits_per_neuron / self.state_sram.width_bits)

    @property
    def pipeline_depth(self) -> int:
        """LOAD + COMPUTE + STORE latency, cycles (paid once per burst of work)."""
        return self.load_cycles + self.compute_cycles + self.store_cycles

    def weight_row_words(self, n_local: int) -> int:
        """Weight-SRAM words holding one presynaptic neuron's weights to ``n_local`` neurons."""
        return math.ceil(n_local * self.weight_bits / self.weight_sram.width_bits)


ROUNDING = ("nearest", "floor")
"""Rounding modes of the fixed-point arithmetic (:attr:`YosoArch.rounding`)."""

_POSITIVE_INT = (
    "mesh_rows",
    "mesh_cols",
    "neurons_per_pe",
    "fifo_depth",
    "fifo_width_bits",
    "weight_bits",
    "slope_bits",
    "potential_bits",
    "adder_lanes",
    "router_cycles_per_hop",
)
_NON_NEGATIVE_INT = ("load_cycles", "compute_cycles", "store_cycles", "step_sync_cycles")
_POSITIVE_FLOAT = ("clock_mhz", "dt_ms", "t_window_ms")


def validate_arch(arch: YosoArch, source: str, prefix: str = "arch") -> YosoArch:
    """Check value ranges the type check cannot see.

    Raises:
        ConfigError: naming ``source`` and the dotted key of the first bad value.
    """
    for name in _POSITIVE_INT + _POSITIVE_FLOAT:
        if getattr(arch, name) <= 0:
            raise ConfigError(f"{source}: key '{prefix}.{name}' must be > 0, got {getattr(arch, name)!r}")
    for name in _NON_NEGATIVE_INT:
        if getattr(arch, name) < 0:
            raise ConfigError(f"{source}: key '{prefix}.{name}' must be >= 0, got {getattr(arch, name)!r}")
    for name in ("weight_sram", "state_sram", "route_sram"):
        spec = getattr(arch, name)
        for field in ("words", "width_bits"):
            if getattr(spec, field) <= 0:
                raise ConfigError(f"{source}: key '{prefix}.{name}.{field}' must be > 0, got {getattr(spec, field)!r}")
    if arch.t_window_ms < arch.dt_ms:
        raise ConfigError(f"{source}: key '{prefix}.t_window_ms' ({arch.t_window_ms}) must be >= dt_ms ({arch.dt_ms})")
    if arch.rounding not in ROUNDING:
        raise ConfigError(f"{source}: key '{prefix}.rounding' must be one of {list(ROUNDING)}, got {arch.rounding!r}")
    if arch.step_period_ms is not None and not arch.step_period_ms > 0:
        raise ConfigError(f"{source}: key '{prefix}.step_period_ms' must be > 0 or null, got {arch.step_period_ms!r}")
    row, col = arch.io_port
    if not (0 <= row < arch.mesh_rows and 0 <= col < arch.mesh_cols):
        raise ConfigError(
            f"{source}: key '{prefix}.io_port' {list(arch.io_port)} lies outside the "
            f"{arch.mesh_rows}x{arch.mesh_cols} mesh"
        )
    if arch.weight_bits > arch.weight_sram.width_bits:
        raise ConfigError(
            f"{source}: key '{prefix}.weight_bits' ({arch.weight_bits}) exceeds "
            f"'{prefix}.weight_sram.width_bits' ({arch.weight_sram.width_bits})"
        )
    return arch


def arch_from_mapping(mapping: Any, source: str, prefix: str = "arch") -> YosoArch:
    """Validate a mapping (the ``arch:`` section) into :class:`YosoArch`."""
    return validate_arch(from_mapping(YosoArch, mapping, source=source, prefix=prefix), source, prefix)


def load_arch(path: str | Path = DEFAULT_PARAMS) -> YosoArch:
    """Load the ``arch:`` section of a YOSO params file (a relative ``path`` is from the project root).

    Raises:
        ConfigError: missing file, bad YAML, unknown/missing key, wrong type or bad value, naming
            the file and the dotted key.
    """
    content = read_yaml(resolve(path))
    if "arch" not in content:
        raise ConfigError(f"{path}: missing key 'arch'")
    return arch_from_mapping(content["arch"], str(path))


def with_changes(arch: YosoArch, **changes: Any) -> YosoArch:
    """A copy of ``arch`` with fields replaced (e.g. ``dt_ms=0.05``), re-validated."""
    return validate_arch(dataclasses.replace(arch, **changes), "with_changes", "arch")


def fixed_point_arch(arch: YosoArch, weight_bits: int, state_bits: int | None = None) -> YosoArch:
    """The accelerator with other number formats, its memories sized to the word widths.

    The weight SRAM keeps its capacity in *weights* (``words * weight_bits / arch.weight_bits``
    words of the same width, rounded up), so the mapping is unchanged and the macro (hence its
    access energy and leakage, :mod:`snnbp.yoso.energy`) grows or shrinks with the weight width.
    Slope and potential registers are ``state_bits`` wide (default: unchanged) and one neuron's
    state (slope + potential + fired flag) is exactly one state-SRAM word.

    Args:
        arch: the accelerator to change.
        weight_bits: signed weight width, >= 2.
        state_bits: signed slope and potential width, >= 2 (None: keep ``arch``'s).

    Raises:
        ConfigError: a width below 2 bits, or one that does not fit the SRAM word.
    """
    if weight_bits < 2 or (state_bits is not None and state_bits < 2):
        raise ConfigError(
            f"fixed_point_arch: widths must be >= 2 bits, got weight_bits={weight_bits}, state_bits={state_bits}"
        )
    slope = arch.slope_bits if state_bits is None else state_bits
    potential = arch.potential_bits if state_bits is None else state_bits
    words = math.ceil(arch.weight_sram.words * weight_bits / arch.weight_bits)
    return with_changes(
        arch,
        weight_bits=weight_bits,
        slope_bits=slope,
        potential_bits=potential,
        weight_sram=SramSpec(words, arch.weight_sram.width_bits),
        state_sram=SramSpec(arch.state_sram.words, slope + potential + 1),
    )

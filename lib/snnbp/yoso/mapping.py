"""Mapping a fully connected spiking network onto the PE mesh (ALGORITHMS.md 3.6).

Layer by layer, each layer's neurons are split into contiguous, near-equal blocks over consecutive
PEs (row-major PE ids: ``pe = row * mesh_cols + col``). A PE stores the *incoming* weights of its
neurons (one weight-SRAM row of packed words per presynaptic neuron), one state word per neuron,
and a routing table with one entry per (local neuron, destination PE): the destinations of layer
``l`` are the PEs of layer ``l + 1``; the output layer's single destination is the I/O port.

Spikes travel by dimension-ordered XY routing, so a packet from PE ``a`` to PE ``b`` takes
``|row_a - row_b| + |col_a - col_b|`` router-to-router hops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from snnbp.yoso.arch import YosoArch


class MappingError(ValueError):
    """A network does not fit the accelerator; the message names the layer, the PE and the limit."""


@dataclass(frozen=True)
class LayerMap:
    """Where one layer (its neurons and their incoming weights) lives.

    Attributes:
        index: 1-based layer index (layer 0 is the input).
        n_in: presynaptic neurons.
        n_out: neurons of this layer.
        pe_ids: the PEs holding this layer, in neuron order.
        neurons: neurons per PE (contiguous blocks, same order as ``pe_ids``).
        n_dest: routing-table destinations per neuron (PEs of the next layer, or 1: the I/O port).
    """

    index: int
    n_in: int
    n_out: int
    pe_ids: tuple[int, ...]
    neurons: tuple[int, ...]
    n_dest: int

    @property
    def neuron_pe(self) -> np.ndarray:
        """Position (0 .. len(pe_ids)-1) of each neuron's PE within ``pe_ids``. Shape: ``[n_out]``."""
        return np.repeat(np.arange(len(self.pe_ids)), self.neurons)


@dataclass(frozen=True)
class Mapping:
    """A network placed on the mesh.

    Attributes:
        arch: the accelerator.
        layers: one :class:`LayerMap` per weight layer (input excluded).
    """

    arch: YosoArch
    layers: tuple[LayerMap, ...]

    @property
    def used_pes(self) -> tuple[int, ...]:
        """Every PE holding neurons, ascending."""
        return tuple(sorted(p for layer in self.layers for p in layer.pe_ids))

    def coords(self, pe_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """``(row, col)`` of each PE. Shape: ``[len(pe_ids), 2]``."""
        ids = np.asarray(pe_ids, dtype=np.int64)
        return np.stack([ids // self.arch.mesh_cols, ids % self.arch.mesh_cols], axis=-1)

    def source_coords(self, layer: int) -> np.ndarray:
        """Where layer ``layer``'s input spikes come from: the I/O port for layer 1, else the PEs
        of layer ``layer - 1``. Shape: ``[n_sources, 2]``."""
        if layer == 1:
            return np.asarray([self.arch.io_port], dtype=np.int64)
        return self.coords(self.layers[layer - 2].pe_ids)

    def hops_into(self, layer: int) -> np.ndarray:
        """XY hop counts from each source of layer ``layer``'s input spikes to each of its PEs.

        Shape: ``[n_sources, len(pe_ids)]`` (sources as in :meth:`source_coords`).
        """
        return xy_hops(self.source_coords(layer), self.coords(self.layers[layer - 1].pe_ids))

    def hops_to_port(self) -> np.ndarray:
        """XY hops from each output-layer PE to the I/O port. Shape: ``[len(pe_ids)]``."""
        return xy_hops(self.coords(self.layers[-1].pe_ids), np.asarray([self.arch.io_port]))[:, 0]


def xy_hops(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Manhattan distance (XY routing hops) between every ``a`` and every ``b``.

    Shape:
        - a: ``[n_a, 2]``, b: ``[n_b, 2]`` (row, col).
        - Output: ``[n_a, n_b]`` int64.
    """
    return np.abs(a[:, None, :] - b[None, :, :]).sum(-1)


def split_evenly(n: int, parts: int) -> tuple[int, ...]:
    """``n`` items in ``parts`` contiguous blocks whose sizes differ by at most one (larger first)."""
    base, extra = divmod(n, parts)
    return tuple(base + (1 if i < extra else 0) for i in range(parts))


def pe_needs(arch: YosoArch, n_in: int, n_local: int, n_dest: int) -> dict[str, tuple[int, int, str]]:
    """What a PE holding ``n_local`` neurons with ``n_in`` inputs needs, against each limit.

    Returns:
        ``{name: (needed, available, unit)}`` for the datapath, weight, state and routing memories.
    """
    return {
        "neurons_per_pe": (n_local, arch.neurons_per_pe, "neurons"),
        "weight_sram": (n_in * arch.weight_row_words(n_local), arch.weight_sram.words, "words"),
        "state_sram": (n_local * arch.state_words_per_neuron, arch.state_sram.words, "words"),
        "route_sram": (n_local * n_dest, arch.route_sram.words, "entries"),
    }


def max_neurons_per_pe(arch: YosoArch, n_in: int, n_dest: int) -> int:
    """The most neurons of a layer one PE can hold (0 if not even one fits)."""
    best = 0
    for n in range(1, arch.neurons_per_pe + 1):
        if all(need <= have for need, have, _ in pe_needs(arch, n_in, n, n_dest).values()):
            best = n
        else:
            break
    return best


def _check_layer(
    arch: YosoArch, index: int, n_in: int, pe_ids: Sequence[int], neurons: Sequence[int], n_dest: int
) -> None:
    for pe, n_local in zip(pe_ids, neurons):
        for limit, (need, have, unit) in pe_needs(arch, n_in, n_local, n_dest).items():
            if need > have:
                row, col = divmod(pe, arch.mesh_cols)
                raise MappingError(
                    f"layer {index} ({n_in} inputs): PE {pe} at (row {row}, col {col}) holds {n_local} neurons "
                    f"and needs {need} {unit} of {limit}, but the limit is {have}"
                )


def map_network(layer_sizes: Sequence[int], arch: YosoArch, pes_per_layer: Sequence[int] | None = None) -> Mapping:
    """Place a fully connected network ``layer_sizes = [N_0, N_1, ..., N_L]`` on the mesh.

    Without ``pes_per_layer`` each layer gets the fewest PEs that hold it (largest block that fits
    every limit of :func:`pe_needs`); layers take consecutive PE ids from 0.

    Args:
        layer_sizes: neurons per layer, input first.
        arch: the accelerator.
        pes_per_layer: optional PE count per weight layer (``len(layer_sizes) - 1`` entries).

    Raises:
        MappingError: a PE's neurons, weights, state or routing entries exceed a limit (naming the
            layer, the PE and the limit), or the layers need more PEs than the mesh has.
    """
    sizes = [int(n) for n in layer_sizes]
    n_layers = len(sizes) - 1
    if n_layers < 1 or any(n < 1 for n in sizes):
        raise MappingError(f"layer_sizes must list at least two positive sizes, got {list(layer_sizes)}")
    if pes_per_layer is not None and len(pes_per_layer) != n_layers:
        raise MappingError(f"pes_per_layer has {len(pes_per_layer)} entries for {n_layers} weight layers")
    counts = [0] * n_layers
    n_dest = 1
    for l in range(n_layers, 0, -1):  # the routing table of layer l depends on layer l+1's PE count
        if pes_per_layer is None:
            n_max = max_neurons_per_pe(arch, sizes[l - 1], n_dest)
            if n_max == 0:
                _check_layer(arch, l, sizes[l - 1], [0], [1], n_dest)
            counts[l - 1] = math.ceil(sizes[l] / n_max)
        else:
            counts[l - 1] = int(pes_per_layer[l - 1])
            if not 1 <= counts[l - 1] <= sizes[l]:
                raise MappingError(f"layer {l}: {counts[l - 1]} PEs requested for {sizes[l]} neurons")
        n_dest = counts[l - 1]
    if sum(counts) > arch.n_pes:
        raise MappingError(
            f"the network needs {sum(counts)} PEs ({' + '.join(map(str, counts))} for layers 1..{n_layers}) "
            f"but the {arch.mesh_rows}x{arch.mesh_cols} mesh has {arch.n_pes}"
        )
    layers = []
    first = 0
    for l in range(1, n_layers + 1):
        pe_ids = tuple(range(first, first + counts[l - 1]))
        neurons = split_evenly(sizes[l], counts[l - 1])
        n_dest = counts[l] if l < n_layers else 1
        _check_layer(arch, l, sizes[l - 1], pe_ids, neurons, n_dest)
        layers.append(LayerMap(l, sizes[l - 1], sizes[l], pe_ids, neurons, n_dest))
        first += counts[l - 1]
    return Mapping(arch, tuple(layers))

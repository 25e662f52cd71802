"""Mapping a spiking network onto the PE mesh (ALGORITHMS.md 3.6).

Layer by layer, each layer's neurons are split into contiguous, near-equal blocks over consecutive
PEs (row-major PE ids: ``pe = row * mesh_cols + col``). A PE stores the *incoming* weights of its
neurons (one weight-SRAM row of packed words per presynaptic neuron), one state word per neuron,
and a routing table with one entry per (local neuron, destination PE): the destinations of layer
``l`` are the PEs of layer ``l + 1``; the output layer's single destination is the I/O port.

Convolution + first-spike pooling layers (:class:`Wiring`, :func:`map_conv_network`) are placed by
whole pooling windows (all output channels of a window on one PE). Their weights are shared: a PE
stores the kernel once, one row per input channel (kernel positions x output channels), instead of
one row per presynaptic neuron. Their spikes go only to the PEs whose neurons they reach, and a PE
emits the first spike of each pooling window (one flag bit per pooled neuron in the state SRAM).

Spikes travel by dimension-ordered XY routing, so a packet from PE ``a`` to PE ``b`` takes
``|row_a - row_b| + |col_a - col_b|`` router-to-router hops.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from snnbp.yoso.arch import YosoArch


class MappingError(ValueError):
    """A network does not fit the accelerator; the message names the layer, the PE and the limit."""


@dataclass(frozen=True, eq=False)
class Wiring:
    """The connections of a sparse layer (a convolution followed by first-spike pooling).

    Neurons are numbered pooling window by window (the ``window`` neurons of a window are
    consecutive); inputs and pooled outputs ("emitters") in the model's flattened order.

    Attributes:
        pre: ``[n_pairs]`` int64, the input of every connection.
        post: ``[n_pairs]`` int64, its neuron.
        emitter: ``[n_out]`` int64, the pooled neuron each neuron's spike belongs to.
        n_emitters: pooled neurons (the next layer's inputs).
        window: neurons per pooling window (pool x pool positions x output channels).
        emitters_per_window: pooled neurons per window (the output channels).
        weight_rows: weight-SRAM rows of a PE (one per input channel).
        row_weights: weights per row (kernel positions x output channels).
    """

    pre: np.ndarray
    post: np.ndarray
    emitter: np.ndarray
    n_emitters: int
    window: int
    emitters_per_window: int
    weight_rows: int
    row_weights: int

    @property
    def n_out(self) -> int:
        """Neurons of the layer."""
        return int(self.emitter.shape[0])


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
        wiring: the connections of a sparse (convolution + pooling) layer; None: fully connected.
        emitter_dests: routing-table destinations of each pooled neuron of a sparse layer (the
            next layer's PEs it reaches), ``n_emit`` entries; None for fully connected layers.
    """

    index: int
    n_in: int
    n_out: int
    pe_ids: tuple[int, ...]
    neurons: tuple[int, ...]
    n_dest: int
    wiring: Wiring | None = None
    emitter_dests: tuple[int, ...] | None = None

    @property
    def n_emit(self) -> int:
        """Spiking outputs of the layer (pooled neurons of a sparse layer, else its neurons)."""
        return self.n_out if self.wiring is None else self.wiring.n_emitters

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

    def emitter_positions(self, layer: int) -> np.ndarray:
        """The position in ``pe_ids`` of the PE that emits each spiking output of layer ``layer``
        (its neurons, or the pooled neurons of a sparse layer). Shape: ``[n_emit]``."""
        lmap = self.layers[layer - 1]
        if lmap.wiring is None:
            return lmap.neuron_pe
        positions = np.zeros(lmap.wiring.n_emitters, dtype=np.int64)
        positions[lmap.wiring.emitter] = lmap.neuron_pe
        return positions

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
        _raise_unfit(arch, index, n_in, pe, n_local, pe_needs(arch, n_in, n_local, n_dest))


def _raise_unfit(
    arch: YosoArch, index: int, n_in: int, pe: int, n_local: int, needs: dict[str, tuple[int, int, str]]
) -> None:
    """Raise :class:`MappingError` for the first of ``needs`` (:func:`pe_needs`) over its limit."""
    for limit, (need, have, unit) in needs.items():
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


def sparse_pe_needs(
    arch: YosoArch, wiring: Wiring, n_windows: int, route_entries: int
) -> dict[str, tuple[int, int, str]]:
    """What a PE holding ``n_windows`` pooling windows of a sparse layer needs, against each limit.

    The kernel (``weight_rows`` rows of ``row_weights`` weights) is stored once whatever the
    number of windows; the state SRAM holds every neuron's state plus one flag bit per pooled
    neuron (packed into words).

    Returns:
        ``{name: (needed, available, unit)}`` as :func:`pe_needs`.
    """
    n_local = n_windows * wiring.window
    flag_words = math.ceil(n_windows * wiring.emitters_per_window / arch.state_sram.width_bits)
    return {
        "neurons_per_pe": (n_local, arch.neurons_per_pe, "neurons"),
        "weight_sram": (
            wiring.weight_rows * arch.weight_row_words(wiring.row_weights),
            arch.weight_sram.words,
            "words",
        ),
        "state_sram": (n_local * arch.state_words_per_neuron + flag_words, arch.state_sram.words, "words"),
        "route_sram": (route_entries, arch.route_sram.words, "entries"),
    }


def input_destinations(wiring: Wiring, neurons: Sequence[int], n_inputs: int) -> np.ndarray:
    """How many distinct PEs of a sparse layer (placed as ``neurons`` per PE) each of its
    ``n_inputs`` inputs reaches. Shape: ``[n_inputs]`` int64."""
    n_pes = len(neurons)
    pe_of_pair = np.repeat(np.arange(n_pes), neurons)[wiring.post]
    pairs = np.unique(wiring.pre * n_pes + pe_of_pair)
    return np.bincount(pairs // n_pes, minlength=n_inputs)


def route_entries(wiring: Wiring, neurons: Sequence[int], dests: Sequence[int] | np.ndarray) -> list[int]:
    """Routing-table entries of each PE of a sparse layer: the destinations ``dests`` summed over
    the pooled neurons the PE emits (``neurons`` per PE, windows in order)."""
    dests = np.asarray(dests)
    bounds = np.cumsum([0, *neurons])
    return [int(dests[np.unique(wiring.emitter[a:b])].sum()) for a, b in zip(bounds[:-1], bounds[1:])]


def _sparse_blocks(
    arch: YosoArch, index: int, n_in: int, wiring: Wiring, dests: np.ndarray, count: int | None
) -> tuple[int, ...]:
    """Neurons per PE of a sparse layer: whole windows, the fewest PEs that hold them (or ``count``)."""
    n_windows = wiring.n_out // wiring.window
    if count is None:
        widest = int(dests.max()) if dests.size else 0

        def needs(n: int) -> dict[str, tuple[int, int, str]]:
            return sparse_pe_needs(arch, wiring, n, n * wiring.emitters_per_window * widest)

        fits = [n for n in range(1, n_windows + 1) if all(need <= have for need, have, _ in needs(n).values())]
        if not fits:
            _raise_unfit(arch, index, n_in, 0, wiring.window, needs(1))
        count = math.ceil(n_windows / max(fits))
    elif not 1 <= count <= n_windows:
        raise MappingError(f"layer {index}: {count} PEs requested for {n_windows} pooling windows")
    return tuple(n * wiring.window for n in split_evenly(n_windows, count))


def map_conv_network(
    n_inputs: int, layers: Sequence[Wiring | int], arch: YosoArch, pes_per_layer: Sequence[int] | None = None
) -> Mapping:
    """Place a network of sparse (convolution + pooling) layers followed by fully connected ones.

    ``layers`` lists a :class:`Wiring` for each sparse layer and the width of each fully connected
    layer; the last must be fully connected (the output). Fully connected layers are placed as by
    :func:`map_network`; sparse layers by whole pooling windows (:func:`sparse_pe_needs`), the
    routing table of each pooled neuron holding one entry per PE of the next layer it reaches.

    Args:
        n_inputs: input neurons (pixels).
        layers: the weight layers, input side first.
        arch: the accelerator.
        pes_per_layer: optional PE count per weight layer.

    Raises:
        MappingError: a sparse layer after a fully connected one or as the output, a layer that does
            not fit (naming the layer, the PE and the limit), or more PEs than the mesh has.
    """
    kinds = [isinstance(layer, Wiring) for layer in layers]
    n_layers = len(layers)
    if n_layers < 1 or kinds[-1] or any(b and not a for a, b in zip(kinds, kinds[1:])):
        raise MappingError("sparse (convolution) layers must come first and the output layer must be fully connected")
    if pes_per_layer is not None and len(pes_per_layer) != n_layers:
        raise MappingError(f"pes_per_layer has {len(pes_per_layer)} entries for {n_layers} weight layers")
    n_in = [n_inputs]
    for layer in layers[:-1]:
        n_in.append(layer.n_emitters if isinstance(layer, Wiring) else int(layer))
    neurons: list[tuple[int, ...]] = [()] * n_layers
    dests: list[np.ndarray | None] = [None] * n_layers
    first_dense = kinds.index(False)
    dense = map_network(
        [n_in[first_dense], *(int(x) for x in layers[first_dense:])],
        arch,
        None if pes_per_layer is None else pes_per_layer[first_dense:],
    )
    for l, lmap in enumerate(dense.layers, start=first_dense):
        neurons[l] = lmap.neurons
    for l in range(first_dense - 1, -1, -1):
        wiring = layers[l]
        if l + 1 == first_dense:
            dests[l] = np.full(wiring.n_emitters, len(neurons[l + 1]), dtype=np.int64)
        else:
            dests[l] = input_destinations(layers[l + 1], neurons[l + 1], wiring.n_emitters)
        count = None if pes_per_layer is None else int(pes_per_layer[l])
        neurons[l] = _sparse_blocks(arch, l + 1, n_in[l], wiring, dests[l], count)
    if sum(len(n) for n in neurons) > arch.n_pes:
        counts = [len(n) for n in neurons]
        raise MappingError(
            f"the network needs {sum(counts)} PEs ({' + '.join(map(str, counts))} for layers 1..{n_layers}) "
            f"but the {arch.mesh_rows}x{arch.mesh_cols} mesh has {arch.n_pes}"
        )
    placed = []
    first = 0
    for l in range(n_layers):
        pe_ids = tuple(range(first, first + len(neurons[l])))
        first += len(pe_ids)
        if not kinds[l]:
            placed.append(dataclasses.replace(dense.layers[l - first_dense], index=l + 1, pe_ids=pe_ids))
            continue
        wiring = layers[l]
        for pe, local, entries in zip(pe_ids, neurons[l], route_entries(wiring, neurons[l], dests[l])):
            _raise_unfit(
                arch, l + 1, n_in[l], pe, local, sparse_pe_needs(arch, wiring, local // wiring.window, entries)
            )
        n_dest = len(neurons[l + 1])
        placed.append(
            LayerMap(
                l + 1,
                n_in[l],
                wiring.n_out,
                pe_ids,
                neurons[l],
                n_dest,
                wiring,
                tuple(int(d) for d in dests[l]),
            )
        )
    return Mapping(arch, tuple(placed))

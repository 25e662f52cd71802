"""Operation counts and the cycle model of the accelerator's PEs (ALGORITHMS.md 3.6).

What every layer's PEs do at every time step (:class:`Activity`: input events, neurons updated by
events and by the sweep, spikes emitted), the LOAD -> COMPUTE -> STORE cycle model with its FIFO
(:func:`layer_cycles`), and the per-sample, per-layer, per-PE counters of a batch (:class:`Counts`)
for single-spike (:func:`ttfs_activity`) and rate-coded (:func:`rate_coded_counts`) networks. The
arithmetic that decides the spikes is in :mod:`snnbp.yoso.sim`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from snnbp.yoso.arch import YosoArch
from snnbp.yoso.mapping import LayerMap, Mapping

INF = float("inf")

COUNTERS = (
    "fifo_push",
    "fifo_pop",
    "weight_sram_reads",
    "state_sram_reads",
    "state_sram_writes",
    "route_sram_reads",
    "slope_adds",
    "potential_adds",
    "compares",
    "hops",
    "deliveries",
    "spikes_in",
    "spikes_out",
    "busy_cycles",
    "stall_cycles",
    "fifo_max_occupancy",
)
"""Per-sample, per-layer, per-PE counters held by :class:`Counts` (all ``[B, L, n_pes]``)."""


@dataclass(frozen=True)
class Counts:
    """Operation counts and cycles of one batch of inferences.

    Counters (``ops[name]``, each ``[B, L, n_pes]``: sample, layer, PE of the mesh):

    * ``fifo_push``, ``fifo_pop``: input-spike FIFO operations (one of each per spike per PE).
    * ``weight_sram_reads``: weight words read (one packed row per input spike, skipped when all the
      PE's neurons have fired).
    * ``state_sram_reads``, ``state_sram_writes``: state words (per slope update and per sweep update).
    * ``route_sram_reads``: routing-table entries read (one per destination of each emitted spike).
    * ``slope_adds`` (``slope_bits`` wide), ``potential_adds`` and ``compares`` (``potential_bits``).
    * ``hops``: router-to-router link traversals; ``deliveries``: packets ejected into a PE (or the
      I/O port). Both counted at the receiving PE; packets to the I/O port at the emitting PE.
    * ``spikes_in``, ``spikes_out``: spikes received / emitted.
    * ``busy_cycles``: cycles the PE's pipeline works; ``stall_cycles``: cycles senders wait on a
      full FIFO; ``fifo_max_occupancy``: peak FIFO entries (a maximum, not a sum).

    Attributes:
        ops: the counters.
        cycles: ``[B]`` clock cycles of each inference.
        stop_step: ``[B]`` last time step processed.
    """

    ops: dict[str, torch.Tensor]
    cycles: torch.Tensor
    stop_step: torch.Tensor

    def total(self, name: str) -> torch.Tensor:
        """Counter summed over layers and PEs (max for ``fifo_max_occupancy``). Shape: ``[B]``."""
        x = self.ops[name]
        return x.amax((1, 2)) if name == "fifo_max_occupancy" else x.sum((1, 2))

    def per_layer(self, name: str) -> torch.Tensor:
        """Counter summed over PEs. Shape: ``[B, L]``."""
        return self.ops[name].sum(2)

    def per_pe(self, name: str) -> torch.Tensor:
        """Counter summed over layers. Shape: ``[B, n_pes]``."""
        return self.ops[name].sum(1)

    def idle_cycles(self) -> torch.Tensor:
        """Cycles each PE's pipeline does nothing. Shape: ``[B, n_pes]``."""
        return self.cycles.unsqueeze(1) - self.per_pe("busy_cycles")

    def mean_totals(self) -> dict[str, float]:
        """Every counter's per-image total, averaged over the batch, plus ``cycles``."""
        out = {name: float(self.total(name).double().mean()) for name in self.ops}
        out["cycles"] = float(self.cycles.double().mean())
        return out


def concat_counts(parts: Sequence[Counts]) -> Counts:
    """Join the counts of consecutive batch chunks."""
    return Counts(
        {name: torch.cat([p.ops[name] for p in parts]) for name in parts[0].ops},
        torch.cat([p.cycles for p in parts]),
        torch.cat([p.stop_step for p in parts]),
    )


@dataclass(frozen=True)
class Activity:
    """What one fully connected layer's PEs do at every step ``0 .. K-1`` (zero after the stop step).

    Attributes:
        events: ``[B, K]`` input spikes arriving at each of the layer's PEs (FC: all of them).
        updated: ``[B, P, K]`` local neurons an event of step n updates (not fired by step n).
        swept: ``[B, P, K]`` local neurons the sweep of step n updates.
        emitted: ``[B, P, K]`` spikes the PE emits at step n.
        sources: ``[B, S]`` input spikes per source (I/O port or previous layer's PEs).
    """

    events: torch.Tensor
    updated: torch.Tensor
    swept: torch.Tensor
    emitted: torch.Tensor
    sources: torch.Tensor


@dataclass(frozen=True)
class LayerWork:
    """What one layer's PEs do, per PE and step (any connectivity; zero after the stop step).

    Attributes:
        events: ``[B, P, K]`` input spikes delivered to each PE at step n (FIFO push and pop).
        updates: ``[B, P, K]`` slope updates those events make (not-yet-fired neurons they reach).
        weight_words: ``[B, P, K]`` weight-SRAM words those events read.
        service: ``[B, P, K]`` pipeline cycles those events occupy (:func:`event_cycles` each).
        swept: ``[B, P, K]`` local neurons the sweep of step n updates.
        emitted: ``[B, P, K]`` spikes the PE emits at step n.
        hops: ``[B, P]`` XY hops of the packets delivered to the PE.
        route_reads: ``[B, P]`` routing-table entries the PE reads for its emitted spikes.
        extra_compares: ``[B, P]`` compares besides the sweep's (first-spike pooling: one flag test
            per spike of a pooled neuron).
        max_hops: the longest XY path from a source to one of the layer's PEs.
    """

    events: torch.Tensor
    updates: torch.Tensor
    weight_words: torch.Tensor
    service: torch.Tensor
    swept: torch.Tensor
    emitted: torch.Tensor
    hops: torch.Tensor
    route_reads: torch.Tensor
    extra_compares: torch.Tensor
    max_hops: int


def step_histogram(steps: torch.Tensor, group: torch.Tensor, n_groups: int, n_bins: int) -> torch.Tensor:
    """Count ``steps`` (``[B, N]``, ``inf`` or ``>= n_bins`` ignored) per (group, step).

    Shape: ``group`` ``[N]`` (values ``< n_groups``); output ``[B, n_groups, n_bins]``.
    """
    batch = steps.shape[0]
    idx = torch.where(torch.isfinite(steps) & (steps < n_bins), steps, float(n_bins)).long()
    flat = group.view(1, -1) * (n_bins + 1) + idx
    hist = torch.zeros(batch, n_groups * (n_bins + 1), dtype=torch.float64, device=steps.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64))
    return hist.view(batch, n_groups, n_bins + 1)[..., :n_bins]


def ttfs_activity(
    k_in: torch.Tensor,
    n_fire: torch.Tensor,
    stop: torch.Tensor,
    lmap: LayerMap,
    prev_emitted: torch.Tensor | None,
    n_bins: int,
) -> Activity:
    """Single-spike (ReL-PSP) activity of one fully connected layer up to each sample's stop step.

    A neuron is swept at steps ``k_first < n <= n_fire`` (``k_first``: the layer's first input).
    """
    device = k_in.device
    steps = torch.arange(n_bins, device=device, dtype=torch.float64)
    live = steps.view(1, -1) <= stop.view(-1, 1)
    k_live = torch.where(k_in <= stop.view(-1, 1), k_in, INF)
    events = step_histogram(k_live, torch.zeros(k_in.shape[1], dtype=torch.long, device=device), 1, n_bins)[:, 0]
    pe_of = torch.as_tensor(lmap.neuron_pe, device=device)
    fires = step_histogram(n_fire, pe_of, len(lmap.pe_ids), n_bins)
    n_local = torch.as_tensor(lmap.neurons, dtype=torch.float64, device=device).view(1, -1, 1)
    fired_by = torch.cumsum(fires, -1)
    fired_before = fired_by - fires
    started = steps.view(1, -1) > k_in.amin(1, keepdim=True)
    live3 = live.unsqueeze(1)
    sources = events.sum(1, keepdim=True) if prev_emitted is None else prev_emitted
    return Activity(
        events=events,
        updated=(n_local - fired_by) * live3,
        swept=(n_local - fired_before) * (started & live).unsqueeze(1),
        emitted=fires * live3,
        sources=sources,
    )


def event_cycles(reached: torch.Tensor, row_words: torch.Tensor | float, arch: YosoArch) -> torch.Tensor:
    """Pipeline cycles of one input event at a PE where it reaches ``f = reached`` not-yet-fired
    neurons: ``s = max(R_w, 2 f w, ceil(f / lanes))`` (a weight row of ``R_w`` words; ``f`` state
    reads and ``f`` writes of ``w`` words each; COMPUTE lanes), or 1 cycle (FIFO pop only) when
    ``f = 0``. Shape: any (``row_words`` broadcasts)."""
    words = float(arch.state_words_per_neuron)
    row = torch.as_tensor(row_words, dtype=torch.float64, device=reached.device).expand_as(reached)
    busy = torch.maximum(torch.maximum(row, 2 * reached * words), torch.ceil(reached / float(arch.adder_lanes)))
    return torch.where(reached > 0, busy, 1.0)


def dense_work(act: Activity, lmap: LayerMap, arch: YosoArch, hop_table: np.ndarray) -> LayerWork:
    """:class:`LayerWork` of a fully connected layer: every input spike reaches every PE of the
    layer, and every not-yet-fired local neuron there.

    Args:
        act: the layer's activity (:func:`ttfs_activity` or the rate-coded one).
        lmap: its placement.
        arch: the accelerator.
        hop_table: ``[n_sources, P]`` XY hops from each source to each PE
            (:meth:`snnbp.yoso.mapping.Mapping.hops_into`).
    """
    device = act.events.device
    row = torch.as_tensor([arch.weight_row_words(n) for n in lmap.neurons], dtype=torch.float64, device=device).view(
        1, -1, 1
    )
    events = act.events.unsqueeze(1).expand_as(act.updated)
    emitted = act.emitted.sum(-1)
    return LayerWork(
        events=events,
        updates=events * act.updated,
        weight_words=events * (act.updated > 0) * row,
        service=events * event_cycles(act.updated, row, arch),
        swept=act.swept,
        emitted=act.emitted,
        hops=act.sources @ torch.as_tensor(hop_table, dtype=torch.float64, device=device),
        route_reads=emitted * lmap.n_dest,
        extra_compares=torch.zeros_like(emitted),
        max_hops=int(hop_table.max()),
    )


@dataclass(frozen=True)
class Deliveries:
    """The packets of a sparse layer: one per (input, PE of the layer it reaches).

    Attributes:
        pre: ``[G]`` the input of each delivery.
        pe: ``[G]`` its PE's position in the layer's ``pe_ids``.
        of_pair: ``[n_pairs]`` the delivery that carries each connection of the wiring.
        hops: ``[G]`` XY hops from the input's source (I/O port or PE) to the PE.
        emitter_pe: ``[n_emit]`` the position of each pooled neuron's PE in ``pe_ids``.
        dests: ``[n_emit]`` routing-table entries of each pooled neuron.
    """

    pre: torch.Tensor
    pe: torch.Tensor
    of_pair: torch.Tensor
    hops: torch.Tensor
    emitter_pe: torch.Tensor
    dests: torch.Tensor


def sparse_deliveries(mapping: Mapping, layer: int, device: str | torch.device = "cpu") -> Deliveries:
    """The :class:`Deliveries` of sparse layer ``layer`` (1-based) of ``mapping``."""
    lmap = mapping.layers[layer - 1]
    wiring = lmap.wiring
    n_pes = len(lmap.pe_ids)
    pe_of_pair = lmap.neuron_pe[wiring.post]
    keys, of_pair = np.unique(wiring.pre * n_pes + pe_of_pair, return_inverse=True)
    pre, pe = keys // n_pes, keys % n_pes
    hop_table = mapping.hops_into(layer)
    source = np.zeros(lmap.n_in, dtype=np.int64) if layer == 1 else mapping.emitter_positions(layer - 1)
    return Deliveries(
        pre=torch.as_tensor(pre, device=device),
        pe=torch.as_tensor(pe, device=device),
        of_pair=torch.as_tensor(of_pair.reshape(-1), device=device),
        hops=torch.as_tensor(hop_table[source[pre], pe].astype(np.float64), device=device),
        emitter_pe=torch.as_tensor(mapping.emitter_positions(layer), device=device),
        dests=torch.as_tensor(np.asarray(lmap.emitter_dests, dtype=np.float64), device=device),
    )


def sparse_work(
    k_in: torch.Tensor,
    n_fire: torch.Tensor,
    emit: torch.Tensor,
    stop: torch.Tensor,
    lmap: LayerMap,
    arch: YosoArch,
    deliveries: Deliveries,
    n_bins: int,
) -> LayerWork:
    """:class:`LayerWork` of a sparse (convolution + pooling) layer up to each sample's stop step.

    An input spike of step ``k_i`` is one packet to each PE it reaches (:class:`Deliveries`); there
    it updates the reached neurons ``j`` that have not fired by step ``k_i`` (``n_j > k_i``) and
    reads the kernel row of its input channel. Neuron ``j`` is swept at steps
    ``k_first_j < n <= min(n_j, stop)`` (``k_first_j``: its own earliest input); the PE emits the
    pooled spike of each window (one routing-table read per destination) and tests the window's
    flag on every spike of its neurons.

    Shape:
        - k_in: ``[B, N_in]`` input steps; n_fire: ``[B, N]`` the neurons' steps; emit:
          ``[B, N_emit]`` the pooled steps; stop: ``[B]``.
    """
    wiring = lmap.wiring
    batch, device = k_in.shape[0], k_in.device
    n_pes = len(lmap.pe_ids)
    post = torch.as_tensor(wiring.post, device=device)
    pre = torch.as_tensor(wiring.pre, device=device)
    k_live = torch.where(k_in <= stop.view(-1, 1), k_in, INF)
    k_pair = k_live[:, pre]
    reached_pair = (k_pair < n_fire[:, post]) & torch.isfinite(k_pair)
    n_deliveries = deliveries.pre.shape[0]
    reached = torch.zeros(batch, n_deliveries, dtype=torch.float64, device=device)
    reached.index_add_(1, deliveries.of_pair, reached_pair.double())
    k_delivery = k_live[:, deliveries.pre]
    live = torch.isfinite(k_delivery)
    row = float(arch.weight_row_words(wiring.row_weights))
    flat = deliveries.pe.view(1, -1) * (n_bins + 1) + torch.where(live, k_delivery, float(n_bins)).long()

    def per_step(values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(batch, n_pes * (n_bins + 1), dtype=torch.float64, device=device)
        return out.scatter_add_(1, flat, values).view(batch, n_pes, n_bins + 1)[..., :n_bins]

    pe_of = torch.as_tensor(lmap.neuron_pe, device=device)
    k_first = torch.full_like(n_fire, INF).scatter_reduce(1, post.expand(batch, -1), k_pair, "amin")
    start, end = k_first + 1, torch.minimum(n_fire, stop.view(-1, 1))
    sweeping = start <= end
    swept = torch.cumsum(step_histogram(torch.where(sweeping, start, INF), pe_of, n_pes, n_bins), -1) - torch.cumsum(
        step_histogram(torch.where(sweeping, end + 1, INF), pe_of, n_pes, n_bins), -1
    )
    emit_live = torch.where(emit <= stop.view(-1, 1), emit, INF)
    emitted = step_histogram(emit_live, deliveries.emitter_pe, n_pes, n_bins)
    route_reads = torch.zeros(batch, n_pes, dtype=torch.float64, device=device)
    route_reads.index_add_(1, deliveries.emitter_pe, torch.isfinite(emit_live) * deliveries.dests)
    neuron_spikes = step_histogram(torch.where(n_fire <= stop.view(-1, 1), n_fire, INF), pe_of, n_pes, n_bins)
    hops = torch.zeros(batch, n_pes, dtype=torch.float64, device=device)
    hops.index_add_(1, deliveries.pe, live * deliveries.hops)
    return LayerWork(
        events=per_step(live.double()),
        updates=per_step(reached),
        weight_words=per_step((reached > 0).double() * row),
        service=per_step(event_cycles(reached, row, arch) * live),
        swept=swept,
        emitted=emitted,
        hops=hops,
        route_reads=route_reads,
        extra_compares=neuron_spikes.sum(-1),
        max_hops=int(deliveries.hops.max()) if n_deliveries else 0,
    )


def layer_cycles(work: LayerWork, arch: YosoArch) -> dict[str, torch.Tensor]:
    """Cycle model of one layer's PEs.

    Single-port SRAMs (one word per cycle). The events of a step occupy a PE's pipeline for their
    :func:`event_cycles`; the sweep of ``a`` active neurons takes ``max(2 a w, ceil(a / lanes))``.
    Each non-empty phase pays the pipeline fill (``load + compute + store`` cycles). Packets arrive
    at one per cycle; the FIFO's peak occupancy during a burst of ``E`` events of mean service
    ``s`` is ``max(1, E - floor(E / s))``; entries beyond the depth make the senders stall ``s``
    cycles each. Spikes reach the layer ``max_hops * router_cycles_per_hop`` cycles after they
    leave (the longest XY path from a source to the layer's PEs).

    Returns:
        ``busy [B, P]``, ``stall [B, P]``, ``occupancy [B, P]`` (peak) and ``step [B, K]``: the
        layer's time per step (slowest PE + XY delivery latency when spikes arrive).
    """
    words = float(arch.state_words_per_neuron)
    lanes = float(arch.adder_lanes)
    events = work.events
    mean_service = torch.where(events > 0, work.service / events.clamp(min=1.0), 1.0)
    sweep = torch.maximum(2 * work.swept * words, torch.ceil(work.swept / lanes))
    fill = arch.pipeline_depth * ((events > 0).double() + (work.swept > 0).double())
    per_pe = work.service + sweep + fill
    queue = torch.where(events > 0, torch.clamp(events - torch.floor(events / mean_service), min=1.0), 0.0)
    stall = torch.clamp(queue - arch.fifo_depth, min=0.0) * mean_service
    latency = float(work.max_hops * arch.router_cycles_per_hop)
    step = per_pe.amax(1) + (events.amax(1) > 0).double() * latency
    return {
        "busy": per_pe.sum(-1),
        "stall": stall.sum(-1),
        "occupancy": torch.clamp(queue, max=float(arch.fifo_depth)).amax(-1),
        "step": step,
    }


def account(works: Sequence[LayerWork], mapping: Mapping, stop: torch.Tensor, sweep_adds: float) -> Counts:
    """Reduce per-step work to :class:`Counts` (counters and cycles)."""
    arch = mapping.arch
    batch, _, n_bins = works[0].events.shape
    device = stop.device
    ops = {name: torch.zeros(batch, len(works), arch.n_pes, dtype=torch.float64, device=device) for name in COUNTERS}
    total_step = torch.full((batch, n_bins), float(arch.step_sync_cycles), dtype=torch.float64, device=device)
    words = float(arch.state_words_per_neuron)
    for l, (work, lmap) in enumerate(zip(works, mapping.layers)):
        pes = torch.as_tensor(lmap.pe_ids, device=device)
        spikes_in = work.events.sum(-1)
        slope_updates = work.updates.sum(-1)
        sweeps = work.swept.sum(-1)
        emitted = work.emitted.sum(-1)
        cyc = layer_cycles(work, arch)
        values = {
            "fifo_push": spikes_in,
            "fifo_pop": spikes_in,
            "weight_sram_reads": work.weight_words.sum(-1),
            "state_sram_reads": (slope_updates + sweeps) * words,
            "state_sram_writes": (slope_updates + sweeps) * words,
            "route_sram_reads": work.route_reads,
            "slope_adds": slope_updates,
            "potential_adds": sweeps * sweep_adds,
            "compares": sweeps + work.extra_compares,
            "hops": work.hops,
            "deliveries": spikes_in,
            "spikes_in": spikes_in,
            "spikes_out": emitted,
            "busy_cycles": cyc["busy"],
            "stall_cycles": cyc["stall"],
            "fifo_max_occupancy": cyc["occupancy"],
        }
        if l == len(mapping.layers) - 1:
            to_port = torch.as_tensor(mapping.hops_to_port(), dtype=torch.float64, device=device)
            values["hops"] = values["hops"] + emitted * to_port
            values["deliveries"] = values["deliveries"] + emitted
        for name, value in values.items():
            ops[name][:, l, pes] = value
        total_step = total_step + cyc["step"]
    live = torch.arange(n_bins, device=device).view(1, -1) <= stop.view(-1, 1)
    period = arch.dt_ms if arch.step_period_ms is None else arch.step_period_ms
    floor = period * arch.clock_mhz * 1e3 if arch.real_time else 0.0
    cycles = (torch.clamp(total_step, min=floor) * live).sum(1)
    return Counts(ops, cycles, stop)


def rate_coded_counts(rasters: Sequence[torch.Tensor], mapping: Mapping, *, sweep_adds: float = 2.0) -> Counts:
    """Cost of a rate-coded, time-stepped LIF network (HM2-BP-like) through the same cost model.

    Every spike of layer ``l-1`` at step ``n`` is an event at each PE of layer ``l`` (FIFO, weight
    row, one slope/current update per local neuron: LIF neurons never retire), and every neuron is
    swept every step (leak + integrate: ``sweep_adds`` adds, one compare, one state read and write).
    The whole window ``T`` is processed (the decision needs the spike counts).

    Args:
        rasters: ``[X_0, X_1, ..., X_L]``, binary ``[T, B, N_l]``: the input raster then every
            layer's output (e.g. from ``snnbp.hm2bp.simulate_lif``). One raster step = one ``dt``.
        mapping: placement of the same layer sizes.
        sweep_adds: adds per neuron per step (2: current decay/input and voltage update).

    Shape:
        - Output: :class:`Counts` with ``[B, L, n_pes]`` counters.
    """
    sizes = [r.shape[2] for r in rasters]
    expected = [layer.n_in for layer in mapping.layers] + [mapping.layers[-1].n_out]
    if sizes != expected:
        raise ValueError(f"rasters have layer sizes {sizes} but the mapping is for {expected}")
    n_bins, batch = rasters[0].shape[0], rasters[0].shape[1]
    device = rasters[0].device
    stop = torch.full((batch,), float(n_bins - 1), dtype=torch.float64, device=device)
    works, prev = [], None
    for l, lmap in enumerate(mapping.layers):
        x_in = rasters[l].to(torch.float64)
        x_out = rasters[l + 1].to(torch.float64)
        pe_of = torch.as_tensor(lmap.neuron_pe, device=device)
        emitted = torch.zeros(batch, len(lmap.pe_ids), n_bins, dtype=torch.float64, device=device)
        emitted.index_add_(1, pe_of, x_out.permute(1, 2, 0))
        n_local = torch.as_tensor(lmap.neurons, dtype=torch.float64, device=device).view(1, -1, 1)
        all_neurons = n_local.expand(batch, -1, n_bins)
        events = x_in.sum(2).t()
        act = Activity(events, all_neurons, all_neurons, emitted, events.sum(1, keepdim=True) if prev is None else prev)
        works.append(dense_work(act, lmap, mapping.arch, mapping.hops_into(l + 1)))
        prev = emitted.sum(-1)
    return account(works, mapping, stop, sweep_adds)

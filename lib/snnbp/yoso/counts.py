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
    """What one layer's PEs do at every step ``0 .. K-1`` (zero after the stop step).

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
    """Single-spike (ReL-PSP) activity of one layer up to each sample's stop step.

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


def layer_cycles(act: Activity, lmap: LayerMap, arch: YosoArch, max_hops: int) -> dict[str, torch.Tensor]:
    """Cycle model of one layer's PEs.

    Single-port SRAMs (one word per cycle). An input event at a PE with ``f`` not-yet-fired local
    neurons occupies the pipeline for ``s = max(R_w, 2 f w, ceil(f / lanes))`` cycles (weight row of
    ``R_w`` words; ``f`` state reads + ``f`` writes of ``w`` words each; COMPUTE lanes), or 1 cycle
    (FIFO pop only) when ``f = 0``. The sweep of ``a`` active neurons takes
    ``max(2 a w, ceil(a / lanes))``. Each non-empty phase pays the pipeline fill
    (``load + compute + store`` cycles). Packets arrive at one per cycle; the FIFO's peak occupancy
    during a burst of ``E`` events is ``max(1, E - floor(E / s))``; entries beyond the depth make the
    senders stall ``s`` cycles each. Spikes reach the layer ``max_hops * router_cycles_per_hop``
    cycles after they leave (the longest XY path from a source to the layer's PEs).

    Returns:
        ``busy [B, P]``, ``stall [B, P]``, ``occupancy [B, P]`` (peak) and ``step [B, K]``: the
        layer's time per step (slowest PE + XY delivery latency when spikes arrive).
    """
    device = act.events.device
    words = float(arch.state_words_per_neuron)
    lanes = float(arch.adder_lanes)
    row = torch.as_tensor([arch.weight_row_words(n) for n in lmap.neurons], dtype=torch.float64, device=device).view(
        1, -1, 1
    )
    f = act.updated
    per_event = torch.where(
        f > 0, torch.maximum(torch.maximum(row.expand_as(f), 2 * f * words), torch.ceil(f / lanes)), 1.0
    )
    events = act.events.unsqueeze(1)
    sweep = torch.maximum(2 * act.swept * words, torch.ceil(act.swept / lanes))
    fill = arch.pipeline_depth * ((events > 0).double() + (act.swept > 0).double())
    per_pe = events * per_event + sweep + fill
    queue = torch.where(events > 0, torch.clamp(events - torch.floor(events / per_event), min=1.0), 0.0)
    stall = torch.clamp(queue - arch.fifo_depth, min=0.0) * per_event
    latency = float(max_hops * arch.router_cycles_per_hop)
    step = per_pe.amax(1) + (act.events > 0).double() * latency
    return {
        "busy": per_pe.sum(-1),
        "stall": stall.sum(-1),
        "occupancy": torch.clamp(queue, max=float(arch.fifo_depth)).amax(-1),
        "step": step,
    }


def account(activities: Sequence[Activity], mapping: Mapping, stop: torch.Tensor, sweep_adds: float) -> Counts:
    """Reduce per-step activity to :class:`Counts` (counters and cycles)."""
    arch = mapping.arch
    batch, n_bins = activities[0].events.shape
    device = stop.device
    ops = {
        name: torch.zeros(batch, len(activities), arch.n_pes, dtype=torch.float64, device=device) for name in COUNTERS
    }
    total_step = torch.full((batch, n_bins), float(arch.step_sync_cycles), dtype=torch.float64, device=device)
    words = float(arch.state_words_per_neuron)
    for l, (act, lmap) in enumerate(zip(activities, mapping.layers)):
        pes = torch.as_tensor(lmap.pe_ids, device=device)
        row = torch.as_tensor([arch.weight_row_words(n) for n in lmap.neurons], dtype=torch.float64, device=device)
        spikes_in = act.events.sum(1, keepdim=True).expand(-1, len(pes))
        slope_updates = (act.events.unsqueeze(1) * act.updated).sum(-1)
        sweeps = act.swept.sum(-1)
        emitted = act.emitted.sum(-1)
        hop_table = mapping.hops_into(l + 1)
        hops = act.sources @ torch.as_tensor(hop_table, dtype=torch.float64, device=device)
        cyc = layer_cycles(act, lmap, arch, int(hop_table.max()))
        values = {
            "fifo_push": spikes_in,
            "fifo_pop": spikes_in,
            "weight_sram_reads": (act.events.unsqueeze(1) * (act.updated > 0)).sum(-1) * row,
            "state_sram_reads": (slope_updates + sweeps) * words,
            "state_sram_writes": (slope_updates + sweeps) * words,
            "route_sram_reads": emitted * lmap.n_dest,
            "slope_adds": slope_updates,
            "potential_adds": sweeps * sweep_adds,
            "compares": sweeps,
            "hops": hops,
            "deliveries": act.sources.sum(1, keepdim=True).expand(-1, len(pes)),
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
    activities, prev = [], None
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
        activities.append(act)
        prev = emitted.sum(-1)
    return account(activities, mapping, stop, sweep_adds)

"""The spiking CNN on the accelerator: its accelerator profile, its mapping and its record.

A CNN needs more neurons than the MLP's mesh holds (the first convolution alone has 10,816), so it
runs on a larger mesh, and its PEs hold whole pooling windows (128 neurons for 2 x 2 windows of 32
channels) plus one flag bit per pooled neuron, which needs a larger state SRAM
(:func:`snnbp.yoso.mapping.sparse_pe_needs`). Everything else (clock, widths, energies) is the
accelerator's params file.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from snnbp.yoso.arch import YosoArch, with_changes
from snnbp.yoso.mapping import Mapping, route_entries
from snnbp.yoso.report import YosoRun
from snnbp.yoso.sim import time_to_step
from snnbp.yoso.study.networks import TtfsNetwork
from snnbp.yoso.study.runs import run_summary


def cnn_arch(arch: YosoArch, mesh: tuple[int, int], state_sram_words: int) -> YosoArch:
    """``arch`` on a ``[rows, cols]`` mesh with ``state_sram_words`` words of state SRAM per PE."""
    state = dataclasses.replace(arch.state_sram, words=int(state_sram_words))
    return with_changes(arch, mesh_rows=int(mesh[0]), mesh_cols=int(mesh[1]), state_sram=state)


def mapping_frame(run: YosoRun, net: TtfsNetwork) -> pd.DataFrame:
    """Per weight layer: kind, neurons, spiking outputs, PEs, the largest PE's weight-SRAM words
    (shared kernel rows for a convolution) against the words its unrolled matrix would need (one row
    per presynaptic neuron, as a fully connected layer stores them), its routing entries, the mean
    number of PEs each input spike is delivered to, and the mean spikes in and out per image (up to
    the stop step)."""
    mapping: Mapping = run.mapping
    arch = mapping.arch
    counts = run.sim.counts
    inputs = (time_to_step(net.t_in, arch) <= counts.stop_step.view(-1, 1).to(net.t_in.device)).sum(1).double()
    rows = []
    for l, lmap in enumerate(mapping.layers):
        widest = max(lmap.neurons)
        unshared = lmap.n_in * arch.weight_row_words(widest)
        if lmap.wiring is None:
            kind, stored, route = "fc", unshared, widest * lmap.n_dest
        else:
            wiring = lmap.wiring
            kind = "conv + first-spike pool"
            stored = wiring.weight_rows * arch.weight_row_words(wiring.row_weights)
            route = max(route_entries(wiring, lmap.neurons, lmap.emitter_dests))
        arrived = inputs if l == 0 else counts.per_layer("spikes_out")[:, l - 1].double()
        packets = counts.per_layer("spikes_in")[:, l].double()
        rows.append(
            {
                "layer": lmap.index,
                "kind": kind,
                "neurons": lmap.n_out,
                "outputs": lmap.n_emit,
                "pes": len(lmap.pe_ids),
                "weight_words_per_pe": stored,
                "weight_words_unshared": unshared,
                "route_entries_per_pe": route,
                "pes_per_input_spike": float(packets.mean() / arrived.mean().clamp(min=1e-12)),
                "spikes_in_per_image": float(arrived.mean()),
                "spikes_out_per_image": float(counts.per_layer("spikes_out")[:, l].double().mean()),
            }
        )
    return pd.DataFrame(rows)


def cnn_record(
    net: TtfsNetwork,
    run: YosoRun,
    fidelity: pd.DataFrame,
    mapping: pd.DataFrame,
    mesh: tuple[int, int],
    state_words: int,
) -> dict[str, Any]:
    """The CNN's results as JSON-ready data (the ``cnn`` entry of ``metrics.json``)."""
    return {
        **run_summary(net, run),
        "accelerator_changes": {"mesh": list(mesh), "state_sram_words": int(state_words)},
        "fidelity": fidelity.to_dict(orient="records"),
        "mapping": mapping.to_dict(orient="records"),
    }

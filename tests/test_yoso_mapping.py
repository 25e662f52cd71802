"""Mapping a network onto the PE mesh: allocation, capacity errors, coordinates and XY hops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnbp.yoso import MappingError, load_arch, map_network
from snnbp.yoso.arch import SramSpec
from snnbp.yoso.mapping import xy_hops


def test_default_arch_places_784_800_10_on_eleven_pes():
    arch = load_arch()
    mapping = map_network([784, 800, 10], arch)
    hidden, out = mapping.layers
    # 64 KB weight SRAM of 64-bit words: 8192 // 784 = 10 words per row = 80 8-bit weights
    assert hidden.pe_ids == tuple(range(10)) and hidden.neurons == (80,) * 10
    assert out.pe_ids == (10,) and out.neurons == (10,)
    assert hidden.n_dest == 1 and out.n_dest == 1
    assert mapping.used_pes == tuple(range(11))
    np.testing.assert_array_equal(mapping.coords([0, 5, 10, 15]), [[0, 0], [1, 1], [2, 2], [3, 3]])


def test_neurons_are_split_evenly_and_contiguously():
    arch = load_arch()
    mapping = map_network([20, 10, 3], arch, pes_per_layer=[3, 2])
    assert mapping.layers[0].neurons == (4, 3, 3)
    assert mapping.layers[1].neurons == (2, 1)
    assert mapping.layers[0].neuron_pe.tolist() == [0] * 4 + [1] * 3 + [2] * 3
    assert mapping.layers[0].n_dest == 2


def test_xy_hops():
    arch = dataclasses.replace(load_arch(), io_port=(0, 0))
    mapping = map_network([4, 6, 2], arch, pes_per_layer=[6, 1])  # PEs 0..5 then 6 at (1, 2)
    np.testing.assert_array_equal(mapping.hops_into(1), [[0, 1, 2, 3, 1, 2]])
    expected = [[abs(r - 1) + abs(c - 2) for r, c in mapping.coords(range(6))]]
    np.testing.assert_array_equal(mapping.hops_into(2), np.array(expected).T)
    np.testing.assert_array_equal(mapping.hops_to_port(), [3])
    np.testing.assert_array_equal(xy_hops(np.array([[0, 0]]), np.array([[3, 3], [0, 2]])), [[6, 2]])


@pytest.mark.parametrize(
    ("arch_change", "sizes", "pes", "message"),
    [
        (
            {},
            [784, 800, 10],
            [5, 1],
            r"layer 1 \(784 inputs\): PE 0 at \(row 0, col 0\) holds 160 neurons and needs 160 neurons of neurons_per_pe, but the limit is 128",
        ),
        (
            {"neurons_per_pe": 512},
            [784, 800, 10],
            [5, 1],
            r"layer 1 .* needs 15680 words of weight_sram, but the limit is 8192",
        ),
        (
            {"state_sram": SramSpec(16, 64)},
            [10, 40, 2],
            [1, 1],
            r"layer 1 .* needs 40 words of state_sram, but the limit is 16",
        ),
        (
            {"route_sram": SramSpec(8, 16)},
            [10, 20, 30],
            [1, 3],
            r"layer 1 .* holds 20 neurons and needs 60 entries of route_sram, but the limit is 8",
        ),
        (
            {"weight_sram": SramSpec(100, 64)},
            [784, 5],
            None,
            r"layer 1 \(784 inputs\): PE 0 .* needs 784 words of weight_sram, but the limit is 100",
        ),
        (
            {"mesh_rows": 2, "mesh_cols": 2},
            [784, 800, 10],
            None,
            r"needs 11 PEs \(10 \+ 1 for layers 1..2\) but the 2x2 mesh has 4",
        ),
        ({}, [10, 5], [6], r"layer 1: 6 PEs requested for 5 neurons"),
        ({}, [10, 5], [1, 1], r"pes_per_layer has 2 entries for 1 weight layers"),
    ],
)
def test_capacity_errors_name_layer_pe_and_limit(arch_change, sizes, pes, message):
    arch = dataclasses.replace(load_arch(), **arch_change)
    with pytest.raises(MappingError, match=message):
        map_network(sizes, arch, pes)


def test_error_names_the_offending_pe_of_a_later_layer():
    arch = dataclasses.replace(load_arch(), neurons_per_pe=8)
    with pytest.raises(MappingError, match=r"layer 2 \(12 inputs\): PE 2 at \(row 0, col 2\) holds 9 neurons"):
        map_network([4, 12, 9], arch, pes_per_layer=[2, 1])

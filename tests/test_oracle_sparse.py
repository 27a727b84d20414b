"""Sparsity rules against the loop-nest oracle, on tiny layers with given zero positions.

The simulator runs the row-stationary schedule on real values, counts every MAC by
whether its ifmap and its weight are non-zero, and every move by whether the value is
non-zero. Each skipping rule says, per MAC, which RF reads it makes, and each
compression-levels rule which moves carry compressed bits (cost.py): counted event by
event, these must equal what the costing charges (``dense RF reads x rf_read_fraction``,
``MACs x executed_fraction``, ``moves x (1 + density x bits)`` for a significance map).

Zeros are placed as whole filters (weights) and whole input channels (ifmaps): every
filter and every channel is used by the same number of MACs, so the densities are
exactly the fractions of MACs they touch and the closed form is exact, not an
expectation. (Scattered zeros make the ifmap term an expectation: edge values are used
less often than central ones.)
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, energy_of
from nnjoules.energy.dataflows.row_stationary.access import count_accesses
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
from nnjoules.energy.hardware import Level
from nnjoules.energy.workload import Density, Layer, Operand
from oracle.rs_simulator import zero_events
from test_oracle import SETTINGS, mappings_for, roomy_hardware, tiny_layers

DRAM, GLB, ARRAY, RF = Level.DRAM, Level.GLB, Level.ARRAY, Level.RF
IFMAPS, WEIGHTS = Operand.IFMAPS, Operand.WEIGHTS


def rule_counts(pairs: Counter[tuple[bool, bool]], gating: Gating) -> dict[str, int]:
    """RF ifmap reads, RF weight reads and executed MACs, MAC by MAC, as each rule reads."""
    total = sum(pairs.values())
    both = pairs[(True, True)]
    weight_nonzero = both + pairs[(False, True)]
    ifmap_nonzero = both + pairs[(True, False)]
    executed = {Gating.EITHER: both, Gating.COMPRESSED_WEIGHTS: both,
                Gating.IFMAP: ifmap_nonzero, Gating.NONE: total}[gating]
    ifmap_reads = weight_nonzero if gating is Gating.COMPRESSED_WEIGHTS else total
    return {"rf_ifmap_reads": ifmap_reads, "rf_weight_reads": executed, "macs": executed}


def check(layer: Layer, mapping: Mapping, zero_filters: set[int],
          zero_channels: set[int]) -> None:
    ifmap = [[[[0 if c in zero_channels else 1] * layer.W for _ in range(layer.H)]
              for c in range(layer.C)] for _ in range(layer.N)]
    weights = [[[[0 if f in zero_filters else 1] * layer.S for _ in range(layer.R)]
                for _ in range(layer.C)] for f in range(layer.M)]
    events = zero_events(layer, mapping, ifmap, weights)
    sparse = layer.with_density(Density(weights=1 - len(zero_filters) / layer.M,
                                        ifmaps=1 - len(zero_channels) / layer.C))
    counts = count_accesses(sparse, mapping)
    for gating in Gating:
        expected = rule_counts(events.pairs, gating)
        energy = energy_of(counts, sparse, roomy_hardware(), Compression.NONE, gating)
        # roomy hardware: one 16-bit RF read costs 1, so RF energy counts the reads
        charged = {"rf_ifmap_reads": energy.data[RF, IFMAPS],
                   "rf_weight_reads": energy.data[RF, WEIGHTS], "macs": energy.nonskipped_macs}
        assert charged == pytest.approx(expected, rel=1e-12), gating
    compressed_moves = {"dram": {DRAM}, "dram,glb": {DRAM, GLB}, "all": {DRAM, GLB, ARRAY}}
    for levels in CompressionLevels:
        energy = energy_of(counts, sparse, roomy_hardware(), Compression.SIGNIFICANCE_MAP,
                           Gating.NONE, levels)
        for key in ((lv, op) for lv in (DRAM, GLB, ARRAY) for op in (IFMAPS, WEIGHTS)):
            # significance map: 1 bit per value moved plus 16 per non-zero; raw: 16 per value
            bits = (events.reads[key] + 16 * events.nonzero_reads[key]
                    if key[0] in compressed_moves[levels.value] else 16 * events.reads[key])
            # roomy hardware: 1 per 16-bit access, i.e. 1/16 per bit
            assert 16 * energy.data[key] == pytest.approx(bits, rel=1e-12), (levels, key)


@st.composite
def sparse_cases(draw: st.DrawFn) -> tuple[Layer, Mapping, set[int], set[int]]:
    layer = draw(tiny_layers().filter(lambda lay: lay.G == 1))
    mapping = draw(mappings_for(layer))
    zero_filters = draw(st.sets(st.integers(0, layer.M - 1)))
    zero_channels = draw(st.sets(st.integers(0, layer.C - 1)))
    return layer, mapping, zero_filters, zero_channels


@settings(max_examples=60, **SETTINGS)
@given(sparse_cases())
def test_skipping_rules_match_the_oracle(case: tuple[Layer, Mapping, set[int], set[int]]) -> None:
    check(*case)


def test_compressed_weights_reads_ifmaps_only_for_nonzero_weights() -> None:
    """By hand: M=4 filters (1 zero), C=2 channels (1 zero), 1x1 filters, 2x2 ifmap, N=1.

    16 MACs; 12 with a non-zero weight, 8 with a non-zero ifmap, 6 with both.
    """
    from test_oracle import make_layer

    layer = make_layer(H=2, W=2, R=1, S=1, M=4, C=2)
    check(layer, Mapping(m=4, n=1, e=2, p=4, q=2, r=1, t=1), {3}, {0})
    counts = rule_counts(Counter({(True, True): 6, (False, True): 6, (True, False): 2,
                                  (False, False): 2}), Gating.COMPRESSED_WEIGHTS)
    assert counts == {"rf_ifmap_reads": 12, "rf_weight_reads": 6, "macs": 6}

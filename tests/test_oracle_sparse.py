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

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, energy_of
from nnjoules.energy.dataflows.row_stationary.access import count_accesses
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping, glb_bits, rf_bits
from nnjoules.energy.extract.sparsity import row_peak_density
from nnjoules.energy.footprint import Storage, ifmap_tile_bits, weight_tile_bits
from nnjoules.energy.hardware import Level
from nnjoules.energy.workload import Density, Layer, Operand
from oracle.rs_simulator import zero_events
from test_oracle import SETTINGS, make_layer, mappings_for, roomy_hardware, tiny_layers

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
    layer = make_layer(H=2, W=2, R=1, S=1, M=4, C=2)
    check(layer, Mapping(m=4, n=1, e=2, p=4, q=2, r=1, t=1), {3}, {0})
    counts = rule_counts(Counter({(True, True): 6, (False, True): 6, (True, False): 2,
                                  (False, False): 2}), Gating.COMPRESSED_WEIGHTS)
    assert counts == {"rf_ifmap_reads": 12, "rf_weight_reads": 6, "macs": 6}


# --- compressed tiles never outgrow the room the search reserved --------------------------

RLC_WORD_PAIRS, RLC_RUN_LIMIT = 3, 32


def rlc_pairs_by_walking(values: tuple[int, ...]) -> int:
    """(run, level) pairs of a stream, emitted one by one: a non-zero ends a pair; 32 zeros
    in a row take a pair of their own (31-zero run, literal zero); trailing zeros a pair."""
    pairs = zeros = 0
    for value in values:
        if value != 0:
            pairs, zeros = pairs + 1, 0
        else:
            zeros += 1
            if zeros == RLC_RUN_LIMIT:
                pairs, zeros = pairs + 1, 0
    return pairs + (zeros > 0)


def held_bits(values: tuple[int, ...], bits: int, compression: Compression) -> int:
    """Bits a chunk takes in ``compression``, from its actual values."""
    nonzero = sum(v != 0 for v in values)
    if compression is Compression.SIGNIFICANCE_MAP:
        return len(values) + nonzero * bits
    if compression is Compression.RLC:
        words = -(-rlc_pairs_by_walking(values) // RLC_WORD_PAIRS)
        return words * (RLC_WORD_PAIRS * (5 + bits) + 1)
    return len(values) * bits


def reserved_bits(layer: Layer, level: Level, operand: Operand, values: int,
                  storage: Storage) -> int:
    """The room the rule reserves for a chunk of ``values`` values (whole filter rows)."""
    if operand is WEIGHTS:
        return weight_tile_bits(layer, values // layer.S, level, storage)
    return ifmap_tile_bits(layer, values, level, storage)


def check_chunks(layer: Layer, mapping: Mapping, ifmap, weights, storage: Storage) -> int:
    """Every chunk the mapping holds fits the room reserved for it, and that room is at
    most what `rf_bits`/`glb_bits` charged the mapping; returns the chunks checked."""
    events = zero_events(layer, mapping, ifmap, weights)
    mapped_rf = dict(zip((WEIGHTS, IFMAPS), rf_bits(layer, mapping, storage)[:2], strict=True))
    psum_tile = mapping.n * min(mapping.m, layer.M) * mapping.e * layer.F * 16
    for level, operand, values in events.chunks:
        room = reserved_bits(layer, level, operand, len(values), storage)
        raw = 16 * len(values)
        # the level keeps a chunk compressed only where its worst case is smaller than raw
        kept_compressed = (level, operand) in storage.compressed and room < raw
        held = held_bits(values, 16, storage.compression) if kept_compressed else raw
        assert held <= room, (level, operand, values)
        if level is RF:
            assert room <= mapped_rf[operand]
        else:
            assert room + psum_tile <= glb_bits(layer, mapping, storage)
    return len(events.chunks)


@st.composite
def scattered_zero_cases(draw: st.DrawFn):
    layer = draw(tiny_layers())
    mapping = draw(mappings_for(layer))
    most = draw(st.integers(0, layer.S))  # non-zeros any filter row may hold

    def row() -> list[int]:
        kept = draw(st.lists(st.booleans(), min_size=layer.S, max_size=layer.S))
        nonzero = [i for i, keep in enumerate(kept) if keep][:most]
        return [1 + i if i in nonzero else 0 for i in range(layer.S)]

    weights = [[[row() for _ in range(layer.R)] for _ in range(layer.C)]
               for _ in range(layer.G * layer.M)]
    ifmap = [[[[draw(st.sampled_from((0, 1))) for _ in range(layer.W)] for _ in range(layer.H)]
              for _ in range(layer.G * layer.C)] for _ in range(layer.N)]
    return layer, mapping, ifmap, weights


@settings(max_examples=60, **SETTINGS)
@given(scattered_zero_cases(), st.sampled_from(list(Compression)),
       st.sampled_from(list(Gating)), st.sampled_from(list(CompressionLevels)))
def test_every_compressed_chunk_fits_the_worst_case_room(case, compression, gating, levels):
    """The weights' densest filter row (measured as extraction measures it) bounds every
    weight chunk the schedule holds; ifmap chunks are sized dense, so any zeros fit."""
    layer, mapping, ifmap, weights = case
    flat = [v for f in weights for c in f for row in c for v in row]
    peak = row_peak_density(np.array(weights), layer.S)
    sparse = layer.with_density(Density(weights=sum(v != 0 for v in flat) / len(flat),
                                        weights_row_peak=peak))
    storage = Storage.of(compression, gating, levels)
    assert check_chunks(sparse, mapping, ifmap, weights, storage) > 0


def test_rlc_worst_case_by_hand() -> None:
    """One PE holds p=2 filters x q=2 channels of 3-wide rows, each row [0, 0, 5]: a
    stream of 12 values, 4 non-zero. Walking it: 4 pairs (runs of 2 then the level);
    2 words of 3 pairs = 128 bits. The rule's worst case for peak 1/3: 4 + ceil(8/32) = 5
    pairs, still 2 words = 128 bits; raw would be 192."""
    layer = make_layer(H=3, W=3, R=1, S=3, M=2, C=2)
    mapping = Mapping(m=2, n=1, e=1, p=2, q=2, r=1, t=1)
    weights = [[[[0, 0, 5]] for _ in range(2)] for _ in range(2)]
    ifmap = [[[[1, 1, 1] for _ in range(3)] for _ in range(2)]]
    sparse = layer.with_density(Density(weights=1 / 3, weights_row_peak=1 / 3))
    storage = Storage.of(Compression.RLC, Gating.COMPRESSED_WEIGHTS, CompressionLevels.DRAM)
    assert rlc_pairs_by_walking((0, 0, 5) * 4) == 4
    assert rf_bits(sparse, mapping, storage)[0] == 128
    # E=3 strips of e=1, each: a GLB ifmap tile, one PE's weights, one ifmap window
    assert check_chunks(sparse, mapping, ifmap, weights, storage) == 3 * 3


def test_chunk_check_catches_an_understated_peak() -> None:
    """The check can fail: claim rows hold one non-zero when one row holds three."""
    layer = make_layer(H=3, W=3, R=1, S=3, M=2, C=2)
    mapping = Mapping(m=2, n=1, e=1, p=2, q=2, r=1, t=1)
    weights = [[[[0, 0, 5]], [[0, 0, 5]]], [[[0, 0, 5]], [[7, 7, 7]]]]
    ifmap = [[[[1, 1, 1] for _ in range(3)] for _ in range(2)]]
    claimed = layer.with_density(Density(weights=0.4, weights_row_peak=0.4))
    storage = Storage.of(Compression.SIGNIFICANCE_MAP, Gating.EITHER, CompressionLevels.ALL)
    with pytest.raises(AssertionError):
        check_chunks(claimed, mapping, ifmap, weights, storage)

"""The mapping search against a brute force over every legal mapping, and its invariants."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, energy_of, unit_energies
from nnjoules.energy.dataflows.base import lower_to_fc
from nnjoules.energy.dataflows.row_stationary.access import (
    channel_terms,
    compulsory_dram,
    count_accesses,
)
from nnjoules.energy.dataflows.row_stationary.mapping import (
    Mapping,
    ceil_div,
    glb_bits,
    rf_bits,
    violations,
)
from nnjoules.energy.dataflows.row_stationary.search import (
    StackedUnits,
    _floors,
    best_mapping,
    candidate_pairs,
    part_energy,
)
from nnjoules.energy.footprint import Storage
from nnjoules.energy.hardware import (
    AccessCost,
    GlobalBuffer,
    Hardware,
    Level,
    PEArray,
    RegisterFile,
    eyeriss,
    eyeriss_isca2016,
)
from nnjoules.energy.workload import Density, Layer, LayerKind, Operand, Precision
from nnjoules.errors import MappingError


def tiny_hardware(*, pes: int = 12, glb_bytes: int = 600, unified: bool = False) -> Hardware:
    """Small enough that every constraint binds on small layers."""
    cost = AccessCost(1.0, 1.0)
    rf = (RegisterFile(weights=cost, ifmaps=cost, psums=cost, size_bytes=40) if unified else
          RegisterFile(weights=cost, ifmaps=cost, psums=cost, weights_bytes=24,
                       ifmaps_bytes=8, psums_bytes=6))
    return Hardware(name="tiny", unit=eyeriss().unit, word_bits=16,
                    pe_array=PEArray(rows=1, cols=pes), dram=AccessCost(200.0, 200.0),
                    glb=GlobalBuffer(size_bytes=glb_bytes, cost=AccessCost(6.0, 6.0)),
                    array=AccessCost(2.0, 2.0), rf=rf, mac=1.0)


def all_mappings(layer: Layer):
    """Every mapping within the variable bounds (capacities not checked)."""
    for n, e, p, q in itertools.product(range(1, layer.N + 1), range(1, layer.E + 1),
                                        range(1, layer.M + 1), range(1, layer.C + 1)):
        for r in range(1, ceil_div(layer.C, q) + 1):
            for t in range(1, ceil_div(layer.M, p) + 1):
                ms = {layer.M} | set(range(p * t, layer.M, p * t))
                for m in sorted(ms):
                    yield Mapping(m=m, n=n, e=e, p=p, q=q, r=r, t=t)


def data_energy(layer: Layer, mapping: Mapping, hw: Hardware, compression: Compression) -> float:
    breakdown = energy_of(count_accesses(layer, mapping), layer, hw, compression)
    return breakdown.data_movement


@st.composite
def small_layers(draw):
    R = draw(st.integers(1, 3))
    S = draw(st.integers(1, 3))
    U = draw(st.integers(1, 2))
    E = draw(st.integers(1, 4))
    F = draw(st.integers(1, 4))
    return Layer("small", LayerKind.CONV, N=draw(st.integers(1, 2)), M=draw(st.integers(1, 6)),
                 C=draw(st.integers(1, 6)), H=U * (E - 1) + R, W=U * (F - 1) + S, R=R, S=S,
                 E=E, F=F, G=draw(st.integers(1, 2)), stride=(U, U),
                 density=Density(weights=draw(st.sampled_from([1.0, 0.5])),
                                 ifmaps=draw(st.sampled_from([1.0, 0.3]))))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(layer=small_layers(), unified=st.booleans(),
       compression=st.sampled_from(list(Compression)))
def test_search_equals_brute_force(layer: Layer, unified: bool, compression: Compression):
    hw = tiny_hardware(unified=unified)
    legal = [mp for mp in all_mappings(layer) if not violations(layer, mp, hw)]
    if not legal:
        with pytest.raises(MappingError):
            best_mapping(layer, hw, compression)
        return
    brute = min(data_energy(layer, mp, hw, compression) for mp in legal)
    found = best_mapping(layer, hw, compression)
    assert violations(layer, found.mapping, hw) == []
    assert math.isclose(found.energy, brute, rel_tol=1e-9)
    assert math.isclose(data_energy(layer, found.mapping, hw, compression), brute, rel_tol=1e-9)


@pytest.mark.parametrize("hw", [eyeriss(), eyeriss_isca2016()], ids=lambda h: h.name)
def test_search_on_alexnet_conv3_beats_every_sampled_mapping(hw: Hardware):
    """On a real layer, no legal mapping from a coarse grid beats the search."""
    layer = Layer("conv3", LayerKind.CONV, N=4, M=384, C=256, H=15, W=15, R=3, S=3, E=13, F=13)
    found = best_mapping(layer, hw, Compression.NONE)
    best = data_energy(layer, found.mapping, hw, Compression.NONE)
    checked = 0
    for n, e, p, q, r, t in itertools.product((1, 2, 4), (1, 4, 7, 13), (1, 4, 8, 16, 24),
                                              (1, 2, 3, 4), (1, 2, 4, 8), (1, 2, 4)):
        for m in (p * t, 64 - 64 % (p * t), 384):
            mp = Mapping(m=m, n=n, e=e, p=p, q=q, r=r, t=t)
            if m >= 1 and not violations(layer, mp, hw):
                checked += 1
                assert data_energy(layer, mp, hw, Compression.NONE) >= best * (1 - 1e-12)
    assert checked > 50


def test_unmappable_layer_names_layer_and_constraint():
    layer = Layer("features.0", LayerKind.CONV, N=1, M=4, C=3, H=20, W=20, R=20, S=20,
                  E=1, F=1)
    with pytest.raises(MappingError, match=r"features\.0.*RF"):
        best_mapping(layer, eyeriss())
    wide = Layer("wide", LayerKind.CONV, N=1, M=4, C=3, H=13, W=13, R=13, S=1, E=1, F=13)
    with pytest.raises(MappingError, match=r"'wide'.*array: R\*e\*r\*t = 13 PEs > 12"):
        best_mapping(wide, tiny_hardware())


@settings(max_examples=40, deadline=None, derandomize=True)
@given(layer=small_layers(), data=st.data())
def test_every_level_moves_at_least_the_compulsory_traffic(layer: Layer, data):
    mapping = data.draw(st.sampled_from(list(all_mappings(layer))))
    counts = count_accesses(layer, mapping)
    need = compulsory_dram(layer)
    assert counts.read(Level.DRAM, Operand.IFMAPS) >= need[Operand.IFMAPS]
    assert counts.read(Level.DRAM, Operand.WEIGHTS) >= need[Operand.WEIGHTS]
    assert counts.write(Level.DRAM, Operand.PSUMS) == need[Operand.PSUMS]
    # What comes from DRAM passes through the GLB (ifmaps) or the array (weights) at least once.
    assert counts.read(Level.GLB, Operand.IFMAPS) >= counts.read(Level.DRAM, Operand.IFMAPS)
    assert counts.read(Level.ARRAY, Operand.WEIGHTS) >= counts.read(Level.DRAM, Operand.WEIGHTS)
    assert counts.read(Level.RF, Operand.IFMAPS) == layer.macs
    assert counts.read(Level.RF, Operand.WEIGHTS) == layer.macs
    # Every accumulation happens somewhere: RF, array, GLB, or starts a psum.
    acc = (counts.read(Level.RF, Operand.PSUMS) + counts.read(Level.ARRAY, Operand.PSUMS)
           + counts.read(Level.GLB, Operand.PSUMS))
    assert acc == layer.num_ofmap_values * (layer.C * layer.R * layer.S - 1)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(layer=small_layers(), lower=st.floats(0.0, 1.0), operand=st.sampled_from(
    ["weights", "ifmaps", "ofmaps"]), compression=st.sampled_from(list(Compression)))
def test_energy_never_rises_when_density_falls(layer, lower, operand, compression):
    hw = tiny_hardware(unified=True, glb_bytes=2000)
    dense = layer.with_density(Density())
    sparse = layer.with_density(Density(**{operand: lower}))
    e_dense = _estimate_total(dense, hw, compression)
    e_sparse = _estimate_total(sparse, hw, compression)
    assert e_sparse <= e_dense * (1 + 1e-12)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(layer=small_layers(), wide=st.integers(2, 16), narrow=st.integers(1, 16),
       which=st.sampled_from(["weight_bits", "ifmap_bits", "ofmap_bits"]))
def test_energy_never_rises_when_bits_fall(layer, wide, narrow, which):
    narrow = min(narrow, wide)
    hw = tiny_hardware(unified=True, glb_bytes=2000)
    base = layer.with_precision(Precision(**{which: wide}))
    slim = layer.with_precision(Precision(**{which: narrow}))
    assert _estimate_total(slim, hw, Compression.NONE) <= _estimate_total(
        base, hw, Compression.NONE) * (1 + 1e-12)


def test_narrower_words_change_what_fits():
    """At 8 bits the scratch pads hold twice the values: the search runs again and finds
    a mapping (p = 32 filters per PE, beyond the 24-psum pad at 16 bits) that beats
    keeping the 16-bit mapping."""
    layer = Layer("conv", LayerKind.CONV, N=1, M=64, C=64, H=16, W=16, R=3, S=3, E=14, F=14)
    hw = eyeriss()
    wide = best_mapping(layer, hw, Compression.NONE).mapping
    slim_layer = layer.with_precision(Precision(8, 8, 8))
    slim = best_mapping(slim_layer, hw, Compression.NONE)
    assert wide.p <= 24 < slim.mapping.p
    kept = energy_of(count_accesses(slim_layer, wide), slim_layer, hw, Compression.NONE)
    assert slim.energy < kept.data_movement


def _estimate_total(layer: Layer, hw: Hardware, compression: Compression) -> float:
    found = best_mapping(layer, hw, compression)
    return energy_of(count_accesses(layer, found.mapping), layer, hw, compression).total


# --- compressed storage: tiles sized by the worst-case compressed chunk -------------------


@st.composite
def sparse_small_layers(draw):
    """Small layers with a known densest filter row (peak = k / S) and a mean below it."""
    layer = draw(small_layers())
    peak = draw(st.integers(0, layer.S)) / layer.S
    weights = peak * draw(st.sampled_from([1.0, 0.5, 0.0]))
    return layer.with_density(Density(weights=weights, ifmaps=layer.density.ifmaps,
                                      weights_row_peak=peak))


def rule_energy(layer: Layer, mapping: Mapping, hw: Hardware, rules) -> float:
    compression, gating, levels = rules
    counts = count_accesses(layer, mapping)
    return energy_of(counts, layer, hw, compression, gating, levels).data_movement


@settings(max_examples=150, deadline=None, derandomize=True)
@given(layer=sparse_small_layers(), unified=st.booleans(),
       compression=st.sampled_from(list(Compression)), gating=st.sampled_from(list(Gating)),
       levels=st.sampled_from(list(CompressionLevels)))
def test_search_equals_brute_force_under_compressed_storage(layer, unified, compression,
                                                            gating, levels):
    """The search and `violations` apply one storage rule: the search's energy is the least
    over every mapping `violations` accepts under the compressed footprint."""
    hw = tiny_hardware(unified=unified)
    storage = Storage.of(compression, gating, levels)
    rules = (compression, gating, levels)
    legal = [mp for mp in all_mappings(layer) if not violations(layer, mp, hw, storage)]
    if not legal:
        with pytest.raises(MappingError):
            best_mapping(layer, hw, compression, gating, levels)
        return
    brute = min(rule_energy(layer, mp, hw, rules) for mp in legal)
    found = best_mapping(layer, hw, compression, gating, levels)
    assert violations(layer, found.mapping, hw, storage) == []
    assert math.isclose(found.energy, brute, rel_tol=1e-9)
    assert math.isclose(rule_energy(layer, found.mapping, hw, rules), brute, rel_tol=1e-9)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(layer=sparse_small_layers(), compression=st.sampled_from(list(Compression)),
       gating=st.sampled_from(list(Gating)), levels=st.sampled_from(list(CompressionLevels)))
def test_compressed_storage_only_adds_legal_mappings(layer, compression, gating, levels):
    """A compressed tile never needs more room than raw; with dense rows (peak 1) it needs
    exactly raw, so dense layers map as they always did."""
    storage = Storage.of(compression, gating, levels)
    dense_rows = layer.with_density(replace(layer.density, weights_row_peak=1.0))
    for mp in all_mappings(layer):
        assert glb_bits(layer, mp, storage) <= glb_bits(layer, mp)
        assert all(a <= b for a, b in zip(rf_bits(layer, mp, storage), rf_bits(layer, mp),
                                          strict=True))
        assert rf_bits(dense_rows, mp, storage) == rf_bits(dense_rows, mp)
        assert glb_bits(dense_rows, mp, storage) == glb_bits(dense_rows, mp)


def test_weight_pad_holds_compressed_rows_worked_example():
    """Eyeriss's weight pad is 224 x 16 = 3584 bits. A 3x3 layer whose densest filter row
    holds one non-zero (peak 1/3): p=24 filters x q=4 channels = 96 rows of 3 weights.
    Raw 96 x 3 x 16 = 4608 bits: too many. Significance map 96 x (3 + 16) = 1824 bits;
    run-length coding 96 + ceil(192 / 32) = 102 pairs = 34 words of 64 bits = 2176 bits."""
    layer = Layer("conv", LayerKind.CONV, N=1, M=64, C=16, H=8, W=8, R=3, S=3, E=6, F=6,
                  density=Density(weights=0.3, weights_row_peak=1 / 3))
    mp = Mapping(m=64, n=1, e=1, p=24, q=4, r=1, t=1)
    hw = eyeriss()
    assert rf_bits(layer, mp)[0] == 4608
    assert any("weight scratch pad" in v for v in violations(layer, mp, hw))
    expected = {Compression.SIGNIFICANCE_MAP: 1824, Compression.RLC: 2176,
                Compression.NONE: 4608}
    for compression, bits in expected.items():
        for gating, levels in ((Gating.COMPRESSED_WEIGHTS, CompressionLevels.DRAM),
                               (Gating.EITHER, CompressionLevels.ALL)):
            storage = Storage.of(compression, gating, levels)
            assert rf_bits(layer, mp, storage)[0] == bits
            assert (violations(layer, mp, hw, storage) == []) == (bits <= 3584)
    # dram,glb keeps the pads raw: the GLB holds no weights in this dataflow
    storage = Storage.of(Compression.SIGNIFICANCE_MAP, Gating.EITHER, CompressionLevels.DRAM_GLB)
    assert rf_bits(layer, mp, storage)[0] == 4608


def test_sparse_rows_map_with_larger_tiles_and_less_energy():
    """AlexNet CONV3 with rows of at most one non-zero weight, on Eyeriss, levels=all:
    the weight pad holds more filters, and the mapping found costs less than the best one
    sized for dense rows (the same costs, the smaller legal set)."""
    layer = Layer("conv3", LayerKind.CONV, N=4, M=384, C=256, H=15, W=15, R=3, S=3, E=13,
                  F=13, density=Density(weights=0.3, ifmaps=0.5, weights_row_peak=1 / 3))
    rules = (Compression.SIGNIFICANCE_MAP, Gating.COMPRESSED_WEIGHTS, CompressionLevels.ALL)
    dense_rows = layer.with_density(replace(layer.density, weights_row_peak=1.0))
    sparse = best_mapping(layer, eyeriss(), *rules)
    dense = best_mapping(dense_rows, eyeriss(), *rules)
    assert sparse.mapping.p * sparse.mapping.q * layer.S > 224  # more than a raw pad holds
    assert dense.mapping.p * dense.mapping.q * layer.S <= 224
    assert sparse.energy < dense.energy
    assert math.isclose(rule_energy(layer, dense.mapping, eyeriss(), rules), dense.energy,
                        rel_tol=1e-12)


def test_lowered_patch_layer_forgets_the_row_peak():
    """Lowered to FC, a filter row is one weight: a peak measured over 16-wide rows bounds
    nothing there, so the lowered layer is sized for dense rows (any non-zero is a row)."""
    patch = Layer("patch", LayerKind.CONV, N=1, M=8, C=3, H=32, W=32, R=16, S=16, E=2, F=2,
                  stride=(16, 16), density=Density(weights=0.2, weights_row_peak=0.25))
    lowered = lower_to_fc(patch)
    assert lowered is not None and lowered.density.weights_row_peak == 1.0
    assert lowered.density.weights == 0.2
    empty = lower_to_fc(patch.with_density(Density(weights=0.0, weights_row_peak=0.25)))
    assert empty is not None and empty.density.weights_row_peak == 0.0


def test_row_peak_below_the_mean_is_refused():
    with pytest.raises(ValueError, match="weights_row_peak=0.2 is below weights=0.3"):
        Density(weights=0.3, weights_row_peak=0.2)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(layer=small_layers(), unified=st.booleans(),
       compression=st.sampled_from(list(Compression)))
def test_the_floor_of_each_strip_is_below_every_legal_mapping_with_it(
        layer: Layer, unified: bool, compression: Compression):
    # The search skips an (n, e) whose floor exceeds the best energy found: the floor
    # must never exceed the data energy of a legal mapping with that n and e.
    hw = tiny_hardware(unified=unified)
    units = StackedUnits.of([unit_energies(layer, hw, compression)])
    # the pairs the search bounds over
    q, r, p, t, _ = candidate_pairs(layer, hw, Storage.of(compression, Gating.EITHER,
                                                         CompressionLevels.DRAM))
    if len(p) == 0 or len(q) == 0:
        return
    psum = part_energy(channel_terms(layer, q=q, r=r), units, len(q))
    strips = [(n, e) for n in range(1, layer.N + 1) for e in range(1, layer.E + 1)]
    floors = dict(zip(strips, _floors(layer, units, strips, psum, (p, t))[:, 0], strict=True))
    for mp in all_mappings(layer):
        if not violations(layer, mp, hw):
            assert floors[mp.n, mp.e] <= data_energy(layer, mp, hw, compression) * (1 + 1e-12)

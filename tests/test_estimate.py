"""estimate() on hand-made workloads: costing rules, report queries, JSON, bad options."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nnjoules
from nnjoules.energy.cost import Compression, Gating, energy_of, expected_rlc_pairs
from nnjoules.energy.dataflows.row_stationary.access import count_accesses
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
from nnjoules.energy.hardware import Level, eyeriss
from nnjoules.energy.workload import Density, Layer, LayerKind, Operand, Precision, Workload
from nnjoules.errors import InputError

CONV = Layer("conv", LayerKind.CONV, N=1, M=16, C=8, H=10, W=10, R=3, S=3, E=8, F=8)
FC = Layer("fc", LayerKind.FC, N=1, M=10, C=64, H=1, W=1, R=1, S=1, E=1, F=1)
WORKLOAD = Workload("tiny", (CONV, FC))


def test_report_parts_add_up_to_the_total():
    report = nnjoules.estimate(WORKLOAD)
    total = report.total()
    assert math.isclose(sum(report.by_layer().values()), total)
    assert math.isclose(sum(report.by_level().values()), total)
    assert math.isclose(sum(report.by_operand().values()), total)
    assert math.isclose(report.computation() + report.data_movement(), total)
    assert report.macs() == CONV.macs + FC.macs == 8 * 16 * 64 * 9 + 640
    assert report.weights() == 16 * 8 * 9 + 640
    for item in report.layers:
        assert math.isclose(item.total, item.by_level()["mac"] + sum(
            v for k, v in item.by_level().items() if k != "mac"))


def test_energy_is_counts_times_costs_written_out():
    """DRAM ifmap energy under each compression, from the formula in the docs."""
    layer = CONV.with_density(Density(weights=1.0, ifmaps=0.5))
    mapping = Mapping(m=16, n=1, e=8, p=16, q=1, r=8, t=1)
    counts = count_accesses(layer, mapping)
    reads = counts.read(Level.DRAM, Operand.IFMAPS)
    hw = eyeriss()
    for compression, bits in ((Compression.NONE, 16), (Compression.SIGNIFICANCE_MAP, 1 + 8),
                              (Compression.RLC, expected_rlc_pairs(0.5) * (5 + 16 + 1 / 3))):
        energy = energy_of(counts, layer, hw, compression)
        assert math.isclose(energy.data[Level.DRAM, Operand.IFMAPS], reads * 200 * bits / 16)
    # Half the MACs are skipped, and the RF reads that serve them.
    energy = energy_of(counts, layer, hw, Compression.NONE)
    assert energy.nonskipped_macs == layer.macs / 2
    assert math.isclose(energy.data[Level.RF, Operand.WEIGHTS], layer.macs / 2 * 1.0)


def test_bits_scale_mac_energy_with_the_product_of_widths():
    dense16 = nnjoules.estimate(WORKLOAD)
    mixed = nnjoules.estimate(WORKLOAD, bits=Precision(weight_bits=4, ifmap_bits=8,
                                                       ofmap_bits=16))
    assert math.isclose(mixed.computation(), dense16.computation() * (4 * 8) / (16 * 16))
    eight = nnjoules.estimate(WORKLOAD, bits=8)
    assert eight.total() < dense16.total()
    assert all(item.layer.precision == Precision(8, 8, 8) for item in eight.layers)


def test_density_overrides_merge_with_measured_values():
    report = nnjoules.estimate(WORKLOAD, densities={"conv": {"weights": 0.25}})
    conv = report.layer("conv").layer
    assert conv.density.weights == 0.25 and conv.density.ifmaps == 1.0
    assert report.nonskipped_macs() == CONV.macs * 0.25 + FC.macs
    assert report.nonzero_weights() == 16 * 8 * 9 * 0.25 + 640


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"densities": {"nope": {"weights": 0.5}}}, "no layer named 'nope'"),
    ({"densities": {"conv": {"weight": 0.5}}}, r"densities\.conv: unknown field"),
    ({"densities": {"conv": {"weights": 1.5}}}, r"densities\.conv: .*\[0, 1\]"),
    ({"compression": "zip"}, "unknown compression 'zip'"),
    ({"bits": 0}, "bits: .*weight_bits"),
    ({"batch": 4}, "a Workload already fixes N"),
    ({"hardware": "eyriss"}, "did you mean 'eyeriss'"),
])
def test_bad_options_raise_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        nnjoules.estimate(WORKLOAD, **kwargs)


def test_json_form_round_trips_and_matches_queries(tmp_path):
    report = nnjoules.estimate(WORKLOAD, compression="rlc")
    path = tmp_path / "report.json"
    report.to_json(path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1
    assert data["unit"] == "normalized" and data["compression"] == "rlc"
    assert data["totals"]["energy"] == pytest.approx(report.total())
    assert [layer["name"] for layer in data["layers"]] == ["conv", "fc"]
    conv = data["layers"][0]
    assert conv["mapping"] == report.mappings()["conv"].as_dict()
    assert conv["accesses"]["dram"]["psums"]["writes"] == CONV.num_ofmap_values
    assert conv["energy"]["by_level"] == pytest.approx(report.layer("conv").by_level())
    assert data["hardware"]["name"] == "eyeriss"


def test_same_inputs_same_numbers():
    first = nnjoules.estimate(WORKLOAD).to_dict()
    second = nnjoules.estimate(WORKLOAD).to_dict()
    first.pop("nnjoules_version")
    second.pop("nnjoules_version")
    assert first == second


def test_table_names_unit_compression_and_layers():
    table = nnjoules.estimate(WORKLOAD).to_table()
    assert "energy unit: normalized" in table
    assert "DRAM compression: significance-map" in table
    assert "conv" in table and "fc" in table and "total" in table


@pytest.mark.parametrize(("gating", "executed", "ifmap_reads"),
                         [("either", 0.5 * 0.25, 1.0), ("ifmap", 0.25, 1.0), ("none", 1.0, 1.0),
                          ("compressed-weights", 0.5 * 0.25, 0.5)])
def test_gating_rules_skip_macs_and_the_rf_accesses_serving_them(gating, executed, ifmap_reads):
    sparse = Workload("sparse", (CONV.with_density(Density(weights=0.5, ifmaps=0.25)),))
    report = nnjoules.estimate(sparse, gating=gating, compression="none")
    dense = nnjoules.estimate(Workload("dense", (CONV,)), compression="none")
    assert report.nonskipped_macs() == pytest.approx(CONV.macs * executed)
    assert report.computation() == pytest.approx(dense.computation() * executed)
    item = report.layers[0]
    rf = {op: item.energy.data[Level.RF, op] for op in Operand}
    # The ifmap read is what finds a zero ifmap: skipped only when a compressed zero weight
    # is never paired with it.
    assert rf[Operand.IFMAPS] == pytest.approx(item.counts.read(Level.RF, Operand.IFMAPS)
                                               * ifmap_reads)
    assert rf[Operand.WEIGHTS] == pytest.approx(item.counts.read(Level.RF, Operand.WEIGHTS)
                                                * executed)
    assert report.to_dict()["gating"] == gating


def test_sweep_passes_gating_through():
    from nnjoules.energy.estimate import estimate_workload
    from nnjoules.energy.sweep import sweep

    sparse = Workload("sparse", (CONV.with_density(Density(weights=0.5, ifmaps=0.25)),))
    direct = estimate_workload(sparse, eyeriss(), gating=Gating.IFMAP)
    swept = sweep(sparse, {"bits": ["16"]}, gating="ifmap")
    assert swept.points[0].totals.energy == pytest.approx(direct.total())
    assert swept.points[0].totals.nonskipped_macs == pytest.approx(CONV.macs * 0.25)
    assert estimate_workload(sparse, eyeriss()).total() != pytest.approx(direct.total())
    with pytest.raises(InputError, match="unknown gating 'all'"):
        sweep(sparse, {"bits": ["16"]}, gating="all")


def test_batch_that_contradicts_the_example_inputs_is_an_error():
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(InputError, match="batch=4 but the example inputs have batch 1"):
        nnjoules.estimate(model, torch.randn(1, 3, 8, 8), batch=4)
    report = nnjoules.estimate(model, torch.randn(2, 3, 8, 8), batch=2)
    assert report.layers[0].layer.N == 2


def test_every_rule_gives_the_dense_numbers_when_all_operands_are_dense():
    dense = {g: nnjoules.estimate(WORKLOAD, gating=g).to_dict() for g in Gating}
    for rule in dense.values():
        rule.pop("nnjoules_version"), rule.pop("gating")
    assert all(rule == dense[Gating.EITHER] for rule in dense.values())


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_energy_never_rises_when_a_density_falls(w, i, lower_w, lower_i):
    """Under every rule and compression; the search may remap, never for worse."""
    high = Density(weights=w, ifmaps=i)
    low = Density(weights=w * lower_w, ifmaps=i * lower_i)
    for gating in Gating:
        for compression in Compression:
            costs = [nnjoules.estimate(Workload("t", (CONV.with_density(d),)), gating=gating,
                                       compression=compression).total() for d in (high, low)]
            assert costs[1] <= costs[0] * (1 + 1e-12), (gating, compression)


def test_estimate_workload_takes_rules_by_value_as_estimate_does():
    from nnjoules.energy.cost import Compression, CompressionLevels, Gating
    from nnjoules.energy.estimate import estimate_workload
    from nnjoules.energy.hardware import eyeriss
    from nnjoules.energy.workload import Density, Layer, LayerKind, Workload
    from nnjoules.errors import InputError

    layer = Layer("c", LayerKind.CONV, N=2, M=8, C=4, H=8, W=8, R=3, S=3, E=6, F=6,
                  density=Density(weights=0.4, ifmaps=0.5, ofmaps=0.6))
    workload = Workload("sparse", (layer,))
    for compression in Compression:
        for gating in Gating:
            for levels in CompressionLevels:
                by_value = estimate_workload(workload, eyeriss(), compression=compression.value,
                                             gating=gating.value,
                                             compression_levels=levels.value)
                by_enum = estimate_workload(workload, eyeriss(), compression=compression,
                                            gating=gating, compression_levels=levels)
                assert by_value.total() == by_enum.total()
                assert by_value.compression is compression and by_value.gating is gating
    with pytest.raises(InputError, match="compression"):
        estimate_workload(workload, eyeriss(), compression="zip")

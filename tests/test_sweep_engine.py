"""The sweep engine: sharing work across points changes no point's mapping, counts or energy.

The references are, at each point (the point's hardware, bit-widths and compression),
the plain estimate (`estimate_workload`) and every layer searched alone under its own
costing (`best_mapping`), counted and costed here.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, energy_of
from nnjoules.energy.dataflows.row_stationary import ROW_STATIONARY
from nnjoules.energy.dataflows.row_stationary.access import count_accesses
from nnjoules.energy.dataflows.row_stationary.search import best_mapping
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import (
    AccessCost,
    GlobalBuffer,
    Hardware,
    PEArray,
    RegisterFile,
    eyeriss,
)
from nnjoules.energy.results import LayerEstimate, Totals
from nnjoules.energy.sweep import PointTask, evaluate_point, sweep
from nnjoules.energy.sweep_engine import SweepEngine
from nnjoules.energy.sweep_params import (
    apply_hardware,
    apply_precision,
    parse_values,
)
from nnjoules.energy.timing import layer_timing
from nnjoules.energy.workload import Density, Layer, LayerKind, Workload
from nnjoules.errors import MappingError

# Values small enough that the GLB, the RF and the array all bind on small layers, and
# costs (zero included) that make ties.
GRID_VALUES = {
    "glb_kb": ["0.125", "0.25", "0.5", "2"],
    "pe_array": ["1x3", "2x4", "4x4", "1x17", "5x7"],
    "bits": ["4", "8", "16"],
    "dram_energy": ["0", "50", "200", "1000"],
    "glb_energy": ["0", "6", "20"],
    "array_energy": ["0", "2"],
    "rf_energy": ["0", "1", "3"],
    "mac_energy": ["0.5", "1"],
    "compression": ["none", "significance-map", "rlc"],
    "clock_mhz": ["100", "200"],
    "dram_bandwidth": ["8", "64"],
}


def small_hardware(unified: bool) -> Hardware:
    cost = AccessCost(1.0, 1.0)
    rf = (RegisterFile(weights=cost, ifmaps=cost, psums=cost, size_bytes=40) if unified else
          RegisterFile(weights=cost, ifmaps=cost, psums=cost, weights_bytes=24,
                       ifmaps_bytes=8, psums_bytes=6))
    return Hardware(name="small", unit=eyeriss().unit, word_bits=16,
                    pe_array=PEArray(rows=2, cols=4), dram=AccessCost(200.0, 200.0),
                    glb=GlobalBuffer(size_bytes=600, cost=AccessCost(6.0, 6.0)),
                    array=AccessCost(2.0, 2.0), rf=rf, mac=1.0)


@st.composite
def small_networks(draw: st.DrawFn) -> Workload:
    """1-4 small layers; some repeat an earlier shape with other densities."""
    layers: list[Layer] = []
    for index in range(draw(st.integers(1, 4))):
        weights = draw(st.sampled_from([1.0, 0.5, 0.25, 0.0]))
        density = Density(weights=weights, ifmaps=draw(st.sampled_from([1.0, 0.3])),
                          ofmaps=draw(st.sampled_from([1.0, 0.6])),
                          weights_row_peak=max(weights, draw(st.sampled_from([1.0, 0.5]))))
        if layers and draw(st.booleans()):
            shape = draw(st.sampled_from(layers))
            layers.append(Layer(f"l{index}", shape.kind, N=shape.N, M=shape.M, C=shape.C,
                                H=shape.H, W=shape.W, R=shape.R, S=shape.S, E=shape.E,
                                F=shape.F, G=shape.G, stride=shape.stride, density=density))
            continue
        R, S, U = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        E, F = draw(st.integers(1, 8)), draw(st.integers(1, 8))
        layers.append(Layer(f"l{index}", LayerKind.CONV, N=draw(st.integers(1, 4)),
                            M=draw(st.integers(1, 64)), C=draw(st.integers(1, 32)),
                            H=U * (E - 1) + R, W=U * (F - 1) + S, R=R, S=S, E=E, F=F,
                            G=draw(st.integers(1, 2)), stride=(U, U), density=density))
    return Workload("net", tuple(layers))


@st.composite
def small_grids(draw: st.DrawFn) -> dict[str, list[str]]:
    names = draw(st.lists(st.sampled_from(sorted(GRID_VALUES)), min_size=1, max_size=3,
                          unique=True))
    return {name: draw(st.lists(st.sampled_from(GRID_VALUES[name]), min_size=1, max_size=3,
                                unique=True)) for name in names}


def grid_tasks(workload: Workload, grid: dict[str, list[str]], base: Hardware,
               gating: Gating, levels: CompressionLevels = CompressionLevels.DRAM,
               ) -> list[PointTask]:
    parsed = {name: parse_values(name, values) for name, values in grid.items()}
    tasks = []
    for index, combo in enumerate(itertools.product(*parsed.values())):
        point = dict(zip(parsed, combo, strict=True))
        tasks.append(PointTask(index, apply_precision(workload, point),
                               apply_hardware(base, point),
                               point.get("compression", Compression.SIGNIFICANCE_MAP), gating,
                               levels))
    return tasks


def direct(task: PointTask):  # type: ignore[no-untyped-def]
    """The plain estimate at the task's point, or None where a layer fits no mapping."""
    try:
        return estimate_workload(task.workload, task.hardware, compression=task.compression,
                                 gating=task.gating, compression_levels=task.compression_levels)
    except MappingError:
        return None


def layer_by_layer(task: PointTask) -> tuple[LayerEstimate, ...] | None:
    """Each layer searched alone (one costing at a time), counted and costed."""
    rules = (task.compression, task.gating, task.compression_levels)
    out = []
    for layer in task.workload.layers:
        try:
            found = best_mapping(layer, task.hardware, *rules)
        except MappingError:
            return None
        mapped = found.mapped
        counts = count_accesses(mapped, found.mapping)
        cycles = ROW_STATIONARY.compute_cycles(mapped, found.mapping, task.hardware)
        out.append(LayerEstimate(layer=layer, mapping=found.mapping, counts=counts,
                                 energy=energy_of(counts, mapped, task.hardware, *rules),
                                 timing=layer_timing(cycles, counts, mapped, task.hardware,
                                                     task.compression,
                                                     task.compression_levels),
                                 mapped_as=None if mapped is layer else mapped))
    return tuple(out)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(workload=small_networks(), grid=small_grids(), unified=st.booleans(),
       gating=st.sampled_from(list(Gating)), levels=st.sampled_from(list(CompressionLevels)))
def test_engine_gives_exactly_the_point_by_point_estimates(workload, grid, unified, gating,
                                                            levels):
    # Compressed storage (levels, compressed-weights gating) makes legality depend on the
    # densest filter row: layers of one shape may then not share a search.
    tasks = grid_tasks(workload, grid, small_hardware(unified), gating, levels)
    found = SweepEngine().estimates(tasks)
    for task, estimate in zip(tasks, found, strict=True):
        expected = layer_by_layer(task)
        plain = direct(task)
        if expected is None:
            assert estimate is None and plain is None
            continue
        assert estimate is not None and plain is not None
        # Same mapping, same counts, same energy breakdown, layer by layer, bit for bit.
        assert estimate.layers == expected == plain.layers
        assert Totals.of(estimate) == Totals.of(plain)


def test_sweep_points_equal_separate_estimates_with_costs_and_sizes_swept():
    layers = (Layer("a", LayerKind.CONV, N=2, M=12, C=10, H=7, W=6, R=3, S=3, E=5, F=4),
              Layer("b", LayerKind.CONV, N=2, M=12, C=10, H=7, W=6, R=3, S=3, E=5, F=4,
                    density=Density(weights=0.4, ifmaps=0.7)),
              Layer("c", LayerKind.FC, N=3, M=20, C=30, H=1, W=1, R=1, S=1, E=1, F=1))
    workload = Workload("net", layers)
    grid = {"glb_kb": ["0.25", "1"], "pe_array": ["2x4", "4x4"], "bits": ["8", "16"],
            "dram_energy": ["0", "100", "200"], "rf_energy": ["0", "1"]}
    result = sweep(workload, grid, hardware=small_hardware(unified=False))
    tasks = grid_tasks(workload, grid, small_hardware(unified=False), Gating.EITHER)
    assert len(result.points) == len(tasks) == 48
    for point, task in zip(result.points, tasks, strict=True):
        expected = direct(task)
        assert expected is not None and point.totals == Totals.of(expected)


def test_a_winner_that_splits_filters_into_fewer_chunks_is_kept():
    # When the GLB splits the filters into chunks, fewer PE sets per pass can win: p=3,
    # t=1 gives m=9 (7 chunks of the ifmaps from DRAM), t=2 only m=6 (11 chunks). The
    # search must not prune t=1 as "fewer PEs, more GLB reads" when it weighs costings.
    layer = Layer("x", LayerKind.CONV, N=1, M=62, C=26, H=6, W=13, R=2, S=3, E=3, F=6,
                  stride=(2, 2))
    base = small_hardware(unified=False)
    grid = {"glb_kb": ["0.5"], "pe_array": ["1x17"], "rf_weights_bytes": ["24"],
            "dram_energy": ["100", "200"], "compression": ["none"]}
    tasks = grid_tasks(Workload("net", (layer,)), grid, base, Gating.EITHER)
    found = SweepEngine().estimates(tasks)
    expected = [direct(task) for task in tasks]
    assert expected[1] is not None and expected[1].layers[0].mapping.as_dict() == {
        "m": 9, "n": 1, "e": 3, "p": 3, "q": 1, "r": 1, "t": 1}
    assert [f.layers if f else None for f in found] == [e.layers if e else None
                                                         for e in expected]


def test_a_lowered_layer_keeps_its_lowering_in_every_point():
    # A 16 x 16 patch embedding: its filter row (16) exceeds Eyeriss's 12-word ifmap pad,
    # at 16 bits, so it is mapped as the FC layer over its patches (N = 2*2 patches,
    # C = 3*16*16).
    patch = Layer("patch", LayerKind.CONV, N=1, M=8, C=3, H=32, W=32, R=16, S=16, E=2, F=2,
                  stride=(16, 16))
    tasks = grid_tasks(Workload("vit", (patch,)), {"dram_energy": ["100", "200"],
                                                    "glb_kb": ["16", "108"]}, eyeriss(),
                       Gating.EITHER)
    for task, estimate in zip(tasks, SweepEngine().estimates(tasks), strict=True):
        assert estimate is not None
        (layer,) = estimate.layers
        assert layer.mapped_as is not None and (layer.mapped_as.N, layer.mapped_as.C) == (4, 768)
        assert estimate.layers == estimate_workload(task.workload, task.hardware).layers


def test_an_unmappable_point_reports_the_estimates_own_error():
    layer = Layer("wide", LayerKind.CONV, N=1, M=4, C=4, H=5, W=5, R=3, S=3, E=3, F=3)
    tasks = grid_tasks(Workload("net", (layer,)), {"rf_weights_bytes": ["1", "448"],
                                                    "dram_energy": ["100", "200"]},
                       eyeriss(), Gating.EITHER)
    outcomes = SweepEngine().evaluate(tasks)
    assert [o.totals is None for o in outcomes] == [True, True, False, False]
    for task, outcome in zip(tasks, outcomes, strict=True):
        assert outcome == evaluate_point(task)
    assert "'wide'" in (outcomes[0].error or "")


def test_outcomes_stream_in_grid_order_across_chunks():
    layer = Layer("c", LayerKind.CONV, N=1, M=6, C=5, H=6, W=6, R=3, S=3, E=4, F=4)
    grid = {"glb_energy": ["1", "6", "9"], "dram_energy": ["50", "100", "150", "200"]}
    tasks = grid_tasks(Workload("net", (layer,)), grid, small_hardware(unified=True),
                       Gating.EITHER)
    streamed = list(SweepEngine().outcomes(tasks, chunk=5))  # 12 points in 3 chunks
    assert [o.index for o in streamed] == list(range(12))
    assert streamed == [evaluate_point(task) for task in tasks]
    # 12 costings of one shape and sizes, weighed 5 at a time: the same outcomes.
    assert SweepEngine(max_costings=5).evaluate(tasks) == streamed


def test_points_of_other_dataflows_are_estimated_point_by_point():
    layer = Layer("c", LayerKind.CONV, N=1, M=8, C=6, H=8, W=8, R=3, S=3, E=6, F=6)
    tasks = [replace(task, dataflow=flow)
             for task in grid_tasks(Workload("net", (layer,)), {"dram_energy": ["100", "200"]},
                                    eyeriss(), Gating.EITHER)
             for flow in ("row-stationary", "weight-stationary")]
    found = SweepEngine().estimates(tasks)
    assert [f is None for f in found] == [False, True, False, True]
    outcomes = SweepEngine().evaluate(tasks)
    assert outcomes == [evaluate_point(task) for task in tasks]
    ws = estimate_workload(tasks[1].workload, tasks[1].hardware, dataflow="weight-stationary")
    assert outcomes[1].totals == Totals.of(ws) != outcomes[0].totals

"""Systolic-array dataflows (systolic-ws, systolic-os): counts, cycles, presets, networks.

(1) The closed-form counts and cycles equal a naive cycle-by-cycle simulation
(`tests/oracle/systolic_simulator.py`) on tiny layers, arrays and SRAMs (Hypothesis),
whose ofmaps equal a direct convolution; (2) cycles of a tiny layer from SCALE-Sim's
formula written out here; (3) a small network through the API; (4) the committed
SCALE-Sim comparison: ours reproduced, every difference explained, ratios pinned.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.oracle.systolic_simulator import run_os, run_ws
from torch import nn

from nnjoules import estimate
from nnjoules.energy.cost import Compression, CompressionLevels, Gating, energy_of
from nnjoules.energy.dataflows import DATAFLOWS, get_dataflow
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
from nnjoules.energy.dataflows.systolic import SYSTOLIC_OS, SYSTOLIC_WS
from nnjoules.energy.dataflows.systolic.gemm import BufferSplit
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import (
    LEVELS,
    OPERANDS,
    GlobalBuffer,
    Level,
    PEArray,
    load_hardware,
)
from nnjoules.energy.workload import Layer, LayerKind, Operand, Precision, Workload
from nnjoules.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def _hardware(rows: int, cols: int, glb_bytes: int):
    base = load_hardware("systolic-32x32")
    return replace(base, pe_array=PEArray(rows, cols),
                   glb=GlobalBuffer(size_bytes=glb_bytes, cost=base.glb.cost))


def _layer(N: int, C: int, M: int, H: int, W: int, R: int, S: int, U: int) -> Layer:
    return Layer("t", LayerKind.CONV, N=N, M=M, C=C, H=H, W=W, R=R, S=S,
                 E=(H - R) // U + 1, F=(W - S) // U + 1, stride=(U, U),
                 precision=Precision(8, 8, 8))


shapes = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 5),
                   st.integers(3, 6), st.integers(3, 6), st.integers(1, 3),
                   st.integers(1, 3), st.integers(1, 2))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes, rows=st.integers(1, 4), cols=st.integers(1, 4),
       glb=st.integers(5, 1200), seed=st.integers(0, 9), tile=st.integers(0, 40))
@pytest.mark.parametrize("flow", [SYSTOLIC_WS, SYSTOLIC_OS], ids=lambda f: f.name)
def test_counts_and_cycles_equal_a_cycle_by_cycle_simulation(flow, shape, rows, cols, glb,
                                                             seed, tile):
    N, C, M, H, W, R, S, U = shape
    layer, hw = _layer(N, C, M, H, W, R, S, U), _hardware(rows, cols, glb)
    rng = np.random.default_rng(seed)
    ifmap = rng.integers(-3, 4, size=(N, C, H, W)).astype(float)
    weights = rng.integers(-3, 4, size=(M, C, R, S)).astype(float)
    caps = BufferSplit().usable_values(hw, layer)
    mapping = flow.mapping_for(layer, hw, tile)  # WS output tiles of `tile` (0: none)
    if flow is SYSTOLIC_WS:
        sim = run_ws(ifmap, weights, (U, U), rows, cols, caps, mapping.t_tile)
    else:
        sim = run_os(ifmap, weights, (U, U), rows, cols, caps)
    # the simulated array computed the convolution
    direct = torch.nn.functional.conv2d(torch.tensor(ifmap), torch.tensor(weights), stride=U)
    assert np.array_equal(sim.ofmap, direct.permute(0, 2, 3, 1).reshape(-1, M).numpy())
    counts = flow.count_accesses(layer, mapping)
    got = {f"{lv.value}.{op.value}.{kind}": getattr(counts, kind)(lv, op)
           for lv in LEVELS for op in OPERANDS for kind in ("read", "write")}
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in sim.counts.items() if v}
    assert counts.macs == sim.macs == layer.macs
    assert flow.compute_cycles(layer, mapping, hw) == sim.cycles


@settings(max_examples=40, deadline=None)
@given(shape=shapes, rows=st.integers(1, 4), cols=st.integers(1, 4),
       glb=st.integers(5, 1200))
def test_ws_search_takes_the_least_energy_of_scalesims_schedule_and_output_tiles(
        shape, rows, cols, glb):
    layer, hw = _layer(*shape), _hardware(rows, cols, glb)
    rules = (Compression.NONE, Gating.NONE, CompressionLevels.DRAM)
    found = SYSTOLIC_WS.best_mapping(layer, hw, *rules)
    T = layer.N * layer.E * layer.F
    energies = {t: energy_of(SYSTOLIC_WS.count_accesses(layer, m), layer, hw, *rules).total
                for t in range(T + 1) for m in [SYSTOLIC_WS.mapping_for(layer, hw, t)]}
    assert found.energy == energies[found.mapping.t_tile]
    assert found.energy <= energies[0]  # never worse than SCALE-Sim's schedule
    psum_cap = BufferSplit().usable_values(hw, layer)[2]
    if T * min(layer.M, cols) <= psum_cap:  # psums fit untiled: SCALE-Sim's schedule
        assert found.mapping.t_tile == 0 and found.candidates == 1


def _scalesim_cycles(T: int, K: int, M: int, rows: int, cols: int, ws: bool) -> int:
    """SCALE-Sim v3's demand-matrix length (systolic_compute_ws.py / _os.py), per fold:
    WS ``rows`` weight-load rows + ``T`` + ``cols - 1`` suffix, skewed by ``rows - 1``;
    OS ``K`` + ``cols - 1`` suffix, skewed by ``rows - 1``."""
    if ws:
        per_fold = rows + T + (cols - 1) + (rows - 1)
        return math.ceil(K / rows) * math.ceil(M / cols) * per_fold
    per_fold = K + (cols - 1) + (rows - 1)
    return math.ceil(T / rows) * math.ceil(M / cols) * per_fold


@pytest.mark.parametrize("flow", ["systolic-ws", "systolic-os"])
def test_cycles_of_a_tiny_layer_follow_scalesims_formula(flow):
    # 6x6x2 ifmap, five 3x3 filters: T = 16, K = 18, M = 5 on a 4 x 4 array.
    layer = _layer(1, 2, 5, 6, 6, 3, 3, 1)
    report = estimate_workload(Workload("tiny", (layer,)), _hardware(4, 4, 65536),
                               dataflow=flow)
    ws = flow == "systolic-ws"
    # WS: 5 x 2 folds x (2*4 + 4 + 16 - 2) = 260; OS: 4 x 2 folds x (4 + 4 + 18 - 2) = 192
    assert report.layers[0].timing.compute_cycles == _scalesim_cycles(16, 18, 5, 4, 4, ws) \
        == (260 if ws else 192)


def test_small_network_estimates_through_the_api_with_systolic_ws():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2),
                        nn.ReLU(), nn.Flatten(), nn.Linear(16 * 7 * 7, 10))
    report = estimate(net, hardware="systolic-32x32", input_shape=(3, 16, 16), batch=2,
                      dataflow="systolic-ws", compression="none")
    assert report.dataflow == "systolic-ws" and len(report.layers) == 3
    for item in report.layers:
        layer = item.layer
        T, K = layer.N * layer.E * layer.F, layer.C * layer.R * layer.S
        assert item.counts.macs == layer.macs == T * K * layer.M
        folds = math.ceil(K / 32) * math.ceil(layer.M / 32)
        assert item.timing.compute_cycles == folds * (2 * 32 + 32 + T - 2)
        assert item.timing.compute_cycles >= layer.macs / item.mapping.active_pes(layer)
        # compulsory DRAM traffic: every weight once, every ofmap once (all fit 640 kB)
        assert item.counts.read(Level.DRAM, Operand.WEIGHTS) == layer.num_weights
        assert item.counts.write(Level.DRAM, Operand.PSUMS) == layer.num_ofmap_values
    timing = report.timing()
    assert timing.cycles == sum(item.timing.cycles for item in report.layers)
    assert timing.latency_s == pytest.approx(timing.cycles / 1e9)  # 1 GHz
    assert timing.power == pytest.approx(report.total() / timing.latency_s)
    assert timing.power_mw == pytest.approx(timing.power / 1e9)  # pJ/s -> mW


def test_systolic_dataflows_are_registered_and_refuse_foreign_mappings():
    assert {"systolic-ws", "systolic-os"} <= set(DATAFLOWS)
    assert get_dataflow("SYSTOLIC-WS") is SYSTOLIC_WS
    with pytest.raises(InputError, match="did you mean 'systolic-ws'"):
        get_dataflow("systolic-wss")
    layer = _layer(1, 2, 5, 6, 6, 3, 3, 1)
    with pytest.raises(TypeError, match="systolic-ws needs a ws SystolicMapping"):
        SYSTOLIC_WS.count_accesses(layer, Mapping(1, 1, 1, 1, 1, 1, 1))
    os_mapping = SYSTOLIC_OS.mapping_for(layer, _hardware(4, 4, 65536))
    with pytest.raises(TypeError, match="needs a ws"):
        SYSTOLIC_WS.compute_cycles(layer, os_mapping, _hardware(4, 4, 65536))


def test_scalesim_comparison_is_reproduced_and_every_difference_explained():
    doc = json.loads((ROOT / "benchmarks" / "results" / "scalesim.json").read_text())
    path = ROOT / "benchmarks" / "peers" / "bench_vs_scalesim.py"
    spec = importlib.util.spec_from_file_location("bench_vs_scalesim", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_vs_scalesim"] = bench
    spec.loader.exec_module(bench)
    assert len(doc["rows"]) == len(bench.CASES) * 2
    for row in doc["rows"]:
        case = next(c for c in bench.CASES if c[0] == row["layer"])
        layer, hw = bench.layer_of(case[0], case[1]), bench.hardware_of(case[2], case[3])
        mine = bench.ours(layer, hw, row["dataflow"])
        for field in bench.FIELDS:
            assert mine[field] == row["ours"][field], (row["layer"], field)
            assert row["explained"][field] is not None, (row["layer"], field)
        theirs = row["scalesim"]
        assert mine["cycles"] == theirs["cycles"] + 1  # SCALE-Sim's 0-based last cycle
        for field in ("sram_ifmap_reads", "sram_filter_reads"):
            assert mine[field] == theirs[field]
        # the pinned bands: DRAM within 0.5-1.6x of SCALE-Sim's except where it writes
        # every fold's partial sums (WS ofmaps, ratio 1 / row folds)
        for field in ("dram_ifmap_reads", "dram_filter_reads"):
            assert 0.5 <= mine[field] / theirs[field] <= 1.6
        ratio = mine["dram_ofmap_writes"] / theirs["dram_ofmap_writes"]
        folds = mine["mapping"]["row_folds"] if row["dataflow"] == "ws" else 1
        assert ratio == pytest.approx(1 / folds, rel=0.01) or ratio == pytest.approx(1, rel=0.01)


def test_operands_wider_than_the_pe_registers_are_refused_in_one_line(capsys):
    from nnjoules.cli import main
    from nnjoules.errors import MappingError

    # systolic-32x32: 1-byte weight and ifmap registers, a 4-byte accumulator per PE
    for flow in ("systolic-ws", "systolic-os"):
        assert main(["estimate", "lenet5", "--hardware", "systolic-32x32", "--dataflow", flow,
                     "--bits", "16"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nnjoules: error: hardware 'systolic-32x32' cannot run the "
                              f"{flow} dataflow, not even on one 1x1 MAC of 16-bit values: "
                              "register_file.weights.size_bytes and "
                              "register_file.ifmaps.size_bytes are too small (")
        assert "(--bits)" in err and err.count("\n") == 1
    # 8-bit weights and ifmaps with 32-bit psums fit (the accumulator is 32 bits) ...
    assert main(["estimate", "lenet5", "--hardware", "systolic-32x32", "--dataflow",
                 "systolic-os", "--bits", "8,8,32", "--quiet"]) == 0
    capsys.readouterr()
    # ... 40-bit psums do not, through the API too
    wide = replace(_layer(1, 2, 5, 6, 6, 3, 3, 1), precision=Precision(8, 8, 40))
    with pytest.raises(MappingError, match=r"RF psum scratch pad: 40 bits > 32 bits; a "
                                           r"systolic PE registers one weight"):
        estimate_workload(Workload("w", (wide,)), load_hardware("systolic-32x32"),
                          dataflow="systolic-ws")


@pytest.mark.parametrize("flow", ["systolic-ws", "systolic-os"])
def test_wider_operands_that_fit_are_costed_by_bits_and_take_more_sram(flow):
    base = load_hardware("systolic-32x32")  # word_bits 8; registers widened to 16 bits
    hw = replace(base, rf=replace(base.rf, weights_bytes=2, ifmaps_bytes=2))
    narrow = _layer(1, 2, 5, 6, 6, 3, 3, 1)  # 8-bit; everything fits the 640 kB either way
    wide = replace(narrow, precision=Precision(16, 16, 16))
    rules = {"compression": Compression.NONE, "gating": Gating.NONE}
    e8, e16 = (estimate_workload(Workload("t", (lay,)), hw, dataflow=flow, **rules).layers[0]
               for lay in (narrow, wide))
    # the same folds and reuse, half the ifmap values kept (capacities are in bits)
    assert e16.mapping == replace(e8.mapping, ifmap_capacity=65536)
    assert e8.mapping.ifmap_capacity == 131072 and e16.counts == e8.counts
    lv8, lv16 = e8.by_level(), e16.by_level()
    # MAC: 0.23 pJ per 8 x 8 MAC, times 16*16/8**2 = 4 (T*K*M = 16*18*5 MACs)
    assert lv8["mac"] == pytest.approx(16 * 18 * 5 * 0.23)
    assert lv16["mac"] == pytest.approx(4 * lv8["mac"])
    for level in ("dram", "glb", "array", "rf"):  # accesses: bits / access_bits, linear
        assert lv16[level] == pytest.approx(2 * lv8[level]), level
    # SRAM capacities in bits: 256/256/128 kB halves (double buffer) hold half as many
    # 16-bit values as 8-bit ones: 131072 -> 65536 ifmaps and weights, 65536 -> 32768 psums
    split = BufferSplit()
    assert split.usable_values(hw, narrow) == (131072, 131072, 65536)
    assert split.usable_values(hw, wide) == (65536, 65536, 32768)

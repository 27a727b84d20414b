"""Invariants every registered dataflow must keep, on tiny Hypothesis-drawn layers and
hardware each dataflow can map (storage that binds nothing, enough PEs for a filter):

* MACs equal G*N*M*C*E*F*R*S;
* compulsory DRAM traffic is reached: every weight read, every ifmap value some window
  touches read, every ofmap written, at least once;
* a layer's cycles are never below its MACs / its active PEs, nor the network's below
  its MACs / the array's PEs;
* average power is energy / latency, latency cycles / clock.

The expected values are computed here from the layer's fields, not taken from the model.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnjoules.energy.dataflows import DATAFLOWS
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import (
    AccessCost,
    EnergyUnit,
    GlobalBuffer,
    Hardware,
    Level,
    PEArray,
    RegisterFile,
)
from nnjoules.energy.results import Totals
from nnjoules.energy.workload import Layer, LayerKind, Operand, Workload

SETTINGS: dict[str, Any] = {"deadline": None, "derandomize": True, "database": None,
                            "max_examples": 80,
                            "suppress_health_check": [HealthCheck.too_slow]}


@st.composite
def tiny_layers(draw: st.DrawFn) -> Layer:
    """A conv (G 1-2, N 1-3, M 1-5, C 1-4, R,S 1-3, E,F 1-4, stride 1-3, dilation 1-2,
    padding 0-1 within the padded H, W) or an FC layer (N 1-4, M 1-8, C 1-16)."""
    if draw(st.booleans()):
        return Layer("fc", LayerKind.FC, N=draw(st.integers(1, 4)), M=draw(st.integers(1, 8)),
                     C=draw(st.integers(1, 16)), H=1, W=1, R=1, S=1, E=1, F=1)
    R, S = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    E, F = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    H = stride[0] * (E - 1) + dilation[0] * (R - 1) + 1 + draw(st.integers(0, stride[0] - 1))
    W = stride[1] * (F - 1) + dilation[1] * (S - 1) + 1 + draw(st.integers(0, stride[1] - 1))
    padding = (draw(st.integers(0, min(1, H - 1))), 0, draw(st.integers(0, min(1, W - 1))), 0)
    return Layer("conv", LayerKind.CONV, N=draw(st.integers(1, 3)), M=draw(st.integers(1, 5)),
                 C=draw(st.integers(1, 4)), G=draw(st.integers(1, 2)), H=H, W=W, R=R, S=S,
                 E=E, F=F, stride=stride, dilation=dilation, padding=padding)


@st.composite
def roomy_hardware(draw: st.DrawFn, layer: Layer) -> Hardware:
    """Storage that binds nothing; rows x cols >= R*S (a whole filter fits the array);
    a unified RF or split pads; any clock and bandwidths."""
    rows = draw(st.integers(1, 16))
    cols = draw(st.integers(max(1, -(-layer.R * layer.S // rows)), 16))
    cost = AccessCost(1.0, 1.0)
    rf = RegisterFile(weights=cost, ifmaps=cost, psums=cost, size_bytes=1 << 16) \
        if draw(st.booleans()) else \
        RegisterFile(weights=cost, ifmaps=cost, psums=cost, weights_bytes=1 << 14,
                     ifmaps_bytes=1 << 14, psums_bytes=1 << 14)
    return Hardware(name="roomy", unit=draw(st.sampled_from(list(EnergyUnit))), word_bits=16,
                    pe_array=PEArray(rows=rows, cols=cols), dram=AccessCost(200.0, 200.0),
                    glb=GlobalBuffer(size_bytes=1 << 22, cost=AccessCost(6.0, 6.0)),
                    array=AccessCost(2.0, 2.0), rf=rf, mac=1.0,
                    clock_mhz=draw(st.sampled_from([1.0, 200.0, 333.3, 1000.0])),
                    dram_bits_per_cycle=draw(st.sampled_from([1.0, 19.2, 512.0])),
                    glb_bits_per_cycle=draw(st.sampled_from([4.0, 128.0, 4096.0])))


def touched_ifmaps(layer: Layer) -> int:
    """Distinct ifmap values some window reads: (rows touched) x (columns touched) per
    channel, group and item, in the padded ifmap (H, W include the padding, as the model
    moves it); worked out by enumerating the windows."""
    rows = {e * layer.stride[0] + r * layer.dilation[0] for e in range(layer.E)
            for r in range(layer.R)}
    cols = {f * layer.stride[1] + s * layer.dilation[1] for f in range(layer.F)
            for s in range(layer.S)}
    return layer.G * layer.N * layer.C * len(rows) * len(cols)


@pytest.mark.parametrize("name", list(DATAFLOWS))
@settings(**SETTINGS)
@given(data=st.data())
def test_invariants_of_every_registered_dataflow(name: str, data: st.DataObject) -> None:
    layer = data.draw(tiny_layers(), label="layer")
    hw = data.draw(roomy_hardware(layer), label="hardware")
    report = estimate_workload(Workload("tiny", (layer,)), hw, dataflow=name)
    (item,) = report.layers
    counts = item.counts
    macs = layer.G * layer.N * layer.M * layer.C * layer.E * layer.F * layer.R * layer.S
    assert counts.macs == macs == report.macs()

    assert counts.read(Level.DRAM, Operand.WEIGHTS) >= layer.G * layer.M * layer.C \
        * layer.R * layer.S
    assert counts.read(Level.DRAM, Operand.IFMAPS) >= touched_ifmaps(layer)
    assert counts.write(Level.DRAM, Operand.PSUMS) >= layer.G * layer.N * layer.M \
        * layer.E * layer.F

    active = item.mapping.active_pes(item.mapped_as or layer)
    assert 1 <= active <= hw.pe_array.num_pes
    assert item.timing.compute_cycles * active >= macs  # one MAC per active PE per cycle
    assert item.timing.cycles >= item.timing.compute_cycles
    assert report.cycles() * hw.pe_array.num_pes >= macs

    totals = Totals.of(report)
    latency = report.cycles() / (hw.clock_mhz * 1e6)
    assert totals.latency_s == latency > 0
    assert math.isclose(totals.power, report.total() / latency, rel_tol=1e-12)
    assert math.isclose(report.timing().power, report.total() / latency, rel_tol=1e-12)
    assert totals.throughput == pytest.approx(layer.N / latency, rel=1e-12)
    if hw.unit is EnergyUnit.PJ:  # pJ per second -> mW
        assert math.isclose(totals.power_mw or 0.0, report.total() / latency * 1e-9,
                            rel_tol=1e-12)
    else:
        assert totals.power_mw is None


def test_active_pes_of_a_lowered_layer_agree_in_json_csv_and_html() -> None:
    """A 16x16 patch convolution fits no row-stationary mapping and is mapped as the FC
    layer over its 4x4 patches (N = 16, C = 3*16*16): the PEs it keeps busy are those of
    that FC mapping, at most the chip's 168, in every output."""
    import csv
    import io

    from nnjoules.energy.hardware import eyeriss

    conv = Layer("patch", LayerKind.CONV, N=1, M=64, C=3, H=64, W=64, R=16, S=16, E=4, F=4,
                 stride=(16, 16))
    report = estimate_workload(Workload("p", (conv,)), eyeriss())
    (item,) = report.layers
    assert item.mapped_as is not None and item.mapped_as.N == 16
    pes = item.mapping.active_pes(item.mapped_as)
    assert pes <= 12 * 14
    assert report.to_dict()["layers"][0]["active_pes"] == pes
    assert int(next(csv.DictReader(io.StringIO(report.to_csv())))["active_pes"]) == pes
    html = report.to_html()
    assert f'<td class="n" data-v="{pes}">{pes}</td>' in html
    wrong = item.mapping.active_pes(conv)  # the FC mapping's formula on the conv's shape
    assert wrong > 12 * 14 and f'data-v="{wrong}"' not in html
    assert item.timing.compute_cycles * pes >= conv.macs

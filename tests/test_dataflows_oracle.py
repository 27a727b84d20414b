"""The ISCA 2016 comparison dataflows' closed-form counts against loop-nest oracles.

For each of WS, OS-A, OS-B, OS-C and NLR, `tests/oracle/isca_simulators.py` executes
the schedule value by value. Checked here: (1) the executed schedule is a correct
convolution (equal to ``F.conv2d``); (2) its counts equal the plug-in's
``count_accesses`` in every (level, operand) cell, for tiny Hypothesis-drawn shapes and
every mapping within the variable bounds; (3) the search returns the least energy of a
brute force over every legal mapping of small layers on small hardware; (4) the author's
closed form (``ws_flow.m`` and siblings) written out literally, where tiles divide.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, energy_of
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows.no_local_reuse import NO_LOCAL_REUSE, NLRMapping
from nnjoules.energy.dataflows.output_stationary import OS_A, OS_B, OS_C
from nnjoules.energy.dataflows.output_stationary.moc_mop import OSBMapping
from nnjoules.energy.dataflows.output_stationary.moc_sop import OSCMapping
from nnjoules.energy.dataflows.output_stationary.soc_mop import OSAMapping
from nnjoules.energy.dataflows.tiling import TiledDataflow
from nnjoules.energy.dataflows.weight_stationary import WEIGHT_STATIONARY, WSMapping
from nnjoules.energy.hardware import (
    LEVELS,
    OPERANDS,
    AccessCost,
    EnergyUnit,
    GlobalBuffer,
    Hardware,
    Level,
    PEArray,
    RegisterFile,
)
from nnjoules.energy.workload import Layer, LayerKind, Operand
from nnjoules.errors import MappingError

try:
    from tests.oracle import isca_simulators as sims
except ModuleNotFoundError:  # tests/ is not a package and the repo root is not on sys.path
    from oracle import isca_simulators as sims  # type: ignore[no-redef]

DRAM, GLB, ARRAY, RF = Level.DRAM, Level.GLB, Level.ARRAY, Level.RF
IFMAPS, WEIGHTS, PSUMS = Operand.IFMAPS, Operand.WEIGHTS, Operand.PSUMS
SETTINGS: dict[str, Any] = {"deadline": None, "derandomize": True, "database": None,
                            "suppress_health_check": [HealthCheck.too_slow]}


def table(counts: AccessCounts) -> dict[str, int]:
    """Every (level, operand) read and write, and the MACs, zeros included."""
    cells = {f"{lv}.{op}.read": counts.read(lv, op) for lv in LEVELS for op in OPERANDS}
    cells.update({f"{lv}.{op}.write": counts.write(lv, op) for lv in LEVELS for op in OPERANDS})
    cells["macs"] = counts.macs
    return cells


def make_layer(*, H: int, W: int, R: int, S: int, N: int = 1, M: int = 1, C: int = 1,
               G: int = 1, stride: tuple[int, int] = (1, 1),
               dilation: tuple[int, int] = (1, 1),
               padding: tuple[int, int, int, int] = (0, 0, 0, 0),
               kind: LayerKind = LayerKind.CONV) -> Layer:
    """A layer whose E, F follow from the padded H, W."""
    r_eff, s_eff = dilation[0] * (R - 1) + 1, dilation[1] * (S - 1) + 1
    return Layer("t", kind, N=N, M=M, C=C, H=H, W=W, R=R, S=S,
                 E=(H - r_eff) // stride[0] + 1, F=(W - s_eff) // stride[1] + 1, G=G,
                 stride=stride, dilation=dilation, padding=padding)


def hardware(*, pes: int = 256 * 256, glb_bytes: int = 10**9, rf_bytes: int = 10**6,
             name: str = "roomy") -> Hardware:
    """Default: capacities bind nothing (only the variable bounds remain)."""
    return Hardware(name=name, unit=EnergyUnit.NORMALIZED, word_bits=16,
                    pe_array=PEArray(rows=1, cols=pes) if pes <= 256 else
                    PEArray(rows=256, cols=pes // 256), dram=AccessCost(200.0, 200.0),
                    glb=GlobalBuffer(size_bytes=glb_bytes, cost=AccessCost(6.0, 6.0)),
                    array=AccessCost(2.0, 2.0),
                    rf=RegisterFile(weights=AccessCost(1.0, 1.0), ifmaps=AccessCost(1.0, 1.0),
                                    psums=AccessCost(1.0, 1.0), size_bytes=rf_bytes),
                    mac=1.0)


ROOMY = hardware()


@st.composite
def tiny_layers(draw: st.DrawFn) -> Layer:
    """G 1-2, N 1-3, M 1-5, C 1-4, R,S 1-3, E,F 1-4, stride 1-3, dilation 1-2, padding 0-1."""
    R, S = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    E, F_ = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    H = stride[0] * (E - 1) + dilation[0] * (R - 1) + 1 + draw(st.integers(0, stride[0] - 1))
    W = stride[1] * (F_ - 1) + dilation[1] * (S - 1) + 1 + draw(st.integers(0, stride[1] - 1))
    top = draw(st.integers(0, min(1, H - 1)))
    left = draw(st.integers(0, min(1, W - 1)))
    return make_layer(H=H, W=W, R=R, S=S, N=draw(st.integers(1, 3)), M=draw(st.integers(1, 5)),
                      C=draw(st.integers(1, 4)), G=draw(st.integers(1, 2)), stride=stride,
                      dilation=dilation, padding=(top, 0, left, 0))


def chunk_choices(total: int, step: int) -> list[int]:
    """Legal filter-chunk sizes: ``total``, or a multiple of ``step`` below it."""
    return [total, *range(step, total, step)]


@dataclass(frozen=True)
class Case:
    """One dataflow under test: its plug-in, its oracle and its mapping space."""

    flow: TiledDataflow
    run: Callable[[sims.Sim, Any], None]
    space: Callable[[Layer], Iterator[Any]]  # every mapping within the variable bounds


def ws_space(layer: Layer) -> Iterator[WSMapping]:
    for r, t, f in itertools.product(range(1, layer.C + 1), range(1, layer.M + 1),
                                     range(1, layer.F + 1)):
        yield WSMapping(r=r, t=t, f=f)


def nlr_space(layer: Layer) -> Iterator[NLRMapping]:
    for n, p, q, e, f in itertools.product(range(1, layer.N + 1), range(1, layer.M + 1),
                                           range(1, layer.C + 1), range(1, layer.E + 1),
                                           range(1, layer.F + 1)):
        for m in chunk_choices(layer.M, p):
            yield NLRMapping(n=n, m=m, p=p, q=q, e=e, f=f)


def os_a_space(layer: Layer) -> Iterator[OSAMapping]:
    for m, n, e, f in itertools.product(range(1, layer.M + 1), range(1, layer.N + 1),
                                        range(1, layer.E + 1), range(1, layer.F + 1)):
        yield OSAMapping(m=m, n=n, e=e, f=f)


def os_b_space(layer: Layer) -> Iterator[OSBMapping]:
    for n, p, f in itertools.product(range(1, layer.N + 1), range(1, layer.M + 1),
                                     range(1, layer.F + 1)):
        for m in chunk_choices(layer.M, p):
            yield OSBMapping(m=m, n=n, p=p, f=f)


def os_c_space(layer: Layer) -> Iterator[OSCMapping]:
    for n, p in itertools.product(range(1, layer.N + 1), range(1, layer.M + 1)):
        for m in chunk_choices(layer.M, p):
            yield OSCMapping(m=m, n=n, p=p)


CASES = {
    "weight-stationary": Case(WEIGHT_STATIONARY, sims.run_ws, ws_space),
    "output-stationary-a": Case(OS_A, sims.run_os_a, os_a_space),
    "output-stationary-b": Case(OS_B, sims.run_os_b, os_b_space),
    "output-stationary-c": Case(OS_C, sims.run_os_c, os_c_space),
    "no-local-reuse": Case(NO_LOCAL_REUSE, sims.run_nlr, nlr_space),
}


@st.composite
def cases(draw: st.DrawFn, name: str) -> tuple[Layer, Any]:
    layer = draw(tiny_layers())
    mappings = list(CASES[name].space(layer))
    return layer, draw(st.sampled_from(mappings))


def check_convolution(name: str, layer: Layer, mapping: Any, seed: int) -> AccessCounts:
    """The simulator's ofmaps equal F.conv2d on random small integers; its counts."""
    gen = torch.Generator().manual_seed(seed)
    top, bottom, left, right = layer.padding
    x = torch.randint(-3, 4, (layer.N, layer.G * layer.C, layer.H - top - bottom,
                              layer.W - left - right), generator=gen).double()
    w = torch.randint(-3, 4, (layer.G * layer.M, layer.C, layer.R, layer.S),
                      generator=gen).double()
    padded = F.pad(x, (left, right, top, bottom))
    expected = F.conv2d(padded, w, stride=layer.stride, dilation=layer.dilation, groups=layer.G)
    counts, out = sims.execute(CASES[name].run, layer, mapping, padded.long().tolist(),
                               w.long().tolist())
    assert torch.equal(torch.tensor(out, dtype=torch.float64), expected)
    assert counts.macs == layer.macs
    return counts


NAMES = list(CASES)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=60, **SETTINGS)
@given(data=st.data())
def test_counts_equal_the_oracle(name: str, data: st.DataObject) -> None:
    layer, mapping = data.draw(cases(name))
    flow = CASES[name].flow
    assert [v for v in flow.spec.violations(layer, mapping, ROOMY)] == []
    counts = check_convolution(name, layer, mapping, seed=data.draw(st.integers(0, 99)))
    assert table(flow.count_accesses(layer, mapping)) == table(counts)


SMALL = [
    make_layer(N=2, M=4, C=3, H=6, W=6, R=3, S=3),
    make_layer(N=3, M=5, C=2, H=7, W=5, R=2, S=3, stride=(2, 1)),
    make_layer(N=4, M=6, C=5, H=1, W=1, R=1, S=1, kind=LayerKind.FC),
]
TIGHT = [hardware(pes=p, glb_bytes=g, rf_bytes=rf, name="tight")
         for p, g, rf in ((4, 200, 16), (9, 400, 6), (36, 1000, 40), (16, 120, 2))]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layer", SMALL, ids=["conv", "strided", "fc"])
@pytest.mark.parametrize("hw", TIGHT, ids=["4pe", "9pe", "36pe", "16pe"])
def test_search_equals_brute_force(name: str, layer: Layer, hw: Hardware) -> None:
    flow = CASES[name].flow
    rules = (Compression.NONE, Gating.NONE, CompressionLevels.DRAM)

    def energy(mapping: Any) -> float:
        return energy_of(flow.count_accesses(layer, mapping), layer, hw, *rules).data_movement

    legal = [m for m in CASES[name].space(layer) if not flow.spec.violations(layer, m, hw)]
    if not legal:
        with pytest.raises(MappingError, match=f"with the {name} dataflow"):
            flow.best_mapping(layer, hw, *rules)
        return
    found = flow.best_mapping(layer, hw, *rules)
    best = min(energy(m) for m in legal)
    assert energy(found.mapping) == pytest.approx(best, rel=1e-12)
    assert found.energy == pytest.approx(best, rel=1e-12)
    assert flow.spec.violations(layer, found.mapping, hw) == []


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layer", SMALL, ids=["conv", "strided", "fc"])
def test_cycles_never_beat_the_active_pes(name: str, layer: Layer) -> None:
    """Cycles >= MACs / active PEs, with equality when every tile is full."""
    flow = CASES[name].flow
    for mapping in CASES[name].space(layer):
        cycles = flow.compute_cycles(layer, mapping, ROOMY)
        assert cycles * mapping.active_pes(layer) >= layer.macs


# ------------------------------------------------------------- the author's closed forms

ALEX_CONV3 = make_layer(N=4, M=384, C=256, H=15, W=15, R=3, S=3)


def test_ws_equals_ws_flow_m() -> None:
    """``ws_flow.m``'s access counts, written out literally, on tiles that divide."""
    ly, r, t, f = ALEX_CONV3, 8, 4, 13
    counts = WEIGHT_STATIONARY.count_accesses(ly, WSMapping(r=r, t=t, f=f))
    I, Wt, O = ly.num_ifmap_values, ly.num_weights, ly.num_ofmap_values  # noqa: E741
    alpha_v, alpha_h = ly.E / ly.H, ly.F / ly.W
    w = ly.U * f + ly.S - ly.U
    beta_h = f / w
    assert counts.read(DRAM, IFMAPS) == pytest.approx(I * -(-ly.M // t) * alpha_h / beta_h)
    assert counts.read(DRAM, WEIGHTS) == Wt
    assert counts.write(DRAM, PSUMS) == O
    assert counts.read(GLB, PSUMS) == counts.write(GLB, PSUMS) == O * (ly.R * -(-ly.C // r) - 1)
    assert counts.read(ARRAY, IFMAPS) == pytest.approx(I * ly.M * ly.R * ly.S * alpha_v
                                                       * alpha_h)
    assert counts.read(ARRAY, PSUMS) == O * (ly.C * ly.R * ly.S - -(-ly.C // r) * ly.R)
    assert counts.read(RF, WEIGHTS) == Wt * ly.N * ly.E * ly.F
    assert counts.total(RF) == counts.read(RF, WEIGHTS) and counts.total(GLB, IFMAPS) == 0


def author(ly: Layer) -> dict[str, float]:
    """The shape quantities of the author's code (square layers, no padding here)."""
    return {"I": ly.num_ifmap_values, "Wt": ly.num_weights, "O": ly.num_ofmap_values,
            "av": ly.E / ly.H, "ah": ly.F / ly.W}


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def test_nlr_equals_nlr_flow_m() -> None:
    ly, (n, m, p, q, e, f) = ALEX_CONV3, (2, 96, 32, 8, 13, 13)
    a = author(ly)
    counts = NO_LOCAL_REUSE.count_accesses(ly, NLRMapping(n=n, m=m, p=p, q=q, e=e, f=f))
    h, w = ly.U * e + ly.R - ly.U, ly.U * f + ly.S - ly.U
    beta_v, beta_h = e / h, f / w
    assert counts.read(DRAM, WEIGHTS) == a["Wt"] * cdiv(ly.N, n) * cdiv(ly.E, e) * cdiv(ly.F, f)
    assert counts.read(DRAM, IFMAPS) == pytest.approx(
        a["I"] * cdiv(ly.M, m) * (a["av"] / beta_v) * (a["ah"] / beta_h))
    assert counts.read(GLB, IFMAPS) == pytest.approx(
        a["I"] * cdiv(ly.M, p) * ly.R * ly.S * a["av"] * a["ah"])
    assert counts.read(GLB, WEIGHTS) == a["Wt"] * ly.N * ly.E * ly.F
    assert counts.read(GLB, PSUMS) == counts.write(GLB, PSUMS) \
        == a["O"] * (cdiv(ly.C, q) * ly.R * ly.S - 1)
    assert counts.read(ARRAY, PSUMS) == a["O"] * (ly.C * ly.R * ly.S - cdiv(ly.C, q) * ly.R
                                                  * ly.S)
    assert counts.total(RF) == 0 and counts.write(DRAM, PSUMS) == a["O"]


@pytest.mark.parametrize("variant", ["a", "b", "c"])
def test_os_equals_the_authors_os_flows(variant: str) -> None:
    """``os_soc_mop_flow.m``, ``os_moc_mop_flow.ver3.m``, ``os_moc_sop_flow.m``."""
    ly = ALEX_CONV3
    a = author(ly)
    m, n, p, e, f = 96, 2, 16, 13, 13
    w, h = ly.U * f + ly.S - ly.U, ly.U * e + ly.R - ly.U
    halo_h, halo_v = a["ah"] / (f / w), a["av"] / (e / h)
    if variant == "a":
        counts = OS_A.count_accesses(ly, OSAMapping(m=m, n=n, e=e, f=f))
        dram_i = a["I"] * cdiv(ly.M, m) * halo_v * halo_h
        glb_w = a["Wt"] * cdiv(ly.N, n) * cdiv(ly.E, e) * cdiv(ly.F, f)
        glb_i = a["I"] * ly.M * halo_v * halo_h
    elif variant == "b":
        counts = OS_B.count_accesses(ly, OSBMapping(m=m, n=n, p=p, f=f))
        dram_i = a["I"] * cdiv(ly.M, m) * ly.R * a["av"] * halo_h
        glb_w = a["Wt"] * cdiv(ly.N, n) * ly.E * cdiv(ly.F, f)
        glb_i = a["I"] * cdiv(ly.M, p) * ly.R * a["av"] * halo_h
    else:
        counts = OS_C.count_accesses(ly, OSCMapping(m=m, n=n, p=p))
        dram_i = a["I"] * cdiv(ly.M, m) * ly.R * ly.S * a["av"] * a["ah"]
        glb_w = a["Wt"] * cdiv(ly.N, n) * ly.E * ly.F
        glb_i = a["I"] * cdiv(ly.M, p) * ly.R * ly.S * a["av"] * a["ah"]
    assert counts.read(DRAM, IFMAPS) == pytest.approx(dram_i)
    assert counts.read(GLB, WEIGHTS) == glb_w
    assert counts.read(GLB, IFMAPS) == pytest.approx(glb_i)
    assert counts.read(DRAM, WEIGHTS) == a["Wt"]
    assert counts.read(ARRAY, WEIGHTS) == counts.read(ARRAY, IFMAPS) == ly.macs
    assert counts.read(RF, PSUMS) == counts.write(RF, PSUMS) \
        == a["O"] * (ly.C * ly.R * ly.S - 1)
    assert counts.total(GLB, PSUMS) == counts.total(ARRAY, PSUMS) == 0

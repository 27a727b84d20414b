"""The closed-form RS access counts against an independent oracle.

`tests/oracle/rs_simulator.py` executes the row-stationary schedule value by value and
counts every access; here we check (1) that the schedule it executes is a correct
convolution (equal to ``torch.nn.functional.conv2d``), (2) that its counts equal
`count_accesses` for every tiny layer and every mapping within the variable bounds,
(3) that on evenly divisible square layers both equal the author's closed form
(reference/energy-model.md §2.3) written out literally, and (4) a few counts derived by hand.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows.row_stationary.access import count_accesses
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping, violations
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

try:
    from tests.oracle.rs_simulator import execute, simulate
except ModuleNotFoundError:  # tests/ is not a package and the repo root is not on sys.path
    from oracle.rs_simulator import execute, simulate  # type: ignore[no-redef]

DRAM, GLB, ARRAY, RF = Level.DRAM, Level.GLB, Level.ARRAY, Level.RF
IFMAPS, WEIGHTS, PSUMS = Operand.IFMAPS, Operand.WEIGHTS, Operand.PSUMS

SETTINGS = {"deadline": None, "derandomize": True, "database": None,
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


def roomy_hardware() -> Hardware:
    """Hardware whose capacities bind nothing: only the variable bounds remain."""
    cost = AccessCost(read=1.0, write=1.0)
    return Hardware(name="roomy", unit=EnergyUnit.NORMALIZED, word_bits=16,
                    pe_array=PEArray(rows=256, cols=256), dram=cost,
                    glb=GlobalBuffer(size_bytes=10**9, cost=cost), array=cost,
                    rf=RegisterFile(weights=cost, ifmaps=cost, psums=cost, size_bytes=10**6),
                    mac=1.0)


# ---------------------------------------------------------------- strategies

@st.composite
def tiny_layers(draw: st.DrawFn) -> Layer:
    """G 1-2, N 1-3, M 1-6, C 1-6, R,S 1-3, E,F 1-4, stride 1-3, dilation 1-2, padding 0-1."""
    R, S = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    E, F_ = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    # rows a stride leaves over at the bottom/right do not change E, F
    H = stride[0] * (E - 1) + dilation[0] * (R - 1) + 1 + draw(st.integers(0, stride[0] - 1))
    W = stride[1] * (F_ - 1) + dilation[1] * (S - 1) + 1 + draw(st.integers(0, stride[1] - 1))
    top = draw(st.integers(0, min(1, H - 1)))
    bottom = draw(st.integers(0, min(1, H - 1 - top)))
    left = draw(st.integers(0, min(1, W - 1)))
    right = draw(st.integers(0, min(1, W - 1 - left)))
    layer = make_layer(H=H, W=W, R=R, S=S, N=draw(st.integers(1, 3)), M=draw(st.integers(1, 6)),
                       C=draw(st.integers(1, 6)), G=draw(st.integers(1, 2)), stride=stride,
                       dilation=dilation, padding=(top, bottom, left, right))
    assert (layer.E, layer.F) == (E, F_)
    return layer


@st.composite
def mappings_for(draw: st.DrawFn, layer: Layer) -> Mapping:
    """Any mapping within the variable bounds of `violations`, capacities ignored."""
    n, e = draw(st.integers(1, layer.N)), draw(st.integers(1, layer.E))
    p, q = draw(st.integers(1, layer.M)), draw(st.integers(1, layer.C))
    r = draw(st.integers(1, len(range(0, layer.C, q))))  # number of channel sets
    t = draw(st.integers(1, len(range(0, layer.M, p))))  # number of filter groups
    multiples = [p * t * j for j in range(1, layer.M) if p * t * j < layer.M]
    m = draw(st.sampled_from([layer.M, *multiples]))
    return Mapping(m=m, n=n, e=e, p=p, q=q, r=r, t=t)


@st.composite
def layers_and_mappings(draw: st.DrawFn) -> tuple[Layer, Mapping]:
    layer = draw(tiny_layers())
    return layer, draw(mappings_for(layer))


# ---------------------------------------------------------------- 1. the schedule convolves

def check_convolution(layer: Layer, mapping: Mapping, seed: int) -> None:
    """The simulator's ofmaps equal F.conv2d on random small integers."""
    gen = torch.Generator().manual_seed(seed)
    top, bottom, left, right = layer.padding
    x = torch.randint(-3, 4, (layer.N, layer.G * layer.C, layer.H - top - bottom,
                              layer.W - left - right), generator=gen).double()
    w = torch.randint(-3, 4, (layer.G * layer.M, layer.C, layer.R, layer.S),
                      generator=gen).double()
    padded = F.pad(x, (left, right, top, bottom))
    expected = F.conv2d(padded, w, stride=layer.stride, dilation=layer.dilation, groups=layer.G)
    if top == bottom and left == right:  # torch's own padding agrees
        same = F.conv2d(x, w, stride=layer.stride, padding=(top, left),
                        dilation=layer.dilation, groups=layer.G)
        assert torch.equal(same, expected)
    counts, out = execute(layer, mapping, padded.long().tolist(), w.long().tolist())
    assert torch.equal(torch.tensor(out, dtype=torch.float64), expected)
    assert counts.macs == layer.macs


FIXED = [
    pytest.param(make_layer(G=2, N=2, M=4, C=3, H=6, W=7, R=3, S=2, stride=(2, 1),
                            dilation=(1, 2), padding=(1, 0, 0, 1)),
                 Mapping(m=2, n=1, e=1, p=1, q=2, r=1, t=2), id="grouped-strided-dilated"),
    pytest.param(make_layer(G=3, H=6, W=6, R=3, S=3, padding=(1, 1, 1, 1)),
                 Mapping(m=1, n=1, e=3, p=1, q=1, r=1, t=1), id="depthwise-partial-strip"),
    pytest.param(make_layer(N=3, M=5, C=4, H=2, W=2, R=2, S=2, kind=LayerKind.FC),
                 Mapping(m=4, n=2, e=1, p=2, q=3, r=1, t=2), id="fc-partial-tiles"),
    pytest.param(make_layer(N=2, M=3, C=5, H=8, W=5, R=1, S=1, stride=(3, 2)),
                 Mapping(m=3, n=2, e=2, p=3, q=2, r=2, t=1), id="stride-over-filter"),
    pytest.param(make_layer(N=2, M=6, C=6, H=6, W=6, R=3, S=3, padding=(1, 1, 1, 1)),
                 Mapping(m=4, n=2, e=2, p=2, q=2, r=2, t=2), id="two-chunks-two-passes"),
]


@pytest.mark.parametrize(("layer", "mapping"), FIXED)
def test_schedule_computes_the_convolution(layer: Layer, mapping: Mapping) -> None:
    assert violations(layer, mapping, roomy_hardware()) == []
    check_convolution(layer, mapping, seed=0)


@settings(max_examples=40, **SETTINGS)
@given(layers_and_mappings(), st.integers(0, 2**16))
def test_schedule_computes_the_convolution_hypothesis(case: tuple[Layer, Mapping],
                                                      seed: int) -> None:
    check_convolution(*case, seed=seed)


# ---------------------------------------------------------------- 2. oracle == closed form

@pytest.mark.parametrize(("layer", "mapping"), FIXED)
def test_closed_form_matches_simulator_fixed(layer: Layer, mapping: Mapping) -> None:
    assert table(count_accesses(layer, mapping)) == table(simulate(layer, mapping))


@settings(max_examples=300, **SETTINGS)
@given(layers_and_mappings())
def test_closed_form_matches_simulator(case: tuple[Layer, Mapping]) -> None:
    layer, mapping = case
    assert violations(layer, mapping, roomy_hardware()) == []  # strategy == variable bounds
    assert table(count_accesses(layer, mapping)) == table(simulate(layer, mapping))


def all_mappings(layer: Layer) -> list[Mapping]:
    """Every mapping within the variable bounds of `violations`, capacities ignored."""
    found = []
    for n in range(1, layer.N + 1):
        for e in range(1, layer.E + 1):
            for p in range(1, layer.M + 1):
                for t in range(1, len(range(0, layer.M, p)) + 1):
                    ms = [layer.M, *(p * t * j for j in range(1, layer.M) if p * t * j < layer.M)]
                    for m in ms:
                        for q in range(1, layer.C + 1):
                            found.extend(Mapping(m=m, n=n, e=e, p=p, q=q, r=r, t=t)
                                         for r in range(1, len(range(0, layer.C, q)) + 1))
    return found


@pytest.mark.parametrize("layer", [
    pytest.param(make_layer(N=2, M=3, C=3, H=7, W=4, R=2, S=3, stride=(2, 1), dilation=(2, 1)),
                 id="E3-strided-dilated"),
    pytest.param(make_layer(G=2, N=1, M=4, C=2, H=4, W=3, R=1, S=2), id="E4-grouped"),
])
def test_closed_form_matches_simulator_on_every_mapping(layer: Layer) -> None:
    hw = roomy_hardware()
    for mapping in all_mappings(layer):
        assert violations(layer, mapping, hw) == []
        assert table(count_accesses(layer, mapping)) == table(simulate(layer, mapping)), mapping


# ---------------------------------------------------------------- 3. the author's closed form

def ceil(a: int | Fraction, b: int) -> int:
    """⌈a/b⌉ as the author writes it."""
    return -(-a // b)


def author_counts(layer: Layer, mp: Mapping) -> dict[str, int]:
    """`rs_flow.m`'s returned counts (reference §2.3), psum array term counted once.

    The author strip-mines the dimension called F (strip f) and calls the vertical filter
    size S; for square layers these are our E (strip e) and R.
    """
    G, N, M, C, H, W, U = layer.G, layer.N, layer.M, layer.C, layer.H, layer.W, layer.U
    F_a, f_a, S_a, R_a, E_a = layer.E, mp.e, layer.R, layer.S, layer.F  # author's letters
    m, n, p, q, r, t = mp.m, mp.n, mp.p, mp.q, mp.r, mp.t
    I_ = G * N * C * H * W
    Wt = G * M * C * R_a * S_a
    O_ = G * N * M * E_a * F_a
    macs = G * N * M * C * E_a * F_a * R_a * S_a
    alpha_v, alpha_h = Fraction(E_a, H), Fraction(F_a, W)
    w = U * f_a + S_a - U
    beta_h = Fraction(f_a, w)
    exact = {
        "dram.ifmaps.read": I_ * ceil(M, m) * (alpha_h / beta_h),
        "dram.weights.read": Wt * ceil(N, n) * ceil(F_a, f_a),
        "dram.psums.write": O_,
        "glb.ifmaps.read": I_ * ceil(M, p * t) * (alpha_h / beta_h),
        "glb.psums.read": O_ * (ceil(C, q * r) - 1),
        "glb.psums.write": O_ * (ceil(C, q * r) - 1),
        "array.ifmaps.read": I_ * ceil(M, p) * S_a * alpha_h,
        "array.weights.read": Wt * ceil(N, n) * F_a,
        "array.psums.read": O_ * (ceil(C, q) * S_a - ceil(C, q * r)),
        "rf.ifmaps.read": I_ * M * R_a * S_a * alpha_v * alpha_h,
        "rf.weights.read": Wt * N * E_a * F_a,
        "rf.psums.read": O_ * (C * R_a * S_a - ceil(C, q) * S_a),
        "rf.psums.write": O_ * (C * R_a * S_a - ceil(C, q) * S_a),
        "macs": macs,
    }
    assert all(Fraction(v).denominator == 1 for v in exact.values()), exact
    return {key: int(value) for key, value in exact.items()}


def divisors(x: int) -> list[int]:
    return [d for d in range(1, x + 1) if x % d == 0]


@st.composite
def divisible_square_cases(draw: st.DrawFn) -> tuple[Layer, Mapping]:
    """Square layers (H = W, R = S, E = F, no dilation) and mappings whose tiles divide."""
    R, E, U = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    H = U * (E - 1) + R  # the author's E = (H + U - R) / U, exactly
    layer = make_layer(H=H, W=H, R=R, S=R, N=draw(st.integers(1, 3)),
                       M=draw(st.integers(1, 6)), C=draw(st.integers(1, 6)),
                       G=draw(st.integers(1, 2)), stride=(U, U))
    M, C = layer.M, layer.C
    m, p, t = draw(st.sampled_from([(m, p, t) for m in divisors(M) for p in divisors(m)
                                    for t in divisors(m // p)]))
    q, r = draw(st.sampled_from([(q, r) for q in divisors(C) for r in divisors(C // q)]))
    mapping = Mapping(m=m, n=draw(st.sampled_from(divisors(layer.N))),
                      e=draw(st.sampled_from(divisors(E))), p=p, q=q, r=r, t=t)
    return layer, mapping


@settings(max_examples=60, **SETTINGS)
@given(divisible_square_cases())
def test_divisible_square_layers_match_the_authors_closed_form(
        case: tuple[Layer, Mapping]) -> None:
    layer, mapping = case
    assert violations(layer, mapping, roomy_hardware()) == []
    expected = author_counts(layer, mapping)
    expected = {key: expected.get(key, 0) for key in table(simulate(layer, mapping))}
    assert table(simulate(layer, mapping)) == expected
    assert table(count_accesses(layer, mapping)) == expected


# ---------------------------------------------------------------- 4. by hand

def by_hand(**nonzero: int) -> dict[str, int]:
    cells = {f"{lv}.{op}.{rw}": 0 for lv in LEVELS for op in OPERANDS for rw in ("read", "write")}
    cells["macs"] = 0
    for key, value in nonzero.items():
        cells[key.replace("_", ".")] = value
    return cells


HAND = [
    pytest.param(
        # 1x1 conv N=2 M=4 C=6 3x3: batch chunks 2, 1 strip of 3 rows, groups of p=2 -> 2
        # filter passes (t=1) in 1 chunk (m=M); sets of q=2 -> 3, r=2 -> 2 channel passes
        make_layer(N=2, M=4, C=6, H=3, W=3, R=1, S=1),
        Mapping(m=4, n=1, e=3, p=2, q=2, r=2, t=1),
        by_hand(dram_ifmaps_read=2 * 6 * 3 * 3,  # every ifmap value once (1 filter chunk)
                glb_ifmaps_read=2 * 6 * 3 * 3 * 2,  # once per filter pass
                array_ifmaps_read=2 * 6 * 3 * 3 * 2,  # N C W E R x 2 filter groups
                dram_weights_read=4 * 6 * 2,  # Wt x 2 batch chunks x 1 strip
                array_weights_read=4 * 6 * 2 * 3,  # Wt x 2 batch chunks x E
                glb_psums_read=72, glb_psums_write=72,  # O=2*4*3*3, 2 channel passes
                array_psums_read=72 * (1 * 3 - 2),  # 3 sets, 2 passes, R=1
                rf_psums_read=72 * (6 - 3), rf_psums_write=72 * (6 - 3),  # C*R*S - R*sets
                dram_psums_write=72,
                rf_ifmaps_read=432, rf_weights_read=432, macs=2 * 4 * 6 * 3 * 3),
        id="1x1-conv"),
    pytest.param(
        # FC N=3 M=5 C=4 2x2: n=2 -> 2 batch chunks; p=2 -> 3 groups, t=2 -> 2 passes,
        # m=4 -> 2 filter chunks of 1 pass; q=3 -> 2 channel sets, r=1 -> 2 channel passes
        make_layer(N=3, M=5, C=4, H=2, W=2, R=2, S=2, kind=LayerKind.FC),
        Mapping(m=4, n=2, e=1, p=2, q=3, r=1, t=2),
        by_hand(dram_ifmaps_read=3 * 4 * 2 * 2 * 2,  # 48 ifmap values x 2 filter chunks
                glb_ifmaps_read=48 * 2,  # x 2 filter passes in all
                array_ifmaps_read=3 * 4 * 2 * 1 * 2 * 3,  # N C W E R x 3 groups
                dram_weights_read=80 * 2,  # Wt=5*4*2*2 x 2 batch chunks
                array_weights_read=80 * 2 * 1,  # Wt x 2 batch chunks x E
                glb_psums_read=15, glb_psums_write=15,  # O=15, 2 channel passes
                array_psums_read=15 * (2 * 2 - 2),  # R x 2 sets - 2 passes
                rf_psums_read=15 * (16 - 2 * 2), rf_psums_write=15 * 12,
                dram_psums_write=15,
                rf_ifmaps_read=240, rf_weights_read=240, macs=3 * 5 * 4 * 2 * 2),
        id="fc"),
    pytest.param(
        # depthwise G=3 4x4 3x3 -> 2x2, e=1: 2 strips of 3 ifmap rows each (halo re-read)
        make_layer(G=3, H=4, W=4, R=3, S=3),
        Mapping(m=1, n=1, e=1, p=1, q=1, r=1, t=1),
        by_hand(dram_ifmaps_read=3 * 4 * (3 + 3),  # G x W x rows of both strips
                glb_ifmaps_read=3 * 4 * 6,
                array_ifmaps_read=3 * 4 * 2 * 3,  # G W E R
                dram_weights_read=27 * 2,  # Wt=3*9 x 2 strips
                array_weights_read=27 * 2,  # Wt x E
                array_psums_read=12 * (3 - 1),  # O=3*2*2, R=3 PEs a column
                rf_psums_read=12 * (9 - 3), rf_psums_write=12 * 6,
                dram_psums_write=12,
                rf_ifmaps_read=108, rf_weights_read=108, macs=3 * 2 * 2 * 3 * 3),
        id="depthwise"),
]


@pytest.mark.parametrize(("layer", "mapping", "expected"), HAND)
def test_hand_derived_counts(layer: Layer, mapping: Mapping, expected: dict[str, int]) -> None:
    assert table(simulate(layer, mapping)) == expected
    assert table(count_accesses(layer, mapping)) == expected

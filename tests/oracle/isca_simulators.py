"""Naive loop-nest simulators of the ISCA 2016 comparison dataflows: the oracles.

Each ``run_*`` function *executes* its dataflow's schedule (see the docstring of the
dataflow's module under ``nnjoules/energy/dataflows/``) on a tiny layer, value by value,
and counts one event for every value that moves. Nothing here uses the closed-form
counts: tiles are explicit index lists and every count is a number of loop-body runs.

Every storage level is a dict keyed by index tuples, filled only by counted moves
(``Tally.read``), so a value the schedule forgot to fetch is a ``KeyError``; and the
ofmaps are computed from the moved values only, so they equal ``F.conv2d`` exactly when
the counted schedule is a correct convolution.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.hardware import Level
from nnjoules.energy.workload import Layer, Operand

T = TypeVar("T")
Tensor4 = Sequence[Sequence[Sequence[Sequence[int]]]]
Out4 = list[list[list[list[int]]]]

DRAM, GLB, ARRAY, RF = Level.DRAM, Level.GLB, Level.ARRAY, Level.RF
IFMAPS, WEIGHTS, PSUMS = Operand.IFMAPS, Operand.WEIGHTS, Operand.PSUMS


def runs(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive runs of ``size`` items; the last run may be shorter."""
    return [list(items[start:start + size]) for start in range(0, len(items), size)]


def chunks_of_passes(total: int, pass_size: int, chunk: int) -> list[list[list[int]]]:
    """Filters split into passes of ``pass_size``, passes grouped into chunks of ``chunk``
    filters (``chunk`` is ``total`` or a multiple of ``pass_size``)."""
    passes = runs(list(range(total)), pass_size)
    if chunk >= total:
        return [passes]
    assert chunk % pass_size == 0, (chunk, pass_size)
    return runs(passes, chunk // pass_size)


@dataclass
class Sim:
    """One run: the layer, its operands, the tallies and the ofmaps being written."""

    layer: Layer
    ifmap: Tensor4  # [N, G*C, H, W], padded
    weights: Tensor4  # [G*M, C, R, S]
    out: Out4 = field(init=False)
    reads: Counter[tuple[Level, Operand]] = field(default_factory=Counter)
    writes: Counter[tuple[Level, Operand]] = field(default_factory=Counter)
    macs: int = 0
    g: int = 0

    def __post_init__(self) -> None:
        ly = self.layer
        self.out = [[[[0] * ly.F for _ in range(ly.E)] for _ in range(ly.G * ly.M)]
                    for _ in range(ly.N)]

    def read(self, level: Level, operand: Operand, value: int) -> int:
        self.reads[(level, operand)] += 1
        return value

    def write(self, level: Level, operand: Operand, value: int) -> int:
        self.writes[(level, operand)] += 1
        return value

    def mac(self, a: int, b: int) -> int:
        self.macs += 1
        return a * b

    def x(self, i: int, c: int, h: int, col: int) -> int:
        return self.ifmap[i][self.g * self.layer.C + c][h][col]

    def w(self, f: int, c: int, ry: int, s: int) -> int:
        return self.weights[self.g * self.layer.M + f][c][ry][s]

    def store(self, i: int, f: int, ey: int, ex: int, value: int) -> None:
        self.out[i][self.g * self.layer.M + f][ey][ex] = value

    def ih(self, ey: int, ry: int) -> int:
        """Ifmap row of ofmap row ey, filter row ry."""
        return self.layer.U * ey + self.layer.dilation[0] * ry

    def iw(self, ex: int, s: int) -> int:
        """Ifmap column of ofmap column ex, filter column s."""
        return self.layer.stride[1] * ex + self.layer.dilation[1] * s

    def counts(self) -> AccessCounts:
        return AccessCounts(reads=dict(self.reads), writes=dict(self.writes), macs=self.macs)


def ones(layer: Layer) -> tuple[Tensor4, Tensor4]:
    ifmap = [[[[1] * layer.W for _ in range(layer.H)] for _ in range(layer.G * layer.C)]
             for _ in range(layer.N)]
    weights = [[[[1] * layer.S for _ in range(layer.R)] for _ in range(layer.C)]
               for _ in range(layer.G * layer.M)]
    return ifmap, weights


def execute(run: Callable[[Sim, Any], None], layer: Layer, mapping: Any,
            ifmap: Tensor4 | None = None, weights: Tensor4 | None = None,
            ) -> tuple[AccessCounts, Out4]:
    """Run a dataflow's schedule over every group: the counts and the ofmaps."""
    if ifmap is None or weights is None:
        ifmap, weights = ones(layer)
    sim = Sim(layer, ifmap, weights)
    for g in range(layer.G):
        sim.g = g
        run(sim, mapping)
    return sim.counts(), sim.out


class Accumulator:
    """An ofmap value's psum across contributions that meet in the GLB.

    The first contribution is written without a GLB read; every later one reads the
    running psum back; every contribution but the last is written to the GLB, the last
    goes to DRAM as the ofmap value.
    """

    def __init__(self, sim: Sim, contributions: int) -> None:
        self.sim = sim
        self.total = contributions
        self.seen: Counter[tuple[int, int, int, int]] = Counter()
        self.glb: dict[tuple[int, int, int, int], int] = {}

    def add(self, key: tuple[int, int, int, int], value: int) -> None:
        sim = self.sim
        if self.seen[key]:
            value += sim.read(GLB, PSUMS, self.glb.pop(key))
        self.seen[key] += 1
        if self.seen[key] < self.total:
            self.glb[key] = sim.write(GLB, PSUMS, value)
        else:
            sim.store(*key, sim.write(DRAM, PSUMS, value))


# ------------------------------------------------------------------ weight stationary

def run_ws(sim: Sim, mp: Any) -> None:
    """WS: filter passes of t, channel passes of r, column strips of f."""
    ly = sim.layer
    rows = range(0, ly.U * (ly.E - 1) + ly.R_eff)
    acc = Accumulator(sim, ly.R * len(runs(range(ly.C), mp.r)))
    for filters in runs(range(ly.M), mp.t):
        for channels in runs(range(ly.C), mp.r):
            rf = {(f, c, ry, s): sim.read(DRAM, WEIGHTS, sim.w(f, c, ry, s))
                  for f in filters for c in channels for ry in range(ly.R)
                  for s in range(ly.S)}
            for strip in runs(range(ly.F), mp.f):
                cols = range(sim.iw(strip[0], 0), sim.iw(strip[-1], ly.S - 1) + 1)
                for i in range(ly.N):
                    bcast = {(c, h, col): sim.read(DRAM, IFMAPS, sim.x(i, c, h, col))
                             for c in channels for h in rows for col in cols}
                    for f in filters:
                        for ey in range(ly.E):
                            for ex in strip:
                                for ry in range(ly.R):
                                    acc.add((i, f, ey, ex),
                                            _ws_row(sim, rf, bcast, channels, f, ey, ex, ry))


def _ws_row(sim: Sim, rf: dict, bcast: dict, channels: list[int], f: int, ey: int, ex: int,
            ry: int) -> int:
    """One filter row's products over the pass's channels, summed across the array."""
    ly = sim.layer
    psum: int | None = None
    for c in channels:
        for s in range(ly.S):
            a = sim.read(ARRAY, IFMAPS, bcast[(c, sim.ih(ey, ry), sim.iw(ex, s))])
            product = sim.mac(a, sim.read(RF, WEIGHTS, rf[(f, c, ry, s)]))
            psum = product if psum is None else sim.read(ARRAY, PSUMS, psum) + product
    assert psum is not None
    return psum


# ------------------------------------------------------------------ no local reuse

def tiles_2d(sim: Sim, e: int, f: int) -> list[tuple[list[int], list[int], range, range]]:
    """Ofmap tiles of e rows x f columns, with the ifmap rows and columns each reads."""
    ly = sim.layer
    found = []
    for rows in runs(range(ly.E), e):
        for cols in runs(range(ly.F), f):
            found.append((rows, cols, range(sim.ih(rows[0], 0), sim.ih(rows[-1], ly.R - 1) + 1),
                          range(sim.iw(cols[0], 0), sim.iw(cols[-1], ly.S - 1) + 1)))
    return found


def run_nlr(sim: Sim, mp: Any) -> None:
    """NLR: image chunks, ofmap tiles, filter chunks, channel passes, filter passes."""
    ly = sim.layer
    channel_passes = runs(range(ly.C), mp.q)
    acc = Accumulator(sim, len(channel_passes) * ly.R * ly.S)
    for images in runs(range(ly.N), mp.n):
        for rows, cols, ih, iw in tiles_2d(sim, mp.e, mp.f):
            for chunk in chunks_of_passes(ly.M, mp.p, mp.m):
                filters = [f for fp in chunk for f in fp]
                for channels in channel_passes:
                    glb_x = {(i, c, h, w): sim.read(DRAM, IFMAPS, sim.x(i, c, h, w))
                             for i in images for c in channels for h in ih for w in iw}
                    glb_w = {(f, c, ry, s): sim.read(DRAM, WEIGHTS, sim.w(f, c, ry, s))
                             for f in filters for c in channels for ry in range(ly.R)
                             for s in range(ly.S)}
                    for fpass in chunk:
                        _nlr_pass(sim, acc, glb_x, glb_w, images, rows, cols, fpass, channels)


def _nlr_pass(sim: Sim, acc: Accumulator, glb_x: dict, glb_w: dict, images: list[int],
              rows: list[int], cols: list[int], filters: list[int],
              channels: list[int]) -> None:
    ly = sim.layer
    for ry in range(ly.R):
        for s in range(ly.S):
            for i in images:
                for ey in rows:
                    for ex in cols:
                        pixel = {c: sim.read(GLB, IFMAPS, glb_x[(i, c, sim.ih(ey, ry),
                                                                 sim.iw(ex, s))])
                                 for c in channels}
                        for f in filters:
                            psum: int | None = None
                            for c in channels:
                                a = sim.read(ARRAY, IFMAPS, pixel[c])
                                b = sim.read(GLB, WEIGHTS, glb_w[(f, c, ry, s)])
                                product = sim.mac(a, b)
                                psum = product if psum is None else \
                                    sim.read(ARRAY, PSUMS, psum) + product
                            assert psum is not None
                            acc.add((i, f, ey, ex), psum)


# ------------------------------------------------------------------ output stationary

def _os_pe(sim: Sim, arr_x: dict, arr_w: dict, i: int, f: int, ey: int, ex: int) -> None:
    """One PE accumulates one ofmap value: C*R*S MACs fed over the array, psum in RF."""
    ly = sim.layer
    psum: int | None = None
    for c in range(ly.C):
        for ry in range(ly.R):
            for s in range(ly.S):
                a = sim.read(ARRAY, IFMAPS, arr_x[(i, c, sim.ih(ey, ry), sim.iw(ex, s))])
                product = sim.mac(a, sim.read(ARRAY, WEIGHTS, arr_w[(f, c, ry, s)]))
                psum = product if psum is None else \
                    sim.write(RF, PSUMS, sim.read(RF, PSUMS, psum) + product)
    assert psum is not None
    sim.store(i, f, ey, ex, sim.write(DRAM, PSUMS, psum))


def _weights_to_glb(sim: Sim, filters: list[int]) -> dict:
    ly = sim.layer
    return {(f, c, ry, s): sim.read(DRAM, WEIGHTS, sim.w(f, c, ry, s)) for f in filters
            for c in range(ly.C) for ry in range(ly.R) for s in range(ly.S)}


def _from_glb(sim: Sim, glb: dict, operand: Operand, keep: Callable[[tuple], bool]) -> dict:
    return {key: sim.read(GLB, operand, value) for key, value in glb.items() if keep(key)}


def run_os_a(sim: Sim, mp: Any) -> None:
    """OS-A: filter chunks of m; image chunks of n; ofmap tiles of e x f; one filter."""
    ly = sim.layer
    for filters in runs(range(ly.M), mp.m):
        glb_w = _weights_to_glb(sim, filters)
        for images in runs(range(ly.N), mp.n):
            for rows, cols, ih, iw in tiles_2d(sim, mp.e, mp.f):
                glb_x = {(i, c, h, w): sim.read(DRAM, IFMAPS, sim.x(i, c, h, w))
                         for i in images for c in range(ly.C) for h in ih for w in iw}
                for f in filters:
                    arr_x = _from_glb(sim, glb_x, IFMAPS, lambda key: True)
                    arr_w = _from_glb(sim, glb_w, WEIGHTS, lambda key, f=f: key[0] == f)
                    for i in images:
                        for ey in rows:
                            for ex in cols:
                                _os_pe(sim, arr_x, arr_w, i, f, ey, ex)


def run_os_b(sim: Sim, mp: Any) -> None:
    """OS-B: filter chunks; image chunks; ofmap rows; column strips; filter passes."""
    ly = sim.layer
    for chunk in chunks_of_passes(ly.M, mp.p, mp.m):
        glb_w = _weights_to_glb(sim, [f for fp in chunk for f in fp])
        for images in runs(range(ly.N), mp.n):
            for ey in range(ly.E):
                ih = [sim.ih(ey, ry) for ry in range(ly.R)]
                for cols in runs(range(ly.F), mp.f):
                    iw = range(sim.iw(cols[0], 0), sim.iw(cols[-1], ly.S - 1) + 1)
                    glb_x = {(i, c, h, w): sim.read(DRAM, IFMAPS, sim.x(i, c, h, w))
                             for i in images for c in range(ly.C) for h in ih for w in iw}
                    for fpass in chunk:
                        arr_x = _from_glb(sim, glb_x, IFMAPS, lambda key: True)
                        arr_w = _from_glb(sim, glb_w, WEIGHTS,
                                          lambda key, fp=fpass: key[0] in fp)
                        for f in fpass:
                            for i in images:
                                for ex in cols:
                                    _os_pe(sim, arr_x, arr_w, i, f, ey, ex)


def run_os_c(sim: Sim, mp: Any) -> None:
    """OS-C: filter chunks; image chunks; ofmap pixels; filter passes."""
    ly = sim.layer
    for chunk in chunks_of_passes(ly.M, mp.p, mp.m):
        glb_w = _weights_to_glb(sim, [f for fp in chunk for f in fp])
        for images in runs(range(ly.N), mp.n):
            for ey in range(ly.E):
                for ex in range(ly.F):
                    glb_x = {(i, c, sim.ih(ey, ry), sim.iw(ex, s)):
                             sim.read(DRAM, IFMAPS, sim.x(i, c, sim.ih(ey, ry), sim.iw(ex, s)))
                             for i in images for c in range(ly.C) for ry in range(ly.R)
                             for s in range(ly.S)}
                    for fpass in chunk:
                        arr_x = _from_glb(sim, glb_x, IFMAPS, lambda key: True)
                        arr_w = _from_glb(sim, glb_w, WEIGHTS,
                                          lambda key, fp=fpass: key[0] in fp)
                        for f in fpass:
                            for i in images:
                                _os_pe(sim, arr_x, arr_w, i, f, ey, ex)

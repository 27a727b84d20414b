"""A naive row-stationary simulator: the independent oracle for `count_accesses`.

It *executes* the schedule of :mod:`nnjoules.energy.dataflows.row_stationary.mapping` on a
tiny layer, value by
value, and counts one event for every value that moves. Nothing here uses the closed-form
totals of :mod:`nnjoules.energy.dataflows.row_stationary.access`: the tiles (batch chunks,
ofmap-row strips, filter
groups / passes / chunks, channel sets / passes) are built as explicit lists of indices and
every count is the number of times a loop body ran.

Every storage level is a dict keyed by index tuples, and every access copies one value from
the level above into the level below (``_Tally.read``). A value that the schedule forgot to
fetch is therefore a ``KeyError``, and because the convolution is computed from the moved
values only, :func:`execute`'s output equals ``torch.nn.functional.conv2d`` exactly when the
counted schedule is a correct convolution.

Schedule, per group, outermost first (events in capitals)::

    for batch chunk (n_i images):
      for strip (e_i ofmap rows, w_i = U*(e_i-1) + R_eff ifmap rows):
        for filter chunk (runs of m/(p*t) filter passes, or all of them when m == M):
          for channel pass (r sets of q channels, c_k channels):
            DRAM ifmap read of the tile n_i x c_k x w_i x W            -> GLB
            for filter pass (t groups of p filters, f_j filters):
              GLB ifmap read of the same tile                          -> array
              DRAM weight read of f_j x c_k x R x S                    -> array
              for PE set (group x channel set), PE (ry, ex):
                ARRAY weight read of filter row ry (S values) per (filter, channel)
                ARRAY ifmap read of ifmap row U*ey + dil_h*ry (W values) per (image, channel)
                per (image, filter, column): q_c*S MACs, each with an RF ifmap and an
                RF weight read; all but the first also RF psum read + RF psum write
              per ofmap value: R x (sets in the pass) PE psums summed, ARRAY psum read
              for each but the first; then GLB psum read (not the first channel pass),
              GLB psum write (not the last) or DRAM psum write (the last)

`zero_events` also records every chunk a storage level holds at once, value by value:
each GLB ifmap tile, each PE's weights (p filters x q channels x one filter row) and
each sliding window of its ifmap rows (q channels x S_eff columns), so that tests can
check that a compressed chunk never outgrows the room the mapping search reserved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
from nnjoules.energy.hardware import Level
from nnjoules.energy.workload import Layer, Operand

T = TypeVar("T")
Tensor4 = Sequence[Sequence[Sequence[Sequence[int]]]]
Out4 = list[list[list[list[int]]]]

DRAM, GLB, ARRAY, RF = Level.DRAM, Level.GLB, Level.ARRAY, Level.RF
IFMAPS, WEIGHTS, PSUMS = Operand.IFMAPS, Operand.WEIGHTS, Operand.PSUMS


def runs(items: list[T], size: int) -> list[list[T]]:
    """Consecutive runs of ``size`` items; the last run may be shorter."""
    return [items[start:start + size] for start in range(0, len(items), size)]


@dataclass(frozen=True)
class Tiles:
    """The tiles of one group, as explicit index lists.

    Attributes:
        batch_chunks: image indices per batch chunk.
        strips: ofmap-row indices per strip.
        filter_chunks: per chunk, its filter passes; per pass, its groups; per group,
            its filter indices.
        channel_passes: per pass, its channel sets; per set, its channel indices.
    """

    batch_chunks: list[list[int]]
    strips: list[list[int]]
    filter_chunks: list[list[list[list[int]]]]
    channel_passes: list[list[list[int]]]


def tiles_of(layer: Layer, mapping: Mapping) -> Tiles:
    """Split one group of ``layer`` into the tiles ``mapping`` describes."""
    mp = mapping
    groups = runs(list(range(layer.M)), mp.p)
    passes = runs(groups, mp.t)
    if mp.m == layer.M:
        filter_chunks = [passes]
    else:
        if mp.m % (mp.p * mp.t) != 0:
            raise ValueError(f"m={mp.m} is neither M={layer.M} nor a multiple of p*t")
        filter_chunks = runs(passes, mp.m // (mp.p * mp.t))
    channel_sets = runs(list(range(layer.C)), mp.q)
    return Tiles(batch_chunks=runs(list(range(layer.N)), mp.n),
                 strips=runs(list(range(layer.E)), mp.e),
                 filter_chunks=filter_chunks,
                 channel_passes=runs(channel_sets, mp.r))


class _Tally:
    """Event counters: every ``read``/``write`` moves one value and counts one access."""

    def __init__(self, *, record_chunks: bool = False) -> None:
        self.record_chunks = record_chunks
        self.reads: Counter[tuple[Level, Operand]] = Counter()
        self.writes: Counter[tuple[Level, Operand]] = Counter()
        self.macs = 0
        # MACs by (ifmap is non-zero, weight is non-zero): what each skipping rule needs.
        self.pairs: Counter[tuple[bool, bool]] = Counter()
        # Reads of non-zero values: the bits a compressed move carries.
        self.nonzero_reads: Counter[tuple[Level, Operand]] = Counter()
        # Chunks held at once by a storage level: (level, operand, values in index order).
        self.chunks: list[tuple[Level, Operand, tuple[int, ...]]] = []

    def hold(self, level: Level, operand: Operand, held: dict[tuple[int, ...], int]) -> None:
        """Record the values a level holds together (no access is counted)."""
        if self.record_chunks:
            self.chunks.append((level, operand, tuple(held[key] for key in sorted(held))))

    def read(self, level: Level, operand: Operand, value: int) -> int:
        self.reads[(level, operand)] += 1
        self.nonzero_reads[(level, operand)] += value != 0
        return value

    def write(self, level: Level, operand: Operand, value: int) -> int:
        self.writes[(level, operand)] += 1
        return value

    def mac(self, a: int, b: int) -> int:
        self.macs += 1
        self.pairs[(a != 0, b != 0)] += 1
        return a * b

    def counts(self) -> AccessCounts:
        return AccessCounts(reads=dict(self.reads), writes=dict(self.writes), macs=self.macs)


@dataclass(frozen=True)
class _Group:
    """One group's operands and where its results go (torch layouts, group offset g)."""

    layer: Layer
    g: int
    ifmap: Tensor4  # [N, G*C, H, W], padded
    weights: Tensor4  # [G*M, C, R, S]
    out: Out4  # [N, G*M, E, F]

    def x(self, i: int, c: int, h: int, col: int) -> int:
        return self.ifmap[i][self.g * self.layer.C + c][h][col]

    def w(self, f: int, c: int, ry: int, s: int) -> int:
        return self.weights[self.g * self.layer.M + f][c][ry][s]

    def store(self, i: int, f: int, ey: int, col: int, value: int) -> None:
        self.out[i][self.g * self.layer.M + f][ey][col] = value


def execute(layer: Layer, mapping: Mapping, ifmap: Tensor4,
            weights: Tensor4) -> tuple[AccessCounts, Out4]:
    """Run the RS schedule on real values: the access counts and the ofmaps.

    Args:
        layer: the layer; ``H`` and ``W`` are the padded sizes.
        mapping: RS mapping variables (capacities are not checked).
        ifmap: padded ifmaps, ``[N][G*C][H][W]`` (e.g. ``tensor.tolist()``).
        weights: filters, ``[G*M][C][R][S]``.

    Returns:
        The counted accesses and the ofmaps ``[N][G*M][E][F]``.
    """
    tally, out = _run(layer, mapping, ifmap, weights)
    return tally.counts(), out


@dataclass(frozen=True)
class ZeroEvents:
    """What the zeros of one run change: MACs by operand, reads of non-zero values."""

    pairs: Counter[tuple[bool, bool]]  # MACs by (ifmap non-zero, weight non-zero)
    reads: Counter[tuple[Level, Operand]]  # all reads, zeros included
    nonzero_reads: Counter[tuple[Level, Operand]]
    chunks: list[tuple[Level, Operand, tuple[int, ...]]]  # what a level holds at once


def zero_events(layer: Layer, mapping: Mapping, ifmap: Tensor4,
                weights: Tensor4) -> ZeroEvents:
    """Run the schedule on real values and count what depends on where the zeros are."""
    tally = _run(layer, mapping, ifmap, weights, record_chunks=True)[0]
    return ZeroEvents(pairs=tally.pairs, reads=tally.reads, nonzero_reads=tally.nonzero_reads,
                      chunks=tally.chunks)


def _run(layer: Layer, mapping: Mapping, ifmap: Tensor4, weights: Tensor4, *,
         record_chunks: bool = False) -> tuple[_Tally, Out4]:
    tiles = tiles_of(layer, mapping)
    tally = _Tally(record_chunks=record_chunks)
    out: Out4 = [[[[0] * layer.F for _ in range(layer.E)] for _ in range(layer.G * layer.M)]
                 for _ in range(layer.N)]
    for g in range(layer.G):
        grp = _Group(layer, g, ifmap, weights, out)
        for images in tiles.batch_chunks:
            for strip in tiles.strips:
                for chunk in tiles.filter_chunks:
                    _run_filter_chunk(grp, tiles, images, strip, chunk, tally)
    return tally, out


def simulate(layer: Layer, mapping: Mapping) -> AccessCounts:
    """Access counts of the RS schedule, counted event by event (values all ones)."""
    ifmap = [[[[1] * layer.W for _ in range(layer.H)] for _ in range(layer.G * layer.C)]
             for _ in range(layer.N)]
    weights = [[[[1] * layer.S for _ in range(layer.R)] for _ in range(layer.C)]
               for _ in range(layer.G * layer.M)]
    counts, _ = execute(layer, mapping, ifmap, weights)
    return counts


def _run_filter_chunk(grp: _Group, tiles: Tiles, images: list[int], strip: list[int],
                      chunk: list[list[list[int]]], tally: _Tally) -> None:
    """All channel passes of one filter chunk; its psums stay in the GLB between them."""
    layer = grp.layer
    rows = range(layer.U * strip[0], layer.U * strip[-1] + layer.R_eff)
    glb_psums: dict[tuple[int, int, int, int], int] = {}
    last = len(tiles.channel_passes) - 1
    for k, channel_pass in enumerate(tiles.channel_passes):
        channels = [c for cset in channel_pass for c in cset]
        glb_ifmap = {(i, c, h, col): tally.read(DRAM, IFMAPS, grp.x(i, c, h, col))
                     for i in images for c in channels for h in rows
                     for col in range(layer.W)}
        tally.hold(GLB, IFMAPS, glb_ifmap)
        for filter_pass in chunk:
            ofmap = _run_filter_pass(grp, images, strip, filter_pass, channel_pass,
                                     glb_ifmap, tally)
            for key, total in ofmap.items():
                if k > 0:
                    total += tally.read(GLB, PSUMS, glb_psums.pop(key))
                if k < last:
                    glb_psums[key] = tally.write(GLB, PSUMS, total)
                else:
                    grp.store(*key, tally.write(DRAM, PSUMS, total))
    assert not glb_psums, "psums left behind in the GLB"


def _run_filter_pass(grp: _Group, images: list[int], strip: list[int],
                     filter_pass: list[list[int]], channel_pass: list[list[int]],
                     glb_ifmap: dict[tuple[int, int, int, int], int],
                     tally: _Tally) -> dict[tuple[int, int, int, int], int]:
    """One pass over the PE array; returns the pass's psums per (image, filter, row, col)."""
    layer = grp.layer
    channels = [c for cset in channel_pass for c in cset]
    filters = [f for group in filter_pass for f in group]
    noc_ifmap = {key: tally.read(GLB, IFMAPS, value) for key, value in glb_ifmap.items()}
    noc_weights = {(f, c, ry, s): tally.read(DRAM, WEIGHTS, grp.w(f, c, ry, s))
                   for f in filters for c in channels for ry in range(layer.R)
                   for s in range(layer.S)}
    parts: dict[tuple[int, int, int, int], list[int]] = {}
    for group in filter_pass:  # PE-set columns
        for cset in channel_pass:  # PE-set rows
            for ry in range(layer.R):
                for ey in strip:
                    h = layer.U * ey + layer.dilation[0] * ry
                    psums = _run_pe(layer, images, group, cset, ry, h, noc_ifmap,
                                    noc_weights, tally)
                    for (i, f, col), psum in psums.items():
                        parts.setdefault((i, f, ey, col), []).append(psum)
    ofmap = {}
    for key, contributions in parts.items():  # vertical accumulation through the array
        total = contributions[0]
        for psum in contributions[1:]:
            total += tally.read(ARRAY, PSUMS, psum)
        ofmap[key] = total
    return ofmap


def _run_pe(layer: Layer, images: list[int], group: list[int], cset: list[int], ry: int,
            h: int, noc_ifmap: dict[tuple[int, int, int, int], int],
            noc_weights: dict[tuple[int, int, int, int], int],
            tally: _Tally) -> dict[tuple[int, int, int], int]:
    """PE (ry, h): filter row ry of p filters x q channels, ifmap row h; 1-D convolutions."""
    stride_w, dil_w = layer.stride[1], layer.dilation[1]
    rf_weights = {(f, c, s): tally.read(ARRAY, WEIGHTS, noc_weights[(f, c, ry, s)])
                  for f in group for c in cset for s in range(layer.S)}
    rf_ifmap = {(i, c, col): tally.read(ARRAY, IFMAPS, noc_ifmap[(i, c, h, col)])
                for i in images for c in cset for col in range(layer.W)}
    tally.hold(RF, WEIGHTS, rf_weights)
    windows = [(i, col) for i in images for col in range(layer.F)] if tally.record_chunks else []
    for i, col in windows:  # the pad holds one window of S_eff columns per channel at a time
        tally.hold(RF, IFMAPS, {(c, d): rf_ifmap[(i, c, stride_w * col + d)]
                                for c in cset for d in range(layer.S_eff)})
    psums = {}
    for i in images:
        for f in group:
            for col in range(layer.F):
                psum: int | None = None
                for c in cset:
                    for s in range(layer.S):
                        a = tally.read(RF, IFMAPS, rf_ifmap[(i, c, stride_w * col + dil_w * s)])
                        b = tally.read(RF, WEIGHTS, rf_weights[(f, c, s)])
                        if psum is None:
                            psum = tally.mac(a, b)
                        else:
                            psum = tally.write(RF, PSUMS, tally.read(RF, PSUMS, psum)
                                               + tally.mac(a, b))
                assert psum is not None
                psums[(i, f, col)] = psum
    return psums

"""Cycles of the row-stationary schedule if only the PE array limited it.

The schedule (see :mod:`nnjoules.energy.dataflows.row_stationary.mapping`) runs in
*passes*: per group and per batch item, each strip of ``e`` ofmap rows, each filter pass
(``t`` PE sets of ``p`` filters) and each channel pass (``r`` PE sets of ``q`` channels)
is one pass of the array. In a pass every busy PE runs the 1-D convolution of its
filter rows over one ifmap row: ``p' * q' * S * F`` MACs, one per cycle (the Eyeriss PE
is a MAC pipeline that accepts one MAC a cycle; ISSCC 2016, JSSC 2017), where ``p'``
and ``q'`` are the filters and channels that the *fullest* PE of that pass holds (a
final partial tile holds fewer). All PEs of a pass work in parallel, so the pass takes
as long as its fullest PE, plus its fill and drain:

* **fill/drain** ``= (PIPELINE_STAGES - 1) + (R - 1)``: the PE's three-stage pipeline
  (ISSCC 2016: "Each processing engine ... is a three-stage pipeline") empties once per
  pass, and the psums of the last ofmap column climb the ``R`` PEs of a set, one add and
  one hop a cycle, before they leave the array. This is our choice: the papers give no
  per-pass overhead. Loading the scratch pads at the start of a pass is data delivery,
  which :mod:`nnjoules.energy.timing` bounds by bandwidth instead.

So, with ``strips = ceil(E/e)`` and the sums over filter and channel passes of ``p'`` and
``q'`` (`fullest_per_pass`)::

    cycles = G * N * strips * (sum p') * (sum q') * S * F
           + G * N * strips * filter_passes * channel_passes * (2 + R - 1)

Zero skipping (gating) saves energy, not time, on Eyeriss v1 (a gated MAC still takes
its cycle), so cycles count dense MACs. The result is never below ``macs / active PEs``.
"""

from __future__ import annotations

from nnjoules.energy.dataflows.row_stationary.mapping import Mapping, ceil_div
from nnjoules.energy.workload import Layer, LayerKind  # noqa: F401  (doctest)

PIPELINE_STAGES = 3  # the Eyeriss PE pipeline (ISSCC 2016 section 14.5)


def fullest_per_pass(total: int, per_pe: int, per_pass: int) -> tuple[int, int]:
    """Passes, and the sum over passes of the largest tile one PE holds in that pass.

    ``total`` items (filters or channels) are split into ``ceil(total/per_pe)`` tiles of
    ``per_pe`` (the last may be smaller); a pass takes ``per_pass`` tiles.

    >>> fullest_per_pass(10, 4, 2)  # tiles 4, 4, 2: passes {4, 4} and {2}
    (2, 6)
    >>> fullest_per_pass(10, 4, 1)  # passes {4}, {4}, {2}
    (3, 10)
    """
    tiles = ceil_div(total, per_pe)
    passes = ceil_div(tiles, per_pass)
    last_tile = total - per_pe * (tiles - 1)
    tiles_in_last_pass = tiles - per_pass * (passes - 1)
    last_pass = per_pe if tiles_in_last_pass > 1 else last_tile
    return passes, per_pe * (passes - 1) + last_pass


def compute_cycles(layer: Layer, mapping: Mapping) -> int:
    """Cycles of ``layer`` under the RS ``mapping`` when the PE array is the only limit.

    Example: 4 filters of 3x3 over 2 channels, a 5x5 ofmap, one PE set per pass
    (p = 2, q = 1, t = r = 1, e = 5): strips 1, filter passes 2 (p' = 2 each), channel
    passes 2 (q' = 1 each), so 1 * (2+2) * (1+1) * S*F = 8 * 15 = 120 MAC cycles plus
    4 passes x (2 + R-1) = 16 cycles of fill and drain.

    >>> conv = Layer("c", LayerKind.CONV, N=1, M=4, C=2, H=7, W=7, R=3, S=3, E=5, F=5)
    >>> compute_cycles(conv, Mapping(m=4, n=1, e=5, p=2, q=1, r=1, t=1))
    136
    """
    filter_passes, filter_sum = fullest_per_pass(layer.M, mapping.p, mapping.t)
    channel_passes, channel_sum = fullest_per_pass(layer.C, mapping.q, mapping.r)
    runs = layer.G * layer.N * ceil_div(layer.E, mapping.e)  # (group, item, strip) triples
    work = runs * filter_sum * channel_sum * layer.S * layer.F
    fill_drain = (PIPELINE_STAGES - 1) + (layer.R - 1)
    return work + runs * filter_passes * channel_passes * fill_drain

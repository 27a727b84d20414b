"""Access counts of a systolic array, weight- or output-stationary, per level and operand.

The convention of :mod:`nnjoules.energy.counts`: an access at a level is a value read
from it towards the MACs (the write into the next level down is part of it); psums are
also written back. Levels: DRAM; the GLB, standing for the ifmap, filter and ofmap SRAMs;
the array, one hop between neighbouring PEs; the RF, the PE's operand registers.

Per group, with the GEMM ``[T, K] x [K, M]``, folds of ``K_i`` (WS) or ``T_i`` (OS) rows
and ``M_j`` columns, ``Fr`` row folds, ``Fc`` column folds and (WS) ``Nt`` output tiles
(1 untiled; the WS weight terms are for one tile, times ``Nt``, DRAM ones unless a column
fold's filters stay in the filter SRAM):

============  =========================================  =========================================
access        weight-stationary (WS)                     output-stationary (OS)
============  =========================================  =========================================
SRAM ifmaps   ``Fc*T*K`` reads                           ``Fc*T*K`` reads
SRAM weights  ``K*M`` reads                              ``Fr*K*M`` reads
SRAM psums    ``Fr*T*M`` writes, ``(Fr-1)*T*M`` reads    ``T*M`` writes
DRAM ifmaps   distinct values read, once if they fit,    as WS, over row folds of outputs
              else per column fold, per row fold those
              the latest folds kept (while they fit)
              did not read
DRAM weights  ``K*M``                                    ``K*M`` if a column fold's fit, else
                                                         ``Fr*K*M``
DRAM psums    ``T*M`` writes if a column fold's psums    ``T*M`` writes
              fit, else ``Fr*T*M`` writes and
              ``(Fr-1)*T*M`` reads
array         ifmaps ``T*K*(M-Fc)`` (rightwards);        ifmaps ``T*K*(M-Fc)``; weights
              psums ``T*M*(K-Fr)`` (down); weights       ``K*M*(T-Fr)`` (down); psums
              ``M * sum K_i(K_i-1)/2`` (shifted in)      ``M * sum T_i(T_i-1)/2`` (shifted out)
RF            weights and ifmaps: MACs                   weights and ifmaps: MACs; psums
                                                         ``T*M*(K-1)`` reads and writes
============  =========================================  =========================================

The SRAM reads and writes are SCALE-Sim's ``SRAM IFMAP Reads``, ``SRAM Filter Reads`` and
``SRAM OFMAP Writes`` (its OS adds ``rows + cols`` to the writes of every fold, which we
read as a slip); SCALE-Sim does not count the reads of partial sums that WS accumulates
across row folds, nor does it accumulate them before DRAM (it writes every fold's partial
sums out), which is where its DRAM ofmap writes exceed ours by ``Fr``. Array hops count
used PEs only: idle PEs of a partial fold pass nothing worth energy (clock-gated).
"""

from __future__ import annotations

from functools import lru_cache

from nnjoules.energy.counts import AccessCounts, Key
from nnjoules.energy.dataflows.systolic.gemm import (
    Gemm,
    ceil_div,
    fold_sizes,
    ifmap_values_in_block,
    ifmap_values_touched,
)
from nnjoules.energy.dataflows.systolic.mapping import Stationary, SystolicMapping
from nnjoules.energy.hardware.spec import Level
from nnjoules.energy.workload import Layer, LayerKind, Operand  # noqa: F401  (doctest)


@lru_cache(maxsize=1024)
def count_accesses(layer: Layer, mapping: SystolicMapping) -> AccessCounts:
    """Exact access counts of ``layer`` under the systolic ``mapping``.

    Cached: the search and the estimate ask for the same counts (do not mutate them).

    Example: WS on a 4 x 4 array, T = 16, K = 18, M = 5 (3 x 3 filters over 2 channels of
    a 6 x 6 ifmap, 5 filters): 5 row folds, 2 column folds.

    >>> conv = Layer("c", LayerKind.CONV, N=1, M=5, C=2, H=6, W=6, R=3, S=3, E=4, F=4)
    >>> m = SystolicMapping(Stationary.WEIGHTS, 4, 4, 5, 2, True, False, True)
    >>> counts = count_accesses(conv, m)
    >>> counts.read(Level.GLB, Operand.IFMAPS), counts.write(Level.GLB, Operand.PSUMS)
    (576, 400)
    >>> counts.read(Level.DRAM, Operand.IFMAPS), counts.write(Level.DRAM, Operand.PSUMS)
    (72, 80)
    """
    if mapping.stationary is Stationary.WEIGHTS:
        reads, writes = _weight_stationary(layer, mapping)
    else:
        reads, writes = _output_stationary(layer, mapping)
    g = layer.G
    return AccessCounts(reads={k: g * v for k, v in reads.items() if v},
                        writes={k: g * v for k, v in writes.items() if v}, macs=layer.macs)


def dram_ifmaps(layer: Layer, mapping: SystolicMapping) -> int:
    """DRAM ifmap reads of one group: each distinct value once if the ifmap fits; else
    per column fold and output tile, per row fold the values it reads that the latest row
    folds, kept while they fit (a sliding window over folds), did not."""
    gemm = Gemm.of(layer)
    if mapping.ifmap_reuse:
        return ifmap_values_touched(layer, 0, gemm.K)
    if mapping.stationary is Stationary.OUTPUTS:  # row folds over outputs, all columns
        blocks = [(t, min(t + mapping.rows, gemm.T), 0, gemm.K)
                  for t in range(0, gemm.T, mapping.rows)]
        return mapping.col_folds * _window_fetches(layer, [blocks], mapping.ifmap_capacity)
    tile = mapping.tile_rows(layer)
    passes = [[(t, min(t + tile, gemm.T), k, min(k + mapping.rows, gemm.K))
               for k in range(0, gemm.K, mapping.rows)] for t in range(0, gemm.T, tile)]
    return mapping.col_folds * _window_fetches(layer, passes, mapping.ifmap_capacity)


Block = tuple[int, int, int, int]  # rows t0..t1 and columns k0..k1 of the ifmap matrix


def _window_fetches(layer: Layer, passes: list[list[Block]], capacity: int) -> int:
    """Values fetched over ``passes`` of consecutive folds (each a `Block`), each pass
    keeping its latest folds while they fit ``capacity``."""
    fetched = 0
    for blocks in passes:
        oldest = 0  # the first fold still kept
        for i in range(len(blocks)):
            while oldest < i and _span(layer, blocks, oldest, i) > capacity:
                oldest += 1
            kept = _span(layer, blocks, oldest, i - 1) if oldest < i else 0
            fetched += _span(layer, blocks, oldest, i) - kept
    return fetched


def _span(layer: Layer, blocks: list[Block], a: int, b: int) -> int:
    """Distinct values of folds ``a..b`` together (consecutive blocks make one block)."""
    return ifmap_values_in_block(layer, blocks[a][0], blocks[b][1], blocks[a][2],
                                 blocks[b][3])


Counts = tuple[dict[Key, int], dict[Key, int]]


def _weight_stationary(layer: Layer, mp: SystolicMapping) -> Counts:
    T, K, M = Gemm.of(layer).T, Gemm.of(layer).K, Gemm.of(layer).M
    fr, fc = mp.row_folds, mp.col_folds
    tiles = ceil_div(T, mp.tile_rows(layer))  # each tile reloads the weights
    macs = T * K * M
    spills = not mp.psum_reuse
    weight_hops = M * sum(k * (k - 1) // 2 for k in fold_sizes(K, mp.rows))
    reads = {
        (Level.DRAM, Operand.IFMAPS): dram_ifmaps(layer, mp),
        (Level.DRAM, Operand.WEIGHTS): (1 if tiles == 1 or mp.filter_reuse else tiles) * K * M,
        (Level.DRAM, Operand.PSUMS): (fr - 1) * T * M if spills else 0,
        (Level.GLB, Operand.IFMAPS): fc * T * K,
        (Level.GLB, Operand.WEIGHTS): tiles * K * M,
        (Level.GLB, Operand.PSUMS): (fr - 1) * T * M,
        (Level.ARRAY, Operand.IFMAPS): T * K * (M - fc),
        (Level.ARRAY, Operand.PSUMS): T * M * (K - fr),
        (Level.ARRAY, Operand.WEIGHTS): tiles * weight_hops,
        (Level.RF, Operand.WEIGHTS): macs,
        (Level.RF, Operand.IFMAPS): macs,
    }
    writes = {(Level.DRAM, Operand.PSUMS): (fr if spills else 1) * T * M,
              (Level.GLB, Operand.PSUMS): fr * T * M}
    return reads, writes


def _output_stationary(layer: Layer, mp: SystolicMapping) -> Counts:
    T, K, M = Gemm.of(layer).T, Gemm.of(layer).K, Gemm.of(layer).M
    fr, fc = mp.row_folds, mp.col_folds
    macs = T * K * M
    reads = {
        (Level.DRAM, Operand.IFMAPS): dram_ifmaps(layer, mp),
        (Level.DRAM, Operand.WEIGHTS): (1 if mp.filter_reuse else fr) * K * M,
        (Level.GLB, Operand.IFMAPS): fc * T * K,
        (Level.GLB, Operand.WEIGHTS): fr * K * M,
        (Level.ARRAY, Operand.IFMAPS): T * K * (M - fc),
        (Level.ARRAY, Operand.WEIGHTS): K * M * (T - fr),
        (Level.ARRAY, Operand.PSUMS): M * sum(t * (t - 1) // 2 for t in fold_sizes(T, mp.rows)),
        (Level.RF, Operand.WEIGHTS): macs,
        (Level.RF, Operand.IFMAPS): macs,
        (Level.RF, Operand.PSUMS): T * M * (K - 1),
    }
    writes = {(Level.DRAM, Operand.PSUMS): T * M, (Level.GLB, Operand.PSUMS): T * M,
              (Level.RF, Operand.PSUMS): T * M * (K - 1)}
    return reads, writes

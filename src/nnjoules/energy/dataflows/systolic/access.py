"""Access counts of a systolic array, weight- or output-stationary, per level and operand.

The convention of :mod:`nnjoules.energy.counts`: an access at a level is a value read
from it towards the MACs (the write into the next level down is part of it); psums are
also written back. Levels: DRAM; the GLB, standing for the ifmap, filter and ofmap SRAMs;
the array, one hop between neighbouring PEs; the RF, the PE's operand registers.

Per group, with the GEMM ``[T, K] x [K, M]``, folds of ``K_i`` (WS) or ``T_i`` (OS) rows
and ``M_j`` columns, ``Fr`` row folds and ``Fc`` column folds:

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

from collections.abc import Callable
from functools import lru_cache

from nnjoules.energy.counts import AccessCounts, Key
from nnjoules.energy.dataflows.systolic.gemm import (
    Gemm,
    fold_sizes,
    ifmap_values_for_outputs,
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
    per column fold, per row fold the values it reads that the latest row folds, kept
    while they fit (a sliding window over folds), did not."""
    gemm = Gemm.of(layer)
    if mapping.ifmap_reuse:
        return ifmap_values_touched(layer, 0, gemm.K)
    touched: Callable[[Layer, int, int], int] = ifmap_values_touched
    extent = gemm.K
    if mapping.stationary is Stationary.OUTPUTS:
        extent, touched = gemm.T, ifmap_values_for_outputs
    starts = list(range(0, extent, mapping.rows))
    per_pass, oldest = 0, 0  # oldest: the first fold still kept
    for i, start in enumerate(starts):
        stop = min(start + mapping.rows, extent)
        while oldest < i and touched(layer, starts[oldest], stop) > mapping.ifmap_capacity:
            oldest += 1
        kept = touched(layer, starts[oldest], start) if oldest < i else 0
        per_pass += touched(layer, starts[oldest], stop) - kept
    return mapping.col_folds * per_pass


Counts = tuple[dict[Key, int], dict[Key, int]]


def _weight_stationary(layer: Layer, mp: SystolicMapping) -> Counts:
    T, K, M = Gemm.of(layer).T, Gemm.of(layer).K, Gemm.of(layer).M
    fr, fc = mp.row_folds, mp.col_folds
    macs = T * K * M
    spills = not mp.psum_reuse
    reads = {
        (Level.DRAM, Operand.IFMAPS): dram_ifmaps(layer, mp),
        (Level.DRAM, Operand.WEIGHTS): K * M,
        (Level.DRAM, Operand.PSUMS): (fr - 1) * T * M if spills else 0,
        (Level.GLB, Operand.IFMAPS): fc * T * K,
        (Level.GLB, Operand.WEIGHTS): K * M,
        (Level.GLB, Operand.PSUMS): (fr - 1) * T * M,
        (Level.ARRAY, Operand.IFMAPS): T * K * (M - fc),
        (Level.ARRAY, Operand.PSUMS): T * M * (K - fr),
        (Level.ARRAY, Operand.WEIGHTS): M * sum(k * (k - 1) // 2 for k in fold_sizes(K, mp.rows)),
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

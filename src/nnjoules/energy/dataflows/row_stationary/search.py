"""Mapping search: the legal row-stationary mapping of lowest energy, found exhaustively.

The author searched with a genetic algorithm; we enumerate, vectorised with numpy,
over a candidate set that provably loses no optimum. Each variable acts on the
energy only through one ceiling, and on the constraints only by using more storage
or PEs as it grows:

* n through ``ceil(N/n)``, e through ``ceil(E/e)``, q through ``ceil(C/q)``,
  p through ``ceil(M/p)``; for fixed q, r through ``ceil(ceil(C/q)/r)``; for fixed p,
  t through ``ceil(ceil(M/p)/t)``. So for each value of its ceiling only the smallest
  variable value is a candidate (it costs the same and fits wherever a larger one fits).
* m acts only through ``ceil(M/m)`` and the GLB, so it is the largest that fits:
  M, or else the largest multiple of p*t.

Ties (equal energy) between strip heights e and batch chunks n go to the mapping with
most active PEs (the author's tie-break, a throughput proxy); other ties to the first
candidate in a fixed enumeration order. The result is deterministic.
Tiles are sized by the storage rule of `nnjoules.energy.footprint` (the same functions
`mapping.violations` uses): where weights are kept compressed, a sparse layer fits
larger tiles. `tests/test_search.py` checks the result against a brute force over every legal
mapping of small layers.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from nnjoules.energy.cost import (
    Compression,
    CompressionLevels,
    Gating,
    UnitEnergies,
    unit_energies,
)
from nnjoules.energy.dataflows.base import SearchResult, lower_to_fc
from nnjoules.energy.dataflows.row_stationary.access import (
    batch_strip_terms,
    channel_terms,
    filter_terms,
    rows_read,
)
from nnjoules.energy.dataflows.row_stationary.mapping import (
    Mapping,
    ceil_div,
    ifmap_rows,
    rf_violations,
    violations,
)
from nnjoules.energy.footprint import Storage, ifmap_tile_bits, weight_tile_bits
from nnjoules.energy.hardware import Hardware, Level
from nnjoules.energy.workload import Layer, Operand
from nnjoules.errors import MappingError


def smallest_per_ceiling(total: int) -> list[int]:
    """For each distinct value of ceil(total/x), x in 1..total, the smallest such x.

    >>> smallest_per_ceiling(10)
    [1, 2, 3, 4, 5, 10]
    """
    k = np.arange(1, total + 1, dtype=np.int64)
    return [int(x) for x in np.unique(-(-total // k))]


@lru_cache(maxsize=4096)
def _candidates(total: int) -> np.ndarray:
    return np.array(smallest_per_ceiling(total), dtype=np.int64)


def _pairs(total: int, inner_limit: int, outer_limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) pairs: x a candidate of ``total`` up to ``inner_limit``, y of ceil(total/x)."""
    xs, ys = [], []
    for x in _candidates(total):
        if x > inner_limit:
            break
        y = _candidates(ceil_div(total, int(x)))
        y = y[y <= outer_limit]
        xs.append(np.full(y.shape, x))
        ys.append(y)
    if not xs:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys)


def _ragged_join(bounds: np.ndarray, sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with sorted_keys[j] <= bounds[i] (keys sorted ascending)."""
    lengths = np.searchsorted(sorted_keys, bounds, side="right")
    left = np.repeat(np.arange(len(bounds)), lengths)
    starts = np.cumsum(lengths) - lengths
    right = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    return left, right


def _energy(terms: tuple[dict, dict], units: UnitEnergies) -> Any:
    """Energy of a part of the access terms (ints or arrays) under ``units``."""
    reads, writes = terms
    return (sum(count * units.read[key] for key, count in reads.items())
            + sum(count * units.write[key] for key, count in writes.items()))


def best_mapping(layer: Layer, hw: Hardware,
                 compression: Compression = Compression.SIGNIFICANCE_MAP,
                 gating: Gating = Gating.EITHER,
                 levels: CompressionLevels = CompressionLevels.DRAM) -> SearchResult:
    """The legal row-stationary mapping of ``layer`` on ``hw`` with the lowest energy.

    Where the rules keep weights or ifmaps compressed in the GLB or the scratch pads
    (`Storage.of`), tiles are sized by their worst-case compressed chunk (weights by
    their densest filter row, ifmaps dense), never larger than raw: a sparse layer with
    a known row peak can map with larger tiles; dense data fits as without compression.

    A convolution whose windows do not overlap (stride >= filter size, e.g. the 16 x 16
    patch embedding of ViT) but whose filter row does not fit a PE is mapped as the
    equivalent FC layer over its patches instead, which moves the same values.

    Raises:
        MappingError: no mapping is legal; the message names the layer and the
            constraint that even the smallest mapping breaks.
    """
    storage = Storage.of(compression, gating, levels)
    try:
        return _search(layer, hw, unit_energies(layer, hw, compression, gating, levels), storage)
    except MappingError:
        lowered = lower_to_fc(layer)
        if lowered is None:
            raise
        return _search(lowered, hw, unit_energies(lowered, hw, compression, gating, levels),
                       storage)


def _search(layer: Layer, hw: Hardware, units: UnitEnergies, storage: Storage) -> SearchResult:
    qs = _candidates(layer.C)
    p_limits = _p_limits(layer, hw, storage, qs)
    # p_limit[q]: the largest p the RF admits beside q channels (0: q itself does not fit)
    p_limit = np.zeros(layer.C + 1, dtype=np.int64)
    p_limit[qs] = p_limits
    q_max = int(qs[p_limits >= 1].max()) if (p_limits >= 1).any() else 0
    pe_limit = hw.pe_array.num_pes // layer.R
    q, r = _pairs(layer.C, q_max, pe_limit)
    p, t = _pairs(layer.M, int(p_limit[1]), pe_limit)
    if len(q) == 0 or len(p) == 0 or pe_limit < 1:
        raise _unmappable(layer, hw, storage)
    psum_energy = _energy(channel_terms(layer, q=q, r=r), units)
    best: tuple[float, int, Mapping] | None = None
    evaluated = 0
    for n in _candidates(layer.N):
        for e in _candidates(layer.E):
            found = _best_for(layer, hw, (units, storage, p_limit), int(n), int(e),
                              (q, r, psum_energy), (p, t))
            if found is None:
                continue
            energy, pes, count, mapping = found
            evaluated += count
            if best is None or (energy, -pes) < (best[0], -best[1]):
                best = (energy, pes, mapping)
    if best is None:
        raise _unmappable(layer, hw, storage)
    return SearchResult(mapping=best[2], energy=best[0], candidates=evaluated, mapped=layer)


def _p_limits(layer: Layer, hw: Hardware, storage: Storage, qs: np.ndarray) -> np.ndarray:
    """Largest p (0 when none) the RF admits beside q channels, for each q in ``qs``.

    Every tile grows with p and q, so the p that fit beside q are 1 .. the limit.
    """
    p = np.arange(1, layer.M + 1, dtype=np.int64)[None, :]
    q = qs.astype(np.int64)[:, None]
    prec, rf = layer.precision, hw.rf
    w_bits = weight_tile_bits(layer, p * q, Level.RF, storage)
    i_bits = ifmap_tile_bits(layer, q * layer.S_eff, Level.RF, storage)
    p_bits = p * prec.ofmap_bits
    if rf.size_bytes is not None:
        fits = w_bits + i_bits + p_bits <= 8 * rf.size_bytes
    else:
        assert rf.ifmaps_bytes and rf.psums_bytes and rf.weights_bytes
        fits = ((w_bits <= 8 * rf.weights_bytes) & (i_bits <= 8 * rf.ifmaps_bytes)
                & (p_bits <= 8 * rf.psums_bytes))
    return np.asarray(fits.sum(axis=1), dtype=np.int64)


def _best_for(layer: Layer, hw: Hardware, rules: tuple[UnitEnergies, Storage, np.ndarray],
              n: int, e: int, channel: tuple[np.ndarray, np.ndarray, np.ndarray],
              filters: tuple[np.ndarray, np.ndarray],
              ) -> tuple[float, int, int, Mapping] | None:
    """Best mapping with this (n, e); None when nothing with it is legal.

    The energy is a sum of parts that depend on (n, e), on (q, r) and on (e, m, p, t)
    alone (see `access_terms`); only the constraints couple them. ``rules`` holds the
    unit energies, the storage rule and the RF's p limit per q (see `_search`).
    """
    units, storage, p_limit = rules
    prec = layer.precision
    sets_limit = hw.pe_array.num_pes // (layer.R * e)
    if sets_limit < 1:
        return None
    q, r, psum_energy = (a[channel[1] <= sets_limit] for a in channel)
    p, t = (a[filters[1] <= sets_limit] for a in filters)
    if len(q) == 0 or len(p) == 0:
        return None
    rows = ifmap_rows(layer, e)
    psum_bits_per_filter = n * e * layer.F * prec.ofmap_bits
    # Psums of all M filters fit beside the largest ifmap tile: one filter chunk for
    # every candidate, so (p, t) pairs can be pruned like (q, r) pairs.
    widest_tile = ifmap_tile_bits(layer, n * min(int((q * r).max()), layer.C) * rows * layer.W,
                                  Level.GLB, storage)
    ifmap_energy = _energy(filter_terms(layer, e=e, m=layer.M, p=p, t=t), units)
    fixed = _energy(batch_strip_terms(layer, n=n, e=e), units)
    if hw.glb.size_bits - widest_tile >= layer.M * psum_bits_per_filter:
        found = _best_single_chunk((q, r, psum_energy), (p, t, ifmap_energy), sets_limit,
                                   p_limit[q])
        if found is None:
            return None
        energy, count, (qk, rk, pk, tk) = found
        mapping = Mapping(m=layer.M, n=n, e=e, p=pk, q=qk, r=rk, t=tk)
        return fixed + energy, mapping.active_pes(layer), count, mapping
    order = np.argsort(t, kind="stable")
    p, t, ifmap_energy = p[order], t[order], ifmap_energy[order]
    i, j = _ragged_join(sets_limit // r, t)
    if len(i) == 0:
        return None
    q, r, psum_energy = q[i], r[i], psum_energy[i]
    p, t, ifmap_energy = p[j], t[j], ifmap_energy[j]
    # RF: the weight rows p*q couple p and q.
    ok = p <= p_limit[q]
    # GLB: the ifmap tile is fixed by (n, e, q*r); psums get the rest, which fixes m.
    ifmap_tile = ifmap_tile_bits(layer, n * np.minimum(q * r, layer.C) * rows * layer.W,
                                 Level.GLB, storage)
    m_cap = (hw.glb.size_bits - ifmap_tile) // psum_bits_per_filter
    pt = p * t
    m = np.where(m_cap >= layer.M, layer.M, (m_cap // pt) * pt)
    ok &= m >= 1
    if not ok.any():
        return None
    q, r, p, t, m = q[ok], r[ok], p[ok], t[ok], m[ok]
    # ifmap_energy assumed one filter chunk; add the DRAM re-reads of further chunks.
    dram_ifmap = units.read[Level.DRAM, Operand.IFMAPS] * layer.G * layer.N * layer.C \
        * layer.W * rows_read(layer, e)
    energy = (fixed + psum_energy[ok]
              + ifmap_energy[ok] + dram_ifmap * (ceil_div(layer.M, m) - 1))
    pes = layer.R * e * r * t
    # Lowest energy, then most active PEs; lexsort keeps enumeration order for full ties.
    k = int(np.lexsort((-pes, energy))[0])
    mapping = Mapping(m=int(m[k]), n=n, e=e, p=int(p[k]), q=int(q[k]), r=int(r[k]), t=int(t[k]))
    return float(energy[k]), int(pes[k]), len(energy), mapping


def _best_single_chunk(channel: tuple[np.ndarray, np.ndarray, np.ndarray],
                       filters: tuple[np.ndarray, np.ndarray, np.ndarray], sets_limit: int,
                       p_limit: np.ndarray,
                       ) -> tuple[float, int, tuple[int, int, int, int]] | None:
    """Best (q, r, p, t) when the GLB never splits the filters (m = M for all).

    Then only the array (r*t <= sets_limit) and the RF (p <= p_limit, per q) couple the
    channel split and the filter split, and both are prefix conditions: the best
    filter split for a budget of t sets and p filters is a 2-D prefix minimum.
    """
    q, r, psum_energy = channel
    p, t, ifmap_energy = filters
    ps = np.unique(p)
    grid = np.full((len(ps), sets_limit + 1), np.inf)
    pi = np.searchsorted(ps, p)
    np.minimum.at(grid, (pi, t), ifmap_energy)
    # best[i, y]: least ifmap energy with p <= ps[i] and t <= y; where[i, y] says which.
    flat = grid.ravel()
    index = np.where(np.isfinite(flat), np.arange(flat.size), -1).reshape(grid.shape)
    best, where = grid.copy(), index.copy()
    for axis in (0, 1):
        best, where = _prefix_argmin(best, where, axis)
    row = np.searchsorted(ps, p_limit, side="right") - 1
    ok = row >= 0
    total = np.full(len(q), np.inf)
    total[ok] = psum_energy[ok] + best[row[ok], sets_limit // r[ok]]
    if not np.isfinite(total).any():
        return None
    k = int(np.argmin(total))
    cell = int(where[row[k], sets_limit // r[k]])
    pk, tk = int(ps[cell // grid.shape[1]]), cell % grid.shape[1]
    return float(total[k]), int(np.isfinite(total).sum()), (int(q[k]), int(r[k]), pk, tk)


def _prefix_argmin(best: np.ndarray, where: np.ndarray, axis: int,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Running minimum along ``axis`` that also carries where each minimum came from."""
    best, where = best.copy(), where.copy()
    length = best.shape[axis]
    for i in range(1, length):
        prev = (slice(None), i - 1) if axis == 1 else (i - 1, slice(None))
        cur = (slice(None), i) if axis == 1 else (i, slice(None))
        better = best[prev] < best[cur]
        best[cur] = np.where(better, best[prev], best[cur])
        where[cur] = np.where(better, where[prev], where[cur])
    return best, where


def _unmappable(layer: Layer, hw: Hardware, storage: Storage) -> MappingError:
    """The error for a layer no mapping fits: which constraint the smallest one breaks."""
    smallest = Mapping(m=1, n=1, e=1, p=1, q=1, r=1, t=1)
    broken = (violations(layer, smallest, hw, storage)
              or rf_violations(layer, smallest, hw, storage))
    why = "; ".join(broken) if broken else "no candidate mapping satisfies all constraints"
    return MappingError(f"layer {layer.name!r} ({layer.kind.value}, C={layer.C} M={layer.M} "
                        f"H={layer.H} W={layer.W} R={layer.R} S={layer.S}) cannot be mapped "
                        f"onto {hw.name!r}: {why}")

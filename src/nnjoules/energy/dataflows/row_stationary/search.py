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
`tests/test_search.py` checks the result against a brute force over every legal
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

    Tiles are sized for dense data (a compressed tile is never larger), so compression
    changes which mapping costs least, never which mappings fit.

    A convolution whose windows do not overlap (stride >= filter size, e.g. the 16 x 16
    patch embedding of ViT) but whose filter row does not fit a PE is mapped as the
    equivalent FC layer over its patches instead, which moves the same values.

    Raises:
        MappingError: no mapping is legal; the message names the layer and the
            constraint that even the smallest mapping breaks.
    """
    try:
        return _search(layer, hw, unit_energies(layer, hw, compression, gating, levels))
    except MappingError:
        lowered = lower_to_fc(layer)
        if lowered is None:
            raise
        return _search(lowered, hw, unit_energies(lowered, hw, compression, gating, levels))


def _search(layer: Layer, hw: Hardware, units: UnitEnergies) -> SearchResult:
    q_max, p_max = _rf_bounds(layer, hw)
    pe_limit = hw.pe_array.num_pes // layer.R
    q, r = _pairs(layer.C, q_max, pe_limit)
    p, t = _pairs(layer.M, p_max, pe_limit)
    if len(q) == 0 or len(p) == 0 or pe_limit < 1:
        raise _unmappable(layer, hw)
    psum_energy = _energy(channel_terms(layer, q=q, r=r), units)
    best: tuple[float, int, Mapping] | None = None
    evaluated = 0
    for n in _candidates(layer.N):
        for e in _candidates(layer.E):
            found = _best_for(layer, hw, units, int(n), int(e), (q, r, psum_energy), (p, t))
            if found is None:
                continue
            energy, pes, count, mapping = found
            evaluated += count
            if best is None or (energy, -pes) < (best[0], -best[1]):
                best = (energy, pes, mapping)
    if best is None:
        raise _unmappable(layer, hw)
    return SearchResult(mapping=best[2], energy=best[0], candidates=evaluated, mapped=layer)


def _rf_bounds(layer: Layer, hw: Hardware) -> tuple[int, int]:
    """Largest q and p the RF admits with the partner variable at 1."""
    prec, rf = layer.precision, hw.rf
    w_row = layer.S * prec.weight_bits
    i_row = layer.S_eff * prec.ifmap_bits
    if rf.size_bytes is not None:
        bits = 8 * rf.size_bytes
        return (bits - prec.ofmap_bits) // (w_row + i_row), (bits - i_row) // (w_row
                                                                                + prec.ofmap_bits)
    assert rf.ifmaps_bytes and rf.psums_bytes and rf.weights_bytes
    return (min(8 * rf.ifmaps_bytes // i_row, 8 * rf.weights_bytes // w_row),
            min(8 * rf.psums_bytes // prec.ofmap_bits, 8 * rf.weights_bytes // w_row))


def _best_for(layer: Layer, hw: Hardware, units: UnitEnergies, n: int, e: int,
              channel: tuple[np.ndarray, np.ndarray, np.ndarray],
              filters: tuple[np.ndarray, np.ndarray],
              ) -> tuple[float, int, int, Mapping] | None:
    """Best mapping with this (n, e); None when nothing with it is legal.

    The energy is a sum of parts that depend on (n, e), on (q, r) and on (e, m, p, t)
    alone (see `access_terms`); only the constraints couple them.
    """
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
    widest_tile = n * min(int((q * r).max()), layer.C) * rows * layer.W * prec.ifmap_bits
    ifmap_energy = _energy(filter_terms(layer, e=e, m=layer.M, p=p, t=t), units)
    fixed = _energy(batch_strip_terms(layer, n=n, e=e), units)
    if hw.glb.size_bits - widest_tile >= layer.M * psum_bits_per_filter:
        found = _best_single_chunk(layer, hw, (q, r, psum_energy), (p, t, ifmap_energy),
                                   sets_limit)
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
    # RF: the weight rows p*q*S couple p and q.
    w_bits = p * q * layer.S * prec.weight_bits
    if hw.rf.size_bytes is not None:
        ok = w_bits + q * layer.S_eff * prec.ifmap_bits + p * prec.ofmap_bits \
            <= 8 * hw.rf.size_bytes
    else:
        assert hw.rf.weights_bytes is not None
        ok = w_bits <= 8 * hw.rf.weights_bytes
    # GLB: the ifmap tile is fixed by (n, e, q*r); psums get the rest, which fixes m.
    ifmap_tile = n * np.minimum(q * r, layer.C) * rows * layer.W * prec.ifmap_bits
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


def _best_single_chunk(layer: Layer, hw: Hardware,
                       channel: tuple[np.ndarray, np.ndarray, np.ndarray],
                       filters: tuple[np.ndarray, np.ndarray, np.ndarray], sets_limit: int,
                       ) -> tuple[float, int, tuple[int, int, int, int]] | None:
    """Best (q, r, p, t) when the GLB never splits the filters (m = M for all).

    Then only the array (r*t <= sets_limit) and the RF (p <= p_max(q)) couple the
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
    p_limit = _p_limit(layer, hw, q)
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


def _p_limit(layer: Layer, hw: Hardware, q: np.ndarray) -> np.ndarray:
    """Largest p the RF admits beside q channels, per q."""
    prec, rf = layer.precision, hw.rf
    w_row = q * layer.S * prec.weight_bits
    if rf.size_bytes is not None:
        room = 8 * rf.size_bytes - q * layer.S_eff * prec.ifmap_bits
        return room // (w_row + prec.ofmap_bits)
    assert rf.weights_bytes is not None and rf.psums_bytes is not None
    return np.minimum(8 * rf.weights_bytes // w_row, 8 * rf.psums_bytes // prec.ofmap_bits)


def _unmappable(layer: Layer, hw: Hardware) -> MappingError:
    """The error for a layer no mapping fits: which constraint the smallest one breaks."""
    smallest = Mapping(m=1, n=1, e=1, p=1, q=1, r=1, t=1)
    broken = violations(layer, smallest, hw) or rf_violations(layer, smallest, hw)
    why = "; ".join(broken) if broken else "no candidate mapping satisfies all constraints"
    return MappingError(f"layer {layer.name!r} ({layer.kind.value}, C={layer.C} M={layer.M} "
                        f"H={layer.H} W={layer.W} R={layer.R} S={layer.S}) cannot be mapped "
                        f"onto {hw.name!r}: {why}")

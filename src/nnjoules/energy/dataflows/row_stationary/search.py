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

from collections.abc import Sequence
from functools import lru_cache

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
from nnjoules.energy.dataflows.row_stationary.selection import (
    StackedUnits,
    best_single_chunk,
    part_energy,
    ragged_join,
    undominated,
)
from nnjoules.energy.footprint import Storage, ifmap_tile_bits, weight_tile_bits, worst_row_nonzeros
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
    units = unit_energies(layer, hw, compression, gating, levels)
    return best_mappings(layer, hw, [units], Storage.of(compression, gating, levels))[0]


def legality_key(layer: Layer, storage: Storage) -> tuple[object, ...]:
    """What of ``layer`` decides which mappings are legal under ``storage``: its shape and
    bit-widths, and, where weights are kept compressed, its densest filter row (and
    whether it has weights at all, which sets the row peak of its FC lowering)."""
    if not any(op is Operand.WEIGHTS for _, op in storage.compressed):
        return (layer.shape_key, None)
    return (layer.shape_key, worst_row_nonzeros(layer), layer.density.weights > 0)


def best_mappings(layer: Layer, hw: Hardware, units: Sequence[UnitEnergies],
                  storage: Storage) -> list[SearchResult]:
    """`best_mapping` of ``layer``'s shape on ``hw`` under each costing of ``units``.

    The candidates and their access counts depend on the layer's `legality_key` under
    ``storage`` and on the hardware's sizes alone; the costings (from `unit_energies` of
    layers with this key, possibly with other densities, on hardware with these sizes
    and any costs, under rules whose `Storage.of` is ``storage``) only weigh them. One
    pass enumerates the candidates and weighs all costings at once; result k is exactly
    ``best_mapping`` under ``units[k]``. Lowering to FC keeps precision and densities, so
    the costings hold for the lowered layer too.

    Raises:
        MappingError: no mapping is legal (for any costing: legality ignores costs).
    """
    stacked = StackedUnits.of(units)
    try:
        return _search(layer, hw, stacked, storage)
    except MappingError:
        lowered = lower_to_fc(layer)
        if lowered is None:
            raise
        return _search(lowered, hw, stacked, storage)


def _search(layer: Layer, hw: Hardware, units: StackedUnits,
            storage: Storage) -> list[SearchResult]:
    q, r, p, t, p_limit = candidate_pairs(layer, hw, storage)
    if len(q) == 0 or len(p) == 0:
        raise _unmappable(layer, hw, storage)
    psum_energy = part_energy(channel_terms(layer, q=q, r=r), units, len(q))
    strips = [(int(n), int(e)) for n in _candidates(layer.N) for e in _candidates(layer.E)]
    floors = _floors(layer, units, strips, psum_energy, (p, t))
    best_energy = np.full(units.k, np.inf)
    best_pes = np.zeros(units.k, np.int64)
    best_at = np.zeros(units.k, np.int64)  # which (n, e): ties keep the earlier one
    best_vars = np.zeros((units.k, 7), np.int64)  # m n e p q r t, as in `Mapping`
    evaluated = 0
    # Most promising (n, e) first, so that the floors rule out the rest early.
    for at in np.argsort(floors[:, 0], kind="stable"):
        if np.all(floors[at] > best_energy * (1 + _MARGIN)):
            continue  # costs more than the best so far under every costing
        n, e = strips[at]
        found = _best_for(layer, hw, (units, storage, p_limit), n, e, (q, r, psum_energy),
                          (p, t))
        if found is None:
            continue
        energy, pes, count, variables = found
        # Lowest energy, then most active PEs, then the earlier (n, e).
        better = (energy < best_energy) | ((energy == best_energy) & (
            (pes > best_pes) | ((pes == best_pes) & (at < best_at))))
        if evaluated == 0:
            better[:] = True
        evaluated += count
        best_energy = np.where(better, energy, best_energy)
        best_pes = np.where(better, pes, best_pes)
        best_at = np.where(better, at, best_at)
        best_vars = np.where(better[:, None], variables, best_vars)
    if evaluated == 0:
        raise _unmappable(layer, hw, storage)
    return [SearchResult(mapping=Mapping(*(int(v) for v in variables)), energy=float(energy),
                         candidates=evaluated, mapped=layer)
            for energy, variables in zip(best_energy, best_vars, strict=True)]


# Relative slack on the floors: they add the same non-negative terms as the energies but
# in another order, so may round a few ulps (1e-16 each) above them.
_MARGIN = 1e-9


def _floors(layer: Layer, units: StackedUnits, strips: list[tuple[int, int]],
            psum_energy: np.ndarray, filters: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A lower bound on the energy of every mapping with each (n, e): shape (strips, K).

    The (n, e) terms, plus the cheapest channel split and the cheapest filter split of
    all (legal with this (n, e) or not) and a single filter chunk.
    """
    psum_floor = psum_energy.min(axis=1)
    ifmap_floor = {e: part_energy(filter_terms(layer, e=e, m=layer.M, p=filters[0], t=filters[1]),
                              units, len(filters[0])).min(axis=1)
                   for e in {e for _, e in strips}}
    n, e = (np.array(v, dtype=np.int64) for v in zip(*strips, strict=True))
    fixed = part_energy(batch_strip_terms(layer, n=n, e=e), units, len(strips))
    return (fixed + psum_floor[:, None]
            + np.stack([ifmap_floor[int(v)] for v in e], axis=1)).T


def candidate_pairs(layer: Layer, hw: Hardware, storage: Storage,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The (q, r) and (p, t) candidates the RF and the array admit, and p_limit[q].

    p_limit[q] is the largest p the RF admits beside q channels (0: q itself does not
    fit). Empty pairs when no mapping can fit.
    """
    qs = _candidates(layer.C)
    p_limits = _p_limits(layer, hw, storage, qs)
    p_limit = np.zeros(layer.C + 1, dtype=np.int64)
    p_limit[qs] = p_limits
    q_max = int(qs[p_limits >= 1].max()) if (p_limits >= 1).any() else 0
    pe_limit = hw.pe_array.num_pes // layer.R
    if pe_limit < 1:
        empty = np.empty(0, np.int64)
        return empty, empty, empty, empty, p_limit
    q, r = _pairs(layer.C, q_max, pe_limit)
    p, t = _pairs(layer.M, int(p_limit[1]), pe_limit)
    return q, r, p, t, p_limit


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


Found = tuple[np.ndarray, np.ndarray, int, np.ndarray]  # energy, PEs, candidates, variables


def _best_for(layer: Layer, hw: Hardware, rules: tuple[StackedUnits, Storage, np.ndarray],
              n: int, e: int, channel: tuple[np.ndarray, np.ndarray, np.ndarray],
              filters: tuple[np.ndarray, np.ndarray]) -> Found | None:
    """Best mapping with this (n, e) under each costing; None when nothing with it is legal.

    The energy is a sum of parts that depend on (n, e), on (q, r) and on (e, m, p, t)
    alone (see `access_terms`); only the constraints couple them. ``rules`` holds the
    unit energies, the storage rule and the RF's p limit per q (see `_search`). Returns
    per costing the energy (K,), active PEs (K,), the number of legal candidates and the
    variables (K, 7) in `Mapping` order.
    """
    units, storage, p_limit = rules
    prec = layer.precision
    sets_limit = hw.pe_array.num_pes // (layer.R * e)
    if sets_limit < 1:
        return None
    keep = channel[1] <= sets_limit
    q, r, psum_energy = channel[0][keep], channel[1][keep], channel[2][:, keep]
    keep = filters[1] <= sets_limit
    p, t = filters[0][keep], filters[1][keep]
    if len(q) == 0 or len(p) == 0:
        return None
    rows = ifmap_rows(layer, e)
    psum_bits_per_filter = n * e * layer.F * prec.ofmap_bits
    # Psums of all M filters fit beside the largest ifmap tile: one filter chunk for
    # every candidate, so (p, t) pairs can be pruned like (q, r) pairs.
    widest_tile = ifmap_tile_bits(layer, n * min(int((q * r).max()), layer.C) * rows * layer.W,
                                  Level.GLB, storage)
    ifmap_energy = part_energy(filter_terms(layer, e=e, m=layer.M, p=p, t=t), units, len(p))
    fixed = part_energy(batch_strip_terms(layer, n=n, e=e), units, 1)
    every = np.arange(units.k)
    if hw.glb.size_bits - widest_tile >= layer.M * psum_bits_per_filter:
        found = best_single_chunk((q, r, psum_energy), (p, t, ifmap_energy), sets_limit,
                                   p_limit[q])
        if found is None:
            return None
        energy, count, (qk, rk, pk, tk) = found
        variables = np.stack([np.full(units.k, layer.M), np.full(units.k, n),
                              np.full(units.k, e), pk, qk, rk, tk], axis=1)
        return fixed[:, 0] + energy, layer.R * e * rk * tk, count, variables
    order = np.argsort(t, kind="stable")
    p, t, ifmap_energy = p[order], t[order], ifmap_energy[:, order]
    i, j = ragged_join(sets_limit // r, t)
    if len(i) == 0:
        return None
    q, r, p, t = q[i], r[i], p[j], t[j]
    # RF: the weight rows p*q couple p and q.
    ok = p <= p_limit[q]
    # GLB: the ifmap tile is fixed by (n, e, q*r); psums get the rest, which fixes m.
    ifmap_tile = ifmap_tile_bits(layer, n * np.minimum(q * r, layer.C) * rows * layer.W,
                                 Level.GLB, storage)
    m_cap = (hw.glb.size_bits - ifmap_tile) // psum_bits_per_filter
    pt = p * t
    m = np.where(m_cap >= layer.M, layer.M, (m_cap // pt) * pt)
    ok &= m >= 1
    legal = int(ok.sum())
    if legal == 0:
        return None
    chunks = -(-layer.M // np.maximum(m, 1))  # ceil(M/m); m = 0 is illegal, masked out
    if units.k > 1:  # weighing K costings: first drop what loses under every costing
        ok &= undominated(i, p, t, chunks, ok)
    i, j, q, r, p, t, m, chunks = (a[ok] for a in (i, j, q, r, p, t, m, chunks))
    # ifmap_energy assumed one filter chunk; add the DRAM re-reads of further chunks.
    dram_ifmap = units.read[Level.DRAM, Operand.IFMAPS] * layer.G * layer.N * layer.C \
        * layer.W * rows_read(layer, e)
    energy = (fixed + psum_energy[:, i]
              + ifmap_energy[:, j] + dram_ifmap * (chunks - 1))
    pes = layer.R * e * r * t
    # Lowest energy, then most active PEs, then the first in enumeration order.
    lowest = energy == energy.min(axis=1, keepdims=True)
    k = np.argmax(np.where(lowest, pes, -1), axis=1)
    variables = np.stack([m[k], np.full(units.k, n), np.full(units.k, e), p[k], q[k], r[k],
                          t[k]], axis=1)
    return energy[every, k], pes[k], legal, variables


def _unmappable(layer: Layer, hw: Hardware, storage: Storage) -> MappingError:
    """The error for a layer no mapping fits: which constraint the smallest one breaks."""
    smallest = Mapping(m=1, n=1, e=1, p=1, q=1, r=1, t=1)
    broken = (violations(layer, smallest, hw, storage)
              or rf_violations(layer, smallest, hw, storage))
    why = "; ".join(broken) if broken else "no candidate mapping satisfies all constraints"
    return MappingError(f"layer {layer.name!r} ({layer.kind.value}, C={layer.C} M={layer.M} "
                        f"H={layer.H} W={layer.W} R={layer.R} S={layer.S}) cannot be mapped "
                        f"onto {hw.name!r}: {why}")

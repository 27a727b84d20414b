"""Choosing among many candidate mappings at once, for the row-stationary search.

Helpers of :mod:`nnjoules.energy.dataflows.row_stationary.search` that work on whole
candidate arrays under K costings at a time (`StackedUnits`): the energy of a part of
the access terms, pruning of candidates no costing can choose, the ragged join of the
channel and filter splits, and the prefix minimum over a budget grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nnjoules.energy.cost import UnitEnergies, UnitKey


@dataclass(frozen=True)
class StackedUnits:
    """The per-access energies of K costings of one layer shape, searched together.

    Each value is a float array of shape (K, 1), so that a term's counts over
    candidates (shape (C,)) times it give the K rows of energies (shape (K, C)) with
    exactly the arithmetic of one costing: row k equals the search under ``units[k]``.
    """

    read: dict[UnitKey, np.ndarray]
    write: dict[UnitKey, np.ndarray]

    @classmethod
    def of(cls, units: Sequence[UnitEnergies]) -> StackedUnits:
        """Stack ``units`` (at least one), rows in the order given."""
        keys = units[0].read.keys()
        return cls(read={k: np.array([u.read[k] for u in units])[:, None] for k in keys},
                   write={k: np.array([u.write[k] for u in units])[:, None] for k in keys})

    @property
    def k(self) -> int:
        """Number of costings stacked."""
        return len(next(iter(self.read.values())))


def part_energy(terms: tuple[dict, dict], units: StackedUnits, width: int) -> np.ndarray:
    """Energy of a part of the access terms under K costings: shape (K, width)."""
    reads, writes = terms
    total = (sum(count * units.read[key] for key, count in reads.items())
             + sum(count * units.write[key] for key, count in writes.items()))
    return np.broadcast_to(total, (units.k, width))


def ragged_join(bounds: np.ndarray, sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) with sorted_keys[j] <= bounds[i] (keys sorted ascending)."""
    lengths = np.searchsorted(sorted_keys, bounds, side="right")
    left = np.repeat(np.arange(len(bounds)), lengths)
    starts = np.cumsum(lengths) - lengths
    right = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    return left, right


def undominated(i: np.ndarray, p: np.ndarray, t: np.ndarray, chunks: np.ndarray,
                 ok: np.ndarray) -> np.ndarray:
    """Legal candidates that can win under some costing (a mask over all candidates).

    With the same channel split (same i) and the same p, a larger t reads the GLB no
    more often (``ceil(ceil(M/p)/t)``), moves the same array traffic, keeps more PEs
    busy, and wins under *every* non-negative costing (rounding is monotone, so also in
    floating point; more PEs break a tie) unless it needs more filter chunks. So a
    candidate can win only if every larger t of its (i, p) needs strictly more chunks.
    """
    where = np.flatnonzero(ok)
    li, lp, lt, lc = i[where], p[where], t[where], chunks[where]
    # One int64 key (fits: i < 2**16 candidates, p and t <= 2**16): (i, p), t descending.
    top = int(lt.max())
    segment_key = li * (int(lp.max()) + 1) + lp
    order = np.argsort(segment_key * (top + 1) + (top - lt))
    segment_key, lc = segment_key[order], lc[order]
    start = np.ones(len(order), bool)
    start[1:] = segment_key[1:] != segment_key[:-1]
    segment = np.cumsum(start) - 1
    # A running minimum of chunks within each (i, p): earlier segments are lifted above
    # every later one, so the running minimum never reaches across segments.
    lifted = lc + (segment[-1] - segment) * (int(lc.max()) + 1)
    before = np.minimum.accumulate(lifted)
    keep = np.ones(len(order), bool)
    keep[1:] = start[1:] | (lifted[1:] < before[:-1])
    mask = np.zeros(len(ok), bool)
    mask[where[order[keep]]] = True
    return mask


def best_single_chunk(channel: tuple[np.ndarray, np.ndarray, np.ndarray],
                       filters: tuple[np.ndarray, np.ndarray, np.ndarray], sets_limit: int,
                       p_limit: np.ndarray,
                       ) -> tuple[np.ndarray, int, tuple[np.ndarray, ...]] | None:
    """Best (q, r, p, t) per costing when the GLB never splits the filters (m = M for all).

    Then only the array (r*t <= sets_limit) and the RF (p <= p_limit, per q) couple the
    channel split and the filter split, and both are prefix conditions: the best
    filter split for a budget of t sets and p filters is a 2-D prefix minimum.
    """
    q, r, psum_energy = channel
    p, t, ifmap_energy = filters
    k = psum_energy.shape[0]
    ps = np.unique(p)
    # Columns: the values of t, and the budgets sets_limit // r that are looked up; a
    # running minimum over other columns would only carry the values along.
    ts = np.unique(np.concatenate([t, sets_limit // r]))
    width = len(ts)
    grid = np.full((k, len(ps), width), np.inf)
    pi, ti = np.searchsorted(ps, p), np.searchsorted(ts, t)
    grid[:, pi, ti] = ifmap_energy  # (p, t) pairs are distinct
    # best[:, i, y]: least ifmap energy with p <= ps[i] and t <= ts[y]; where: which.
    filled = np.zeros(len(ps) * width, bool)
    filled[pi * width + ti] = True
    index = np.where(filled, np.arange(filled.size), -1).reshape(len(ps), width)
    best, where = grid, np.broadcast_to(index, grid.shape)
    for axis in (1, 2):
        best, where = prefix_argmin(best, where, axis)
    row = np.searchsorted(ps, p_limit, side="right") - 1
    ok = row >= 0
    col = np.searchsorted(ts, sets_limit // r)
    total = np.full((k, len(q)), np.inf)
    total[:, ok] = psum_energy[:, ok] + best[:, row[ok], col[ok]]
    legal = np.isfinite(total[0])  # legality does not depend on the costing
    if not legal.any():
        return None
    chosen = np.argmin(total, axis=1)
    cell = where[np.arange(k), row[chosen], col[chosen]]
    return (total[np.arange(k), chosen], int(legal.sum()),
            (q[chosen], r[chosen], ps[cell // width], ts[cell % width]))


def prefix_argmin(best: np.ndarray, where: np.ndarray, axis: int,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Running minimum along ``axis`` that also carries where each minimum came from.

    A cell keeps its own origin unless an earlier cell is strictly lower (ties keep
    the later cell, as a running strict comparison would).
    """
    running = np.minimum.accumulate(best, axis=axis)
    shape = [1] * best.ndim
    shape[axis] = best.shape[axis]
    positions = np.arange(best.shape[axis]).reshape(shape)
    last_own = np.maximum.accumulate(np.where(best == running, positions, 0), axis=axis)
    return running, np.take_along_axis(where, last_own, axis=axis)

"""The Pareto front of a set of points, every objective to be minimised.

A point is on the front when no other point is at least as good in every objective and
strictly better in one. Points with equal objectives do not dominate each other, so all
copies of a front vector are on the front.

Example: energy against on-chip storage; (3, 30) is beaten by (2, 20) in both.

    >>> pareto_mask([(1.0, 40), (2.0, 20), (3.0, 30), (4.0, 10), (2.0, 20)])
    [True, True, False, True, True]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pareto_mask(vectors: Sequence[Sequence[float]]) -> list[bool]:
    """Which of ``vectors`` are on the Pareto front (all objectives minimised).

    Sorting the distinct vectors lexicographically puts every dominating vector before
    the ones it dominates, so each vector is checked only against the front so far
    (dominance is transitive): O(n x front size) comparisons, vectorised.

    Args:
        vectors: one tuple of objective values per point, all of the same length.

    Returns:
        One flag per vector, in the order given.

    Raises:
        ValueError: vectors of different lengths, or a NaN objective.
    """
    distinct = sorted(set(map(tuple, vectors)))
    if not distinct:
        return []
    if len({len(v) for v in distinct}) != 1:
        raise ValueError("every point needs the same number of objectives")
    table = np.asarray(distinct, dtype=float)
    if np.isnan(table).any():
        raise ValueError("an objective is NaN: the Pareto front is undefined")
    front = np.empty((0, table.shape[1]))
    on_front = set()
    for row, vector in zip(table, distinct, strict=True):
        # Distinct vectors: "<= in every objective" already means dominated.
        if not np.all(front <= row, axis=1).any():
            front = np.vstack((front, row))
            on_front.add(vector)
    return [tuple(v) in on_front for v in vectors]

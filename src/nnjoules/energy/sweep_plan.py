"""Cut a sweep's grid into chunks: contiguous runs of points that are grids themselves.

A grid is the product of its parameters' value lists, the last varying fastest. A
`Chunk` holds the leading parameters at one value each, takes a slice of the next
one's values and all values of the rest, so it is a product grid that the sweep engine
(`nnjoules.energy.sweep.sweep`) evaluates in one call, and its points are a contiguous
range of grid indices. Chunks are the unit of work sent to a worker and the unit of
writes to a streamed CSV; a resumed sweep plans from its first missing point.

Example: 3 x 4 points cut into chunks of at most 6, from point 2 on.

    >>> [(c.start, c.size, c.fixed, c.axis, c.lo, c.hi) for c in plan_chunks((3, 4), 2, 12, 6)]
    [(2, 2, (0,), 1, 2, 4), (4, 4, (), 0, 1, 2), (8, 4, (), 0, 2, 3)]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Chunk:
    """Grid points ``start`` .. ``start + size - 1``, as a product grid.

    Attributes:
        start: grid index of the first point.
        size: number of points.
        fixed: value positions of the parameters before ``axis``, held at one value.
        axis: the parameter whose values ``lo`` .. ``hi - 1`` (positions) the chunk takes;
            every parameter after it takes all its values.
        lo: first value position of ``axis``.
        hi: one past the last value position of ``axis``.
    """

    start: int
    size: int
    fixed: tuple[int, ...]
    axis: int
    lo: int
    hi: int


def grid_size(sizes: Sequence[int]) -> int:
    """Points in a grid whose parameters have ``sizes`` values each."""
    return math.prod(sizes)


def plan_chunks(sizes: Sequence[int], start: int, stop: int, target: int) -> list[Chunk]:
    """Cover grid indices ``start`` .. ``stop - 1`` with chunks of at most ``target`` points.

    Greedy: each chunk is the largest product block that starts at the next point, stays
    inside the range and holds at most ``target`` points.

    Args:
        sizes: number of values of each parameter, in grid order (the last fastest).
        start: first grid index to cover.
        stop: one past the last grid index to cover (at most ``grid_size(sizes)``).
        target: most points per chunk (at least 1).

    Raises:
        ValueError: an empty parameter list, a bad range or a target below 1.
    """
    total = grid_size(sizes)
    if not sizes or target < 1 or not 0 <= start <= stop <= total:
        raise ValueError(f"cannot cut points {start}..{stop} of a grid of {total} into "
                         f"chunks of {target}")
    strides = [math.prod(sizes[j + 1:]) for j in range(len(sizes))]
    chunks = []
    at = start
    while at < stop:
        for axis, stride in enumerate(strides):  # the last axis (stride 1) always fits
            digit = (at // stride) % sizes[axis]
            steps = min(sizes[axis] - digit, (stop - at) // stride, target // stride)
            if at % stride == 0 and steps >= 1:
                break
        fixed = tuple((at // strides[i]) % sizes[i] for i in range(axis))
        chunks.append(Chunk(at, steps * stride, fixed, axis, digit, digit + steps))
        at += steps * stride
    return chunks


def chunk_grid(parameters: Sequence[tuple[str, tuple[Any, ...]]],
               chunk: Chunk) -> dict[str, tuple[Any, ...]]:
    """The sub-grid of ``chunk``: parameter name -> its values within the chunk.

    >>> chunk_grid([("glb_kb", (32, 64)), ("bits", (8, 16, 4))], Chunk(4, 2, (1,), 1, 1, 3))
    {'glb_kb': (64,), 'bits': (16, 4)}
    """
    grid = {}
    for position, (name, values) in enumerate(parameters):
        if position < chunk.axis:
            grid[name] = (values[chunk.fixed[position]],)
        elif position == chunk.axis:
            grid[name] = values[chunk.lo:chunk.hi]
        else:
            grid[name] = values
    return grid

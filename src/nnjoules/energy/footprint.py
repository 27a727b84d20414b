"""Storage footprint: how many bits a tile occupies in the GLB or a scratch pad.

The mapping search asks whether a mapping's tiles fit; with compressed storage the
answer depends on the zeros of the chunk actually held, which the search must bound
without knowing the data. The rule (docs/model.md §5, "Compressed tiles"):

* **Where data is kept compressed.** The GLB keeps weights and ifmaps compressed when
  its outgoing moves are (`CompressionLevels` ``dram,glb`` and ``all``); the RF
  scratch pads when the array's moves are (``all``), and the weight pad also under
  `Gating` ``compressed-weights`` (Eyeriss v2 stores weights without their zeros).
  Psums are always raw. The format is the chosen `Compression`.
* **Worst-case chunk.** Weights are known ahead of time: every chunk a row-stationary
  mapping moves is made of whole filter rows (``S`` weights of one filter, channel and
  kernel row), so a chunk of ``k`` rows holds at most ``k * floor(peak * S)``
  non-zeros, with ``peak = Density.weights_row_peak`` (the densest row; 1.0 when
  unknown). Ifmaps are found at run time: no bound is known, so their chunks are taken
  as dense.
* **Format size.** For ``V`` values of ``b`` bits with at most ``z`` non-zeros: raw
  ``V * b``; significance map ``V + z * b``; run-length coding (5-bit runs, three
  pairs and one termination bit to a word of ``3 * (5 + b) + 1`` bits) at most
  ``z + ceil((V - z) / 32)`` pairs, in whole words. A chunk whose worst case would
  not shrink is kept raw (a static choice per layer, level and operand), so a tile
  never needs more room than raw: dense data fits exactly as without compression.

Every function accepts ints or numpy int64 arrays (the search evaluates many tiles at
once) and returns exact integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from nnjoules.energy.cost import (
    RLC_PAIRS_PER_TERMINATION_BIT,
    RLC_RUN_BITS,
    Compression,
    CompressionLevels,
    Gating,
)
from nnjoules.energy.hardware import Level
from nnjoules.energy.workload import Layer, Operand

Count = TypeVar("Count", int, np.ndarray)


@dataclass(frozen=True)
class Storage:
    """Which (level, operand) pairs are kept compressed, and in which format.

    Attributes:
        compression: the format of compressed data.
        compressed: the (level, operand) pairs kept compressed (GLB and RF only).
    """

    compression: Compression = Compression.NONE
    compressed: frozenset[tuple[Level, Operand]] = frozenset()

    @classmethod
    def of(cls, compression: Compression, gating: Gating,
           levels: CompressionLevels) -> Storage:
        """The storage the rules imply (see the module docstring).

        >>> s = Storage.of(Compression.RLC, Gating.COMPRESSED_WEIGHTS, CompressionLevels.DRAM)
        >>> sorted((lv.value, op.value) for lv, op in s.compressed)
        [('rf', 'weights')]
        """
        kept: set[tuple[Level, Operand]] = set()
        data = (Operand.WEIGHTS, Operand.IFMAPS)
        if Level.GLB in levels.levels:
            kept.update((Level.GLB, op) for op in data)
        if Level.ARRAY in levels.levels:
            kept.update((Level.RF, op) for op in data)
        if gating is Gating.COMPRESSED_WEIGHTS:
            kept.add((Level.RF, Operand.WEIGHTS))
        if compression is Compression.NONE:
            kept.clear()  # no format: a compressed tile is a raw one
        return cls(compression=compression, compressed=frozenset(kept))


RAW = Storage()


def worst_row_nonzeros(layer: Layer) -> int:
    """Most non-zero weights any filter row of ``layer`` holds: floor(peak * S).

    >>> from nnjoules.energy.workload import Density, LayerKind
    >>> conv = Layer("c", LayerKind.CONV, N=1, M=2, C=2, H=3, W=3, R=3, S=3, E=1, F=1)
    >>> worst_row_nonzeros(conv.with_density(Density(weights=0.4, weights_row_peak=2 / 3)))
    2
    """
    # the slack absorbs float rounding of a measured peak (count / S)
    return min(layer.S, math.floor(layer.density.weights_row_peak * layer.S + 1e-9))


def compressed_bits(values: Count, nonzeros: Count, bits: int,
                    compression: Compression) -> Count:
    """Most bits ``values`` values of ``bits`` bits, ``nonzeros`` at most non-zero, take
    in ``compression`` (no raw fallback; see `tile_bits`).

    >>> compressed_bits(12, 4, 16, Compression.SIGNIFICANCE_MAP)  # 12 map bits + 4 x 16
    76
    >>> compressed_bits(40, 4, 16, Compression.RLC)  # 4 + ceil(36/32) = 6 pairs, 2 words
    128
    """
    if compression is Compression.NONE:
        return values * bits
    if compression is Compression.SIGNIFICANCE_MAP:
        return values + nonzeros * bits
    zeros_per_pair = 2 ** RLC_RUN_BITS
    pairs = nonzeros - (-(values - nonzeros) // zeros_per_pair)
    per_word = RLC_PAIRS_PER_TERMINATION_BIT
    return -(-pairs // per_word) * (per_word * (RLC_RUN_BITS + bits) + 1)


def tile_bits(values: Count, nonzeros: Count, bits: int, compressed: bool,
              compression: Compression) -> Count:
    """Bits a tile occupies: raw, or the smaller of raw and its worst compressed size."""
    raw = values * bits
    if not compressed:
        return raw
    worst = compressed_bits(values, nonzeros, bits, compression)
    if isinstance(raw, np.ndarray) or isinstance(worst, np.ndarray):
        return np.minimum(raw, worst)
    return min(raw, worst)


def weight_tile_bits(layer: Layer, rows: Count, level: Level, storage: Storage) -> Count:
    """Bits that ``rows`` filter rows of ``layer``'s weights occupy at ``level``."""
    return tile_bits(rows * layer.S, rows * worst_row_nonzeros(layer),
                     layer.precision.weight_bits, (level, Operand.WEIGHTS) in storage.compressed,
                     storage.compression)


def ifmap_tile_bits(layer: Layer, values: Count, level: Level, storage: Storage) -> Count:
    """Bits that ``values`` ifmap values occupy at ``level``: dense, as no bound is known."""
    return tile_bits(values, values, layer.precision.ifmap_bits,
                     (level, Operand.IFMAPS) in storage.compressed, storage.compression)

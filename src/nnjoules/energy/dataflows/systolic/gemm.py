"""A layer as a matrix product on a systolic array: the GEMM view, folds and buffers.

**GEMM view (im2col).** Per group, a layer is the product of an ``[T, K]`` ifmap matrix
and a ``[K, M]`` filter matrix into a ``[T, M]`` ofmap matrix, with ``T = N*E*F`` output
positions, ``K = C*R*S`` values per window and ``M`` filters. Column ``k`` of the ifmap
matrix is the filter tap ``(r, s, c)`` with the channel fastest (``k = (r*S + s)*C + c``),
the order of SCALE-Sim's ``operand_matrix`` (an NHWC im2col); it decides which taps share
a fold and so which ifmap values a fold touches.

**Folds.** An ``rows x cols`` array holds one tile of a matrix at a time: a weight-
stationary array pins a ``rows x cols`` tile of the filter matrix (``K`` on rows, ``M``
on columns), an output-stationary one a ``rows x cols`` tile of the ofmap matrix (``T``
on rows, ``M`` on columns). A *fold* is one such tile; the last fold along a dimension
may be partial.

**Buffers.** SCALE-Sim's accelerator has three SRAMs (ifmap, filter, ofmap) between DRAM
and the array; our hardware has one global buffer (GLB), so a dataflow splits the GLB
between the three by `BufferSplit` (default 2:2:1, the proportions of SCALE-Sim's default
256/256/128 kB). Each SRAM is double-buffered (SCALE-Sim's ``active_buf_frac = 0.5``): half
of it holds what the array is using while the other half is filled, so data is reused
from a buffer only when it fits in *half* of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from nnjoules.energy.hardware.spec import Hardware
from nnjoules.energy.workload import Layer, LayerKind  # noqa: F401  (doctest)


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for positive integers."""
    return -(-a // b)


@dataclass(frozen=True)
class Gemm:
    """One group's matrix product: ``[T, K] x [K, M]``."""

    T: int  # output positions, N * E * F
    K: int  # window size, C * R * S
    M: int  # filters

    @staticmethod
    def of(layer: Layer) -> Gemm:
        """The GEMM view of one group of ``layer``.

        >>> Gemm.of(Layer("c", LayerKind.CONV, N=2, M=5, C=3, H=6, W=6, R=3, S=3, E=4, F=4))
        Gemm(T=32, K=27, M=5)
        """
        return Gemm(T=layer.N * layer.E * layer.F, K=layer.C * layer.R * layer.S, M=layer.M)


def fold_sizes(total: int, per_fold: int) -> list[int]:
    """Sizes of the folds of ``total`` items, ``per_fold`` at a time (the last partial).

    >>> fold_sizes(10, 4)
    [4, 4, 2]
    """
    folds = ceil_div(total, per_fold)
    return [per_fold] * (folds - 1) + [total - per_fold * (folds - 1)]


@dataclass(frozen=True)
class BufferSplit:
    """How a dataflow divides the GLB between its ifmap, filter and ofmap SRAMs.

    Weights of the three parts; each SRAM gets ``GLB size * part / sum``, rounded down to
    whole bytes.
    """

    ifmaps: int = 2
    filters: int = 2
    ofmaps: int = 1

    def __post_init__(self) -> None:
        for name in ("ifmaps", "filters", "ofmaps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"buffer split {name} must be a positive integer, "
                                 f"got {value!r}")

    def bytes_of(self, hw: Hardware) -> tuple[int, int, int]:
        """Bytes of the ifmap, filter and ofmap SRAMs of ``hw``.

        >>> from nnjoules.energy.hardware import eyeriss
        >>> BufferSplit().bytes_of(eyeriss())  # 108 kB in 2:2:1
        (44236, 44236, 22118)
        """
        total = self.ifmaps + self.filters + self.ofmaps
        size = hw.glb.size_bytes
        return (size * self.ifmaps // total, size * self.filters // total,
                size * self.ofmaps // total)

    def usable_values(self, hw: Hardware, layer: Layer) -> tuple[int, int, int]:
        """Values of ifmaps, weights and psums that half of each SRAM holds (double buffer)."""
        prec = layer.precision
        i, f, o = self.bytes_of(hw)
        return (8 * i // 2 // prec.ifmap_bits, 8 * f // 2 // prec.weight_bits,
                8 * o // 2 // prec.ofmap_bits)


def ifmap_values_touched(layer: Layer, k_start: int, k_stop: int) -> int:
    """Distinct ifmap values (one group, all N items) that im2col columns ``[k_start,
    k_stop)`` read, over all output rows.

    >>> conv = Layer("c", LayerKind.CONV, N=1, M=1, C=2, H=5, W=5, R=3, S=3, E=3, F=3)
    >>> ifmap_values_touched(conv, 0, 2)  # tap (0, 0) of both channels: 3x3 each
    18
    >>> ifmap_values_touched(conv, 1, 4)  # (0, 0) of channel 1, (0, 1) of both: 12 + 9
    21
    >>> ifmap_values_touched(conv, 0, 18)  # every tap of both channels: all 5x5 each
    50
    """
    return ifmap_values_in_block(layer, 0, layer.N * layer.E * layer.F, k_start, k_stop)


def ifmap_values_for_outputs(layer: Layer, t_start: int, t_stop: int) -> int:
    """Distinct ifmap values (one group) that output rows ``[t_start, t_stop)`` of the
    ifmap matrix read, over all columns; row ``t`` is output ``(n, e, f)`` in raster order.

    >>> conv = Layer("c", LayerKind.CONV, N=2, M=1, C=2, H=5, W=5, R=3, S=3, E=3, F=3)
    >>> ifmap_values_for_outputs(conv, 0, 1)  # one 3x3 window of 2 channels
    18
    >>> ifmap_values_for_outputs(conv, 8, 10)  # the last output of image 0, the first of 1
    36
    """
    return ifmap_values_in_block(layer, t_start, t_stop, 0, layer.C * layer.R * layer.S)


def ifmap_values_in_block(layer: Layer, t_start: int, t_stop: int, k_start: int,
                          k_stop: int) -> int:
    """Distinct ifmap values (one group) in rows ``[t_start, t_stop)`` and columns
    ``[k_start, k_stop)`` of the ifmap matrix.

    With the channel fastest, channel ``c`` gets the filter positions ``rs = k // C`` of a
    contiguous run, one shorter at either end for the channels before ``k_start % C`` or
    after ``(k_stop - 1) % C``: at most four kinds of channel. Per image, each reads the
    union of the windows its positions and the block's outputs make.
    """
    C, ef, geometry = layer.C, layer.E * layer.F, _geometry(layer)
    first, last = k_start // C, (k_stop - 1) // C
    lo, hi = k_start % C, (k_stop - 1) % C
    if first == last:
        kinds = {(first, last): hi - lo + 1}
    else:  # channels before lo start one position later, after hi end one earlier
        kinds = {(first, last): max(0, hi - lo + 1), (first + 1, last): min(lo, hi + 1),
                 (first, last - 1): C - max(lo, hi + 1),
                 (first + 1, last - 1): max(0, lo - hi - 1)}
    total = 0
    for n in range(t_start // ef, ceil_div(t_stop, ef)):
        out_lo, out_hi = max(t_start - n * ef, 0), min(t_stop - n * ef, ef)
        total += sum(channels * _union(geometry, layer.R, layer.S, out_lo, out_hi, a, b)
                     for (a, b), channels in kinds.items() if channels and a <= b)
    return total


def _geometry(layer: Layer) -> tuple[int, ...]:
    return (layer.H, layer.W, layer.E, layer.F, *layer.stride, *layer.dilation)


@lru_cache(maxsize=8192)
def _union(geometry: tuple[int, ...], R: int, S: int, lo: int, hi: int, first: int,
           last: int) -> int:
    """Ifmap positions of one channel of one image read by outputs ``lo..hi-1`` (raster)
    through filter positions ``first..last`` (``r*S + s``).

    All outputs: each position marks a strided grid. Else the outputs, placed at their
    windows' corners, are dilated by the positions: by the filter's rows, then its
    columns when all positions take part (``R + S`` shifts), else one shift each.
    """
    H, W, E, F, u, v, dh, dw = geometry
    seen = np.zeros((H, W), dtype=bool)
    if (lo, hi) == (0, E * F):
        for rs in range(first, last + 1):
            r, s = divmod(rs, S)
            seen[r * dh:r * dh + (E - 1) * u + 1:u, s * dw:s * dw + (F - 1) * v + 1:v] = True
        return int(seen.sum())
    outputs = np.zeros((E, F), dtype=bool)
    outputs.reshape(-1)[lo:hi] = True
    corners = np.zeros((H, W), dtype=bool)
    corners[0:(E - 1) * u + 1:u, 0:(F - 1) * v + 1:v] = outputs
    if (first, last) == (0, R * S - 1):
        tall = np.zeros((H, W), dtype=bool)
        for r in range(R):
            tall[r * dh:, :] |= corners[:H - r * dh, :]
        for s in range(S):
            seen[:, s * dw:] |= tall[:, :W - s * dw]
        return int(seen.sum())
    for rs in range(first, last + 1):
        r, s = divmod(rs, S)
        seen[r * dh:, s * dw:] |= corners[:H - r * dh, :W - s * dw]
    return int(seen.sum())

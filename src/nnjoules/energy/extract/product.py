"""The shape of one modelled product, as both importers find it (before it is a `Layer`).

Both importers lower every convolution onto the shapes the row-stationary dataflow maps
(a 2-D convolution, or an FC layer) with the functions here, so that a network read from
PyTorch and from its ONNX export gives the same layers (docs/model.md, "Lowerings").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nnjoules.energy.workload import LayerKind

__all__ = ["ProductShape", "conv_letters", "has_zero_dim", "transposed_conv_letters",
           "transposed_overlaps"]


@dataclass(frozen=True, eq=False)
class ProductShape:
    """Eyeriss shape letters of a convolution, FC layer or matrix product.

    Each importer subclasses it with what it needs to measure densities (tensors for
    PyTorch, initializer names for ONNX). Compared by identity: two products with the
    same shape are still two layers. ``lowering`` names how a construct the dataflow
    does not map directly was rewritten (``"transposed"``, ``"3d"``), empty otherwise.
    """

    kind: LayerKind
    N: int
    M: int
    C: int
    G: int = 1
    H: int = 1
    W: int = 1
    R: int = 1
    S: int = 1
    E: int = 1
    F: int = 1
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    lowering: str = ""


def has_zero_dim(p: ProductShape) -> bool:
    """Whether ``p`` ran on an empty tensor (0 rows, channels ...): it does no MAC.

    Only the operands' sizes count: an output size below 1 computed from them is an
    invalid layer (a kernel larger than its input), which `Layer` rejects.
    """
    return any(getattr(p, letter) == 0 for letter in ("N", "M", "C", "G", "H", "W", "R", "S"))


def conv_letters(*, n: int, c: int, m: int, groups: int, size: Sequence[int],
                 kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
                 pads: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """Shape letters of a 1-, 2- or 3-D convolution, as keyword arguments of a product.

    ``c`` and ``m`` are the input channels and filters *per group*; the other sequences
    have one entry per spatial axis (``pads``: (begin, end) per axis).

    * 1-D: a 1 x L image (H = R = E = 1).
    * 2-D: as is.
    * 3-D: ``[N, G*M, D', E, F] = conv3d([N, G*C, D, H, W], [G*M, C, T, R, S])`` is lowered
      to the 2-D convolution ``[N*D', G*M, E, F] = conv2d([N*D', G*C*T, H, W],
      [G*M, C*T, R, S])``: each output depth slice sums T input depth slices, which
      become T times more channels. MACs and weights are exact; an input slice that
      several output slices read is counted once per reader (re-read, not reused).

    >>> d = conv_letters(n=1, c=2, m=4, groups=1, size=(5, 6, 6), kernel=(3, 3, 3),
    ...                  stride=(1, 1, 1), dilation=(1, 1, 1), pads=((0, 0),) * 3)
    >>> (d["N"], d["C"], d["E"], d["F"])  # D' = 3 output slices, C*T = 6
    (3, 6, 4, 4)
    """
    sizes = [s + b + e for s, (b, e) in zip(size, pads, strict=True)]
    outs = [(s - d * (k - 1) - 1) // u + 1
            for s, k, u, d in zip(sizes, kernel, stride, dilation, strict=True)]
    lowering = ""
    if len(size) == 1:  # one row
        sizes, outs, kernel = [1, *sizes], [1, *outs], [1, *kernel]
        stride, dilation, pads = [1, *stride], [1, *dilation], [(0, 0), *pads]
    elif len(size) == 3:  # output depth slices become images, kernel depth channels
        n, c, lowering = n * max(outs[0], 1), c * kernel[0], "3d"
        if outs[0] < 1:  # a kernel deeper than the input: keep the layer invalid
            outs[1] = outs[0]
        sizes, outs, kernel = sizes[1:], outs[1:], kernel[1:]
        stride, dilation, pads = stride[1:], dilation[1:], pads[1:]
    return {"kind": LayerKind.CONV, "N": n, "M": m, "C": c, "G": groups, "H": sizes[0],
            "W": sizes[1], "R": kernel[0], "S": kernel[1], "E": outs[0], "F": outs[1],
            "stride": (stride[0], stride[1]), "dilation": (dilation[0], dilation[1]),
            "padding": (*pads[0], *pads[1]), "lowering": lowering}


def transposed_conv_letters(*, n: int, c: int, m: int, groups: int, size: Sequence[int],
                            kernel: Sequence[int]) -> dict[str, Any]:
    """Shape letters of a transposed convolution of any rank, lowered to an FC layer.

    ``[N, G*M, ...] = conv_transpose([N, G*C, *size], [G*C, M, *kernel])`` multiplies
    every input value by every filter tap and adds the products into the output window
    the input position selects (GEMM + col2im, as PyTorch's own kernel runs it). The
    products are the FC layer ``[N*prod(size), M*prod(kernel)] = [N*prod(size), C] @
    [C, M*prod(kernel)]`` per group: exact MACs (those of ``FlopCounterMode``), weights
    and ifmap values, and no multiplication by the zeros a stride would insert. When
    windows overlap (`transposed_overlaps`) the col2im sum of overlapping products is
    element-wise work, reported as unmodelled.

    >>> d = transposed_conv_letters(n=1, c=8, m=4, groups=1, size=(8, 8), kernel=(2, 2))
    >>> (d["N"], d["C"], d["M"])  # 64 input positions, 8 channels, 4 filters x 2 x 2 taps
    (64, 8, 16)
    """
    return {"kind": LayerKind.CONV, "N": n * math.prod(size), "C": c,
            "M": m * math.prod(kernel), "G": groups, "lowering": "transposed"}


def transposed_overlaps(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                        dilation: Sequence[int]) -> bool:
    """Whether two input positions of a transposed convolution write one output value.

    Positions ``i`` and ``i + a`` share an output when ``a * stride = b * dilation`` for
    some tap distance ``0 < b < kernel``; the smallest solution is ``a = d / gcd(u, d)``,
    ``b = u / gcd(u, d)``.

    >>> transposed_overlaps((8, 8), (2, 2), (2, 2), (1, 1))  # U-Net upsampling: disjoint
    False
    >>> transposed_overlaps((8,), (3,), (2,), (1,))
    True
    """
    for s, k, u, d in zip(size, kernel, stride, dilation, strict=True):
        g = math.gcd(u, d)
        if s - 1 >= d // g and u // g <= k - 1:
            return True
    return False

"""ONNX handlers of convolutions, einsum and quantized products (the rest: `onnx_import`).

Each handler reads one node through the `Shapes` view of the graph and returns its
products, or a string to report as unmodelled. Convolutions of every rank and
transposed convolutions are lowered exactly as the PyTorch capture lowers them (both
call `product`), so a network and its export give the same layers.
"""

from __future__ import annotations

import logging
import math
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import onnx

from nnjoules.energy.extract.onnx_shapes import check_conv, check_conv_transpose
from nnjoules.energy.extract.product import (
    ProductShape,
    conv_letters,
    has_zero_dim,
    transposed_conv_letters,
    transposed_overlaps,
)
from nnjoules.energy.workload import LayerKind

__all__ = ["OnnxProduct", "Shapes", "attr", "conv", "conv_transpose", "einsum", "non_empty",
           "remapped"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class OnnxProduct(ProductShape):
    """A modelled product in one node: shape letters and the name of its static operand."""

    weights: str | None = None  # a static value: its density is measured


class Shapes(Protocol):
    """What a handler may ask about the graph."""

    def shape(self, node: onnx.NodeProto, index: int) -> tuple[int, ...]: ...

    def is_static(self, node: onnx.NodeProto, index: int) -> bool: ...


# products, and parts to report as unmodelled; or one label for the whole node
Found = tuple[OnnxProduct | str, ...] | str
Handler = Callable[[onnx.NodeProto, Any], Found]  # Any: a `Shapes`, or the importer's graph


def attr(node: onnx.NodeProto, name: str, default: object) -> object:
    """The value of attribute ``name`` of ``node`` (strings decoded), or ``default``."""
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _ints(node: onnx.NodeProto, name: str, default: list[int]) -> list[int]:
    return [int(v) for v in attr(node, name, default)]  # type: ignore[attr-defined]


def conv(node: onnx.NodeProto, g: Shapes) -> Found:
    # [N, G*M, *E] = Conv([N, G*C, *H], [G*M, C, *R]; strides, pads, dilations, group G),
    # 1-, 2- or 3-D (3-D lowered, see `conv_letters`)
    x, w = g.shape(node, 0), g.shape(node, 1)
    check_conv(node, x, w, int(attr(node, "group", 1)))  # type: ignore[call-overload]
    nd = len(x) - 2
    if nd not in (1, 2, 3):
        return f"Conv[{nd}d]"
    strides, dilations = _ints(node, "strides", [1] * nd), _ints(node, "dilations", [1] * nd)
    begins, ends = _conv_pads(node, x[2:], w[2:], strides, dilations)
    groups = int(attr(node, "group", 1))  # type: ignore[call-overload]
    letters = conv_letters(n=x[0], c=w[1], m=w[0] // groups, groups=groups, size=x[2:],
                           kernel=w[2:], stride=strides, dilation=dilations,
                           pads=list(zip(begins, ends, strict=True)))
    return (OnnxProduct(**letters, weights=node.input[1]),)


def _conv_pads(node: onnx.NodeProto, size: tuple[int, ...], kernel: tuple[int, ...],
               strides: list[int], dilations: list[int]) -> tuple[list[int], list[int]]:
    """Padding at the start and end of each spatial axis, ``auto_pad`` resolved."""
    nd = len(size)
    auto_pad = attr(node, "auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for i in range(nd):
            out = -(-size[i] // strides[i])  # ceil: SAME keeps size / stride
            total = max((out - 1) * strides[i] + dilations[i] * (kernel[i] - 1) + 1 - size[i],
                        0)
            low = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            begins.append(low)
            ends.append(total - low)
        return begins, ends
    if auto_pad == "VALID":
        return [0] * nd, [0] * nd
    pads = _ints(node, "pads", [0] * 2 * nd)
    return pads[:nd], pads[nd:]


def conv_transpose(node: onnx.NodeProto, g: Shapes) -> Found:
    # [N, G*M, ...] = ConvTranspose([N, G*C, *H], [G*C, M, *R]; group G), any rank,
    # lowered to an FC layer (see `transposed_conv_letters`)
    x, w = g.shape(node, 0), g.shape(node, 1)
    nd = len(x) - 2
    groups = int(attr(node, "group", 1))  # type: ignore[call-overload]
    check_conv_transpose(node, x, w, groups)
    letters = transposed_conv_letters(n=x[0], c=w[0] // groups, m=w[1], groups=groups,
                                      size=x[2:], kernel=w[2:])
    product = OnnxProduct(**letters, weights=node.input[1])
    if transposed_overlaps(x[2:], w[2:], _ints(node, "strides", [1] * nd),
                           _ints(node, "dilations", [1] * nd)):
        return product, "ConvTranspose overlap-add"
    return (product,)


def einsum(node: onnx.NodeProto, g: Shapes) -> Found:
    # [B.., N.., M..] = Einsum(A [B.., N.., C..], B [B.., C.., M..]): indices in both
    # operands and the output are a batch (G), in both only are summed (C), in one
    # operand and the output are its rows (N, from A) or columns (M, from B)
    terms = str(attr(node, "equation", "")).replace(" ", "").split("->")
    operands = terms[0].split(",")
    if len(operands) != 2 or len(terms) != 2 or len(node.input) != 2:
        return "Einsum"  # one operand: a reduction; three: a chain we do not split
    shapes = [g.shape(node, 0), g.shape(node, 1)]
    broadcast = max((len(s) - len(t) + 3 for s, t in zip(shapes, operands, strict=True)
                     if "..." in t), default=0)
    size: dict[str, int] = {}
    a, b = (set(_expand(t, len(s), broadcast)) for s, t in zip(shapes, operands, strict=True))
    for term, shape in zip(operands, shapes, strict=True):
        for index, dim in zip(_expand(term, len(shape), broadcast), shape, strict=True):
            size[index] = max(size.get(index, 1), dim)  # broadcast 1s take the other size
    out = set(_expand(terms[1], len(terms[1]) - 3 + broadcast, broadcast))

    def prod(indices: set[str]) -> int:
        return math.prod(size[i] for i in indices)

    batch, summed = prod(a & b & out), prod((a & b) - out)
    rows, cols = prod((a & out) - b), prod((b & out) - a)
    if g.is_static(node, 1):  # a batch index in a constant: one weight matrix per batch
        return (OnnxProduct(LayerKind.FC, N=rows, M=cols, C=summed, G=batch,
                            weights=node.input[1]),)
    if g.is_static(node, 0):  # W @ X: the columns of X are the rows
        return (OnnxProduct(LayerKind.FC, N=cols, M=rows, C=summed, G=batch,
                            weights=node.input[0]),)
    return (OnnxProduct(LayerKind.MATMUL, N=rows, M=cols, C=summed, G=batch),)


def _expand(term: str, rank: int, broadcast: int) -> str:
    """``term`` with ``...`` replaced by its last dimensions of the broadcast block.

    The block's dimensions are named by digits, which equations never use, aligned
    right as numpy broadcasting aligns them.
    """
    if "..." not in term:
        return term
    own = rank - (len(term) - 3)
    return term.replace("...", string.digits[broadcast - own:broadcast])


def remapped(handler: Handler, positions: tuple[int, int]) -> Handler:
    """``handler`` applied to a node whose data and weight inputs sit at ``positions``.

    Quantized nodes put scales and zero points between their operands, e.g.
    ``QLinearMatMul(a, a_scale, a_zero, b, ...)`` is ``MatMul(a, b)``.
    """
    def run(node: onnx.NodeProto, g: Shapes) -> Found:
        plain = onnx.NodeProto()
        plain.CopyFrom(node)
        del plain.input[:]
        plain.input.extend(node.input[i] for i in positions)
        return handler(plain, g)
    return run


def non_empty(handler: Handler) -> Handler:
    """``handler`` without the products on empty tensors (0 MACs, not layers; logged)."""
    def run(node: onnx.NodeProto, g: Shapes) -> Found:
        found = handler(node, g)
        if isinstance(found, str):
            return found
        kept = tuple(p for p in found if isinstance(p, str) or not has_zero_dim(p))
        if len(kept) < len(found):
            log.info("node %r (%s) runs on an empty tensor: 0 MACs, not a layer",
                     node.name, node.op_type)
        return kept
    return run

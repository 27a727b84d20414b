"""ATen operator table of the PyTorch capture: one small handler per modelled operator.

A handler gets the operator's arguments and output as ATen passes them and says which
products (`_Product`: shape letters plus operand tensors) the operator ran; a string in
its answer is a part it ran that the energy model does not cover, reported as
unmodelled. Operand roles: a product whose second operand is a weight (not derived from
the inputs) is an FC layer, ``W @ X`` an FC layer whose rows are the columns of X, a
product of two activations a MATMUL layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from nnjoules.energy.extract.product import (
    ProductShape,
    conv_letters,
    transposed_conv_letters,
    transposed_overlaps,
)
from nnjoules.energy.workload import LayerKind

__all__ = ["FREE_OPS", "FUSED_OPS", "HANDLERS", "HOP_HANDLERS", "VIEW_OPS"]

aten = torch.ops.aten


def _packets(*names: str) -> frozenset[object]:
    """ATen overload packets by name, skipping any this torch version lacks."""
    return frozenset(getattr(aten, n) for n in names if hasattr(aten, n))


# Pure data-layout operators: same values, other shape or place. Chains of fused
# operators (below) continue through the first group.
VIEW_OPS = _packets("view", "_unsafe_view", "reshape", "_reshape_alias", "t", "transpose",
                    "permute", "squeeze", "unsqueeze", "flatten", "clone", "contiguous",
                    "detach", "alias", "_to_copy", "lift_fresh")
# Writes of one tensor into a slice of another (``slice_scatter`` is how an exported
# graph spells ``buf[a:b] = x``) move data like ``copy_``.
FREE_OPS: frozenset[object] = VIEW_OPS | _packets(
    "expand", "select", "slice", "split", "split_with_sizes", "unbind", "chunk", "narrow",
    "as_strided", "cat", "stack", "constant_pad_nd", "copy_", "empty", "empty_like",
    "empty_strided", "new_empty", "zeros", "zeros_like", "new_zeros", "fill_",
    "_local_scalar_dense", "slice_scatter", "select_scatter", "diagonal_scatter",
    "as_strided_scatter")
# Single-input element-wise operators that a layer's output goes through before it is
# written back: the ofmap density is measured after them.
FUSED_OPS: frozenset[object] = _packets(
    "native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit",
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "clamp", "clamp_", "clamp_min",
    "clamp_min_", "clamp_max", "clamp_max_", "dropout", "native_dropout", "gelu", "gelu_",
    "silu", "silu_", "leaky_relu", "leaky_relu_", "hardswish", "hardswish_", "elu", "elu_")


@dataclass(frozen=True, eq=False)
class _Product(ProductShape):
    """A modelled product found in one op: its shape letters and the operand tensors."""

    ifmap: Tensor | None = None  # None: not materialised, density 1.0
    weights: Tensor | None = None
    ofmap: Tensor | None = None


IsAct = Callable[[Tensor], bool]
Found = tuple[_Product | str, ...]
# handler(op arguments, op output, is_activation) -> products and unmodelled parts
Handler = Callable[[tuple[Any, ...], Any, IsAct], Found]


def _conv(args: tuple[Any, ...], out: Any, is_act: IsAct) -> Found:
    # [N, G*M, *E] = convolution([N, G*C, *H], [G*M, C, *R]; stride, padding, dilation,
    #                            groups G), 1-, 2- or 3-D; lowered in `product`
    x, w = args[0], args[1]
    stride, padding, dilation, transposed, _, groups = args[3:9]
    nd = x.dim() - 2
    size, kernel = tuple(x.shape[2:]), tuple(w.shape[2:])
    stride, padding, dilation = (_axes(v, nd) for v in (stride, padding, dilation))
    if transposed:  # [G*C, M, *R] = weight: input channels first
        letters = transposed_conv_letters(n=x.shape[0], c=w.shape[0] // groups, m=w.shape[1],
                                          groups=groups, size=size, kernel=kernel)
        product = _Product(**letters, ifmap=x, weights=w, ofmap=out)
        if transposed_overlaps(size, kernel, stride, dilation):
            return product, "aten.convolution transposed overlap-add"  # no [..]: rich markup
        return (product,)
    letters = conv_letters(n=x.shape[0], c=w.shape[1], m=w.shape[0] // groups, groups=groups,
                           size=size, kernel=kernel, stride=stride, dilation=dilation,
                           pads=[(p, p) for p in padding])
    return (_Product(**letters, ifmap=x, weights=w, ofmap=out),)


def _axes(values: list[int], nd: int) -> tuple[int, ...]:
    """A per-axis conv argument with one entry per spatial axis (one value: all axes)."""
    vals = tuple(int(v) for v in values)
    return vals * nd if len(vals) == 1 else vals


def _pair(a: Tensor, b: Tensor, out: Tensor | None, is_act: IsAct, *, g: int, n: int,
          c: int, m: int) -> _Product:
    # [G, N, M] = a [G, N, C] @ b [G, C, M]; a constant b makes it an FC layer
    if not is_act(b):
        return _Product(LayerKind.FC, N=n, M=m, C=c, G=g, ifmap=a, weights=b, ofmap=out)
    if not is_act(a):  # W @ X: the columns of X are the FC rows
        return _Product(LayerKind.FC, N=m, M=n, C=c, G=g, ifmap=b, weights=a, ofmap=out)
    return _Product(LayerKind.MATMUL, N=n, M=m, C=c, G=g, ifmap=a, weights=b, ofmap=out)


def _batched(a: Tensor, b: Tensor, out: Tensor, is_act: IsAct) -> Found:
    # [G.., N, M] = a [G.., N, C] @ b [G.., C, M]
    return (_pair(a, b, out, is_act, g=math.prod(a.shape[:-2]), n=a.shape[-2], c=a.shape[-1],
                  m=b.shape[-1]),)


def _mm(args: tuple[Any, ...], out: Any, is_act: IsAct) -> Found:
    # [N, M] = mm([N, C], [C, M]); [B, N, M] = bmm([B, N, C], [B, C, M])
    return _batched(args[0], args[1], out, is_act)


def _addmm(args: tuple[Any, ...], out: Any, is_act: IsAct) -> Found:
    # [N, M] = bias + mm([N, C], [C, M]); baddbmm: the same per batch
    return _batched(args[1], args[2], out, is_act)


def _addbmm(args: tuple[Any, ...], out: Any, is_act: IsAct) -> Found:
    # [N, M] = bias + sum_b [B, N, C]_b @ [B, C, M]_b: B products accumulated in one output
    a, b = args[1], args[2]
    return (_pair(a, b, out, is_act, g=a.shape[0], n=a.shape[1], c=a.shape[2], m=b.shape[2]),)


def _mv(args: tuple[Any, ...], out: Any, is_act: IsAct) -> Found:
    # [N] = mv([N, C], [C]): a product with one column
    a, v = args[0], args[1]
    return (_pair(a, v, out, is_act, g=1, n=a.shape[0], c=a.shape[1], m=1),)


def _addmv(args: tuple[Any, ...], out: Any, is_act: IsAct) -> Found:
    # [N] = bias + mv([N, C], [C])
    return _mv(args[1:], out, is_act)


def _dot(args: tuple[Any, ...], out: Any, is_act: IsAct) -> Found:
    # [] = dot([C], [C]): one row, one column
    a, b = args[0], args[1]
    return (_pair(a, b, out, is_act, g=1, n=1, c=a.shape[0], m=1),)


def _trilinear(args: tuple[Any, ...], out: Any, is_act: IsAct) -> Found:
    # [N, M] = bilinear(x1 [N, C1], A [M, C1, C2], x2 [N, C2]), as PyTorch runs it:
    # t [N, M*C2] = x1 @ A (FC), then out[n] = t[n] [M, C2] @ x2[n] [C2] (N products)
    x1, weight, x2 = args[0], args[1], args[2]
    if (tuple(args[3:7]) != ([1, 3], [0], [1, 2], [2, 3]) or x1.dim() != 2
            or weight.dim() != 3):
        return ("aten._trilinear",)  # only nn.Bilinear calls it
    (n, c1), (m, _, c2) = x1.shape, weight.shape
    return (_pair(x1, weight, None, is_act, g=1, n=n, c=c1, m=m * c2),
            _Product(LayerKind.MATMUL, N=m, M=1, C=c2, G=n, weights=x2, ofmap=out))


def _sdpa(args: tuple[Any, ...], out: Any, is_act: IsAct) -> Found:
    # [B.., L, Ev] = softmax(q [B.., L, E] @ k [B.., S, E]^T) @ v [B.., S, Ev]
    q, k, v = args[0], args[1], args[2]
    g = math.prod(q.shape[:-2])
    (length, e), s, ev = q.shape[-2:], k.shape[-2], v.shape[-1]
    result = out[0] if isinstance(out, tuple | list) else out
    return (_Product(LayerKind.MATMUL, N=length, M=s, C=e, G=g, ifmap=q, weights=k),
            _Product(LayerKind.MATMUL, N=length, M=ev, C=s, G=g, weights=v, ofmap=result))


HANDLERS: dict[object, Handler] = {
    aten.convolution: _conv,
    aten._convolution: _conv,
    aten.mm: _mm,
    aten.bmm: _mm,
    aten.addmm: _addmm,
    aten.baddbmm: _addmm,
    **{op: h for op, h in ((getattr(aten, name), h) for name, h in (
        ("addbmm", _addbmm), ("mv", _mv), ("addmv", _addmv), ("dot", _dot), ("vdot", _dot),
        ("_trilinear", _trilinear)) if hasattr(aten, name))},
    **{op: _sdpa for op in _packets(
        "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_fused_attention_overrideable")},
}
# Higher-order operators with a handler, by name; the others run their subgraphs eagerly
# under the capture. flex_attention's arguments start with q, k, v; it is fused like
# scaled_dot_product_attention (score_mod and block masks do not change the dense count).
HOP_HANDLERS: dict[str, Handler] = {"flex_attention": _sdpa}

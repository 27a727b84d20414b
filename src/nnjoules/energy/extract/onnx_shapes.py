"""Shapes the user gives against the graph: its inputs, and each layer's input vs. weights.

Decisions:

* A graph input's dimension is *fixed* when it holds a positive value, *dynamic* when
  it is symbolic (``dim_param``) or unset. Options fill dynamic dimensions only: an
  ``input_shape`` or ``batch`` that contradicts a fixed one is an `InputError` naming the
  input (ONNX Runtime would refuse such inputs, and the weights and ``Reshape`` constants
  were exported for the fixed size). Re-exporting with dynamic axes is the remedy.
* ``batch`` is the first dimension of the graph inputs. It is checked against the first
  input only: other inputs may have no batch dimension (a fixed mask, a table).
* A dimension of 0 is neither fixed nor unknown: an empty input, which has no workload.
* Every modelled node checks its activation input against its weights (channels of a
  convolution, the inner dimension of a product), so that options or a broken graph can
  never produce a layer whose letters disagree with the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

from nnjoules.errors import InputError

__all__ = ["ShapeMismatch", "check_conv", "check_conv_transpose", "check_gemm", "check_inner",
           "dims_text", "fix_input_shapes"]


class ShapeMismatch(InputError):
    """A node whose input shape disagrees with its weights; the message names the node."""


def dims_text(value_info: onnx.ValueInfoProto) -> str:
    """The shape of a graph value as written in messages: ``[batch, 3, 224, 224]``."""
    dims = value_info.type.tensor_type.shape.dim
    return "[" + ", ".join(_dim_text(d) for d in dims) + "]"


def _dim_text(dim: onnx.TensorShapeProto.Dimension) -> str:
    kind = dim.WhichOneof("value")
    if kind == "dim_value":
        return str(dim.dim_value)
    return dim.dim_param if kind == "dim_param" else "?"


def _fixed(dim: onnx.TensorShapeProto.Dimension) -> int | None:
    """The dimension's size if the graph fixes it (a zero counts as fixed), else None."""
    return dim.dim_value if dim.WhichOneof("value") == "dim_value" else None


def fix_input_shapes(inputs: Sequence[onnx.ValueInfoProto], *, batch: int | None,
                     input_shape: tuple[int, ...] | None,
                     examples: Sequence[np.ndarray] | None, path: Path
                     ) -> dict[str, np.ndarray] | None:
    """Give every graph input a concrete shape, from the options or the example inputs.

    Args:
        inputs: the graph's inputs (not its initializers); edited in place.
        batch: size of the dynamic first dimensions; None: 1, and no check.
        input_shape: the first input's shape without the batch.
        examples: arrays for the inputs, in graph order; their shapes fix the inputs.
        path: the file, for messages.

    Returns:
        The example arrays as feeds (cast to the inputs' types), or None.

    Raises:
        InputError: an option or example that contradicts a fixed dimension, an input
            with a zero dimension, or examples that do not match the inputs.
    """
    for value in (*(() if batch is None else (batch,)), *(input_shape or ())):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"batch and input_shape must be positive integers, got "
                             f"batch={batch!r}, input_shape={input_shape!r}")
    for value_info in inputs:
        if any(_fixed(d) == 0 for d in value_info.type.tensor_type.shape.dim):
            raise InputError(f"{path}: graph input {value_info.name!r} has a zero dimension "
                             f"in its shape {dims_text(value_info)}: an empty input has no "
                             "workload")
    if examples is not None:
        first = examples[0].shape[:1] if examples and examples[0].ndim else ()
        if input_shape is not None or batch not in (None, *first):
            raise InputError("give example inputs or batch/input_shape for an ONNX file, "
                             "not both: the examples fix the shapes")
        return _from_examples(inputs, examples, path)
    if inputs and input_shape is not None:
        _apply_input_shape(inputs[0], input_shape, path)
    for k, value_info in enumerate(inputs):
        _apply_batch(value_info, batch, path, check=k == 0)
    return None


def _apply_input_shape(value_info: onnx.ValueInfoProto, input_shape: tuple[int, ...],
                       path: Path) -> None:
    dims = value_info.type.tensor_type.shape.dim
    if len(dims) != len(input_shape) + 1:
        raise InputError(f"{path}: input_shape {tuple(input_shape)} has {len(input_shape)} "
                         f"dimensions but graph input {value_info.name!r} has {len(dims)} "
                         "including the batch")
    for dim, size in zip(list(dims)[1:], input_shape, strict=True):
        if _fixed(dim) not in (None, size):
            raise InputError(f"{path}: input_shape {tuple(input_shape)} contradicts graph "
                             f"input {value_info.name!r} of fixed shape "
                             f"{dims_text(value_info)}; re-export the model with dynamic "
                             "axes to change it")
    for dim, size in zip(list(dims)[1:], input_shape, strict=True):
        dim.dim_value = size


def _apply_batch(value_info: onnx.ValueInfoProto, batch: int | None, path: Path, *,
                 check: bool) -> None:
    dims = value_info.type.tensor_type.shape.dim
    if not dims:
        return
    fixed = _fixed(dims[0])
    if fixed is None:
        dims[0].dim_value = batch or 1
    elif check and batch is not None and batch != fixed:
        raise InputError(f"{path}: batch {batch} contradicts graph input {value_info.name!r}, "
                         f"whose batch is fixed at {fixed} (shape {dims_text(value_info)}); "
                         "re-export the model with a dynamic batch axis")


def _from_examples(inputs: Sequence[onnx.ValueInfoProto], examples: Sequence[np.ndarray],
                   path: Path) -> dict[str, np.ndarray]:
    if len(examples) != len(inputs):
        raise InputError(f"{path}: the graph has {len(inputs)} input(s) "
                         f"{[i.name for i in inputs]} but {len(examples)} example input(s) "
                         "were given")
    feeds = {}
    for value_info, array in zip(inputs, examples, strict=True):
        tensor_type = value_info.type.tensor_type
        dims = tensor_type.shape.dim
        fixed = [_fixed(d) for d in dims]
        if len(dims) != array.ndim or any(f not in (None, s)
                                          for f, s in zip(fixed, array.shape, strict=True)):
            raise InputError(f"{path}: an example input of shape {list(array.shape)} does not "
                             f"fit graph input {value_info.name!r} of shape "
                             f"{dims_text(value_info)}")
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if not np.can_cast(array.dtype, dtype, casting="same_kind"):
            raise InputError(f"{path}: an example input of type {array.dtype} does not fit "
                             f"graph input {value_info.name!r} of type {np.dtype(dtype)}")
        for dim, size in zip(dims, array.shape, strict=True):
            dim.dim_value = size
        feeds[value_info.name] = array.astype(dtype, copy=False)
    return feeds


def _node_label(node: onnx.NodeProto) -> str:
    return f"node {node.name or '(unnamed)'!r} ({node.op_type})"


def check_conv(node: onnx.NodeProto, x: tuple[int, ...], w: tuple[int, ...],
               groups: int) -> None:
    """A convolution's input ``[N, G*C, ...]`` against its weight ``[G*M, C, ...]``.

    Raises:
        ShapeMismatch: ranks differ, the channels differ from ``C x groups``, or the
            filters do not divide into the groups.
    """
    _check_rank(node, x, w)
    if groups < 1 or w[0] % groups:
        raise ShapeMismatch(f"{_node_label(node)}: its weight {node.input[1]!r} of shape "
                            f"{list(w)} has {w[0]} filters, not a multiple of group {groups}")
    if x[1] != w[1] * groups:
        raise ShapeMismatch(f"{_node_label(node)}: input {node.input[0]!r} of shape {list(x)} "
                            f"has {x[1]} channels but its weight {node.input[1]!r} of shape "
                            f"{list(w)} expects {w[1] * groups} ({w[1]} x group {groups})")


def check_conv_transpose(node: onnx.NodeProto, x: tuple[int, ...], w: tuple[int, ...],
                         groups: int) -> None:
    """A transposed convolution's input ``[N, C, ...]`` against its weight ``[C, M/G, ...]``.

    Raises:
        ShapeMismatch: ranks differ or the channels differ from the weight's first dimension.
    """
    _check_rank(node, x, w)
    if groups < 1 or x[1] != w[0] or w[0] % groups:
        raise ShapeMismatch(f"{_node_label(node)}: input {node.input[0]!r} of shape {list(x)} "
                            f"has {x[1]} channels but its weight {node.input[1]!r} of shape "
                            f"{list(w)} expects {w[0]} (group {groups})")


def _check_rank(node: onnx.NodeProto, x: tuple[int, ...], w: tuple[int, ...]) -> None:
    if len(x) != len(w) or len(x) < 3:
        raise ShapeMismatch(f"{_node_label(node)}: input {node.input[0]!r} of shape {list(x)} "
                            f"and its weight {node.input[1]!r} of shape {list(w)} need the "
                            "same number of dimensions, at least 3")


def check_gemm(node: onnx.NodeProto, a: tuple[int, ...], b: tuple[int, ...], *,
               trans_a: bool, trans_b: bool) -> None:
    """Gemm's operands: two matrices whose inner dimensions agree (after ``trans*``).

    Raises:
        ShapeMismatch: an operand is not 2-D or the inner dimensions differ.
    """
    if len(a) != 2 or len(b) != 2:
        raise ShapeMismatch(f"{_node_label(node)}: operands {node.input[0]!r} of shape "
                            f"{list(a)} and {node.input[1]!r} of shape {list(b)} must be 2-D")
    check_inner(node, a, b, a_inner=0 if trans_a else 1, b_inner=1 if trans_b else 0)


def check_inner(node: onnx.NodeProto, a: tuple[int, ...], b: tuple[int, ...], *,
                a_inner: int, b_inner: int, batch: bool = False) -> None:
    """A product's operands: ``a``'s inner dimension (``a[a_inner]``) equals ``b``'s.

    Args:
        node: the product node (its first two inputs are ``a`` and ``b``).
        a: shape of the first operand; b: of the second.
        a_inner: index of the first operand's inner dimension; b_inner: the second's.
        batch: also check that the dimensions before the last two broadcast (MatMul).

    Raises:
        ShapeMismatch: the inner dimensions differ or the batch dimensions do not broadcast.
    """
    if len(a) < 2 or len(b) < 2 or a[a_inner] != b[b_inner]:
        raise ShapeMismatch(f"{_node_label(node)}: the inner dimensions of {node.input[0]!r} "
                            f"of shape {list(a)} and {node.input[1]!r} of shape {list(b)} "
                            "differ")
    if batch:
        try:
            np.broadcast_shapes(a[:-2], b[:-2])
        except ValueError:
            raise ShapeMismatch(f"{_node_label(node)}: the batch dimensions of "
                                f"{node.input[0]!r} of shape {list(a)} and {node.input[1]!r} "
                                f"of shape {list(b)} do not broadcast") from None

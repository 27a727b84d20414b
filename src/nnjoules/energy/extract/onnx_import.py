"""Read the workload of an ONNX graph: Conv, Gemm and MatMul nodes as layers.

Shapes come from ``onnx.shape_inference`` (with data propagation) after the graph's
dynamic batch dimension is fixed. Graphs whose shape arithmetic it cannot follow (the
TorchScript exporter's dynamic-batch attention computes head sizes with ``Div``) are
run once with onnxruntime, when it is installed, to read the missing shapes.

Decisions:

* A value is *static* when it derives from initializers, ``Constant`` nodes or
  ``Shape``/``Size`` alone; nodes on static values are weight or shape preprocessing
  and are skipped. A product with a static operand is an FC layer whose weight density
  is measured on that initializer (followed through Transpose, Reshape, Cast ...);
  a product of two activations is a MATMUL layer.
* ONNX holds no activations: ifmap and ofmap densities are 1.0 and unmeasured.
* Data-layout nodes (`FREE_OPS`) are not reported; other nodes are counted in
  ``Workload.unmodelled`` by op type (``domain.op_type`` outside the default domain).
  3-D convolutions are reported as ``Conv[3d]``; ``ConvTranspose`` as itself.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec

import numpy as np
import onnx
from onnx import external_data_helper, numpy_helper

from nnjoules.energy.extract.product import ProductShape
from nnjoules.energy.extract.sparsity import finite_tensor_stats
from nnjoules.energy.workload import Density, Layer, LayerKind, UnmodelledOp, Workload
from nnjoules.errors import InputError, ModelLoadError, NNJoulesError

__all__ = ["FREE_OPS", "workload_from_onnx"]

log = logging.getLogger(__name__)
_P = ParamSpec("_P")

FREE_OPS = frozenset({
    "Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split",
    "Slice", "Gather", "Expand", "Tile", "Cast", "CastLike", "Dropout", "Pad", "Shape",
    "Size", "Constant", "ConstantOfShape"})
# Nodes that keep a constant's values, only relabelled: densities follow them.
_LAYOUT_OPS = frozenset({"Identity", "Reshape", "Flatten", "Transpose", "Squeeze",
                         "Unsqueeze", "Cast"})
_STRIP_VALUES = 1024  # initializers larger than this are hidden from shape inference


@dataclass(frozen=True)
class _Product(ProductShape):
    """A modelled product in one node: shape letters and the name of its static operand."""

    weights: str | None = None  # a static value: its density is measured


class _Unresolved(Exception):
    """A shape that shape inference left unknown (internal: triggers the fallback)."""

    def __init__(self, node: onnx.NodeProto, tensor: str) -> None:
        super().__init__(tensor)
        self.node, self.tensor = node, tensor


@dataclass
class _Graph:
    """What the handlers may ask about the graph."""

    shapes: dict[str, tuple[int, ...]]
    static: set[str]

    def shape(self, node: onnx.NodeProto, index: int) -> tuple[int, ...]:
        name = node.input[index]
        shape = self.shapes.get(name)
        if shape is None:
            raise _Unresolved(node, name)
        return shape

    def is_static(self, node: onnx.NodeProto, index: int) -> bool:
        return node.input[index] in self.static


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _conv(node: onnx.NodeProto, g: _Graph) -> tuple[_Product, ...] | str:
    # [N, G*M, E, F] = Conv([N, G*C, H, W], [G*M, C, R, S]; strides, pads, dilations,
    #                       group G); a 1-D conv is a 1 x L image
    x, w = g.shape(node, 0), g.shape(node, 1)
    nd = len(x) - 2
    if nd not in (1, 2):
        return f"Conv[{nd}d]"
    strides = list(_attr(node, "strides", [1] * nd))  # type: ignore[call-overload]
    dilations = list(_attr(node, "dilations", [1] * nd))  # type: ignore[call-overload]
    begins, ends = _conv_pads(node, x[2:], w[2:], strides, dilations)
    if nd == 1:  # lift to 2-D: one row
        x, w = (*x[:2], 1, x[2]), (*w[:2], 1, w[2])
        strides, dilations, begins, ends = [1, *strides], [1, *dilations], [0, *begins], \
            [0, *ends]
    groups = int(_attr(node, "group", 1))  # type: ignore[call-overload]
    h, width = x[2] + begins[0] + ends[0], x[3] + begins[1] + ends[1]
    r, s = w[2], w[3]
    e = (h - dilations[0] * (r - 1) - 1) // strides[0] + 1
    f = (width - dilations[1] * (s - 1) - 1) // strides[1] + 1
    return (_Product(LayerKind.CONV, N=x[0], M=w[0] // groups, C=w[1], G=groups, H=h,
                     W=width, R=r, S=s, E=e, F=f, stride=(strides[0], strides[1]),
                     dilation=(dilations[0], dilations[1]),
                     padding=(begins[0], ends[0], begins[1], ends[1]),
                     weights=node.input[1]),)


def _conv_pads(node: onnx.NodeProto, size: tuple[int, ...], kernel: tuple[int, ...],
               strides: list[int], dilations: list[int]) -> tuple[list[int], list[int]]:
    """Padding at the start and end of each spatial axis, ``auto_pad`` resolved."""
    nd = len(size)
    auto_pad = _attr(node, "auto_pad", "NOTSET")
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
    pads = list(_attr(node, "pads", [0] * 2 * nd))  # type: ignore[call-overload]
    return pads[:nd], pads[nd:]


def _gemm(node: onnx.NodeProto, g: _Graph) -> tuple[_Product, ...]:
    # [N, M] = Gemm(A [N, C] (A^T if transA), B [C, M] (B^T if transB)) + bias
    a, b = g.shape(node, 0), g.shape(node, 1)
    n, c = (a[1], a[0]) if _attr(node, "transA", 0) else a
    m = b[0] if _attr(node, "transB", 0) else b[1]
    return (_fc_or_matmul(node, g, n=n, c=c, m=m, batch=1, fold=1),)


def _matmul(node: onnx.NodeProto, g: _Graph) -> tuple[_Product, ...]:
    # [B.., N, M] = MatMul(A [B.., N, C], B [B.., C, M]), numpy broadcasting
    a, b = g.shape(node, 0), g.shape(node, 1)
    a2 = (1, *a) if len(a) == 1 else a  # 1-D operands become a row / a column
    b2 = (*b, 1) if len(b) == 1 else b
    batch = math.prod(np.broadcast_shapes(a2[:-2], b2[:-2]))
    n, c, m = a2[-2], a2[-1], b2[-1]
    if g.is_static(node, 1) and len(b2) == 2:  # shared weights: the batch is more rows
        return (_fc_or_matmul(node, g, n=n, c=c, m=m, batch=1, fold=batch),)
    if g.is_static(node, 0) and len(a2) == 2 and not g.is_static(node, 1):
        return (_fc_or_matmul(node, g, n=n, c=c, m=m, batch=1, fold=batch),)
    return (_fc_or_matmul(node, g, n=n, c=c, m=m, batch=batch, fold=1),)


def _fc_or_matmul(node: onnx.NodeProto, g: _Graph, *, n: int, c: int, m: int, batch: int,
                  fold: int) -> _Product:
    """FC when one operand is static (W @ X: X's columns are the rows), else MATMUL."""
    if g.is_static(node, 1):
        return _Product(LayerKind.FC, N=n * fold, M=m, C=c, G=batch, weights=node.input[1])
    if g.is_static(node, 0):
        return _Product(LayerKind.FC, N=m * fold, M=n, C=c, G=batch, weights=node.input[0])
    return _Product(LayerKind.MATMUL, N=n, M=m, C=c, G=batch)


_Handler = Callable[[onnx.NodeProto, _Graph], "tuple[_Product, ...] | str"]
_HANDLERS: dict[str, _Handler] = {"Conv": _conv, "Gemm": _gemm, "MatMul": _matmul}


def _damaged_file_is_an_error(read: Callable[_P, Workload]) -> Callable[_P, Workload]:
    """A graph that breaks the importer (a damaged file: an operand missing, a rank or a
    data size that does not match) is a `ModelLoadError` naming the file, not a traceback."""
    @functools.wraps(read)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> Workload:
        try:
            return read(*args, **kwargs)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, NNJoulesError):
                raise
            path = args[0] if args else kwargs.get("path")
            raise ModelLoadError(f"{path}: cannot read this ONNX graph (a damaged file, or a "
                                 f"construct not supported): {type(exc).__name__}: {exc}") \
                from exc
    return guarded


@_damaged_file_is_an_error
def workload_from_onnx(path: str | Path, *, batch: int | None = None,
                       input_shape: tuple[int, ...] | None = None,
                       name: str | None = None, measure_density: bool = True) -> Workload:
    """The workload of the ONNX graph in ``path``.

    Args:
        path: an ``.onnx`` file (external data next to it is loaded too).
        batch: size of a dynamic (symbolic) first dimension of the graph inputs; 1 when
            not given. A batch fixed in the graph is kept (re-export with a dynamic axis
            to change it).
        input_shape: the first graph input's shape *without* the batch dimension, e.g.
            ``(3, 224, 224)``; overrides the shape stored in the graph.
        name: the workload name; defaults to the file name without suffix.
        measure_density: measure weight densities and run-length statistics on the
            initializers; when False every density is 1.0.

    Returns:
        Conv, Gemm and MatMul nodes as layers in graph order (named by node name,
        repeats get ``#1``, ``#2`` ...), with weight densities measured on the
        initializers, and the unmodelled node types with their counts.

    Raises:
        ModelLoadError: the file is missing or not ONNX, or a shape cannot be resolved
            (the message names the node and the tensor).
        InputError: ``batch`` or ``input_shape`` is not usable for this graph.
    """
    path = Path(path)
    model = _load(path)
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init_names]
    _fix_input_shapes(inputs, batch, input_shape, path)
    static, sources, tensors = _static_values(graph)
    g = _Graph(_infer_shapes(model, path), static)
    try:
        found = _walk(graph, g)
    except _Unresolved as first:
        g.shapes.update(_run_for_shapes(model, inputs, first, path))
        try:
            found = _walk(graph, g)
        except _Unresolved as err:
            raise _unresolved_error(err, path, "") from None
    layers = _layers(found, sources if measure_density else {}, tensors, path)
    unmodelled = tuple(UnmodelledOp(op, n) for op, n in sorted(found.unmodelled.items()))
    label = name or path.stem
    if not layers:
        raise ModelLoadError(f"{path}: the graph has no Conv, Gemm or MatMul node on its "
                             f"inputs; node types seen: {[u.op for u in unmodelled]}")
    return Workload(label, layers, unmodelled)


def _load(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise ModelLoadError(f"ONNX file {str(path)!r} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning ... on garbage
        raise ModelLoadError(f"{str(path)!r} is not an ONNX model: {exc}") from exc
    if model.ir_version <= 0 or not model.graph.node:
        raise ModelLoadError(f"{str(path)!r} is not an ONNX model: it holds no graph nodes")
    try:
        external_data_helper.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError, onnx.checker.ValidationError) as exc:
        # Shapes need no weight values: go on, with those weights' densities unknown (1.0).
        log.warning("%s: external weight data not loaded (%s); weight densities of the "
                    "layers using it are taken as 1.0", path, exc)
    return model


def _is_external(tensor: onnx.TensorProto) -> bool:
    """Whether the tensor's values live in a file that was not loaded."""
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def _fix_input_shapes(inputs: list[onnx.ValueInfoProto], batch: int | None,
                      input_shape: tuple[int, ...] | None, path: Path) -> None:
    """Fill in dynamic batch dimensions and, if given, the first input's shape."""
    for value in (*(() if batch is None else (batch,)), *(input_shape or ())):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"batch and input_shape must be positive integers, got "
                             f"batch={batch!r}, input_shape={input_shape!r}")
    for k, value_info in enumerate(inputs):
        dims = value_info.type.tensor_type.shape.dim
        if dims and dims[0].dim_value <= 0:  # symbolic or unknown: the batch
            dims[0].dim_value = batch or 1
        if k == 0 and input_shape is not None:
            if len(dims) != len(input_shape) + 1:
                raise InputError(f"{path}: input_shape {tuple(input_shape)} has "
                                 f"{len(input_shape)} dimensions but graph input "
                                 f"{value_info.name!r} has {len(dims)} including the batch")
            for dim, size in zip(list(dims)[1:], input_shape, strict=True):
                dim.dim_value = size


def _static_values(graph: onnx.GraphProto
                   ) -> tuple[set[str], dict[str, str], dict[str, onnx.TensorProto]]:
    """Static values; for each, the constant tensor whose values it carries, if any."""
    tensors = {t.name: t for t in graph.initializer}
    static = set(tensors)
    sources = {n: n for n in tensors}
    for node in graph.node:
        inputs = [i for i in node.input if i]
        if node.op_type not in ("Shape", "Size") and not all(i in static for i in inputs):
            continue
        static.update(node.output)
        value = _attr(node, "value", None)
        if node.op_type == "Constant" and isinstance(value, onnx.TensorProto):
            tensors[node.output[0]] = value
            sources[node.output[0]] = node.output[0]
        elif node.op_type in _LAYOUT_OPS and inputs and inputs[0] in sources:
            sources[node.output[0]] = sources[inputs[0]]
    return static, sources, tensors


def _infer_shapes(model: onnx.ModelProto, path: Path) -> dict[str, tuple[int, ...]]:
    """Concrete shapes of the graph's values (unknown ones left out)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(_without_large_data(model), data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise ModelLoadError(f"{path}: ONNX shape inference failed: {exc}") from exc
    shapes: dict[str, tuple[int, ...]] = {t.name: tuple(t.dims) for t in model.graph.initializer}
    g = inferred.graph
    for value_info in (*g.input, *g.value_info, *g.output):
        if not value_info.type.tensor_type.HasField("shape"):
            continue
        dims = value_info.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
            shapes[value_info.name] = tuple(d.dim_value for d in dims)
    for node in g.node:
        value = _attr(node, "value", None)
        if node.op_type == "Constant" and isinstance(value, onnx.TensorProto):
            shapes[node.output[0]] = tuple(value.dims)
    return shapes


def _without_large_data(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose large initializers keep their dims but not their values.

    Shape inference needs only the dims of weights (data propagation reads the small
    integer tensors), and serialising VGG-sized weights for it would dominate the time.
    """
    light = onnx.ModelProto(ir_version=model.ir_version, producer_name=model.producer_name)
    light.opset_import.extend(model.opset_import)
    light.functions.extend(model.functions)
    g = model.graph
    light.graph.name = g.name
    for field_name in ("node", "input", "output", "value_info"):
        getattr(light.graph, field_name).extend(getattr(g, field_name))
    for t in g.initializer:
        large = math.prod(t.dims) > _STRIP_VALUES and t.data_type != onnx.TensorProto.INT64
        light.graph.initializer.append(
            onnx.TensorProto(name=t.name, dims=t.dims, data_type=t.data_type) if large else t)
    return light


@dataclass
class _Found:
    """Products in graph order, with their names, and unmodelled node types."""

    products: list[tuple[str, str, _Product]]  # name, op type, product
    unmodelled: Counter[str]


def _walk(graph: onnx.GraphProto, g: _Graph) -> _Found:
    found = _Found([], Counter())
    names: Counter[str] = Counter()
    for index, node in enumerate(graph.node):
        if node.op_type in ("Shape", "Size") or all(i in g.static for i in node.input if i):
            continue  # shape arithmetic or constant folding
        handler = _HANDLERS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        products = handler(node, g) if handler else None
        if isinstance(products, str):
            found.unmodelled[products] += 1
        elif products is not None:
            base = node.name or f"{node.op_type}_{index}"
            for product in products:
                count = names[base]
                names[base] += 1
                found.products.append((base if count == 0 else f"{base}#{count}",
                                       node.op_type, product))
        elif node.domain not in ("", "ai.onnx"):
            found.unmodelled[f"{node.domain}.{node.op_type}"] += 1
        elif node.op_type not in FREE_OPS:
            found.unmodelled[node.op_type] += 1
    return found


def _layers(found: _Found, sources: dict[str, str], tensors: dict[str, onnx.TensorProto],
            path: Path) -> tuple[Layer, ...]:
    cache: dict[str, tuple[float, float]] = {}
    layers = []
    for name, op_type, p in found.products:
        density = Density()
        source = sources.get(p.weights or "")
        if source is not None and not _is_external(tensors[source]):
            if source not in cache:
                cache[source] = finite_tensor_stats(
                    numpy_helper.to_array(tensors[source]),
                    what=f"{path}: node {name!r}: weights {source!r}")
            weights, pairs = cache[source]
            density = Density(weights=weights, weights_rlc_pairs=pairs)
        try:
            layers.append(Layer(name, p.kind, N=p.N, M=p.M, C=p.C, G=p.G, H=p.H, W=p.W,
                                R=p.R, S=p.S, E=p.E, F=p.F, stride=p.stride,
                                dilation=p.dilation, padding=p.padding, density=density,
                                op=op_type))
        except ValueError as exc:  # e.g. a kernel larger than its padded input
            raise ModelLoadError(f"{path}: node {name!r} ({op_type}) is not a valid "
                                 f"layer: {exc}") from exc
    return tuple(layers)


_MAX_RUN_VALUES = 1 << 28  # values of one graph input run for its shapes (1 GiB of float32)


def _run_for_shapes(model: onnx.ModelProto, inputs: list[onnx.ValueInfoProto],
                    first: _Unresolved, path: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of the inputs of every modelled node, by running the graph once on zeros."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise _unresolved_error(first, path, "; install onnxruntime to run the graph "
                                "for its shapes") from None
    feeds = {}
    for value_info in inputs:
        tensor_type = value_info.type.tensor_type
        dims = [d.dim_value for d in tensor_type.shape.dim]
        if not all(d > 0 for d in dims):
            raise _unresolved_error(first, path, f"; graph input {value_info.name!r} has "
                                    f"unknown dimensions {_dims_text(value_info)}")
        if math.prod(dims) > _MAX_RUN_VALUES:  # a damaged file: never allocate that much
            raise _unresolved_error(first, path, f"; graph input {value_info.name!r} of shape "
                                    f"{dims} is too large to run")
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        except KeyError:
            raise _unresolved_error(first, path, f"; graph input {value_info.name!r} has no "
                                    f"known element type ({tensor_type.elem_type})") from None
        feeds[value_info.name] = np.zeros(dims, dtype=dtype)
    known = {o.name for o in model.graph.output}
    wanted = sorted({i for n in model.graph.node if n.op_type in _HANDLERS
                     for i in n.input if i} - {t.name for t in model.graph.initializer})
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in wanted if n not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(probe.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        values = session.run(wanted, feeds)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument types
        raise _unresolved_error(first, path, f"; running it with onnxruntime failed: "
                                f"{exc}") from exc
    return {n: tuple(v.shape) for n, v in zip(wanted, values, strict=True)}


def _dims_text(value_info: onnx.ValueInfoProto) -> str:
    dims = value_info.type.tensor_type.shape.dim
    return "[" + ", ".join(d.dim_param or str(d.dim_value) if d.dim_value <= 0 else
                           str(d.dim_value) for d in dims) + "]"


def _unresolved_error(err: _Unresolved, path: Path, detail: str) -> ModelLoadError:
    node = err.node
    return ModelLoadError(f"{path}: cannot resolve the shape of tensor {err.tensor!r}, "
                          f"input of node {node.name or '(unnamed)'!r} ({node.op_type}){detail}")

"""Read the workload of an ONNX graph: Conv, Gemm and MatMul nodes as layers.

Shapes come from ``onnx.shape_inference`` (with data propagation) after the graph's
dynamic dimensions are fixed. Graphs whose shape arithmetic it cannot follow (the
TorchScript exporter's dynamic-batch attention computes head sizes with ``Div``) are
run once with onnxruntime to read the missing shapes.

Decisions:

* A value is *static* when it derives from initializers, ``Constant`` nodes or
  ``Shape``/``Size`` alone; nodes on static values are weight or shape preprocessing
  and are skipped. A product with a static operand is an FC layer whose weight density
  is measured on that initializer (followed through Transpose, Reshape, Cast ...);
  a product of two activations is a MATMUL layer.
* ONNX holds no activations: their densities are measured by running the graph with
  ONNX Runtime on seeded or given inputs (`onnx_run`); when it cannot run, they are
  taken as dense and the workload's notes say so.
* Each modelled node's input shape is checked against its weights, and options
  against the graph's fixed input dimensions (`onnx_shapes`): a mismatch is an
  `InputError` naming the node or input, never a layer with wrong letters.
* Data-layout nodes (`FREE_OPS`) are not reported; other nodes are counted in
  ``Workload.unmodelled`` by op type (``domain.op_type`` outside the default domain).
* Conv (1-, 2-, 3-D), ConvTranspose, Einsum and the quantized products are handled in
  `onnx_products`, lowered as the PyTorch capture lowers them. Opening the file, static
  values and shape inference are in `onnx_load`.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec

import numpy as np
import onnx
from onnx import numpy_helper

from nnjoules.energy.extract import onnx_products as products
from nnjoules.energy.extract.onnx_load import infer_shapes, is_external, load_onnx, static_values
from nnjoules.energy.extract.onnx_products import OnnxProduct as _Product
from nnjoules.energy.extract.onnx_products import attr as _attr
from nnjoules.energy.extract.onnx_run import (
    GraphRunError,
    activation_densities,
    generated_inputs,
    layer_operands,
    run_graph,
)
from nnjoules.energy.extract.onnx_shapes import (
    ShapeMismatch,
    check_gemm,
    check_inner,
    dims_text,
    fix_input_shapes,
)
from nnjoules.energy.extract.sparsity import finite_tensor_stats, row_peak_density
from nnjoules.energy.workload import Density, Layer, LayerKind, UnmodelledOp, Workload
from nnjoules.errors import ModelLoadError, NNJoulesError

__all__ = ["FREE_OPS", "workload_from_onnx"]

log = logging.getLogger(__name__)
_P = ParamSpec("_P")

FREE_OPS = frozenset({
    "Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split",
    "Slice", "Gather", "Expand", "Tile", "Cast", "CastLike", "Dropout", "Pad", "Shape",
    "Size", "Constant", "ConstantOfShape"})


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


def _gemm(node: onnx.NodeProto, g: _Graph) -> tuple[_Product, ...]:
    # [N, M] = Gemm(A [N, C] (A^T if transA), B [C, M] (B^T if transB)) + bias
    a, b = g.shape(node, 0), g.shape(node, 1)
    check_gemm(node, a, b, trans_a=bool(_attr(node, "transA", 0)),
               trans_b=bool(_attr(node, "transB", 0)))
    n, c = (a[1], a[0]) if _attr(node, "transA", 0) else a
    m = b[0] if _attr(node, "transB", 0) else b[1]
    return (_fc_or_matmul(node, g, n=n, c=c, m=m, batch=1, fold=1),)


def _matmul(node: onnx.NodeProto, g: _Graph) -> tuple[_Product, ...]:
    # [B.., N, M] = MatMul(A [B.., N, C], B [B.., C, M]), numpy broadcasting
    a, b = g.shape(node, 0), g.shape(node, 1)
    a2 = (1, *a) if len(a) == 1 else a  # 1-D operands become a row / a column
    b2 = (*b, 1) if len(b) == 1 else b
    check_inner(node, a2, b2, a_inner=-1, b_inner=-2, batch=True)
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


_HANDLERS: dict[str, products.Handler] = {name: products.non_empty(h) for name, h in {
    "Conv": products.conv, "ConvTranspose": products.conv_transpose, "Gemm": _gemm,
    "MatMul": _matmul, "Einsum": products.einsum,
    "ConvInteger": products.remapped(products.conv, (0, 1)),
    "QLinearConv": products.remapped(products.conv, (0, 3)),
    "MatMulInteger": products.remapped(_matmul, (0, 1)),
    "QLinearMatMul": products.remapped(_matmul, (0, 3))}.items()}


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
                       name: str | None = None, measure_density: bool = True,
                       inputs: Sequence[np.ndarray] | None = None, seed: int = 0) -> Workload:
    """The workload of the ONNX graph in ``path``.

    Args:
        path: an ``.onnx`` file (external data next to it is loaded too).
        batch: size of the dynamic (symbolic) first dimension of the graph inputs; 1 when
            not given. A batch fixed in the graph cannot be changed (see `onnx_shapes`).
        input_shape: the first graph input's shape *without* the batch dimension, e.g.
            ``(3, 224, 224)``, for its dynamic dimensions; fixed ones must agree.
        name: the workload name; defaults to the file name without suffix.
        measure_density: measure weight densities on the initializers and activation
            densities by running the graph with ONNX Runtime (`onnx_run`); when False
            every density is 1.0.
        inputs: arrays to run the graph on, one per graph input in order; their shapes
            fix the inputs' shapes. Default: generated from ``seed``.
        seed: seed of the generated inputs (standard normal, as the CLI draws them).

    Returns:
        Conv, Gemm and MatMul nodes as layers in graph order (named by node name,
        repeats get ``#1``, ``#2`` ...), with measured densities, and the unmodelled node
        types with their counts. When the graph cannot be run, activations are taken as
        dense: a warning is logged and ``Workload.notes`` says why.

    Raises:
        ModelLoadError: the file is missing or not ONNX, or a shape cannot be resolved
            (the message names the node and the tensor).
        InputError: ``batch``, ``input_shape`` or ``inputs`` contradict the graph's
            inputs, or a node's input shape disagrees with its weights (names the node).
    """
    path = Path(path)
    model, not_loaded = load_onnx(path)
    graph = model.graph
    init_names = {t.name for t in graph.initializer}
    graph_inputs = [i for i in graph.input if i.name not in init_names]
    feeds = fix_input_shapes(graph_inputs, batch=batch, input_shape=input_shape,
                             examples=inputs, path=path)
    static, sources, tensors = static_values(graph)
    g = _Graph(infer_shapes(model, path), static)
    try:
        found = _find(model, graph_inputs, g, path, feeds or {}, seed)
    except ShapeMismatch as err:
        raise ShapeMismatch(f"{path}: {err}") from None
    layers = _layers(found, sources if measure_density else {}, tensors, path)
    unmodelled = tuple(UnmodelledOp(op, n) for op, n in sorted(found.unmodelled.items()))
    label = name or path.stem
    if not layers:
        raise ModelLoadError(f"{path}: the graph has no Conv, Gemm or MatMul node on its "
                             f"inputs; node types seen: {[u.op for u in unmodelled]}")
    notes: tuple[str, ...] = ()
    if measure_density:
        operands = layer_operands(graph, found.nodes, layers, static)
        layers, note = activation_densities(model, graph_inputs, layers, operands, feeds,
                                            seed=seed, not_loaded=not_loaded)
        notes = () if note is None else (f"{path}: {note}",)
    elif not_loaded:
        notes = (f"{path}: {not_loaded}",)
    for note in notes:
        log.warning("%s", note)
    dims = [d.dim_value for d in graph_inputs[0].type.tensor_type.shape.dim] \
        if graph_inputs else []
    items = feeds[graph_inputs[0].name].shape[0] if feeds and graph_inputs[0].name in feeds \
        else (dims[0] if dims and dims[0] > 0 else None)
    return Workload(label, layers, unmodelled, notes=notes, items=items)


def _find(model: onnx.ModelProto, graph_inputs: list[onnx.ValueInfoProto], g: _Graph,
          path: Path, feeds: dict[str, np.ndarray], seed: int) -> _Found:
    """The products of the graph; runs it for the shapes inference leaves unknown."""
    try:
        return _walk(model.graph, g)
    except _Unresolved as first:
        g.shapes.update(_run_for_shapes(model, graph_inputs, first, path, feeds, seed))
        try:
            return _walk(model.graph, g)
        except _Unresolved as err:
            raise _unresolved_error(err, path, "") from None



@dataclass
class _Found:
    """Products in graph order, with their names, and unmodelled node types."""

    products: list[tuple[str, str, _Product]]  # name, op type, product
    unmodelled: Counter[str]
    nodes: list[onnx.NodeProto] = field(default_factory=list)  # the node of each product


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
                if isinstance(product, str):  # a part the energy model does not cover
                    found.unmodelled[product] += 1
                    continue
                count = names[base]
                names[base] += 1
                found.products.append((base if count == 0 else f"{base}#{count}",
                                       node.op_type, product))
                found.nodes.append(node)
        elif node.domain not in ("", "ai.onnx"):
            found.unmodelled[f"{node.domain}.{node.op_type}"] += 1
        elif node.op_type not in FREE_OPS:
            found.unmodelled[node.op_type] += 1
    return found


def _layers(found: _Found, sources: dict[str, str], tensors: dict[str, onnx.TensorProto],
            path: Path) -> tuple[Layer, ...]:
    cache: dict[tuple[str, int], Density] = {}  # (initializer, row length) -> its density
    first_use: dict[str, str] = {}  # initializer -> the first layer using it (tied weights)
    layers = []
    for name, op_type, p in found.products:
        density = Density()
        source = sources.get(p.weights or "")
        holder = first_use.setdefault(source, name) if source is not None else name
        if source is not None and not is_external(tensors[source]):
            # Through a layout node (Transpose, Reshape) the last axis may not be the kernel
            # row: only 1-wide rows are measured there (row length 0: no bound).
            row = p.S if p.S == 1 or p.weights == source else 0
            if (source, row) not in cache:
                cache[source, row] = _weight_density(
                    numpy_helper.to_array(tensors[source]), row,
                    what=f"{path}: node {name!r}: weights {source!r}")
            density = cache[source, row]
        try:
            layers.append(Layer(name, p.kind, N=p.N, M=p.M, C=p.C, G=p.G, H=p.H, W=p.W,
                                R=p.R, S=p.S, E=p.E, F=p.F, stride=p.stride,
                                dilation=p.dilation, padding=p.padding, density=density,
                                op=op_type, shares_weights="" if holder == name else holder))
        except ValueError as exc:  # e.g. a kernel larger than its padded input
            raise ModelLoadError(f"{path}: node {name!r} ({op_type}) is not a valid "
                                 f"layer: {exc}") from exc
    return tuple(layers)


def _weight_density(values: np.ndarray, row_len: int, *, what: str) -> Density:
    """Density, RLC pairs and densest filter row (``row_len`` wide; 0: unknown, no bound) of
    an initializer: statically known weights."""
    weights, pairs = finite_tensor_stats(values, what=what)
    peak = row_peak_density(values, row_len) if row_len else 1.0
    return Density(weights=weights, weights_rlc_pairs=pairs, weights_row_peak=peak)


def _run_for_shapes(model: onnx.ModelProto, inputs: list[onnx.ValueInfoProto],
                    first: _Unresolved, path: Path, feeds: dict[str, np.ndarray],
                    seed: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the inputs of every modelled node, by running the graph once."""
    for value_info in inputs:
        if not all(d.dim_value > 0 for d in value_info.type.tensor_type.shape.dim):
            raise _unresolved_error(first, path, f"; graph input {value_info.name!r} has "
                                    f"unknown dimensions {dims_text(value_info)}: give the "
                                    "per-item shape (--input-shape C,H,W, or input_shape=)")
    wanted = sorted({i for n in model.graph.node if n.op_type in _HANDLERS
                     for i in n.input if i} - {t.name for t in model.graph.initializer})
    try:
        values = run_graph(model, feeds or generated_inputs(inputs, seed), wanted)
    except GraphRunError as exc:
        raise _unresolved_error(first, path, f"; running the graph for its shapes "
                                f"failed: {exc}") from None
    return {n: tuple(v.shape) for n, v in values.items()}


def _unresolved_error(err: _Unresolved, path: Path, detail: str) -> ModelLoadError:
    node = err.node
    return ModelLoadError(f"{path}: cannot resolve the shape of tensor {err.tensor!r}, "
                          f"input of node {node.name or '(unnamed)'!r} ({node.op_type}){detail}")

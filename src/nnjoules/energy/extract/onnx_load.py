"""Open an ONNX file and read what its graph says without running it.

* `load_onnx`: the model, with its external weight data when that can be loaded (shapes
  need no weight values, so a missing data file only makes weight densities unknown).
* `static_values`: the values that derive from constants alone (weight and shape
  preprocessing), and for each the constant tensor whose values it carries.
* `infer_shapes`: concrete shapes from ``onnx.shape_inference`` with data propagation,
  run on a copy whose large initializers carry dims but no values.
"""

from __future__ import annotations

import math
from pathlib import Path

import onnx
from onnx import external_data_helper

from nnjoules.energy.extract.onnx_products import attr as _attr
from nnjoules.errors import ModelLoadError

__all__ = ["LAYOUT_OPS", "infer_shapes", "is_external", "load_onnx", "static_values"]

# Nodes that keep a constant's values, only relabelled: densities follow them.
LAYOUT_OPS = frozenset({"Identity", "Reshape", "Flatten", "Transpose", "Squeeze",
                        "Unsqueeze", "Cast"})
_STRIP_VALUES = 1024  # initializers larger than this are hidden from shape inference


def load_onnx(path: Path) -> tuple[onnx.ModelProto, str | None]:
    """The model, and why its external weight data was not loaded (None: it was).

    Raises:
        ModelLoadError: ``path`` is a folder, missing, not ONNX, or holds no nodes.
    """
    if path.is_dir():
        raise ModelLoadError(f"{str(path)!r} is a folder, not an ONNX file")
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
        # Shapes need no weight values: go on, with the densities that need them 1.0.
        return model, (f"external weight data not loaded ({exc}); the weight densities "
                       "of the layers using it and all activation densities are taken as "
                       "1.0 (dense)")
    return model, None


def is_external(tensor: onnx.TensorProto) -> bool:
    """Whether the tensor's values live in a file that was not loaded."""
    return tensor.data_location == onnx.TensorProto.EXTERNAL


def static_values(graph: onnx.GraphProto
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
        elif node.op_type in LAYOUT_OPS and inputs and inputs[0] in sources:
            sources[node.output[0]] = sources[inputs[0]]
    return static, sources, tensors


def infer_shapes(model: onnx.ModelProto, path: Path) -> dict[str, tuple[int, ...]]:
    """Concrete shapes of the graph's values (unknown ones left out).

    Raises:
        ModelLoadError: ONNX shape inference rejects the graph (names ``path``).
    """
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

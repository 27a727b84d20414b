"""Run an ONNX graph with ONNX Runtime to measure the densities of its activations.

ONNX files hold weights but no activations. To give an ONNX estimate the densities the
PyTorch path measures (`torch_capture`), the graph is run once on the example inputs, or
on generated ones, and every layer's operands are read back:

* **Inputs.** Generated inputs are drawn exactly as the CLI draws them for a PyTorch
  model: one ``torch.Generator`` seeded with ``seed``, a standard normal tensor per
  floating-point graph input, in graph order. Integer and boolean inputs (token ids,
  masks) are zeros, a valid index for any embedding.
* **Ifmap** density is that of the node's activation input (before padding, which the
  ``pads`` attribute adds on chip). For a product of two activations (MATMUL) the second
  operand is measured as the "weights", as PyTorch does.
* **Ofmap** density is that of the value written back: the node's output followed
  through the first node that consumes it while that node is element-wise on it alone
  (`CHAIN_OPS`: batch norm, ReLU, Clip, a bias ``Add`` ...), as PyTorch follows the
  chain of fused operators applied to a layer's output.
* The graph runs on the CPU with graph optimisations off (so every tensor keeps its
  name) and with ONNX Runtime's own logging silenced: its errors reach the user once,
  through our message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import onnx

from nnjoules.energy.extract.onnx_shapes import dims_text
from nnjoules.energy.extract.sparsity import tensor_stats
from nnjoules.energy.workload import Layer, LayerKind

__all__ = ["CHAIN_OPS", "GraphRunError", "Operands", "activation_densities", "generated_inputs",
           "layer_operands", "measure_activations", "run_graph"]

# Nodes that a layer's output goes through, alone, before it is written back (ONNX
# counterparts of torch_capture.FUSED_OPS and its view operators).
CHAIN_OPS = frozenset({
    "BatchNormalization", "Relu", "Clip", "LeakyRelu", "Gelu", "Elu", "HardSwish",
    "Dropout", "Identity", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Cast"})
# Element-wise with a constant: only a bias (what aten.addmm and Conv's B include).
_BIAS_OPS = frozenset({"Add"})
_SILENT = 4  # ONNX Runtime's FATAL level: nothing below it is printed


class GraphRunError(Exception):
    """ONNX Runtime could not load or run the graph; the message is its first line."""


@dataclass(frozen=True)
class Operands:
    """Names of the tensors a layer reads and writes, whose densities are measured."""

    ifmap: str
    ofmap: str
    second: str | None = None  # the activation second operand of a MATMUL


MAX_INPUT_VALUES = 1 << 28  # values of one generated graph input (1 GiB of float32)


# How a workload's notes say that the graph could not run and activations are dense.
DENSE_NOTE = "activations taken as dense (ifmap and ofmap densities 1.0): "


def generated_inputs(inputs: Sequence[onnx.ValueInfoProto], seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs of the (fully known) shapes of ``inputs``, as the CLI draws them.

    Args:
        inputs: graph inputs whose dimensions are all positive.
        seed: seed of the one ``torch.Generator`` the float inputs are drawn from.

    Returns:
        The feeds by input name: zeros for integer and boolean inputs, standard normal
        values (cast to the input's type) for the others.

    Raises:
        GraphRunError: an input larger than ``MAX_INPUT_VALUES`` or of an unknown type.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    feeds = {}
    for value_info in inputs:
        tensor_type = value_info.type.tensor_type
        dims = [d.dim_value for d in tensor_type.shape.dim]
        if math.prod(dims) > MAX_INPUT_VALUES:  # a damaged file: never allocate that much
            raise GraphRunError(f"graph input {value_info.name!r} of shape {dims} is too "
                                "large to run")
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        except KeyError:
            raise GraphRunError(f"graph input {value_info.name!r} has no known element type "
                                f"({tensor_type.elem_type})") from None
        if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_):
            values = np.zeros(dims, dtype=dtype)
        else:  # numpy floats and ml_dtypes' (bfloat16, float8 ...), whose kind is "V"
            values = torch.randn(dims, generator=generator).numpy().astype(dtype)
        feeds[value_info.name] = values
    return feeds


def run_graph(model: onnx.ModelProto, feeds: dict[str, np.ndarray],
              wanted: Sequence[str]) -> dict[str, np.ndarray]:
    """The values of the tensors ``wanted`` when ``model`` runs on ``feeds``.

    ``wanted`` may name any value of the graph: missing ones become extra graph outputs
    for this run (the model is left as it was).

    Raises:
        GraphRunError: onnxruntime is missing, or it cannot load or run the graph.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise GraphRunError("onnxruntime is not installed") from None
    graph = model.graph
    known = {o.name for o in graph.output}
    extra = [n for n in dict.fromkeys(wanted) if n not in known]
    size = len(graph.output)
    graph.output.extend(onnx.ValueInfoProto(name=n) for n in extra)
    try:
        data = model.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GiB
        raise GraphRunError(f"the model cannot be serialised for onnxruntime: {exc}") from None
    finally:
        del graph.output[size:]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = _SILENT
    run_options = ort.RunOptions()
    run_options.log_severity_level = _SILENT
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        names = list(dict.fromkeys(wanted))
        values = session.run(names, feeds, run_options)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument types
        raise GraphRunError(_first_line(exc)) from None
    return dict(zip(names, values, strict=True))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def layer_operands(graph: onnx.GraphProto, nodes: Sequence[onnx.NodeProto],
                   layers: Sequence[Layer], static: set[str]) -> list[Operands]:
    """The activation tensors of each layer: ``nodes[i]`` computes ``layers[i]``.

    The first two inputs of a modelled node are its operands; those that are not
    static (computed from constants alone) are activations.
    """
    consumers: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, node)  # the first consumer in graph order
    outputs = {o.name for o in graph.output}
    found = []
    for node, layer in zip(nodes, layers, strict=True):
        acts = [i for i in node.input[:2] if i and i not in static]
        second = acts[1] if layer.kind is LayerKind.MATMUL and len(acts) > 1 else None
        found.append(Operands(ifmap=acts[0] if acts else node.input[0],
                              ofmap=_written_back(node.output[0], consumers, outputs, static),
                              second=second))
    return found


def _written_back(tensor: str, consumers: dict[str, onnx.NodeProto], outputs: set[str],
                  static: set[str]) -> str:
    """The value ``tensor`` becomes before it leaves its layer (see the module notes)."""
    seen = {tensor}
    while tensor not in outputs and (node := consumers.get(tensor)) is not None:
        if (node.domain not in ("", "ai.onnx") or node.input[0] != tensor
                or node.op_type not in CHAIN_OPS | _BIAS_OPS
                or not all(i in static for i in node.input[1:] if i)
                or node.output[0] in seen):
            break
        tensor = node.output[0]
        seen.add(tensor)
    return tensor


def activation_densities(model: onnx.ModelProto, inputs: Sequence[onnx.ValueInfoProto],
                         layers: tuple[Layer, ...], operands: Sequence[Operands],
                         feeds: dict[str, np.ndarray] | None, *, seed: int,
                         not_loaded: str | None) -> tuple[tuple[Layer, ...], str | None]:
    """``layers`` with measured activation densities, or unchanged and a note saying why.

    Args:
        model: the graph, its input shapes fixed.
        inputs: the graph inputs.
        layers: the layers found, weight densities measured; operands: their tensors.
        feeds: the example inputs, or None to generate them from ``seed``.
        seed: see `generated_inputs`.
        not_loaded: why the external weight data is missing, if it is (the graph cannot
            run without it).

    Returns:
        The layers, and None or the note that activations were taken as dense.
    """
    dense = DENSE_NOTE
    if not_loaded is not None:
        return layers, not_loaded
    if feeds is None:
        for value_info in inputs:
            if not all(d.dim_value > 0 for d in value_info.type.tensor_type.shape.dim):
                return layers, (f"{dense}graph input {value_info.name!r} has unknown "
                                f"dimensions {dims_text(value_info)}; give its shape")
        feeds = generated_inputs(inputs, seed)
    try:
        return measure_activations(model, layers, operands, feeds), None
    except GraphRunError as exc:
        return layers, f"{dense}onnxruntime could not run the graph: {exc}"


def measure_activations(model: onnx.ModelProto, layers: Sequence[Layer],
                        operands: Sequence[Operands], feeds: dict[str, np.ndarray]
                        ) -> tuple[Layer, ...]:
    """``layers`` with ifmap and ofmap densities (and MATMUL second operands) measured.

    Args:
        model: the graph, with its weights loaded.
        layers: the layers found in it, densities of weights already measured.
        operands: the tensors of each layer (see `operands_of`), in the same order.
        feeds: the graph's inputs by name.

    Raises:
        GraphRunError: onnxruntime cannot load or run the graph.
    """
    wanted = {n for op in operands for n in (op.ifmap, op.ofmap, op.second) if n}
    values: dict[str, Any] = dict(feeds)
    values.update(run_graph(model, feeds, sorted(wanted - set(feeds))))
    cache: dict[str, tuple[float, float]] = {}

    def stats(name: str) -> tuple[float, float]:
        if name not in cache:
            cache[name] = tensor_stats(np.asarray(values[name]))
        return cache[name]

    measured = []
    for layer, op in zip(layers, operands, strict=True):
        (ifmaps, ifmap_pairs), (ofmaps, ofmap_pairs) = stats(op.ifmap), stats(op.ofmap)
        density = replace(layer.density, ifmaps=ifmaps, ifmaps_rlc_pairs=ifmap_pairs,
                          ofmaps=ofmaps, ofmaps_rlc_pairs=ofmap_pairs)
        if op.second is not None:
            weights, pairs = stats(op.second)
            density = replace(density, weights=weights, weights_rlc_pairs=pairs)
        measured.append(replace(layer, density=density))
    return tuple(measured)

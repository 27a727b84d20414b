"""Workload import from ONNX: hand-built graphs, exported networks, error messages."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torchvision
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from nnjoules.energy.extract import extract_workload, workload_from_module, workload_from_onnx
from nnjoules.energy.extract.sparsity import tensor_stats
from nnjoules.energy.workload import LayerKind, Workload
from nnjoules.errors import InputError, ModelLoadError

FLOAT = TensorProto.FLOAT
# the TorchScript-based exporter warns that it is deprecated; nothing else is ignored
legacy_export = pytest.mark.filterwarnings(
    "ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning")
legacy_export_removal = pytest.mark.filterwarnings(
    "ignore:The feature will be removed:DeprecationWarning")


def save(tmp_path: Path, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
         initializers: list[tuple[str, np.ndarray]] | None = None, name: str = "g") -> Path:
    """A one-graph model, opset 17, whose output is ``y``."""
    inits = [numpy_helper.from_array(a, n) for n, a in initializers or []]
    output = helper.make_tensor_value_info("y", FLOAT, None)
    graph = helper.make_graph(nodes, name, inputs, [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def x_input(*dims: int | str, name: str = "x") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, FLOAT, list(dims))


def weights(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def letters(layer) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    return (layer.N, layer.M, layer.C, layer.G, layer.H, layer.W, layer.R, layer.S, layer.E,
            layer.F)


def test_conv_with_groups_strides_pads_dilations(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=2, strides=[2, 1],
                            pads=[1, 2, 3, 0], dilations=[1, 2])
    path = save(tmp_path, [conv], [x_input(1, 8, 10, 12)], [("w", weights(6, 4, 3, 3))])
    w = workload_from_onnx(path)
    (layer,) = w.layers
    # H = 10 + 1 + 3, W = 12 + 2 + 0; E = (14 - 3) // 2 + 1, F = (14 - 5) // 1 + 1
    assert letters(layer) == (1, 3, 4, 2, 14, 14, 3, 3, 6, 10)
    assert (layer.stride, layer.dilation, layer.padding) == ((2, 1), (1, 2), (1, 3, 2, 0))
    assert (layer.name, layer.kind, layer.op, w.name) == ("conv", LayerKind.CONV, "Conv", "g")


@pytest.mark.parametrize(("auto_pad", "padding", "e"), [
    ("SAME_UPPER", (0, 1, 0, 1), 4),  # total padding 1: the extra row goes at the end
    ("SAME_LOWER", (1, 0, 1, 0), 4),  # ... or at the start
    ("VALID", (0, 0, 0, 0), 3),
])
def test_conv_auto_pad(tmp_path: Path, auto_pad: str, padding: tuple[int, ...], e: int) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=[2, 2])
    path = save(tmp_path, [conv], [x_input(1, 2, 8, 8)], [("w", weights(4, 2, 3, 3))])
    (layer,) = workload_from_onnx(path).layers
    assert (layer.padding, layer.E, layer.F) == (padding, e, e)
    assert layer.H == 8 + padding[0] + padding[1]


def test_conv_1d(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], strides=[2], pads=[1, 1])
    path = save(tmp_path, [conv], [x_input(3, 4, 50)], [("w", weights(6, 4, 5))])
    (layer,) = workload_from_onnx(path).layers
    assert letters(layer) == (3, 6, 4, 1, 1, 52, 1, 5, 1, 24)  # as nn.Conv1d: a 1 x L image
    assert (layer.stride, layer.padding) == ((1, 2), (0, 0, 1, 1))


def test_gemm_transposes_and_kinds(tmp_path: Path) -> None:
    fc = helper.make_node("Gemm", ["x", "w"], ["h"], name="fc", transA=1, transB=1)
    mm = helper.make_node("Gemm", ["h", "z"], ["y"], name="mm")
    path = save(tmp_path, [fc, mm], [x_input(8, 3), x_input(5, 7, name="z")],
                [("w", weights(5, 8))])
    fc_layer, mm_layer = workload_from_onnx(path).layers
    # fc: A^T is [3, 8], B^T is [8, 5]; mm: two activations [3, 5] @ [5, 7]
    assert (fc_layer.kind, fc_layer.N, fc_layer.C, fc_layer.M) == (LayerKind.FC, 3, 8, 5)
    assert (mm_layer.kind, mm_layer.N, mm_layer.C, mm_layer.M) == (LayerKind.MATMUL, 3, 5, 7)
    # the activation second operand is measured, as PyTorch does (random normal: no zeros)
    assert (mm_layer.density.weights, mm_layer.density.weights_rlc_pairs) == (1.0, 1.0)


def test_matmul_batched_and_broadcast(tmp_path: Path) -> None:
    batched = helper.make_node("MatMul", ["a", "b"], ["ab"])
    broadcast = helper.make_node("MatMul", ["ab", "c"], ["y"])
    path = save(tmp_path, [batched, broadcast],
                [x_input(2, 3, 4, 8, name="a"), x_input(2, 3, 8, 6, name="b"),
                 x_input(6, 5, name="c")])
    first, second = workload_from_onnx(path).layers
    assert (first.kind, first.G, first.N, first.C, first.M) == (LayerKind.MATMUL, 6, 4, 8, 6)
    assert (second.kind, second.G, second.N, second.C, second.M) == (LayerKind.MATMUL, 6, 4, 6, 5)
    assert (first.name, second.name) == ("MatMul_0", "MatMul_1")  # unnamed nodes


def test_matmul_on_a_transposed_initializer_is_fc_with_its_density(tmp_path: Path) -> None:
    w_stored = weights(6, 8)
    w_stored[:, ::2] = 0.0  # half pruned
    nodes = [helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),  # constant folding
             helper.make_node("MatMul", ["x", "wt"], ["y"], name="linear")]
    path = save(tmp_path, nodes, [x_input(2, 5, 8)], [("w", w_stored)])
    w = workload_from_onnx(path)
    (layer,) = w.layers
    assert (layer.kind, layer.N, layer.C, layer.M, layer.G) == (LayerKind.FC, 10, 8, 6, 1)
    assert (layer.density.weights, layer.density.weights_rlc_pairs) == tensor_stats(w_stored)
    assert layer.density.weights == 0.5
    # the ifmap is measured on the generated input: standard normal, no zeros
    assert (layer.density.ifmaps, layer.density.ifmaps_rlc_pairs) == (1.0, 1.0)
    assert w.unmodelled == ()  # the Transpose of a weight is not part of the workload
    (unmeasured,) = workload_from_onnx(path, measure_density=False).layers
    assert (unmeasured.density.weights, unmeasured.density.weights_rlc_pairs) == (1.0, None)


def test_dynamic_batch_and_input_shape(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])
    path = save(tmp_path, [conv], [x_input("batch", 3, "h", "w")], [("w", weights(4, 3, 3, 3))])
    assert workload_from_onnx(path, input_shape=(3, 32, 32)).layers[0].N == 1
    assert workload_from_onnx(path, batch=4, input_shape=(3, 32, 32)).layers[0].N == 4
    layer = workload_from_onnx(path, batch=2, input_shape=(3, 16, 20)).layers[0]
    assert (layer.N, layer.H, layer.W, layer.E, layer.F) == (2, 18, 22, 16, 20)
    with pytest.raises(InputError, match=r"input_shape \(16, 20\) has 2 dimensions but graph "
                                         r"input 'x' has 4 including the batch"):
        workload_from_onnx(path, input_shape=(16, 20))
    with pytest.raises(InputError, match="must be positive integers"):
        workload_from_onnx(path, batch=0)
    with pytest.raises(ModelLoadError, match=r"graph input 'x' has unknown dimensions "
                                             r"\[1, 3, h, w\]: give the per-item shape "
                                             r"\(--input-shape C,H,W, or input_shape=\)$"):
        workload_from_onnx(path)  # the spatial sizes are unknown without it


def test_unmodelled_and_free_nodes(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("ConvTranspose", ["p", "wt"], ["u"]),
        helper.make_node("Relu", ["u"], ["u2"]),
        helper.make_node("Flatten", ["u2"], ["f"]),  # free: a reshape
        helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1),
    ]
    inits = [("w", weights(4, 3, 3, 3)), ("wt", weights(4, 2, 2, 2)),
             ("fc", weights(10, 2 * 3 * 3))]  # ConvTranspose: [1, 4, 2, 2] -> [1, 2, 3, 3]
    w = workload_from_onnx(save(tmp_path, nodes, [x_input(1, 3, 6, 6)], inits))
    assert [layer.name for layer in w] == ["conv", "ConvTranspose_3", "fc"]  # lowered
    assert {u.op: u.count for u in w.unmodelled} == {"ConvTranspose overlap-add": 1,
                                                     "MaxPool": 1, "Relu": 2}


def test_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"ONNX file '.*nope\.onnx' does not exist"):
        workload_from_onnx(tmp_path / "nope.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\xff\x00 this is not a protobuf \x12\x99" * 10)
    with pytest.raises(ModelLoadError, match=r"'.*garbage\.onnx' is not an ONNX model"):
        workload_from_onnx(garbage)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=r"'.*empty\.onnx' is not an ONNX model: it holds no"):
        workload_from_onnx(empty)


def test_unresolvable_shape_names_node_and_tensor(tmp_path: Path) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Conv", ["r", "w"], ["y"], name="stem")]
    path = save(tmp_path, nodes, [x_input(1, 3, "height", "width")], [("w", weights(4, 3, 3, 3))])
    with pytest.raises(ModelLoadError, match=r"cannot resolve the shape of tensor 'r', input of "
                                             r"node 'stem' \(Conv\); graph input 'x' has unknown "
                                             r"dimensions \[1, 3, height, width\]"):
        workload_from_onnx(path)
    assert workload_from_onnx(path, input_shape=(3, 8, 8)).layers[0].E == 6  # resolvable


def test_inconsistent_node_is_a_load_error(tmp_path: Path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="big")  # 5 x 5 kernel, 4 x 4 input
    path = save(tmp_path, [conv], [x_input(1, 1, 4, 4)], [("w", weights(2, 1, 5, 5))])
    with pytest.raises(ModelLoadError, match=r"node 'big' \(Conv\) is not a valid layer"):
        workload_from_onnx(path)


def test_no_layers(tmp_path: Path) -> None:
    path = save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], [x_input(1, 4)])
    with pytest.raises(ModelLoadError, match=r"no Conv, Gemm or MatMul node .* \['Relu'\]"):
        workload_from_onnx(path)


class Block(nn.Module):
    """Attention as the TorchScript exporter writes it: head sizes computed with Div."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.attn(x, x, x, need_weights=False)[0])


@legacy_export
@legacy_export_removal
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_dynamic_batch_attention_resolved_by_running_the_graph(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model, x = Block().eval(), torch.randn(2, 5, 16)
    path = tmp_path / "block.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    expected = workload_from_module(model, x, measure_density=False)
    got = workload_from_onnx(path, batch=2)
    assert got.macs == expected.macs == 2 * 5 * 16 * 48 + 2 * 2 * 5 * 5 * 8 * 2 + 2 * 5 * 16 * 20
    assert [layer.kind for layer in got] == [layer.kind for layer in expected]
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # no runtime: a clear error
    with pytest.raises(ModelLoadError, match=r"cannot resolve the shape of tensor .* input of "
                                             r"node '/attn/MatMul_1' \(MatMul\); running the "
                                             r"graph for its shapes failed: onnxruntime is "
                                             r"not installed$"):
        workload_from_onnx(path, batch=2)


def shapes(workload: Workload) -> Counter[tuple[object, ...]]:
    """Layers as a multiset of shapes: graph order may differ from execution order."""
    return Counter((layer.kind, *layer.shape_key) for layer in workload)


# the legacy exporter is quicker for the smaller conv nets, the dynamo one for the rest;
# between them both styles of graph are read (Gemm vs. MatMul + Add, external data ...)
LEGACY_EXPORT = {"alexnet", "resnet50", "googlenet", "squeezenet1_0"}


def export(name: str, model: nn.Module, path: Path) -> None:
    torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), opset_version=17,
                      dynamo=name not in LEGACY_EXPORT)


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    return getattr(torchvision.models, name)(**kwargs).eval()


@legacy_export
@legacy_export_removal
def test_exported_squeezenet_matches_torch(tmp_path: Path) -> None:
    model = build("squeezenet1_0")
    export("squeezenet1_0", model, tmp_path / "squeezenet.onnx")
    got = extract_workload(tmp_path / "squeezenet.onnx")
    expected = workload_from_module(model, torch.randn(1, 3, 224, 224))
    assert got.name == "squeezenet"
    assert (got.macs, len(got)) == (expected.macs, len(expected))
    assert shapes(got) == shapes(expected)
    # weight densities come from the same initializers as the parameters
    assert [layer.density.weights for layer in got] == [layer.density.weights for layer in expected]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alexnet", "vgg16", "resnet50", "mobilenet_v2", "googlenet",
                                  "vit_b_16"])
@legacy_export
@legacy_export_removal
def test_exported_torchvision_matches_torch(tmp_path: Path, name: str) -> None:
    model = build(name)
    export(name, model, tmp_path / f"{name}.onnx")
    got = workload_from_onnx(tmp_path / f"{name}.onnx")
    expected = workload_from_module(model, torch.randn(1, 3, 224, 224), measure_density=False)
    assert (got.macs, len(got)) == (expected.macs, len(expected))
    assert shapes(got) == shapes(expected)


def _fc_with_external_weights(tmp_path):
    """A one-Gemm graph whose half-zero weight lives in an external data file."""
    weight = np.zeros((64, 32), dtype=np.float32)
    weight[::2] = 1.0
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "fc.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="fc.data",
                    size_threshold=0)
    return path


def test_external_weight_data_is_read_when_present(tmp_path):
    workload = workload_from_onnx(_fc_with_external_weights(tmp_path))
    (layer,) = workload.layers
    assert (layer.C, layer.M) == (32, 64)
    assert layer.density.weights == 0.5


def test_missing_external_weight_data_still_gives_shapes(tmp_path, caplog):
    path = _fc_with_external_weights(tmp_path)
    (tmp_path / "fc.data").unlink()
    workload = workload_from_onnx(path)
    (layer,) = workload.layers
    assert (layer.C, layer.M, layer.density.weights) == (32, 64, 1.0)
    assert "external weight data not loaded" in caplog.text

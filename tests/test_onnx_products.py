"""The ONNX importer counts every product the PyTorch capture counts, with the same shapes.

Each tiny model is exported (the TorchScript exporter where it can, the dynamo one for
operators it cannot export) and both workloads are compared layer by layer; hand-built
graphs cover Einsum, the quantized products and empty tensors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from nnjoules.energy.extract import workload_from_module, workload_from_onnx
from nnjoules.energy.workload import LayerKind, Workload
from test_capture_constructs import CONVS, PRODUCTS, Call, PaddedBuffer

# operators the TorchScript exporter does not export
DYNAMO_ONLY = {"nn.Bilinear", "vdot", "addmv", "addbmm"}


class LearnedEinsum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(5, 6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...ij,jk->...ik", x, self.w)


def _cases() -> dict[str, tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    cases = {name: (factory(), inputs) for name, (factory, inputs, _, _) in PRODUCTS.items()}
    cases.update({name: (factory(), (torch.randn(*shape),))
                  for name, (factory, shape) in CONVS.items()})
    cases["zero buffer"] = (PaddedBuffer(), (torch.randn(1, 3, 8, 8),))
    cases["conv then transposed"] = (nn.Sequential(nn.Conv2d(3, 8, 3, padding=1),
                                                   nn.ConvTranspose2d(8, 4, 2, stride=2)),
                                     (torch.randn(1, 3, 8, 8),))
    cases["transposed alone"] = (nn.ConvTranspose2d(32, 1, 3), (torch.randn(1, 32, 1, 1),))
    cases["einsum ellipsis weight"] = (LearnedEinsum(), (torch.randn(2, 3, 4, 5),))
    cases["einsum attention"] = (Call(lambda q, k: torch.einsum("bhqd,bhkd->bhqk", q, k)),
                                 (torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8)))
    return cases


CASES = _cases()


def export(model: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, *,
           dynamo: bool) -> Path:
    model.eval()
    if dynamo:
        torch.onnx.export(model, inputs, str(path), dynamo=True)
    else:
        torch.onnx.export(model, inputs, str(path), dynamo=False, opset_version=17)
    return path


def shapes(w: Workload) -> list[tuple[object, ...]]:
    return [(lay.kind, lay.N, lay.M, lay.C, lay.G, lay.H, lay.W, lay.R, lay.S, lay.E, lay.F,
             lay.stride, lay.dilation, lay.padding) for lay in w]


# the TorchScript-based exporter warns that it is deprecated; nothing else is ignored
legacy_export = pytest.mark.filterwarnings(
    "ignore:You are using the legacy TorchScript-based ONNX export:DeprecationWarning")
legacy_export_removal = pytest.mark.filterwarnings(
    "ignore:The feature will be removed:DeprecationWarning")


@pytest.mark.parametrize("case", CASES)
@legacy_export
@legacy_export_removal
def test_onnx_export_gives_the_same_layers(case: str, tmp_path: Path) -> None:
    model, inputs = CASES[case]
    path = export(model, inputs, tmp_path / "m.onnx", dynamo=case in DYNAMO_ONLY)
    captured, imported = workload_from_module(model, inputs), workload_from_onnx(path)
    assert shapes(imported) == shapes(captured)
    assert imported.macs == captured.macs


@legacy_export
@legacy_export_removal
def test_transposed_conv_values_from_onnx(tmp_path: Path) -> None:
    conv_t = CASES["conv then transposed"]
    w = workload_from_onnx(export(*conv_t, tmp_path / "a.onnx", dynamo=False))
    assert w.macs == 1 * 8 * 3 * 8 * 8 * 3 * 3 + 8 * 8 * 8 * 4 * 2 * 2 == 22_016
    assert [layer.op for layer in w] == ["Conv", "ConvTranspose"]
    alone = workload_from_onnx(export(*CASES["transposed alone"], tmp_path / "b.onnx",
                                      dynamo=False))
    assert alone.macs == 288 and not alone.unmodelled


# -- hand-built graphs -------------------------------------------------------------------

FLOAT = TensorProto.FLOAT


def save(tmp_path: Path, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
         initializers: list[tuple[str, np.ndarray]]) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", FLOAT,
                                                                                 None)],
                              initializer=[numpy_helper.from_array(a, n)
                                           for n, a in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    return path


def test_einsum_of_three_operands_is_reported(tmp_path: Path) -> None:
    nodes = [helper.make_node("Einsum", ["x", "x", "x"], ["e"], equation="ij,jk,kl->il"),
             helper.make_node("MatMul", ["e", "w"], ["y"], name="mm")]
    inputs = [helper.make_tensor_value_info("x", FLOAT, [4, 4])]
    w = workload_from_onnx(save(tmp_path, nodes, inputs, [("w", np.ones((4, 2), np.float32))]))
    assert [layer.name for layer in w] == ["mm"]
    assert {u.op: u.count for u in w.unmodelled} == {"Einsum": 1}


def test_quantized_products(tmp_path: Path) -> None:
    w8 = np.array([[0, 1], [2, 0], [3, 4]], np.int8)  # [C=3, M=2], density 4/6
    k8 = np.zeros((4, 3, 3, 3), np.int8)
    k8[:, 0] = 1  # density 1/3
    scale, zero = np.array(0.1, np.float32), np.array(0, np.int8)
    nodes = [
        helper.make_node("QLinearConv", ["x", "s", "z", "k", "s", "z", "s", "z"], ["c"],
                         name="qconv", pads=[1, 1, 1, 1]),
        helper.make_node("ConvInteger", ["x", "k"], ["c2"], name="iconv"),
        helper.make_node("QLinearMatMul", ["r", "s", "z", "w", "s", "z", "s", "z"], ["m"],
                         name="qmm"),
        helper.make_node("MatMulInteger", ["r", "w"], ["y"], name="imm"),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.INT8, [1, 3, 5, 5]),
              helper.make_tensor_value_info("r", TensorProto.INT8, [7, 3])]
    path = save(tmp_path, nodes, inputs, [("w", w8), ("k", k8), ("s", scale), ("z", zero)])
    w = workload_from_onnx(path)
    assert [layer.name for layer in w] == ["qconv", "iconv", "qmm", "imm"]
    assert [layer.macs for layer in w] == [4 * 3 * 5 * 5 * 9, 4 * 3 * 3 * 3 * 9, 7 * 3 * 2,
                                           7 * 3 * 2]
    assert [layer.kind for layer in w] == [LayerKind.CONV] * 2 + [LayerKind.FC] * 2
    assert [layer.density.weights for layer in w] == pytest.approx([1 / 3] * 2 + [4 / 6] * 2)


def test_product_on_an_empty_tensor_is_no_layer(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    # rows 0:0 of a [4, 8] activation: shape inference leaves the 0 unknown, onnxruntime
    # finds it; the second product does no MAC
    nodes = [helper.make_node("MatMul", ["x", "a"], ["h"], name="first"),
             helper.make_node("Slice", ["h", "zero", "zero"], ["none"]),
             helper.make_node("MatMul", ["none", "b"], ["y"], name="second")]
    inits = [("a", np.ones((8, 8), np.float32)), ("b", np.ones((8, 2), np.float32)),
             ("zero", np.zeros(1, np.int64))]
    inputs = [helper.make_tensor_value_info("x", FLOAT, [4, 8])]
    with caplog.at_level(logging.INFO, logger="nnjoules"):
        w = workload_from_onnx(save(tmp_path, nodes, inputs, inits))
    assert [layer.name for layer in w] == ["first"] and w.macs == 4 * 8 * 8
    assert "node 'second' (MatMul) runs on an empty tensor: 0 MACs" in caplog.text

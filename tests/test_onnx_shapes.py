"""Options that contradict an ONNX graph, and node shapes that disagree with their weights.

Each is one line naming the input or node, exit 2; never a layer with wrong letters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from nnjoules.cli import main
from nnjoules.energy.extract import workload_from_onnx
from nnjoules.energy.extract.onnx_shapes import ShapeMismatch, check_conv_transpose
from nnjoules.errors import InputError

FLOAT = TensorProto.FLOAT


def save(tmp_path: Path, nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
         initializers: dict[str, tuple[int, ...]], name: str = "g") -> Path:
    """A graph with output ``y`` and random initializers of the given shapes."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), n)
             for n, shape in initializers.items()]
    graph = helper.make_graph(nodes, name, inputs, [helper.make_tensor_value_info("y", FLOAT,
                                                                                   None)],
                              initializer=inits)
    path = tmp_path / f"{name}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def x_input(*dims: int | str, name: str = "x") -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, FLOAT, list(dims))


def lenet_like(tmp_path: Path, *dims: int | str, name: str = "fixed") -> Path:
    """Conv(1 -> 4, 3x3) - Relu - Flatten - Gemm(144 -> 10): exported at 1 x 1 x 8 x 8."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "fc_w"], ["y"], name="fc", transB=1)]
    return save(tmp_path, nodes, [x_input(*dims)], {"w": (4, 1, 3, 3), "fc_w": (10, 144)},
                name=name)


def cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line the CLI prints for ``argv``, which must exit with 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nnjoules: error: "), err
    return err[len("nnjoules: error: "):-1]


def test_options_contradicting_a_fixed_input_are_errors(tmp_path, capsys) -> None:
    path = lenet_like(tmp_path, 1, 1, 8, 8)
    fixed = f"{path}: input_shape (3, 32, 32) contradicts graph input 'x' of fixed shape " \
            "[1, 1, 8, 8]; re-export the model with dynamic axes to change it"
    assert cli_error(["estimate", str(path), "--input-shape", "3,32,32", "--batch", "4"],
                     capsys) == fixed
    assert cli_error(["estimate", str(path), "--batch", "4"], capsys) == \
        f"{path}: batch 4 contradicts graph input 'x', whose batch is fixed at 1 (shape " \
        "[1, 1, 8, 8]); re-export the model with a dynamic batch axis"
    assert cli_error(["estimate", str(path), "--input-shape", "1,8,9"], capsys).startswith(
        f"{path}: input_shape (1, 8, 9) contradicts graph input 'x' of fixed shape")


def test_options_that_agree_with_a_fixed_input_are_accepted(tmp_path, capsys) -> None:
    path = lenet_like(tmp_path, 1, 1, 8, 8)
    out = tmp_path / "r.json"
    assert main(["estimate", str(path), "--batch", "1", "--input-shape", "1,8,8",
                 "--json", str(out), "--quiet"]) == 0
    conv, fc = (layer["shape"] for layer in json.loads(out.read_text())["layers"])
    assert (conv["N"], conv["C"], conv["H"], conv["M"], conv["E"]) == (1, 1, 8, 4, 6)
    assert (fc["N"], fc["C"], fc["M"]) == (1, 4 * 6 * 6, 10)


def test_dynamic_input_given_the_wrong_channels_names_the_node(tmp_path, capsys) -> None:
    # every dimension dynamic: only the weights can tell that the options are wrong
    path = lenet_like(tmp_path, "batch", "c", "h", "w", name="dynamic")
    assert cli_error(["estimate", str(path), "--input-shape", "3,32,32", "--batch", "4"],
                     capsys) == \
        f"{path}: node 'conv' (Conv): input 'x' of shape [4, 3, 32, 32] has 3 channels but " \
        "its weight 'w' of shape [4, 1, 3, 3] expects 1 (1 x group 1)"
    # the right channels but another size: the classifier's weights no longer fit
    assert cli_error(["estimate", str(path), "--input-shape", "1,32,32"], capsys) == \
        f"{path}: node 'fc' (Gemm): the inner dimensions of 'f' of shape [1, 3600] and " \
        "'fc_w' of shape [10, 144] differ"
    conv, fc = workload_from_onnx(path, batch=4, input_shape=(1, 8, 8)).layers
    assert (conv.N, conv.C, conv.H, fc.N, fc.C) == (4, 1, 8, 4, 144)


def test_graph_whose_input_does_not_fit_its_first_conv_is_rejected(tmp_path, capsys) -> None:
    path = lenet_like(tmp_path, 1, 3, 8, 8, name="rgb")
    assert cli_error(["estimate", str(path)], capsys) == \
        f"{path}: node 'conv' (Conv): input 'x' of shape [1, 3, 8, 8] has 3 channels but " \
        "its weight 'w' of shape [4, 1, 3, 3] expects 1 (1 x group 1)"


@pytest.mark.parametrize(("x", "w", "group", "message"), [
    ((1, 6, 8, 8), (4, 2, 3, 3), 2, "input 'x' of shape [1, 6, 8, 8] has 6 channels but its "
     "weight 'w' of shape [4, 2, 3, 3] expects 4 (2 x group 2)"),
    ((1, 4, 8, 8), (3, 2, 3, 3), 2, "its weight 'w' of shape [3, 2, 3, 3] has 3 filters, not "
     "a multiple of group 2"),
    ((1, 2, 10), (4, 3, 3), 1, "input 'x' of shape [1, 2, 10] has 2 channels but its weight "
     "'w' of shape [4, 3, 3] expects 3 (3 x group 1)"),  # 1-D
    ((1, 2, 4, 4, 4), (2, 1, 3, 3, 3), 1, "input 'x' of shape [1, 2, 4, 4, 4] has 2 channels "
     "but its weight 'w' of shape [2, 1, 3, 3, 3] expects 1 (1 x group 1)"),  # 3-D
    ((1, 3, 8, 8), (4, 3, 3), 1, "input 'x' of shape [1, 3, 8, 8] and its weight 'w' of "
     "shape [4, 3, 3] need the same number of dimensions, at least 3"),
])
def test_every_conv_checks_its_input_against_its_weight(
        tmp_path: Path, x: tuple[int, ...], w: tuple[int, ...], group: int, message: str) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=group)
    path = save(tmp_path, [conv], [x_input(*x)], {"w": w})
    with pytest.raises(ShapeMismatch) as caught:
        workload_from_onnx(path)
    assert str(caught.value) == f"{path}: node 'conv' (Conv): {message}"


@pytest.mark.parametrize(("node", "a", "b", "message"), [
    (helper.make_node("Gemm", ["a", "b"], ["y"], name="g", transA=1, transB=1), (8, 3), (5, 7),
     "node 'g' (Gemm): the inner dimensions of 'a' of shape [8, 3] and 'b' of shape [5, 7] "
     "differ"),  # A^T is [3, 8], B^T is [7, 5]
    (helper.make_node("MatMul", ["a", "b"], ["y"], name="m"), (2, 4, 8), (6, 5),
     "node 'm' (MatMul): the inner dimensions of 'a' of shape [2, 4, 8] and 'b' of shape "
     "[6, 5] differ"),
    (helper.make_node("MatMul", ["a", "b"], ["y"], name="v"), (4, 8), (7,),
     "node 'v' (MatMul): the inner dimensions of 'a' of shape [4, 8] and 'b' of shape [7, 1] "
     "differ"),  # a 1-D right operand is a column
    (helper.make_node("MatMul", ["a", "b"], ["y"], name="bm"), (2, 4, 8), (3, 8, 5),
     "node 'bm' (MatMul): the batch dimensions of 'a' of shape [2, 4, 8] and 'b' of shape "
     "[3, 8, 5] do not broadcast"),
])
def test_every_product_checks_its_inner_dimension(tmp_path: Path, node: onnx.NodeProto,
                                                  a: tuple[int, ...], b: tuple[int, ...],
                                                  message: str) -> None:
    path = save(tmp_path, [node], [x_input(*a, name="a")], {"b": b})
    with pytest.raises(ShapeMismatch) as caught:
        workload_from_onnx(path)
    assert str(caught.value) == f"{path}: {message}"
    both = save(tmp_path, [node], [x_input(*a, name="a"), x_input(*b, name="b")], {},
                name="activations")  # a product of two activations is checked alike
    with pytest.raises(ShapeMismatch, match="differ|do not broadcast"):
        workload_from_onnx(both)


def test_conv_transpose_check() -> None:
    # for the ConvTranspose reader: input [N, C, ...], weight [C, M / G, ...]
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up")
    check_conv_transpose(node, (1, 8, 4, 4), (8, 4, 2, 2), 1)
    with pytest.raises(ShapeMismatch, match=r"^node 'up' \(ConvTranspose\): input 'x' of shape "
                                            r"\[1, 3, 4, 4\] has 3 channels but its weight 'w' "
                                            r"of shape \[8, 4, 2, 2\] expects 8 \(group 1\)$"):
        check_conv_transpose(node, (1, 3, 4, 4), (8, 4, 2, 2), 1)


@pytest.mark.parametrize("dims", [(1, 3, 0, 8), (0, 3, 8, 8)])
def test_zero_input_dimension_is_named_as_such(tmp_path, capsys, dims) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    path = save(tmp_path, [conv], [x_input(*dims)], {"w": (4, 3, 3, 3)})
    shape = "[" + ", ".join(map(str, dims)) + "]"
    assert cli_error(["estimate", str(path)], capsys) == \
        f"{path}: graph input 'x' has a zero dimension in its shape {shape}: an empty input " \
        "has no workload"


def test_batch_fills_every_dynamic_first_dimension(tmp_path) -> None:
    # two inputs with a dynamic batch; a fixed batch on a second input is not checked
    nodes = [helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")]
    path = save(tmp_path, nodes, [x_input("n", 4, 8, name="a"), x_input("n", 8, 5, name="b")],
                {})
    (layer,) = workload_from_onnx(path, batch=3).layers
    assert (layer.G, layer.N, layer.C, layer.M) == (3, 4, 8, 5)
    with pytest.raises(InputError, match="batch and input_shape must be positive integers"):
        workload_from_onnx(path, batch=-1)

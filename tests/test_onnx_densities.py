"""ONNX estimates measure activations by running the graph, and match the PyTorch path.

Also: when the graph cannot run, one warning and a note say that activations were taken
as dense; onnxruntime's own log lines never reach the user.
"""

from __future__ import annotations

import html
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from nnjoules.cli import main
from nnjoules.commands.common import random_inputs_note
from nnjoules.energy.estimate import estimate
from nnjoules.energy.extract import extract_workload, workload_from_onnx
from nnjoules.energy.extract.sparsity import tensor_stats
from nnjoules.errors import InputError, ModelLoadError

FLOAT = TensorProto.FLOAT
DENSE = "activations taken as dense (ifmap and ofmap densities 1.0): "


def small_net() -> nn.Module:
    """Conv-BN-ReLU, max pool, conv-ReLU, a residual-free classifier: every chain kind."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 6 * 6, 32), nn.ReLU(),
        nn.Linear(32, 10))
    bn = net[1]
    assert isinstance(bn, nn.BatchNorm2d)
    bn.running_mean.normal_()  # non-trivial statistics: the exporter folds them into conv
    bn.running_var.uniform_(0.5, 2.0)
    return net.eval()


def seeded(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The input the CLI draws for a PyTorch model with ``--seed seed``."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Path]:
    """The small net and its ONNX export (dynamo exporter), batch fixed at 2."""
    net = small_net()
    path = tmp_path_factory.mktemp("onnx") / "small.onnx"
    torch.onnx.export(net, (torch.randn(2, 3, 16, 16),), str(path), dynamo=True)
    return net, path


def density_rows(report) -> list[tuple[float, ...]]:  # type: ignore[no-untyped-def]
    return [(d.weights, d.ifmaps, d.ofmaps, d.weights_rlc_pairs, d.ifmaps_rlc_pairs,
             d.ofmaps_rlc_pairs) for d in (item.layer.density for item in report.layers)]


def test_onnx_export_gives_the_densities_and_energy_of_the_module(exported) -> None:
    net, path = exported
    torch_report = estimate(net, seeded((2, 3, 16, 16), 0))
    onnx_report = estimate(path)  # inputs generated as above: seed 0, standard normal
    assert density_rows(onnx_report) == density_rows(torch_report)
    assert [item.total for item in onnx_report.layers] == \
        [item.total for item in torch_report.layers]
    # the ReLUs make the activations sparse: the second conv reads the pooled ReLU output
    pooled = net[:4](seeded((2, 3, 16, 16), 0))
    assert onnx_report.layers[1].layer.density.ifmaps == (pooled != 0).sum().item() / 1024
    assert onnx_report.layers[1].layer.density.ifmaps < 0.9
    assert onnx_report.workload.notes == ()


def test_cli_seed_draws_the_same_inputs_for_onnx_and_pytorch(exported, tmp_path) -> None:
    net, path = exported
    out = tmp_path / "r.json"
    assert main(["estimate", str(path), "--seed", "3", "--json", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    expected = estimate(net, seeded((2, 3, 16, 16), 3))
    assert [layer["density"]["ifmaps"] for layer in data["layers"]] == \
        [item.layer.density.ifmaps for item in expected.layers]
    assert data["totals"]["energy"] == expected.total()
    assert data["notes"] == [random_inputs_note(3)]


def test_onnx_ofmap_is_measured_after_relu_and_ifmap_before_padding(tmp_path) -> None:
    # x -> Conv(pads 1) -> Relu -> Gemm: the conv's ofmap is the Relu's output, the
    # Gemm's ifmap is the same tensor; the conv's ifmap is x itself (padding is on chip)
    w = np.array([[[[1.0]]], [[[-1.0]]]], dtype=np.float32)  # two 1x1 filters: +x and -x
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", FLOAT,
                                                                          [1, 1, 2, 2])],
                              [helper.make_tensor_value_info("y", FLOAT, None)],
                              [numpy_helper.from_array(w, "w"),
                               numpy_helper.from_array(np.ones((3, 32), np.float32), "fc")])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = np.array([[[[1.0, 0.0], [-2.0, 3.0]]]], dtype=np.float32)
    conv, fc = workload_from_onnx(path, inputs=[x]).layers
    assert conv.density.ifmaps == 3 / 4  # one zero in x; padding not counted
    # relu(+x) and relu(-x) on the padded 4x4 maps: non-zeros 1, 3 (from x) and 2 (from -x)
    padded = np.pad(x[0, 0], 1)
    relu = np.maximum(np.stack([padded, -padded]), 0)
    assert conv.density.ofmaps == fc.density.ifmaps == 3 / 32
    assert (conv.density.ofmaps, conv.density.ofmaps_rlc_pairs) == tensor_stats(relu)
    assert fc.density.ofmaps == 1.0  # ones @ a non-zero vector


def test_example_inputs_set_the_densities_and_are_checked(exported) -> None:
    _, path = exported
    x = seeded((2, 3, 16, 16), 0)
    x[:, :, :8] = 0.0  # the top half of every image is zero
    first = extract_workload(path, x).layers[0]
    assert (first.density.ifmaps, first.density.ifmaps_rlc_pairs) == tensor_stats(x)
    assert first.density.ifmaps == 0.5
    with pytest.raises(InputError, match=r"small\.onnx: an example input of shape "
                                         r"\[1, 3, 16, 16\] does not fit graph input 'input' "
                                         r"of shape \[2, 3, 16, 16\]$"):
        extract_workload(path, x[:1])
    with pytest.raises(InputError, match=r"small\.onnx: the graph has 1 input\(s\) \['input'\] "
                                         r"but 2 example input\(s\) were given$"):
        extract_workload(path, (x, x))
    with pytest.raises(InputError, match=r"example input 0 for the ONNX file .* is a float: "
                                         r"give tensors or numpy arrays$"):
        extract_workload(path, (0.5,))  # type: ignore[arg-type]


def _fc_with_external_weights(tmp_path: Path) -> Path:
    """Relu(Gemm) whose rows are +1 and -1 alternately: half the outputs are positive."""
    signs = np.ones((64, 32), np.float32)
    signs[1::2] = -1.0
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w"], ["h"], transB=1, name="fc"),
         helper.make_node("Relu", ["h"], ["y"])], "g",
        [helper.make_tensor_value_info("x", FLOAT, [1, 32])],
        [helper.make_tensor_value_info("y", FLOAT, [1, 64])],
        [numpy_helper.from_array(signs, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "fc.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="fc.data",
                    size_threshold=0)
    return path


def test_graph_that_cannot_run_is_dense_with_one_warning_and_a_note(tmp_path, caplog) -> None:
    path = _fc_with_external_weights(tmp_path)
    measured = workload_from_onnx(path).layers[0].density
    assert (measured.ifmaps, measured.ofmaps) == (1.0, 0.5)
    (tmp_path / "fc.data").unlink()
    with caplog.at_level(logging.WARNING):
        workload = workload_from_onnx(path)
    (note,) = workload.notes
    assert note.startswith(f"{path}: external weight data not loaded (")
    assert note.endswith("the weight densities of the layers using it and all activation "
                         "densities are taken as 1.0 (dense)")
    assert [r.getMessage() for r in caplog.records] == [note]  # said once
    assert workload.layers[0].density.ofmaps == 1.0


def _custom_op_graph(tmp_path: Path) -> Path:
    """A conv followed by an operator from a domain onnxruntime does not know."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Foo", ["c"], ["y"], name="foo", domain="com.example")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", FLOAT,
                                                                          [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", FLOAT, None)],
                              [numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example", 1)])
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    return path


def test_cli_says_once_that_activations_were_dense(tmp_path) -> None:
    path = _custom_op_graph(tmp_path)
    out = tmp_path / "r.json"
    run = subprocess.run([sys.executable, "-m", "nnjoules.cli", "estimate", str(path),
                          "--json", str(out)], capture_output=True, text=True, check=False)
    assert run.returncode == 0
    prefix = f"{path}: {DENSE}onnxruntime could not run the graph: "
    (note,) = json.loads(out.read_text())["notes"]
    assert note.startswith(prefix) and "com.example:Foo" in note
    assert run.stderr == (f"WARNING nnjoules.energy.extract.onnx_import: {note}\n"  # once,
                          f"wrote {out}\n")
    # ... and under the table (wrapped to the width: a long path may break anywhere)
    assert "".join(f"note {note}".split()) in "".join(run.stdout.split())


def test_graph_run_failure_for_shapes_is_one_line_without_onnxruntime_log(tmp_path,
                                                                           capfd) -> None:
    # the conv's input shape is only known by running: Reshape to a shape given as input;
    # the generated zeros keep the first three dimensions of x, a 3-D input for a 2-D conv
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]),
             helper.make_node("Conv", ["r", "w"], ["y"], name="conv")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", FLOAT, [1, 3, 8, 8]),
                     helper.make_tensor_value_info("s", TensorProto.INT64, [3])],
        [helper.make_tensor_value_info("y", FLOAT, None)],
        [numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32), "w")])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert main(["estimate", str(path)]) == 2
    err = capfd.readouterr().err
    assert err.startswith(f"nnjoules: error: {path}: cannot resolve the shape of tensor 'r', "
                          "input of node 'conv' (Conv); running the graph for its shapes "
                          "failed: [ONNXRuntimeError]")
    assert err.count("\n") == 1 and "\x1b[" not in err


def test_dense_option_does_not_run_the_graph(tmp_path) -> None:
    path = _custom_op_graph(tmp_path)
    workload = workload_from_onnx(path, measure_density=False)
    assert workload.notes == ()  # asked for: nothing to say


def test_folder_named_like_an_onnx_file(tmp_path, capsys) -> None:
    folder = tmp_path / "x.onnx"
    folder.mkdir()
    assert main(["estimate", str(folder)]) == 2
    assert capsys.readouterr().err == f"nnjoules: error: {folder}: is a folder, not an ONNX " \
                                      "file\n"
    with pytest.raises(ModelLoadError, match=r"'.*x\.onnx' is a folder, not an ONNX file$"):
        workload_from_onnx(folder)


def test_example_inputs_fix_the_shapes_of_a_dynamic_graph(tmp_path) -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv")
    graph = helper.make_graph([conv], "g", [helper.make_tensor_value_info(
        "x", FLOAT, ["n", 2, "h", "w"])], [helper.make_tensor_value_info("y", FLOAT, None)],
        [numpy_helper.from_array(np.ones((4, 2, 3, 3), np.float32), "w")])
    path = tmp_path / "dyn.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    x = np.ones((3, 2, 5, 7), np.float64)  # cast to the input's float32
    report = estimate(path, x, batch=3)  # a batch that agrees with the examples is fine
    (layer,) = report.workload.layers
    assert (layer.N, layer.C, layer.H, layer.W, layer.E, layer.F) == (3, 2, 5, 7, 3, 5)
    with pytest.raises(InputError, match="give example inputs or batch/input_shape"):
        extract_workload(path, x, input_shape=(2, 5, 7))
    with pytest.raises(InputError, match=r"an example input of type complex64 does not fit "
                                         r"graph input 'x' of type float32$"):
        extract_workload(path, np.ones((3, 2, 5, 7), np.complex64))


def test_note_is_in_the_table_json_and_html(tmp_path) -> None:
    report = estimate(_custom_op_graph(tmp_path))
    (note,) = report.workload.notes
    assert DENSE in note
    assert report.to_dict()["notes"] == [note]
    assert f"<th>note</th><td>{html.escape(note)}</td>" in report.to_html()
    assert "".join(f"note {note}".split()) in "".join(report.to_table().split())

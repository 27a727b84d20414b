"""The densest filter row (Density.weights_row_peak): measured from static weights by both
importers, reset when a user overrides the weights, and what it lets a mapping hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from nnjoules.energy.cost import Compression, CompressionLevels, Gating
from nnjoules.energy.estimate import estimate
from nnjoules.energy.extract import workload_from_module, workload_from_onnx
from nnjoules.energy.extract.sparsity import row_peak_density
from nnjoules.energy.hardware import eyeriss
from nnjoules.errors import InputError


def row_balanced_weights(m: int, c: int, k: int, keep: int) -> np.ndarray:
    """[m, c, k, k] weights whose every filter row keeps its first ``keep`` of ``k`` values
    (peak keep / k, equal to the mean density)."""
    w = np.zeros((m, c, k, k), dtype=np.float32)
    w[..., :keep] = 1.0 + np.arange(keep, dtype=np.float32)
    return w


def test_row_peak_is_the_densest_row_of_the_last_axis():
    w = np.zeros((2, 3, 4), dtype=np.float32)
    w[1, 2, :3] = 1.0  # one row with 3 of 4 non-zero
    w[0, 0, 0] = 1.0
    assert row_peak_density(w, 4) == 0.75
    assert row_peak_density(torch.from_numpy(w), 4) == 0.75
    assert row_peak_density(w.transpose(0, 2, 1).copy(), 4) == 1.0  # last axis is 3: unknown
    assert row_peak_density(w, 1) == 1.0 and row_peak_density(np.zeros(5), 1) == 0.0


def test_torch_conv_weights_give_their_row_peak():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(row_balanced_weights(6, 4, 3, keep=1)))
        conv.weight[5, 3, 2] = torch.tensor([1.0, 2.0, 0.0])  # one row of two
    (layer,) = workload_from_module(conv, torch.randn(1, 4, 8, 8)).layers
    assert layer.density.weights_row_peak == 2 / 3
    assert layer.density.weights == pytest.approx((6 * 4 * 3 + 1) / (6 * 4 * 9))


def test_activation_operands_have_no_row_bound():
    """A matmul's second operand is an activation: its zeros move with the next inputs."""

    class Attention(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a @ torch.relu(b)

    b = -torch.ones(1, 8, 6)  # all zero after ReLU on these inputs
    (layer,) = workload_from_module(Attention(), (torch.randn(1, 4, 8), b)).layers
    assert layer.density.weights == 0.0
    assert layer.density.weights_row_peak == 1.0


def _conv_graph(tmp_path: Path, w: np.ndarray, *, through_transpose: bool) -> Path:
    nodes, name = [], "w"
    if through_transpose:  # a layout node: the initializer's axes may be reordered
        nodes.append(helper.make_node("Transpose", ["w"], ["wt"], perm=[0, 1, 2, 3]))
        name = "wt"
    nodes.append(helper.make_node("Conv", ["x", name], ["y"], name="conv"))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, w.shape[1], 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "conv.onnx"
    onnx.save(model, str(path))
    return path


def test_onnx_initializer_gives_the_same_row_peak_as_the_module(tmp_path):
    w = row_balanced_weights(6, 4, 3, keep=2)
    (layer,) = workload_from_onnx(_conv_graph(tmp_path, w, through_transpose=False)).layers
    assert layer.density.weights_row_peak == 2 / 3
    conv = nn.Conv2d(4, 6, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
    (module_layer,) = workload_from_module(conv, torch.randn(1, 4, 8, 8)).layers
    assert module_layer.density.weights_row_peak == layer.density.weights_row_peak
    # behind a layout node the kernel axis is not known: no bound
    (behind,) = workload_from_onnx(_conv_graph(tmp_path, w, through_transpose=True)).layers
    assert (behind.density.weights, behind.density.weights_row_peak) == (2 / 3, 1.0)


def _pruned_conv() -> nn.Module:
    conv = nn.Conv2d(256, 384, 3, bias=False)  # AlexNet CONV3's shape
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(row_balanced_weights(384, 256, 3, keep=1)))
    return conv


def test_overriding_weights_forgets_the_measured_peak():
    x = torch.randn(4, 256, 15, 15)
    kept = estimate(_pruned_conv(), x, densities={"Conv2d": {"ifmaps": 0.5}}, hardware=eyeriss())
    assert kept.layers[0].layer.density.weights_row_peak == 1 / 3
    new = estimate(_pruned_conv(), x, densities={"Conv2d": {"weights": 0.3}}, hardware=eyeriss())
    assert new.layers[0].layer.density.weights_row_peak == 1.0
    given = estimate(_pruned_conv(), x, hardware=eyeriss(),
                     densities={"Conv2d": {"weights": 0.3, "weights_row_peak": 0.5}})
    assert given.layers[0].layer.density.weights_row_peak == 0.5
    with pytest.raises(InputError, match=r"densities\.Conv2d: .*weights_row_peak=0.2 is below "):
        estimate(_pruned_conv(), x, hardware=eyeriss(),
                 densities={"Conv2d": {"weights": 0.3, "weights_row_peak": 0.2}})


def test_measured_row_peak_lets_the_weight_pad_hold_more_filters():
    """Every row of this CONV3 holds one non-zero weight of three; under compressed
    storage in the pads the mapping holds more weights per PE than 224 (the raw pad)
    and costs less than with the peak forgotten (same densities, same costs)."""
    x = torch.randn(4, 256, 15, 15)
    rules = {"compression": Compression.SIGNIFICANCE_MAP, "gating": Gating.COMPRESSED_WEIGHTS,
             "compression_levels": CompressionLevels.ALL, "hardware": eyeriss()}
    measured = estimate(_pruned_conv(), x, **rules)
    forgotten = estimate(_pruned_conv(), x, densities={"Conv2d": {"weights": 1 / 3}}, **rules)
    (m_layer,), (f_layer,) = measured.layers, forgotten.layers
    assert m_layer.layer.density.weights == pytest.approx(1 / 3)
    assert m_layer.mapping.p * m_layer.mapping.q * 3 > 224 >= (
        f_layer.mapping.p * f_layer.mapping.q * 3)
    assert m_layer.energy.total < f_layer.energy.total


def test_densities_file_gives_the_row_peak_and_refuses_one_below_the_mean(tmp_path, capsys):
    from nnjoules.cli import main

    good = tmp_path / "good.json"
    good.write_text('{"features.3": {"weights": 0.3, "weights_row_peak": 0.5}}')
    bad = tmp_path / "bad.json"
    bad.write_text('{"features.3": {"weights": 0.3, "weights_row_peak": 0.2}}')
    out = tmp_path / "r.json"
    assert main(["estimate", "lenet5", "--densities", str(good), "--json", str(out),
                 "--quiet"]) == 0
    assert main(["estimate", "lenet5", "--densities", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"nnjoules: error: {bad}: layer 'features.3': weights_row_peak 0.2 is below "
                   "weights 0.3: the densest filter row cannot be sparser than the mean")

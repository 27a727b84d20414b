"""Tied weights: one weight used by two layers is pruned once (one mask, one refit) and
counted once, in pruning results and in energy estimates (both importers)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from nnjoules import estimate
from nnjoules.prune import PruneConfig, Pruner, RestoreConfig
from nnjoules.prune.masks import load_masked_state, masked_state_dict, weight_of


class Tied(nn.Module):
    """Two Linear(16, 16) that share one weight (their biases are their own)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(16, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc2.weight = self.fc1.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class Twice(nn.Module):
    """One Linear(16, 16) applied twice."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.fc(x)))


@pytest.mark.parametrize("method, allocation", [("energy-aware", "energy"),
                                                ("energy-aware", "probe"),
                                                ("magnitude", "energy")])
def test_shared_weight_gets_one_mask_one_refit_and_is_counted_once(method: str,
                                                                   allocation: str) -> None:
    model = Tied()
    images = torch.randn(256, 16, generator=torch.Generator().manual_seed(1))
    config = PruneConfig(method=method, allocation=allocation, rate=0.5, rounds=1,
                         probe_drop=1.0, density_images=8,
                         restore=RestoreConfig(samples=128, positions=4))
    pruner = Pruner(model, images, evaluate=lambda m: 1.0, finetune=lambda m: None,
                    config=config)
    record = pruner.step()
    assert model.fc1.weight_orig is model.fc2.weight_orig  # the tie holds
    assert model.fc1.weight_mask is model.fc2.weight_mask  # one mask
    w1, w2 = weight_of(model.fc1), weight_of(model.fc2)
    assert torch.equal(w1, w2)  # one refit: fc2's did not overwrite fc1's
    assert int(torch.count_nonzero(w1)) == 128 == int(model.fc1.weight_mask.sum())
    assert torch.equal(w1 != 0, model.fc1.weight_mask.bool())
    assert (record.weights, record.nonzero_weights) == (256, 128)  # 16 x 16 distinct
    [layer] = record.layers
    assert (layer.name, layer.tied, layer.weights, layer.nonzero_weights) == \
        ("fc1", ("fc2",), 256, 128)
    assert layer.energy == pytest.approx(record.energy)  # both uses' energy, in one record
    assert pruner.history[0].weights == 256
    report = pruner.meter.report(model)
    assert (report.weights(), report.nonzero_weights()) == (256, 128)


def test_tie_survives_saving_and_loading() -> None:
    model = Tied()
    pruner = Pruner(model, torch.randn(64, 16), evaluate=lambda m: 1.0,
                    finetune=lambda m: None,
                    config=PruneConfig(method="magnitude", rate=0.5, rounds=1,
                                       density_images=8))
    pruner.step()
    fresh = Tied()
    load_masked_state(fresh, masked_state_dict(model))
    assert fresh.fc1.weight_orig is fresh.fc2.weight_orig
    assert fresh.fc1.weight_mask is fresh.fc2.weight_mask
    assert torch.equal(weight_of(fresh.fc2), weight_of(model.fc1))


@pytest.mark.parametrize("make", [Tied, Twice], ids=["tied", "called-twice"])
def test_estimate_counts_a_shared_weight_once(make: type[nn.Module]) -> None:
    model = make()
    layer = model.fc1 if isinstance(model, Tied) else model.fc
    with torch.no_grad():
        layer.weight[:8] = 0.0  # half of the 256 weights
    report = estimate(model, torch.randn(1, 16))
    assert report.macs() == 2 * 16 * 16  # both uses compute
    assert report.weights() == 256 and report.workload.num_weights == 256
    assert report.nonzero_weights() == pytest.approx(128)
    first, second = report.workload.layers
    assert (first.shares_weights, second.shares_weights) == ("", first.name)


def test_onnx_import_counts_a_shared_initializer_once(tmp_path: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.ones((16, 16), dtype=np.float32)
    weight[:8] = 0.0  # half of the 256 weights
    nodes = [helper.make_node("Gemm", ["x", "W", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "W", "b2"], ["y"], name="fc2", transB=1)]
    graph = helper.make_graph(
        nodes, "tied", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])],
        [numpy_helper.from_array(weight, "W"),
         numpy_helper.from_array(np.zeros(16, np.float32), "b1"),
         numpy_helper.from_array(np.zeros(16, np.float32), "b2")])
    path = tmp_path / "tied.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    report = estimate(str(path))
    assert report.macs() == 512 and report.weights() == 256
    assert report.nonzero_weights() == pytest.approx(128)
    assert [layer.shares_weights for layer in report.workload.layers] == ["", "fc1"]

"""The allocation rules: how many weights each layer keeps in a round."""

from __future__ import annotations

import torch
from torch import nn

from nnjoules.prune.importance import (
    _cut,
    energy_aware_keep,
    energy_rate_keep,
    global_magnitude_keep,
    input_power,
    layer_keep,
    output_saliency,
)
from nnjoules.prune.masks import ensure_masks, nonzero_counts


def two_layers() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(4, 2, bias=False), nn.Linear(2, 2, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 2, 3, 4], [5, 6, 7, 8]]))
        net[1].weight.copy_(torch.tensor([[0.5, 10.0], [20.0, 30.0]]))
    ensure_masks(net)
    return net


def test_cut_spends_the_target_in_increasing_key() -> None:
    keys = {"a": torch.tensor([1.0, 3.0, 5.0]), "b": torch.tensor([2.0, 4.0])}
    counts = {"a": (3, 3), "b": (2, 2)}
    # cost per weight: a 1, b 10; target 12 -> 1 (a), 2 (b: 11), 3 (a: 12): stop
    assert _cut(keys, {"a": 1.0, "b": 10.0}, counts, 12.0) == {"a": 1, "b": 1}
    assert _cut(keys, {"a": 1.0, "b": 10.0}, counts, 0.0) == {"a": 3, "b": 2}
    assert _cut(keys, {"a": 1.0, "b": 10.0}, counts, 1e9) == {"a": 0, "b": 0}


def test_global_magnitude_uses_one_threshold_and_floors() -> None:
    net = two_layers()
    layers = {"0": net[0], "1": net[1]}
    counts = nonzero_counts(net)
    keep = global_magnitude_keep(layers, counts, {"0": 0, "1": 0}, 0.5)
    assert keep == {"0": 3, "1": 3}  # the six smallest |w| are 0.5, 1 ... 5
    keep = global_magnitude_keep(layers, counts, {"0": 5, "1": 0}, 0.5)
    assert keep == {"0": 5, "1": 1}  # the floor of layer 0 moves the cut to layer 1
    assert layer_keep(counts, {"0": 0, "1": 3}, 0.5) == {"0": 4, "1": 3}


@torch.no_grad()
def test_energy_aware_score_prefers_cheap_error_per_energy() -> None:
    net = two_layers()
    layers = {"0": net[0], "1": net[1]}
    counts = nonzero_counts(net)
    x = torch.randn(256, 4)
    power = input_power(net, ["0", "1"], x)
    x_sq, y_power = power["0"]
    assert torch.allclose(x_sq[0], (x.double() ** 2).mean(0))
    assert abs(y_power - float((net[0](x).double() ** 2).sum(1).mean())) < 1e-6 * y_power
    floors = {"0": 0, "1": 0}
    # layer 1 weights are worth 1000x more energy each: with the exponent they go first
    removable = {"0": 8.0, "1": 4000.0}
    saliency = output_saliency(layers, power)
    keep = energy_aware_keep(layers, counts, floors, 0.5, removable, saliency, 1.0)
    assert keep["1"] < counts["1"][0] and keep["0"] == counts["0"][0]
    # without energy, the scores are output saliencies only
    plain = energy_aware_keep(layers, counts, floors, 0.5, removable, saliency, 0.0)
    assert plain != keep


def test_energy_rate_keep_weights_rates_by_removable_energy() -> None:
    counts = {"conv": (100, 100), "fc": (1000, 1000), "tiny": (10, 10)}
    floors = {"conv": 0, "fc": 0, "tiny": 8}
    removable = {"conv": 400.0, "fc": 100.0, "tiny": 400.0}
    keep = energy_rate_keep(counts, floors, 0.5, removable, 1.0)
    assert keep == {"conv": 50, "fc": 875, "tiny": 8}  # fc: rate 0.5 * 100/400
    assert energy_rate_keep(counts, floors, 0.5, removable, 0.0) == {
        "conv": 50, "fc": 500, "tiny": 8}

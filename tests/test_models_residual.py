"""The built-in residual (resnet20) and depthwise-separable (mobilenetv2) networks: sizes
worked out by hand, and channel pruning across their residual sums and depthwise groups."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import nnjoules
from nnjoules.models.builtin import BUILTIN_MODELS, build_model
from nnjoules.prune.structure import channel_groups, remove_channels, shrink_workload


def conv(c_in: int, c_out: int, k: int, groups: int = 1) -> int:
    """Parameters of a bias-free convolution and its BatchNorm (weight, bias)."""
    return c_in // groups * c_out * k * k + 2 * c_out


def test_resnet20_size_by_hand() -> None:
    # stem; stage 1: 6 convs 16->16; stage 2: 16->32 (+1x1 shortcut), 5 convs 32->32;
    # stage 3 likewise to 64; FC 64->10
    params = (conv(1, 16, 3) + 6 * conv(16, 16, 3)
              + conv(16, 32, 3) + conv(16, 32, 1) + 5 * conv(32, 32, 3)
              + conv(32, 64, 3) + conv(32, 64, 1) + 5 * conv(64, 64, 3) + 64 * 10 + 10)
    macs = (28 * 28 * 16 * 9 + 6 * 28 * 28 * 16 * 16 * 9
            + 14 * 14 * (32 * 16 * 9 + 32 * 16 + 5 * 32 * 32 * 9)
            + 7 * 7 * (64 * 32 * 9 + 64 * 32 + 5 * 64 * 64 * 9) + 64 * 10)
    model = build_model("resnet20").eval()
    assert sum(p.numel() for p in model.parameters()) == params == 272_186
    report = nnjoules.estimate(model, torch.randn(1, 1, 28, 28), measure_density=False)
    assert report.macs() == macs == 31_021_952
    assert len(report.layers) == 22  # 19 convolutions, 2 shortcuts, FC
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_mobilenetv2_size_by_hand() -> None:
    def block(c_in: int, c_out: int, t: int) -> int:
        hidden = c_in * t
        return (conv(c_in, hidden, 1) if t != 1 else 0) + conv(hidden, hidden, 3, hidden) \
            + conv(hidden, c_out, 1)

    params = (conv(1, 16, 3) + block(16, 8, 1) + block(8, 16, 4) + block(16, 16, 4)
              + block(16, 24, 4) + block(24, 24, 4) + block(24, 32, 4) + block(32, 32, 4)
              + conv(32, 128, 1) + 128 * 10 + 10)
    # per block: expansion at the input size, depthwise and projection at the output size
    macs = (784 * 16 * 9
            + 784 * (16 * 9 + 16 * 8)                                  # t=1, 16->8
            + 784 * 8 * 32 + 196 * (32 * 9 + 32 * 16)                  # 8->16, stride 2
            + 196 * (16 * 64 + 64 * 9 + 64 * 16)                       # 16->16
            + 196 * 16 * 64 + 49 * (64 * 9 + 64 * 24)                  # 16->24, stride 2
            + 49 * (24 * 96 + 96 * 9 + 96 * 24)                        # 24->24
            + 49 * (24 * 96 + 96 * 9 + 96 * 32)                        # 24->32
            + 49 * (32 * 128 + 128 * 9 + 128 * 32)                     # 32->32
            + 49 * 32 * 128 + 128 * 10)
    model = build_model("mobilenetv2").eval()
    assert sum(p.numel() for p in model.parameters()) == params == 36_218
    report = nnjoules.estimate(model, torch.randn(1, 1, 28, 28), measure_density=False)
    assert report.macs() == macs == 2_735_872
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 7 and all(m.groups == m.in_channels == m.out_channels
                                       for m in depthwise)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def built(name: str) -> nn.Module:
    """A built-in network with BatchNorm statistics that are not the identity."""
    model = build_model(name, seed=0).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.running_mean.copy_(torch.rand(c, generator=gen) - 0.5)
                module.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=gen))
                module.weight.copy_(0.5 + torch.rand(c, generator=gen))
                module.bias.copy_(0.4 * torch.rand(c, generator=gen) - 0.2)
    return model


def every_third(groups):  # type: ignore[no-untyped-def]
    return {g: list(range(1, g.channels, 3)) for g in groups}


def test_resnet20_groups_couple_each_stage_stream_with_its_shortcuts() -> None:
    groups = {g.root: g for g in channel_groups(built("resnet20"), torch.randn(2, 1, 28, 28))}
    # one group per stage's residual stream, one per block's inner channels: 3 + 9
    assert len(groups) == 12
    stream = {(c.module, c.side) for c in groups["layers.3.conv2"].coupled}
    # stage 2's stream: every producer of its sums (the 1x1 shortcut, conv2 of each block)
    # and every reader (conv1 of the next blocks, the next stage's shortcut)
    assert stream == {("layers.3.conv2", "out"), ("layers.3.shortcut.0", "out"),
                      ("layers.4.conv2", "out"), ("layers.5.conv2", "out"),
                      ("layers.4.conv1", "in"), ("layers.5.conv1", "in"),
                      ("layers.6.conv1", "in"), ("layers.6.shortcut.0", "in")}
    assert {(c.module, c.side) for c in groups["layers.6.conv2"].coupled} >= {("fc", "in")}
    assert "layers.6.shortcut.0" not in groups  # covered by its stream's group


def test_mobilenetv2_expansion_group_cuts_the_depthwise_filters_too() -> None:
    groups = {g.root: g for g in channel_groups(built("mobilenetv2"), torch.randn(2, 1, 28, 28))}
    coupled = {(c.module, c.side, c.groups) for c in groups["features.5.conv.0"].coupled}
    assert coupled == {("features.5.conv.0", "out", 1), ("features.5.conv.3", "out", 64),
                       ("features.5.conv.6", "in", 1)}


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2"])
def test_pruned_model_computes_the_masked_model(name: str) -> None:
    """Channels zeroed first (every consumer's input weights for them), then removed by
    surgery: the same outputs, across residual sums, shortcuts and depthwise layers."""
    model, x = built(name), torch.randn(4, 1, 28, 28)
    cuts = every_third(channel_groups(model, x[:2]))
    masked = copy.deepcopy(model)
    modules = dict(masked.named_modules())
    with torch.no_grad():
        for group, channels in cuts.items():
            for consumer in group.consumers:
                assert consumer.groups == 1  # depthwise layers are cut as filters ("out")
                for c in channels:
                    modules[consumer.module].weight[:, list(consumer.per_channel[c])] = 0.0
    assert not torch.allclose(masked(x), model(x), atol=1e-3)  # the zeroing changed it
    pruned = copy.deepcopy(model)
    remove_channels(pruned, x[:2], {g.root: c for g, c in cuts.items()})
    torch.testing.assert_close(pruned(x), masked(x), rtol=1e-4, atol=1e-5)
    params = sum(p.numel() for p in pruned.parameters())
    assert params < 0.75 * sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(BUILTIN_MODELS))
def test_energy_credit_equals_estimate_of_the_shrunk_model_on_every_builtin(name: str) -> None:
    model, x = built(name), torch.randn(2, 1, 28, 28)
    groups = channel_groups(model, x)
    dense = nnjoules.estimate(model, x, measure_density=False)
    cuts = every_third(groups)
    credited = nnjoules.estimate(shrink_workload(dense.workload, cuts))
    shrunk = copy.deepcopy(model)
    remove_channels(shrunk, x, {g.root: c for g, c in cuts.items()})
    actual = nnjoules.estimate(shrunk, x, measure_density=False)
    assert [(lay.name, lay.M, lay.C, lay.G) for lay in credited.workload] == \
        [(lay.name, lay.M, lay.C, lay.G) for lay in actual.workload]
    assert credited.total() == actual.total() < dense.total()
    assert [item.total for item in credited.layers] == [item.total for item in actual.layers]

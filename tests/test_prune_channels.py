"""Channel groups, their physical removal, their energy credit and their choice."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import nnjoules
from nnjoules.errors import InputError
from nnjoules.models.builtin import LeNet5, SmallVGG, pretrained
from nnjoules.prune.channel_select import channel_order, consumer_stats, refit_consumers
from nnjoules.prune.restore import collect_stats, to_columns
from nnjoules.prune.structure import channel_groups, remove_channels, shrink_workload


class TinyResNet(nn.Module):
    """conv-bn-relu, one residual block (two convs and an identity), pool, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8))
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.b(self.a(x)))
        return self.head(x.mean((2, 3)))


class TinyMobile(nn.Module):
    """conv, a depthwise-separable block (depthwise 3x3, pointwise 1x1), pool, fc."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8),
                                nn.ReLU())
        self.pw = nn.Sequential(nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pw(self.dw(self.stem(x))).mean((2, 3)))


NETWORKS = {"lenet5": LeNet5, "vgg-small": SmallVGG, "resnet": TinyResNet,
            "mobile": TinyMobile}


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = NETWORKS[name]().eval()
    with torch.no_grad():  # BN statistics that are not the identity
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model


def every_third(groups):
    return {g: list(range(1, g.channels, 3)) for g in groups}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_energy_credited_on_shapes_equals_estimate_of_the_shrunk_model(name):
    model, x = build(name), torch.randn(2, 1, 28, 28)
    groups = channel_groups(model, x)
    assert groups
    dense = nnjoules.estimate(model, x, measure_density=False)
    cuts = every_third(groups)
    credited = nnjoules.estimate(shrink_workload(dense.workload, cuts))
    shrunk = copy.deepcopy(model)
    remove_channels(shrunk, x, {g.root: c for g, c in cuts.items()})
    actual = nnjoules.estimate(shrunk, x, measure_density=False)
    assert [(lay.M, lay.C, lay.G) for lay in credited.workload] == \
        [(lay.M, lay.C, lay.G) for lay in actual.workload]
    assert credited.total() == actual.total() < dense.total()


@pytest.mark.parametrize("name", list(NETWORKS))
def test_removal_equals_zeroing_what_the_consumers_read(name):
    """The pruned model computes what the full model computes with the removed channels'
    contributions zeroed in every consumer (residual and depthwise couplings included)."""
    model, x = build(name), torch.randn(4, 1, 28, 28)
    groups = channel_groups(model, x)
    cuts = every_third(groups)
    masked = copy.deepcopy(model)
    modules = dict(masked.named_modules())
    with torch.no_grad():
        for group, channels in cuts.items():
            for consumer in group.consumers:
                weight = modules[consumer.module].weight
                for c in channels:
                    for i in consumer.per_channel[c]:
                        if consumer.groups == 1:
                            weight[:, i] = 0.0
                        else:  # depthwise: the channel's own filter
                            weight[i] = 0.0
    pruned = copy.deepcopy(model)
    remove_channels(pruned, x, {g.root: c for g, c in cuts.items()})
    torch.testing.assert_close(pruned(x), masked(x), rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in pruned.parameters()) < \
        sum(p.numel() for p in model.parameters())


def test_residual_group_couples_both_producers_of_the_sum():
    model, x = build("resnet"), torch.randn(2, 1, 28, 28)
    groups = {g.root: g for g in channel_groups(model, x)}
    stream = groups["stem.0"]
    assert {(c.module, c.side) for c in stream.coupled} == {
        ("stem.0", "out"), ("b.0", "out"), ("a.0", "in"), ("head", "in")}
    assert "b.0" not in groups  # covered by the stem's group
    assert set(groups) == {"stem.0", "a.0"}


def test_cancelling_channels_go_first_unlike_l1_filter_pruning():
    """The slides' example, one level up: channels 0 and 1 carry the same feature with
    opposite consumer weights, so removing both leaves the output unchanged, although
    their filters are the largest; L1 filter pruning removes the small, useful one."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[2.0, 1.0, 0.0, 1.0], [2.0, 1.0, 0.0, 1.0],
                                            [0.0, 0.0, 0.5, 0.0]]))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1.0, -1.0, 1.0]]))
    x = torch.rand(256, 4)
    (group,) = channel_groups(model, x[:2])
    stats = consumer_stats(model, group, x, positions=16,
                           generator=torch.Generator().manual_seed(0))
    ours = channel_order(model, group, stats, limit=2, ridge=1e-9)
    assert set(ours.order) == {0, 1}
    assert ours.errors[-1] < 1e-9
    l1 = sorted(range(3), key=lambda c: float(model[0].weight[c].detach().abs().sum()))[:2]
    assert 2 in l1


@pytest.mark.usefixtures("fashion_mnist_installed")
@pytest.mark.parametrize("root, count", [("features.3", 8), ("classifier.0", 60)])
def test_output_error_choice_beats_l1_choice_on_real_activations(root, count):
    """The shipped LeNet-5 on Fashion-MNIST images: after the same least-squares refit,
    our channels leave less consumer output error than the smallest-L1 filters."""
    from nnjoules.data import fashion_mnist_splits

    model = pretrained("lenet5").eval()
    train = fashion_mnist_splits(train_limit=512).train
    images = torch.stack([train[i][0] for i in range(512)])
    group = next(g for g in channel_groups(model, images[:2]) if g.root == root)
    stats = consumer_stats(model, group, images, positions=16,
                           generator=torch.Generator().manual_seed(0))
    ours = channel_order(model, group, stats, limit=count)
    weight = dict(model.named_modules())[root].weight.detach()
    l1 = torch.argsort(weight.abs().reshape(weight.shape[0], -1).sum(1))[:count].tolist()

    def error_after(channels):
        pruned = copy.deepcopy(model)
        remove_channels(pruned, images[:2], {root: channels})
        refit_consumers(pruned, group, stats, channels)
        consumer = group.consumers[0].module
        measured = collect_stats(pruned, model, consumer, images, positions=16,
                                 generator=torch.Generator().manual_seed(0))
        module = dict(pruned.named_modules())[consumer]
        return measured.relative_error(to_columns(module, module.weight.detach()))

    assert error_after(list(ours.order)) == pytest.approx(ours.errors[-1], rel=1e-6)
    assert error_after(list(ours.order)) < 0.9 * error_after(l1)


def test_bad_cuts_are_one_clear_error():
    model, x = build("lenet5"), torch.randn(2, 1, 28, 28)
    with pytest.raises(InputError, match="no convolution or linear layer named 'features.9'"):
        remove_channels(model, x, {"features.9": [0]})
    with pytest.raises(InputError, match="layer features.0: removing 6 channels would leave"):
        remove_channels(model, x, {"features.0": list(range(6))})
    groups = channel_groups(model, x)
    dense = nnjoules.estimate(model, x, measure_density=False)
    with pytest.raises(InputError, match="would remove all its channels"):
        shrink_workload(dense.workload, {groups[0]: list(range(6))})
    assert channel_groups(nn.Sequential(nn.Linear(4, 3)), torch.randn(2, 4)) == ()

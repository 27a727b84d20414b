"""Output-error restoration and least-squares refit: the slides' example, an oracle for
the statistics, robustness, and restoration beating magnitude on a real layer."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from nnjoules.prune.restore import (
    LayerStats,
    RestoreConfig,
    collect_stats,
    from_columns,
    magnitude_support,
    refit,
    removal_cost,
    restore,
    to_columns,
)


def stats_of(model: nn.Module, layer: str, x: torch.Tensor, reference: nn.Module | None = None,
             positions: int = 10_000) -> LayerStats:
    return collect_stats(model, reference or model, layer, x, positions=positions,
                         generator=torch.Generator().manual_seed(0))


def slides_filter() -> nn.Sequential:
    conv = nn.Conv2d(1, 1, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[-2.0, 1, 1], [1, 1, 1], [1, 1, 1]]).view(1, 1, 3, 3))
    return nn.Sequential(conv)


def test_slides_worked_example() -> None:
    """All-ones 3x3 input, filter [[-2,1,1],[1,1,1],[1,1,1]] (output 6), three weights
    pruned: magnitude pruning changes the output by 3, output-error pruning by 0."""
    net = slides_filter()
    x = torch.ones(1, 1, 3, 3)
    stats = stats_of(net, "0", x)
    a0 = to_columns(net[0], net[0].weight.detach())
    every = torch.ones_like(a0, dtype=torch.bool)

    magnitude = a0 * magnitude_support(a0, every, 6)
    assert torch.equal(magnitude.flatten(), torch.tensor([-2.0, 1, 1, 1, 1, 1, 0, 0, 0],
                                                         dtype=torch.float64))
    a, support = restore(a0, every, 6, stats, RestoreConfig())
    assert int(support.sum()) == 6

    def output(cols: torch.Tensor) -> float:
        weight = from_columns(net[0], cols, net[0].weight)
        return float(F.conv2d(x, weight))

    assert output(a0) == 6.0
    assert abs(output(magnitude) - 6.0) == pytest.approx(3.0)
    assert abs(output(a) - 6.0) < 1e-3
    assert stats.error(magnitude) == pytest.approx(9.0)  # squared output change
    assert stats.error(a) < 1e-6


LAYERS = [
    nn.Conv2d(4, 6, 3, padding=1),
    nn.Conv2d(4, 6, 3, stride=2, dilation=2, padding=2, groups=2),
    nn.Conv2d(4, 4, 3, padding=1, groups=4, padding_mode="reflect"),
    nn.Conv2d(4, 6, (2, 3), padding="same", bias=False),
]


@pytest.mark.parametrize("layer", LAYERS, ids=["conv", "grouped-strided", "depthwise-reflect",
                                                "same-asym"])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@torch.no_grad()
def test_stats_equal_brute_force_output_error(layer: nn.Conv2d) -> None:
    """||Y - X A||^2 from (G, B, y'y) equals the error of the real convolution, with X from
    the current network and Y (bias removed) from the reference network."""
    torch.manual_seed(1)
    current = nn.Sequential(nn.ReLU(), copy.deepcopy(layer))
    reference = nn.Sequential(nn.ReLU(), copy.deepcopy(layer))
    with torch.no_grad():
        reference[1].weight.add_(0.1 * torch.randn_like(reference[1].weight))
    x = torch.randn(3, 4, 9, 8)
    stats = stats_of(current, "1", x, reference)
    weight = torch.randn_like(layer.weight) * (torch.rand_like(layer.weight) > 0.5)
    a = to_columns(layer, weight)
    conv = current[1]
    y_ref = reference(x) - (0 if conv.bias is None else reference[1].bias.view(1, -1, 1, 1))
    y_new = conv._conv_forward(torch.relu(x), weight, None)
    expected = float(((y_ref - y_new).double() ** 2).sum())
    assert stats.error(a) == pytest.approx(expected, rel=1e-6)
    assert torch.equal(from_columns(conv, a, conv.weight), weight)


@torch.no_grad()
def test_stats_linear_on_sequences() -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(5, 3))
    x = torch.randn(4, 7, 5)  # a batch of sequences: every token is a row of X
    stats = stats_of(net, "0", x)
    assert stats.rows == 28
    weight = torch.randn(3, 5)
    y = net(x) - net[0].bias
    expected = float(((y - x @ weight.T).double() ** 2).sum())
    assert stats.error(to_columns(net[0], weight)) == pytest.approx(expected, rel=1e-6)


def test_positions_are_sampled_without_replacement() -> None:
    net = nn.Sequential(nn.Conv2d(2, 3, 3))
    stats = stats_of(net, "0", torch.randn(5, 2, 8, 8), positions=7)
    assert stats.rows == 5 * 7


def test_refit_is_exact_least_squares_and_zero_off_support() -> None:
    torch.manual_seed(3)
    x = torch.randn(200, 6, dtype=torch.float64)
    w = torch.randn(6, 2, dtype=torch.float64)
    y = x @ w + 0.01 * torch.randn(200, 2, dtype=torch.float64)
    stats = LayerStats(gram=(x.T @ x)[None], cross=(x.T @ y)[None],
                       y_sq=(y * y).sum(0)[None], rows=200)
    support = torch.tensor([[1, 0], [1, 1], [0, 1], [1, 1], [0, 0], [1, 0]], dtype=torch.bool)
    a = refit(stats, support[None], ridge=1e-12)[0]
    for m in range(2):
        idx = support[:, m].nonzero().flatten()
        expected = torch.linalg.lstsq(x[:, idx], y[:, m:m + 1]).solution[:, 0]
        assert torch.allclose(a[idx, m], expected, atol=1e-8)
        assert torch.all(a[~support[:, m], m] == 0)


def test_refit_is_robust_to_rank_deficient_inputs() -> None:
    """Duplicated and all-zero input columns: no NaN, no huge weights."""
    torch.manual_seed(4)
    base = torch.randn(50, 3, dtype=torch.float64)
    x = torch.cat([base, base, base[:, :1] * (1 + 1e-13), torch.zeros(50, 2,
                                                                       dtype=torch.float64)], 1)
    y = base @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    stats = LayerStats(gram=(x.T @ x)[None], cross=(x.T @ y)[None], y_sq=(y * y).sum(0)[None],
                       rows=50)
    every = torch.ones(1, x.shape[1], 1, dtype=torch.bool)
    a = refit(stats, every)
    assert torch.isfinite(a).all() and float(a.abs().max()) < 10
    assert stats.relative_error(a) < 1e-3
    zero = LayerStats(gram=torch.zeros(1, 4, 4, dtype=torch.float64),
                      cross=torch.zeros(1, 4, 2, dtype=torch.float64),
                      y_sq=torch.zeros(1, 2, dtype=torch.float64), rows=10)
    assert torch.equal(refit(zero, torch.ones(1, 4, 2, dtype=torch.bool)),
                       torch.zeros(1, 4, 2, dtype=torch.float64))
    # the output-error selection on the same inputs: finite, bounded, exactly q kept
    for data in (stats, zero):
        a0 = torch.randn(data.cross.shape, dtype=torch.float64)
        a, support = restore(a0, torch.ones_like(a0, dtype=torch.bool), 2, data,
                             RestoreConfig(error_share=1.0))
        assert int(support.sum()) == 2 and torch.isfinite(a).all()
        assert float(a.abs().max()) < 10


def test_restore_keeps_exactly_q_within_candidates() -> None:
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, groups=1))
    stats = stats_of(net, "0", torch.randn(16, 3, 10, 10), positions=20)
    a0 = to_columns(net[0], net[0].weight.detach())
    cand = torch.rand_like(a0) > 0.3
    for share, refit_on in ((0.0, True), (0.5, True), (1.0, False)):
        a, support = restore(a0 * cand, cand, 40, stats,
                             RestoreConfig(error_share=share, refit=refit_on))
        assert int(support.sum()) == 40
        assert not bool((support & ~cand).any())
        assert torch.all(a[~support] == 0)


def test_restoration_beats_magnitude_on_correlated_inputs() -> None:
    """Inputs with strongly correlated channels (as real feature maps have): at the same
    number of non-zeros, restoration + refit has a lower output error than magnitude
    pruning, with or without a refit of the magnitude support."""
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(40, 16))
    latent = torch.randn(2000, 8)
    x = latent @ torch.randn(8, 40) + 0.1 * torch.randn(2000, 40)
    stats = stats_of(net, "0", x)
    a0 = to_columns(net[0], net[0].weight.detach())
    every = torch.ones_like(a0, dtype=torch.bool)
    q = a0.numel() // 4
    magnitude = a0 * magnitude_support(a0, every, q)
    magnitude_refit = refit(stats, magnitude_support(a0, every, q))
    ours, _ = restore(a0, every, q, stats, RestoreConfig())
    assert stats.error(ours) < stats.error(magnitude_refit) < stats.error(magnitude)


def test_removal_cost_is_the_exact_error_growth() -> None:
    """``removal_cost`` of a weight equals the growth of the least-squares output error
    when it alone is removed and its filter is re-solved."""
    torch.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, groups=1))
    stats = stats_of(net, "0", torch.randn(8, 3, 9, 9), positions=40)
    a0 = to_columns(net[0], net[0].weight.detach())
    support = torch.rand_like(a0) > 0.4
    ridge = 1e-4
    lam = ridge * float(stats.gram[0].diagonal().mean()) + 1e-12

    def penalised(a: torch.Tensor) -> float:  # the objective the refit minimises
        return stats.error(a) + lam * float(a.square().sum())

    base = penalised(refit(stats, support, ridge=ridge))
    cost = removal_cost(stats, support, ridge=ridge)
    assert bool(torch.isinf(cost[~support]).all())
    for index in support.flatten().nonzero().flatten()[:12]:
        smaller = support.flatten().clone()
        smaller[index] = False
        grown = penalised(refit(stats, smaller.reshape(support.shape), ridge=ridge)) - base
        assert float(cost.flatten()[index]) == pytest.approx(grown, rel=1e-6, abs=1e-9)


@pytest.mark.usefixtures("fashion_mnist_installed")
@pytest.mark.parametrize("layer, rate", [("features.3", 0.7), ("classifier.0", 0.9),
                                         ("classifier.2", 0.8)])
def test_restoration_beats_magnitude_on_real_layers(layer: str, rate: float) -> None:
    """The shipped LeNet-5 on 512 Fashion-MNIST training images: at the same number of
    non-zeros, restoration + refit < magnitude + refit < magnitude in output error."""
    from nnjoules.data import load_fashion_mnist
    from nnjoules.models.builtin import pretrained

    model = pretrained("lenet5").eval()
    images = load_fashion_mnist(split="train").batch(torch.arange(512))[0]
    module = dict(model.named_modules())[layer]
    stats = stats_of(model, layer, images, positions=16)
    a0 = to_columns(module, module.weight.detach())
    every = torch.ones_like(a0, dtype=torch.bool)
    q = round(a0.numel() * (1 - rate))
    magnitude = stats.relative_error(a0 * magnitude_support(a0, every, q))
    magnitude_refit = stats.relative_error(refit(stats, magnitude_support(a0, every, q)))
    ours, support = restore(a0, every, q, stats, RestoreConfig())
    assert int(support.sum()) == q
    assert stats.relative_error(ours) < 0.7 * magnitude_refit < 0.7 * magnitude

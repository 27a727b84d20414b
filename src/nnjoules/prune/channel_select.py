"""Which channels a group loses: those whose removal least changes its consumers' outputs.

The paper's output-error restoration (`nnjoules.prune.restore`) applied one level up,
as ThiNet (Luo et al., 2017) and He et al. (2017, "Channel Pruning") do for FLOPs.
For a consumer with im2col inputs X, weights A (one column per filter) and outputs
Y = X A, removing root channel c removes the block J_c of X's columns that the channel
feeds (its input channel times R*S for a convolution; its block of flattened features
for a linear layer). With the remaining columns S re-solved by least squares, the
output error grows by exactly (block Optimal-Brain-Surgeon, ridge included)

    sum over filters m of  a_Jm' [(G_SS + lam I)^-1]_JJ^-1 a_Jm,   G = X'X,

at the least-squares weights a on S. **Our rule:** backward elimination, one channel a
step, the channel with the lowest cost summed over the group's consumers, each
consumer's cost divided by its ``||Y||^2`` (so that a large layer does not drown a
small one); then the consumers are refit by least squares on what is left
(`refit_consumers`). X and Y come from real training images, ``positions`` output
positions per image for a convolution (the statistics of `restore.collect_stats`).

A group whose consumers are all grouped convolutions (no dense consumer to measure)
falls back to the L1 norm of the root's filters (Li et al., 2017), and says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nnjoules.prune.restore import LayerStats, collect_stats, from_columns
from nnjoules.prune.structure import ChannelGroup, Coupled

log = logging.getLogger("nnjoules.prune")


@dataclass(frozen=True)
class ChannelOrder:
    """The order in which a group's root channels should go, and what each step costs.

    Attributes:
        root: the group's root module path.
        order: root channels, the first to remove first.
        errors: relative output error of the consumers (mean over consumers of
            ``||Y - X A||^2 / ||Y||^2``, after the least-squares refit) once the first
            j channels are gone, for j = 1 .. len(order); under the L1 fallback, the
            fraction of the root's L1 filter mass removed.
        measured: False when the L1 fallback was used.
    """

    root: str
    order: tuple[int, ...]
    errors: tuple[float, ...]
    measured: bool = True


def dense_consumers(group: ChannelGroup) -> tuple[Coupled, ...]:
    """Consumers whose output error can be measured (linear, or groups == 1)."""
    return tuple(c for c in group.consumers if c.groups == 1)


def column_blocks(consumer: Coupled, module: nn.Module) -> list[Tensor]:
    """For each root channel, the consumer's im2col columns it feeds."""
    if isinstance(module, nn.Linear):
        return [torch.tensor(idxs, dtype=torch.long) for idxs in consumer.per_channel]
    assert isinstance(module, nn.Conv2d)
    taps = module.kernel_size[0] * module.kernel_size[1]
    return [torch.tensor([i * taps + k for i in idxs for k in range(taps)], dtype=torch.long)
            for idxs in consumer.per_channel]


def consumer_stats(model: nn.Module, group: ChannelGroup, images: Tensor, *, positions: int,
                   generator: torch.Generator,
                   reference: nn.Module | None = None) -> dict[str, LayerStats]:
    """``X'X``, ``X'Y`` and ``||Y||^2`` of each dense consumer, on ``images``: X from
    ``model``, Y from ``reference`` (default ``model``; also where the reference's
    consumer has another number of outputs)."""
    out = {}
    for c in dense_consumers(group):
        target = reference
        if target is not None:
            ours = dict(model.named_modules())[c.module]
            theirs = dict(target.named_modules()).get(c.module)
            if theirs is None or theirs.weight.shape[0] != ours.weight.shape[0]:
                target = None
        out[c.module] = collect_stats(model, target or model, c.module, images,
                                      positions=positions, generator=generator)
    return out


def _solve(stats: LayerStats, kept: Tensor, ridge: float) -> tuple[Tensor, Tensor]:
    """(H^-1, A) on the kept columns: H = G_SS + lam I, A = H^-1 B_S."""
    gram = stats.gram[0]
    lam = ridge * float(gram.diagonal().mean()) + 1e-12
    h = gram.index_select(0, kept).index_select(1, kept)
    h = h + lam * torch.eye(len(kept), dtype=h.dtype)
    h_inv = torch.linalg.inv(h)
    return h_inv, h_inv @ stats.cross[0].index_select(0, kept)


def _relative_error(stats: LayerStats, kept: Tensor, a: Tensor) -> float:
    full = torch.zeros_like(stats.cross)
    full[0, kept] = a
    return stats.relative_error(full)


def channel_order(model: nn.Module, group: ChannelGroup, stats: dict[str, LayerStats], *,
                  limit: int, ridge: float = 1e-4) -> ChannelOrder:
    """The first ``limit`` channels to remove from ``group`` (at most channels - 1).

    Args:
        model: the network the statistics were collected on.
        group: the channel group.
        stats: `consumer_stats` of the group.
        limit: how many channels to order.
        ridge: Tikhonov term, a fraction of the mean of diag(G).
    """
    limit = max(0, min(limit, group.channels - 1))
    modules = dict(model.named_modules())
    consumers = [c for c in dense_consumers(group) if c.module in stats]
    if not consumers:
        return _l1_order(modules[group.root], group, limit)
    blocks = {c.module: column_blocks(c, modules[c.module]) for c in consumers}
    remaining = list(range(group.channels))
    order: list[int] = []
    errors: list[float] = []
    for _ in range(limit):
        cost = torch.zeros(len(remaining), dtype=torch.float64)
        for c in consumers:
            cost += _removal_costs(stats[c.module], blocks[c.module], remaining, ridge)
        pick = remaining[int(torch.argmin(cost))]  # ties: the lowest channel
        remaining.remove(pick)
        order.append(pick)
        errors.append(sum(_error_after(stats[c.module], blocks[c.module], remaining, ridge)
                          for c in consumers) / len(consumers))
    return ChannelOrder(root=group.root, order=tuple(order), errors=tuple(errors))


def _kept_columns(blocks: list[Tensor], remaining: list[int]) -> Tensor:
    return torch.cat([blocks[c] for c in remaining]).sort().values


def _removal_costs(stats: LayerStats, blocks: list[Tensor], remaining: list[int],
                   ridge: float) -> Tensor:
    """Block-OBS cost of removing each remaining channel, over ``||Y||^2``."""
    kept = _kept_columns(blocks, remaining)
    h_inv, a = _solve(stats, kept, ridge)
    position = torch.full((int(kept.max()) + 1,), -1, dtype=torch.long)
    position[kept] = torch.arange(len(kept))
    total = float(stats.y_sq.sum()) or 1.0
    costs = torch.empty(len(remaining), dtype=torch.float64)
    sizes = {len(blocks[c]) for c in remaining}
    if len(sizes) == 1:  # the usual case: one batched solve for every candidate
        j = torch.stack([position[blocks[c]] for c in remaining])  # [n, b]
        a_j = a[j]  # [n, b, M]
        block = h_inv[j[:, :, None], j[:, None, :]]  # [n, b, b]
        return (a_j * torch.linalg.solve(block, a_j)).sum((1, 2)) / total
    for i, c in enumerate(remaining):
        j = position[blocks[c]]
        block = h_inv.index_select(0, j).index_select(1, j)
        costs[i] = float((a[j] * torch.linalg.solve(block, a[j])).sum()) / total
    return costs


def _error_after(stats: LayerStats, blocks: list[Tensor], remaining: list[int],
                 ridge: float) -> float:
    kept = _kept_columns(blocks, remaining)
    return _relative_error(stats, kept, _solve(stats, kept, ridge)[1])


def _l1_order(root: nn.Module, group: ChannelGroup, limit: int) -> ChannelOrder:
    log.info("%s: no dense consumer to measure; channels chosen by filter L1 norm",
             group.root)
    assert isinstance(root.weight, Tensor)
    weight = root.weight.detach()
    norms = weight.abs().reshape(weight.shape[0], -1).sum(1).double()
    order = torch.sort(norms, stable=True).indices[:limit].tolist()
    mass = torch.cumsum(norms[order], 0) / norms.sum().clamp_min(1e-300)
    return ChannelOrder(root=group.root, order=tuple(order), errors=tuple(mass.tolist()),
                        measured=False)


@torch.no_grad()
def refit_consumers(model: nn.Module, group: ChannelGroup, stats: dict[str, LayerStats],
                    removed: list[int], *, ridge: float = 1e-4) -> None:
    """After `remove_channels`, set each dense consumer's remaining weights to the
    least-squares fit of its old outputs (bias kept). ``model`` is the pruned model."""
    modules = dict(model.named_modules())
    remaining = [c for c in range(group.channels) if c not in set(removed)]
    for consumer in dense_consumers(group):
        if consumer.module not in stats:
            continue
        module = modules[consumer.module]
        blocks = column_blocks(consumer, module)
        kept = _kept_columns(blocks, remaining)
        _, a = _solve(stats[consumer.module], kept, ridge)
        weight = module.weight
        if a.shape[0] != weight[0].numel():
            raise AssertionError(f"{consumer.module}: {a.shape[0]} kept columns for "
                                 f"{weight[0].numel()} inputs")
        weight.copy_(from_columns(module, a[None], like=weight))


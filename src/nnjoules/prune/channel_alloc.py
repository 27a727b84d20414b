"""How many channels each group loses in a round: energy saved per unit of *network*
output change, and a guard that keeps the baseline's shares within reach.

**Why not the consumers' error.** A group's consumer error (`channel_select`) is relative
to that consumer's own outputs: 5 % of an FC layer's output and 5 % of the first
convolution's output do not cost the same accuracy, so an allocation by energy per unit
of consumer error spends the accuracy budget on whichever layer's error happens to look
small (on LeNet-5: the FC layers, which hold little energy at batch 16). **Our rule:**
the price of a cut is the mean KL divergence of the network's softmax outputs from those
of the model at the start of the round, on the round's images, measured after the
physical cut and the consumers' least-squares refit (`GroupPlan`); it is measured at a
few prefix sizes of each group's channel order and interpolated between them (linear,
made non-decreasing). Channels are then taken one at a time across groups by the highest
energy saved (the energy model on the shrunk shapes) per unit of divergence added,
until the predicted saving reaches the round's share of the energy (`greedy_counts`).

**The guard.** The loop could also have cut every group by the same share of its
channels, as L1-norm filter pruning does. So each round also builds that *uniform*
allocation at the same predicted energy (`uniform_counts`), once with our channel choice
and refit and once with the baseline's own choice (smallest filter L1 norm, no refit),
applies each candidate to a copy of the model and keeps the one whose outputs diverge
least; an energy-aware round is never a worse cut, by that measure, than a cut the
baseline's rule would have made at the same energy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

MEASURED_SIZES = 6  # prefix sizes measured per group (and j = 0)
PROBE_IMAGES = 512  # images the divergence is measured on (the first of the round's)


@dataclass(frozen=True)
class GroupPlan:
    """A group's channels in removal order, and what each prefix saves and costs.

    Attributes:
        root: the group's root module path.
        channels: the root's output channels now.
        order: root channels, the first to remove first.
        saved: energy saved once the first j channels are gone, j = 0 .. len(order)
            (the report's unit).
        divergence: the network's output divergence at those j (0 at j = 0).
    """

    root: str
    channels: int
    order: tuple[int, ...]
    saved: tuple[float, ...]
    divergence: tuple[float, ...]


@torch.no_grad()
def log_probs(model: nn.Module, images: Tensor, chunk: int = 256) -> Tensor:
    """``log_softmax`` of ``model``'s outputs on ``images`` (eval mode), float64."""
    training = model.training
    model.eval()
    try:
        parts = [model(images[i:i + chunk]).double().flatten(1).log_softmax(1)
                 for i in range(0, len(images), chunk)]
    finally:
        model.train(training)
    return torch.cat(parts)


def divergence(reference: Tensor, model: nn.Module, images: Tensor) -> float:
    """Mean KL(p_reference || p_model) over ``images``; ``reference`` from `log_probs`.

    >>> import torch
    >>> from torch import nn
    >>> ref = log_probs(nn.Identity(), torch.tensor([[0.0, 0.0]]))
    >>> round(divergence(ref, nn.Identity(), torch.tensor([[0.0, 0.6931471805599453]])), 4)
    0.0589
    """
    ours = log_probs(model, images)
    return float((reference.exp() * (reference - ours)).sum(1).mean())


def measured_sizes(limit: int, points: int = MEASURED_SIZES) -> list[int]:
    """Prefix sizes at which a group's divergence is measured: ``points`` spread over
    1 .. ``limit`` (fewer when ``limit`` is small).

    >>> measured_sizes(12, 4), measured_sizes(2, 4), measured_sizes(0)
    ([3, 6, 9, 12], [1, 2], [])
    """
    return sorted({max(1, round(limit * k / points)) for k in range(1, points + 1)}) \
        if limit > 0 else []


def interpolate(sizes: Sequence[int], values: Sequence[float], limit: int
                ) -> tuple[float, ...]:
    """Values at j = 0 .. ``limit`` from those measured at ``sizes`` (0 at j = 0): linear
    between measured sizes, then the running maximum (removing more never helps).

    >>> interpolate([2, 4], [1.0, 0.5], 4)
    (0.0, 0.5, 1.0, 1.0, 1.0)
    """
    points = [(0, 0.0), *zip(sizes, values, strict=True)]
    out = []
    for j in range(limit + 1):
        right = next(i for i, (s, _) in enumerate(points) if s >= j)
        (s1, v1), (s0, v0) = points[right], points[max(0, right - 1)]
        out.append(v1 if s1 == s0 else v0 + (v1 - v0) * (j - s0) / (s1 - s0))
    for j in range(1, len(out)):
        out[j] = max(out[j], out[j - 1])
    return tuple(out)


def greedy_counts(plans: Sequence[GroupPlan], budget: float) -> dict[str, int]:
    """Channels per group: one at a time, across groups, by the highest energy saved per
    unit of divergence added, until the predicted saving reaches ``budget``.

    >>> a = GroupPlan("a", 4, (0, 1), (0.0, 10.0, 20.0), (0.0, 1.0, 4.0))
    >>> b = GroupPlan("b", 4, (0, 1), (0.0, 6.0, 12.0), (0.0, 1.0, 2.0))
    >>> greedy_counts([a, b], 25.0)  # a1 (10/1), b1 (6/1), b2 (6/1), a2 (10/3)
    {'a': 2, 'b': 2}
    >>> greedy_counts([a, b], 15.0)
    {'a': 1, 'b': 1}
    """
    taken = [0] * len(plans)
    total = 0.0
    while total < budget:
        best, best_gain = -1, -1.0
        for gi, plan in enumerate(plans):
            j = taken[gi] + 1
            if j >= len(plan.saved):
                continue
            energy = plan.saved[j] - plan.saved[j - 1]
            added = max(plan.divergence[j] - plan.divergence[j - 1], 0.0) + 1e-12
            if energy / added > best_gain:
                best, best_gain = gi, energy / added
        if best < 0:
            break
        taken[best] += 1
        total += plans[best].saved[taken[best]] - plans[best].saved[taken[best] - 1]
    return {p.root: n for p, n in zip(plans, taken, strict=True) if n}


def uniform_counts(plans: Sequence[GroupPlan], budget: float,
                   steps: int = 100) -> dict[str, int]:
    """Channels per group as the baseline shares them: the same fraction of every
    group's channels (rounded, within its order), the smallest fraction on a grid of
    ``steps`` whose predicted saving reaches ``budget`` (else the largest).

    >>> a = GroupPlan("a", 4, (0, 1, 2), (0.0, 1.0, 2.0, 3.0), (0.0,) * 4)
    >>> b = GroupPlan("b", 10, tuple(range(8)), tuple(float(j) for j in range(9)),
    ...               (0.0,) * 9)
    >>> uniform_counts([a, b], 4.0)  # 25 %: a 1, b 2 (2.5 rounded to even): 3 < 4; 26 %
    {'a': 1, 'b': 3}
    """
    counts: dict[str, int] = {}
    for k in range(1, steps + 1):
        counts = {p.root: min(len(p.order), round(k / steps * p.channels)) for p in plans}
        if sum(p.saved[counts[p.root]] for p in plans) >= budget:
            break
    return {root: n for root, n in counts.items() if n}

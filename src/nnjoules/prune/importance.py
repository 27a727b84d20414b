"""How many weights each layer keeps in a round: the two methods' allocation rules.

**Magnitude (the baseline, Han et al.).** ``ranking="layer"``: every layer keeps
``1 - rate`` of its non-zeros, by |w|. ``ranking="global"``: one threshold on |w| over
all layers removes ``rate`` of all remaining non-zeros (the layers' floors respected).

**Energy-aware (our rules; the paper does not say how q is chosen).**
``allocation="energy"`` (default): layer l loses ``rate * (P_l / max P)^x`` of its
non-zeros, P_l the energy that pruning layer l can still remove (its energy minus its
energy with every weight zero), x = ``energy_exponent``: the layers that hold the most
removable energy are pruned hardest, as the paper's energy ordering intends.

``allocation="saliency"``: every remaining
weight j of layer l gets the score

    s_j = (a_j^2 E[x_j^2] / sum_m E[y_m^2])  /  eps_l ^ energy_exponent

the relative output error of the layer if that weight alone is zeroed (a diagonal,
output-based saliency: ``E[x_j^2]`` the mean square of its input, ``y_m`` the layer's
outputs) per unit of energy saved, ``eps_l`` the energy that one non-zero weight of
layer l costs (from the energy model: the layer's energy minus its energy with all
weights zero, over its non-zeros). Weights are removed in increasing score until the
removed energy reaches ``rate`` of all removable energy; each layer then keeps the
rest. With ``energy_exponent=0`` the rule ignores energy (pure output saliency).
On LeNet-5 / Fashion-MNIST it pruned convolutions too little to pay (docs/pruning.md).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from nnjoules.prune import masks
from nnjoules.prune.restore import im2col, outputs, to_columns

Counts = dict[str, tuple[int, int]]  # name -> (non-zeros, weights)


def layer_keep(counts: Counts, floors: dict[str, int], rate: float) -> dict[str, int]:
    """Every layer keeps ``1 - rate`` of its non-zeros (not below its floor)."""
    return {n: max(min(floors[n], c[0]), round(c[0] * (1 - rate))) for n, c in counts.items()}


def energy_rate_keep(counts: Counts, floors: dict[str, int], rate: float,
                     removable_energy: dict[str, float], energy_exponent: float,
                     ) -> dict[str, int]:
    """Every layer keeps ``1 - rate * (P_l / max P)^x`` of its non-zeros, P_l the energy
    that pruning it can still remove (the layers that hold the most removable energy lose
    the most weights; x = ``energy_exponent``, 0: the same rate everywhere)."""
    top = max(removable_energy.values()) if removable_energy else 0.0
    keep = {}
    for name, (nonzero, _total) in counts.items():
        share = removable_energy[name] / top if top > 0 else 0.0
        layer_rate = rate * share ** energy_exponent if energy_exponent > 0 else rate
        keep[name] = max(min(floors[name], nonzero), round(nonzero * (1 - layer_rate)))
    return keep


def global_magnitude_keep(layers: dict[str, nn.Module], counts: Counts, floors: dict[str, int],
                          rate: float) -> dict[str, int]:
    """Keep counts from one |w| threshold removing ``rate`` of all non-zeros."""
    keys = {n: _removable(masks.weight_of(m).abs().flatten().cpu().double(),
                          masks.mask_of(m).flatten().cpu() > 0, floors[n])
            for n, m in layers.items()}
    total = sum(counts[n][0] for n in layers)
    return _cut(keys, dict.fromkeys(layers, 1.0), counts, rate * total)


def output_saliency(layers: dict[str, nn.Module],
                    power: dict[str, tuple[Tensor, float]]) -> dict[str, Tensor]:
    """Per weight, the relative output error of zeroing it alone: [G, D, Mg] per layer."""
    out = {}
    for name, module in layers.items():
        x_sq, y_power = power[name]
        a = to_columns(module, masks.weight_of(module)).cpu()
        out[name] = a.square() * x_sq[:, :, None] / max(y_power, 1e-30)
    return out


def fisher_saliency(model: nn.Module, layers: dict[str, nn.Module], images: Tensor,
                    chunk: int = 8) -> dict[str, Tensor]:
    """Per weight, ``w^2 F / 2`` with F the diagonal Fisher information of the model's
    predictive distribution (labels drawn from the model's own softmax, so no labels
    are needed), estimated from gradients of micro-batches of ``chunk`` images."""
    params: dict[str, Tensor] = {}
    for name, module in layers.items():
        orig = module.weight_orig
        assert isinstance(orig, Tensor)
        params[name] = orig
    fisher = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in params.items()}
    training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(0)
    try:
        for start in range(0, len(images), chunk):
            batch = images[start:start + chunk]
            logits = model(batch)
            with torch.no_grad():
                probs = torch.softmax(logits.detach().double().cpu(), 1)
                labels = torch.multinomial(probs, 1, generator=generator)[:, 0]
            loss = nn.functional.cross_entropy(logits, labels.to(logits.device), reduction="sum")
            grads = torch.autograd.grad(loss, list(params.values()))
            for (name, _p), grad in zip(params.items(), grads, strict=True):
                fisher[name] += grad.detach().double().square() / len(batch)
    finally:
        model.train(training)
    return {n: to_columns(m, (masks.weight_of(m).double().square() * fisher[n]).float() / 2)
            .cpu() for n, m in layers.items()}


def energy_aware_keep(layers: dict[str, nn.Module], counts: Counts, floors: dict[str, int],
                      rate: float, removable_energy: dict[str, float],
                      saliency: dict[str, Tensor], energy_exponent: float) -> dict[str, int]:
    """Keep counts from the energy-aware score (module docstring).

    Args:
        removable_energy: per layer, energy minus energy with all weights zero.
        saliency: per layer, the cost of removing each weight, [G, D, Mg]
            (`output_saliency` or `fisher_saliency`).
    """
    keys: dict[str, Tensor] = {}
    per_weight: dict[str, float] = {}
    for name, module in layers.items():
        nonzero = counts[name][0]
        eps = removable_energy[name] / nonzero if nonzero else 0.0
        per_weight[name] = eps
        score = saliency[name].double()
        if energy_exponent > 0:
            score = score / eps ** energy_exponent if eps > 0 else torch.full_like(score,
                                                                                 math.inf)
        cand = to_columns(module, masks.mask_of(module)).cpu() > 0
        keys[name] = _removable(score.flatten(), cand.flatten(), floors[name])
    target = rate * sum(removable_energy[n] for n in layers)
    return _cut(keys, per_weight, counts, target)


def _removable(score: Tensor, candidate: Tensor, floor: int) -> Tensor:
    """Scores of a layer's removable weights: its candidates minus the ``floor`` best."""
    values = score[candidate]
    ordered = torch.sort(values, stable=True).values
    return ordered[: max(0, values.numel() - floor)]


def _cut(keys: dict[str, Tensor], cost: dict[str, float], counts: Counts,
         target: float) -> dict[str, int]:
    """Remove weights in increasing key until the summed ``cost`` reaches ``target``."""
    names = list(keys)
    values = torch.cat([keys[n] for n in names])
    owner = torch.cat([torch.full((keys[n].numel(),), i) for i, n in enumerate(names)])
    order = torch.sort(values, stable=True).indices
    values, owner = values[order], owner[order]
    finite = torch.isfinite(values)
    weight_cost = torch.tensor([cost[n] for n in names], dtype=torch.float64)[owner]
    spent = torch.cumsum(weight_cost * finite, 0)
    take = int(torch.searchsorted(spent, torch.tensor([target], dtype=torch.float64))[0]) + 1
    take = min(take, int(finite.sum())) if target > 0 else 0
    removed = torch.bincount(owner[:take], minlength=len(names))
    return {n: counts[n][0] - int(removed[i]) for i, n in enumerate(names)}


@torch.no_grad()
def input_power(model: nn.Module, names: list[str], images: Tensor,
                chunk: int = 256) -> dict[str, tuple[Tensor, float]]:
    """Per layer: ``E[x_j^2]`` over im2col rows as [G, D], and ``sum_m E[y_m^2]`` (bias
    removed), from one pass over ``images``."""
    modules = dict(model.named_modules())
    sums: dict[str, list[float | Tensor]] = {}
    handles = []

    def hook(name: str, module: nn.Module):  # type: ignore[no-untyped-def]
        def record(_m: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
            x = im2col(module, args[0]).double()  # [N, G*D, L]
            y = outputs(module, out).double()     # [N, M, L]
            groups = getattr(module, "groups", 1)
            x_sq = x.square().sum((0, 2)).reshape(groups, -1)
            rows = x.shape[0] * x.shape[2]
            y_sq = float(y.square().sum()) / rows
            if name in sums:
                prev_x, prev_rows, prev_y = sums[name]
                assert isinstance(prev_x, Tensor)
                sums[name] = [prev_x + x_sq, float(prev_rows) + rows,
                              float(prev_y) + y_sq * rows]
            else:
                sums[name] = [x_sq, float(rows), y_sq * rows]
        return record

    for name in names:
        handles.append(modules[name].register_forward_hook(hook(name, modules[name])))
    training = model.training
    model.eval()
    try:
        for start in range(0, len(images), chunk):
            model(images[start:start + chunk])
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    out = {}
    for name, (x_sq, rows, y_sum) in sums.items():
        assert isinstance(x_sq, Tensor)
        out[name] = (x_sq.cpu() / float(rows), float(y_sum) / float(rows))
    return out

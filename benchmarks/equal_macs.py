"""The "equal MACs" baseline of bench_pruning.py: Torch-Pruning's own global pruning.

Torch-Pruning's `MagnitudePruner` (L1 filter importance, ``global_pruning=True``: one
ranking over every layer's channels, each group's scores normalised by their mean, as
Torch-Pruning does by default) removes channels step by step until the model's MACs
reach those of the energy-aware channel-pruned model; the schedule has as many rounds
as that run had, the MAC target of round i is ``dense * (target / dense) ** (i / R)``
(the same geometric shrink each round), and each round is followed by the same
fine-tuning. No accuracy budget is applied (the MAC count is forced); its validation
and test accuracies are reported. The energy is then measured exactly as for every other
method, so the comparison shows what choosing channels by MACs instead of energy costs.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

STEPS = 1000  # Torch-Pruning steps to 95 % of the channels: fine steps, small overshoot


def macs_per_item(model: nn.Module, example: torch.Tensor) -> int:
    """MACs of one input through every Conv2d and Linear (the energy model's count:
    outputs x (input channels / groups) x kernel taps; one item)."""
    total = 0

    def hook(module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        per_output = module.weight[0].numel()  # C/G * R * S, or in_features
        total += int(output[:1].numel()) * int(per_output)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total


def output_layer(model: nn.Module) -> nn.Module:
    """The last Conv2d or Linear in module order (the classifier: never pruned)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][-1]


def equal_macs_run(dense: nn.Module, target_macs: float, rounds: int, splits: Any,
                   finetune: Any, seed: int, meter: Any) -> dict[str, Any]:
    """Prune a copy of ``dense`` with Torch-Pruning's global magnitude pruning to
    ``target_macs`` (per item) in ``rounds`` rounds, fine-tuning after each; the
    accuracies, MACs and energy (``meter``) of the result."""
    import torch_pruning as tp

    from nnjoules.prune.finetune import evaluate, mix_seed, train
    from nnjoules.prune.masks import clone

    began = time.perf_counter()
    model = clone(dense)
    example = splits.train.batch(torch.arange(2))[0]
    start = macs_per_item(model, example)
    pruner = tp.pruner.MagnitudePruner(
        model, example, importance=tp.importance.MagnitudeImportance(p=1),
        global_pruning=True, pruning_ratio=0.95, max_pruning_ratio=0.95,
        iterative_steps=STEPS, ignored_layers=[output_layer(model)])
    history = []
    for i in range(1, rounds + 1):
        goal = start * (target_macs / start) ** (i / rounds)
        while macs_per_item(model, example) > goal and pruner.current_step < STEPS:
            pruner.step()
        train(model, splits.train, finetune, seed=mix_seed(seed, 5, i))
        history.append({"round": i, "macs": macs_per_item(model, example),
                        "goal_macs": goal})
    report = meter.report(model)
    return {"final": {"accuracy": evaluate(model, splits.val), "energy": report.total(),
                      "macs": report.macs(), "macs_per_item": macs_per_item(model, example),
                      "density": 1.0, "energy_reduction": None},
            "test_accuracy": evaluate(model, splits.test), "target_macs": target_macs,
            "history": history, "seconds": round(time.perf_counter() - began, 1),
            "parameters": sum(p.numel() for p in model.parameters())}

"""Channel pruning, one round per ``step()``: `ChannelPruner` (``granularity="channel"``).

One energy-aware round:

1. estimate the model's energy (`EnergyMeter`) and find its channel groups
   (`nnjoules.prune.structure`);
2. per group, order its channels by the consumers' output error (`channel_order`, at most
   ``max_rate`` of its channels, never the last), price every prefix of that order on
   shapes (the energy of the coupled layers once the first j channels are gone, from the
   energy model on the shrunk shapes: `shrink_workload`), and measure the network's
   output divergence after cutting and refitting a few prefixes
   (`nnjoules.prune.channel_alloc.GroupPlan`);
3. **allocate (our rule, `nnjoules.prune.channel_alloc`):** take channels one at a time,
   across groups, by the highest energy saved per unit of divergence added, until the
   predicted saving reaches ``rate`` of the model's energy; the guard also builds the
   uniform share of the same energy (with our choice and refit, and as the L1 baseline
   would cut it), applies all three to copies and keeps the least divergent;
4. in module order, each group's share is removed physically (Torch-Pruning) and its
   consumers refit by least squares (their inputs from the current model, their outputs
   from the model at the start of the round);
5. fine-tune, check the accuracy budget; a round below it is undone and the rate
   multiplied by ``backoff``, as in `nnjoules.prune.loop.Pruner`.

The baseline (``method="magnitude"``) is L1-norm filter pruning (Li et al., 2017): every
group loses ``rate`` of its channels, those whose root filters have the smallest L1 norm,
with no refit; the same rounds, fine-tuning and budget.

The model changes shape, so a checkpoint stores the cuts of every accepted round and
the weights; `load_state` replays the cuts on the dense model, then loads the weights.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nnjoules.energy.hardware import Hardware
from nnjoules.energy.workload import Workload
from nnjoules.errors import InputError
from nnjoules.prune.channel_alloc import (
    PROBE_IMAGES,
    GroupPlan,
    divergence,
    greedy_counts,
    interpolate,
    log_probs,
    measured_sizes,
    uniform_counts,
)
from nnjoules.prune.channel_select import channel_order, consumer_stats, refit_consumers
from nnjoules.prune.config import PruneConfig
from nnjoules.prune.energy import EnergyMeter
from nnjoules.prune.finetune import mix_seed
from nnjoules.prune.result import LayerRecord, StepRecord
from nnjoules.prune.rounds import Evaluate, Finetune, OnStep, RoundLoop
from nnjoules.prune.structure import (
    ChannelGroup,
    channel_groups,
    check_channel_support,
    remove_channels,
    shrink_workload,
)

log = logging.getLogger("nnjoules.prune")

Cuts = dict[str, list[int]]  # root module path -> channels removed (numbering of that time)


class ChannelPruner(RoundLoop):
    """Energy-aware (or L1-norm) channel pruning, one round per ``step()`` (`RoundLoop`).

    Args:
        model: the trained model (no weight masks); pruned in place, changing shape.
        calibration: images (a tensor ``[N, ...]`` or a dataset of (image, label)) the
            choice and the refit are measured on.
        evaluate: ``evaluate(model) -> accuracy`` in [0, 1].
        finetune: ``finetune(model)``.
        config: `PruneConfig` (``granularity="channel"``).
        hardware: preset name, YAML file or `Hardware`.
        reference_accuracy: the accuracy the budget counts from (default: the model's).
        checkpoint_dir: write the state there after every step (atomic).
        on_step: called with every `StepRecord`.
        extra_state: plain values saved with every checkpoint.

    Raises:
        InputError: the model has weight masks, a grouped (not depthwise) convolution
            (`check_channel_support`), or no channel group to prune.
    """

    def __init__(self, model: nn.Module, calibration: Any, *, evaluate: Evaluate,
                 finetune: Finetune, config: PruneConfig | None = None,
                 hardware: Any = "eyeriss", reference_accuracy: float | None = None,
                 checkpoint_dir: str | Path | None = None, on_step: OnStep | None = None,
                 extra_state: dict[str, Any] | None = None) -> None:
        from nnjoules.prune.loop import _images

        self._init_loop(config or PruneConfig(granularity="channel"), evaluate=evaluate,
                        finetune=finetune, reference_accuracy=reference_accuracy,
                        checkpoint_dir=checkpoint_dir, on_step=on_step,
                        extra_state=extra_state)
        if any(name.endswith("weight_mask") for name, _ in model.named_buffers()):
            raise InputError("channel pruning needs a model without weight masks: make them "
                             "permanent first (nnjoules.prune.make_permanent)")
        check_channel_support(model)  # before any image is drawn or energy estimated
        self.model = model
        self.dense = copy.deepcopy(model).cpu()  # what resume replays the cuts on
        fit = max(self.config.restore.samples, self.config.density_images)
        self.calibration = _images(calibration, fit)
        self.example = self.calibration[:2]
        if not channel_groups(model, self.example.to(_device(model))):
            raise InputError("the model has no prunable channel: every convolution or "
                             "linear layer feeds the output directly")
        self.meter = EnergyMeter.of(self.config, self.calibration, hardware)
        self.cuts: list[Cuts] = []  # per accepted round
        self.choices: list[dict[str, Any]] = []  # per round: the allocation kept and why
        self._round_cuts: Cuts = {}

    # -- what `RoundLoop` asks of a channel-pruning loop -------------------------------

    def _snapshot(self) -> nn.Module:
        return copy.deepcopy(self.model)

    def _restore(self, snapshot: nn.Module) -> None:
        self._replace_model(snapshot)

    def _round_changed(self) -> bool:
        return bool(self._round_cuts)

    def _accept(self) -> None:
        self.cuts.append(self._round_cuts)

    def _result_extra(self) -> dict[str, Any]:
        return {"cuts": self.cuts, "allocations": self.choices}

    def _model_state(self) -> dict[str, Any]:
        return {"cuts": self.cuts, "allocations": self.choices,
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}

    def _load_model_state(self, state: dict[str, Any]) -> None:
        """The cuts replayed on the dense model, then the weights."""
        model = copy.deepcopy(self.dense).to(_device(self.model))
        example = self.example.to(_device(model))
        for cuts in state["cuts"]:
            remove_channels(model, example, cuts)
        model.load_state_dict(state["model"])
        self._replace_model(model)
        self.cuts = [dict(c) for c in state["cuts"]]
        self.choices = [dict(c) for c in state.get("allocations", [])]

    # -- one round -----------------------------------------------------------------------

    def _prune_round(self, rate: float) -> dict[str, float]:
        """Remove this round's channels (kept in ``_round_cuts``); each group's predicted
        consumer error."""
        self._round_cuts, errors = self._cut_round(rate)
        return errors

    def _cut_round(self, rate: float) -> tuple[Cuts, dict[str, float]]:
        device = _device(self.model)
        example = self.example.to(device)
        groups = channel_groups(self.model, example)
        if self.config.method == "magnitude":
            cuts = {g.root: _l1_smallest(self.model, g, _count(g.channels, rate))
                    for g in groups}
            cuts = {root: chosen for root, chosen in cuts.items() if chosen}
            if cuts:
                remove_channels(self.model, example, cuts)
            return cuts, {}
        images = self._round_images().to(device)
        probe = images[:PROBE_IMAGES]
        start = log_probs(self.model, probe)
        plans = self._plans(groups, images, probe, start)
        budget = rate * self.meter.report(self.model).total()
        energy, uniform = greedy_counts(plans, budget), uniform_counts(plans, budget)
        candidates = [("energy", energy, False), ("uniform", uniform, False),
                      ("uniform-l1", uniform, True)]
        reference = copy.deepcopy(self.model).eval()
        roots = [g.root for g in groups]
        best: tuple[float, str, nn.Module, Cuts, dict[str, float]] | None = None
        tried: dict[str, float] = {}
        for name, counts, l1 in candidates:
            model = copy.deepcopy(self.model)
            cuts, errors = self._apply(model, roots, counts, images, reference, l1=l1)
            tried[name] = divergence(start, model, probe)
            if best is None or tried[name] < best[0]:
                best = (tried[name], name, model, cuts, errors)
        assert best is not None
        _, chosen, model, cuts, errors = best
        self.choices.append({"round": self.round, "chosen": chosen, "divergence": tried,
                             "counts": {"energy": energy, "uniform": uniform}})
        log.info("round %d: %s allocation (output divergence %s)", self.round, chosen, tried)
        self._replace_model(model)
        return cuts, errors

    def _apply(self, model: nn.Module, roots: list[str], counts: Mapping[str, int],
               images: Tensor, reference: nn.Module, *, l1: bool
               ) -> tuple[Cuts, dict[str, float]]:
        """Cut ``counts[root]`` channels of each group of ``model`` in module order:
        chosen by the consumers' output error and refit (`channel_order`), or with
        ``l1`` as the baseline chooses them (smallest filter L1 norm, no refit)."""
        example = self.example.to(_device(model))
        cuts, errors = {}, {}
        for index, root in enumerate(roots):
            if not counts.get(root):
                continue
            group = {g.root: g for g in channel_groups(model, example)}[root]
            if l1:
                chosen = _l1_smallest(model, group, counts[root])
                remove_channels(model, example, {root: chosen})
                cuts[root] = chosen
                continue
            stats = consumer_stats(model, group, images, positions=self._positions(),
                                   generator=self._generator(13, index), reference=reference)
            order = channel_order(model, group, stats, limit=counts[root],
                                  ridge=self.config.restore.ridge)
            chosen = list(order.order)
            remove_channels(model, example, {root: chosen})
            refit_consumers(model, group, stats, chosen, ridge=self.config.restore.ridge)
            cuts[root], errors[root] = chosen, order.errors[-1]
        return cuts, errors

    def _plans(self, groups: tuple[ChannelGroup, ...], images: Tensor, probe: Tensor,
               start: Tensor) -> list[GroupPlan]:
        """Per group: its channel order (at most ``max_rate`` of its channels), the energy
        each prefix saves (the energy model on the shrunk shapes) and the network's output
        divergence after cutting and refitting a few prefixes (`channel_alloc`)."""
        from nnjoules.energy.hardware.loading import load_hardware

        report = self.meter.report(self.model)
        hw = load_hardware(self.meter.hardware)
        example = self.example.to(_device(self.model))
        ridge = self.config.restore.ridge
        plans = []
        for gi, group in enumerate(groups):
            limit = _count(group.channels, self.config.max_rate)
            stats = consumer_stats(self.model, group, images, positions=self._positions(),
                                   generator=self._generator(17, gi))
            order = channel_order(self.model, group, stats, limit=limit, ridge=ridge).order
            energies = [_coupled_energy(report.workload, group, order[:j], hw, self.meter)
                        for j in range(len(order) + 1)]
            sizes = measured_sizes(len(order))
            values = []
            for j in sizes:
                model = copy.deepcopy(self.model)
                remove_channels(model, example, {group.root: list(order[:j])})
                refit_consumers(model, group, stats, list(order[:j]), ridge=ridge)
                values.append(divergence(start, model, probe))
            plans.append(GroupPlan(root=group.root, channels=group.channels, order=order,
                                   saved=tuple(energies[0] - e for e in energies),
                                   divergence=interpolate(sizes, values, len(order))))
        return plans

    # -- internals -----------------------------------------------------------------------

    def _round_images(self) -> Tensor:
        gen = torch.Generator().manual_seed(mix_seed(self.config.seed, 7, self.round))
        pick = torch.randperm(len(self.calibration), generator=gen)
        return self.calibration[pick[: self.config.restore.samples].sort().values]

    def _positions(self) -> int:
        return self.config.restore.positions

    def _generator(self, salt: int, index: int) -> torch.Generator:
        return torch.Generator().manual_seed(mix_seed(self.config.seed, salt, self.round,
                                                      index))

    def _replace_model(self, model: nn.Module) -> None:
        """Make ``model``'s modules and weights ours: the caller's reference to the model
        (the object `prune()` returns, a DDP wrapper's module) stays the pruned model."""
        self.model.__dict__.update(model.__dict__)

    def _record(self, accuracy: float, accepted: bool, rate: float, seconds: float,
                errors: Mapping[str, float]) -> StepRecord:
        report = self.meter.report(self.model)
        layers = []
        for name, module in self.model.named_modules():
            if not isinstance(module, (nn.Conv2d, nn.Linear)):
                continue
            items = [it for it in report.layers if it.name.split("#", 1)[0] == name]
            count = module.weight.numel()
            nonzero = int(torch.count_nonzero(module.weight.detach()))
            layers.append(LayerRecord(name=name, weights=count, nonzero_weights=nonzero,
                                      nonskipped_macs=sum(it.energy.nonskipped_macs
                                                          for it in items),
                                      energy=sum(it.total for it in items),
                                      output_error=errors.get(name)))
        return StepRecord(round=self.round, accepted=accepted, accuracy=accuracy,
                          energy=report.total(),
                          nonzero_weights=sum(lay.nonzero_weights for lay in layers),
                          weights=sum(lay.weights for lay in layers),
                          nonskipped_macs=report.nonskipped_macs(), macs=report.macs(),
                          rate=rate, seconds=seconds, layers=tuple(layers))



def _count(channels: int, rate: float) -> int:
    """Channels ``rate`` of ``channels`` amounts to (rounded), never all of them."""
    return max(0, min(channels - 1, round(rate * channels)))


def _coupled_energy(workload: Workload, group: ChannelGroup, channels: tuple[int, ...],
                    hw: Hardware, meter: EnergyMeter) -> float:
    """Energy of the layers the group couples, once ``channels`` are gone (the other
    layers do not change), from the energy model on the shrunk shapes."""
    from nnjoules.energy.cost import Compression, CompressionLevels, Gating
    from nnjoules.energy.estimate import estimate_workload

    shrunk = shrink_workload(workload, {group: channels}) if channels else workload
    names = {c.module for c in group.coupled}
    layers = tuple(lay for lay in shrunk.layers if lay.name.split("#", 1)[0] in names)
    part = estimate_workload(replace(shrunk, layers=layers), hw,
                             compression=Compression(meter.compression),
                             gating=Gating(meter.gating),
                             compression_levels=CompressionLevels(meter.compression_levels),
                             dataflow=meter.dataflow)
    return part.total()


def _l1_smallest(model: nn.Module, group: ChannelGroup, count: int) -> list[int]:
    """The ``count`` root filters with the smallest L1 norm (Li et al., 2017)."""
    weight = dict(model.named_modules())[group.root].weight
    assert isinstance(weight, Tensor)
    norms = weight.detach().abs().reshape(weight.shape[0], -1).sum(1)
    return sorted(torch.sort(norms.cpu(), stable=True).indices[:count].tolist())


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


"""Channel pruning, one round per ``step()``: `ChannelPruner` (``granularity="channel"``).

One energy-aware round:

1. estimate the model's energy (`EnergyMeter`) and find its channel groups
   (`nnjoules.prune.structure`);
2. per group, order its channels by the consumers' output error (`channel_order`, at most
   ``max_rate`` of its channels, never the last) and price every prefix of that order on
   shapes: the energy of the coupled layers once the first j channels are gone, from the
   energy model (`shrink_workload`; the mapping search runs on the smaller shapes);
3. **allocate (our rule):** take channels one at a time, across groups, by the highest
   energy saved per unit of output error added (each group's channels in its own order),
   until the predicted saving reaches ``rate`` of the model's energy;
4. in module order, remove each group's share physically (Torch-Pruning) and refit its
   consumers by least squares (their inputs from the current model, their outputs from
   the model at the start of the round);
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
import heapq
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nnjoules.energy.hardware import Hardware
from nnjoules.energy.workload import Workload
from nnjoules.errors import InputError
from nnjoules.prune import checkpoint
from nnjoules.prune.channel_select import channel_order, consumer_stats, refit_consumers
from nnjoules.prune.config import PruneConfig
from nnjoules.prune.energy import EnergyMeter
from nnjoules.prune.finetune import mix_seed
from nnjoules.prune.result import LayerRecord, PruneResult, StepRecord
from nnjoules.prune.structure import (
    ChannelGroup,
    channel_groups,
    remove_channels,
    shrink_workload,
)

log = logging.getLogger("nnjoules.prune")

Cuts = dict[str, list[int]]  # root module path -> channels removed (numbering of that time)


class ChannelPruner:
    """Energy-aware (or L1-norm) channel pruning; the interface of `Pruner`.

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
        InputError: the model has weight masks, or no channel group to prune.
    """

    def __init__(self, model: nn.Module, calibration: Any, *,
                 evaluate: Callable[[nn.Module], float], finetune: Callable[[nn.Module], Any],
                 config: PruneConfig | None = None, hardware: Any = "eyeriss",
                 reference_accuracy: float | None = None,
                 checkpoint_dir: str | Path | None = None,
                 on_step: Callable[[StepRecord], Any] | None = None,
                 extra_state: dict[str, Any] | None = None) -> None:
        from nnjoules.prune.loop import _images

        self.config = config or PruneConfig(granularity="channel")
        if any(name.endswith("weight_mask") for name, _ in model.named_buffers()):
            raise InputError("channel pruning needs a model without weight masks: make them "
                             "permanent first (nnjoules.prune.make_permanent)")
        self.model = model
        self.dense = copy.deepcopy(model).cpu()  # what resume replays the cuts on
        fit = max(self.config.restore.samples, self.config.density_images)
        self.calibration = _images(calibration, fit)
        self.example = self.calibration[:2]
        if not channel_groups(model, self.example.to(_device(model))):
            raise InputError("the model has no prunable channel: every convolution or "
                             "linear layer feeds the output directly")
        self.evaluate, self.finetune, self.on_step = evaluate, finetune, on_step
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.extra_state = dict(extra_state or {})
        self.meter = EnergyMeter(self.calibration[: self.config.density_images],
                                 hardware=hardware, batch=self.config.energy_batch,
                                 bits=self.config.bits, compression=self.config.compression,
                                 gating=self.config.gating,
                                 compression_levels=self.config.compression_levels)
        self.round = 0
        self.rate_scale = 1.0
        self.failures = 0
        self.stop_reason = ""
        self.history: list[StepRecord] = []
        self.cuts: list[Cuts] = []  # per accepted round
        self._given_reference = reference_accuracy

    # -- the public loop, as `Pruner` ----------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the run has stopped (see ``stop_reason``)."""
        return bool(self.stop_reason)

    @property
    def reference_accuracy(self) -> float:
        """The accuracy the budget counts from."""
        self._start()
        return self._given_reference if self._given_reference is not None \
            else self.history[0].accuracy

    @property
    def accuracy_floor(self) -> float:
        """The lowest accepted validation accuracy."""
        return self.reference_accuracy - self.config.accuracy_drop

    def step(self) -> StepRecord:
        """Run one round; returns its record (also appended to ``history``).

        Raises:
            InputError: the run has already stopped.
        """
        self._start()
        if self.done:
            raise InputError(f"pruning has stopped ({self.stop_reason}); nothing to step")
        began = time.perf_counter()
        self.round += 1
        before = copy.deepcopy(self.model)
        rate = self.config.rate * self.rate_scale
        cuts, errors = self._prune_round(rate)
        self.finetune(self.model)
        accuracy = float(self.evaluate(self.model))
        accepted = accuracy >= self.accuracy_floor and bool(cuts)
        record = self._record(accuracy, accepted, rate, time.perf_counter() - began, errors)
        if accepted:
            self.cuts.append(cuts)
        else:
            self._replace_model(before)
            self.failures += 1
            self.rate_scale *= self.config.backoff
            log.info("round %d: accuracy %.4f below %.4f; undone", self.round, accuracy,
                     self.accuracy_floor)
        self.history.append(record)
        self._check_stop(record)
        self._save()
        if self.on_step is not None:
            self.on_step(record)
        return record

    def run(self) -> PruneResult:
        """Step until the run stops; the result."""
        self._start()
        while not self.done:
            self.step()
        return self.result()

    def result(self) -> PruneResult:
        """The result so far (the model is the last accepted one)."""
        self._start()
        unit = str(self.meter.report(self.model).unit.value)
        return PruneResult(model=self.model, method=self.config.method,
                           history=tuple(self.history),
                           reference_accuracy=self.reference_accuracy,
                           accuracy_floor=self.accuracy_floor,
                           energy_target=self.config.energy_target,
                           stop_reason=self.stop_reason or "not finished", energy_unit=unit,
                           extra={"config": self.config.to_dict(), "cuts": self.cuts})

    # -- resume --------------------------------------------------------------------------

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint payload: the cuts replayed on the dense model."""
        saved = PruneConfig.from_dict(state["config"])
        if saved != self.config:
            raise InputError("the checkpoint was written with another configuration")
        model = copy.deepcopy(self.dense).to(_device(self.model))
        example = self.example.to(_device(model))
        for cuts in state["cuts"]:
            remove_channels(model, example, cuts)
        model.load_state_dict(state["model"])
        self._replace_model(model)
        self.cuts = [dict(c) for c in state["cuts"]]
        self.round = int(state["round"])
        self.rate_scale = float(state["rate_scale"])
        self.failures = int(state["failures"])
        self.stop_reason = str(state["stop_reason"])
        self.history = [StepRecord.from_dict(r) for r in state["history"]]
        ref = state["reference_accuracy"]
        self._given_reference = None if ref is None else float(ref)

    @staticmethod
    def read_checkpoint(folder: str | Path) -> dict[str, Any]:
        """The payload of ``folder``'s checkpoint."""
        return checkpoint.load_checkpoint(Path(folder))

    # -- one round -----------------------------------------------------------------------

    def _prune_round(self, rate: float) -> tuple[Cuts, dict[str, float]]:
        """Remove this round's channels; the cuts and each group's predicted error."""
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
        counts = self._allocate(groups, images, rate)
        reference = copy.deepcopy(self.model).eval()
        cuts, errors = {}, {}
        for index, root in enumerate(g.root for g in groups):
            if not counts.get(root):
                continue
            group = {g.root: g for g in channel_groups(self.model, example)}[root]
            stats = consumer_stats(self.model, group, images, positions=self._positions(),
                                   generator=self._generator(13, index),
                                   reference=reference)
            order = channel_order(self.model, group, stats, limit=counts[root],
                                  ridge=self.config.restore.ridge)
            chosen = list(order.order)
            remove_channels(self.model, example, {root: chosen})
            refit_consumers(self.model, group, stats, chosen, ridge=self.config.restore.ridge)
            cuts[root], errors[root] = chosen, order.errors[-1]
        return cuts, errors

    def _allocate(self, groups: tuple[ChannelGroup, ...], images: Tensor,
                  rate: float) -> dict[str, int]:
        """Channels per group: highest energy saved per output error first (module
        docstring, step 3)."""
        from nnjoules.energy.hardware_io import load_hardware

        report = self.meter.report(self.model)
        hw = load_hardware(self.meter.hardware)
        budget = rate * report.total()
        heap: list[tuple[float, int, int]] = []  # (-energy per error, group, step)
        saved: list[list[float]] = []
        errors: list[tuple[float, ...]] = []
        for gi, group in enumerate(groups):
            limit = _count(group.channels, self.config.max_rate)
            stats = consumer_stats(self.model, group, images, positions=self._positions(),
                                   generator=self._generator(17, gi))
            order = channel_order(self.model, group, stats, limit=limit,
                                  ridge=self.config.restore.ridge)
            energies = [_coupled_energy(report.workload, group, order.order[:j], hw,
                                        self.meter) for j in range(len(order.order) + 1)]
            saved.append([energies[0] - e for e in energies])
            errors.append((0.0, *order.errors))
            if len(order.order):
                heapq.heappush(heap, (_priority(saved[gi], errors[gi], 1), gi, 1))
        taken = [0] * len(groups)
        total = 0.0
        while heap and total < budget:
            _, gi, step = heapq.heappop(heap)
            taken[gi] = step
            total += saved[gi][step] - saved[gi][step - 1]
            if step + 1 < len(saved[gi]):
                heapq.heappush(heap, (_priority(saved[gi], errors[gi], step + 1), gi,
                                      step + 1))
        return {g.root: n for g, n in zip(groups, taken, strict=True) if n}

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

    def _start(self) -> None:
        if self.history:
            return
        began = time.perf_counter()
        accuracy = float(self.evaluate(self.model))
        self.history.append(self._record(accuracy, True, 0.0, time.perf_counter() - began,
                                         {}))
        self._save()

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

    def _check_stop(self, record: StepRecord) -> None:
        target = self.config.energy_target
        if record.accepted and target is not None and \
                record.energy <= target * self.history[0].energy:
            self.stop_reason = "energy target met"
        elif self.failures > self.config.max_failures:
            self.stop_reason = "accuracy budget (no further round met it)"
        elif self.round >= self.config.rounds:
            self.stop_reason = "round limit"

    def _save(self) -> None:
        from nnjoules.prune.loop import _is_main_rank

        if self.checkpoint_dir is None or not _is_main_rank():
            return
        checkpoint.save_checkpoint(self.checkpoint_dir, {
            "config": self.config.to_dict(), "round": self.round,
            "rate_scale": self.rate_scale, "failures": self.failures,
            "stop_reason": self.stop_reason, "history": [r.to_dict() for r in self.history],
            "reference_accuracy": self._given_reference, "cuts": self.cuts,
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "extra": self.extra_state})


def _count(channels: int, rate: float) -> int:
    """Channels ``rate`` of ``channels`` amounts to (rounded), never all of them."""
    return max(0, min(channels - 1, round(rate * channels)))


def _priority(saved: list[float], errors: tuple[float, ...], step: int) -> float:
    """Minus the energy saved per unit of error added by the group's ``step``-th channel."""
    energy = saved[step] - saved[step - 1]
    added = max(errors[step] - errors[step - 1], 0.0) + 1e-9
    return -energy / added


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
                             compression_levels=CompressionLevels(meter.compression_levels))
    return part.total()


def _l1_smallest(model: nn.Module, group: ChannelGroup, count: int) -> list[int]:
    """The ``count`` root filters with the smallest L1 norm (Li et al., 2017)."""
    weight = dict(model.named_modules())[group.root].weight
    assert isinstance(weight, Tensor)
    norms = weight.detach().abs().reshape(weight.shape[0], -1).sum(1)
    return sorted(torch.sort(norms.cpu(), stable=True).indices[:count].tolist())


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def save_structured(path: Path, model: nn.Module) -> None:
    """The pruned model as a plain module file (``torch.save`` of the module), loadable
    without nnjoules by ``torch.load(path, weights_only=False)``."""
    import io

    from nnjoules.io import write_bytes_atomic

    buffer = io.BytesIO()
    torch.save(model, buffer)
    write_bytes_atomic(path, buffer.getvalue())

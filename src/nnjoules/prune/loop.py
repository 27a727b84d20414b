"""The pruning loop: `Pruner`, driven one round at a time by ``step()``.

One round (the poster's loop, energy-aware method):

1. estimate the energy of every prunable layer of the current model; order the layers
   by energy, highest first;
2. for each layer in that order: remove weights by magnitude, restore by output error
   and refit by least squares (`nnjoules.prune.restore`);
3. fine-tune the whole network with the masks held (the caller's ``finetune(model)``);
4. check the accuracy (the caller's ``evaluate(model)``) against the budget.

A round that meets the budget is accepted; one that does not is undone (the model
goes back to the last accepted one) and the rate is multiplied by ``backoff``, a
per-step undo that we add to the poster's loop. The run stops when the energy
target is met, after ``max_failures`` undone rounds, or after ``rounds`` rounds; the
delivered model is the last one that met the budget.

Magnitude pruning (the baseline) runs the same rounds, fine-tuning and checks, with
masks from weight magnitude alone: one global threshold or one per layer.

``Pruner`` works with any training loop: give it ``evaluate(model) -> accuracy`` and
``finetune(model)``; ``pruner.round`` is the round being run, for seeding. Under DDP,
every rank runs the same pruner; restored weights are broadcast from rank 0.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nnjoules.errors import InputError
from nnjoules.prune import checkpoint, importance, masks
from nnjoules.prune.config import PruneConfig
from nnjoules.prune.energy import EnergyMeter, per_module, per_module_nonskipped
from nnjoules.prune.finetune import mix_seed
from nnjoules.prune.restore import (
    collect_tied_stats,
    from_columns,
    magnitude_support,
    restore,
    to_columns,
)
from nnjoules.prune.result import LayerRecord, PruneResult, StepRecord

log = logging.getLogger("nnjoules.prune")

Evaluate = Callable[[nn.Module], float]
Finetune = Callable[[nn.Module], Any]
OnStep = Callable[[StepRecord], Any]


class Pruner:
    """Energy-aware (or magnitude) pruning, one round per ``step()``.

    Args:
        model: the dense (or already masked) model; pruned in place.
        calibration: images the restoration builds X and Y from, a tensor
            ``[N, ...]`` or a dataset of ``(image, label)`` (the first
            ``config.restore.samples`` are drawn from, seeded per round).
        evaluate: ``evaluate(model) -> accuracy`` in [0, 1] on validation data.
        finetune: ``finetune(model)``: train with the masks held (may do nothing).
        config: every parameter (`PruneConfig`).
        hardware: preset name, YAML file or `Hardware` for the energy estimate.
        reference_accuracy: the accuracy the budget is counted from; default: the
            accuracy of ``model`` before pruning.
        checkpoint_dir: write the state there after every step (atomic).
        on_step: called with every `StepRecord` after it is checkpointed.
        extra_state: plain values saved with every checkpoint (e.g. the CLI options).
    """

    def __init__(self, model: nn.Module, calibration: Any, *, evaluate: Evaluate,
                 finetune: Finetune, config: PruneConfig | None = None,
                 hardware: Any = "eyeriss", reference_accuracy: float | None = None,
                 checkpoint_dir: str | Path | None = None, on_step: OnStep | None = None,
                 extra_state: dict[str, Any] | None = None) -> None:
        self.config = config or PruneConfig()
        self.model = model
        # one entry per distinct weight: tied layers are pruned once, counted once
        self.groups = masks.tied_groups(model)
        self.names = list(self.groups)
        masks.check_finite(model)  # before any least-squares fit sees a NaN
        masks.ensure_masks(model)
        self.evaluate, self.finetune, self.on_step = evaluate, finetune, on_step
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.extra_state = dict(extra_state or {})
        fit = max(self.config.restore.samples, self.config.density_images)
        probing = self.config.method == "energy-aware" and self.config.allocation == "probe"
        pool = _images(calibration, fit + (self.config.probe_images if probing else 0))
        self.calibration = pool[:fit]
        # the probe's images are not among those the restoration fits (unless too few)
        self.probe = pool[fit:] if len(pool) > fit else pool
        self.layer_rates = dict.fromkeys(self.names, self.config.rate)
        self.meter = EnergyMeter(pool[: self.config.density_images], hardware=hardware,
                                 batch=self.config.energy_batch, bits=self.config.bits,
                                 compression=self.config.compression,
                                 gating=self.config.gating,
                                 compression_levels=self.config.compression_levels)
        self.round = 0
        self.rate_scale = 1.0
        self.failures = 0
        self.stop_reason = ""
        self.history: list[StepRecord] = []
        self._given_reference = reference_accuracy

    # -- the public loop -------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether the run has stopped (see ``stop_reason``)."""
        return bool(self.stop_reason)

    @property
    def reference_accuracy(self) -> float:
        """The accuracy the budget counts from."""
        self._start()
        if self._given_reference is not None:
            return self._given_reference
        return self.history[0].accuracy

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
        before = masks.masked_state_dict(self.model)
        rates_before = dict(self.layer_rates)
        rate = self.config.rate * self.rate_scale
        errors = self._prune_round(rate)
        self.finetune(self.model)
        masks.check_finite(self.model, f" after the fine-tuning of round {self.round}")
        accuracy = float(self.evaluate(self.model))
        accepted = accuracy >= self.accuracy_floor
        record = self._record(accuracy, accepted, rate, time.perf_counter() - began, errors)
        if not accepted:
            masks.load_masked_state(self.model, before)
            self.layer_rates = rates_before
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
        unit = str(getattr(self.meter.report(self.model).unit, "value", "normalized"))
        return PruneResult(model=self.model, method=self.config.method,
                           history=tuple(self.history),
                           reference_accuracy=self.reference_accuracy,
                           accuracy_floor=self.accuracy_floor,
                           energy_target=self.config.energy_target,
                           stop_reason=self.stop_reason or "not finished", energy_unit=unit,
                           extra={"config": self.config.to_dict()})

    # -- resume ------------------------------------------------------------------------

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint payload (see `Pruner.resume`)."""
        saved = PruneConfig.from_dict(state["config"])
        if saved != self.config:
            raise InputError("the checkpoint was written with another configuration")
        masks.load_masked_state(self.model, state["model"])
        self.round = int(state["round"])
        self.rate_scale = float(state["rate_scale"])
        self.failures = int(state["failures"])
        self.stop_reason = str(state["stop_reason"])
        self.history = [StepRecord.from_dict(r) for r in state["history"]]
        self.layer_rates.update(state.get("layer_rates", {}))
        ref = state["reference_accuracy"]
        self._given_reference = None if ref is None else float(ref)

    @staticmethod
    def read_checkpoint(folder: str | Path) -> dict[str, Any]:
        """The payload of ``folder``'s checkpoint (config, extra state, model ...)."""
        return checkpoint.load_checkpoint(Path(folder))

    # -- internals ---------------------------------------------------------------------

    def _start(self) -> None:
        """Record round 0 (the model before pruning) once."""
        if self.history:
            return
        began = time.perf_counter()
        accuracy = float(self.evaluate(self.model))
        self.history.append(self._record(accuracy, True, 0.0, 0.0, {}))
        self.history[0] = _with_seconds(self.history[0], time.perf_counter() - began)
        self._save()

    def _record(self, accuracy: float, accepted: bool, rate: float, seconds: float,
                errors: dict[str, float]) -> StepRecord:
        report = self.meter.report(self.model)
        energy = per_module(report, self.names, self.groups)
        nonskipped = per_module_nonskipped(report, self.names, self.groups)
        counts = masks.nonzero_counts(self.model)
        layers = tuple(LayerRecord(name=n, weights=counts[n][1], nonzero_weights=counts[n][0],
                                   nonskipped_macs=nonskipped[n], energy=energy[n],
                                   output_error=errors.get(n), tied=tuple(self.groups[n][1:]))
                       for n in self.names)
        return StepRecord(round=self.round, accepted=accepted, accuracy=accuracy,
                          energy=report.total(),
                          nonzero_weights=sum(c[0] for c in counts.values()),
                          weights=sum(c[1] for c in counts.values()),
                          nonskipped_macs=report.nonskipped_macs(), macs=report.macs(),
                          rate=rate, seconds=seconds, layers=layers)

    def _check_stop(self, record: StepRecord) -> None:
        target = self.config.energy_target
        dense = self.history[0].energy
        if record.accepted and target is not None and record.energy <= target * dense:
            self.stop_reason = "energy target met"
        elif self.failures > self.config.max_failures:
            self.stop_reason = "accuracy budget (no further round met it)"
        elif self.round >= self.config.rounds:
            self.stop_reason = "round limit"

    def _save(self) -> None:
        if self.checkpoint_dir is None or not _is_main_rank():
            return
        checkpoint.save_checkpoint(self.checkpoint_dir, {
            "config": self.config.to_dict(), "round": self.round,
            "rate_scale": self.rate_scale, "failures": self.failures,
            "layer_rates": self.layer_rates,
            "stop_reason": self.stop_reason, "history": [r.to_dict() for r in self.history],
            "reference_accuracy": self._given_reference,
            "model": masks.masked_state_dict(self.model), "extra": self.extra_state})

    def _energy_order(self) -> tuple[list[str], dict[str, float]]:
        """The layers by estimated energy, highest first, and per layer the energy that
        pruning it can still remove (its energy minus its energy with every weight zero)."""
        report = self.meter.report(self.model)
        energy = per_module(report, self.names, self.groups)
        floor_energy = per_module(self.meter.floor_report(self.model, report), self.names,
                                  self.groups)
        removable = {n: max(0.0, energy[n] - floor_energy[n]) for n in self.names}
        order = sorted(self.names, key=lambda n: (-energy[n], self.names.index(n)))
        return order, removable

    def _keep_counts(self, rate: float,
                     images: Tensor | None = None) -> tuple[list[str], dict[str, int]]:
        """The order of layers and how many non-zeros each keeps this round."""
        layers = masks.distinct_layers(self.model)
        counts = masks.nonzero_counts(self.model)
        floors = {n: math.ceil(self.config.min_density * counts[n][1]) for n in self.names}
        if self.config.method == "magnitude":
            if self.config.ranking == "global":
                return self.names, importance.global_magnitude_keep(layers, counts, floors,
                                                                    rate)
            return self.names, importance.layer_keep(counts, floors, rate)
        order, removable = self._energy_order()
        if self.config.allocation == "energy":
            return order, importance.energy_rate_keep(counts, floors, rate, removable,
                                                      self.config.energy_exponent)
        if images is None:
            images = self.calibration[: self.config.restore.samples]
        images = images.to(_device(self.model))
        if self.config.saliency == "fisher":
            saliency = importance.fisher_saliency(self.model, layers, images)
        else:
            power = importance.input_power(self.model, self.names, images,
                                           chunk=self.config.restore.chunk)
            saliency = importance.output_saliency(layers, power)
        keep = importance.energy_aware_keep(layers, counts, floors, rate, removable, saliency,
                                            self.config.energy_exponent)
        return order, keep

    def _prune_round(self, rate: float) -> dict[str, float]:
        layers = masks.distinct_layers(self.model)
        if self.config.method == "magnitude":
            order, keep = self._keep_counts(rate)
            for name in order:
                module = layers[name]
                a0 = to_columns(module, masks.weight_of(module))
                cand = to_columns(module, masks.mask_of(module)) > 0
                support = magnitude_support(a0, cand, keep[name])
                weight = masks.weight_of(module)
                masks.set_weight(module, weight, from_columns(module, support.double(), weight))
            return {}
        reference = masks.clone(self.model).eval()
        cfg = self.config.restore
        generator = torch.Generator().manual_seed(mix_seed(self.config.seed, 7, self.round))
        pick = torch.randperm(len(self.calibration), generator=generator)[: cfg.samples]
        images = self.calibration[pick.sort().values]
        if self.config.allocation == "probe":
            return self._probe_round(reference, images)
        order, keep = self._keep_counts(rate, images)
        errors: dict[str, float] = {}
        for index, name in enumerate(order):
            module = layers[name]
            weight = masks.weight_of(module)
            a0 = to_columns(module, weight)
            cand = to_columns(module, masks.mask_of(module)) > 0
            if keep[name] >= int(cand.sum()):
                continue
            gen = torch.Generator().manual_seed(mix_seed(self.config.seed, 11, self.round, index))
            stats = collect_tied_stats(self.model, reference, self.groups[name],
                                       images.to(_device(module)), positions=cfg.positions,
                                       generator=gen, chunk=cfg.chunk)
            a, support = restore(a0.cpu(), cand.cpu(), keep[name], _cpu(stats), cfg)
            errors[name] = _cpu(stats).relative_error(a)
            masks.set_weight(module, from_columns(module, a, weight),
                             from_columns(module, support.double(), weight))
            _broadcast(module)
        return errors

    def _probe_round(self, reference: nn.Module, images: Tensor) -> dict[str, float]:
        """``allocation="probe"``: layers in energy order (highest first), each pruned at
        its own rate as far as the probe allows.

        A layer's attempt removes ``layer_rates[name]`` of its non-zeros (restoration and
        refit as in the other rules). It stands if the share of probe images whose top-1
        class differs from the model at the start of the round (every layer pruned so
        far in the round counted) is at most ``probe_drop`` (times the round backoff)
        times the share of removable energy held by the layers visited so far: the
        allowance is given out in energy order and what a layer leaves passes on.
        Otherwise it is undone and retried at ``backoff`` times the rate, up to
        ``probe_tries`` attempts; a first attempt that stands raises the layer's rate
        by ``1 / backoff`` (up to ``max_rate``).
        """
        cfg = self.config
        layers = masks.distinct_layers(self.model)
        order, removable = self._energy_order()
        total = sum(removable.values()) or 1.0
        probe = self.probe.to(_device(self.model))
        target = _predictions(reference, probe, cfg.restore.chunk)
        allowed = 0.0
        errors: dict[str, float] = {}
        for index, name in enumerate(order):
            allowed += cfg.probe_drop * self.rate_scale * removable[name] / total
            module = layers[name]
            weight, mask = masks.weight_of(module), masks.mask_of(module).clone()
            a0 = to_columns(module, weight).cpu()
            cand = to_columns(module, mask).cpu() > 0
            nonzero = int(cand.sum())
            floor = math.ceil(cfg.min_density * weight.numel())
            stats = None
            for attempt in range(cfg.probe_tries):
                rate = self.layer_rates[name]
                keep = max(floor, round(nonzero * (1 - rate)))
                if keep >= nonzero:
                    break
                if stats is None:
                    gen = torch.Generator().manual_seed(
                        mix_seed(cfg.seed, 11, self.round, index))
                    stats = _cpu(collect_tied_stats(self.model, reference, self.groups[name],
                                                    images.to(_device(module)),
                                                    positions=cfg.restore.positions,
                                                    generator=gen, chunk=cfg.restore.chunk))
                a, support = restore(a0, cand, keep, stats, cfg.restore)
                masks.set_weight(module, from_columns(module, a, weight),
                                 from_columns(module, support.double(), weight))
                _broadcast(module)
                changed = float((_predictions(self.model, probe, cfg.restore.chunk)
                                 != target).double().mean())
                if changed <= allowed:
                    errors[name] = stats.relative_error(a)
                    if attempt == 0:
                        self.layer_rates[name] = min(cfg.max_rate, rate / cfg.backoff)
                    break
                masks.set_weight(module, weight, mask)  # undo this attempt
                self.layer_rates[name] = rate * cfg.backoff
        return errors


@torch.no_grad()
def _predictions(model: nn.Module, images: Tensor, chunk: int) -> Tensor:
    """Top-1 classes of ``model`` on ``images`` (eval mode)."""
    training = model.training
    model.eval()
    try:
        return torch.cat([model(images[i:i + chunk]).argmax(1)
                          for i in range(0, len(images), chunk)])
    finally:
        model.train(training)


def _images(data: Any, limit: int) -> Tensor:
    """The first ``limit`` inputs of a tensor, a dataset of (input, label), or an iterable
    of batches (e.g. a ``DataLoader``) of inputs or (inputs, labels)."""
    if isinstance(data, Tensor):
        return data[:limit]
    if not hasattr(data, "__getitem__"):
        parts, count = [], 0
        for batch in data:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            parts.append(x)
            count += len(x)
            if count >= limit:
                break
        if not parts:
            raise InputError("calibration data is empty")
        return torch.cat(parts)[:limit]
    if len(data) == 0:
        raise InputError("calibration data is empty")
    idx = torch.arange(min(limit, len(data)))
    if hasattr(data, "batch"):
        return data.batch(idx)[0]
    return torch.stack([data[int(i)][0] for i in idx])


def _cpu(stats: Any) -> Any:
    from dataclasses import replace

    return replace(stats, gram=stats.gram.cpu(), cross=stats.cross.cpu(), y_sq=stats.y_sq.cpu())


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _with_seconds(record: StepRecord, seconds: float) -> StepRecord:
    from dataclasses import replace

    return replace(record, seconds=seconds)


def _is_main_rank() -> bool:
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _broadcast(module: nn.Module) -> None:
    """Under DDP, make every rank hold rank 0's restored weights and mask."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for tensor in (module.weight_orig, module.weight_mask):
        assert isinstance(tensor, Tensor)
        dist.broadcast(tensor.data, src=0)
    masks.refresh(module)

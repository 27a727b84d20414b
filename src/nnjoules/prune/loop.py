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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nnjoules.errors import InputError
from nnjoules.prune import importance, masks
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
from nnjoules.prune.result import LayerRecord, StepRecord
from nnjoules.prune.rounds import Evaluate, Finetune, OnStep, RoundLoop

log = logging.getLogger("nnjoules.prune")



class Pruner(RoundLoop):
    """Energy-aware (or magnitude) pruning, one round per ``step()`` (`RoundLoop`).

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
        self._init_loop(config or PruneConfig(), evaluate=evaluate, finetune=finetune,
                        reference_accuracy=reference_accuracy, checkpoint_dir=checkpoint_dir,
                        on_step=on_step, extra_state=extra_state)
        self.model = model
        # one entry per distinct weight: tied layers are pruned once, counted once
        self.groups = masks.tied_groups(model)
        self.names = list(self.groups)
        masks.check_finite(model)  # before any least-squares fit sees a NaN
        masks.ensure_masks(model)
        fit = max(self.config.restore.samples, self.config.density_images)
        probing = self.config.method == "energy-aware" and self.config.allocation == "probe"
        pool = _images(calibration, fit + (self.config.probe_images if probing else 0))
        self.calibration = pool[:fit]
        # the probe's images are not among those the restoration fits (unless too few)
        self.probe = pool[fit:] if len(pool) > fit else pool
        self.layer_rates = dict.fromkeys(self.names, self.config.rate)
        self.meter = EnergyMeter.of(self.config, pool, hardware)

    # -- what `RoundLoop` asks of a weight-pruning loop ---------------------------------

    def _snapshot(self) -> tuple[dict[str, Tensor], dict[str, float]]:
        return masks.masked_state_dict(self.model), dict(self.layer_rates)

    def _restore(self, snapshot: tuple[dict[str, Tensor], dict[str, float]]) -> None:
        state, rates = snapshot
        masks.load_masked_state(self.model, state)
        self.layer_rates = rates

    def _after_finetune(self) -> None:
        masks.check_finite(self.model, f" after the fine-tuning of round {self.round}")

    def _model_state(self) -> dict[str, Any]:
        return {"layer_rates": self.layer_rates,
                "model": masks.masked_state_dict(self.model)}

    def _load_model_state(self, state: dict[str, Any]) -> None:
        masks.load_masked_state(self.model, state["model"])
        self.layer_rates.update(state.get("layer_rates", {}))

    # -- internals ---------------------------------------------------------------------

    def _record(self, accuracy: float, accepted: bool, rate: float, seconds: float,
                errors: Mapping[str, float]) -> StepRecord:
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


def _broadcast(module: nn.Module) -> None:
    """Under DDP, make every rank hold rank 0's restored weights and mask."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    for tensor in (module.weight_orig, module.weight_mask):
        assert isinstance(tensor, Tensor)
        dist.broadcast(tensor.data, src=0)
    masks.refresh(module)

"""What every pruning loop shares: rounds, the accuracy budget, undo, stop rules, resume.

`RoundLoop.step` runs one round: prune (the subclass's `_prune_round`), fine-tune (the
caller's ``finetune(model)``), evaluate (``evaluate(model)``), then accept the round if
the accuracy meets the budget, or undo it and multiply the rate by ``backoff``. The run
stops when the energy target is met, after ``max_failures`` undone rounds, or after
``rounds`` rounds; the delivered model is the last one that met the budget. After every
step the state is checkpointed (atomically) when a folder is given.

Subclasses say how a round prunes, how the model is snapshotted and restored, how a
step is recorded and what else their checkpoint holds: `nnjoules.prune.loop.Pruner`
(weights, masks) and `nnjoules.prune.channel_loop.ChannelPruner` (whole channels).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from nnjoules.errors import InputError
from nnjoules.prune import checkpoint
from nnjoules.prune.config import PruneConfig
from nnjoules.prune.energy import EnergyMeter
from nnjoules.prune.result import PruneResult, StepRecord

log = logging.getLogger("nnjoules.prune")

Evaluate = Callable[[nn.Module], float]
Finetune = Callable[[nn.Module], Any]
OnStep = Callable[[StepRecord], Any]


class RoundLoop:
    """The round structure of a pruning run; see the module docstring.

    Subclasses set ``model``, ``meter`` and call `_init_loop`, and implement
    `_prune_round`, `_snapshot`, `_restore`, `_record` and `_model_state` /
    `_load_model_state`.
    """

    model: nn.Module
    meter: EnergyMeter

    def _init_loop(self, config: PruneConfig, *, evaluate: Evaluate, finetune: Finetune,
                   reference_accuracy: float | None, checkpoint_dir: str | Path | None,
                   on_step: OnStep | None, extra_state: dict[str, Any] | None) -> None:
        self.config = config
        self.evaluate, self.finetune, self.on_step = evaluate, finetune, on_step
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.extra_state = dict(extra_state or {})
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
        before = self._snapshot()
        rate = self.config.rate * self.rate_scale
        errors = self._prune_round(rate)
        self.finetune(self.model)
        self._after_finetune()
        accuracy = float(self.evaluate(self.model))
        accepted = accuracy >= self.accuracy_floor and self._round_changed()
        record = self._record(accuracy, accepted, rate, time.perf_counter() - began, errors)
        if accepted:
            self._accept()
        else:
            self._restore(before)
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
                           extra={"config": self.config.to_dict(), **self._result_extra()})

    # -- resume ------------------------------------------------------------------------

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint payload (see `read_checkpoint`).

        Raises:
            InputError: the checkpoint was written with another granularity or
                another configuration.
        """
        check_granularity(state, self.config.granularity)
        saved = PruneConfig.from_dict(state["config"])
        if saved != self.config:
            raise InputError("the checkpoint was written with another configuration")
        self._load_model_state(state)
        self.round = int(state["round"])
        self.rate_scale = float(state["rate_scale"])
        self.failures = int(state["failures"])
        self.stop_reason = str(state["stop_reason"])
        self.history = [StepRecord.from_dict(r) for r in state["history"]]
        ref = state["reference_accuracy"]
        self._given_reference = None if ref is None else float(ref)

    @staticmethod
    def read_checkpoint(folder: str | Path) -> dict[str, Any]:
        """The payload of ``folder``'s checkpoint (config, extra state, model ...)."""
        return checkpoint.load_checkpoint(Path(folder))

    # -- what subclasses provide -------------------------------------------------------

    def _prune_round(self, rate: float) -> dict[str, float]:
        """Prune the model in place; per layer (or group), its output error."""
        raise NotImplementedError

    def _snapshot(self) -> Any:
        """What `_restore` needs to undo the round."""
        raise NotImplementedError

    def _restore(self, snapshot: Any) -> None:
        raise NotImplementedError

    def _record(self, accuracy: float, accepted: bool, rate: float, seconds: float,
                errors: Mapping[str, float]) -> StepRecord:
        raise NotImplementedError

    def _model_state(self) -> dict[str, Any]:
        """The checkpoint entries that hold the model (and the subclass's own state)."""
        raise NotImplementedError

    def _load_model_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _after_finetune(self) -> None:
        """A check after fine-tuning (default: none)."""

    def _round_changed(self) -> bool:
        """Whether the round removed anything (default: assumed)."""
        return True

    def _accept(self) -> None:
        """Keep what the accepted round needs for resume (default: nothing)."""

    def _result_extra(self) -> dict[str, Any]:
        return {}

    # -- internals ---------------------------------------------------------------------

    def _start(self) -> None:
        """Record round 0 (the model before pruning) once."""
        if self.history:
            return
        began = time.perf_counter()
        accuracy = float(self.evaluate(self.model))
        self.history.append(self._record(accuracy, True, 0.0, time.perf_counter() - began,
                                         {}))
        self._save()

    def _check_stop(self, record: StepRecord) -> None:
        target = self.config.energy_target
        dense = self.history[0].energy
        if record.accepted and target is not None and record.energy <= target * dense:
            self.stop_reason = "energy target met"
        elif self.failures > self.config.max_failures:
            self.stop_reason = "accuracy budget (no further round met it)"
        elif self.round >= self.config.rounds:
            self.stop_reason = "round limit"

    def state(self) -> dict[str, Any]:
        """The checkpoint payload: what `load_state` continues from."""
        return {"config": self.config.to_dict(), "round": self.round,
                "rate_scale": self.rate_scale, "failures": self.failures,
                "stop_reason": self.stop_reason, "history": [r.to_dict() for r in self.history],
                "reference_accuracy": self._given_reference, **self._model_state(),
                "extra": self.extra_state}

    def _save(self) -> None:
        if self.checkpoint_dir is None or not is_main_rank():
            return
        checkpoint.save_checkpoint(self.checkpoint_dir, self.state())


def is_main_rank() -> bool:
    """Rank 0 under DDP, or not distributed."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def check_granularity(state: dict[str, Any], granularity: str) -> None:
    """Refuse a checkpoint written by another pruning granularity, naming both.

    Raises:
        InputError: ``the checkpoint was written by --granularity channel pruning, not
            --granularity both``.
    """
    config = state.get("config")
    saved = config.get("granularity", "weight") if isinstance(config, dict) else None
    if saved != granularity:
        raise InputError(f"the checkpoint was written by --granularity {saved} pruning, not "
                         f"--granularity {granularity}; resume it with its own granularity "
                         "or start a new run")

"""Channels first, then weights in what is left: `BothPruner` (``granularity="both"``).

**The split rule (ours).** The run has one accuracy floor (the reference minus
``accuracy_drop``), for both stages, and ``rounds`` rounds in all. The *channel stage*
(`nnjoules.prune.channel_loop.ChannelPruner`) runs first, for at most
``round(channel_share * rounds)`` rounds (at least one); it stops earlier by its own rules
(``max_failures`` undone rounds: the budget is used for channels, or the energy target,
which ends the run). The *weight stage* (`nnjoules.prune.loop.Pruner`, same method,
allocation and restoration as ``granularity="weight"``) then prunes single weights of the
shrunk model for the remaining rounds, with its own backoff and failure count.
Channels go first because only they remove feature-map traffic, and a channel cut after
weight pruning would throw away the weights' restoration. The weight stage starts near
the floor and still makes progress: restoration and fine-tuning cost little accuracy per
weight. (Holding half the budget back for the weight stage was measured and is worse:
LeNet-5, batch 16, one seed: 1.78x against 2.25x with one floor.)

Rounds are numbered through both stages (the seeds of fine-tuning and sampling follow
the round), the history is one list from the dense model on, and the result records
both stages (``extra["stages"]``) and the channel cuts (``extra["cuts"]``), from which a
model file rebuilds the shrunk architecture before loading the masked weights.

The checkpoint holds both stages: the channel stage's state as it ended (cuts and
weights) and the weight stage's (masks and weights); resume replays the cuts on the
dense model, then loads the weight stage, so a killed run continues to the numbers of
an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from nnjoules.errors import InputError
from nnjoules.prune import checkpoint
from nnjoules.prune.channel_loop import ChannelPruner
from nnjoules.prune.config import PruneConfig
from nnjoules.prune.loop import Pruner
from nnjoules.prune.result import PruneResult, StepRecord
from nnjoules.prune.rounds import Evaluate, Finetune, OnStep, check_granularity, is_main_rank


def stage_configs(config: PruneConfig) -> tuple[PruneConfig, PruneConfig]:
    """(channel stage, weight stage) configurations of a ``granularity="both"`` run.

    >>> ch, w = stage_configs(PruneConfig(granularity="both", rounds=10,
    ...                                   accuracy_drop=0.01, channel_share=0.5))
    >>> (ch.granularity, ch.rounds, ch.accuracy_drop, w.granularity, w.rounds)
    ('channel', 5, 0.01, 'weight', 10)
    """
    channel = replace(config, granularity="channel",
                      rounds=max(1, round(config.channel_share * config.rounds)))
    return channel, replace(config, granularity="weight")


class BothPruner:
    """Channel pruning, then weight pruning of the shrunk model, one round per ``step()``.

    Args and the interface (``step``, ``run``, ``result``, ``done``, ``round``,
    ``load_state``) are those of `nnjoules.prune.rounds.RoundLoop`; ``config`` has
    ``granularity="both"``.

    Raises:
        InputError: as `ChannelPruner` (masks, grouped convolutions, no prunable
            channel), or a configuration of another granularity.
    """

    def __init__(self, model: nn.Module, calibration: Any, *, evaluate: Evaluate,
                 finetune: Finetune, config: PruneConfig,
                 hardware: Any = "eyeriss", reference_accuracy: float | None = None,
                 checkpoint_dir: str | Path | None = None, on_step: OnStep | None = None,
                 extra_state: dict[str, Any] | None = None) -> None:
        if config.granularity != "both":
            raise InputError(f"BothPruner needs granularity 'both', got "
                             f"{config.granularity!r}")
        self.config = config
        self.model = model
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.on_step = on_step
        self.extra_state = dict(extra_state or {})
        self._calibration, self._hardware = calibration, hardware
        self._evaluate, self._finetune = evaluate, finetune
        channel_cfg, self._weight_cfg = stage_configs(config)
        self.channel = ChannelPruner(model, calibration, evaluate=evaluate,
                                     finetune=finetune, config=channel_cfg,
                                     hardware=hardware, reference_accuracy=reference_accuracy)
        self.meter = self.channel.meter
        self.weight: Pruner | None = None
        self._channel_state: dict[str, Any] | None = None  # the channel stage as it ended

    # -- the loop's interface ------------------------------------------------------------

    @property
    def active(self) -> ChannelPruner | Pruner:
        """The stage running now."""
        return self.weight if self.weight is not None else self.channel

    @property
    def round(self) -> int:
        """The round being run, counted through both stages."""
        return self.active.round

    @property
    def rate_scale(self) -> float:
        """The active stage's backoff factor."""
        return self.active.rate_scale

    @property
    def done(self) -> bool:
        """Whether the run has stopped: the weight stage did, or the channel stage did
        and left nothing to it (energy target met, or every round used)."""
        return self.active.done

    @property
    def stop_reason(self) -> str:
        """Why the run stopped ("" while it runs)."""
        return self.active.stop_reason

    @property
    def history(self) -> list[StepRecord]:
        """Every step from the dense model on, both stages."""
        return self.active.history

    def step(self) -> StepRecord:
        """Run one round of the active stage; the weight stage starts when the channel
        stage stops with rounds left and the energy target not met."""
        record = self.active.step()
        if self.weight is None and self.channel.done:
            self._channel_state = self.channel.state()
            if (self.channel.stop_reason != "energy target met"
                    and self.channel.round < self.config.rounds):
                self._start_weight()
        self._save()
        if self.on_step is not None:
            self.on_step(record)
        return record

    def run(self) -> PruneResult:
        """Step until the run stops; the result."""
        while not self.done:
            self.step()
        return self.result()

    def result(self) -> PruneResult:
        """The result so far: the last accepted model of either stage, with the cuts and
        a record of each stage."""
        result = self.active.result()
        extra = {**result.extra, "config": self.config.to_dict(), "cuts": self.channel.cuts,
                 "allocations": self.channel.choices,
                 "stages": self._stages()}
        return replace(result, extra=extra)

    # -- resume ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The checkpoint payload: the configuration and both stages."""
        channel = self._channel_state or self.channel.state()
        return {"config": self.config.to_dict(),
                "stage": "channel" if self.weight is None else "weight",
                "channel": channel,
                "weight": None if self.weight is None else self.weight.state(),
                "extra": self.extra_state}

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint payload (`read_checkpoint`).

        Raises:
            InputError: the checkpoint was written by another granularity or with
                another configuration.
        """
        check_granularity(state, "both")
        if PruneConfig.from_dict(state["config"]) != self.config:
            raise InputError("the checkpoint was written with another configuration")
        self.channel.load_state(state["channel"])
        if state.get("stage") == "weight":
            self._channel_state = state["channel"]
            self._start_weight()
            assert self.weight is not None
            self.weight.load_state(state["weight"])

    @staticmethod
    def read_checkpoint(folder: str | Path) -> dict[str, Any]:
        """The payload of ``folder``'s checkpoint."""
        return checkpoint.load_checkpoint(Path(folder))

    # -- internals -------------------------------------------------------------------------

    def _start_weight(self) -> None:
        """The weight stage on the shrunk model: the rounds continue, the history and the
        reference (hence the floor) are the channel stage's."""
        weight = Pruner(self.model, self._calibration, evaluate=self._evaluate,
                        finetune=self._finetune, config=self._weight_cfg,
                        hardware=self._hardware,
                        reference_accuracy=self.channel.reference_accuracy)
        weight.round = self.channel.round
        weight.history = list(self.channel.history)
        self.weight = weight

    def _stages(self) -> list[dict[str, Any]]:
        dense = self.channel.history[0].energy if self.channel.history else 0.0
        stages = [_stage("channel", self.channel, 1, dense)]
        if self.weight is not None:
            stages.append(_stage("weight", self.weight, self.channel.round + 1, dense))
        return stages

    def _save(self) -> None:
        if self.checkpoint_dir is None or not is_main_rank():
            return
        checkpoint.save_checkpoint(self.checkpoint_dir, self.state())


def _stage(name: str, loop: ChannelPruner | Pruner, first: int,
           dense: float) -> dict[str, Any]:
    """What one stage did: its rounds, stop reason, floor and where it left the model."""
    own = [r for r in loop.history if r.round >= first]
    last = [r for r in loop.history if r.accepted][-1]  # the model the stage left
    return {"granularity": name, "first_round": first, "last_round": loop.round,
            "rounds_run": len(own), "rounds_accepted": sum(r.accepted for r in own),
            "stop_reason": loop.stop_reason or "not finished",
            "accuracy_floor": loop.accuracy_floor, "energy": last.energy,
            "energy_reduction": dense / last.energy if last.energy else None}

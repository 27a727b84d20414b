"""`PruneConfig`: every choice of the pruning loop, validated once.

Defaults are our choices, measured on Fashion-MNIST (docs/pruning.md); none is
attributed to the paper, whose exact values are not known.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from nnjoules.errors import InputError

if TYPE_CHECKING:
    from nnjoules.energy.workload import Precision


@dataclass(frozen=True)
class RestoreConfig:
    """Restoration parameters; every default is our choice (see `nnjoules.prune.restore`)."""

    samples: int = 1024
    positions: int = 16
    error_share: float = 0.5
    restore_steps: int = 4
    ridge: float = 1e-4
    refit: bool = True
    chunk: int = 256  # images per forward pass while collecting statistics

    def __post_init__(self) -> None:
        if self.samples < 1 or self.positions < 1 or self.restore_steps < 1 or self.chunk < 1:
            bad = next(n for n in ("samples", "positions", "restore_steps", "chunk")
                       if getattr(self, n) < 1)
            raise InputError(f"restore {bad} must be a positive integer, got {getattr(self, bad)}")
        if not 0 <= self.error_share <= 1:
            raise InputError(f"error_share must lie in [0, 1], got {self.error_share}")
        if not (self.ridge > 0 and math.isfinite(self.ridge)):
            raise InputError(f"ridge must be a positive number, got {self.ridge}")


@dataclass(frozen=True)
class TrainConfig:
    """SGD with momentum; ``schedule`` ``"constant"`` or ``"cosine"`` (to zero at the end).

    Defaults are those of our fine-tuning between pruning rounds (our choice, measured
    on Fashion-MNIST; the paper's values are not known).
    """

    epochs: float = 0.5
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    schedule: str = "constant"

    def __post_init__(self) -> None:
        if not (self.epochs >= 0 and math.isfinite(self.epochs)):
            raise InputError(f"epochs must be a non-negative number, got {self.epochs}")
        if not self.lr > 0:
            raise InputError(f"learning rate must be positive, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise InputError(f"momentum must lie in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise InputError(f"weight decay must be non-negative, got {self.weight_decay}")
        if self.batch_size < 1:
            raise InputError(f"batch size must be positive, got {self.batch_size}")
        if self.schedule not in ("constant", "cosine"):
            raise InputError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")


METHODS = ("energy-aware", "magnitude")
GRANULARITIES = ("weight", "channel", "both")
RANKINGS = ("layer", "global")
SALIENCIES = ("output", "fisher")
ALLOCATIONS = ("energy", "saliency", "probe")


@dataclass(frozen=True)
class PruneConfig:
    """Parameters of a pruning run.

    Attributes:
        method: ``"energy-aware"`` (energy-ordered layers, output-error restoration and
            least-squares refit) or ``"magnitude"`` (Han et al., iterative).
        granularity: ``"weight"`` (masks on single weights) or ``"channel"`` (whole
            output channels removed, the model shrinks: `nnjoules.prune.channel_loop`;
            with ``"magnitude"``, L1-norm filter pruning, Li et al. 2017) or ``"both"``
            (channels first, then weights in what is left: `nnjoules.prune.both_loop`).
        channel_share: ``granularity="both"`` only: the share of the rounds the channel
            stage may use (it runs first, until its own stop rules end it); the weight
            stage then runs the remaining rounds; one accuracy floor holds for both
            (`nnjoules.prune.both_loop`).
        accuracy_drop: allowed drop of validation top-1 from the reference, as a
            fraction (0.01 = one percentage point).
        energy_target: stop once energy <= this fraction of the dense energy, in (0, 1].
        rounds: most rounds (each: prune every layer, fine-tune, check accuracy).
        rate: how much each round removes (times the backoff): magnitude: this
            fraction of the remaining non-zero weights (of each layer, or of all);
            energy-aware: this fraction of the remaining non-zeros of the layer with the
            most removable energy (``allocation="energy"``), or this fraction of the
            removable energy (``allocation="saliency"``), or every layer's first rate
            (``allocation="probe"``); see `nnjoules.prune.importance`.
        allocation: energy-aware only: how the round's removal is shared between layers,
            ``"energy"`` (rates weighted by removable energy), ``"saliency"`` (per-weight
            output-error or Fisher saliency per unit of energy) or ``"probe"`` (each
            layer, in energy order, as far as a prediction check allows; `Pruner`).
        energy_exponent: energy-aware only: the power of the energy weighting; 0
            ignores energy.
        probe_drop: ``allocation="probe"`` only: the fraction of probe images whose
            top-1 class may change (against the model at the start of the round) while
            the round prunes layer after layer, before fine-tuning; times the backoff
            after an undone round.
        probe_images: ``allocation="probe"`` only: training images held out from the
            restoration samples for that check (labels are not needed).
        probe_tries: ``allocation="probe"`` only: attempts per layer and round, the
            layer's rate multiplied by ``backoff`` after each failed one.
        max_rate: ``allocation="probe"`` only: the largest per-layer rate (a layer
            whose first attempt passes has its rate divided by ``backoff``, up to this).
        saliency: ``allocation="saliency"`` only: ``"output"`` (the layer's relative
            output error) or ``"fisher"`` (the loss change, diagonal Fisher).
        ranking: magnitude only: ``"global"`` (one threshold over all layers, removing
            ``rate`` of all remaining weights) or ``"layer"`` (``rate`` of each layer's).
        backoff: a round that breaks the accuracy budget is undone and the rate
            multiplied by this (our addition; the poster's loop stops instead).
        max_failures: stop after this many undone rounds.
        min_density: no layer is pruned below this fraction of its weights.
        energy_batch: batch size N at which energy is estimated (16: weights are
            reused across a batch, as an accelerator runs; at 1 the DRAM traffic of FC
            weights dominates small CNNs).
        density_images: images on which activation densities are measured.
        bits: bit-width for the energy estimate (None: 16): one for every operand, or
            (weights, ifmaps, ofmaps); a list is stored as a tuple.
        compression: DRAM compression of zeros for the energy estimate.
        gating: which zeros skip a MAC in the energy estimate (`nnjoules.energy.cost.Gating`).
        compression_levels: which moves carry compressed data in the energy estimate
            (`nnjoules.energy.cost.CompressionLevels`).
        dataflow: the dataflow of the energy estimate (a name or ISCA 2016
            abbreviation, stored as its name; `nnjoules.energy.dataflows`): it orders
            and allocates the pruning and measures the reductions reported.
        seed: every random choice derives from it (and the round and layer).
        restore: the restoration's parameters.
    """

    method: str = "energy-aware"
    granularity: str = "weight"
    channel_share: float = 0.5
    accuracy_drop: float = 0.01
    energy_target: float | None = None
    rounds: int = 10
    rate: float = 0.3
    energy_exponent: float = 1.0
    allocation: str = "energy"
    saliency: str = "output"
    probe_drop: float = 0.02
    probe_images: int = 1024
    probe_tries: int = 3
    max_rate: float = 0.8
    ranking: str = "global"
    backoff: float = 0.5
    max_failures: int = 2
    min_density: float = 0.01
    energy_batch: int = 16
    density_images: int = 64
    bits: int | tuple[int, ...] | list[int] | None = None  # a list becomes a tuple
    compression: str = "significance-map"
    gating: str = "either"
    compression_levels: str = "dram"
    dataflow: str = "row-stationary"
    seed: int = 0
    restore: RestoreConfig = field(default_factory=RestoreConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"unknown method {self.method!r}; choose {' or '.join(METHODS)}")
        if self.granularity not in GRANULARITIES:
            raise InputError(f"unknown granularity {self.granularity!r}; choose "
                             f"{' or '.join(GRANULARITIES)}")
        if self.allocation not in ALLOCATIONS:
            raise InputError(f"unknown allocation {self.allocation!r}; choose "
                             f"{' or '.join(ALLOCATIONS)}")
        if self.saliency not in SALIENCIES:
            raise InputError(f"unknown saliency {self.saliency!r}; choose "
                             f"{' or '.join(SALIENCIES)}")
        if self.ranking not in RANKINGS:
            raise InputError(f"unknown ranking {self.ranking!r}; choose {' or '.join(RANKINGS)}")
        if not (self.accuracy_drop >= 0 and math.isfinite(self.accuracy_drop)):
            raise InputError(f"accuracy budget must be a non-negative number, got "
                             f"{self.accuracy_drop}")
        if self.accuracy_drop > 1:
            raise InputError(f"accuracy budget is a fraction (0.01 = 1 point), got "
                             f"{self.accuracy_drop}")
        if self.energy_target is not None and not 0 < self.energy_target <= 1:
            raise InputError(f"energy target must lie in (0, 1] (a fraction of the dense "
                             f"energy), got {self.energy_target}")
        if self.rounds < 1:
            raise InputError(f"rounds must be a positive integer, got {self.rounds}")
        if self.max_failures < 0:
            raise InputError(f"max_failures must be a non-negative integer, got "
                             f"{self.max_failures}")
        if not 0 < self.channel_share <= 1:
            raise InputError(f"channel_share must lie in (0, 1], got {self.channel_share}")
        if not 0 < self.rate < 1:
            raise InputError(f"rate must lie in (0, 1), got {self.rate}")
        if not 0 < self.backoff < 1:
            raise InputError(f"backoff must lie in (0, 1), got {self.backoff}")
        if not (self.energy_exponent >= 0 and math.isfinite(self.energy_exponent)):
            raise InputError(f"energy exponent must be non-negative, got {self.energy_exponent}")
        if not 0 <= self.min_density < 1:
            raise InputError(f"min_density must lie in [0, 1), got {self.min_density}")
        if not 0 <= self.probe_drop <= 1:
            raise InputError(f"probe_drop must lie in [0, 1], got {self.probe_drop}")
        for name in ("probe_images", "probe_tries", "energy_batch", "density_images"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be a positive integer, got "
                                 f"{getattr(self, name)}")
        if not self.rate <= self.max_rate < 1:
            raise InputError(f"max_rate must lie in [rate, 1), got {self.max_rate}")
        object.__setattr__(self, "bits", _bits(self.bits))
        from nnjoules.energy.cost import Compression, CompressionLevels, Gating, parse_rule

        parse_rule(Compression, self.compression, "compression")
        parse_rule(Gating, self.gating, "gating")
        parse_rule(CompressionLevels, self.compression_levels, "compression levels")
        from nnjoules.energy.dataflows import canonical_name

        object.__setattr__(self, "dataflow", canonical_name(self.dataflow))

    @property
    def precision(self) -> int | Precision | None:
        """``bits`` as `nnjoules.estimate` takes it (an int or a `Precision`)."""
        if isinstance(self.bits, (tuple, list)):  # a tuple once checked
            from nnjoules.energy.workload import Precision

            return Precision(*self.bits)
        return self.bits

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for checkpoints and JSON)."""
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PruneConfig:
        """Inverse of `to_dict`."""
        values = dict(data)
        try:
            values["restore"] = RestoreConfig(**values.get("restore", {}))
            return PruneConfig(**values)
        except TypeError as err:  # a field this version does not know
            raise InputError(f"the configuration was written by another version of "
                             f"nnjoules ({err})") from None


def _bits(bits: Any) -> int | tuple[int, int, int] | None:
    """``bits`` checked: None, an int in [1, 64], or three of them (weights, ifmaps,
    ofmaps; a list from JSON becomes a tuple)."""
    values = list(bits) if isinstance(bits, (list, tuple)) else [bits]
    if bits is None:
        return None
    if len(values) not in (1, 3) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64 for v in values):
        raise InputError(f"bits must be an integer in [1, 64] or three of them (weights, "
                         f"ifmaps, ofmaps), got {bits!r}")
    return values[0] if len(values) == 1 else (values[0], values[1], values[2])

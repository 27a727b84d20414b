"""What a pruning run reports: one `StepRecord` per round, and the `PruneResult`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LayerRecord:
    """One prunable layer after a step; energies in the report's unit."""

    name: str
    weights: int
    nonzero_weights: int
    nonskipped_macs: float
    energy: float
    output_error: float | None = None  # relative ||Y - XA||^2 / ||Y||^2 after restoration
    tied: tuple[str, ...] = ()  # other layers that share this weight (counted here, once)

    @property
    def density(self) -> float:
        """Fraction of the layer's weights that are non-zero."""
        return self.nonzero_weights / self.weights if self.weights else 0.0


@dataclass(frozen=True)
class StepRecord:
    """The model after one round (round 0: the dense model), accepted or not."""

    round: int
    accepted: bool
    accuracy: float  # validation top-1 in [0, 1]
    energy: float
    nonzero_weights: int
    weights: int
    nonskipped_macs: float
    macs: int
    rate: float  # the base pruning rate used this round (0 for round 0)
    seconds: float
    layers: tuple[LayerRecord, ...] = field(default_factory=tuple)

    @property
    def density(self) -> float:
        """Fraction of prunable weights that are non-zero."""
        return self.nonzero_weights / self.weights if self.weights else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (layers included, with their densities)."""
        out = asdict(self)
        out["density"] = self.density
        for item, layer in zip(out["layers"], self.layers, strict=True):
            item["density"] = layer.density
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> StepRecord:
        """Inverse of `to_dict`."""
        fields = {k: v for k, v in data.items() if k not in ("layers", "density")}
        layers = tuple(LayerRecord(**{k: v for k, v in item.items() if k != "density"})
                       for item in data["layers"])
        layers = tuple(replace(lay, tied=tuple(lay.tied)) for lay in layers)  # JSON: lists
        return StepRecord(**fields, layers=layers)


@dataclass(frozen=True)
class PruneResult:
    """A finished (or stopped) pruning run.

    ``model`` is the last model that met the accuracy budget, with its masks
    (``weight_orig``/``weight_mask``; `nnjoules.prune.make_permanent` folds them in).
    """

    model: nn.Module
    method: str
    history: tuple[StepRecord, ...]
    reference_accuracy: float
    accuracy_floor: float
    energy_target: float | None
    stop_reason: str
    energy_unit: str = "normalized"
    extra: dict[str, Any] = field(default_factory=dict)  # test accuracy, reference info ...

    @property
    def dense(self) -> StepRecord:
        """Round 0: the model before pruning."""
        return self.history[0]

    @property
    def final(self) -> StepRecord:
        """The last accepted step: what ``model`` is."""
        return [r for r in self.history if r.accepted][-1]

    def energy_reduction(self) -> float:
        """Dense energy / final energy (e.g. 3.7 = 3.7x less energy)."""
        return self.dense.energy / self.final.energy

    def energy_ratio(self) -> float:
        """Final energy / dense energy (the quantity ``energy_target`` bounds)."""
        return self.final.energy / self.dense.energy

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary and history."""
        final = self.final
        return {
            "method": self.method,
            "stop_reason": self.stop_reason,
            "energy_unit": self.energy_unit,
            "reference_accuracy": self.reference_accuracy,
            "accuracy_floor": self.accuracy_floor,
            "energy_target": self.energy_target,
            "final": {"round": final.round, "accuracy": final.accuracy, "energy": final.energy,
                      "energy_reduction": self.energy_reduction(),
                      "nonzero_weights": final.nonzero_weights,
                      "nonskipped_macs": final.nonskipped_macs, "density": final.density},
            "history": [r.to_dict() for r in self.history],
            **self.extra,
        }

    @staticmethod
    def from_dict(data: dict[str, Any], model: Any = None) -> PruneResult:
        """Inverse of `to_dict` (the model is not in it: ``model``, None by default)."""
        known = ("method", "stop_reason", "energy_unit", "reference_accuracy",
                 "accuracy_floor", "energy_target", "final", "history")
        return PruneResult(model=model, method=data["method"],
                           history=tuple(StepRecord.from_dict(r) for r in data["history"]),
                           reference_accuracy=data["reference_accuracy"],
                           accuracy_floor=data["accuracy_floor"],
                           energy_target=data["energy_target"],
                           stop_reason=data["stop_reason"], energy_unit=data["energy_unit"],
                           extra={k: v for k, v in data.items() if k not in known})

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            from nnjoules.io import write_text_atomic

            write_text_atomic(Path(path), text + "\n")
        return text

"""Energy of a (pruned) model through `nnjoules.estimate`, per prunable layer.

Densities are measured on ``density_inputs`` (real images: ifmap sparsity depends
on the data; weight density includes the masks); the energy is then that of a batch
of ``batch`` items (`PruneConfig.energy_batch`). Report
layers are named by module path; a module called more than once appears as
``name``, ``name#1`` ... and its energies are summed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from nnjoules.energy.dataflows import DEFAULT_DATAFLOW
from nnjoules.energy.workload import Density, Workload
from nnjoules.report.energy_report import EnergyReport

if TYPE_CHECKING:
    from nnjoules.prune.config import PruneConfig


@dataclass(frozen=True)
class EnergyMeter:
    """How pruning measures energy: hardware, dataflow, batch, bits, sparsity rules,
    density inputs."""

    density_inputs: Tensor
    hardware: Any = "eyeriss"  # preset name, YAML path or Hardware
    batch: int = 16
    bits: Any = None  # int | Precision | None
    compression: str = "significance-map"
    gating: str = "either"
    compression_levels: str = "dram"
    dataflow: str = DEFAULT_DATAFLOW  # a registered name (`nnjoules.energy.dataflows`)

    @staticmethod
    def of(config: PruneConfig, density_inputs: Tensor, hardware: Any) -> EnergyMeter:
        """The meter of a pruning run: ``config``'s batch, bits, sparsity rules and
        dataflow, on ``hardware``, with ``density_inputs[:config.density_images]``."""
        return EnergyMeter(density_inputs[: config.density_images], hardware=hardware,
                           batch=config.energy_batch, bits=config.precision,
                           compression=config.compression, gating=config.gating,
                           compression_levels=config.compression_levels,
                           dataflow=config.dataflow)

    def report(self, model: nn.Module) -> EnergyReport:
        """The `EnergyReport` of ``model`` (run on the density inputs, costed at ``batch``)."""
        from nnjoules.energy.estimate import estimate

        measured = estimate(model, self.density_inputs, hardware=self.hardware, bits=self.bits,
                            compression=self.compression, gating=self.gating,
                            compression_levels=self.compression_levels,
                            dataflow=self.dataflow)
        if measured.workload.layers[0].N == self.batch:
            return measured
        workload = Workload(name=measured.workload.name,
                            layers=tuple(replace(layer, N=self.batch)
                                         for layer in measured.workload.layers),
                            unmodelled=measured.workload.unmodelled, items=self.batch)
        return estimate(workload, hardware=self.hardware, compression=self.compression,
                        gating=self.gating, compression_levels=self.compression_levels,
                        dataflow=self.dataflow)

    def floor_report(self, model: nn.Module, report: EnergyReport) -> EnergyReport:
        """``report`` re-costed with every weight density at zero: the energy that no
        weight pruning can remove (ifmaps, ofmaps, on-chip traffic)."""
        from nnjoules.energy.estimate import estimate

        zero = {layer.name: replace(layer.density, weights=0.0, weights_rlc_pairs=None)
                for layer in report.workload.layers}
        workload = report.workload.with_densities(zero)
        return estimate(workload, hardware=self.hardware, compression=self.compression,
                        gating=self.gating, compression_levels=self.compression_levels,
                        dataflow=self.dataflow)

    def save_json(self, report: EnergyReport, path: Path) -> None:
        """Write ``report`` as JSON (atomic)."""
        report.to_json(path)


def per_module(report: EnergyReport, names: list[str],
               groups: dict[str, list[str]] | None = None) -> dict[str, float]:
    """Energy per module path (repeated calls ``name#k`` summed); 0 for unseen modules.
    With ``groups`` (`nnjoules.prune.masks.tied_groups`), layers that share a weight
    count under the first of them."""
    return _per_module({item.name: item.total for item in report.layers}, names, groups)


def per_module_nonskipped(report: EnergyReport, names: list[str],
                          groups: dict[str, list[str]] | None = None) -> dict[str, float]:
    """Non-skipped MACs per module path (``groups`` as in `per_module`)."""
    values = {item.name: item.energy.nonskipped_macs for item in report.layers}
    return _per_module(values, names, groups)


def _per_module(values: dict[str, float], names: list[str],
                groups: dict[str, list[str]] | None) -> dict[str, float]:
    alias = {member: first for first, group in (groups or {}).items() for member in group}
    out = dict.fromkeys(names, 0.0)
    for layer_name, value in values.items():
        base = layer_name.split("#", 1)[0]
        base = alias.get(base, base)
        if base in out:
            out[base] += value
    return out


def zero_density(density: Density) -> Density:
    """``density`` with weights at zero."""
    return replace(density, weights=0.0, weights_rlc_pairs=None)

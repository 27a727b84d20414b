"""`NetworkEstimate`: where the energy goes, read through query methods, and its JSON form.

The JSON form (``NetworkEstimate.to_dict``; schema version 1) is documented in
``docs/report-json.md``. Every number carries the report's unit
(``"normalized"``: 1 = one 16-bit MAC, or ``"pJ"``).

Example: the totals of one dense 1x1 convolution at batch 1.

    >>> from nnjoules.energy.estimate import estimate_workload
    >>> from nnjoules.energy.hardware import eyeriss
    >>> from nnjoules.energy.workload import Layer, LayerKind, Workload
    >>> layer = Layer("c", LayerKind.CONV, N=1, M=2, C=3, H=4, W=4, R=1, S=1, E=4, F=4)
    >>> totals = Totals.of(estimate_workload(Workload("toy", (layer,)), eyeriss()))
    >>> totals.macs, totals.weights  # 2*3*4*4 MACs, 2*3 weights
    (96, 6)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnjoules.energy.cost import Compression, CompressionLevels, EnergyBreakdown, Gating
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows.base import DataflowMapping
from nnjoules.energy.hardware import LEVELS, OPERANDS, EnergyUnit, Hardware
from nnjoules.energy.timing import Bound, LayerTiming, NetworkTiming
from nnjoules.energy.workload import Layer, Workload
from nnjoules.io import json_text

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerEstimate:
    """One layer's mapping, access counts, energy and cycles."""

    layer: Layer
    mapping: DataflowMapping
    counts: AccessCounts
    energy: EnergyBreakdown
    timing: LayerTiming
    mapped_as: Layer | None = None  # the FC lowering the mapping refers to, if any

    @property
    def name(self) -> str:
        """The layer's name (its module path)."""
        return self.layer.name

    @property
    def total(self) -> float:
        """Energy of the layer."""
        return self.energy.total

    def by_level(self) -> dict[str, float]:
        """Energy per level (``dram``, ``glb``, ``array``, ``rf``) and ``mac``."""
        return self.energy.by_level()

    def by_operand(self) -> dict[str, float]:
        """Energy per operand (``weights``, ``ifmaps``, ``psums``) and ``computation``."""
        return self.energy.by_operand()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of this layer's estimate."""
        layer = self.layer
        return {
            "name": layer.name,
            "kind": layer.kind.value,
            "op": layer.op,
            "shape": {k: getattr(layer, k) for k in ("N", "M", "C", "G", "H", "W", "R", "S",
                                                     "E", "F")}
            | {"stride": list(layer.stride), "dilation": list(layer.dilation),
               "padding": list(layer.padding)},
            "bits": {"weights": layer.precision.weight_bits,
                     "ifmaps": layer.precision.ifmap_bits,
                     "ofmaps": layer.precision.ofmap_bits},
            "density": {"weights": layer.density.weights, "ifmaps": layer.density.ifmaps,
                        "ofmaps": layer.density.ofmaps},
            "weights": layer.num_weights,
            "nonzero_weights": layer.nonzero_weights,
            "macs": layer.macs,
            "nonskipped_macs": self.energy.nonskipped_macs,
            "mapping": self.mapping.as_dict(),
            "mapped_as": None if self.mapped_as is None else {
                k: getattr(self.mapped_as, k) for k in ("N", "M", "C", "G", "H", "W", "R", "S",
                                                        "E", "F")},
            "active_pes": self.mapping.active_pes(self.mapped_as or layer),
            "accesses": {
                level.value: {op.value: {"reads": self.counts.read(level, op),
                                         "writes": self.counts.write(level, op)}
                              for op in OPERANDS}
                for level in LEVELS},
            "timing": self.timing.to_dict(),
            "energy": {
                "total": self.total,
                "computation": self.energy.computation,
                "data_movement": self.energy.data_movement,
                "by_level": self.by_level(),
                "by_operand": self.by_operand(),
                "by_level_operand": {level.value: {op.value: self.energy.data[level, op]
                                                   for op in OPERANDS} for level in LEVELS},
            },
        }


@dataclass(frozen=True)
class NetworkEstimate:
    """Energy of a network on a hardware, per layer, level and operand (data and queries).

    `nnjoules.report.energy_report.EnergyReport` adds the tables, CSV, HTML and plots.
    """

    workload: Workload
    hardware: Hardware
    compression: Compression
    layers: tuple[LayerEstimate, ...]
    gating: Gating = Gating.EITHER
    compression_levels: CompressionLevels = CompressionLevels.DRAM
    dataflow: str = "row-stationary"

    @property
    def unit(self) -> EnergyUnit:
        """Unit of every energy in this report."""
        return self.hardware.unit

    def layer(self, name: str) -> LayerEstimate:
        """The estimate of the layer called ``name``."""
        for item in self.layers:
            if item.name == name:
                return item
        raise KeyError(f"no layer {name!r} in this report")

    def total(self) -> float:
        """Energy of the whole network."""
        return sum(item.total for item in self.layers)

    def computation(self) -> float:
        """Energy of the non-skipped MACs."""
        return sum(item.energy.computation for item in self.layers)

    def data_movement(self) -> float:
        """Energy of all memory accesses."""
        return sum(item.energy.data_movement for item in self.layers)

    def by_layer(self) -> dict[str, float]:
        """Energy per layer, in execution order."""
        return {item.name: item.total for item in self.layers}

    def by_level(self) -> dict[str, float]:
        """Energy per level (``dram``, ``glb``, ``array``, ``rf``) and ``mac``."""
        return _sum_dicts(item.by_level() for item in self.layers)

    def by_operand(self) -> dict[str, float]:
        """Energy per operand (``weights``, ``ifmaps``, ``psums``) and ``computation``."""
        return _sum_dicts(item.by_operand() for item in self.layers)

    def macs(self) -> int:
        """Dense MACs."""
        return sum(item.layer.macs for item in self.layers)

    def nonskipped_macs(self) -> float:
        """MACs left after skipping those with a zero operand."""
        return sum(item.energy.nonskipped_macs for item in self.layers)

    def weights(self) -> int:
        """Distinct weights (matrix products count their second operand; a weight that
        several layers share counts once)."""
        return sum(item.layer.num_weights for item in self.layers
                   if not item.layer.shares_weights)

    def nonzero_weights(self) -> float:
        """Distinct weights that are not zero."""
        return sum(item.layer.nonzero_weights for item in self.layers
                   if not item.layer.shares_weights)

    def items(self) -> int | None:
        """Input items the report is for: the workload's, or every layer's N when equal."""
        if self.workload.items:
            return self.workload.items
        batches = {item.layer.N for item in self.layers}
        return batches.pop() if len(batches) == 1 else None

    def cycles(self) -> int:
        """Core cycles of every layer, run one after another."""
        return sum(item.timing.cycles for item in self.layers)

    def timing(self) -> NetworkTiming:
        """Latency, throughput and average power at the hardware's clock."""
        bound = {b.value: sum(item.timing.bound is b for item in self.layers) for b in Bound}
        return NetworkTiming(cycles=self.cycles(), clock_mhz=self.hardware.clock_mhz,
                             items=self.items(), energy=self.total(), unit=self.unit,
                             bound_layers=bound)

    def mappings(self) -> dict[str, DataflowMapping]:
        """The chosen mapping of every layer."""
        return {item.name: item.mapping for item in self.layers}

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form (see ``docs/report-json.md``)."""
        from nnjoules.energy.hardware.loading import hardware_to_dict
        from nnjoules.version import __version__

        return {
            "schema_version": SCHEMA_VERSION,
            "nnjoules_version": __version__,
            "network": self.workload.name,
            "unit": self.unit.value,
            "dataflow": self.dataflow,
            "compression": self.compression.value,
            "gating": self.gating.value,
            "compression_levels": self.compression_levels.value,
            "hardware": hardware_to_dict(self.hardware),
            "totals": {
                "energy": self.total(),
                "computation": self.computation(),
                "data_movement": self.data_movement(),
                "by_level": self.by_level(),
                "by_operand": self.by_operand(),
                "macs": self.macs(),
                "nonskipped_macs": self.nonskipped_macs(),
                "weights": self.weights(),
                "nonzero_weights": self.nonzero_weights(),
            },
            "timing": self.timing().to_dict(),
            "layers": [item.to_dict() for item in self.layers],
            "unmodelled_ops": {op.op: op.count for op in self.workload.unmodelled},
            "notes": list(self.workload.notes),
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; also written atomically to ``path`` when given."""
        return json_text(self.to_dict(), path)


def _sum_dicts(dicts: Any) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in dicts:
        for key, value in d.items():
            out[key] = out.get(key, 0.0) + value
    return out


LEVEL_KEYS = ("dram", "glb", "array", "rf", "mac")
OPERAND_KEYS = ("weights", "ifmaps", "psums", "computation")
BOUND_KEYS = tuple(b.value for b in Bound)  # compute, dram, glb


@dataclass(frozen=True)
class Totals:
    """Whole-network numbers of one report; energies in ``unit``.

    Attributes:
        unit: the energy unit (``"normalized"``: 1 = one 16-bit MAC, or ``"pJ"``).
        energy: total energy.
        computation: energy of the non-skipped MACs.
        data_movement: energy of all memory accesses.
        by_level: energy per level ``dram, glb, array, rf`` and ``mac``.
        by_operand: energy per operand ``weights, ifmaps, psums`` and ``computation``.
        macs: dense multiply-accumulates.
        nonskipped_macs: MACs left after skipping those with a zero operand.
        weights: weights (matrix products count their second operand).
        nonzero_weights: weights that are not zero.
        cycles: core cycles of all layers, one after another.
        clock_mhz: the core clock the latency is at.
        items: input items (the batch) the run is for; None when unknown.
        bound_layers: layers bound by ``compute``, ``dram`` and ``glb``.

    Time and power (`latency_s`, `throughput`, `power`, `power_mw`) follow from these as
    in `nnjoules.energy.timing.NetworkTiming`.
    """

    unit: str
    energy: float
    computation: float
    data_movement: float
    by_level: Mapping[str, float]
    by_operand: Mapping[str, float]
    macs: int
    nonskipped_macs: float
    weights: int
    nonzero_weights: float
    cycles: int
    clock_mhz: float
    items: int | None
    bound_layers: Mapping[str, int]

    @classmethod
    def of(cls, report: NetworkEstimate) -> Totals:
        """The totals of ``report``."""
        timing = report.timing()
        return cls(unit=report.unit.value, energy=report.total(),
                   computation=report.computation(), data_movement=report.data_movement(),
                   by_level=report.by_level(), by_operand=report.by_operand(),
                   macs=report.macs(), nonskipped_macs=report.nonskipped_macs(),
                   weights=report.weights(), nonzero_weights=report.nonzero_weights(),
                   cycles=timing.cycles, clock_mhz=timing.clock_mhz, items=timing.items,
                   bound_layers=timing.bound_layers)

    def timing(self) -> NetworkTiming:
        """Latency, throughput and average power of these totals."""
        return NetworkTiming(cycles=self.cycles, clock_mhz=self.clock_mhz, items=self.items,
                             energy=self.energy, unit=EnergyUnit(self.unit),
                             bound_layers=dict(self.bound_layers))

    @property
    def latency_s(self) -> float:
        """Seconds per batch (all ``items`` together) at ``clock_mhz``."""
        return self.timing().latency_s

    @property
    def throughput(self) -> float | None:
        """Inferences (input items) per second; None when the items are unknown."""
        return self.timing().throughput

    @property
    def power(self) -> float:
        """Average power, energy / latency, in `power_unit`."""
        return self.timing().power

    @property
    def power_unit(self) -> str:
        """``"pJ/s"`` or ``"normalized/s"`` (normalised units per second)."""
        return f"{self.unit}/s"

    @property
    def power_mw(self) -> float | None:
        """Average power in milliwatts; None when the energy unit is not absolute."""
        return self.timing().power_mw

    @property
    def energy_per_mac(self) -> float:
        """Energy per dense MAC, in ``unit`` (0 when there are no MACs)."""
        return self.energy / self.macs if self.macs else 0.0

    def columns(self) -> dict[str, Any]:
        """Flat, CSV-ready columns: energies, counts, then time and power (names as in
        ``docs/report-json.md``)."""
        out: dict[str, Any] = {
            "energy": self.energy, "computation": self.computation,
            "data_movement": self.data_movement, "energy_per_mac": self.energy_per_mac}
        out |= {f"energy_{k}": self.by_level[k] for k in LEVEL_KEYS}
        out |= {f"energy_{k}": self.by_operand[k] for k in OPERAND_KEYS}
        out |= {"macs": self.macs, "nonskipped_macs": self.nonskipped_macs,
                "weights": self.weights, "nonzero_weights": self.nonzero_weights}
        return out | self.time_columns()

    def time_columns(self) -> dict[str, Any]:
        """Flat, CSV-ready time and power columns (``throughput_per_s`` and ``items`` None
        when the items are unknown; ``power_mw`` None unless the unit is pJ)."""
        t = self.timing()
        out: dict[str, Any] = {
            "cycles": t.cycles, "clock_mhz": t.clock_mhz, "items": t.items,
            "latency_s": t.latency_s, "throughput_per_s": t.throughput, "power": t.power,
            "power_unit": self.power_unit, "power_mw": t.power_mw}
        return out | {f"{bound}_bound_layers": self.bound_layers.get(bound, 0)
                      for bound in BOUND_KEYS}

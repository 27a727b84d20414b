"""The sweep engine: many grid points of one network, sharing what the points have in common.

A point's estimate is, per layer: search the mapping, count its accesses, cost them.
Across the points of a sweep most of that repeats:

* the candidate mappings and their access counts depend on the layer's shape and
  precision (and, where weights are kept compressed, its densest filter row: see
  `legality_key`) and on the hardware's *sizes* (PE array, GLB, RF) alone;
* the costs (per-access energies from the hardware's costs, the layer's densities and
  bit-widths, and the compression and gating rules) only weigh the candidates.

So the engine groups the (layer, point) pairs of a chunk of points by (legality key,
sizes, storage rule), and searches each group once, weighing all of the group's distinct
costings in one vectorised pass (`best_mappings`); points that change only costs never enumerate
candidates again. Access counts are kept per (shape, mapping). Each point is then costed
with exactly the arithmetic of a separate estimate, so every point's mapping, counts and
energy equal ``estimate_workload`` at that point (the property test in
``tests/test_sweep_engine.py`` checks it). Points stream: memory is bounded by the chunk.

Only the row-stationary dataflow has a batched search: points of other dataflows, and a
point where some layer fits no mapping (so that its error message is the estimate's
own), are evaluated point by point.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from nnjoules.energy.cost import (
    Compression,
    CompressionLevels,
    EnergyBreakdown,
    Gating,
    UnitEnergies,
    energy_from_units,
    unit_energies,
)
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows import DEFAULT_DATAFLOW
from nnjoules.energy.dataflows.base import lower_to_fc
from nnjoules.energy.dataflows.row_stationary import ROW_STATIONARY
from nnjoules.energy.dataflows.row_stationary.access import count_accesses
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
from nnjoules.energy.dataflows.row_stationary.search import best_mappings, legality_key
from nnjoules.energy.footprint import Storage
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.results import LayerEstimate, NetworkEstimate, Totals
from nnjoules.energy.timing import layer_timing
from nnjoules.energy.workload import Layer, Workload
from nnjoules.errors import MappingError

CHUNK_POINTS = 256  # points searched together: more shares more, and holds more in memory
_CACHE_LIMIT = 20_000  # entries per cache before it is emptied (keeps memory flat)
# Costings weighed in one search pass: its arrays grow with costings x candidates.
MAX_COSTINGS = 64

SizesKey = tuple[object, ...]
CostsKey = tuple[object, ...]
Found = tuple[Mapping, bool] | None  # the mapping and whether it is of the FC lowering


def sizes_of(hw: Hardware) -> SizesKey:
    """What of ``hw`` the candidate mappings depend on: the PE array and storage sizes."""
    rf = hw.rf
    return (hw.pe_array, hw.glb.size_bytes, rf.size_bytes, rf.weights_bytes, rf.ifmaps_bytes,
            rf.psums_bytes)


def _storage_of(task: PointTask) -> Storage:
    return Storage.of(task.compression, task.gating, task.compression_levels)


def _costs_of(layer: Layer, task: PointTask) -> CostsKey:
    """What `unit_energies` of ``layer`` at ``task``'s point depends on."""
    hw = task.hardware
    return (layer.precision, layer.density, hw.word_bits, hw.mac, hw.dram, hw.glb.cost,
            hw.array, hw.rf.weights, hw.rf.ifmaps, hw.rf.psums, task.compression,
            task.gating, task.compression_levels)


@dataclass(frozen=True)
class PointTask:
    """One grid point, ready to evaluate in any process."""

    index: int
    workload: Workload
    hardware: Hardware
    compression: Compression
    gating: Gating = Gating.EITHER
    compression_levels: CompressionLevels = CompressionLevels.DRAM
    dataflow: str = DEFAULT_DATAFLOW


@dataclass(frozen=True)
class PointOutcome:
    """The totals of one grid point, or why no mapping fits it."""

    index: int
    totals: Totals | None
    error: str | None


def evaluate_point(task: PointTask) -> PointOutcome:
    """Estimate one grid point (top level, so worker processes can run it)."""
    from nnjoules.energy.estimate import estimate_workload

    try:
        report = estimate_workload(task.workload, task.hardware, compression=task.compression,
                                   gating=task.gating,
                                   compression_levels=task.compression_levels,
                                   dataflow=task.dataflow)
    except MappingError as err:
        return PointOutcome(task.index, None, str(err))
    return PointOutcome(task.index, Totals.of(report), None)


class SweepEngine:
    """Evaluates grid points in chunks, keeping costings and counts between chunks.

    Args:
        max_costings: costings weighed in one search pass (bounds its memory).
    """

    def __init__(self, max_costings: int = MAX_COSTINGS) -> None:
        self._max_costings = max_costings
        self._units: dict[CostsKey, UnitEnergies] = {}
        self._counts: dict[tuple[object, ...], AccessCounts] = {}
        # Energy of a layer shape under a mapping and a costing (points that change
        # only sizes often keep the mapping).
        self._energies: dict[tuple[object, ...], EnergyBreakdown] = {}

    def outcomes(self, tasks: Iterable[PointTask], chunk: int = CHUNK_POINTS,
                 ) -> Iterator[PointOutcome]:
        """The outcome of every task, in order, ``chunk`` points searched at a time."""
        iterator = iter(tasks)
        while batch := list(itertools.islice(iterator, chunk)):
            yield from self.evaluate(batch)
            for cache in (self._units, self._counts, self._energies):
                if len(cache) > _CACHE_LIMIT:
                    cache.clear()

    def evaluate(self, tasks: Sequence[PointTask]) -> list[PointOutcome]:
        """The outcomes of ``tasks``, in order, each equal to `evaluate_point` of it."""
        return [evaluate_point(task) if estimate is None  # its own error message
                else PointOutcome(task.index, Totals.of(estimate), None)
                for task, estimate in zip(tasks, self.estimates(tasks), strict=True)]

    def estimates(self, tasks: Sequence[PointTask]) -> list[NetworkEstimate | None]:
        """Each task's estimate, equal to ``estimate_workload`` at its point (mappings,
        counts, energies, timing); None where some layer fits no mapping, or where the
        dataflow is not row-stationary (the only one with a batched search here)."""
        found = self._search(tasks)
        out: list[NetworkEstimate | None] = []
        for task in tasks:
            if task.dataflow != ROW_STATIONARY.name:
                out.append(None)
                continue
            storage = _storage_of(task)
            keys = [(legality_key(layer, storage), sizes_of(task.hardware), storage,
                     self._costs(layer, task)) for layer in task.workload.layers]
            items = [found[key] for key in keys]
            out.append(None if None in items else self._cost_point(task, items))
        return out

    def _costs(self, layer: Layer, task: PointTask) -> CostsKey:
        key = _costs_of(layer, task)
        if key not in self._units:
            self._units[key] = unit_energies(layer, task.hardware, task.compression,
                                             task.gating, task.compression_levels)
        return key

    def _search(self, tasks: Sequence[PointTask]) -> dict[tuple[object, ...], Found]:
        """Search every (shape, sizes) group once under all its distinct costings."""
        groups: dict[tuple[object, SizesKey, Storage],
                     tuple[Layer, Hardware, dict[CostsKey, None]]] = {}
        for task in tasks:
            if task.dataflow != ROW_STATIONARY.name:
                continue
            sizes, storage = sizes_of(task.hardware), _storage_of(task)
            for layer in task.workload.layers:
                group = groups.setdefault((legality_key(layer, storage), sizes, storage),
                                          (layer, task.hardware, {}))
                group[2][self._costs(layer, task)] = None
        found: dict[tuple[object, ...], Found] = {}
        for key, (layer, hw, costs) in groups.items():
            units = [self._units[cost] for cost in costs]
            try:
                step = self._max_costings
                results = [result for at in range(0, len(units), step)
                           for result in best_mappings(layer, hw, units[at:at + step],
                                                       key[2])]
            except MappingError:
                found.update(((*key, cost), None) for cost in costs)
                continue
            for cost, result in zip(costs, results, strict=True):
                assert isinstance(result.mapping, Mapping)
                found[(*key, cost)] = (result.mapping, result.mapped is not layer)
        return found

    def _cost_point(self, task: PointTask, found: Sequence[Found]) -> NetworkEstimate:
        """Count and cost every layer of ``task`` under its found mapping."""
        estimates = []
        for layer, item in zip(task.workload.layers, found, strict=True):
            assert item is not None
            mapping, lowered = item
            mapped = lower_to_fc(layer) if lowered else layer
            assert mapped is not None  # lowered only when lower_to_fc applies
            counts_key = (mapped.shape_key, mapping)
            counts = self._counts.get(counts_key)
            if counts is None:
                counts = self._counts[counts_key] = count_accesses(mapped, mapping)
            costs = _costs_of(layer, task)
            energy_key = (counts_key, costs, task.hardware.unit)
            energy = self._energies.get(energy_key)
            if energy is None:
                energy = self._energies[energy_key] = energy_from_units(
                    counts, mapped, task.hardware, self._units[costs], task.gating)
            timing = layer_timing(ROW_STATIONARY.compute_cycles(mapped, mapping, task.hardware),
                                  counts, mapped, task.hardware, task.compression,
                                  task.compression_levels)
            estimates.append(LayerEstimate(layer=layer, mapping=mapping, counts=counts,
                                           energy=energy, timing=timing,
                                           mapped_as=mapped if lowered else None))
        return NetworkEstimate(workload=task.workload, hardware=task.hardware,
                               compression=task.compression, layers=tuple(estimates),
                               gating=task.gating, compression_levels=task.compression_levels,
                               dataflow=DEFAULT_DATAFLOW)

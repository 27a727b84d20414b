"""The row-stationary (RS) dataflow of Eyeriss (Chen, Emer & Sze, ISCA 2016).

Mapping variables and legality: `mapping`; exact access counts: `access`; the
exhaustive least-energy search: `search`; cycles of the PE array: `cycles`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, unit_energies
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows.base import DataflowMapping, SearchResult, lower_to_fc
from nnjoules.energy.dataflows.row_stationary.access import count_accesses
from nnjoules.energy.dataflows.row_stationary.cycles import compute_cycles
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
from nnjoules.energy.dataflows.row_stationary.search import (
    best_mapping,
    best_mappings,
    legality_key,
)
from nnjoules.energy.footprint import Storage
from nnjoules.energy.hardware.spec import Hardware
from nnjoules.energy.workload import Layer


@dataclass(frozen=True)
class RowStationary:
    """The RS dataflow as a `nnjoules.energy.dataflows.base.Dataflow` plug-in."""

    name: str = "row-stationary"

    def best_mapping(self, layer: Layer, hw: Hardware, compression: Compression,
                     gating: Gating, levels: CompressionLevels) -> SearchResult:
        """See `nnjoules.energy.dataflows.row_stationary.search.best_mapping`."""
        return best_mapping(layer, hw, compression, gating, levels)

    def best_mappings(self, layers: Sequence[Layer], hw: Hardware, compression: Compression,
                      gating: Gating, levels: CompressionLevels) -> list[SearchResult]:
        """`best_mapping` of each of ``layers``, layers that share a legality key (one
        shape, other densities) searched in one pass (see `search.best_mappings`)."""
        storage = Storage.of(compression, gating, levels)
        groups: dict[tuple[object, ...], list[int]] = {}
        for at, layer in enumerate(layers):
            groups.setdefault(legality_key(layer, storage), []).append(at)
        found: dict[int, SearchResult] = {}
        for members in groups.values():
            first = layers[members[0]]
            units = [unit_energies(layers[at], hw, compression, gating, levels)
                     for at in members]
            for at, result in zip(members, best_mappings(first, hw, units, storage),
                                  strict=True):
                mapped = layers[at] if result.mapped is first else lower_to_fc(layers[at])
                assert mapped is not None  # lowered only when lower_to_fc applies
                found[at] = replace(result, mapped=mapped)
        return [found[at] for at in range(len(layers))]

    def count_accesses(self, layer: Layer, mapping: DataflowMapping) -> AccessCounts:
        """See `nnjoules.energy.dataflows.row_stationary.access.count_accesses`."""
        if not isinstance(mapping, Mapping):
            raise TypeError(f"row-stationary counts need an RS Mapping, got {mapping!r}")
        return count_accesses(layer, mapping)

    def compute_cycles(self, layer: Layer, mapping: DataflowMapping, hw: Hardware) -> int:
        """See `nnjoules.energy.dataflows.row_stationary.cycles.compute_cycles`.

        ``hw`` is not needed: the mapping already fits its array.
        """
        if not isinstance(mapping, Mapping):
            raise TypeError(f"row-stationary cycles need an RS Mapping, got {mapping!r}")
        return compute_cycles(layer, mapping)


ROW_STATIONARY = RowStationary()

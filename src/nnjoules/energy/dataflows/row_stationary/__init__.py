"""The row-stationary (RS) dataflow of Eyeriss (Chen, Emer & Sze, ISCA 2016).

Mapping variables and legality: `mapping`; exact access counts: `access`; the
exhaustive least-energy search: `search`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, UnitEnergies
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows.base import DataflowMapping, SearchResult
from nnjoules.energy.dataflows.row_stationary.access import count_accesses
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
from nnjoules.energy.dataflows.row_stationary.search import best_mapping, best_mappings
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

    def best_mappings(self, layer: Layer, hw: Hardware,
                      units: Sequence[UnitEnergies]) -> list[SearchResult]:
        """See `nnjoules.energy.dataflows.row_stationary.search.best_mappings`."""
        return best_mappings(layer, hw, units)

    def count_accesses(self, layer: Layer, mapping: DataflowMapping) -> AccessCounts:
        """See `nnjoules.energy.dataflows.row_stationary.access.count_accesses`."""
        if not isinstance(mapping, Mapping):
            raise TypeError(f"row-stationary counts need an RS Mapping, got {mapping!r}")
        return count_accesses(layer, mapping)


ROW_STATIONARY = RowStationary()

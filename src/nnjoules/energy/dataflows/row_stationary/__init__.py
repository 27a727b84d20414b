"""The row-stationary (RS) dataflow of Eyeriss (Chen, Emer & Sze, ISCA 2016).

Mapping variables and legality: `mapping`; exact access counts: `access`; the
exhaustive least-energy search: `search`; cycles of the PE array: `cycles`.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnjoules.energy.cost import Compression, CompressionLevels, Gating
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows.base import DataflowMapping, SearchResult
from nnjoules.energy.dataflows.row_stationary.access import count_accesses
from nnjoules.energy.dataflows.row_stationary.cycles import compute_cycles
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
from nnjoules.energy.dataflows.row_stationary.search import best_mapping
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

"""What a dataflow plug-in provides, and the lowering every dataflow shares.

A dataflow is one object (see `Dataflow`) that knows its mapping variables, searches
its legal mappings of a layer on a hardware for the one of least energy, counts the
accesses a mapping makes, per level and operand (`nnjoules.energy.counts.AccessCounts`),
and counts the cycles the PE array needs for it (`Dataflow.compute_cycles`).
Costing (:mod:`nnjoules.energy.cost`) and reporting are shared by all dataflows.
Adding a dataflow is adding one module under ``nnjoules/energy/dataflows/`` that
provides such an object, registering it in `nnjoules.energy.dataflows.DATAFLOWS`, and
its tests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from nnjoules.energy.cost import Compression, CompressionLevels, Gating
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.hardware.spec import Hardware
from nnjoules.energy.workload import Layer, LayerKind


class DataflowMapping(Protocol):
    """A dataflow's mapping: frozen values of its mapping variables."""

    def as_dict(self) -> dict[str, int]:
        """The mapping variables by name (the names the dataflow's docs use)."""
        ...

    def active_pes(self, layer: Layer) -> int:
        """PEs busy in a full pass of ``layer``."""
        ...


@dataclass(frozen=True)
class SearchResult:
    """The chosen mapping, its search objective (the layer's energy) and the space size.

    ``mapped`` is the layer the mapping refers to: the layer itself, or its lowering
    to an FC layer (see `lower_to_fc`) when the layer itself fits no mapping.
    """

    mapping: DataflowMapping
    energy: float
    candidates: int  # legal candidate mappings evaluated
    mapped: Layer


class Dataflow(Protocol):
    """The plug-in interface: one instance per dataflow.

    The dataflow's ``name`` is as ISCA 2016 spells it, lower case with hyphens
    (``"row-stationary"``).
    """

    @property
    def name(self) -> str:
        """The dataflow's name, e.g. ``"row-stationary"``."""
        ...

    def best_mapping(self, layer: Layer, hw: Hardware, compression: Compression,
                     gating: Gating, levels: CompressionLevels) -> SearchResult:
        """The legal mapping of ``layer`` on ``hw`` of least energy under these rules.

        Raises:
            MappingError: no mapping is legal; the message names the layer and why.
        """
        ...

    def count_accesses(self, layer: Layer, mapping: DataflowMapping) -> AccessCounts:
        """Exact reads and writes per level and operand of ``layer`` under ``mapping``."""
        ...

    def compute_cycles(self, layer: Layer, mapping: DataflowMapping, hw: Hardware) -> int:
        """Cycles of ``layer`` under ``mapping`` if only the PE array limited it.

        Passes times the cycles of one pass (set by the mapping's PE utilisation), plus
        each pass's fill and drain; never less than ``layer.macs / mapping.active_pes``.
        Bandwidth limits are applied on top of this by :mod:`nnjoules.energy.timing`.
        """
        ...


def lower_to_fc(layer: Layer) -> Layer | None:
    """The FC layer that computes a non-overlapping convolution; None if windows overlap.

    With stride >= filter size (and no dilation) every ifmap value enters at most one
    window, so the im2col matrix [N*E*F, C*R*S] holds each value once and the layer
    is an FC layer with N*E*F rows: same MACs, weights and ofmaps, no value duplicated.

    >>> conv = Layer("patch", LayerKind.CONV, N=1, M=768, C=3, H=224, W=224, R=16, S=16,
    ...              E=14, F=14, stride=(16, 16))
    >>> fc = lower_to_fc(conv)
    >>> (fc.N, fc.C, fc.M, fc.macs == conv.macs)
    (196, 768, 768, True)
    """
    if layer.dilation != (1, 1) or layer.stride[0] < layer.R or layer.stride[1] < layer.S \
            or (layer.R, layer.S) == (1, 1):
        return None
    # A filter row of the FC layer is one weight: the peak over S-wide rows bounds nothing
    # there (any non-zero weight is a dense row).
    peak = 1.0 if layer.density.weights > 0 else 0.0
    return replace(layer, kind=LayerKind.FC, N=layer.N * layer.E * layer.F,
                   C=layer.C * layer.R * layer.S, H=1, W=1, R=1, S=1, E=1, F=1,
                   stride=(1, 1), padding=(0, 0, 0, 0),
                   density=replace(layer.density, weights_row_peak=peak))

"""What the ISCA 2016 comparison dataflows share: tile arithmetic and a vectorised search.

Each of WS, OS-A, OS-B, OS-C and NLR is described by a `TiledSpec`: its mapping type,
its access counts written once for ints *and* numpy arrays of candidates, its legality
checks, and a candidate grid. `TiledDataflow` turns a spec into a
`nnjoules.energy.dataflows.base.Dataflow` plug-in whose search evaluates every candidate
of the grid at once and keeps the legal one of least energy (ties: most active PEs, then
the first in grid order).

Grids lose no optimum by the argument of the RS search: a variable that acts on the
energy only through one ceiling ``ceil(X/x)`` (or through the ifmap extent of strips,
which depends on ``ceil(E/e)`` only) and on the constraints only by using more storage
or PEs as it grows needs, for each value of its ceiling, only the smallest x
(`candidates`). A variable that must divide another (p and m) is enumerated fully.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from nnjoules.energy.cost import (
    Compression,
    CompressionLevels,
    Gating,
    UnitEnergies,
    unit_energies,
)
from nnjoules.energy.counts import AccessCounts, Key
from nnjoules.energy.dataflows.base import DataflowMapping, SearchResult, lower_to_fc
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.workload import Layer
from nnjoules.errors import MappingError

Terms = tuple[dict[Key, Any], dict[Key, Any]]


def ceil_div(a: Any, b: Any) -> Any:
    """Ceiling of a / b for positive integers or integer arrays."""
    return -(-a // b)


@lru_cache(maxsize=4096)
def _candidates(total: int) -> tuple[int, ...]:
    k = np.arange(1, total + 1, dtype=np.int64)
    return tuple(int(x) for x in np.unique(-(-total // k)))


def candidates(total: int) -> np.ndarray:
    """For each distinct value of ceil(total/x), x in 1..total, the smallest such x.

    >>> candidates(10).tolist()
    [1, 2, 3, 4, 5, 10]
    """
    return np.array(_candidates(total), dtype=np.int64)


def extent_read(out: int, tile: Any, stride: int, window: int) -> Any:
    """Input extent read over all strips of ``tile`` outputs (halos counted again).

    ``out`` outputs split into ``s = ceil(out/tile)`` strips; a strip of k outputs reads
    ``stride*(k-1) + window`` inputs, so all strips read ``stride*(out - s) + s*window``.

    >>> extent_read(5, 2, 1, 3)  # strips of 2, 2, 1 outputs read 4 + 4 + 3 inputs
    11
    """
    strips = ceil_div(out, tile)
    return stride * (out - strips) + strips * window


def span(tile: Any, stride: int, window: int) -> Any:
    """Inputs one strip of ``tile`` outputs reads: ``stride*(tile-1) + window``."""
    return stride * (tile - 1) + window


def rf_fits(hw: Hardware, layer: Layer, *, weights: int = 0, ifmaps: int = 0,
            psums: int = 0) -> list[str]:
    """Whether values of each operand (counts, not bits) fit the RF: unified or per pad."""
    prec = layer.precision
    bits = {"weight": weights * prec.weight_bits, "ifmap": ifmaps * prec.ifmap_bits,
            "psum": psums * prec.ofmap_bits}
    rf = hw.rf
    if rf.size_bytes is not None:
        total = sum(bits.values())
        return [] if total <= 8 * rf.size_bytes else [
            f"RF: {weights} weights + {ifmaps} ifmaps + {psums} psums = {total} bits > "
            f"{8 * rf.size_bytes} bits"]
    pads = {"weight": rf.weights_bytes, "ifmap": rf.ifmaps_bytes, "psum": rf.psums_bytes}
    return [f"RF {label} scratch pad: {used} bits > {8 * pads[label]} bits"  # type: ignore[operator]
            for label, used in bits.items() if used > 8 * pads[label]]  # type: ignore[operator]


def largest_chunk(total: int, cap: Any, step: Any) -> Any:
    """The largest chunk of ``total`` items that fits ``cap``: ``total``, or else the
    largest multiple of ``step`` (0 when not even ``step`` fits)."""
    return np.where(cap >= total, total, (cap // step) * step)


@dataclass(frozen=True)
class TiledSpec:
    """One dataflow as data: see the module docstring.

    Attributes:
        name: the ISCA 2016 name, e.g. ``"weight-stationary"``.
        mapping: the mapping class; built from the grid variables by keyword.
        terms: reads and writes per (level, operand) for variables given as ints or
            broadcastable arrays (the one implementation of the counts).
        grid: candidate variables (broadcastable arrays) and a mask of the legal ones,
            per slice; the search concatenates the slices.
        violations: why a mapping is illegal on a hardware (empty when legal).
        pes: active PEs of variables given as ints or arrays.
    """

    name: str
    mapping: Callable[..., Any]
    terms: Callable[..., Terms]
    grid: Callable[[Layer, Hardware], list[tuple[dict[str, Any], Any]]]
    violations: Callable[[Layer, Any, Hardware], list[str]]
    pes: Callable[..., Any]


def energy_of_terms(terms: Terms, units: UnitEnergies) -> Any:
    """Data-movement energy of access terms (ints or arrays) under ``units``."""
    reads, writes = terms
    return (sum(count * units.read[key] for key, count in reads.items())
            + sum(count * units.write[key] for key, count in writes.items()))


def counts_of(spec: TiledSpec, layer: Layer, variables: Mapping[str, int]) -> AccessCounts:
    """Exact integer counts of ``layer`` under integer ``variables``."""
    reads, writes = spec.terms(layer, **variables)
    return AccessCounts(reads={k: int(v) for k, v in reads.items()},
                        writes={k: int(v) for k, v in writes.items()}, macs=layer.macs)


def search(spec: TiledSpec, layer: Layer, hw: Hardware, units: UnitEnergies) -> SearchResult:
    """The legal mapping of least energy (ties: most active PEs, then grid order).

    Energies are in ``units``' unit (that of ``hw``).

    Raises:
        MappingError: no candidate is legal (`unmappable` says what the smallest breaks).
    """
    best: tuple[float, int, dict[str, int]] | None = None
    evaluated = 0
    for variables, ok in spec.grid(layer, hw):
        shape = np.broadcast_shapes(*(np.shape(v) for v in variables.values()), np.shape(ok))
        ok = np.broadcast_to(ok, shape).ravel()
        if not ok.any():
            continue
        flat = {k: np.broadcast_to(v, shape).ravel()[ok] for k, v in variables.items()}
        energy = np.broadcast_to(energy_of_terms(spec.terms(layer, **flat), units),
                                 flat[next(iter(flat))].shape)
        pes = np.broadcast_to(spec.pes(layer, **flat), energy.shape)
        k = int(np.lexsort((-pes, energy))[0])
        evaluated += len(energy)
        if best is None or (energy[k], -pes[k]) < (best[0], -best[1]):
            best = (float(energy[k]), int(pes[k]), {n: int(v[k]) for n, v in flat.items()})
    if best is None:
        raise unmappable(spec, layer, hw)
    mapping = spec.mapping(**best[2])
    assert not spec.violations(layer, mapping, hw), spec.violations(layer, mapping, hw)
    return SearchResult(mapping=mapping, energy=best[0], candidates=evaluated, mapped=layer)


def unmappable(spec: TiledSpec, layer: Layer, hw: Hardware) -> MappingError:
    """The error for a layer no mapping fits: what the smallest mapping breaks."""
    names = spec.mapping.__dataclass_fields__  # type: ignore[attr-defined]
    smallest = spec.mapping(**{n: 1 for n in names})
    why = "; ".join(spec.violations(layer, smallest, hw)) or "no candidate mapping fits"
    return MappingError(f"layer {layer.name!r} ({layer.kind.value}, C={layer.C} M={layer.M} "
                        f"H={layer.H} W={layer.W} R={layer.R} S={layer.S} N={layer.N}) cannot "
                        f"be mapped onto {hw.name!r} with the {spec.name} dataflow: {why}")


@dataclass(frozen=True)
class TiledDataflow:
    """A `nnjoules.energy.dataflows.base.Dataflow` plug-in made from a `TiledSpec`."""

    spec: TiledSpec
    cycles: Callable[[Layer, Any], int]

    @property
    def name(self) -> str:
        """The dataflow's ISCA 2016 name."""
        return self.spec.name

    def best_mapping(self, layer: Layer, hw: Hardware, compression: Compression,
                     gating: Gating, levels: CompressionLevels) -> SearchResult:
        """The legal mapping of least energy; a non-overlapping convolution that fits
        none is mapped as the equivalent FC layer (see `lower_to_fc`).

        Raises:
            MappingError: no mapping is legal; the message names the layer and why.
        """
        try:
            return search(self.spec, layer, hw,
                          unit_energies(layer, hw, compression, gating, levels))
        except MappingError:
            lowered = lower_to_fc(layer)
            if lowered is None:
                raise
            return search(self.spec, lowered, hw,
                          unit_energies(lowered, hw, compression, gating, levels))

    def count_accesses(self, layer: Layer, mapping: DataflowMapping) -> AccessCounts:
        """Exact reads and writes per level and operand of ``layer`` under ``mapping``."""
        if not isinstance(mapping, self.spec.mapping):  # type: ignore[arg-type]
            raise TypeError(f"{self.name} counts need its own mapping, got {mapping!r}")
        return counts_of(self.spec, layer, mapping.as_dict())

    def compute_cycles(self, layer: Layer, mapping: DataflowMapping, hw: Hardware) -> int:
        """Cycles if only the PE array limited it: passes x cycles per pass.

        One MAC per active PE per cycle; see each dataflow's ``cycles`` for what a pass
        is. ``hw`` is not needed (the mapping fixes the PEs used); it is in the
        signature all dataflows share.
        """
        del hw
        return self.cycles(layer, mapping)

"""Counts every output-stationary variant shares."""

from __future__ import annotations

from typing import Any

from nnjoules.energy.counts import Key
from nnjoules.energy.hardware import Hardware, Level
from nnjoules.energy.workload import Layer, Operand


def os_terms(layer: Layer, *, dram_ifmaps: Any, glb_weights: Any, glb_ifmaps: Any,
             ) -> tuple[dict[Key, Any], dict[Key, Any]]:
    """Reads and writes per (level, operand) given the three variant-specific counts.

    Shared: every weight read from DRAM once; every MAC gets its weight and its ifmap
    over the array; each ofmap value accumulates its C*R*S products in one PE's RF
    (C*R*S - 1 psum reads and writes) and is written to DRAM once.
    """
    ofmaps, macs = layer.num_ofmap_values, layer.macs
    rf_psums = ofmaps * (layer.C * layer.R * layer.S - 1)
    reads: dict[Key, Any] = {
        (Level.DRAM, Operand.WEIGHTS): layer.num_weights,
        (Level.DRAM, Operand.IFMAPS): dram_ifmaps,
        (Level.GLB, Operand.WEIGHTS): glb_weights,
        (Level.GLB, Operand.IFMAPS): glb_ifmaps,
        (Level.ARRAY, Operand.WEIGHTS): macs,
        (Level.ARRAY, Operand.IFMAPS): macs,
        (Level.RF, Operand.PSUMS): rf_psums,
    }
    writes: dict[Key, Any] = {(Level.DRAM, Operand.PSUMS): ofmaps,
                              (Level.RF, Operand.PSUMS): rf_psums}
    return reads, writes


def bounds(named: tuple[tuple[str, int, int], ...]) -> list[str]:
    """Variables outside 1..bound, as messages."""
    return [f"{name}={value} outside 1..{bound}" for name, value, bound in named
            if not 1 <= value <= bound]


def filter_bits(layer: Layer) -> int:
    """Bits of one filter's weights, ``C*R*S`` words: a GLB chunk of m filters holds m."""
    return layer.C * layer.R * layer.S * layer.precision.weight_bits


def glb_violations(layer: Layer, hw: Hardware, *, m: int, ifmap_bits: int, tile: str,
                   ) -> list[str]:
    """The GLB message when m filters' weights and the ifmap tile (``tile`` names its
    shape, e.g. ``n*C*R*w``; ``ifmap_bits`` its size in bits) exceed the GLB."""
    used = m * filter_bits(layer) + ifmap_bits
    if used <= hw.glb.size_bits:
        return []
    return [f"GLB: m*C*R*S weights + {tile} ifmaps = {used} bits > {hw.glb.size_bits} bits"]


def chunk_violations(layer: Layer, *, m: int, p: int) -> list[str]:
    """A GLB chunk of m filters must be all M filters or whole passes of p filters."""
    if m != layer.M and m % p:
        return [f"m={m} is neither M={layer.M} nor a multiple of p={p}"]
    return []

"""Counts every output-stationary variant shares."""

from __future__ import annotations

from typing import Any

from nnjoules.energy.counts import Key
from nnjoules.energy.hardware import Level
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

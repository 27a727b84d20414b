"""The weight-stationary (WS) dataflow of the ISCA 2016 comparison (Chen, Emer & Sze, §IV-A, §VI-A).

Each PE holds one weight in its RF; a region of R x S PEs holds one filter plane, and
the array holds ``r`` channels x ``t`` filters of them. Ifmap pixels are broadcast to
the PEs from DRAM (they bypass the GLB, as in the author's ``ws_flow.m``); psums are
summed across the S columns and the r channels of a region through the array and
stored in the GLB, one per filter row, between channel passes. Schedule, per group,
outermost first::

    for each filter pass of t filters:             # ifmaps re-read from DRAM per pass
      for each channel pass of r channels:         # weights loaded DRAM -> RF once
        for each strip of f ofmap columns:         # reads w = V*(f-1) + S_eff columns
          for each image, ofmap row, ofmap column of the strip:
            per filter row: c*S products summed across the array (c channels in the
            pass), then added to the ofmap value's psum in the GLB

Counts (exact for every shape; ``cols(f)`` is `tiling.extent_read` over columns,
``rows = U*(E-1) + R_eff``, ``O`` ofmap values, ``Wt`` weights): DRAM weights ``Wt``,
ifmaps ``G*N*C*rows*cols(f)*ceil(M/t)``, psum writes ``O``; GLB psums
``O*(R*ceil(C/r) - 1)`` reads and as many writes; array ifmaps ``MACs``, psums
``O*(C*R*S - R*ceil(C/r))``; RF weights ``MACs``. They equal ``ws_flow.m``'s when the
strips divide the ofmap.

Constraints (the author's): array ``r*t*R*S <= J``; GLB ``N*t*E*F`` psums plus
``r*t*V*(f-1)*(R-1)`` buffered ifmaps; RF one weight; ``r <= C``, ``t <= M``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnjoules.energy.counts import Key
from nnjoules.energy.dataflows.tiling import (
    TiledDataflow,
    TiledSpec,
    candidates,
    ceil_div,
    extent_read,
    rf_fits,
    span,
)
from nnjoules.energy.hardware import Hardware, Level
from nnjoules.energy.workload import Layer, Operand


@dataclass(frozen=True)
class WSMapping:
    """Weight-stationary mapping variables (all >= 1).

    Attributes:
        r: channels in the array at once (R x S PE regions on different channels).
        t: filters in the array at once.
        f: ofmap columns per strip.
    """

    r: int
    t: int
    f: int

    def as_dict(self) -> dict[str, int]:
        """The variables by name."""
        return {"r": self.r, "t": self.t, "f": self.f}

    def active_pes(self, layer: Layer) -> int:
        """PEs holding a weight: R * S * min(r, C) * min(t, M)."""
        return layer.R * layer.S * min(self.r, layer.C) * min(self.t, layer.M)


def terms(layer: Layer, *, r: Any, t: Any, f: Any) -> tuple[dict[Key, Any], dict[Key, Any]]:
    """Reads and writes per (level, operand) for variables as ints or arrays."""
    ofmaps, macs = layer.num_ofmap_values, layer.macs
    rows = layer.U * (layer.E - 1) + layer.R_eff
    cols = extent_read(layer.F, f, layer.stride[1], layer.S_eff)
    contributions = layer.R * ceil_div(layer.C, r)  # psums per ofmap value reaching the GLB
    glb_psums = ofmaps * (contributions - 1)
    reads: dict[Key, Any] = {
        (Level.DRAM, Operand.WEIGHTS): layer.num_weights,
        (Level.DRAM, Operand.IFMAPS): layer.G * layer.N * layer.C * rows * cols
        * ceil_div(layer.M, t),
        (Level.GLB, Operand.PSUMS): glb_psums,
        (Level.ARRAY, Operand.IFMAPS): macs,
        (Level.ARRAY, Operand.PSUMS): ofmaps * (layer.C * layer.R * layer.S - contributions),
        (Level.RF, Operand.WEIGHTS): macs,
    }
    writes: dict[Key, Any] = {(Level.DRAM, Operand.PSUMS): ofmaps,
                              (Level.GLB, Operand.PSUMS): glb_psums}
    return reads, writes


def pes(layer: Layer, *, r: Any, t: Any, f: Any) -> Any:
    """Active PEs of variables as ints or arrays."""
    del f
    return layer.R * layer.S * np.minimum(r, layer.C) * np.minimum(t, layer.M)


def glb_bits(layer: Layer, *, r: Any, t: Any, f: Any) -> Any:
    """GLB use: the psums of all N images for t filters, and the ifmap delay lines."""
    prec = layer.precision
    delay = r * t * (span(f, layer.stride[1], layer.S_eff) - layer.S_eff) * (layer.R - 1)
    return layer.N * t * layer.E * layer.F * prec.ofmap_bits + delay * prec.ifmap_bits


def violations(layer: Layer, mapping: WSMapping, hw: Hardware) -> list[str]:
    """Why ``mapping`` is illegal for ``layer`` on ``hw`` (empty when it is legal)."""
    mp = mapping
    found = [f"{name}={value} outside 1..{bound}" for name, value, bound in
             (("r", mp.r, layer.C), ("t", mp.t, layer.M), ("f", mp.f, layer.F))
             if not 1 <= value <= bound]
    used = mp.r * mp.t * layer.R * layer.S
    if used > hw.pe_array.num_pes:
        found.append(f"array: r*t*R*S = {used} PEs > {hw.pe_array.num_pes}")
    glb = int(glb_bits(layer, r=mp.r, t=mp.t, f=mp.f))
    if glb > hw.glb.size_bits:
        found.append(f"GLB: N*t*E*F psums + ifmap delay lines = {glb} bits > "
                     f"{hw.glb.size_bits} bits")
    return found + rf_fits(hw, layer, weights=1)


def grid(layer: Layer, hw: Hardware) -> list[tuple[dict[str, Any], Any]]:
    """Every candidate (r, t, f), broadcast, with the legal ones marked."""
    if rf_fits(hw, layer, weights=1):
        return []
    r = candidates(layer.C)[:, None, None]
    t = candidates(layer.M)[None, :, None]
    f = candidates(layer.F)[None, None, :]
    ok = (r * t * layer.R * layer.S <= hw.pe_array.num_pes) \
        & (glb_bits(layer, r=r, t=t, f=f) <= hw.glb.size_bits)
    return [({"r": r, "t": t, "f": f}, ok)]


def cycles(layer: Layer, mapping: WSMapping) -> int:
    """Passes x cycles per pass: each (filter pass, channel pass) keeps its weights for
    N*E*F cycles, one MAC per PE per cycle: ``G*ceil(M/t)*ceil(C/r)*N*E*F``."""
    return (layer.G * ceil_div(layer.M, mapping.t) * ceil_div(layer.C, mapping.r)
            * layer.N * layer.E * layer.F)


SPEC = TiledSpec(name="weight-stationary", mapping=WSMapping, terms=terms, grid=grid,
                 violations=violations, pes=pes)
WEIGHT_STATIONARY = TiledDataflow(spec=SPEC, cycles=cycles)

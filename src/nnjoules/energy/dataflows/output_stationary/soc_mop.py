"""OS-A: output stationary, single ofmap channel, multiple ofmap pixels (SOC-MOP).

The array holds an n x e x f block of one ofmap channel (n images, e rows, f columns),
one value per PE (the author's ``os_soc_mop_flow.m``). Schedule, per group::

    for each filter chunk of m filters:          # weights DRAM -> GLB once
      for each chunk of n images:
        for each ofmap tile of e rows x f columns:   # ifmap tile DRAM -> GLB, halos again
          for each filter of the chunk:              # tile and filter read from the GLB
            each PE: C*R*S MACs into its psum, then the ofmap value to DRAM

Counts (``rows(e)``, ``cols(f)`` from `tiling.extent_read`): DRAM ifmaps
``G*N*C*rows(e)*cols(f)*ceil(M/m)``; GLB weights ``Wt*ceil(N/n)*ceil(E/e)*ceil(F/f)``,
ifmaps ``G*N*C*rows(e)*cols(f)*M``; the rest as every OS variant (`common.os_terms`).
Constraints: array ``n*e*f <= J``; GLB ``m*C*R*S`` weights + ``n*C*h*w`` ifmaps; RF one
psum and ``U*(R+1)`` ifmaps (the author's ``U*R + U + 1`` words, for the shifts of
convolutional reuse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnjoules.energy.dataflows.output_stationary.common import (
    bounds,
    filter_bits,
    glb_violations,
    os_terms,
)
from nnjoules.energy.dataflows.tiling import (
    TiledDataflow,
    TiledSpec,
    candidates,
    ceil_div,
    extent_read,
    rf_fits,
    span,
)
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.workload import Layer


@dataclass(frozen=True)
class OSAMapping:
    """OS-A mapping variables (all >= 1).

    Attributes:
        m: filters whose weights one GLB chunk holds.
        n: images in the array at once.
        e: ofmap rows in the array at once.
        f: ofmap columns in the array at once.
    """

    m: int
    n: int
    e: int
    f: int

    def as_dict(self) -> dict[str, int]:
        """The variables by name."""
        return {"m": self.m, "n": self.n, "e": self.e, "f": self.f}

    def active_pes(self, layer: Layer) -> int:
        """PEs busy in a full pass: min(n, N) * min(e, E) * min(f, F)."""
        return min(self.n, layer.N) * min(self.e, layer.E) * min(self.f, layer.F)


def terms(layer: Layer, *, m: Any, n: Any, e: Any, f: Any) -> Any:
    """Reads and writes per (level, operand) for variables as ints or arrays."""
    ly = layer
    tile_reads = ly.G * ly.N * ly.C * extent_read(ly.E, e, ly.U, ly.R_eff) \
        * extent_read(ly.F, f, ly.stride[1], ly.S_eff)
    return os_terms(ly, dram_ifmaps=tile_reads * ceil_div(ly.M, m),
                    glb_weights=ly.num_weights * ceil_div(ly.N, n) * ceil_div(ly.E, e)
                    * ceil_div(ly.F, f),
                    glb_ifmaps=tile_reads * ly.M)


def pes(layer: Layer, *, m: Any, n: Any, e: Any, f: Any) -> Any:
    """Active PEs of variables as ints or arrays."""
    del m
    return np.minimum(n, layer.N) * np.minimum(e, layer.E) * np.minimum(f, layer.F)


def _ifmap_bits(layer: Layer, n: Any, e: Any, f: Any) -> Any:
    return n * layer.C * span(e, layer.U, layer.R_eff) \
        * span(f, layer.stride[1], layer.S_eff) * layer.precision.ifmap_bits


def _rf(layer: Layer, hw: Hardware) -> list[str]:
    return rf_fits(hw, layer, ifmaps=layer.U * (layer.R + 1), psums=1)


def violations(layer: Layer, mapping: OSAMapping, hw: Hardware) -> list[str]:
    """Why ``mapping`` is illegal for ``layer`` on ``hw`` (empty when it is legal)."""
    mp, ly = mapping, layer
    found = bounds((("m", mp.m, ly.M), ("n", mp.n, ly.N), ("e", mp.e, ly.E),
                    ("f", mp.f, ly.F)))
    if mp.n * mp.e * mp.f > hw.pe_array.num_pes:
        found.append(f"array: n*e*f = {mp.n * mp.e * mp.f} PEs > {hw.pe_array.num_pes}")
    found += glb_violations(ly, hw, m=mp.m, ifmap_bits=_ifmap_bits(ly, mp.n, mp.e, mp.f),
                            tile="n*C*h*w")
    return found + _rf(ly, hw)


def grid(layer: Layer, hw: Hardware) -> list[tuple[dict[str, Any], Any]]:
    """Candidates (n, e, f); m is the largest chunk the GLB holds beside the tile."""
    if _rf(layer, hw):
        return []
    n = candidates(layer.N)[:, None, None]
    e = candidates(layer.E)[None, :, None]
    f = candidates(layer.F)[None, None, :]
    m = np.minimum(layer.M, (hw.glb.size_bits - _ifmap_bits(layer, n, e, f))
                   // filter_bits(layer))
    return [({"m": m, "n": n, "e": e, "f": f}, (m >= 1) & (n * e * f <= hw.pe_array.num_pes))]


def cycles(layer: Layer, mapping: OSAMapping) -> int:
    """Passes x cycles per pass: each (filter, image chunk, ofmap tile) takes C*R*S
    cycles, one MAC per PE per cycle: ``G*M*ceil(N/n)*ceil(E/e)*ceil(F/f)*C*R*S``."""
    ly, mp = layer, mapping
    return (ly.G * ly.M * ceil_div(ly.N, mp.n) * ceil_div(ly.E, mp.e) * ceil_div(ly.F, mp.f)
            * ly.C * ly.R * ly.S)


SPEC = TiledSpec(name="output-stationary-a", mapping=OSAMapping, terms=terms, grid=grid,
                 violations=violations, pes=pes)
OS_A = TiledDataflow(spec=SPEC, cycles=cycles)

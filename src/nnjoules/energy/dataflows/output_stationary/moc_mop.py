"""OS-B: output stationary, multiple ofmap channels, multiple ofmap pixels (MOC-MOP).

The array holds p filters x n images x f columns of one ofmap row, one value per PE
(the author's ``os_moc_mop_flow.m``, its ``ver3``). Schedule, per group::

    for each filter chunk of m filters:          # weights DRAM -> GLB once
      for each chunk of n images:
        for each ofmap row:
          for each strip of f ofmap columns:     # R ifmap rows x w columns DRAM -> GLB
            for each filter pass of p filters:   # tile and p filters read from the GLB
              each PE: C*R*S MACs into its psum, then the ofmap value to DRAM

Counts (``cols(f)`` from `tiling.extent_read`): DRAM ifmaps
``G*N*C*R*E*cols(f)*ceil(M/m)``; GLB weights ``Wt*ceil(N/n)*E*ceil(F/f)``, ifmaps
``G*N*C*R*E*cols(f)*ceil(M/p)``; the rest as every OS variant (`common.os_terms`).
Constraints: array ``p*n*f <= J``; GLB ``m*C*R*S`` weights + ``n*C*R*w`` ifmaps; m a
multiple of p or M; RF one psum and ``U`` ifmaps (the author's ``U + 1`` words).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nnjoules.energy.dataflows.output_stationary.common import (
    bounds,
    chunk_violations,
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
    largest_chunk,
    rf_fits,
    span,
)
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.workload import Layer


@dataclass(frozen=True)
class OSBMapping:
    """OS-B mapping variables (all >= 1).

    Attributes:
        m: filters whose weights one GLB chunk holds (a multiple of p, or M).
        n: images in the array at once.
        p: filters in the array at once.
        f: ofmap columns in the array at once.
    """

    m: int
    n: int
    p: int
    f: int

    def as_dict(self) -> dict[str, int]:
        """The variables by name."""
        return {"m": self.m, "n": self.n, "p": self.p, "f": self.f}

    def active_pes(self, layer: Layer) -> int:
        """PEs busy in a full pass: min(p, M) * min(n, N) * min(f, F)."""
        return min(self.p, layer.M) * min(self.n, layer.N) * min(self.f, layer.F)


def terms(layer: Layer, *, m: Any, n: Any, p: Any, f: Any) -> Any:
    """Reads and writes per (level, operand) for variables as ints or arrays."""
    ly = layer
    tile_reads = ly.G * ly.N * ly.C * ly.R * ly.E * extent_read(ly.F, f, ly.stride[1],
                                                                 ly.S_eff)
    return os_terms(ly, dram_ifmaps=tile_reads * ceil_div(ly.M, m),
                    glb_weights=ly.num_weights * ceil_div(ly.N, n) * ly.E * ceil_div(ly.F, f),
                    glb_ifmaps=tile_reads * ceil_div(ly.M, p))


def pes(layer: Layer, *, m: Any, n: Any, p: Any, f: Any) -> Any:
    """Active PEs of variables as ints or arrays."""
    del m
    return np.minimum(p, layer.M) * np.minimum(n, layer.N) * np.minimum(f, layer.F)


def _ifmap_bits(layer: Layer, n: Any, f: Any) -> Any:
    return n * layer.C * layer.R * span(f, layer.stride[1], layer.S_eff) \
        * layer.precision.ifmap_bits


def _rf(layer: Layer, hw: Hardware) -> list[str]:
    return rf_fits(hw, layer, ifmaps=layer.U, psums=1)


def violations(layer: Layer, mapping: OSBMapping, hw: Hardware) -> list[str]:
    """Why ``mapping`` is illegal for ``layer`` on ``hw`` (empty when it is legal)."""
    mp, ly = mapping, layer
    found = bounds((("m", mp.m, ly.M), ("n", mp.n, ly.N), ("p", mp.p, ly.M),
                    ("f", mp.f, ly.F)))
    found += chunk_violations(ly, m=mp.m, p=mp.p)
    if mp.p * mp.n * mp.f > hw.pe_array.num_pes:
        found.append(f"array: p*n*f = {mp.p * mp.n * mp.f} PEs > {hw.pe_array.num_pes}")
    found += glb_violations(ly, hw, m=mp.m, ifmap_bits=_ifmap_bits(ly, mp.n, mp.f),
                            tile="n*C*R*w")
    return found + _rf(ly, hw)


def grid(layer: Layer, hw: Hardware) -> list[tuple[dict[str, Any], Any]]:
    """Candidates (n, f) x every p; m is the largest chunk the GLB holds."""
    if _rf(layer, hw):
        return []
    J = hw.pe_array.num_pes
    n = candidates(layer.N)[:, None, None]
    f = candidates(layer.F)[None, :, None]
    p = np.arange(1, min(layer.M, J) + 1)[None, None, :]
    m = largest_chunk(layer.M, (hw.glb.size_bits - _ifmap_bits(layer, n, f))
                      // filter_bits(layer), p)
    return [({"m": m, "n": n, "p": p, "f": f}, (m >= p) & (p * n * f <= J))]


def cycles(layer: Layer, mapping: OSBMapping) -> int:
    """Passes x cycles per pass: each (filter pass, image chunk, ofmap row, strip) takes
    C*R*S cycles: ``G*ceil(M/p)*ceil(N/n)*E*ceil(F/f)*C*R*S``."""
    ly, mp = layer, mapping
    return (ly.G * ceil_div(ly.M, mp.p) * ceil_div(ly.N, mp.n) * ly.E * ceil_div(ly.F, mp.f)
            * ly.C * ly.R * ly.S)


SPEC = TiledSpec(name="output-stationary-b", mapping=OSBMapping, terms=terms, grid=grid,
                 violations=violations, pes=pes)
OS_B = TiledDataflow(spec=SPEC, cycles=cycles)

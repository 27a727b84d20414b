"""OS-C: output stationary, multiple ofmap channels, single ofmap pixel (MOC-SOP).

The array holds one ofmap pixel of p filters x n images, one value per PE (the
author's ``os_moc_sop_flow.m``); no convolutional reuse. Schedule, per group::

    for each filter chunk of m filters:          # weights DRAM -> GLB once
      for each chunk of n images:
        for each ofmap pixel:                    # its C x R x S window DRAM -> GLB
          for each filter pass of p filters:     # window and p filters from the GLB
            each PE: C*R*S MACs into its psum, then the ofmap value to DRAM

Counts: DRAM ifmaps ``G*N*C*R*S*E*F*ceil(M/m)``; GLB weights ``Wt*ceil(N/n)*E*F``,
ifmaps ``G*N*C*R*S*E*F*ceil(M/p)``; the rest as every OS variant (`common.os_terms`).
Constraints: array ``n*p <= J``; GLB ``m*C*R*S`` weights + ``n*C*R*S`` ifmaps; m a
multiple of p or M; RF one psum.
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
    largest_chunk,
    rf_fits,
)
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.workload import Layer


@dataclass(frozen=True)
class OSCMapping:
    """OS-C mapping variables (all >= 1).

    Attributes:
        m: filters whose weights one GLB chunk holds (a multiple of p, or M).
        n: images in the array at once.
        p: filters in the array at once.
    """

    m: int
    n: int
    p: int

    def as_dict(self) -> dict[str, int]:
        """The variables by name."""
        return {"m": self.m, "n": self.n, "p": self.p}

    def active_pes(self, layer: Layer) -> int:
        """PEs busy in a full pass: min(n, N) * min(p, M)."""
        return min(self.n, layer.N) * min(self.p, layer.M)


def terms(layer: Layer, *, m: Any, n: Any, p: Any) -> Any:
    """Reads and writes per (level, operand) for variables as ints or arrays."""
    ly = layer
    windows = ly.G * ly.N * ly.C * ly.R * ly.S * ly.E * ly.F
    return os_terms(ly, dram_ifmaps=windows * ceil_div(ly.M, m),
                    glb_weights=ly.num_weights * ceil_div(ly.N, n) * ly.E * ly.F,
                    glb_ifmaps=windows * ceil_div(ly.M, p))


def pes(layer: Layer, *, m: Any, n: Any, p: Any) -> Any:
    """Active PEs of variables as ints or arrays."""
    del m
    return np.minimum(n, layer.N) * np.minimum(p, layer.M)


def _window_bits(layer: Layer) -> int:
    return layer.C * layer.R * layer.S * layer.precision.ifmap_bits


def _rf(layer: Layer, hw: Hardware) -> list[str]:
    return rf_fits(hw, layer, psums=1)


def violations(layer: Layer, mapping: OSCMapping, hw: Hardware) -> list[str]:
    """Why ``mapping`` is illegal for ``layer`` on ``hw`` (empty when it is legal)."""
    mp, ly = mapping, layer
    found = bounds((("m", mp.m, ly.M), ("n", mp.n, ly.N), ("p", mp.p, ly.M)))
    found += chunk_violations(ly, m=mp.m, p=mp.p)
    if mp.n * mp.p > hw.pe_array.num_pes:
        found.append(f"array: n*p = {mp.n * mp.p} PEs > {hw.pe_array.num_pes}")
    found += glb_violations(ly, hw, m=mp.m, ifmap_bits=mp.n * _window_bits(ly),
                            tile="n*C*R*S")
    return found + _rf(ly, hw)


def grid(layer: Layer, hw: Hardware) -> list[tuple[dict[str, Any], Any]]:
    """Candidates n x every p; m is the largest chunk the GLB holds."""
    if _rf(layer, hw):
        return []
    J = hw.pe_array.num_pes
    n = candidates(layer.N)[:, None]
    p = np.arange(1, min(layer.M, J) + 1)[None, :]
    m = largest_chunk(layer.M, (hw.glb.size_bits - n * _window_bits(layer))
                      // filter_bits(layer), p)
    return [({"m": m, "n": n, "p": p}, (m >= p) & (n * p <= J))]


def cycles(layer: Layer, mapping: OSCMapping) -> int:
    """Passes x cycles per pass: each (filter pass, image chunk, ofmap pixel) takes
    C*R*S cycles: ``G*ceil(M/p)*ceil(N/n)*E*F*C*R*S``."""
    ly, mp = layer, mapping
    return (ly.G * ceil_div(ly.M, mp.p) * ceil_div(ly.N, mp.n) * ly.E * ly.F
            * ly.C * ly.R * ly.S)


SPEC = TiledSpec(name="output-stationary-c", mapping=OSCMapping, terms=terms, grid=grid,
                 violations=violations, pes=pes)
OS_C = TiledDataflow(spec=SPEC, cycles=cycles)

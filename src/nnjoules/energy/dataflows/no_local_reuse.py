"""The no-local-reuse (NLR) dataflow of the ISCA 2016 comparison (Chen, Emer & Sze, §IV-C, §VI-A).

The PEs are bare ALUs with no RF. The array is ``q`` groups (channels) of ``p`` PEs
(filters): the PEs of a group share one ifmap pixel read from the GLB, each reads its
own weight from the GLB, and the products of the q groups are summed through the array;
psums wait in the GLB between contributions (the author's ``nlr_flow.m``). Schedule,
per group, outermost first::

    for each chunk of n images:
      for each ofmap tile of e rows x f columns:        # ifmap tile h x w, halos again
        for each filter chunk of m filters:             # weights re-read per tile
          for each channel pass of q channels:          # DRAM: ifmap and weight tiles
            for each filter pass of p filters:
              for each filter position (ry, sx), image, ofmap pixel of the tile:
                per channel: one GLB ifmap read, sent to p PEs; each PE reads its weight
                from the GLB; q products summed across the array, added to the psum
                of the ofmap value in the GLB

Counts (exact for every shape; ``rows(e)``, ``cols(f)`` are `tiling.extent_read`):
DRAM weights ``Wt*ceil(N/n)*ceil(E/e)*ceil(F/f)``, ifmaps
``G*N*C*rows(e)*cols(f)*ceil(M/m)``, psum writes ``O``; GLB weights ``MACs``, ifmaps
``G*N*C*E*F*R*S*ceil(M/p)``, psums ``O*(ceil(C/q)*R*S - 1)`` reads and as many writes;
array ifmaps ``MACs``, psums ``O*(C*R*S - ceil(C/q)*R*S)``; RF none.

Constraints (the author's, with the filter chunk a multiple of p as for RS): array
``p*q <= J``; GLB ``n*q*h*w`` ifmaps + ``m*q*R*S`` weights + ``n*m*e*f`` psums with
``h = U*(e-1) + R_eff``, ``w = V*(f-1) + S_eff``; m a multiple of p or equal to M.
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
    largest_chunk,
    span,
)
from nnjoules.energy.hardware import Hardware, Level
from nnjoules.energy.workload import Layer, Operand


@dataclass(frozen=True)
class NLRMapping:
    """No-local-reuse mapping variables (all >= 1).

    Attributes:
        n: images per chunk.
        m: filters whose weights and psums one GLB chunk holds (a multiple of p, or M).
        p: filters in the array at once (PEs sharing an ifmap pixel).
        q: channels in the array at once (groups of p PEs).
        e: ofmap rows per tile.
        f: ofmap columns per tile.
    """

    n: int
    m: int
    p: int
    q: int
    e: int
    f: int

    def as_dict(self) -> dict[str, int]:
        """The variables by name."""
        return {"n": self.n, "m": self.m, "p": self.p, "q": self.q, "e": self.e, "f": self.f}

    def active_pes(self, layer: Layer) -> int:
        """PEs busy in a full pass: min(p, M) * min(q, C)."""
        return min(self.p, layer.M) * min(self.q, layer.C)


def terms(layer: Layer, *, n: Any, m: Any, p: Any, q: Any, e: Any, f: Any,
          ) -> tuple[dict[Key, Any], dict[Key, Any]]:
    """Reads and writes per (level, operand) for variables as ints or arrays."""
    ly, ofmaps, macs = layer, layer.num_ofmap_values, layer.macs
    rows = extent_read(ly.E, e, ly.U, ly.R_eff)
    cols = extent_read(ly.F, f, ly.stride[1], ly.S_eff)
    contributions = ceil_div(ly.C, q) * ly.R * ly.S
    glb_psums = ofmaps * (contributions - 1)
    reads: dict[Key, Any] = {
        (Level.DRAM, Operand.WEIGHTS): ly.num_weights * ceil_div(ly.N, n) * ceil_div(ly.E, e)
        * ceil_div(ly.F, f),
        (Level.DRAM, Operand.IFMAPS): ly.G * ly.N * ly.C * rows * cols * ceil_div(ly.M, m),
        (Level.GLB, Operand.WEIGHTS): macs,
        (Level.GLB, Operand.IFMAPS): ly.G * ly.N * ly.C * ly.E * ly.F * ly.R * ly.S
        * ceil_div(ly.M, p),
        (Level.GLB, Operand.PSUMS): glb_psums,
        (Level.ARRAY, Operand.IFMAPS): macs,
        (Level.ARRAY, Operand.PSUMS): ofmaps * (ly.C * ly.R * ly.S - contributions),
    }
    writes: dict[Key, Any] = {(Level.DRAM, Operand.PSUMS): ofmaps,
                              (Level.GLB, Operand.PSUMS): glb_psums}
    return reads, writes


def pes(layer: Layer, *, n: Any, m: Any, p: Any, q: Any, e: Any, f: Any) -> Any:
    """Active PEs of variables as ints or arrays."""
    del n, m, e, f
    return np.minimum(p, layer.M) * np.minimum(q, layer.C)


def _tile_bits(layer: Layer, n: Any, q: Any, e: Any, f: Any) -> tuple[Any, Any]:
    """GLB bits of the ifmap tile, and per filter of the chunk (weights + psums)."""
    prec = layer.precision
    ifmaps = n * q * span(e, layer.U, layer.R_eff) * span(f, layer.stride[1], layer.S_eff) \
        * prec.ifmap_bits
    per_filter = q * layer.R * layer.S * prec.weight_bits + n * e * f * prec.ofmap_bits
    return ifmaps, per_filter


def violations(layer: Layer, mapping: NLRMapping, hw: Hardware) -> list[str]:
    """Why ``mapping`` is illegal for ``layer`` on ``hw`` (empty when it is legal)."""
    mp, ly = mapping, layer
    found = [f"{name}={value} outside 1..{bound}" for name, value, bound in
             (("n", mp.n, ly.N), ("m", mp.m, ly.M), ("p", mp.p, ly.M), ("q", mp.q, ly.C),
              ("e", mp.e, ly.E), ("f", mp.f, ly.F)) if not 1 <= value <= bound]
    if mp.m != ly.M and mp.m % mp.p:
        found.append(f"m={mp.m} is neither M={ly.M} nor a multiple of p={mp.p}")
    if mp.p * mp.q > hw.pe_array.num_pes:
        found.append(f"array: p*q = {mp.p * mp.q} PEs > {hw.pe_array.num_pes}")
    ifmaps, per_filter = _tile_bits(ly, mp.n, mp.q, mp.e, mp.f)
    if ifmaps + mp.m * per_filter > hw.glb.size_bits:
        found.append(f"GLB: n*q*h*w ifmaps + m*q*R*S weights + n*m*e*f psums = "
                     f"{ifmaps + mp.m * per_filter} bits > {hw.glb.size_bits} bits")
    return found


def grid(layer: Layer, hw: Hardware) -> list[tuple[dict[str, Any], Any]]:
    """Candidates per image chunk n: (e, f) x every (q, p) pair that fits the array.

    p is enumerated fully (m must be a multiple of it); m is the largest chunk that
    fits the GLB beside the tile, which minimises ceil(M/m) and touches nothing else.
    """
    J = hw.pe_array.num_pes
    qs, ps = [], []
    for q in candidates(layer.C):
        if q > J:
            break
        p = np.arange(1, min(layer.M, J // int(q)) + 1)
        qs.append(np.full(p.shape, q))
        ps.append(p)
    if not qs:
        return []
    q, p = np.concatenate(qs)[None, None, :], np.concatenate(ps)[None, None, :]
    e = candidates(layer.E)[:, None, None]
    f = candidates(layer.F)[None, :, None]
    slices = []
    for n in candidates(layer.N):
        ifmaps, per_filter = _tile_bits(layer, int(n), q, e, f)
        m = largest_chunk(layer.M, (hw.glb.size_bits - ifmaps) // per_filter, p)
        slices.append(({"n": n, "m": m, "p": p, "q": q, "e": e, "f": f}, m >= p))
    return slices


def cycles(layer: Layer, mapping: NLRMapping) -> int:
    """Passes x cycles per pass: each (filter pass, channel pass) runs one MAC per PE per
    cycle over every image, ofmap pixel and filter position:
    ``G*ceil(M/p)*ceil(C/q)*N*E*F*R*S``."""
    ly = layer
    return (ly.G * ceil_div(ly.M, mapping.p) * ceil_div(ly.C, mapping.q)
            * ly.N * ly.E * ly.F * ly.R * ly.S)


SPEC = TiledSpec(name="no-local-reuse", mapping=NLRMapping, terms=terms, grid=grid,
                 violations=violations, pes=pes)
NO_LOCAL_REUSE = TiledDataflow(spec=SPEC, cycles=cycles)

"""The row-stationary (RS) dataflow: its mapping variables and which mappings are legal.

A `Mapping` holds the seven variables of Yu-Hsin Chen's RS model (``rs_flow.m``; the
JSSC paper calls ``f`` **e**). The schedule they describe, per group, outermost first::

    for each batch chunk of n ifmaps:                 # weights re-read from DRAM per chunk
      for each strip of e ofmap rows:                 # a PE set is R x e PEs
        for each filter chunk of m filters:           # psums of m filters stay in the GLB
          for each channel pass of q*r channels:      # ifmap tile (n, q*r, w rows, W) in GLB
            for each filter pass of p*t filters:      # t PE sets on filters, r on channels
              each PE: p filters x q channels of one filter row in its RF;
              the ifmap row slides through, p psums accumulate in place

Filters are split into ``ceil(M/p)`` groups of p; a pass takes t groups; a chunk takes
``m / (p t)`` passes, so m is a multiple of p*t or equals M. Channels are split the
same way into sets of q, r sets a pass. Final tiles may be partial: the counts in
:mod:`nnjoules.energy.dataflows.row_stationary.access` are exact for any shape, and
equal the author's closed
form whenever the tiles divide the layer evenly.

Constraints (the author's five, generalised to partial tiles and split scratch pads):

1. GLB: ``n*m'*e*F`` psums + ``n*min(q*r, C)*w*W`` ifmaps fit, with ``m' = min(m, M)``
   and ``w = U*(e-1) + R_eff`` ifmap rows, counted in bits at each operand's width;
2. array: ``R*e*r*t <= J`` PEs;
3. RF: ``p*q*S`` weights + ``q*S_eff`` ifmaps + ``p`` psums fit the unified RF, or each
   fits its own scratch pad;
4. ``r <= ceil(C/q)`` (the author's ``q*r <= C``, allowing a partial last set);
5. ``t <= ceil(M/p)`` and m a multiple of p*t or equal to M (the author's ``p*t <= m``).

Where a level keeps weights or ifmaps compressed, a tile takes the bits of its worst-case
compressed chunk instead (`nnjoules.energy.footprint`: weights bounded by their densest
filter row, ifmaps dense), never more than raw; the default `RAW` storage is the dense
rule above.
"""

from __future__ import annotations

from dataclasses import dataclass

from nnjoules.energy.footprint import RAW, Storage, ifmap_tile_bits, weight_tile_bits
from nnjoules.energy.hardware import Hardware, Level
from nnjoules.energy.workload import Layer


def ceil_div(a: int, b: int) -> int:
    """Ceiling of a / b for positive integers."""
    return -(-a // b)


@dataclass(frozen=True)
class Mapping:
    """Row-stationary mapping variables (all >= 1).

    Attributes:
        m: filters whose psums one GLB chunk holds (a multiple of p*t, or M).
        n: ifmaps (batch items) processed together.
        e: ofmap rows per PE set, i.e. the width of a PE set.
        p: filters interleaved in one PE.
        q: channels interleaved in one PE.
        r: PE sets working on different channels.
        t: PE sets working on different filters.
    """

    m: int
    n: int
    e: int
    p: int
    q: int
    r: int
    t: int

    def as_dict(self) -> dict[str, int]:
        """The seven variables by name."""
        return {"m": self.m, "n": self.n, "e": self.e, "p": self.p, "q": self.q,
                "r": self.r, "t": self.t}

    def active_pes(self, layer: Layer) -> int:
        """PEs busy in a full pass: R * e * r * t."""
        return layer.R * self.e * self.r * self.t


def ifmap_rows(layer: Layer, e: int) -> int:
    """Ifmap rows that a strip of ``e`` ofmap rows reads: U*(e-1) + R_eff."""
    return layer.U * (e - 1) + layer.R_eff


def glb_bits(layer: Layer, mapping: Mapping, storage: Storage = RAW) -> int:
    """GLB bits the mapping needs: its psum tile plus its ifmap tile (as ``storage`` keeps it)."""
    m_eff = min(mapping.m, layer.M)
    psum_tile = mapping.n * m_eff * mapping.e * layer.F
    ifmap_tile = mapping.n * min(mapping.q * mapping.r, layer.C) * ifmap_rows(layer, mapping.e) \
        * layer.W
    return psum_tile * layer.precision.ofmap_bits \
        + ifmap_tile_bits(layer, ifmap_tile, Level.GLB, storage)


def rf_bits(layer: Layer, mapping: Mapping, storage: Storage = RAW) -> tuple[int, int, int]:
    """Bits each PE holds: (weights, ifmaps, psums), as ``storage`` keeps them."""
    return (weight_tile_bits(layer, mapping.p * mapping.q, Level.RF, storage),
            ifmap_tile_bits(layer, mapping.q * layer.S_eff, Level.RF, storage),
            mapping.p * layer.precision.ofmap_bits)


def violations(layer: Layer, mapping: Mapping, hw: Hardware,
               storage: Storage = RAW) -> list[str]:
    """Every constraint ``mapping`` breaks for ``layer`` on ``hw``; empty when legal.

    ``storage`` says which tiles are kept compressed (`Storage.of` the cost rules).
    """
    found: list[str] = []
    mp = mapping
    for name, value, upper in (("n", mp.n, layer.N), ("e", mp.e, layer.E), ("p", mp.p, layer.M),
                               ("q", mp.q, layer.C), ("m", mp.m, layer.M)):
        if not 1 <= value <= upper:
            found.append(f"{name}={value} outside [1, {upper}]")
    if mp.r < 1 or mp.r > ceil_div(layer.C, mp.q):
        found.append(f"r={mp.r} outside [1, ceil(C/q)={ceil_div(layer.C, mp.q)}]")
    if mp.t < 1 or mp.t > ceil_div(layer.M, mp.p):
        found.append(f"t={mp.t} outside [1, ceil(M/p)={ceil_div(layer.M, mp.p)}]")
    if found:
        return found
    if mp.m != layer.M and mp.m % (mp.p * mp.t) != 0:
        found.append(f"m={mp.m} is neither M={layer.M} nor a multiple of p*t={mp.p * mp.t}")
    need = glb_bits(layer, mp, storage)
    if need > hw.glb.size_bits:
        found.append(f"GLB: tiles need {need} bits > {hw.glb.size_bits} bits")
    pes = mp.active_pes(layer)
    if pes > hw.pe_array.num_pes:
        found.append(f"array: R*e*r*t = {pes} PEs > {hw.pe_array.num_pes}")
    found.extend(rf_violations(layer, mp, hw, storage))
    return found


def rf_violations(layer: Layer, mapping: Mapping, hw: Hardware,
                  storage: Storage = RAW) -> list[str]:
    """The RF constraint: unified capacity, or each scratch pad's."""
    w_bits, i_bits, p_bits = rf_bits(layer, mapping, storage)
    rf = hw.rf
    if rf.size_bytes is not None:
        total = w_bits + i_bits + p_bits
        if total > 8 * rf.size_bytes:
            return [f"RF: p*q*S weights + q*S ifmaps + p psums = {total} bits > "
                    f"{8 * rf.size_bytes} bits"]
        return []
    found = []
    for label, used, size in (("weight", w_bits, rf.weights_bytes),
                              ("ifmap", i_bits, rf.ifmaps_bytes),
                              ("psum", p_bits, rf.psums_bytes)):
        assert size is not None  # a split RF has all three sizes (checked in RegisterFile)
        if used > 8 * size:
            found.append(f"RF {label} scratch pad: {used} bits > {8 * size} bits")
    return found

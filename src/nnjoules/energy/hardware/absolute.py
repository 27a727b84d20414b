"""Presets whose costs are in picojoules, each with its source and its assumptions.

* ``eyeriss-65nm-pj``: the `eyeriss` preset's normalised 65 nm costs times an estimate of
  the energy of one 16-bit MAC at 65 nm, `MAC_PJ_65NM`. The Eyeriss papers give only
  normalised costs (ISCA 2016 Table IV, "extracted from a commercial 65nm process"); we
  found no published absolute figure for that process. The estimate: Horowitz
  (ISSCC 2014, 45 nm, 0.9 V) gives an 8-bit integer multiply 0.2 pJ and a 32-bit one
  3.1 pJ, adds 0.03 and 0.1 pJ; their geometric means, 0.79 and 0.055 pJ, make a 16-bit
  MAC of 0.84 pJ; scaled to 65 nm at the chip's 1 V by C V^2 (x 65/45 x (1/0.9)^2 =
  x 1.78) it is 1.5 pJ. Cross-check: a DRAM access then costs 200 x 1.5 = 300 pJ per
  16 bits (19 pJ/bit), within Horowitz's 1.3-2.6 nJ per 64 bits (20-41 pJ/bit).
* ``eyeriss-45nm-int8``, ``-int16``, ``-int32``: the Eyeriss organisation (12 x 14 PEs,
  224/12/24-word scratch pads, a GLB of 55,296 words = 108 kB at 16 bits) at 8, 16 or
  32 bits, with Horowitz's 45 nm table: MAC = multiply + add (8-bit 0.2 + 0.03,
  32-bit 3.1 + 0.1 pJ; 16-bit the geometric means above); SRAM per 64-bit access
  10 pJ x sqrt(size / 8 kB), the curve through his 8 kB (10 pJ) and 32 kB (20 pJ)
  points (it gives 113 pJ at his 1 MB point, listed as 100 pJ); the three scratch pads
  are priced as one register file of their total size (0.5 kB at 16 bits, the ISCA 2016
  RF); DRAM 1.3 nJ per 64 bits (the low end of his 1.3-2.6 nJ). His table has no
  inter-PE wire cost: an array hop is taken as twice an RF access, the ISCA 2016 ratio.

Every preset keeps the Eyeriss clock and bandwidths (see `nnjoules.energy.hardware.spec`).
"""

from __future__ import annotations

import math

from nnjoules.energy.hardware.spec import (
    AccessCost,
    EnergyUnit,
    GlobalBuffer,
    Hardware,
    PEArray,
    RegisterFile,
    eyeriss,
)

MAC_PJ_65NM = 1.5  # one 16-bit MAC at 65 nm, 1 V: estimated, see the module docstring

# Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm, 0.9 V, integer arithmetic.
HOROWITZ_MAC_PJ = {8: 0.2 + 0.03, 16: math.sqrt(0.2 * 3.1) + math.sqrt(0.03 * 0.1),
                   32: 3.1 + 0.1}
HOROWITZ_DRAM_PJ_PER_64_BITS = 1300.0
HOROWITZ_SRAM_PJ_8KB = 10.0  # per 64-bit access of an 8 kB SRAM
EYERISS_WORDS = {"glb": 108 * 1024 // 2, "weights": 224, "ifmaps": 12, "psums": 24}


def sram_pj_per_64_bits(size_bytes: int) -> float:
    """Energy of one 64-bit access of an SRAM of ``size_bytes``, in pJ (45 nm fit).

    >>> sram_pj_per_64_bits(8 * 1024), sram_pj_per_64_bits(32 * 1024)
    (10.0, 20.0)
    """
    return HOROWITZ_SRAM_PJ_8KB * math.sqrt(size_bytes / (8 * 1024))


def _scaled(cost: AccessCost, scale: float) -> AccessCost:
    return AccessCost(read=cost.read * scale, write=cost.write * scale,
                      access_bits=cost.access_bits)


def eyeriss_65nm_pj() -> Hardware:
    """The `eyeriss` preset with every cost times `MAC_PJ_65NM`, in pJ."""
    base, k = eyeriss(), MAC_PJ_65NM
    rf = base.rf
    return Hardware(
        name="eyeriss-65nm-pj", unit=EnergyUnit.PJ, word_bits=base.word_bits,
        pe_array=base.pe_array, dram=_scaled(base.dram, k),
        glb=GlobalBuffer(size_bytes=base.glb.size_bytes, cost=_scaled(base.glb.cost, k)),
        array=_scaled(base.array, k),
        rf=RegisterFile(weights=_scaled(rf.weights, k), ifmaps=_scaled(rf.ifmaps, k),
                        psums=_scaled(rf.psums, k), weights_bytes=rf.weights_bytes,
                        ifmaps_bytes=rf.ifmaps_bytes, psums_bytes=rf.psums_bytes),
        mac=base.mac * k, clock_mhz=base.clock_mhz,
        dram_bits_per_cycle=base.dram_bits_per_cycle,
        glb_bits_per_cycle=base.glb_bits_per_cycle)


def eyeriss_45nm(bits: int) -> Hardware:
    """The Eyeriss organisation at ``bits`` (8, 16 or 32) with Horowitz's 45 nm costs."""
    word_bytes = bits // 8
    pads = {p: EYERISS_WORDS[p] * word_bytes for p in ("weights", "ifmaps", "psums")}
    glb_bytes = EYERISS_WORDS["glb"] * word_bytes
    rf_pj = sram_pj_per_64_bits(sum(pads.values()))
    rf_cost = AccessCost(read=rf_pj, write=rf_pj, access_bits=64)
    glb_pj = sram_pj_per_64_bits(glb_bytes)
    dram = HOROWITZ_DRAM_PJ_PER_64_BITS
    return Hardware(
        name=f"eyeriss-45nm-int{bits}", unit=EnergyUnit.PJ, word_bits=bits,
        pe_array=PEArray(rows=12, cols=14),
        dram=AccessCost(read=dram, write=dram, access_bits=64),
        glb=GlobalBuffer(size_bytes=glb_bytes,
                         cost=AccessCost(read=glb_pj, write=glb_pj, access_bits=64)),
        array=AccessCost(read=2 * rf_pj, write=2 * rf_pj, access_bits=64),
        rf=RegisterFile(weights=rf_cost, ifmaps=rf_cost, psums=rf_cost,
                        weights_bytes=pads["weights"], ifmaps_bytes=pads["ifmaps"],
                        psums_bytes=pads["psums"]),
        mac=HOROWITZ_MAC_PJ[bits])


ABSOLUTE_PRESETS = {
    "eyeriss-65nm-pj": eyeriss_65nm_pj,
    "eyeriss-45nm-int8": lambda: eyeriss_45nm(8),
    "eyeriss-45nm-int16": lambda: eyeriss_45nm(16),
    "eyeriss-45nm-int32": lambda: eyeriss_45nm(32),
}

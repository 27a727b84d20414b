"""A systolic-array preset: ``systolic-32x32``, an edge-NPU-like int8 accelerator.

For the ``systolic-ws`` and ``systolic-os`` dataflows (which also run any other preset).
Its organisation is SCALE-Sim's default accelerator scaled to an edge NPU, its costs are
Horowitz's 45 nm table as in ``eyeriss-45nm-int8`` (:mod:`nnjoules.energy.hardware.absolute`):

* 32 x 32 int8 MACs; 8-bit words (SCALE-Sim's one-byte word).
* SRAM 640 kB: the systolic dataflows split it 2:2:1 into ifmap, filter and ofmap SRAMs
  of 256, 256 and 128 kB, SCALE-Sim's default ``scale_config`` sizes. One GLB cost for
  all three: a 64-bit access of a 256 kB SRAM, 10 pJ x sqrt(256/8) = 56.6 pJ (the
  ifmap and filter SRAMs take most accesses; the 128 kB ofmap SRAM would cost 40 pJ).
* PE registers: one weight byte, one ifmap byte and a 32-bit accumulator (6 bytes),
  priced on the same SRAM curve (0.27 pJ per 64 bits; Horowitz gives no register cost);
  a hop between neighbouring PEs is twice that, the ISCA 2016 array/RF ratio.
* MAC 0.2 + 0.03 pJ (8-bit multiply + add); DRAM 1.3 nJ per 64 bits.
* Time (our assumptions, an edge NPU's order of magnitude, not a product's datasheet):
  1 GHz; DRAM 128 bits per cycle (16 GB/s, one LPDDR4X x32 channel's order); SRAM 1024
  bits per cycle (a WS array reads 32 ifmaps and writes 32 psums a cycle, 512 bits at
  8 bits, plus weight loads).
"""

from __future__ import annotations

from nnjoules.energy.hardware.absolute import (
    HOROWITZ_DRAM_PJ_PER_64_BITS,
    HOROWITZ_MAC_PJ,
    sram_pj_per_64_bits,
)
from nnjoules.energy.hardware.spec import (
    AccessCost,
    EnergyUnit,
    GlobalBuffer,
    Hardware,
    PEArray,
    RegisterFile,
)

SRAM_KB = (256, 256, 128)  # ifmap, filter, ofmap: SCALE-Sim's default scale_config
PE_REGISTER_BYTES = {"weights": 1, "ifmaps": 1, "psums": 4}


def _pj64(pj: float) -> AccessCost:
    return AccessCost(read=pj, write=pj, access_bits=64)


def systolic_32x32() -> Hardware:
    """The ``systolic-32x32`` preset (see the module docstring for every value's source)."""
    register = sram_pj_per_64_bits(sum(PE_REGISTER_BYTES.values()))
    return Hardware(
        name="systolic-32x32", unit=EnergyUnit.PJ, word_bits=8,
        pe_array=PEArray(rows=32, cols=32),
        dram=_pj64(HOROWITZ_DRAM_PJ_PER_64_BITS),
        glb=GlobalBuffer(size_bytes=sum(SRAM_KB) * 1024,
                         cost=_pj64(sram_pj_per_64_bits(SRAM_KB[0] * 1024))),
        array=_pj64(2 * register),
        rf=RegisterFile(weights=_pj64(register), ifmaps=_pj64(register), psums=_pj64(register),
                        weights_bytes=PE_REGISTER_BYTES["weights"],
                        ifmaps_bytes=PE_REGISTER_BYTES["ifmaps"],
                        psums_bytes=PE_REGISTER_BYTES["psums"]),
        mac=HOROWITZ_MAC_PJ[8], clock_mhz=1000.0, dram_bits_per_cycle=128.0,
        glb_bits_per_cycle=1024.0)


SYSTOLIC_PRESETS = {"systolic-32x32": systolic_32x32}

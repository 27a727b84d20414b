"""Time: cycles per layer, whether compute or bandwidth bounds it, latency, power.

A layer's cycles are the largest of

* its **compute cycles**, the PE array's alone (`Dataflow.compute_cycles`: passes x
  the cycles of a pass, fill and drain included), and
* for DRAM and for the GLB, the **bits moved** through the level (its counted reads and
  writes, each at the bits it is costed at: compressed where the energy is) divided by
  the level's **bandwidth** in bits per core cycle (``Hardware.dram_bits_per_cycle``,
  ``glb_bits_per_cycle``; reads and writes share it), rounded up.

Memory traffic and computation overlap (Eyeriss streams data from DRAM into the buffer
while the array computes, ISSCC 2016), so the slowest of the three sets the time and the
layer is *bound* by it: ``compute``, ``dram`` or ``glb`` (ties go to compute, then
DRAM). Layers run one after another. Values filled from DRAM into the GLB are charged
to the DRAM link only (the accounting of `nnjoules.energy.counts`: a move is one access,
at the level it leaves).

Over a network: latency = total cycles / clock; throughput = input items / latency;
average power = energy / latency (in the hardware's energy unit per second: watts
only when the unit is pJ; normalised units per second otherwise).

Not modelled: control and configuration time between layers, DRAM latency and
row-buffer effects, NoC contention, pooling and other layers that are not estimated.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from nnjoules.energy.cost import Compression, CompressionLevels, bits_per_value
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.hardware import OPERANDS, EnergyUnit, Hardware, Level
from nnjoules.energy.workload import Layer

PJ_PER_MJ = 1e9  # picojoules in a millijoule
PJ_PER_S_PER_MW = 1e9  # picojoules per second in a milliwatt


class Bound(enum.StrEnum):
    """What sets a layer's time."""

    COMPUTE = "compute"
    DRAM = "dram"
    GLB = "glb"


@dataclass(frozen=True)
class LayerTiming:
    """Cycles of one layer: the PE array's and each level's transfer time.

    Attributes:
        compute_cycles: cycles if only the PE array limited the layer.
        dram_bits: bits moved to and from DRAM.
        glb_bits: bits moved out of and back into the GLB.
        dram_cycles: ``dram_bits`` / the DRAM bandwidth, rounded up.
        glb_cycles: ``glb_bits`` / the GLB bandwidth, rounded up.
    """

    compute_cycles: int
    dram_bits: float
    glb_bits: float
    dram_cycles: int
    glb_cycles: int

    @property
    def cycles(self) -> int:
        """The layer's cycles: the largest of compute, DRAM and GLB cycles."""
        return max(self.compute_cycles, self.dram_cycles, self.glb_cycles)

    @property
    def bound(self) -> Bound:
        """Which of compute, DRAM and GLB sets the cycles (ties: compute first)."""
        for bound, cycles in ((Bound.COMPUTE, self.compute_cycles),
                              (Bound.DRAM, self.dram_cycles), (Bound.GLB, self.glb_cycles)):
            if cycles == self.cycles:
                return bound
        raise AssertionError("unreachable: cycles is one of the three")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see ``docs/report-json.md``)."""
        return {"cycles": self.cycles, "bound": self.bound.value,
                "compute_cycles": self.compute_cycles, "dram_cycles": self.dram_cycles,
                "glb_cycles": self.glb_cycles, "dram_bits": self.dram_bits,
                "glb_bits": self.glb_bits}


def traffic_bits(counts: AccessCounts, layer: Layer, level: Level, compression: Compression,
                 levels: CompressionLevels) -> float:
    """Bits read from and written to ``level``, each value at the bits it is costed at."""
    return sum((counts.read(level, op) + counts.write(level, op))
               * bits_per_value(layer, level, op, compression, levels) for op in OPERANDS)


def layer_timing(compute_cycles: int, counts: AccessCounts, layer: Layer, hw: Hardware,
                 compression: Compression = Compression.SIGNIFICANCE_MAP,
                 levels: CompressionLevels = CompressionLevels.DRAM) -> LayerTiming:
    """The timing of ``layer`` (as mapped: its FC lowering, if any) from its counts.

    Example: 1,000 compute cycles; 3 x 16-bit DRAM reads and 1 write, uncompressed, are
    64 bits: at 19.2 bits a cycle, 4 cycles; the layer is compute-bound.

    >>> from nnjoules.energy.hardware import eyeriss
    >>> from nnjoules.energy.workload import LayerKind, Operand
    >>> one = Layer("one", LayerKind.FC, N=1, M=1, C=1, H=1, W=1, R=1, S=1, E=1, F=1)
    >>> counts = AccessCounts(reads={(Level.DRAM, Operand.IFMAPS): 3},
    ...                       writes={(Level.DRAM, Operand.PSUMS): 1}, macs=1)
    >>> t = layer_timing(1000, counts, one, eyeriss(), Compression.NONE)
    >>> t.dram_bits, t.dram_cycles, t.cycles, t.bound.value
    (64.0, 4, 1000, 'compute')
    """
    dram = traffic_bits(counts, layer, Level.DRAM, compression, levels)
    glb = traffic_bits(counts, layer, Level.GLB, compression, levels)
    return LayerTiming(compute_cycles=compute_cycles, dram_bits=dram, glb_bits=glb,
                       dram_cycles=math.ceil(dram / hw.dram_bits_per_cycle),
                       glb_cycles=math.ceil(glb / hw.glb_bits_per_cycle))


@dataclass(frozen=True)
class NetworkTiming:
    """Time and power of a whole network at the hardware's clock.

    Attributes:
        cycles: core cycles of all layers, one after another.
        clock_mhz: the core clock.
        items: input items (the batch) the run is for; None when unknown.
        energy: the run's energy, in ``unit``.
        unit: the energy unit.
        bound_layers: layers bound by compute, by DRAM and by the GLB.
    """

    cycles: int
    clock_mhz: float
    items: int | None
    energy: float
    unit: EnergyUnit
    bound_layers: dict[str, int]

    @property
    def latency_s(self) -> float:
        """Seconds per batch (all ``items`` together)."""
        return self.cycles / (self.clock_mhz * 1e6)

    @property
    def throughput(self) -> float | None:
        """Input items (inferences) per second; None when the items are unknown."""
        if self.items is None or self.latency_s == 0:
            return None
        return self.items / self.latency_s

    @property
    def power(self) -> float:
        """Average power: energy per second, in the energy unit per second."""
        return self.energy / self.latency_s if self.latency_s else 0.0

    @property
    def power_mw(self) -> float | None:
        """Average power in milliwatts; None when the energy unit is not absolute."""
        return self.power / PJ_PER_S_PER_MW if self.unit is EnergyUnit.PJ else None

    @property
    def energy_per_item_mj(self) -> float | None:
        """Millijoules per input item; None when the unit is not absolute or items unknown."""
        if self.unit is not EnergyUnit.PJ or not self.items:
            return None
        return self.energy / self.items / PJ_PER_MJ

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see ``docs/report-json.md``)."""
        return {"clock_mhz": self.clock_mhz, "cycles": self.cycles,
                "latency_s": self.latency_s, "items": self.items,
                "throughput_per_s": self.throughput, "power": self.power,
                "power_unit": f"{self.unit.value}/s", "power_mw": self.power_mw,
                "energy_per_item_mj": self.energy_per_item_mj,
                "bound_layers": dict(self.bound_layers)}

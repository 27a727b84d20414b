"""Hardware description: an Eyeriss-like spatial accelerator, as frozen values.

Four storage levels, outermost first: DRAM, the global buffer (GLB), the array
(inter-PE network) and the register file (RF, per-PE scratch pads), plus the MAC.
Every energy is *per access of* ``access_bits`` bits; moving b bits costs
``b / access_bits`` accesses' worth (the per-bit accounting of Yang et al.). The
MAC energy is for a ``word_bits`` x ``word_bits`` multiply and scales with the
product of the operand widths.

Costs are either normalised (1 = one 16-bit MAC, the Eyeriss convention) or in
picojoules; ``Hardware.unit`` says which, and every report states it.

Time: the core clock (``clock_mhz``) and the bandwidth of DRAM and of the GLB in bits
per core cycle (reads and writes share it); :mod:`nnjoules.energy.timing` uses them.
YAML files are read only by :mod:`nnjoules.energy.hardware.loading`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from nnjoules.energy.hardware import area
from nnjoules.energy.workload import Operand

# Bounds on a description, so that no count or energy overflows and the mapping search
# stays small (its grids grow with the number of PEs: 256 x 256 takes seconds per layer).
MAX_PES = 256 * 256
MAX_SIZE_BYTES = 1 << 40  # 1 TiB for any one buffer: bit counts stay far inside int64
MAX_BITS = 4096  # word_bits and access_bits
# Per access or MAC, in the hardware's unit (1e12 pJ is a joule): the largest networks
# make ~1e12 accesses of ~1e3 bits, so every total stays finite in float64.
MAX_ENERGY = 1e12
MAX_CLOCK_MHZ = 1e6  # 1 THz: far above any clock, low enough that every time stays finite
MAX_BITS_PER_CYCLE = 1e9

# The Eyeriss chip's timing (ISSCC 2016 section 14.5; JSSC 2017): a 200 MHz core clock;
# DRAM over a 64-bit link at 60 MHz, i.e. 64 x 60/200 = 19.2 bits per core cycle (the
# 64-bit width is from JSSC 2017 as we read it; the 60 MHz link clock is in ISSCC 2016).
# The GLB feeds separate ifmap and psum networks; 64 bits each (128 bits per cycle) is
# our assumption: neither paper states the GLB's bandwidth. Also the defaults for a
# hardware file that does not give these fields.
EYERISS_CLOCK_MHZ = 200.0
EYERISS_DRAM_BITS_PER_CYCLE = 64 * 60 / 200
EYERISS_GLB_BITS_PER_CYCLE = 128.0


def check_energy(value: object, what: str) -> None:
    """Raise ValueError unless ``value`` is a finite energy in [0, `MAX_ENERGY`]."""
    if not (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= MAX_ENERGY):
        raise ValueError(f"{what} must be a number in [0, {MAX_ENERGY:g}], got {value!r}")


def check_rate(value: object, what: str, maximum: float) -> None:
    """Raise ValueError unless ``value`` is a finite number in (0, ``maximum``]."""
    if not (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 0 < value <= maximum):
        raise ValueError(f"{what} must be a positive number at most {maximum:g}, "
                         f"got {value!r}")


def check_count(value: object, what: str, maximum: int) -> None:
    """Raise ValueError unless ``value`` is an integer in [1, ``maximum``]."""
    if not (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= maximum):
        raise ValueError(f"{what} must be an integer in [1, {maximum}], got {value!r}")


class Level(enum.StrEnum):
    """Storage levels, outermost first."""

    DRAM = "dram"
    GLB = "glb"
    ARRAY = "array"
    RF = "rf"


LEVELS: tuple[Level, ...] = (Level.DRAM, Level.GLB, Level.ARRAY, Level.RF)
OPERANDS: tuple[Operand, ...] = (Operand.WEIGHTS, Operand.IFMAPS, Operand.PSUMS)


class EnergyUnit(enum.StrEnum):
    """Unit of every energy in a `Hardware` and in the reports made with it."""

    NORMALIZED = "normalized"  # 1 = one word_bits x word_bits MAC
    PJ = "pJ"


@dataclass(frozen=True)
class AccessCost:
    """Energy of one read and one write of ``access_bits`` bits, in the hardware's unit."""

    read: float
    write: float
    access_bits: int = 16

    def __post_init__(self) -> None:
        check_energy(self.read, "read energy")
        check_energy(self.write, "write energy")
        check_count(self.access_bits, "access_bits", MAX_BITS)

    def read_per_bit(self) -> float:
        """Energy of reading one bit."""
        return self.read / self.access_bits

    def write_per_bit(self) -> float:
        """Energy of writing one bit."""
        return self.write / self.access_bits


@dataclass(frozen=True)
class PEArray:
    """The processing-element array: ``rows`` x ``cols`` PEs."""

    rows: int
    cols: int

    def __post_init__(self) -> None:
        if not (isinstance(self.rows, int) and isinstance(self.cols, int)
                and self.rows >= 1 and self.cols >= 1):
            raise ValueError(f"PE array must have positive rows and cols, got "
                             f"{self.rows}x{self.cols}")
        if self.rows * self.cols > MAX_PES:
            raise ValueError(f"PE array {self.rows}x{self.cols} has {self.rows * self.cols} "
                             f"PEs, more than the {MAX_PES} (256x256) the mapping search "
                             "supports")

    @property
    def num_pes(self) -> int:
        """Number of PEs (J in the author's code)."""
        return self.rows * self.cols


@dataclass(frozen=True)
class GlobalBuffer:
    """The on-chip SRAM shared by the array; holds ifmaps and psums (weights bypass it)."""

    size_bytes: int
    cost: AccessCost

    def __post_init__(self) -> None:
        check_count(self.size_bytes, "global buffer size_bytes", MAX_SIZE_BYTES)

    @property
    def size_bits(self) -> int:
        """Capacity in bits."""
        return 8 * self.size_bytes


@dataclass(frozen=True)
class RegisterFile:
    """Per-PE storage: one unified RF, or one scratch pad per operand.

    Exactly one of ``size_bytes`` (unified, as in the ISCA 2016 analysis) or the
    three ``*_bytes`` scratch pads (as on the Eyeriss chip) is given. Costs may
    differ per operand (e.g. a large weight scratch pad costs more per access).
    """

    weights: AccessCost
    ifmaps: AccessCost
    psums: AccessCost
    size_bytes: int | None = None
    weights_bytes: int | None = None
    ifmaps_bytes: int | None = None
    psums_bytes: int | None = None

    def __post_init__(self) -> None:
        pads = (self.weights_bytes, self.ifmaps_bytes, self.psums_bytes)
        if self.size_bytes is not None:
            if any(p is not None for p in pads):
                raise ValueError("register file: give either size_bytes (unified) or "
                                 "weights_bytes/ifmaps_bytes/psums_bytes, not both")
            check_count(self.size_bytes, "register file size_bytes", MAX_SIZE_BYTES)
        else:
            if any(p is None for p in pads):
                raise ValueError("register file: give size_bytes (unified) or all three of "
                                 "weights_bytes, ifmaps_bytes, psums_bytes")
            for name, size in zip(("weights", "ifmaps", "psums"), pads, strict=True):
                check_count(size, f"register file {name}_bytes", MAX_SIZE_BYTES)

    @property
    def unified(self) -> bool:
        """Whether the three operands share one RF."""
        return self.size_bytes is not None

    def cost_of(self, operand: Operand) -> AccessCost:
        """Access cost of ``operand``'s scratch pad."""
        return {Operand.WEIGHTS: self.weights, Operand.IFMAPS: self.ifmaps,
                Operand.PSUMS: self.psums}[operand]


@dataclass(frozen=True)
class Hardware:
    """An Eyeriss-like accelerator: PE array, storage levels, per-access energies, clock.

    ``clock_mhz`` is the core clock; ``dram_bits_per_cycle`` and ``glb_bits_per_cycle``
    are the bits each level moves per core cycle, reads and writes together.
    """

    name: str
    unit: EnergyUnit
    word_bits: int
    pe_array: PEArray
    dram: AccessCost
    glb: GlobalBuffer
    array: AccessCost  # one inter-PE transfer; read and write hold the same hop energy
    rf: RegisterFile
    mac: float  # one word_bits x word_bits MAC
    clock_mhz: float = EYERISS_CLOCK_MHZ
    dram_bits_per_cycle: float = EYERISS_DRAM_BITS_PER_CYCLE
    glb_bits_per_cycle: float = EYERISS_GLB_BITS_PER_CYCLE

    def __post_init__(self) -> None:
        check_count(self.word_bits, f"hardware {self.name!r}: word_bits", MAX_BITS)
        check_energy(self.mac, f"hardware {self.name!r}: mac energy")
        check_rate(self.clock_mhz, f"hardware {self.name!r}: clock_mhz", MAX_CLOCK_MHZ)
        for level in ("dram", "glb"):
            check_rate(getattr(self, f"{level}_bits_per_cycle"),
                       f"hardware {self.name!r}: {level} bandwidth_bits_per_cycle",
                       MAX_BITS_PER_CYCLE)

    def cost_of(self, level: Level, operand: Operand) -> AccessCost:
        """Access cost of ``operand`` at ``level``."""
        if level is Level.DRAM:
            return self.dram
        if level is Level.GLB:
            return self.glb.cost
        if level is Level.ARRAY:
            return self.array
        return self.rf.cost_of(operand)

    def mac_energy(self, weight_bits: int, ifmap_bits: int) -> float:
        """Energy of one MAC at the given widths: scales with their product."""
        return self.mac * (weight_bits * ifmap_bits) / (self.word_bits * self.word_bits)


def _uniform(energy: float, bits: int = 16) -> AccessCost:
    return AccessCost(read=energy, write=energy, access_bits=bits)


def eyeriss() -> Hardware:
    """The Eyeriss chip (ISSCC 2016 / JSSC 2017), normalised 65 nm costs.

    12 x 14 PEs; per-PE scratch pads of 224 weight, 12 ifmap and 24 psum 16-bit words;
    108 KB global buffer; costs DRAM 200, GLB 6, array 2, RF 1, MAC 1.
    """
    return Hardware(
        name="eyeriss",
        unit=EnergyUnit.NORMALIZED,
        word_bits=16,
        pe_array=PEArray(rows=12, cols=14),
        dram=_uniform(200.0),
        glb=GlobalBuffer(size_bytes=108 * 1024, cost=_uniform(6.0)),
        array=_uniform(2.0),
        rf=RegisterFile(weights=_uniform(1.0), ifmaps=_uniform(1.0), psums=_uniform(1.0),
                        weights_bytes=224 * 2, ifmaps_bytes=12 * 2, psums_bytes=24 * 2),
        mac=1.0,
    )


def eyeriss_isca2016() -> Hardware:
    """The ISCA 2016 dataflow-analysis setup: 256 PEs, 512 B unified RF, 128 KB GLB.

    The paper gives only the PE count; the array is taken as 16 x 16.
    """
    return Hardware(
        name="eyeriss-isca2016",
        unit=EnergyUnit.NORMALIZED,
        word_bits=16,
        pe_array=PEArray(rows=16, cols=16),
        dram=_uniform(200.0),
        glb=GlobalBuffer(size_bytes=128 * 1024, cost=_uniform(6.0)),
        array=_uniform(2.0),
        rf=RegisterFile(weights=_uniform(1.0), ifmaps=_uniform(1.0), psums=_uniform(1.0),
                        size_bytes=512),
        mac=1.0,
    )


ISCA2016_SUFFIX = {"row-stationary": "", "weight-stationary": "-ws",
                   "output-stationary-a": "-os-a", "output-stationary-b": "-os-b",
                   "output-stationary-c": "-os-c", "no-local-reuse": "-nlr"}


def eyeriss_isca2016_for(dataflow: str, num_pes: int = 256) -> Hardware:
    """The ISCA 2016 setup for one dataflow: its RF, and the GLB its equal area leaves.

    ``dataflow`` is a registered name (``"weight-stationary"``); see
    :mod:`nnjoules.energy.hardware.area` for the rule and the RF sizes. NLR has no RF:
    its GLB takes all the storage area, and its register file is a 1-byte placeholder
    (the format needs one; NLR never reads it). Row-stationary at 256 PEs is
    `eyeriss_isca2016` itself. The array is the most nearly square rows x cols.

    Raises:
        ValueError: an unknown dataflow or a PE count outside 1..`MAX_PES`.
    """
    if dataflow not in area.RF_BYTES:
        raise ValueError(f"no ISCA 2016 storage split for dataflow {dataflow!r}")
    check_count(num_pes, "num_pes", MAX_PES)
    rows = max(d for d in range(1, math.isqrt(num_pes) + 1) if num_pes % d == 0)
    rf_bytes = area.RF_BYTES[dataflow]
    suffix = ISCA2016_SUFFIX[dataflow] + ("" if num_pes == 256 else f"-{num_pes}pe")
    return Hardware(
        name=f"eyeriss-isca2016{suffix}", unit=EnergyUnit.NORMALIZED, word_bits=16,
        pe_array=PEArray(rows=rows, cols=num_pes // rows), dram=_uniform(200.0),
        glb=GlobalBuffer(size_bytes=area.glb_bytes(num_pes, rf_bytes), cost=_uniform(6.0)),
        array=_uniform(2.0),
        rf=RegisterFile(weights=_uniform(1.0), ifmaps=_uniform(1.0), psums=_uniform(1.0),
                        size_bytes=max(rf_bytes, 1)),
        mac=1.0)


"""Costing: access counts x energy per access, with bit-width and sparsity applied here only.

The rules (Yang, Chen & Sze; see reference/energy-model.md §1.3-1.4 and §6):

* **Bits.** An access moves one value of its operand; its energy is the level's
  per-bit energy times the bits moved. MAC energy scales with ``weight_bits *
  ifmap_bits`` (normalised to a ``word_bits`` x ``word_bits`` MAC).
* **Skipped MACs** (`Gating`). ``either`` (default, the analytical tool's rule): a MAC
  is skipped when either operand is zero, ``MACs x weight density x ifmap density``;
  ``ifmap``: the Eyeriss chip's zero buffer skips MACs on zero ifmaps only,
  ``MACs x ifmap density``; ``none``: nothing is skipped. The weight read and the psum
  read and write that serve a skipped MAC are skipped with it (our choice: the sources
  do not say); the ifmap read is not, since it is what finds the zero.
  ``compressed-weights`` (Eyeriss v2's compressed weight storage, Chen et al., JETCAS
  2019): weights are known ahead of time and stored without their zeros, so a zero
  weight is never read and never paired with an ifmap: the RF ifmap reads fall to
  ``MACs x weight density``; a zero ifmap is still read once to be found, then skips
  the weight read, the MAC and the psum update, as under ``either``. Data still moves
  through the GLB and the array uncompressed (Eyeriss v1 keeps on-chip data raw).
* **Compression** (`Compression`), applied to every DRAM access and, by
  `CompressionLevels`, to weight and ifmap moves out of the GLB and the array:
  ``none``: ``bits`` per value; ``significance-map`` (the analytical tool of
  energyestimation.mit.edu): 1 bit per value plus ``bits`` per non-zero;
  ``rlc`` (the Eyeriss chip): (5-bit run, level) pairs, three pairs and one
  termination bit to a 64-bit word at 16 bits, i.e. ``pairs * (5 + bits + 1/3)`` bits,
  with pairs per value measured from the real tensor (zero positions matter) or,
  when not measured, the expectation for independently placed zeros.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import TypeVar

from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.hardware import LEVELS, OPERANDS, EnergyUnit, Hardware, Level
from nnjoules.energy.workload import Layer, Operand
from nnjoules.errors import InputError

RLC_RUN_BITS = 5
RLC_PAIRS_PER_TERMINATION_BIT = 3


class Gating(enum.StrEnum):
    """Which zero operands make a MAC (and the RF accesses serving it) be skipped."""

    EITHER = "either"
    IFMAP = "ifmap"
    NONE = "none"
    COMPRESSED_WEIGHTS = "compressed-weights"


# What each rule skips, in words, for reports.
GATING_TEXT = {
    Gating.EITHER: "a MAC with a zero weight or a zero ifmap is skipped (dense MACs x weight "
                   "density x ifmap density), with the RF weight and psum accesses serving "
                   "it; every RF ifmap read is made",
    Gating.IFMAP: "a MAC with a zero ifmap is skipped (dense MACs x ifmap density), with the "
                  "RF weight and psum accesses serving it; every RF ifmap read is made",
    Gating.NONE: "no MAC is skipped",
    Gating.COMPRESSED_WEIGHTS: "zero weights are stored compressed: never read nor paired "
                               "with an ifmap (RF ifmap reads x weight density); a MAC with a "
                               "zero ifmap is skipped too (dense MACs x weight density x ifmap "
                               "density), with the RF weight and psum accesses serving it",
}


RuleT = TypeVar("RuleT", "Compression", "CompressionLevels", Gating)


def parse_rule(kind: type[RuleT], value: RuleT | str, label: str) -> RuleT:
    """``value`` as the rule ``kind``.

    Raises:
        InputError: ``value`` names no such rule; the message lists the choices.
    """
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(rule.value for rule in kind)
        raise InputError(f"unknown {label} {value!r}; choose one of {choices}") from None


def executed_fraction(layer: Layer, gating: Gating) -> float:
    """Fraction of the dense MACs that are executed (not skipped) under ``gating``."""
    if gating in (Gating.EITHER, Gating.COMPRESSED_WEIGHTS):
        return layer.density.weights * layer.density.ifmaps
    if gating is Gating.IFMAP:
        return layer.density.ifmaps
    return 1.0


def rf_read_fraction(layer: Layer, operand: Operand, gating: Gating) -> float:
    """Fraction of the dense RF reads (and psum writes) of ``operand`` made under ``gating``.

    Weights and psums serve only executed MACs. An ifmap is read once per dense MAC, since
    the read is what finds a zero, except under ``compressed-weights``, where a zero
    weight is never paired with its ifmap.

    >>> from nnjoules.energy.workload import Density, LayerKind
    >>> fc = Layer("fc", LayerKind.FC, N=1, M=4, C=8, H=1, W=1, R=1, S=1, E=1, F=1)
    >>> fc = fc.with_density(Density(weights=0.25, ifmaps=0.5))
    >>> [rf_read_fraction(fc, Operand.IFMAPS, g) for g in (Gating.EITHER,
    ...                                                    Gating.COMPRESSED_WEIGHTS)]
    [1.0, 0.25]
    >>> rf_read_fraction(fc, Operand.WEIGHTS, Gating.COMPRESSED_WEIGHTS)
    0.125
    """
    if operand is not Operand.IFMAPS:
        return executed_fraction(layer, gating)
    if gating is Gating.COMPRESSED_WEIGHTS:
        return layer.density.weights
    return 1.0


class Compression(enum.StrEnum):
    """How zeros are compressed on their way to and from DRAM."""

    NONE = "none"
    SIGNIFICANCE_MAP = "significance-map"
    RLC = "rlc"


def expected_rlc_pairs(density: float, run_bits: int = RLC_RUN_BITS) -> float:
    """Expected (run, level) pairs per value for independently placed zeros.

    Every non-zero ends a pair; a run of zeros longer than ``2**run_bits - 1`` also
    needs a pair (with a literal zero level) for every ``L = 2**run_bits`` zeros. For a
    long stream with non-zero probability p this is ``p / (1 - (1 - p)**L)``, which
    tends to ``1 / L`` (one pair per L zeros) as p -> 0.

    >>> expected_rlc_pairs(1.0), round(expected_rlc_pairs(0.5), 6)
    (1.0, 0.5)
    """
    limit = 2 ** run_bits
    if density <= 0.0:
        return 1.0 / limit
    if density >= 1.0:
        return 1.0
    # -expm1(L * log1p(-p)) is 1 - (1 - p)**L without cancellation at small p
    return density / -math.expm1(limit * math.log1p(-density))


def dram_bits_per_value(layer: Layer, operand: Operand, compression: Compression) -> float:
    """Average bits one value of ``operand`` occupies in DRAM traffic."""
    bits = layer.precision.bits_of(operand)
    density = layer.density.of(operand)
    if compression is Compression.NONE:
        return float(bits)
    if compression is Compression.SIGNIFICANCE_MAP:
        return 1.0 + density * bits
    pairs = layer.density.rlc_pairs_of(operand)
    if pairs is None:
        pairs = expected_rlc_pairs(density)
    return pairs * (RLC_RUN_BITS + bits + 1.0 / RLC_PAIRS_PER_TERMINATION_BIT)


class CompressionLevels(enum.StrEnum):
    """Which moves between levels carry compressed weights and ifmaps.

    A counted access at a level is a move out of it (see
    `nnjoules.energy.counts`):
    ``dram`` compresses DRAM reads and writes only (Eyeriss v1, the analytical tool);
    ``dram,glb`` also GLB reads; ``all`` also the inter-PE array (every move of a chunk
    between two levels, the authors' simulator as described in reference/energy-model.md
    §1.3). The read from the RF into the MAC is governed by `Gating`, not compression.
    Psums are compressed only on their final write to DRAM (as ofmaps): partial sums
    are not sparse.
    """

    DRAM = "dram"
    DRAM_GLB = "dram,glb"
    ALL = "all"

    @property
    def levels(self) -> frozenset[Level]:
        """The levels whose outgoing moves are compressed."""
        chosen = {CompressionLevels.DRAM: (Level.DRAM,),
                  CompressionLevels.DRAM_GLB: (Level.DRAM, Level.GLB),
                  CompressionLevels.ALL: (Level.DRAM, Level.GLB, Level.ARRAY)}[self]
        return frozenset(chosen)


LEVELS_TEXT = {
    CompressionLevels.DRAM: "dram: weights, ifmaps and ofmaps to and from DRAM only",
    CompressionLevels.DRAM_GLB: "dram,glb: also weights and ifmaps read from the GLB",
    CompressionLevels.ALL: "all: also weights and ifmaps passed across the PE array "
                           "(psums stay raw on chip)",
}


def bits_per_value(layer: Layer, level: Level, operand: Operand, compression: Compression,
                   levels: CompressionLevels = CompressionLevels.DRAM) -> float:
    """Average bits one value of ``operand`` occupies in an access at ``level``.

    >>> from nnjoules.energy.workload import Density, LayerKind
    >>> fc = Layer("fc", LayerKind.FC, N=1, M=4, C=8, H=1, W=1, R=1, S=1, E=1, F=1)
    >>> fc = fc.with_density(Density(weights=0.25, ifmaps=0.5))
    >>> sm = Compression.SIGNIFICANCE_MAP
    >>> [bits_per_value(fc, Level.GLB, Operand.IFMAPS, sm, lv) for lv in CompressionLevels]
    [16.0, 9.0, 9.0]
    >>> bits_per_value(fc, Level.ARRAY, Operand.WEIGHTS, sm, CompressionLevels.ALL)
    5.0
    """
    compressed = level is Level.DRAM or (level in levels.levels
                                         and operand is not Operand.PSUMS)
    if compressed:
        return dram_bits_per_value(layer, operand, compression)
    return float(layer.precision.bits_of(operand))


UnitKey = tuple[Level, Operand]


@dataclass(frozen=True)
class UnitEnergies:
    """Energy of one counted read and one counted write, per (level, operand)."""

    read: MappingABC[UnitKey, float]
    write: MappingABC[UnitKey, float]
    mac: float  # one non-skipped MAC


def unit_energies(layer: Layer, hw: Hardware, compression: Compression,
                  gating: Gating = Gating.EITHER,
                  levels: CompressionLevels = CompressionLevels.DRAM) -> UnitEnergies:
    """Per-access energies for ``layer`` on ``hw``: bits, gating and compression applied."""
    read: dict[UnitKey, float] = {}
    write: dict[UnitKey, float] = {}
    for level in LEVELS:
        for operand in OPERANDS:
            cost = hw.cost_of(level, operand)
            bits = bits_per_value(layer, level, operand, compression, levels)
            gate = rf_read_fraction(layer, operand, gating) if level is Level.RF else 1.0
            read[level, operand] = bits * cost.read_per_bit() * gate
            write[level, operand] = bits * cost.write_per_bit() * gate
    prec = layer.precision
    return UnitEnergies(read=read, write=write,
                        mac=hw.mac_energy(prec.weight_bits, prec.ifmap_bits))


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy of one layer: data movement per (level, operand) plus computation.

    Psum energy is reported under ``Operand.PSUMS`` (the papers' "ofmaps").
    """

    unit: EnergyUnit
    data: MappingABC[UnitKey, float]
    computation: float
    nonskipped_macs: float

    @property
    def data_movement(self) -> float:
        """Energy of all memory accesses."""
        return sum(self.data.values())

    @property
    def total(self) -> float:
        """Computation plus data movement."""
        return self.computation + self.data_movement

    def by_level(self) -> dict[str, float]:
        """Energy per level, plus ``"mac"`` for computation."""
        out = {level.value: sum(self.data.get((level, op), 0.0) for op in OPERANDS)
               for level in LEVELS}
        out["mac"] = self.computation
        return out

    def by_operand(self) -> dict[str, float]:
        """Energy per operand, plus ``"computation"``."""
        out = {op.value: sum(self.data.get((lv, op), 0.0) for lv in LEVELS) for op in OPERANDS}
        out["computation"] = self.computation
        return out


def energy_of(counts: AccessCounts, layer: Layer, hw: Hardware,
              compression: Compression = Compression.SIGNIFICANCE_MAP,
              gating: Gating = Gating.EITHER,
              levels: CompressionLevels = CompressionLevels.DRAM) -> EnergyBreakdown:
    """Cost ``counts`` of ``layer`` on ``hw``.

    Example: a layer of one dense 16-bit MAC reads its weight and ifmap from DRAM (2 x 200)
    and writes its ofmap back (200); the ifmap passes the GLB (6); both cross the array
    (2 x 2) into the RF, where the MAC reads them (2 x 1); the MAC costs 1.

    >>> from nnjoules.energy.dataflows.row_stationary.access import count_accesses
    >>> from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
    >>> from nnjoules.energy.hardware import eyeriss
    >>> from nnjoules.energy.workload import LayerKind
    >>> one = Layer("one", LayerKind.FC, N=1, M=1, C=1, H=1, W=1, R=1, S=1, E=1, F=1)
    >>> counts = count_accesses(one, Mapping(1, 1, 1, 1, 1, 1, 1))
    >>> energy_of(counts, one, eyeriss(), Compression.NONE).total
    613.0
    """
    units = unit_energies(layer, hw, compression, gating, levels)
    return energy_from_units(counts, layer, hw, units, gating)


_KEYS = tuple((level, operand) for level in LEVELS for operand in OPERANDS)


def energy_from_units(counts: AccessCounts, layer: Layer, hw: Hardware, units: UnitEnergies,
                      gating: Gating = Gating.EITHER) -> EnergyBreakdown:
    """`energy_of` with the per-access energies already worked out (sweeps share them).

    ``units`` must be `unit_energies` of ``layer`` on ``hw`` under the same rules.

    Raises:
        InputError: the energy is not a finite number.
    """
    reads, writes = counts.reads, counts.writes
    data: dict[UnitKey, float] = {
        key: reads.get(key, 0) * units.read[key] + writes.get(key, 0) * units.write[key]
        for key in _KEYS}
    nonskipped = counts.macs * executed_fraction(layer, gating)
    computation = nonskipped * units.mac
    if not math.isfinite(computation + sum(data.values())):  # never report inf or NaN
        raise InputError(f"layer {layer.name!r}: its energy on hardware {hw.name!r} is not a "
                         "finite number; lower the hardware's energies")
    return EnergyBreakdown(unit=hw.unit, data=data, computation=computation,
                           nonskipped_macs=nonskipped)

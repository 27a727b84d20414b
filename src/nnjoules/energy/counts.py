"""`AccessCounts`: values moved per memory level and operand, whatever the dataflow.

Counting stays apart from costing (:mod:`nnjoules.energy.cost`): a dataflow's counts say
how many values move, never what they cost. The convention is that of Chen et al.'s
reuse framework (ISCA 2016 section VI-C): an access at a level is one value *read from*
that level towards the ALU, and the cost of writing it into the next level down is part
of that access; psums are also *written* back while they accumulate.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass

from nnjoules.energy.hardware.spec import LEVELS, OPERANDS, Level
from nnjoules.energy.workload import Operand

Key = tuple[Level, Operand]


@dataclass(frozen=True)
class AccessCounts:
    """Values read and written per (level, operand), and MACs; no energy here.

    Attributes:
        reads: values read from each level, per operand.
        writes: values written into each level, per operand (psums only in RS).
        macs: dense multiply-accumulates.
    """

    reads: MappingABC[Key, int]
    writes: MappingABC[Key, int]
    macs: int

    def read(self, level: Level, operand: Operand) -> int:
        """Reads of ``operand`` from ``level``."""
        return self.reads.get((level, operand), 0)

    def write(self, level: Level, operand: Operand) -> int:
        """Writes of ``operand`` into ``level``."""
        return self.writes.get((level, operand), 0)

    def total(self, level: Level | None = None, operand: Operand | None = None) -> int:
        """Reads plus writes, optionally restricted to one level and/or operand."""
        return sum(self.read(lv, op) + self.write(lv, op)
                   for lv in LEVELS if level is None or lv is level
                   for op in OPERANDS if operand is None or op is operand)

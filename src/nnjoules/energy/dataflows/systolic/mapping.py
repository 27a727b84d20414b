"""The mapping of a layer onto a systolic array: SCALE-Sim's fixed one, and what fits where.

A systolic array has no mapping search in SCALE-Sim: the GEMM (see
:mod:`nnjoules.energy.dataflows.systolic.gemm`) is cut into ``row_folds x col_folds``
tiles of the array's size, visited column fold by column fold (outer) and row fold by row
fold (inner), and nothing else is chosen. We keep that schedule; what the hardware then
decides is which operands a buffer can keep between folds (each only if it fits in half
its SRAM, the other half being filled):

* ``ifmap_reuse``: the whole ifmap of a group (the values the layer reads) stays in the
  ifmap SRAM, so DRAM delivers each once; otherwise every column fold streams it again,
  each row fold fetching the ifmap values it reads that the latest row folds did not:
  those kept while, with it, they fit in ``ifmap_capacity``, the values half the ifmap
  SRAM holds (a sliding window over folds).
* ``filter_reuse`` (OS only): a column fold's ``K x cols`` filters stay in the filter SRAM
  across its row folds; otherwise each fold fetches them again. Under WS every weight is
  used by one fold only and is fetched once.
* ``psum_reuse`` (WS only): a column fold's ``T x cols`` partial sums stay in the ofmap
  SRAM across its row folds and reach DRAM once, as ofmaps; otherwise every row fold after
  the first reads them back from DRAM and writes them again. Under OS the sums accumulate
  in the PEs and leave once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from nnjoules.energy.dataflows.systolic.gemm import BufferSplit, Gemm, ceil_div
from nnjoules.energy.hardware.spec import Hardware
from nnjoules.energy.workload import Layer


class Stationary(enum.StrEnum):
    """What each PE holds for a whole fold."""

    WEIGHTS = "ws"  # a K x M filter tile: rows over K, columns over M
    OUTPUTS = "os"  # a T x M ofmap tile: rows over T, columns over M


@dataclass(frozen=True)
class SystolicMapping:
    """A layer on a ``rows x cols`` systolic array (the fields say what fits, see above)."""

    stationary: Stationary
    rows: int
    cols: int
    row_folds: int
    col_folds: int
    ifmap_reuse: bool
    filter_reuse: bool
    psum_reuse: bool
    ifmap_capacity: int = 0  # ifmap values half the ifmap SRAM holds

    def as_dict(self) -> dict[str, int]:
        """The mapping as integers (reuse flags as 0/1)."""
        return {"rows": self.rows, "cols": self.cols, "row_folds": self.row_folds,
                "col_folds": self.col_folds, "ifmap_reuse": int(self.ifmap_reuse),
                "filter_reuse": int(self.filter_reuse), "psum_reuse": int(self.psum_reuse)}

    def active_pes(self, layer: Layer) -> int:
        """PEs busy in a full fold: the array, or the GEMM's extent where it is smaller."""
        gemm = Gemm.of(layer)
        on_rows = gemm.K if self.stationary is Stationary.WEIGHTS else gemm.T
        return min(on_rows, self.rows) * min(gemm.M, self.cols)


def plan(layer: Layer, hw: Hardware, stationary: Stationary, split: BufferSplit,
         ifmaps_read: int) -> SystolicMapping:
    """SCALE-Sim's mapping of ``layer`` on ``hw``'s array, with what its buffers can keep.

    ``ifmaps_read`` is the number of distinct ifmap values one group reads.
    """
    gemm = Gemm.of(layer)
    rows, cols = hw.pe_array.rows, hw.pe_array.cols
    on_rows = gemm.K if stationary is Stationary.WEIGHTS else gemm.T
    ifmap_cap, filter_cap, psum_cap = split.usable_values(hw, layer)
    tile_cols = min(gemm.M, cols)
    return SystolicMapping(
        stationary=stationary, rows=rows, cols=cols, row_folds=ceil_div(on_rows, rows),
        col_folds=ceil_div(gemm.M, cols), ifmap_reuse=ifmaps_read <= ifmap_cap,
        filter_reuse=(stationary is Stationary.OUTPUTS
                      and gemm.K * tile_cols <= filter_cap),
        psum_reuse=(stationary is Stationary.WEIGHTS and gemm.T * tile_cols <= psum_cap),
        ifmap_capacity=ifmap_cap)

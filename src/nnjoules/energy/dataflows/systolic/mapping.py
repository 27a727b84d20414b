"""The mapping of a layer onto a systolic array: SCALE-Sim's, or tiled over outputs (WS).

SCALE-Sim cuts the GEMM (see :mod:`nnjoules.energy.dataflows.systolic.gemm`) into
``row_folds x col_folds`` tiles of the array's size, visited column fold by column fold
(outer) and row fold by row fold (inner), each streaming all ``T`` ifmap rows. Under WS
we may also split the ``T`` rows into tiles of ``t_tile`` (between the column and the row
folds, as a TPU sizes its accumulators): each tile reloads the weights and pays the fill
and drain again, but only ``t_tile x cols`` partial sums need room. ``t_tile = 0`` is
SCALE-Sim's schedule (one tile of all ``T``). The hardware then decides which operands a
buffer keeps between folds (each only if it fits in half its SRAM, the other half being
filled):

* ``ifmap_reuse``: the whole ifmap of a group (the values the layer reads) stays in the
  ifmap SRAM, so DRAM delivers each once; otherwise every column fold (and tile) streams
  it again, each row fold fetching the ifmap values it reads that the latest row folds
  did not: those kept while, with it, they fit in ``ifmap_capacity``, the values half the
  ifmap SRAM holds (a sliding window over folds).
* ``filter_reuse``: a column fold's ``K x cols`` filters stay in the filter SRAM across
  its row folds (OS) or output tiles (WS); otherwise each fetches them again. (Untiled WS
  uses every weight in one fold only and fetches it once.)
* ``psum_reuse`` (WS only): a tile's ``t_tile x cols`` partial sums stay in the ofmap SRAM
  across its row folds and reach DRAM once, as ofmaps; otherwise every row fold after the
  first reads them back from DRAM and writes them again. Under OS the sums accumulate in
  the PEs and leave once.
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
    t_tile: int = 0  # WS: ifmap rows per output tile; 0: all T (SCALE-Sim's schedule)

    def tile_rows(self, layer: Layer) -> int:
        """Ifmap rows a fold streams: ``t_tile``, or all ``T`` (always all under OS)."""
        return self.t_tile or Gemm.of(layer).T

    def as_dict(self) -> dict[str, int]:
        """The mapping as integers (reuse flags as 0/1)."""
        return {"rows": self.rows, "cols": self.cols, "row_folds": self.row_folds,
                "col_folds": self.col_folds, "ifmap_reuse": int(self.ifmap_reuse),
                "filter_reuse": int(self.filter_reuse), "psum_reuse": int(self.psum_reuse),
                "t_tile": self.t_tile}

    def active_pes(self, layer: Layer) -> int:
        """PEs busy in a full fold: the array, or the GEMM's extent where it is smaller."""
        gemm = Gemm.of(layer)
        on_rows = gemm.K if self.stationary is Stationary.WEIGHTS else gemm.T
        return min(on_rows, self.rows) * min(gemm.M, self.cols)


def plan(layer: Layer, hw: Hardware, stationary: Stationary, split: BufferSplit,
         ifmaps_read: int, t_tile: int = 0) -> SystolicMapping:
    """The mapping of ``layer`` on ``hw``'s array with ``t_tile`` (WS; 0: untiled), and
    what its buffers can keep; ``ifmaps_read``: distinct ifmap values one group reads.
    """
    gemm = Gemm.of(layer)
    rows, cols = hw.pe_array.rows, hw.pe_array.cols
    ws = stationary is Stationary.WEIGHTS
    t_tile = t_tile if ws and 0 < t_tile < gemm.T else 0
    ifmap_cap, filter_cap, psum_cap = split.usable_values(hw, layer)
    tile_cols = min(gemm.M, cols)
    return SystolicMapping(
        stationary=stationary, rows=rows, cols=cols,
        row_folds=ceil_div(gemm.K if ws else gemm.T, rows), col_folds=ceil_div(gemm.M, cols),
        ifmap_reuse=ifmaps_read <= ifmap_cap,
        filter_reuse=(not ws or t_tile > 0) and gemm.K * tile_cols <= filter_cap,
        psum_reuse=ws and (t_tile or gemm.T) * tile_cols <= psum_cap,
        ifmap_capacity=ifmap_cap, t_tile=t_tile)

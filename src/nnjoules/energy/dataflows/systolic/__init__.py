"""Systolic arrays (TPU-like), weight- and output-stationary, as SCALE-Sim models them.

Samajdar et al., "SCALE-Sim: Systolic CNN Accelerator Simulator" (arXiv 1811.02883,
ISPASS 2020) and its v3 code (PyPI ``scalesim`` 3.0.0, ``compute/systolic_compute_ws.py``
and ``_os.py``). The GEMM view, folds and buffers: `gemm`; the fixed mapping and what
the buffers keep: `mapping`; the counts: `access`; cycles: `compute_cycles` here.

**Cycles** (SCALE-Sim's demand matrices, one row per cycle, for a ``rows x cols`` array;
every fold pays the full array's fill and drain, even a partial one):

* WS, per fold: ``rows`` cycles to shift the weights in, then ``T`` ifmap rows stream
  through, skewed by one cycle per array row and column, and the last partial sum leaves
  the bottom after ``rows - 1`` more hops: ``2*rows + cols + T - 2``.
* OS, per fold: ``K`` operand pairs stream in, skewed over ``rows + cols - 2`` cycles, and
  the ``rows`` rows of outputs shift out: ``rows + cols + K - 2``.

Layer cycles = ``G * row_folds * col_folds * per fold``; a WS layer cut into output tiles
(see `mapping`) pays a fold's fill and drain once per tile. SCALE-Sim prints one cycle
less (the 0-based index of the last cycle). Zero operands save energy, not time.

**Bit-widths.** Each PE registers one weight, one ifmap and one partial sum (its
accumulator): those registers are the hardware's RF (``register_file``, per operand or
unified) and must hold one value of each at the layer's bit-widths, else the layer does
not map (a `MappingError`, as the other dataflows refuse an RF too small in bits), so
``--bits 16`` on the 8-bit ``systolic-32x32`` is refused. Widths that fit are costed as
everywhere (`nnjoules.energy.cost`): accesses by bits over ``access_bits``, the MAC by
``w * a / word_bits**2``; the SRAM capacities are in bits (wider values, fewer kept).

**Mapping.** ``search=True`` (the registered dataflows): under WS, the least-energy of
SCALE-Sim's untiled schedule and the output tilings whose partial sums fit the ofmap SRAM
(the largest such tile, and the same number of tiles made even), ties to fewer cycles;
under OS, and with ``search=False``, SCALE-Sim's schedule alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, energy_of
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows.base import DataflowMapping, SearchResult
from nnjoules.energy.dataflows.systolic.access import count_accesses
from nnjoules.energy.dataflows.systolic.gemm import (
    BufferSplit,
    Gemm,
    ceil_div,
    ifmap_values_touched,
)
from nnjoules.energy.dataflows.systolic.mapping import Stationary, SystolicMapping, plan
from nnjoules.energy.dataflows.tiling import rf_fits
from nnjoules.energy.hardware.spec import Hardware
from nnjoules.energy.workload import Layer, LayerKind, Precision  # noqa: F401  (doctest)
from nnjoules.errors import MappingError


def compute_cycles(layer: Layer, mapping: SystolicMapping) -> int:
    """SCALE-Sim's cycles of ``layer`` under ``mapping``, the array the only limit.

    Example: WS, 4 x 4 array, T = 16, K = 18, M = 5: 5 x 2 folds of 2*4 + 4 + 16 - 2.

    >>> conv = Layer("c", LayerKind.CONV, N=1, M=5, C=2, H=6, W=6, R=3, S=3, E=4, F=4)
    >>> compute_cycles(conv, SystolicMapping(Stationary.WEIGHTS, 4, 4, 5, 2, True, False,
    ...                                      True))
    260
    """
    gemm = Gemm.of(layer)
    rows, cols = mapping.rows, mapping.cols
    if mapping.stationary is Stationary.WEIGHTS:  # all output tiles: T rows, tiles fills
        tiles = ceil_div(gemm.T, mapping.tile_rows(layer))
        per_fold = tiles * (2 * rows + cols - 2) + gemm.T
    else:
        per_fold = rows + cols + gemm.K - 2
    return layer.G * mapping.row_folds * mapping.col_folds * per_fold


@dataclass(frozen=True)
class Systolic:
    """A systolic-array dataflow as a `nnjoules.energy.dataflows.base.Dataflow` plug-in.

    ``split`` divides the hardware's GLB into ifmap, filter and ofmap SRAMs; ``search``
    chooses WS output tiles by energy (False: SCALE-Sim's schedule only).
    """

    name: str
    stationary: Stationary
    split: BufferSplit = field(default_factory=BufferSplit)
    search: bool = True

    def mapping_for(self, layer: Layer, hw: Hardware, t_tile: int = 0) -> SystolicMapping:
        """The mapping of ``layer`` on ``hw`` with WS output tiles of ``t_tile`` (0: none)."""
        read = ifmap_values_touched(layer, 0, Gemm.of(layer).K)
        return plan(layer, hw, self.stationary, self.split, read, t_tile)

    def tile_candidates(self, layer: Layer, hw: Hardware) -> list[int]:
        """WS output tiles tried: none (SCALE-Sim's), and where the psums do not fit, the
        largest tile whose psums fit and the same number of tiles made even."""
        T = Gemm.of(layer).T
        largest = self.split.usable_values(hw, layer)[2] // min(layer.M, hw.pe_array.cols)
        if not self.search or self.stationary is not Stationary.WEIGHTS or largest >= T:
            return [0]
        largest = max(largest, 1)
        return sorted({0, largest, ceil_div(T, ceil_div(T, largest))})

    def best_mapping(self, layer: Layer, hw: Hardware, compression: Compression,
                     gating: Gating, levels: CompressionLevels) -> SearchResult:
        """The candidate mapping of least energy (ties: fewer cycles).

        Raises:
            MappingError: the PE registers cannot hold one value of each operand at the
                layer's bit-widths (`check_registers`); any other layer fits.
        """
        check_registers(layer, hw, self.name)
        best: tuple[float, int, SystolicMapping] | None = None
        candidates = self.tile_candidates(layer, hw)
        for t_tile in candidates:
            mapping = self.mapping_for(layer, hw, t_tile)
            energy = energy_of(count_accesses(layer, mapping), layer, hw, compression, gating,
                               levels).total
            key = (energy, compute_cycles(layer, mapping), mapping)
            if best is None or key[:2] < best[:2]:
                best = key
        assert best is not None
        return SearchResult(mapping=best[2], energy=best[0], candidates=len(candidates),
                            mapped=layer)

    def count_accesses(self, layer: Layer, mapping: DataflowMapping) -> AccessCounts:
        """See `nnjoules.energy.dataflows.systolic.access.count_accesses`."""
        return count_accesses(layer, self._own(mapping))

    def compute_cycles(self, layer: Layer, mapping: DataflowMapping, hw: Hardware) -> int:
        """See `compute_cycles`; ``hw`` is not needed (the mapping holds the array size)."""
        return compute_cycles(layer, self._own(mapping))

    def _own(self, mapping: DataflowMapping) -> SystolicMapping:
        if not isinstance(mapping, SystolicMapping) or mapping.stationary is not self.stationary:
            raise TypeError(f"{self.name} needs a {self.stationary.value} SystolicMapping, "
                            f"got {mapping!r}")
        return mapping


def check_registers(layer: Layer, hw: Hardware, dataflow: str) -> None:
    """Refuse ``layer`` when a PE's registers (``hw.rf``) cannot hold one weight, one
    ifmap and one psum at its bit-widths.

    >>> from nnjoules.energy.hardware import load_hardware
    >>> wide = Layer("fc", LayerKind.FC, N=1, M=1, C=1, H=1, W=1, R=1, S=1, E=1, F=1,
    ...              precision=Precision(16, 8, 32))
    >>> check_registers(wide, load_hardware("systolic-32x32"), "systolic-ws")
    Traceback (most recent call last):
    ...
    nnjoules.errors.MappingError: layer 'fc' (fc, C=1 M=1 H=1 W=1 R=1 S=1 N=1) cannot be \
mapped onto 'systolic-32x32' with the systolic-ws dataflow: RF weight scratch pad: 16 bits \
> 8 bits; a systolic PE registers one weight, one ifmap and one psum, at most 8-bit \
weights, 8-bit ifmaps and 32-bit psums here: use narrower bit-widths (--bits) or a wider \
register_file

    Raises:
        MappingError: the layer, the hardware, the dataflow and which register is short.
    """
    short = rf_fits(hw, layer, weights=1, ifmaps=1, psums=1)
    if not short:
        return
    rf = hw.rf
    if rf.size_bytes is not None:
        room = f"{8 * rf.size_bytes} bits for the three together"
    else:
        room = (f"{8 * (rf.weights_bytes or 0)}-bit weights, {8 * (rf.ifmaps_bytes or 0)}-bit "
                f"ifmaps and {8 * (rf.psums_bytes or 0)}-bit psums")
    raise MappingError(f"layer {layer.name!r} ({layer.kind.value}, C={layer.C} M={layer.M} "
                       f"H={layer.H} W={layer.W} R={layer.R} S={layer.S} N={layer.N}) cannot "
                       f"be mapped onto {hw.name!r} with the {dataflow} dataflow: "
                       f"{'; '.join(short)}; a systolic PE registers one weight, one ifmap "
                       f"and one psum, at most {room} here: use narrower bit-widths (--bits) "
                       "or a wider register_file")


SYSTOLIC_WS = Systolic(name="systolic-ws", stationary=Stationary.WEIGHTS)
SYSTOLIC_OS = Systolic(name="systolic-os", stationary=Stationary.OUTPUTS)

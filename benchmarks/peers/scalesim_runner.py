"""Run SCALE-Sim v3 (PyPI ``scalesim``) on one conv layer and return its counts.

Imported by ``benchmarks/bench_vs_scalesim.py``; imports nothing from nnjoules.

SCALE-Sim is driven as its README shows (``scalesim(config=..., topology=...)``) with a
config file written here: the ``[architecture_presets]`` of the layer's array and SRAMs,
``InterfaceBandwidth: CALC`` (its "estimate bandwidth" mode: DRAM feeds the SRAMs as fast
as needed, so there are no stalls and its cycles are the array's alone), no custom
layouts, no sparsity, no Ramulator. A layout file is required even when unused; an empty
one is written.

One compatibility shim: with numpy >= 2.3, SCALE-Sim 3.0.0's
``double_buffered_scratchpad.service_memory_requests`` fails at
``int(max(ofmap_serviced_cycles))`` because ``write_buffer.service_writes`` returns a
``(n, 1)`` array whose rows are 1-element arrays (numpy no longer converts those to
scalars). `patch_numpy2` makes ``service_writes`` return the same cycles flattened to
``(n,)``; nothing else changes (the values are identical; only their shape differs).
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIG = """\
[general]
run_name = run

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {ifmap_kb}
FilterSramSzkB: {filter_kb}
OfmapSramSzkB: {ofmap_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: {dataflow}
Bandwidth: 10
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

TOPOLOGY_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                   "Channels, Num Filter, Strides,\n")


def patch_numpy2() -> None:
    """Make SCALE-Sim 3.0.0 run under numpy >= 2.3 (see the module docstring)."""
    from scalesim.memory.write_buffer import write_buffer

    if getattr(write_buffer.service_writes, "_nnjoules_patched", False):
        return
    original = write_buffer.service_writes

    def service_writes(self: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, *args, **kwargs).ravel()

    service_writes._nnjoules_patched = True  # type: ignore[attr-defined]
    write_buffer.service_writes = service_writes


def run_layer(layer: dict[str, int], array: tuple[int, int], sram_kb: tuple[int, int, int],
              dataflow: str) -> dict[str, Any]:
    """SCALE-Sim's cycles and SRAM/DRAM counts for one layer, and its wall time (s).

    ``layer`` has H, W, R, S, C, M, stride (square); ``dataflow`` is ``ws`` or ``os``.
    """
    patch_numpy2()
    from scalesim.scale_sim import scalesim

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "run.cfg").write_text(CONFIG.format(
            rows=array[0], cols=array[1], ifmap_kb=sram_kb[0], filter_kb=sram_kb[1],
            ofmap_kb=sram_kb[2], dataflow=dataflow))
        (folder / "topo.csv").write_text(TOPOLOGY_HEADER + (
            "layer, {H}, {W}, {R}, {S}, {C}, {M}, {stride},\n".format(**layer)))
        (folder / "layout.csv").write_text("Layer name,\n")
        start = time.perf_counter()
        sim = scalesim(save_disk_space=True, verbose=False, config=str(folder / "run.cfg"),
                       topology=str(folder / "topo.csv"), layout=str(folder / "layout.csv"))
        sim.run_scale(top_path=str(folder / "out"))
        wall = time.perf_counter() - start
        compute = _last_row(folder / "out" / "run" / "COMPUTE_REPORT.csv")
        detail = _last_row(folder / "out" / "run" / "DETAILED_ACCESS_REPORT.csv")
    return {
        "cycles_with_prefetch": int(float(compute[1])), "cycles": int(float(compute[2])),
        "stall_cycles": int(float(compute[3])),
        "sram_ifmap_reads": int(float(detail[3])), "sram_filter_reads": int(float(detail[6])),
        "sram_ofmap_writes": int(float(detail[9])), "dram_ifmap_reads": int(float(detail[12])),
        "dram_filter_reads": int(float(detail[15])),
        "dram_ofmap_writes": int(float(detail[18])), "wall_s": wall,
    }


def _last_row(path: Path) -> list[str]:
    with path.open() as handle:
        rows = [row for row in csv.reader(handle) if row]
    return [cell.strip() for cell in rows[-1]]

"""Plain-text tables of an `EnergyReport` (rich renders them; no colour when piped)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from nnjoules.energy.report import EnergyReport
    from nnjoules.energy.workload import Layer


_GATING = {"either": "weights or ifmaps", "ifmap": "ifmaps only", "none": "(never)",
           "compressed-weights": "weights or ifmaps (zero weights never read)"}


def si(value: float) -> str:
    """A number with an SI suffix and four significant digits.

    >>> si(714188480), si(0.5), si(1234)
    ('714.2M', '0.5', '1.234k')
    """
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g}{suffix}"
    return f"{value:.4g}"


def _shape(layer: Layer) -> str:
    """Channels in->out, ifmap size, filter size, and stride/groups/batch when not 1."""
    text = f"{layer.C * layer.G}->{layer.M * layer.G} {layer.H}x{layer.W} k{layer.R}x{layer.S}"
    for value, prefix in ((layer.U, "/"), (layer.G, " g"), (layer.N, " N")):
        if value > 1:
            text += f"{prefix}{value}"
    return text


def render_report(report: EnergyReport, *, width: int = 160) -> str:
    """The per-layer table, a totals row and the assumptions used."""
    total = report.total() or 1.0
    table = Table(title=f"{report.workload.name} on {report.hardware.name} "
                        f"(energy unit: {report.unit.value})", title_justify="left")
    for header in ("layer", "kind", "shape", "MACs", "non-skipped", "energy", "%",
                   "DRAM", "GLB", "array", "RF", "MAC", "E/MAC", "mapping m n e p q r t"):
        table.add_column(header, justify="left" if header in ("layer", "kind", "shape",
                                                               "mapping m n e p q r t")
                         else "right", no_wrap=True)
    for item in report.layers:
        levels = item.by_level()
        m = item.mapping
        table.add_row(item.name, item.layer.kind.value, _shape(item.layer), si(item.layer.macs),
                      si(item.energy.nonskipped_macs), si(item.total),
                      f"{100 * item.total / total:.1f}",
                      *(si(levels[k]) for k in ("dram", "glb", "array", "rf", "mac")),
                      f"{item.total / item.layer.macs:.2f}",
                      f"{m.m} {m.n} {m.e} {m.p} {m.q} {m.r} {m.t}")
    levels = report.by_level()
    table.add_section()
    table.add_row("total", "", f"{len(report.layers)} layers", si(report.macs()),
                  si(report.nonskipped_macs()), si(report.total()), "100.0",
                  *(si(levels[k]) for k in ("dram", "glb", "array", "rf", "mac")),
                  f"{report.total() / report.macs():.2f}", "")
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False)
    console.print(table)
    operands = report.by_operand()
    console.print(
        f"by operand: weights {si(operands['weights'])}, ifmaps {si(operands['ifmaps'])}, "
        f"ofmaps incl. psums {si(operands['psums'])}, computation {si(operands['computation'])}"
        f"  |  data movement {100 * report.data_movement() / total:.1f}% of energy")
    console.print(f"weights {si(report.weights())} ({si(report.nonzero_weights())} non-zero); "
                  f"DRAM compression: {report.compression.value}; MACs skipped on zero "
                  f"{_GATING[report.gating.value]}; dataflow: row-stationary")
    if report.workload.unmodelled:
        ops = ", ".join(f"{op.op} x{op.count}" for op in report.workload.unmodelled)
        console.print(f"not modelled (no energy counted): {ops}")
    for note in report.workload.notes:
        console.print(f"note: {note}")
    return buffer.getvalue()

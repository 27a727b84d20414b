"""Plain-text tables that fit a width and never cut a number.

A table is a list of `Column` values, each with a priority. `fit_columns` keeps the
columns that fit ``width`` characters, most important first (the rest are named in a
note under the table), and shortens only text columns marked ``shrink`` (layer names),
in the middle: ``encoder.lay…ers.3.mlp.0``. Numbers are always printed whole.

The width defaults to the terminal's (``shutil.get_terminal_size``: ``$COLUMNS`` first,
then the terminal of stdout), or `DEFAULT_WIDTH` characters when stdout is not a
terminal; widths below `MIN_WIDTH` are taken as `MIN_WIDTH`.
"""

from __future__ import annotations

import functools
import shutil
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnjoules.energy.results import LayerEstimate, NetworkEstimate, Totals
    from nnjoules.energy.workload import Layer

DEFAULT_WIDTH = 100  # characters, when stdout is not a terminal and $COLUMNS is unset
MIN_WIDTH = 40
GAP = "  "  # between columns
LABEL = 14  # width of the labels of the lines under a table
_GATING = {"either": "weights or ifmaps", "ifmap": "ifmaps only", "none": "(never)",
           "compressed-weights": "weights or ifmaps (zero weights never read)"}


def si(value: float) -> str:
    """A number with an SI suffix and four significant digits; beyond the suffixes,
    scientific notation.

    >>> si(714188480), si(0.5), si(1234), si(4.222e20)
    ('714.2M', '0.5', '1.234k', '4.222e+20')
    """
    if abs(value) >= 1e15:  # no suffix would keep the number short: 4.222e+08T reads badly
        return f"{value:.4g}"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.4g}{suffix}"
    return f"{value:.4g}"


# pJ per joule-based unit, largest first (ASCII "uJ", as `seconds` writes "us")
_JOULES = ((1e12, "J"), (1e9, "mJ"), (1e6, "uJ"), (1e3, "nJ"))


def energy_text(value: float, unit: str) -> str:
    """An energy for the lines under a table, with its unit: in pJ, the natural unit
    (pJ, nJ, uJ, mJ or J, four significant digits); in normalised units, `si`.

    Per-layer columns, CSV and JSON keep the report's unit (pJ); this is for totals.

    >>> energy_text(5.83e9, "pJ"), energy_text(24_544_000, "pJ"), energy_text(512.3, "pJ")
    ('5.83 mJ', '24.54 uJ', '512.3 pJ')
    >>> energy_text(999_960_000, "pJ"), energy_text(5.8e9, "normalized")
    ('1 mJ', '5.8G normalized')
    """
    if unit != "pJ":
        return f"{si(value)} {unit}"
    value = float(f"{value:.4g}")  # rounded first: 999.96 uJ reads 1 mJ, not 1000 uJ
    for factor, suffix in _JOULES:
        if abs(value) >= factor:
            return f"{value / factor:.4g} {suffix}"
    return f"{value:.4g} pJ"


def table_width(width: int | None = None) -> int:
    """``width``, or the terminal's (`DEFAULT_WIDTH` when not a terminal); >= `MIN_WIDTH`."""
    if width is None:
        width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return max(MIN_WIDTH, width)


def shorten_middle(text: str, size: int) -> str:
    """``text`` cut to ``size`` characters by replacing its middle with ``…``.

    A third is kept from the start and two thirds from the end, where module paths
    differ (``encoder.layers.encoder_layer_3.mlp.0``).

    >>> shorten_middle("encoder.layers.encoder_layer_3.mlp.0", 24), shorten_middle("fc", 24)
    ('encoder…er_layer_3.mlp.0', 'fc')
    """
    if len(text) <= size:
        return text
    head = (size - 1) // 3
    return text[:head] + "…" + text[len(text) - (size - 1 - head):]


def _distinct_size(cells: Sequence[str], least: int, most: int) -> int:
    """The narrowest width in [least, most] that keeps distinct cells distinct (else most)."""
    wanted = len(set(cells))
    for size in range(least, most):
        if len({shorten_middle(c, size) for c in cells}) == wanted:
            return size
    return most


@dataclass(frozen=True)
class Column:
    """One column of a text table.

    Attributes:
        header: the column's title.
        cells: one text per row.
        priority: 0 is always shown; higher numbers are dropped first when space runs out.
        left: align left (text) instead of right (numbers).
        shrink: the cells may be shortened in the middle (names; never numbers).
    """

    header: str
    cells: tuple[str, ...]
    priority: int = 0
    left: bool = False
    shrink: bool = False

    @property
    def natural(self) -> int:
        """Width that shows every cell whole."""
        return max([len(self.header), *(len(c) for c in self.cells)])

    def least(self, width: int) -> int:
        """Narrowest width this column may take in a table ``width`` characters wide."""
        if not self.shrink:
            return self.natural
        least = min(self.natural, max(len(self.header), 12, width // 4))
        return _distinct_size(self.cells, least, max(least, min(self.natural, width // 2)))


def fit_columns(columns: Sequence[Column], width: int) -> tuple[list[str], list[str]]:
    """The lines of a table at most ``width`` wide (when it can be), and the dropped headers.

    Columns are kept by priority (ties: left to right) while their natural widths fit;
    shrinkable columns first take their `Column.least` width, then share what is left.
    """
    order = sorted(range(len(columns)), key=lambda i: columns[i].priority)
    sizes: dict[int, int] = {}
    for i in order:
        need = sum(sizes.values()) + len(GAP) * len(sizes) + columns[i].least(width)
        if columns[i].priority == 0 or need <= width:
            sizes[i] = columns[i].least(width)
    spare = width - sum(sizes.values()) - len(GAP) * (len(sizes) - 1)
    for i in sorted(sizes):
        extra = min(max(spare, 0), columns[i].natural - sizes[i])
        sizes[i] += extra
        spare -= extra
    kept = [columns[i] for i in sorted(sizes)]
    widths = [sizes[i] for i in sorted(sizes)]
    lines = [_row([c.header for c in kept], kept, widths)]
    lines.append(GAP.join("-" * w for w in widths))
    for r in range(len(kept[0].cells) if kept else 0):
        lines.append(_row([c.cells[r] for c in kept], kept, widths))
    dropped = [columns[i].header for i in range(len(columns)) if i not in sizes]
    return lines, dropped


def _row(texts: list[str], columns: list[Column], widths: list[int]) -> str:
    cells = []
    for text, column, size in zip(texts, columns, widths, strict=True):
        text = shorten_middle(text, size) if column.shrink else text
        cells.append(text.ljust(size) if column.left else text.rjust(size))
    return GAP.join(cells).rstrip()


def wrap(text: str, width: int) -> list[str]:
    """``text`` wrapped to ``width`` (words kept whole; continuation lines indented)."""
    return textwrap.wrap(text, width=width, subsequent_indent="  ", break_on_hyphens=False)


def labelled(label: str, text: str, width: int) -> list[str]:
    """``label`` padded to `LABEL` characters, then ``text`` wrapped under itself."""
    lines = textwrap.wrap(text, width=width - LABEL, break_on_hyphens=False) or [""]
    return [(label if i == 0 else "").ljust(LABEL) + line for i, line in enumerate(lines)]


def render_table(title: str, columns: Sequence[Column], width: int | None = None,
                 ) -> list[str]:
    """Title, table and (when columns were dropped) a note naming them; see `fit_columns`."""
    size = table_width(width)
    lines, dropped = fit_columns(columns, size)
    out = [*wrap(title, size), *lines]
    if dropped:
        out += wrap(f"(left out to fit {size} columns: {', '.join(dropped)}; set COLUMNS "
                    "wider, or see --csv / --json)", size)
    return out


def _shape(layer: Layer) -> str:
    """Channels in->out, ifmap size, filter size, and stride/groups/batch when not 1."""
    text = f"{layer.C * layer.G}->{layer.M * layer.G} {layer.H}x{layer.W} k{layer.R}x{layer.S}"
    for value, prefix in ((layer.U, "/"), (layer.G, " g"), (layer.N, " N")):
        if value > 1:
            text += f"{prefix}{value}"
    return text


def per_mac(energy: float, macs: float) -> str:
    """Energy per MAC: two decimals, or `si` from 10,000 up (pJ presets with huge costs).

    >>> per_mac(2291, 100), per_mac(2.4847e19, 1e9), per_mac(1, 0)
    ('22.91', '24.85G', '-')
    """
    if not macs:
        return "-"
    value = energy / macs
    return f"{value:.2f}" if abs(value) < 1e4 else si(value)


def report_columns(report: NetworkEstimate) -> list[Column]:
    """The per-layer columns of ``report``, with their priorities."""
    total = report.total()
    items = report.layers
    levels = [item.by_level() for item in items]

    def col(header: str, cells: Sequence[str], priority: int, **kw: bool) -> Column:
        return Column(header, tuple(cells), priority, **kw)

    return [
        col("layer", [i.name for i in items], 0, left=True, shrink=True),
        col("kind", [i.layer.kind.value for i in items], 4, left=True),
        col("shape", [_shape(i.layer) for i in items], 8, left=True),
        col("MACs", [si(i.layer.macs) for i in items], 3),
        col("non-skipped", [si(i.energy.nonskipped_macs) for i in items], 7),
        col("energy", [si(i.total) for i in items], 0),
        col("%", [f"{100 * i.total / total:.1f}" if total else "-" for i in items], 1),
        *(col(header, [si(lv[key]) for lv in levels], priority)
          for header, key, priority in (("DRAM", "dram", 9), ("GLB", "glb", 11),
                                        ("array", "array", 12), ("RF", "rf", 10),
                                        ("MAC", "mac", 13))),
        col("E/MAC", [per_mac(i.total, i.layer.macs) for i in items], 5),
        col("cycles", [si(i.timing.cycles) for i in items], 6),
        col("bound", [i.timing.bound.value for i in items], 6, left=True),
        col(mapping_header(items), [" ".join(str(v) for v in i.mapping.as_dict().values())
                                    for i in items], 14, left=True),
    ]


def mapping_header(items: Sequence[LayerEstimate]) -> str:
    """``"mapping "`` and the dataflow's mapping variables (RS: ``m n e p q r t``)."""
    names = items[0].mapping.as_dict() if items else {}
    return " ".join(["mapping", *names])


def dataflow_text(name: str) -> str:
    """The dataflow's name, its ISCA 2016 abbreviation and source where it has one."""
    from nnjoules.energy.dataflows import ABBREVIATIONS

    abbr = ABBREVIATIONS.get(name)
    return f"{name} ({abbr}; Chen, Emer & Sze, ISCA 2016)" if abbr else name


def footer(report: NetworkEstimate, width: int) -> list[str]:
    """Network totals (energy, MACs, by level and operand), bits and assumptions; in a
    pJ report the energies in their natural unit (`energy_text`: 5.83 mJ)."""
    total, unit = report.total(), report.unit.value
    levels, operands = report.by_level(), report.by_operand()
    share = f"{100 * report.data_movement() / total:.1f}%" if total else "-"
    part = functools.partial(_part, unit=unit)
    by_level = ", ".join(f"{name} {part(levels[key])}" for name, key in (
        ("DRAM", "dram"), ("GLB", "glb"), ("array", "array"), ("RF", "rf"), ("MAC", "mac")))
    items = _items(report)
    per_item = f"; per item {part(total / items)}" if items else ""
    mac_unit = " pJ" if unit == "pJ" else ""  # the total no longer says pJ: this must
    lines = [
        ("total energy", f"{energy_text(total, unit)} for the batch{per_item} "
                         f"({per_mac(total, report.macs())}{mac_unit} per MAC; data movement "
                         f"{share})"),
        ("batch", batch_text(report)),
        ("MACs", f"{si(report.macs())} in {len(report.layers)} layers, "
                 f"{si(report.nonskipped_macs())} not skipped"),
        ("by level", by_level),
        ("by operand", f"weights {part(operands['weights'])}, ifmaps "
                       f"{part(operands['ifmaps'])}, ofmaps incl. psums "
                       f"{part(operands['psums'])}, computation "
                       f"{part(operands['computation'])}"),
        ("weights", f"{si(report.weights())} ({si(report.nonzero_weights())} non-zero)"),
        ("bits", bits_text(report)),
        ("time", time_text(report)),
        ("power", power_text(report)),
        ("assumptions", f"DRAM compression: {report.compression.value} (compressed moves: "
                        f"{report.compression_levels.value}); MACs skipped on zero "
                        f"{_GATING[report.gating.value]}; dataflow: "
                        f"{dataflow_text(report.dataflow)}"),
    ]
    if report.workload.unmodelled:
        lines.append(("not modelled", "no energy counted for " + ", ".join(
            f"{op.op} x{op.count}" for op in report.workload.unmodelled)))
    lines.extend(("note", note) for note in report.workload.notes)
    return [line for label, text in lines for line in labelled(label, text, width)]


def _part(value: float, unit: str) -> str:
    """A share of the total in a footer line: `energy_text` in pJ, else bare `si` (the
    total energy line names the normalised unit once)."""
    return energy_text(value, unit) if unit == "pJ" else si(value)


def _items(report: NetworkEstimate) -> int | None:
    """The input items the report is for: the workload's, or every layer's N when equal."""
    return report.items()


def seconds(value: float) -> str:
    """A duration with a readable unit.

    >>> seconds(0.1098), seconds(2.5e-5), seconds(3.0)
    ('109.8 ms', '25 us', '3 s')
    """
    for factor, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if value >= factor:
            return f"{value / factor:.4g} {suffix}"
    return f"{value / 1e-9:.4g} ns"


def power_cell(totals: Totals) -> str:
    """Average power for a table cell: ``"278 mW"`` in a pJ unit, else ``"5.79G"`` (the
    column header states the normalised unit per second)."""
    mw = totals.power_mw
    return f"{mw:.4g} mW" if mw is not None else si(totals.power)


def power_header(unit: str) -> str:
    """The header of a `power_cell` column: ``"power"``, with the unit when not absolute."""
    return "power" if unit == "pJ" else f"power ({unit}/s)"


def time_text(report: NetworkEstimate) -> str:
    """Latency per batch, throughput and the layers' bounds, at the hardware's clock."""
    t = report.timing()
    rate = f"; {t.throughput:.4g} inferences/s" if t.throughput is not None else ""
    bound = ", ".join(f"{n} {b}" for b, n in t.bound_layers.items() if n)
    return (f"{si(t.cycles)} cycles = {seconds(t.latency_s)} per batch at "
            f"{t.clock_mhz:g} MHz{rate}; layers bound by {bound} (compute: the PE array; "
            "dram, glb: that level's bandwidth)")


def power_text(report: NetworkEstimate) -> str:
    """Average power (energy / latency) and energy per item, in absolute units when known."""
    t = report.timing()
    if t.power_mw is not None:
        per_item = (f"; {t.energy_per_item_mj:.4g} mJ per inference"
                    if t.energy_per_item_mj is not None else "")
        return f"{t.power_mw:.4g} mW average (energy / latency){per_item}"
    return (f"{si(t.power)} {report.unit.value} units per second average (energy / "
            "latency); no absolute energy scale for this hardware: use a pJ preset such "
            "as eyeriss-65nm-pj for mW")


def batch_text(report: NetworkEstimate) -> str:
    """How many input items the energy is for, and the layers' N when that differs."""
    items = _items(report)
    seen = sorted({item.layer.N for item in report.layers})
    text = f"{items} input items, costed together" if items else "input items unknown"
    if seen != [items]:
        text += "; layer N (rows) " + ", ".join(map(str, seen))
    return text


def bits_text(report: NetworkEstimate) -> str:
    """The bit-widths used: ``weights 16, ifmaps 16, ofmaps 16`` (per layer when mixed)."""
    seen: dict[tuple[int, int, int], int] = {}
    for item in report.layers:
        p = item.layer.precision
        key = (p.weight_bits, p.ifmap_bits, p.ofmap_bits)
        seen[key] = seen.get(key, 0) + 1
    if len(seen) == 1:
        (w, i, o), = seen
        return f"weights {w}, ifmaps {i}, ofmaps {o}"
    return "weights/ifmaps/ofmaps " + ", ".join(
        f"{w}/{i}/{o} ({n} layers)" for (w, i, o), n in seen.items())


def render_report(report: NetworkEstimate, *, width: int | None = None) -> str:
    """The per-layer table, then the totals and assumptions on their own lines.

    Args:
        report: the estimate to show.
        width: most characters per line; default the terminal's (see the module doc).
    """
    size = table_width(width)
    title = f"{report.workload.name} on {report.hardware.name} (energy unit: {report.unit.value})"
    lines = render_table(title, report_columns(report), size)
    return "\n".join([*lines, "", *footer(report, size)]) + "\n"

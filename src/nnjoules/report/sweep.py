"""The result of a sweep: one point per grid setting, as CSV, JSON, a table and line plots.

Columns and fields are documented in ``docs/report-json.md``. Energies are in the base
hardware's unit; ``energy_per_item`` is the energy divided by the batch size N.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnjoules.energy.cost import Compression
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.results import Totals
from nnjoules.energy.sweep_params import PARAMETERS, format_value
from nnjoules.report.summary import rows_to_csv, write_text
from nnjoules.report.table import Column, render_table, si, table_width, wrap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SCHEMA_VERSION = 1
MAX_LINES = 8  # more combinations of the other parameters: plot best, median and worst


@dataclass(frozen=True)
class SweepPoint:
    """One grid point: its settings, the hardware they give, and its totals or error.

    Attributes:
        index: position in the grid (the last parameter varies fastest).
        settings: parameter name -> value at this point.
        hardware: the base hardware with this point's hardware settings applied.
        batch: the batch size N at this point.
        totals: the network's totals, or None when a layer fits no mapping.
        error: why no mapping fits, or None.
    """

    index: int
    settings: Mapping[str, Any]
    hardware: Hardware
    batch: int
    totals: Totals | None
    error: str | None

    @property
    def energy_per_item(self) -> float | None:
        """Energy per input item (energy / N), or None for a failed point."""
        return None if self.totals is None else self.totals.energy / self.batch


@dataclass(frozen=True)
class Sweep:
    """Every point of a sweep over one network, in grid order."""

    network: str
    base_hardware: Hardware
    compression: Compression
    batch: int
    parameters: tuple[tuple[str, tuple[Any, ...]], ...]
    points: tuple[SweepPoint, ...]
    dataflow: str = "row-stationary"

    @property
    def unit(self) -> str:
        """Energy unit of every point."""
        return self.base_hardware.unit.value

    @property
    def names(self) -> tuple[str, ...]:
        """The swept parameters, in order."""
        return tuple(name for name, _ in self.parameters)

    def ok_points(self) -> list[SweepPoint]:
        """Points whose every layer was mapped."""
        return [p for p in self.points if p.totals is not None]

    def best(self) -> SweepPoint | None:
        """The point with the lowest energy per item (first one on ties)."""
        ok = self.ok_points()
        return min(ok, key=lambda p: p.energy_per_item or 0.0) if ok else None

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per point (CSV form); totals are empty for a failed point."""
        blank = dict.fromkeys(_total_columns())
        out = []
        for point in self.points:
            row: dict[str, Any] = {"index": point.index}
            row |= {name: format_value(point.settings[name]) for name in self.names}
            row |= {"network": self.network, "hardware": self.base_hardware.name,
                    "unit": self.unit, "compression": format_value(
                        point.settings.get("compression", self.compression)),
                    "dataflow": point.settings.get("dataflow", self.dataflow),
                    "batch": point.batch}
            row |= point.totals.columns() if point.totals is not None else blank
            row |= {"energy_per_item": point.energy_per_item, "error": point.error}
            out.append(row)
        return out

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text, one row per grid point."""
        text = rows_to_csv(self.rows())
        if path is not None:
            write_text(path, text)
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the grid, the base hardware and every point."""
        from nnjoules.energy.hardware.loading import hardware_to_dict
        from nnjoules.version import __version__

        return {"schema_version": SCHEMA_VERSION, "kind": "sweep",
                "nnjoules_version": __version__, "network": self.network, "unit": self.unit,
                "compression": self.compression.value, "batch": self.batch,
                "dataflow": self.dataflow, "hardware": hardware_to_dict(self.base_hardware),
                "parameters": {name: [format_value(v) for v in values]
                               for name, values in self.parameters},
                "points": self.rows()}

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            write_text(path, text + "\n")
        return text

    def to_table(self, *, width: int | None = None) -> str:
        """A readable table of every point, with its energy relative to the best.

        Args:
            width: most characters per line; default the terminal's (see
                `nnjoules.report.table`). Columns that do not fit are left out and named.
        """
        best = self.best()
        lowest = best.energy_per_item if best is not None else None
        per_item = "batch" in self.names or self.batch != 1
        cells: dict[str, list[str]] = {k: [] for k in ("#", *self.names, "energy", "per item",
                                                       "x best", "E/MAC", "DRAM %")}
        for point in self.points:
            cells["#"].append(str(point.index))
            for name in self.names:
                cells[name].append(format_value(point.settings[name]))
            if point.totals is None:
                for key, text in (("energy", "no mapping"), ("per item", ""), ("x best", ""),
                                  ("E/MAC", ""), ("DRAM %", "")):
                    cells[key].append(text)
                continue
            item = point.energy_per_item or 0.0
            ratio = item / lowest if lowest else 0.0
            cells["energy"].append(si(point.totals.energy))
            cells["per item"].append(si(item))
            cells["x best"].append(f"{ratio:.2f}{' *' if point is best else ''}")
            cells["E/MAC"].append(f"{point.totals.energy_per_mac:.2f}")
            cells["DRAM %"].append(_percent(point.totals.by_level["dram"],
                                            point.totals.energy))
        priorities = {"energy": 0, "per item": 1, "x best": 1, "E/MAC": 3, "DRAM %": 4}
        columns = [Column(key, tuple(texts), priorities.get(key, 0), left=key in self.names)
                   for key, texts in cells.items() if key != "per item" or per_item]
        size = table_width(width)
        count = len(self.points)
        flow = "" if self.dataflow == "row-stationary" else f" ({self.dataflow})"
        title = (f"{self.network} on {self.base_hardware.name}{flow}: sweep of {count} "
                 f"point{'s' if count != 1 else ''} (energy unit: {self.unit})")
        lines = render_table(title, columns, size)
        for point in self.points:
            if point.error is not None:
                lines += wrap(f"point {point.index}: {point.error}", size)
        return "\n".join(lines) + "\n"

    def plot(self) -> Figure:
        """Energy per item against each parameter, one panel per parameter."""
        return plot_sweep(self)


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def _total_columns() -> list[str]:
    zero = Totals(unit="", energy=0.0, computation=0.0, data_movement=0.0,
                  by_level=dict.fromkeys(("dram", "glb", "array", "rf", "mac"), 0.0),
                  by_operand=dict.fromkeys(("weights", "ifmaps", "psums", "computation"), 0.0),
                  macs=0, nonskipped_macs=0.0, weights=0, nonzero_weights=0.0)
    return list(zero.columns())


def plot_sweep(result: Sweep) -> Figure:
    """One panel per parameter: energy per item against its values.

    Each line holds the other parameters fixed; with more than `MAX_LINES` such
    combinations a panel shows the best, median and worst over them instead. Points
    where no mapping fits are left out (gaps in the lines).
    """
    from nnjoules.report.plots import SI_FORMATTER, energy_label, new_figure

    count = len(result.parameters)
    columns = min(count, 3)
    rows = -(-count // columns)
    fig = new_figure(5.2 * columns + 1.5, 4.0 * rows)
    by_settings = {tuple(p.settings[n] for n in result.names): p for p in result.points}
    for index, (name, values) in enumerate(result.parameters):
        ax = fig.add_subplot(rows, columns, index + 1)
        others = [(n, v) for n, v in result.parameters if n != name]
        lines = _lines(result.names, name, values, others, by_settings)
        numeric = PARAMETERS[name].numeric
        xs = list(values) if numeric else list(range(len(values)))
        for label, ys in lines:
            ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=label)
        if numeric and min(xs) > 0 and max(xs) / min(xs) >= 8:
            ax.set_xscale("log", base=2)
            ax.minorticks_off()
        ax.set_xticks(xs, [format_value(v) for v in values])
        ax.set_xlabel(f"{name}: {PARAMETERS[name].help}", fontsize="small")
        ax.set_ylabel(energy_label(result.unit, result.base_hardware.word_bits)
                      .replace("energy ", "energy per item\n", 1), fontsize="small")
        ax.yaxis.set_major_formatter(SI_FORMATTER)
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize="x-small")
    fig.suptitle(f"{result.network} on {result.base_hardware.name}: what-if sweep "
                 f"({len(result.points)} points)")
    return fig


def _lines(names: tuple[str, ...], name: str, values: tuple[Any, ...],
           others: list[tuple[str, tuple[Any, ...]]],
           by_settings: Mapping[tuple[Any, ...], SweepPoint],
           ) -> list[tuple[str, list[float | None]]]:
    import itertools

    def at(value: Any, fixed: Mapping[str, Any]) -> float | None:
        key = tuple(value if n == name else fixed[n] for n in names)
        return by_settings[key].energy_per_item

    combos = [dict(zip([n for n, _ in others], c, strict=True))
              for c in itertools.product(*(v for _, v in others))]
    if len(combos) <= MAX_LINES:
        return [(", ".join(f"{n}={format_value(v)}" for n, v in fixed.items()) or "energy",
                 [at(value, fixed) for value in values]) for fixed in combos]
    series: dict[str, list[float | None]] = {"best": [], "median": [], "worst": []}
    for value in values:
        found = [y for y in (at(value, fixed) for fixed in combos) if y is not None]
        for key, pick in (("best", min), ("median", statistics.median), ("worst", max)):
            series[key].append(pick(found) if found else None)
    return [(f"{key} over the other parameters", ys) for key, ys in series.items()]

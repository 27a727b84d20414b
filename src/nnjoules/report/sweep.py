"""The result of a sweep: one point per grid setting, as CSV, JSON, a table and line plots.

Columns and fields are documented in ``docs/report-json.md``. Energies are in the base
hardware's unit; ``energy_per_item`` is the energy divided by the batch size N.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnjoules.energy.cost import Compression
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.results import Totals
from nnjoules.energy.sweep_params import PARAMETERS, format_value
from nnjoules.io import json_text
from nnjoules.report.pareto import pareto_mask
from nnjoules.report.summary import rows_to_csv, write_text
from nnjoules.report.table import (
    Column,
    per_mac,
    power_cell,
    power_header,
    render_table,
    seconds,
    si,
    table_width,
    wrap,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

SCHEMA_VERSION = 1
# What the Pareto front trades off, all minimised: energy per inference, latency per batch
# (the time a user waits), and the chip's size (storage and PEs).
OBJECTIVES = ("energy_per_item", "latency_s", "onchip_bytes", "pes")
MAX_LINES = 8  # more combinations of the other parameters: plot best, median and worst
PARETO_LABEL = "Pareto front (energy, latency, on-chip bytes, PEs)"


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

    @property
    def latency_s(self) -> float | None:
        """Seconds per batch at this point's clock, or None for a failed point."""
        return None if self.totals is None else self.totals.latency_s

    @property
    def pes(self) -> int:
        """Processing elements of this point's hardware."""
        return self.hardware.pe_array.num_pes

    @property
    def onchip_bytes(self) -> int:
        """On-chip storage, bytes: the global buffer plus every PE's register file."""
        return onchip_bytes(self.hardware)

    def objectives(self) -> tuple[float, ...] | None:
        """The values named by `OBJECTIVES` (all minimised), or None for a failed point."""
        item, latency = self.energy_per_item, self.latency_s
        if item is None or latency is None:
            return None
        return (item, latency, self.onchip_bytes, self.pes)


def onchip_bytes(hardware: Hardware) -> int:
    """Bytes of on-chip storage: global buffer + register file per PE x PEs.

    >>> from nnjoules.energy.hardware import eyeriss
    >>> onchip_bytes(eyeriss())  # 108 kB + (448 + 24 + 48) B x 168 PEs
    197952
    """
    rf = hardware.rf
    per_pe = rf.size_bytes if rf.size_bytes is not None else \
        (rf.weights_bytes or 0) + (rf.ifmaps_bytes or 0) + (rf.psums_bytes or 0)
    return hardware.glb.size_bytes + per_pe * hardware.pe_array.num_pes


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

    @cached_property
    def pareto_indices(self) -> frozenset[int]:
        """Grid indices of the points on the Pareto front of `OBJECTIVES`.

        A mapped point is on the front when no other mapped point is at least as good
        in energy per item, latency, on-chip bytes and PEs and strictly better in one.
        """
        ok = [(p.index, p.objectives()) for p in self.points if p.totals is not None]
        mask = pareto_mask([vector for _, vector in ok if vector is not None])
        return frozenset(index for (index, _), on in zip(ok, mask, strict=True) if on)

    def pareto(self) -> list[SweepPoint]:
        """The points on the Pareto front (see `pareto_indices`), in grid order."""
        return [p for p in self.points if p.index in self.pareto_indices]

    def columns(self) -> list[str]:
        """The CSV header: the keys of every `row`, in order; a swept parameter's column
        (e.g. ``batch``, ``clock_mhz``) comes once, after ``index``."""
        fixed = ["network", "hardware", "unit", "compression", "dataflow", "batch", "pes",
                 "onchip_bytes", *_total_columns(), "energy_per_item", "pareto", "error"]
        return ["index", *self.names, *(c for c in fixed if c not in self.names)]

    def row(self, point: SweepPoint, *, pareto: bool | None) -> dict[str, Any]:
        """The CSV row of ``point``; ``pareto`` None leaves that cell empty (not known yet)."""
        row: dict[str, Any] = {"index": point.index}
        row |= {name: format_value(point.settings[name]) for name in self.names}
        row |= {"network": self.network, "hardware": self.base_hardware.name,
                "unit": self.unit, "compression": format_value(
                    point.settings.get("compression", self.compression)),
                "dataflow": point.settings.get("dataflow", self.dataflow),
                "batch": point.batch, "pes": point.pes, "onchip_bytes": point.onchip_bytes}
        row |= point.totals.columns() if point.totals is not None else \
            dict.fromkeys(_total_columns())
        row |= {"energy_per_item": point.energy_per_item,
                "pareto": None if point.totals is None else pareto, "error": point.error}
        # A swept parameter's cell is its value as typed (the totals' clock_mhz is a float).
        return row | {name: format_value(point.settings[name]) for name in self.names}

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per point (CSV form); totals are empty for a failed point."""
        front = self.pareto_indices
        return [self.row(point, pareto=point.index in front) for point in self.points]

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text, one row per grid point."""
        text = rows_to_csv(self.rows(), self.columns())
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
        return json_text(self.to_dict(), path)

    def to_table(self, *, width: int | None = None) -> str:
        """A readable table of every point, with its energy relative to the best.

        Args:
            width: most characters per line; default the terminal's (see
                `nnjoules.report.table`). Columns that do not fit are left out and named.
        """
        best = self.best()
        lowest = best.energy_per_item if best is not None else None
        per_item = "batch" in self.names or self.batch != 1
        power = power_header(self.unit)
        cells: dict[str, list[str]] = {k: [] for k in ("#", *self.names, "energy", "per item",
                                                       "x best", "latency", power, "Pareto",
                                                       "E/MAC", "DRAM %")}
        front = self.pareto_indices
        for point in self.points:
            cells["#"].append(str(point.index))
            for name in self.names:
                cells[name].append(format_value(point.settings[name]))
            if point.totals is None:
                for key in cells:
                    if key != "#" and key not in self.names:
                        cells[key].append("no mapping" if key == "energy" else "")
                continue
            item = point.energy_per_item or 0.0
            ratio = item / lowest if lowest else 0.0
            cells["energy"].append(si(point.totals.energy))
            cells["per item"].append(si(item))
            cells["x best"].append(f"{ratio:.2f}{' *' if point is best else ''}")
            cells["latency"].append(seconds(point.totals.latency_s))
            cells[power].append(power_cell(point.totals))
            cells["Pareto"].append("yes" if point.index in front else "")
            cells["E/MAC"].append(per_mac(point.totals.energy, point.totals.macs))
            cells["DRAM %"].append(_percent(point.totals.by_level["dram"],
                                            point.totals.energy))
        priorities = {"energy": 0, "per item": 1, "x best": 1, "latency": 1, power: 3,
                      "Pareto": 2, "E/MAC": 4, "DRAM %": 5}
        columns = [Column(key, tuple(texts), priorities.get(key, 0), left=key in self.names)
                   for key, texts in cells.items() if key != "per item" or per_item]
        size = table_width(width)
        count = len(self.points)
        flow = "" if self.dataflow == "row-stationary" else f" ({self.dataflow})"
        title = (f"{self.network} on {self.base_hardware.name}{flow}: sweep of {count} "
                 f"point{'s' if count != 1 else ''} (energy unit: {self.unit}; latency per "
                 "batch)")
        lines = render_table(title, columns, size)
        for point in self.points:
            if point.error is not None:
                lines += wrap(f"point {point.index}: {point.error}", size)
        return "\n".join(lines) + "\n"

    def plot(self) -> Figure:
        """Energy per item against each parameter, one panel per parameter; points on
        the Pareto front ringed (see `plot_sweeps`)."""
        return plot_sweeps([self])

    def plot_latency(self) -> Figure:
        """Energy per item against latency per batch, every mapped point; the Pareto front
        ringed (see `nnjoules.report.sweep_latency`)."""
        from nnjoules.report.sweep_latency import plot_sweeps_latency

        return plot_sweeps_latency([self])


def sweeps_to_json(sweeps: Sequence[Sweep]) -> str:
    """The JSON of a sweep of several networks: ``{"kind": "sweeps", "sweeps": [...]}``,
    each entry a single sweep's JSON object (`Sweep.to_dict`)."""
    from nnjoules.version import __version__

    return json_text({"schema_version": SCHEMA_VERSION, "kind": "sweeps",
                      "nnjoules_version": __version__,
                      "sweeps": [s.to_dict() for s in sweeps]})


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"


def _total_columns() -> list[str]:
    zero = Totals(unit="normalized", energy=0.0, computation=0.0, data_movement=0.0,
                  by_level=dict.fromkeys(("dram", "glb", "array", "rf", "mac"), 0.0),
                  by_operand=dict.fromkeys(("weights", "ifmaps", "psums", "computation"), 0.0),
                  macs=0, nonskipped_macs=0.0, weights=0, nonzero_weights=0.0, cycles=1,
                  clock_mhz=1.0, items=1, bound_layers={})
    return list(zero.columns())


def plot_sweep(result: Sweep) -> Figure:
    """The plot of one sweep (see `plot_sweeps`)."""
    return plot_sweeps([result])


def plot_sweeps(results: Sequence[Sweep]) -> Figure:
    """Energy per item against each parameter: one panel per parameter (up to 3 a row for
    one sweep; one row per network for several).

    Each line holds the other parameters fixed; with more than `MAX_LINES` such
    combinations a panel shows the best, median and worst over them instead. Points
    where no mapping fits are left out (gaps in the lines). Points on the Pareto front
    (`Sweep.pareto`) are ringed in red on every panel.
    """
    from nnjoules.report.plots import new_figure

    count = len(results[0].parameters)
    if len(results) == 1:
        columns = min(count, 3)
        rows = -(-count // columns)
        fig = new_figure(5.2 * columns + 1.5, 4.0 * rows)
        _draw(fig, results[0], rows, columns)
        return fig
    fig = new_figure(5.2 * count + 1.5, 4.4 * len(results))
    for sub, result in zip(fig.subfigures(len(results), 1, squeeze=False)[:, 0], results,
                           strict=True):
        _draw(sub, result, 1, count)
    return fig


def _draw(target: Figure | SubFigure, result: Sweep, rows: int, columns: int) -> None:
    from nnjoules.report.plots import SI_FORMATTER, energy_label

    by_settings = {tuple(p.settings[n] for n in result.names): p for p in result.points}
    front = result.pareto()
    for index, (name, values) in enumerate(result.parameters):
        ax = target.add_subplot(rows, columns, index + 1)
        others = [(n, v) for n, v in result.parameters if n != name]
        lines = _lines(result.names, name, values, others, by_settings)
        numeric = PARAMETERS[name].numeric
        xs = list(values) if numeric else list(range(len(values)))
        for label, ys in lines:
            ax.plot(xs, [float("nan") if y is None else y for y in ys], marker="o", label=label)
        position = dict(zip(values, xs, strict=True))
        if front:  # a scatter, not a line: the panel's lines stay the energies above
            ax.scatter([position[p.settings[name]] for p in front],
                       [p.energy_per_item or 0.0 for p in front], s=110, facecolors="none",
                       edgecolors="#c44e52", linewidths=1.5, zorder=3, label=PARETO_LABEL)
        if numeric and min(xs) > 0 and max(xs) / min(xs) >= 8:
            ax.set_xscale("log", base=2)
            ax.minorticks_off()
        ax.set_xticks(xs, [format_value(v) for v in values])
        ax.set_xlabel(f"{name}: {PARAMETERS[name].help}", fontsize="small")
        ax.set_ylabel(energy_label(result.unit, result.base_hardware.word_bits)
                      .replace("energy ", "energy per item\n", 1), fontsize="small")
        ax.yaxis.set_major_formatter(SI_FORMATTER)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    target.suptitle(f"{result.network} on {result.base_hardware.name}: what-if sweep "
                    f"({len(result.points)} points, {len(front)} on the Pareto front)")


def _lines(names: tuple[str, ...], name: str, values: tuple[Any, ...],
           others: list[tuple[str, tuple[Any, ...]]],
           by_settings: Mapping[tuple[Any, ...], SweepPoint],
           ) -> list[tuple[str, list[float | None]]]:
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

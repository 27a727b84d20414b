"""Comparing reports: several networks on one hardware, or one network on several.

Every number is also given as a ratio to the first entry, the paper's way of showing
that a network with far fewer weights can burn more energy.

Example:

    >>> from nnjoules.energy.estimate import estimate_workload
    >>> from nnjoules.energy.hardware import eyeriss
    >>> from nnjoules.energy.workload import Layer, LayerKind, Workload
    >>> def net(name, m):
    ...     layer = Layer("c", LayerKind.CONV, N=1, M=m, C=3, H=4, W=4, R=1, S=1, E=4, F=4)
    ...     return estimate_workload(Workload(name, (layer,)), eyeriss())
    >>> result = compare([net("small", 2), net("wide", 8)])
    >>> result.labels, result.ratios()[1]["macs"]  # 8 filters against 2
    (('small', 'wide'), 4.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnjoules.energy.results import Totals
from nnjoules.errors import InputError
from nnjoules.io import json_text
from nnjoules.report.summary import rows_to_csv, write_text
from nnjoules.report.table import (
    Column,
    per_mac,
    power_cell,
    power_header,
    render_table,
    seconds,
    si,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nnjoules.energy.results import NetworkEstimate

SCHEMA_VERSION = 1
RATIO_KEYS = ("weights", "nonzero_weights", "macs", "nonskipped_macs", "energy", "latency_s")


@dataclass(frozen=True)
class Comparison:
    """Reports side by side, each under a label; ratios are to the first.

    Attributes:
        labels: one unique label per report (network name, hardware name, or both).
        reports: the reports, all in one energy unit.
    """

    labels: tuple[str, ...]
    reports: tuple[NetworkEstimate, ...]

    def __post_init__(self) -> None:
        if not self.reports:
            raise InputError("nothing to compare: give at least one report")
        if len(self.labels) != len(self.reports):
            raise InputError(f"{len(self.labels)} labels for {len(self.reports)} reports")
        if len(set(self.labels)) != len(self.labels):
            raise InputError(f"labels must be unique, got {list(self.labels)}")
        units = {report.unit.value for report in self.reports}
        if len(units) > 1:
            raise InputError(f"cannot compare energies in different units ({sorted(units)}): "
                             "use hardware descriptions that share a unit")

    @property
    def unit(self) -> str:
        """The energy unit of every report."""
        return self.reports[0].unit.value

    def totals(self) -> tuple[Totals, ...]:
        """Whole-network totals of each report."""
        return tuple(Totals.of(report) for report in self.reports)

    def ratios(self) -> list[dict[str, float | None]]:
        """Per entry, weights, non-zero weights, MACs, non-skipped MACs, energy and latency
        over the first entry's (``None`` where the first entry's value is 0)."""
        totals = self.totals()
        first = totals[0]
        return [{key: _ratio(getattr(t, key), getattr(first, key)) for key in RATIO_KEYS}
                for t in totals]

    def rows(self) -> list[dict[str, Any]]:
        """One flat dict per entry: identity, totals and ``*_ratio`` columns (CSV form)."""
        out = []
        for label, report, totals, ratios in zip(self.labels, self.reports, self.totals(),
                                                 self.ratios(), strict=True):
            row: dict[str, Any] = {
                "label": label, "network": report.workload.name,
                "hardware": report.hardware.name, "unit": report.unit.value,
                "compression": report.compression.value, "bits": _bits(report),
                "layers": len(report.layers)}
            row |= totals.columns()
            row |= {f"{key}_ratio": value for key, value in ratios.items()}
            out.append(row)
        return out

    def to_csv(self, path: str | Path | None = None) -> str:
        """CSV text, one row per entry (columns: ``docs/report-json.md``)."""
        text = rows_to_csv(self.rows())
        if path is not None:
            write_text(path, text)
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the rows, plus each entry's full report."""
        from nnjoules.version import __version__

        return {"schema_version": SCHEMA_VERSION, "kind": "comparison",
                "nnjoules_version": __version__, "unit": self.unit,
                "baseline": self.labels[0],
                "entries": [row | {"report": report.to_dict()}
                            for row, report in zip(self.rows(), self.reports, strict=True)]}

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; also written atomically to ``path`` when given."""
        return json_text(self.to_dict(), path)

    def to_table(self, *, width: int | None = None) -> str:
        """A readable table: totals with ratios to the first entry.

        Args:
            width: most characters per line; default the terminal's (see
                `nnjoules.report.table`). Columns that do not fit are left out and named.
        """
        rows = self.rows()

        def col(header: str, cells: list[str], priority: int, **kw: bool) -> Column:
            return Column(header, tuple(cells), priority, **kw)

        columns = [col("entry", [r["label"] for r in rows], 0, left=True, shrink=True),
                   col("network", [r["network"] for r in rows], 8, left=True, shrink=True),
                   col("hardware", [r["hardware"] for r in rows], 9, left=True, shrink=True),
                   col("bits W/I/O", [r["bits"] for r in rows], 3, left=True)]
        for header, key, priority in (("weights", "weights", 4), ("MACs", "macs", 2),
                                      ("non-skipped", "nonskipped_macs", 5),
                                      ("energy", "energy", 0)):  # value and ratio together
            columns.append(col(f"{header} (x)", [f"{si(r[key])} {_times(r[f'{key}_ratio'])}"
                                                 for r in rows], priority))
        columns += [col("latency (x)", [f"{seconds(r['latency_s'])} "
                                        f"{_times(r['latency_s_ratio'])}" for r in rows], 1),
                    col(power_header(self.unit), [power_cell(t) for t in self.totals()], 3),
                    col("E/MAC", [per_mac(r["energy"], r["macs"]) for r in rows], 3),
                    col("DRAM %", [_percent(r["energy_dram"], r["energy"]) for r in rows], 6),
                    col("data movement %", [_percent(r["data_movement"], r["energy"])
                                            for r in rows], 7)]
        title = (f"comparison (energy unit: {self.unit}; latency per batch; x = ratio to "
                 f"{self.labels[0]})")
        return "\n".join(render_table(title, columns, width)) + "\n"

    def plot(self) -> Figure:
        """Ratios of weights, MACs and energy to the first entry; energy by operand and level."""
        from nnjoules.report.plots import plot_comparison

        return plot_comparison(self.labels, self.totals(),
                               word_bits=self.reports[0].hardware.word_bits)


def compare(reports: Sequence[NetworkEstimate], labels: Sequence[str] | None = None) -> Comparison:
    """Put ``reports`` side by side; the first is the baseline of every ratio.

    Args:
        reports: one or more reports in one energy unit.
        labels: a unique label per report; by default the network names, or the
            hardware names when every report is of one network, or ``network on hardware``.

    Raises:
        InputError: no reports, mixed units, or labels that are not unique.
    """
    reports = tuple(reports)
    return Comparison(labels=tuple(labels) if labels is not None else default_labels(reports),
                      reports=reports)


def default_labels(reports: Sequence[NetworkEstimate]) -> tuple[str, ...]:
    """Network names if they are unique, else hardware names, else both, else numbered."""
    candidates = ([r.workload.name for r in reports], [r.hardware.name for r in reports],
                  [f"{r.workload.name} on {r.hardware.name}" for r in reports])
    for labels in candidates:
        if len(set(labels)) == len(labels):
            return tuple(labels)
    return tuple(f"{label} #{i + 1}" for i, label in enumerate(candidates[2]))


def _bits(report: NetworkEstimate) -> str:
    """Bit-widths ``W/I/O`` of the weights, ifmaps and ofmaps (``8/8/8``), or ``mixed``:
    hardware of other word widths are compared at their own widths, so say which."""
    widths = {(lay.layer.precision.weight_bits, lay.layer.precision.ifmap_bits,
               lay.layer.precision.ofmap_bits) for lay in report.layers}
    return "/".join(map(str, widths.pop())) if len(widths) == 1 else "mixed"


def _ratio(value: float, reference: float) -> float | None:
    return value / reference if reference else None


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}" if whole else "-"

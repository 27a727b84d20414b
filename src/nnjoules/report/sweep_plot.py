"""Line plots of sweeps: energy per item against each parameter, the Pareto front ringed.

One row of panels per network (`plot_sweeps` of several sweeps gives one figure, one
row each). Each line holds the other parameters fixed; with more than `MAX_LINES` such
combinations a panel shows the best, median and worst over them instead. Points where
no mapping fits are left out (gaps in the lines). Points on the Pareto front of energy
per item, on-chip bytes and PEs (`Sweep.pareto`) are drawn as red rings on every panel.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nnjoules.energy.sweep_params import PARAMETERS, format_value

if TYPE_CHECKING:
    from matplotlib.figure import Figure, SubFigure

    from nnjoules.report.sweep import Sweep, SweepPoint

MAX_LINES = 8  # more combinations of the other parameters: plot best, median and worst
PARETO_LABEL = "Pareto front (energy, on-chip bytes, PEs)"


def plot_sweep(result: Sweep) -> Figure:
    """The plot of one sweep (see the module docstring)."""
    return plot_sweeps([result])


def plot_sweeps(results: Sequence[Sweep]) -> Figure:
    """One row of panels per sweep, one panel per parameter (up to 3 per row of a
    single sweep; all in one row when there are several networks)."""
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

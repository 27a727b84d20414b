"""Energy against latency across a sweep: the trade architects make, Pareto front marked.

One panel per network: every mapped point at (latency per batch, energy per item); the
points on the sweep's Pareto front (`Sweep.pareto`: energy, latency, on-chip bytes and
PEs) ringed in red; and a dashed step line through the points that no other point beats
in energy *and* latency alone (the front of the two axes drawn, `energy_latency_front`).
Both axes turn logarithmic when their values span 8x or more. Points where no mapping
fits are left out.

Example: the chart of a clock sweep has one point per clock, all at the same energy.

    >>> from nnjoules.energy.sweep import sweep
    >>> from nnjoules.energy.workload import Layer, LayerKind, Workload
    >>> layer = Layer("c", LayerKind.CONV, N=1, M=4, C=3, H=6, W=6, R=3, S=3, E=4, F=4)
    >>> result = sweep(Workload("toy", (layer,)), {"clock_mhz": ["100", "400"]})
    >>> [p.settings["clock_mhz"] for p in energy_latency_front(result)]  # 400 MHz: faster
    [400.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.ticker import FuncFormatter

from nnjoules.report.pareto import pareto_mask
from nnjoules.report.table import seconds, si

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from nnjoules.report.sweep import Sweep, SweepPoint

FRONT_LABEL = "Pareto front (energy, latency, on-chip bytes, PEs)"
LINE_LABEL = "energy-latency front"


def energy_latency_front(result: Sweep) -> list[SweepPoint]:
    """The mapped points that no other beats in both energy per item and latency, in
    order of latency (the dashed line of the chart)."""
    ok = result.ok_points()
    mask = pareto_mask([(p.energy_per_item or 0.0, p.latency_s or 0.0) for p in ok])
    front = [p for p, on in zip(ok, mask, strict=True) if on]
    return sorted(front, key=lambda p: (p.latency_s or 0.0, p.energy_per_item or 0.0))


def plot_sweeps_latency(results: Sequence[Sweep]) -> Figure:
    """Energy per item against latency per batch, one panel per sweep (network).

    Raises:
        ValueError: no sweep given.
    """
    from nnjoules.report.plots import new_figure

    if not results:
        raise ValueError("no sweep to plot")
    columns = min(len(results), 3)
    rows = -(-len(results) // columns)
    fig = new_figure(6.0 * columns + 0.5, 4.6 * rows)
    for index, result in enumerate(results):
        _draw(fig.add_subplot(rows, columns, index + 1), result)
    return fig


def _wide(values: Sequence[float]) -> bool:
    """Whether positive ``values`` span 8x or more (then the axis is logarithmic)."""
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 8


def _draw(ax: Axes, result: Sweep) -> None:
    from nnjoules.report.plots import energy_label

    ok = result.ok_points()
    xs = [p.latency_s or 0.0 for p in ok]
    ys = [p.energy_per_item or 0.0 for p in ok]
    ax.scatter(xs, ys, s=24, color="#4c72b0", zorder=2,
               label=f"grid points ({len(ok)} mapped)")
    line = energy_latency_front(result)
    if len(line) > 1:  # one point beats all others in both: no trade-off to draw
        ax.plot([p.latency_s or 0.0 for p in line], [p.energy_per_item or 0.0 for p in line],
                color="#555555", linestyle="--", drawstyle="steps-post", linewidth=1.0,
                zorder=1, label=LINE_LABEL)
    front = result.pareto()
    ax.scatter([p.latency_s or 0.0 for p in front], [p.energy_per_item or 0.0 for p in front],
               s=110, facecolors="none", edgecolors="#c44e52", linewidths=1.5, zorder=3,
               label=FRONT_LABEL)
    if _wide(xs):
        ax.set_xscale("log")
    if _wide(ys):
        ax.set_yscale("log")
    for axis, formatter in ((ax.xaxis, seconds), (ax.yaxis, si)):
        axis.set_major_formatter(FuncFormatter(lambda v, _p, f=formatter: f(v)))
        axis.set_minor_formatter(FuncFormatter(  # log axes: label 2x and 5x minor ticks
            lambda v, _p, f=formatter: f(v) if v > 0 and f"{v:e}"[0] in "25" else ""))
    clock = sorted({p.hardware.clock_mhz for p in ok})
    at = f"{clock[0]:g} MHz" if len(clock) == 1 else "each point's clock"
    ax.set_xlabel(f"latency per batch (at {at})", fontsize="small")
    ax.set_ylabel(energy_label(result.unit, result.base_hardware.word_bits)
                  .replace("energy ", "energy per item\n", 1), fontsize="small")
    ax.set_title(f"{result.network} on {result.base_hardware.name}: energy against latency\n"
                 f"({len(result.points)} points, {len(front)} on the Pareto front)",
                 fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")

"""Charts of where the energy goes: matplotlib `Figure`s, saved as PNG or SVG.

Figures are built on the Agg canvas without pyplot, so nothing here needs a display
or touches pyplot's global state; a notebook still shows a returned `Figure`.

Kinds of report chart (``NetworkEstimate.plot(kind=...)``):

* ``"operand"``: per-layer energy, stacked by the four parts of Yang et al.: ifmaps,
  ofmaps (incl. psums), weights, computation;
* ``"level"``: per-layer energy, stacked by DRAM, GLB, array, RF and MAC;
* ``"summary"``: the network's energy by operand and by level, with shares;
* ``"proxies"``: per layer, its share of the network's weights, MACs, non-skipped MACs
  and energy, side by side (weights and MACs are poor proxies for energy).

`plot_comparison` draws the per-network form of the proxies chart (ratios to the first
network) beside each network's energy by operand and by level.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from nnjoules.errors import InputError
from nnjoules.report.table import energy_text, per_mac, si

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from nnjoules.energy.results import LayerEstimate, NetworkEstimate, Totals

KINDS = ("operand", "level", "summary", "proxies")
FORMATS = ("png", "svg")

# (key in by_operand()/by_level(), label, colour); ofmaps are psums on their way out.
OPERAND_PARTS = (("ifmaps", "ifmaps", "#4c72b0"), ("psums", "ofmaps (incl. psums)", "#dd8452"),
                 ("weights", "weights", "#55a868"), ("computation", "computation", "#8172b3"))
LEVEL_PARTS = (("dram", "DRAM", "#c44e52"), ("glb", "GLB", "#dd8452"),
               ("array", "array", "#937860"), ("rf", "RF", "#4c72b0"),
               ("mac", "MAC", "#8172b3"))
PROXY_PARTS = (("weights", "weights", "#55a868"), ("macs", "MACs", "#8c8c8c"),
               ("nonskipped_macs", "non-skipped MACs", "#ccb974"),
               ("energy", "energy", "#c44e52"))

SI_FORMATTER = FuncFormatter(lambda value, _pos: si(value))


def energy_label(unit: str, word_bits: int = 16) -> str:
    """The energy axis label, naming the unit.

    >>> energy_label("normalized"), energy_label("pJ")
    ('energy (normalized: 1 = one 16-bit MAC)', 'energy (pJ)')
    """
    if unit == "normalized":
        return f"energy (normalized: 1 = one {word_bits}-bit MAC)"
    return f"energy ({unit})"


def report_energy_label(report: NetworkEstimate) -> str:
    """`energy_label` for ``report``'s unit and MAC width."""
    return energy_label(report.unit.value, report.hardware.word_bits)


def new_figure(width_in: float, height_in: float) -> Figure:
    """An empty figure of the given size in inches, on an Agg canvas."""
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_report(report: NetworkEstimate, kind: str = "operand") -> Figure:
    """The chart ``kind`` (one of `KINDS`) of ``report``.

    Raises:
        InputError: ``kind`` is not one of `KINDS`.
    """
    makers: dict[str, Callable[[NetworkEstimate], Figure]] = {
        "operand": plot_by_operand, "level": plot_by_level, "summary": plot_summary,
        "proxies": plot_proxies}
    if kind not in makers:
        raise InputError(f"unknown plot kind {kind!r}; choose one of {', '.join(KINDS)}")
    return makers[kind](report)


def plot_by_operand(report: NetworkEstimate) -> Figure:
    """Per-layer energy stacked by ifmaps, ofmaps (incl. psums), weights, computation."""
    return _stacked_layers(report, OPERAND_PARTS, lambda item: item.by_operand(), "operand")


def plot_by_level(report: NetworkEstimate) -> Figure:
    """Per-layer energy stacked by DRAM, GLB, array, RF and MAC."""
    return _stacked_layers(report, LEVEL_PARTS, lambda item: item.by_level(), "level")


def _layer_width(count: int) -> float:
    return max(7.5, 1.8 + 0.28 * count)


def _stacked_layers(report: NetworkEstimate, parts: Sequence[tuple[str, str, str]],
                    values_of: Callable[[LayerEstimate], Mapping[str, float]],
                    by: str) -> Figure:
    fig = new_figure(_layer_width(len(report.layers)), 4.8)
    ax = fig.add_subplot()
    names = [item.name for item in report.layers]
    positions = list(range(len(names)))
    values = [values_of(item) for item in report.layers]
    bottom = [0.0] * len(names)
    for key, label, colour in parts:
        heights = [v[key] for v in values]
        ax.bar(positions, heights, bottom=bottom, label=label, color=colour, width=0.75)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    _layer_axis(ax, names)
    ax.yaxis.set_major_formatter(SI_FORMATTER)
    ax.set_ylabel(report_energy_label(report))
    ax.set_title(f"{_where(report)}: energy per layer by {by}"
                 f"\ntotal {energy_text(report.total(), report.unit.value)}", pad=24)
    _legend_on_top(ax, len(parts))
    return fig


def _legend_on_top(ax: Axes, count: int) -> None:
    """The legend in one row between the title and the axes: visible however wide."""
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=count, frameon=False,
              fontsize="small", borderaxespad=0.2)


def _layer_axis(ax: Axes, names: Sequence[str]) -> None:
    ax.set_xticks(list(range(len(names))), names, rotation=90,
                  fontsize="small" if len(names) <= 30 else "x-small")
    ax.set_xlabel("layer (execution order)")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def plot_summary(report: NetworkEstimate) -> Figure:
    """The network's energy by operand and by level, each bar labelled with its share."""
    fig = new_figure(10.0, 4.4)
    total = report.total()
    for index, (parts, values, title) in enumerate((
            (OPERAND_PARTS, report.by_operand(), "by operand"),
            (LEVEL_PARTS, report.by_level(), "by level"))):
        ax = fig.add_subplot(1, 2, index + 1)
        labels = [label for _, label, _ in parts]
        heights = [values[key] for key, _, _ in parts]
        bars = ax.bar(labels, heights, color=[c for _, _, c in parts], label=title)
        ax.bar_label(bars, [f"{100 * h / total:.1f}%" if total else "" for h in heights],
                     fontsize="small")
        ax.set_title(title)
        ax.yaxis.set_major_formatter(SI_FORMATTER)
        ax.set_ylabel(report_energy_label(report))
        ax.tick_params(axis="x", labelsize="small", labelrotation=20)
        ax.margins(y=0.12)
    fig.suptitle(f"{_where(report)}: {energy_text(total, report.unit.value)}, "
                 f"{per_mac(report.total(), report.macs())} per MAC, "
                 f"DRAM compression {report.compression.value}")
    return fig


def _where(report: NetworkEstimate) -> str:
    """``alexnet on eyeriss``, with the dataflow when it is not row-stationary."""
    flow = "" if report.dataflow == "row-stationary" else f" ({report.dataflow})"
    return f"{report.workload.name} on {report.hardware.name}{flow}"


def plot_proxies(report: NetworkEstimate) -> Figure:
    """Per layer: its share of the network's weights, MACs, non-skipped MACs and energy.

    Each group of bars sums to 100 % over the layers; a layer whose energy bar is far
    from its weights or MACs bars is one the proxies misjudge.
    """
    per_layer: dict[str, list[float]] = {
        "weights": [item.layer.num_weights for item in report.layers],
        "macs": [item.layer.macs for item in report.layers],
        "nonskipped_macs": [item.energy.nonskipped_macs for item in report.layers],
        "energy": [item.total for item in report.layers]}
    shares = {key: [_ratio(v, sum(values)) for v in values] for key, values in per_layer.items()}
    fig = new_figure(_layer_width(len(report.layers)) + 1.5, 4.8)
    ax = fig.add_subplot()
    names = [item.name for item in report.layers]
    _grouped(ax, len(names), PROXY_PARTS, shares)
    _layer_axis(ax, names)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_ylabel("share of the network total (%)")
    ax.set_title(f"{_where(report)}\nweights and MACs as "
                 "proxies of energy, per layer", pad=24)
    _legend_on_top(ax, len(PROXY_PARTS))
    return fig


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference else 0.0


def _grouped(ax: Axes, groups: int, parts: Sequence[tuple[str, str, str]],
             heights: Mapping[str, Sequence[float]]) -> None:
    """Bars side by side: one container per part, labelled with the part's label."""
    width = 0.8 / len(parts)
    for index, (key, label, colour) in enumerate(parts):
        offset = (index - (len(parts) - 1) / 2) * width
        ax.bar([g + offset for g in range(groups)], heights[key], width=width, label=label,
               color=colour)


def plot_comparison(labels: Sequence[str], totals: Sequence[Totals], *,
                    word_bits: int = 16) -> Figure:
    """Several networks (or hardware): proxies relative to the first, energy splits.

    Left: weights, MACs, non-skipped MACs and energy of each entry divided by those of
    the first entry. Middle and right: each entry's energy stacked by operand and by
    level, in the entries' common unit.
    """
    fig = new_figure(max(12.0, 4.0 + 2.4 * len(labels)), 4.8)
    first = totals[0]
    relative = {key: [_ratio(_metric(t, key), _metric(first, key)) for t in totals]
                for key, _, _ in PROXY_PARTS}
    ax = fig.add_subplot(1, 3, 1)
    _grouped(ax, len(labels), PROXY_PARTS, relative)
    ax.axhline(1.0, color="black", linewidth=0.8)
    positive = [v for values in relative.values() for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20:
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}x"))
    ax.set_xticks(list(range(len(labels))), labels, rotation=30, ha="right")
    ax.set_ylabel(f"relative to {labels[0]} (x)")
    ax.set_title("weights, MACs and energy")
    ax.legend(fontsize="small")
    for index, (parts, field, title) in enumerate(((OPERAND_PARTS, "by_operand", "by operand"),
                                                   (LEVEL_PARTS, "by_level", "by level"))):
        ax = fig.add_subplot(1, 3, index + 2)
        bottom = [0.0] * len(labels)
        for key, label, colour in parts:
            heights = [getattr(t, field)[key] for t in totals]
            ax.bar(labels, heights, bottom=bottom, label=label, color=colour)
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        ax.set_xticks(list(range(len(labels))), labels, rotation=30, ha="right")
        ax.yaxis.set_major_formatter(SI_FORMATTER)
        ax.set_ylabel(energy_label(first.unit, word_bits))
        ax.set_title(f"energy {title}")
        ax.legend(fontsize="small")
    return fig


def _metric(totals: Totals, key: str) -> float:
    return float(getattr(totals, key))


def figure_bytes(fig: Figure, fmt: str, *, dpi: int = 120, salt: str = "nnjoules") -> bytes:
    """``fig`` rendered as ``png`` or ``svg`` (reproducible: no date in the file).

    ``salt`` seeds the SVG element ids: give figures inlined in one page different salts.

    Raises:
        InputError: ``fmt`` is not one of `FORMATS`.
    """
    import matplotlib

    if fmt not in FORMATS:
        raise InputError(f"unknown image format {fmt!r}; use one of {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "path"}):
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` atomically; the format follows the suffix (``.png`` or ``.svg``).

    Raises:
        InputError: another suffix, or a folder that does not exist or is not writable.
    """
    from nnjoules.io import write_bytes_atomic

    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"{target}: plots are written as .png or .svg, not {target.suffix!r}")
    write_bytes_atomic(target, figure_bytes(fig, fmt))
    return target


def save_report_plots(report: NetworkEstimate, folder: str | Path, *,
                      formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write every kind of chart of ``report`` into ``folder`` (created if missing).

    Files are named ``<network>-<kind>.<format>``, e.g. ``alexnet-operand.svg``.

    Returns:
        The paths written, kind by kind.

    Raises:
        InputError: the folder cannot be created or written.
    """
    from nnjoules.io import write_bytes_atomic

    target = make_folder(folder)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in report.workload.name)
    written = []
    for kind in KINDS:
        fig = plot_report(report, kind)
        for fmt in formats:
            path = target / f"{stem}-{kind}.{fmt}"
            write_bytes_atomic(path, figure_bytes(fig, fmt))
            written.append(path)
    return written


def make_folder(folder: str | Path) -> Path:
    """``folder``, created with its parents if missing.

    Raises:
        InputError: it cannot be created, or exists and is not a folder.
    """
    target = Path(folder)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{target}: exists and is not a folder") from None
    except OSError as err:
        raise InputError(f"{target}: cannot create folder ({err.strerror})") from None
    return target

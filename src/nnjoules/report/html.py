"""One self-contained HTML page of an `NetworkEstimate`: it opens offline, fetches nothing.

The page holds the charts (PNG as base64 ``data:`` URIs, or inline SVG), a per-layer
table that sorts when a header is clicked (inline script; ``#sort=energy:desc`` in the
URL sorts on load), the hardware, the sparsity, bit-width and compression assumptions,
the tool version, and the report's JSON (``<script id="report-json">``) for machines.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import TYPE_CHECKING, Any

from nnjoules.energy.cost import GATING_TEXT, LEVELS_TEXT
from nnjoules.energy.hardware import OPERANDS, AccessCost, Hardware
from nnjoules.errors import InputError
from nnjoules.report.table import dataflow_text, energy_text, mapping_header, per_mac, seconds, si

if TYPE_CHECKING:
    from nnjoules.energy.results import LayerEstimate, NetworkEstimate

IMAGE_FORMATS = ("png", "svg")

COMPRESSION_TEXT = {
    "none": "none: every value moves to and from DRAM at its full bit-width",
    "significance-map": "significance map (the analytical tool's rule): 1 bit per value plus "
                        "the value's bits for each non-zero",
    "rlc": "run-length coding (the Eyeriss chip): (5-bit run, level) pairs, counted from "
           "where the zeros lie in the measured tensors",
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;
color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#dde;padding-bottom:4px}.sub{color:#556}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}.card{border:1px solid #dde;
border-radius:6px;padding:8px 12px;min-width:120px;background:#f7f8fb}.card b{display:block;
font-size:18px}.card span{color:#556;font-size:12px}
figure{margin:10px 0 18px;overflow-x:auto}figure img,figure svg{max-width:none;height:auto}
figcaption{color:#556;font-size:12px}
table{border-collapse:collapse;font-size:12.5px}th,td{padding:3px 8px;border-bottom:1px solid
#e4e6ee;white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}
#layers th{position:sticky;top:0;background:#eef0f6;cursor:pointer;user-select:none}
#layers th[aria-sort=ascending]::after{content:" \\25B2"}
#layers th[aria-sort=descending]::after{content:" \\25BC"}
#layers tbody tr:hover{background:#fff7e0}.wrap{overflow-x:auto;max-height:80vh}
table.kv th{text-align:left;background:#f7f8fb;font-weight:600}
"""

# Sorts by each cell's data-v (numbers when the header says data-type="num").
_JS = """
(function(){
var table=document.getElementById("layers"),body=table.tBodies[0];
var heads=Array.prototype.slice.call(table.tHead.rows[0].cells);
function sortBy(key,dir){
  var col=-1;heads.forEach(function(h,i){if(h.dataset.key===key)col=i;});
  if(col<0)return false;var num=heads[col].dataset.type==="num";
  var rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){var x=a.cells[col].dataset.v,y=b.cells[col].dataset.v;
    var c=num?(parseFloat(x)-parseFloat(y)):x.localeCompare(y);
    if(c===0)c=parseFloat(a.dataset.index)-parseFloat(b.dataset.index);
    return dir==="desc"?-c:c;});
  rows.forEach(function(r){body.appendChild(r);});
  heads.forEach(function(h){h.removeAttribute("aria-sort");});
  heads[col].setAttribute("aria-sort",dir==="desc"?"descending":"ascending");
  document.documentElement.dataset.sortedBy=key+":"+dir;return true;}
heads.forEach(function(h){h.addEventListener("click",function(){
  var dir=h.getAttribute("aria-sort")==="descending"?"asc":
    (h.getAttribute("aria-sort")==="ascending"?"desc":(h.dataset.type==="num"?"desc":"asc"));
  sortBy(h.dataset.key,dir);});});
var m=/sort=([\\w-]+)(?::(asc|desc))?/.exec(location.hash);if(m)sortBy(m[1],m[2]||"asc");
function mark(){var imgs=Array.prototype.slice.call(document.images);
  var root=document.documentElement.dataset;root.rows=String(body.rows.length);
  root.imagesLoaded=String(imgs.filter(function(i){return i.complete&&i.naturalWidth>0;})
    .length+document.querySelectorAll("figure svg").length);root.ready="1";}
mark();window.addEventListener("load",mark);
})();
"""


@dataclass(frozen=True)
class Column:
    """One column of the layer table: its key, header, value and display text."""

    key: str
    header: str
    value: Callable[[LayerEstimate], Any]
    text: Callable[[Any], str] = str
    numeric: bool = True


_LEVEL_HEADERS = {"dram": "DRAM", "glb": "GLB", "array": "array", "rf": "RF", "mac": "MAC"}
_OPERAND_HEADERS = {"ifmaps": "ifmaps E", "psums": "ofmaps+psums E", "weights": "weights E"}


def _columns(total: float) -> tuple[Column, ...]:
    """Every column after ``#``; energies in the report's unit."""
    def share(item: LayerEstimate) -> float:
        return item.total / total if total else 0.0

    return (
        Column("layer", "layer", lambda item: item.name, numeric=False),
        Column("kind", "kind", lambda item: item.layer.kind.value, numeric=False),
        Column("shape", "N M C G H W R S E F U", _shape_text, numeric=False),
        Column("weights", "weights", lambda item: item.layer.num_weights, si),
        Column("macs", "MACs", lambda item: item.layer.macs, si),
        Column("nonskipped", "non-skipped MACs", lambda item: item.energy.nonskipped_macs, si),
        Column("energy", "energy", lambda item: item.total, si),
        Column("share", "%", share, lambda v: f"{100 * v:.1f}"),
        *(_level_column(key) for key in _LEVEL_HEADERS),
        *(_operand_column(key) for key in _OPERAND_HEADERS),
        Column("e_per_mac", "E/MAC", lambda item: item.total / item.layer.macs,
               lambda v: per_mac(v, 1)),
        Column("d_weights", "weight density", lambda item: item.layer.density.weights, _fixed),
        Column("d_ifmaps", "ifmap density", lambda item: item.layer.density.ifmaps, _fixed),
        Column("d_ofmaps", "ofmap density", lambda item: item.layer.density.ofmaps, _fixed),
        Column("bits", "bits W/I/O", _bits_text, numeric=False),
        Column("mapping", "mapping m n e p q r t", _mapping_text, numeric=False),
        Column("pes", "active PEs",
               lambda item: item.mapping.active_pes(item.mapped_as or item.layer)),
        Column("cycles", "cycles", lambda item: item.timing.cycles, si),
        Column("bound", "bound", lambda item: item.timing.bound.value, numeric=False),
    )


def _level_column(key: str) -> Column:
    return Column(f"e_{key}", _LEVEL_HEADERS[key], lambda item: item.by_level()[key], si)


def _operand_column(key: str) -> Column:
    return Column(f"e_{key}", _OPERAND_HEADERS[key], lambda item: item.by_operand()[key], si)


def _fixed(value: float) -> str:
    return f"{value:.3f}"


def _shape_text(item: LayerEstimate) -> str:
    layer = item.layer
    return " ".join(str(getattr(layer, k)) for k in ("N", "M", "C", "G", "H", "W", "R", "S",
                                                     "E", "F", "U"))


def _bits_text(item: LayerEstimate) -> str:
    p = item.layer.precision
    return f"{p.weight_bits}/{p.ifmap_bits}/{p.ofmap_bits}"


def _mapping_text(item: LayerEstimate) -> str:
    return " ".join(str(v) for v in item.mapping.as_dict().values())


def render_html(report: NetworkEstimate, *, images: str = "png") -> str:
    """The whole page as text.

    Args:
        report: the report to show.
        images: ``"png"`` (base64 data URIs) or ``"svg"`` (inline vector charts).

    Raises:
        InputError: ``images`` is neither.
    """
    if images not in IMAGE_FORMATS:
        raise InputError(f"unknown image format {images!r}; use png or svg")
    from nnjoules.version import __version__

    title = f"{report.workload.name} on {report.hardware.name}: energy report"
    data = json.dumps(report.to_dict(), separators=(",", ":")).replace("</", "<\\/")
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="nnjoules {escape(__version__)}">',
        f"<title>{escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">nnjoules {escape(__version__)} &middot; {escape(report.dataflow)} '
        "dataflow "
        f"&middot; energy unit: {escape(_unit_text(report))}</p>",
        _cards(report), _charts(report, images), _layer_table(report),
        _assumptions(report), _hardware_table(report.hardware),
        f'<script type="application/json" id="report-json">{data}</script>',
        f"<script>{_JS}</script>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _unit_text(report: NetworkEstimate) -> str:
    if report.unit.value == "normalized":
        return f"normalized (1 = one {report.hardware.word_bits}-bit MAC)"
    return report.unit.value


def _cards(report: NetworkEstimate) -> str:
    total = report.total()
    moved = 100 * report.data_movement() / total if total else 0.0
    levels = report.by_level()
    dram = 100 * levels["dram"] / total if total else 0.0
    cards = (("energy", energy_text(total, report.unit.value)),
             ("energy per MAC", per_mac(total, report.macs())),
             ("data movement", f"{moved:.1f}%"), ("DRAM", f"{dram:.1f}%"),
             ("layers", str(len(report.layers))), ("MACs", si(report.macs())),
             ("non-skipped MACs", si(report.nonskipped_macs())),
             ("weights", si(report.weights())), ("non-zero weights", si(report.nonzero_weights())),
             *_time_cards(report))
    body = "".join(f'<div class="card"><b>{escape(v)}</b><span>{escape(k)}</span></div>'
                   for k, v in cards)
    return f'<div class="cards">{body}</div>'


def _time_cards(report: NetworkEstimate) -> tuple[tuple[str, str], ...]:
    """Latency, throughput and power at the hardware's clock (mW only in absolute units)."""
    t = report.timing()
    cards = [(f"latency per batch at {t.clock_mhz:g} MHz", seconds(t.latency_s))]
    if t.throughput is not None:
        cards.append(("inferences/s", f"{t.throughput:.4g}"))
    if t.power_mw is not None:
        cards.append(("average power", f"{t.power_mw:.4g} mW"))
    else:
        cards.append(("average power", f"{si(t.power)} {report.unit.value}/s"))
    if t.energy_per_item_mj is not None:
        cards.append(("energy per inference", f"{t.energy_per_item_mj:.4g} mJ"))
    return tuple(cards)


_CHART_CAPTIONS = {
    "summary": "The network's energy by operand and by memory level.",
    "operand": "Energy per layer, split into the four parts of Yang et al.: ifmaps, ofmaps "
               "(incl. psums), weights and computation.",
    "level": "Energy per layer, split by where it is spent: DRAM, global buffer, inter-PE "
             "array, register files and MACs.",
    "proxies": "Each layer's share of the network's weights, MACs, non-skipped MACs and "
               "energy: weights and MACs are poor proxies for energy.",
}


def _charts(report: NetworkEstimate, images: str) -> str:
    from nnjoules.report.plots import figure_bytes, plot_report

    out = ["<h2>Where the energy goes</h2>"]
    for kind, caption in _CHART_CAPTIONS.items():
        fig = plot_report(report, kind)
        if images == "png":
            encoded = base64.b64encode(figure_bytes(fig, "png")).decode("ascii")
            width = int(fig.get_figwidth() * 96)
            body = (f'<img alt="{escape(caption)}" width="{width}" '
                    f'src="data:image/png;base64,{encoded}">')
        else:
            body = _inline_svg(figure_bytes(fig, "svg", salt=kind).decode("utf-8"))
        out.append(f'<figure id="chart-{kind}">{body}<figcaption>{escape(caption)}'
                   "</figcaption></figure>")
    return "\n".join(out)


def _inline_svg(text: str) -> str:
    """Matplotlib's SVG file without the XML prolog and doctype, to sit inside HTML."""
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    return re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)


def _layer_table(report: NetworkEstimate) -> str:
    columns = [replace(c, header=mapping_header(report.layers)) if c.key == "mapping" else c
               for c in _columns(report.total())]
    head = '<th data-key="index" data-type="num" scope="col">#</th>' + "".join(
        f'<th data-key="{c.key}" data-type="{"num" if c.numeric else "text"}" scope="col">'
        f"{escape(c.header)}</th>" for c in columns)
    rows = []
    for index, item in enumerate(report.layers):
        cells = [f'<td class="n" data-v="{index}">{index}</td>']
        for column in columns:
            value = column.value(item)
            cls = ' class="n"' if column.numeric else ""
            cells.append(f'<td{cls} data-v="{escape(str(value))}">'
                         f"{escape(column.text(value))}</td>")
        rows.append(f'<tr data-index="{index}">{"".join(cells)}</tr>')
    return ("<h2>Layers</h2>\n<p class=\"sub\">Click a header to sort. Energies in "
            f"{escape(_unit_text(report))}.</p>\n"
            f'<div class="wrap"><table id="layers"><thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{chr(10).join(rows)}\n</tbody></table></div>")


def _kv_table(rows: Sequence[tuple[str, str]], table_id: str) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv" id="{table_id}">{body}</table>'


def _range(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.3f}" if low == high else f"{low:.3f} to {high:.3f} (per layer in the table)"


def _assumptions(report: NetworkEstimate) -> str:
    layers = [item.layer for item in report.layers]
    bits = sorted({(lay.precision.weight_bits, lay.precision.ifmap_bits,
                    lay.precision.ofmap_bits) for lay in layers})
    batches = sorted({lay.N for lay in layers})
    unmodelled = ", ".join(f"{op.op} x{op.count}" for op in report.workload.unmodelled)
    rows = [
        ("network", report.workload.name),
        ("dataflow", dataflow_text(report.dataflow)),
        ("DRAM compression", COMPRESSION_TEXT.get(report.compression.value,
                                                  report.compression.value)),
        ("compressed moves", LEVELS_TEXT[report.compression_levels]),
        ("MAC skipping", f"{report.gating.value}: {GATING_TEXT[report.gating]}"),
        ("weight density", _range([lay.density.weights for lay in layers])),
        ("ifmap density", _range([lay.density.ifmaps for lay in layers])),
        ("ofmap density", _range([lay.density.ofmaps for lay in layers])),
        ("bit-widths (weights/ifmaps/ofmaps)", ", ".join(f"{w}/{i}/{o}" for w, i, o in bits)),
        ("N per layer", ", ".join(str(n) for n in batches)),
        ("not modelled (no energy counted)", unmodelled or "none"),
        *(("note", note) for note in report.workload.notes),
    ]
    return "<h2>Assumptions</h2>\n" + _kv_table(rows, "assumptions")


def _cost_text(cost: AccessCost, unit: str) -> str:
    rw = f"{cost.read:g}" if cost.read == cost.write \
        else f"read {cost.read:g}, write {cost.write:g}"
    return f"{rw} {unit} per {cost.access_bits}-bit access"


def _hardware_table(hw: Hardware) -> str:
    unit = hw.unit.value
    rf = hw.rf
    if rf.unified:
        rf_size = f"{rf.size_bytes} bytes per PE, shared by all operands"
    else:
        rf_size = (f"scratch pads per PE: weights {rf.weights_bytes} B, ifmaps "
                   f"{rf.ifmaps_bytes} B, psums {rf.psums_bytes} B")
    rf_costs = {_cost_text(rf.cost_of(op), unit) for op in OPERANDS}
    rows = [
        ("name", hw.name), ("energy unit", unit), ("word bits", str(hw.word_bits)),
        ("PE array", f"{hw.pe_array.rows} x {hw.pe_array.cols} ({hw.pe_array.num_pes} PEs)"),
        ("MAC", f"{hw.mac:g} {unit} per {hw.word_bits}x{hw.word_bits}-bit MAC"),
        ("DRAM", _cost_text(hw.dram, unit)),
        ("global buffer", f"{hw.glb.size_bytes / 1024:g} KB ({hw.glb.size_bytes} bytes); "
                          f"{_cost_text(hw.glb.cost, unit)}"),
        ("array (inter-PE)", _cost_text(hw.array, unit)),
        ("register file", f"{rf_size}; " + "; ".join(sorted(rf_costs))),
        ("clock", f"{hw.clock_mhz:g} MHz"),
        ("bandwidth", f"DRAM {hw.dram_bits_per_cycle:g}, GLB {hw.glb_bits_per_cycle:g} bits "
                      "per cycle (reads and writes together)"),
    ]
    return "<h2>Hardware</h2>\n" + _kv_table(rows, "hardware")

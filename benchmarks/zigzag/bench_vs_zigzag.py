#!/usr/bin/env python3
"""Side by side with ZigZag (KU Leuven, PyPI ``zigzag-dse``) on its bundled AlexNet.

Two ZigZag runs through its Python API (``zigzag.api.get_hardware_performance_zigzag``;
the ``python -m zigzag`` entry of 3.9.1 is broken), each timed against nnjoules on the
*same layers* (our `Workload` is built from ZigZag's own parse of the ONNX file, because
that file's weights live in an external-data file that the wheel does not ship):

1. **as bundled**: ZigZag's ``inputs/hardware/eyeriss_like.yaml`` (its own costs, 8-bit
   operands as its ONNX parser defaults to) vs nnjoules on the ``eyeriss`` preset:
   wall time only, the energies are in different units and hardware;
2. **matched**: ``eyeriss_matched.yaml`` here, the ``eyeriss`` preset's sizes and
   normalised costs per 16-bit word (DRAM 200, GLB 6, RF 1, MAC 1; weights bypass the
   GLB), the ONNX nodes marked 16-bit: per-level energy (DRAM, GLB, RF, MAC) side by
   side, ours as we count and ours with the fills ZigZag also charges (the
   "Timeloop accounting" of ``benchmarks/timeloop/compare.py``; ZigZag, like Timeloop,
   charges every level for data written into it).

ZigZag searches spatial mappings (3 by default) and temporal mappings (LOMA, lpf 6)
minimising energy; it has no inter-PE network cost. Without ``zigzag-dse`` installed
(``pip install zigzag-dse==3.9.1``) the benchmark says so and exits 0.

Usage::

    python benchmarks/zigzag/bench_vs_zigzag.py [--runs bundled,matched] [--lpf 6]

Writes ``benchmarks/results/zigzag.{json,md}``. Exit status: 0 done or skipped,
1 failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import io
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
MATCHED_HW = HERE / "eyeriss_matched.yaml"
MAPPING = HERE / "mapping.yaml"
SKIP = ("skipped: zigzag-dse not installed (pip install zigzag-dse==3.9.1, or the `bench` "
        "extra)")

try:  # pragma: no cover
    import nnjoules  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks" / "timeloop"))

from nnjoules.energy.cost import Compression  # noqa: E402
from nnjoules.energy.estimate import estimate_workload  # noqa: E402
from nnjoules.energy.hardware import eyeriss  # noqa: E402
from nnjoules.energy.workload import Layer, LayerKind, Precision, Workload  # noqa: E402


def zigzag_paths() -> tuple[Path, Path] | None:
    """ZigZag's bundled AlexNet ONNX and eyeriss_like accelerator, or None."""
    try:
        import zigzag
    except ImportError:
        return None
    root = Path(zigzag.__file__).resolve().parent / "inputs"
    return root / "workload" / "alexnet.onnx", root / "hardware" / "eyeriss_like.yaml"


def load_onnx(path: Path, *, bits: int | None) -> Any:
    """The ONNX graph without its (absent) external weights; optionally all nodes ``bits``."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    if bits is not None:
        for node in model.graph.node:
            if node.op_type in ("Conv", "Gemm", "MatMul"):
                for attr in ("weight_size", "act_size", "output_size"):
                    node.attribute.append(onnx.helper.make_attribute(attr, bits))
    return model


def zigzag_layers(model: Any) -> list[dict[str, Any]]:
    """Layer shapes as ZigZag parses them (its ``layer_dim_sizes``), in order."""
    from zigzag.parser.onnx.onnx_model_parser import ONNXModelParser

    workload = _quiet(lambda: ONNXModelParser(model, str(MAPPING)).run())
    rows = []
    for node in workload.topological_sort():
        sizes = getattr(node, "layer_dim_sizes", None)
        if sizes is None:
            continue
        dims = {str(k): int(v) for k, v in sizes.items()}
        strides = {}
        for key, terms in getattr(node, "pr_scaling_factors", {}).items():
            strides[str(key)] = {str(dim): int(scale) for dim, scale in terms}
        rows.append({"name": node.name, "type": node.type, "dims": dims,
                     "stride": strides, "macs": int(node.total_mac_count)})
    return rows


def our_workload(rows: list[dict[str, Any]], precision: Precision) -> Workload:
    """Our layers from ZigZag's dims: H = (E-1)*U + R (the rows its outputs read)."""
    layers = []
    for row in rows:
        d = row["dims"]
        if row["type"] == "Conv":
            u = row["stride"].get("IY", {}).get("OY", 1)
            v = row["stride"].get("IX", {}).get("OX", 1)
            e, f, r, s = d["OY"], d["OX"], d["FY"], d["FX"]
            layers.append(Layer(row["name"], LayerKind.CONV, N=d.get("B", 1), G=d.get("G", 1),
                                M=d["K"], C=d["C"], H=(e - 1) * u + r, W=(f - 1) * v + s,
                                R=r, S=s, E=e, F=f, stride=(u, v), precision=precision))
        else:
            layers.append(Layer(row["name"], LayerKind.FC, N=d.get("D", d.get("B", 1)),
                                M=d["K"], C=d["C"], H=1, W=1, R=1, S=1, E=1, F=1,
                                precision=precision))
    return Workload("alexnet (ZigZag ONNX)", tuple(layers))


def _quiet(fn: Any) -> Any:
    """Run ``fn`` with ZigZag's INFO logging and progress output silenced."""
    # The API calls logging.basicConfig(level=INFO), a no-op once the root logger
    # has a handler: give it one first.
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        return fn()


def run_zigzag(model: Any, accelerator: Path, *, lpf: int) -> tuple[list[Any], float]:
    """ZigZag's best (minimal-energy) evaluation per layer, and the API's wall time."""
    from zigzag.api import get_hardware_performance_zigzag

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _energy, _latency, cmes = _quiet(lambda: get_hardware_performance_zigzag(
            model, str(accelerator), str(MAPPING), opt="energy", dump_folder=tmp,
            lpf_limit=lpf, loma_show_progress_bar=False))
        wall = time.perf_counter() - t0
    return [cme for cme, _extra in cmes[0][1]], wall


ZIGZAG_LEVEL = {"rf_ifmap": "rf", "rf_weight": "rf", "rf_psum": "rf", "glb_108KB": "glb",
                "dram": "dram"}
OPERAND = {"I": "ifmaps", "W": "weights", "O": "psums"}


def zigzag_breakdown(cme: Any) -> dict[str, Any]:
    """A ZigZag evaluation's energy per level and (level, operand)."""
    hierarchy = cme.accelerator.memory_hierarchy
    by_level = {"dram": 0.0, "glb": 0.0, "array": 0.0, "rf": 0.0, "mac": float(cme.mac_energy)}
    by_lo: dict[str, float] = {}
    for layer_op, energies in cme.mem_energy_breakdown.items():
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        levels = hierarchy.get_memory_levels(mem_op=mem_op)
        for energy, level in zip(energies, levels, strict=True):
            name = ZIGZAG_LEVEL.get(level.name, level.name)
            by_level[name] = by_level.get(name, 0.0) + float(energy)
            key = f"{name}.{OPERAND.get(str(layer_op), str(layer_op))}"
            by_lo[key] = by_lo.get(key, 0.0) + float(energy)
    return {"by_level": by_level, "by_level_operand": by_lo, "total": float(cme.energy_total),
            "mapping": str(getattr(cme, "spatial_mapping", ""))}


def run_ours(workload: Workload, *, repeats: int = 3) -> tuple[Any, float, float]:
    """Our estimate on the eyeriss preset: report, cold and best warm wall time (s)."""
    t0 = time.perf_counter()
    report = estimate_workload(workload, eyeriss(), compression=Compression.NONE)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        estimate_workload(workload, eyeriss(), compression=Compression.NONE)
        warm.append(time.perf_counter() - t0)
    return report, cold, min(warm)


def ours_breakdowns(report: Any) -> dict[str, dict[str, Any]]:
    """Per layer: ours as counted, and with the fills ZigZag charges too."""
    from compare import ours_energy, recost

    hw = eyeriss()
    out = {}
    for item in report.layers:
        out[item.name] = {
            "ours": ours_energy(item),
            "ours, with fills": recost(item.layer, item, hw, rules="nnjoules",
                                       compression=Compression.NONE)}
    return out


def _sum(parts: list[dict[str, Any]]) -> dict[str, Any]:
    by_level: dict[str, float] = {}
    for p in parts:
        for k, v in p["by_level"].items():
            by_level[k] = by_level.get(k, 0.0) + v
    return {"by_level": by_level, "total": sum(p["total"] for p in parts)}


def bench(run: str, onnx_path: Path, bundled_hw: Path, lpf: int) -> dict[str, Any]:
    matched = run == "matched"
    bits = 16 if matched else None
    model = load_onnx(onnx_path, bits=bits)
    rows = zigzag_layers(model)
    precision = Precision(16, 16, 16)
    workload = our_workload(rows, precision)
    cmes, zz_wall = run_zigzag(model, MATCHED_HW if matched else bundled_hw, lpf=lpf)
    report, cold, warm = run_ours(workload)
    theirs = [zigzag_breakdown(c) for c in cmes]
    ours = ours_breakdowns(report)
    layers = []
    for row, zz, item in zip(rows, theirs, report.layers, strict=True):
        layers.append({"name": row["name"], "type": row["type"], "dims": row["dims"],
                       "stride": row["stride"], "macs_zigzag": row["macs"],
                       "macs_ours": item.layer.macs,
                       "zigzag": zz, **ours[item.name],
                       "ours_mapping": item.mapping.as_dict()})
    doc: dict[str, Any] = {
        "run": run,
        "accelerator": str(MATCHED_HW.relative_to(REPO)) if matched else
        "zigzag/inputs/hardware/eyeriss_like.yaml (bundled)",
        "zigzag_bits": "16 (weight_size/act_size/output_size set on every node)" if matched
        else "ZigZag's ONNX defaults: W 8, I 8, O 16 (final 8)",
        "ours": "nnjoules estimate_workload on the eyeriss preset, 16-bit, dense, DRAM "
                "uncompressed",
        "wall_time": {"zigzag_s": zz_wall, "nnjoules_cold_s": cold, "nnjoules_warm_s": warm,
                      "zigzag_over_nnjoules_cold": zz_wall / cold,
                      "zigzag_over_nnjoules_warm": zz_wall / warm},
        "layers": layers,
    }
    if matched:
        doc["totals"] = {"zigzag": _sum(theirs),
                         "ours": _sum([ours[i.name]["ours"] for i in report.layers]),
                         "ours, with fills": _sum([ours[i.name]["ours, with fills"]
                                                   for i in report.layers])}
    return doc


def to_markdown(doc: dict[str, Any]) -> str:
    lines = ["# nnjoules vs ZigZag on ZigZag's bundled AlexNet", "",
             f"Generated {doc['date']} by `benchmarks/zigzag/bench_vs_zigzag.py`; zigzag-dse "
             f"{doc['zigzag_version']}, nnjoules {doc['nnjoules_version']}, Python "
             f"{doc['python']}, {doc['cpus']} CPUs, both in one process. ZigZag: Python API, "
             f"`opt=\"energy\"`, LOMA lpf {doc['lpf']}, 3 generated spatial mappings. Layers: "
             "ZigZag's parse of its `alexnet.onnx` (Caffe AlexNet with groups, 224 x 224 "
             "input), rebuilt as our `Workload`. Energies normalised (1 = one 16-bit MAC).", ""]
    for run in doc["runs"]:
        w = run["wall_time"]
        lines += [f"## Run `{run['run']}`: {run['accelerator']}", "",
                  f"ZigZag operands: {run['zigzag_bits']}. Ours: {run['ours']}.", "",
                  "| | seconds |", "|---|---:|",
                  f"| ZigZag `get_hardware_performance_zigzag` (8 layers) | "
                  f"{w['zigzag_s']:.2f} |",
                  f"| nnjoules, first call | {w['nnjoules_cold_s']:.3f} |",
                  f"| nnjoules, best of 3 later calls | {w['nnjoules_warm_s']:.3f} |",
                  f"| ZigZag / nnjoules (cold) | {w['zigzag_over_nnjoules_cold']:.0f}x |",
                  f"| ZigZag / nnjoules (warm) | {w['zigzag_over_nnjoules_warm']:.0f}x |", ""]
        if "totals" not in run:
            lines += ["Energies not compared: ZigZag's bundled eyeriss_like has its own "
                      "costs (pJ, 8-bit operands).", ""]
            continue
        t = run["totals"]
        lines += ["Per level, whole network:", "",
                  "| level | ZigZag | ours | ours / ZigZag | ours with fills | ratio |",
                  "|---|---:|---:|---:|---:|---:|"]
        for key in ("dram", "glb", "array", "rf", "mac"):
            z = t["zigzag"]["by_level"].get(key, 0.0)
            o = t["ours"]["by_level"].get(key, 0.0)
            f = t["ours, with fills"]["by_level"].get(key, 0.0)
            lines.append(f"| {key} | {z:.4g} | {o:.4g} | {_r(o, z)} | {f:.4g} | {_r(f, z)} |")
        z, o, f = t["zigzag"]["total"], t["ours"]["total"], t["ours, with fills"]["total"]
        array_o = t["ours"]["by_level"].get("array", 0.0)
        array_f = t["ours, with fills"]["by_level"].get("array", 0.0)
        lines += [f"| **total** | {z:.4g} | {o:.4g} | {_r(o, z)} | {f:.4g} | {_r(f, z)} |",
                  f"| total without the array (no counterpart in ZigZag) | {z:.4g} | "
                  f"{o - array_o:.4g} | {_r(o - array_o, z)} | {f - array_f:.4g} | "
                  f"{_r(f - array_f, z)} |", "",
                  "Per layer (total energy):", "",
                  "| layer | MACs | ZigZag | ours | ours / ZigZag | ours with fills / ZigZag "
                  "| DRAM ratio | GLB ratio | RF ratio |", "|---|---:|---:|---:|---:|---:|---:|"
                  "---:|---:|"]
        for layer in run["layers"]:
            zz, ours, fills = layer["zigzag"], layer["ours"], layer["ours, with fills"]
            lines.append(
                f"| {layer['name']} | {layer['macs_ours']:.4g} | {zz['total']:.4g} | "
                f"{ours['total']:.4g} | {_r(ours['total'], zz['total'])} | "
                f"{_r(fills['total'], zz['total'])} | "
                + " | ".join(_r(ours['by_level'][k], zz['by_level'].get(k, 0.0))
                             for k in ("dram", "glb", "rf")) + " |")
        lines.append("")
    notes = HERE / "notes.md"
    if notes.exists():
        lines.append(notes.read_text())
    return "\n".join(lines) + "\n"


def _r(a: float, b: float) -> str:
    return "n/a" if not b else f"{a / b:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="bundled,matched")
    ap.add_argument("--lpf", type=int, default=6, help="ZigZag LOMA lpf limit (default 6)")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if not runs or any(r not in ("bundled", "matched") for r in runs):
        ap.error("--runs takes bundled and/or matched")
    paths = zigzag_paths()
    if paths is None:
        print(SKIP)
        return 0
    from importlib.metadata import version

    import nnjoules

    doc: dict[str, Any] = {
        "benchmark": "nnjoules vs ZigZag, AlexNet (ZigZag's bundled ONNX)",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "zigzag_version": version("zigzag-dse"), "nnjoules_version": nnjoules.__version__,
        "python": platform.python_version(), "cpus": os.cpu_count(), "lpf": args.lpf,
        "runs": []}
    for run in runs:
        print(f"ZigZag run {run} ...", file=sys.stderr, flush=True)
        doc["runs"].append(bench(run, paths[0], paths[1], args.lpf))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "zigzag.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out_dir / "zigzag.md").write_text(to_markdown(doc))
    for run in doc["runs"]:
        w = run["wall_time"]
        line = (f"{run['run']}: ZigZag {w['zigzag_s']:.1f} s, nnjoules {w['nnjoules_cold_s']:.3f}"
                f" s cold / {w['nnjoules_warm_s']:.3f} s warm")
        if "totals" in run:
            t = run["totals"]
            line += (f"; energy ours/ZigZag {_r(t['ours']['total'], t['zigzag']['total'])}, "
                     f"with fills {_r(t['ours, with fills']['total'], t['zigzag']['total'])}")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

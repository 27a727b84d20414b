#!/usr/bin/env python3
"""The paper's network analysis (Yang, Chen & Sze, CVPR 2017) on the `eyeriss` preset.

For Caffe AlexNet (ISCA 2016 Table II, by hand), GoogLeNet v1, SqueezeNet v1.0, VGG-16,
ResNet-50 and MobileNet-v2 (torchvision definitions, random weights), at batch 1, 4 and
16, energy **per image**:

* per layer: energy by operand as the paper splits it (ifmaps, ofmaps incl. psums,
  weights, computation) and by level (DRAM, GLB, array, RF, MAC);
* per network: weights, MACs, non-skipped MACs, energy, energy per MAC, CONV vs FC share;
* densities three ways: ``dense`` (all 1; DRAM uncompressed), ``measured`` (from one
  N(0, 1) sample image; random weights give ReLU statistics unlike trained ones: weights
  fully dense, about half the activations zero), ``json`` (a per-layer density file);
* magnitude-pruned AlexNet with Han et al. (2015) weight densities vs unpruned.

Usage::

    python benchmarks/paper/analysis.py [--networks alexnet-caffe,vgg16] [--batches 1,4,16]
                                        [--densities FILE] [--no-plots]

Writes ``benchmarks/results/paper_analysis.{json,md}`` and PNG charts in
``benchmarks/results/paper_plots/``. Exit status: 0 done, 1 failure, 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
HAN_JSON = HERE / "densities" / "alexnet_han2015.json"
NETWORKS = ("alexnet-caffe", "googlenet", "squeezenet1_0", "vgg16", "resnet50", "mobilenet_v2")
BATCHES = (1, 4, 16)
OPERAND_KEYS = ("ifmaps", "psums", "weights", "computation")
OPERAND_LABELS = {"ifmaps": "ifmaps", "psums": "ofmaps (incl. psums)", "weights": "weights",
                  "computation": "computation"}
LEVEL_KEYS = ("dram", "glb", "array", "rf", "mac")

try:  # pragma: no cover
    import nnjoules  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(HERE))

from networks import (  # noqa: E402
    caffe_alexnet_dense,
    measured_alexnet_densities,
    torchvision_workload,
    with_batch,
)

from nnjoules.energy.cost import Compression, CompressionLevels, Gating  # noqa: E402
from nnjoules.energy.estimate import estimate_workload  # noqa: E402
from nnjoules.energy.hardware import eyeriss  # noqa: E402
from nnjoules.energy.workload import Density, LayerKind, Workload  # noqa: E402
from nnjoules.report.energy_report import EnergyReport  # noqa: E402

# ------------------------------------------------------------------------- workloads

def dense(workload: Workload) -> Workload:
    """Every layer at density 1 (no measured run-length statistics)."""
    return workload.with_densities({layer.name: Density() for layer in workload.layers})


def apply_density_file(workload: Workload, overrides: dict[str, dict[str, float]]) -> Workload:
    """Per-layer overrides (``{layer: {field: density}}``) merged over current densities."""
    merged = {}
    for name, fields in overrides.items():
        current = workload.layer(name).density
        values = {f: getattr(current, f) for f in ("weights", "ifmaps", "ofmaps")}
        values.update(fields)
        # Run-length statistics were measured for the old values: keep only unchanged ones.
        rlc = {f"{f}_rlc_pairs": getattr(current, f"{f}_rlc_pairs")
               for f in ("weights", "ifmaps", "ofmaps") if f not in fields}
        merged[name] = Density(**values, **rlc)
    return workload.with_densities(merged)


def load_density_file(path: Path) -> dict[str, dict[str, dict[str, float]]]:
    """A density JSON: ``{network: {layer: {weights|ifmaps|ofmaps: value}}}``."""
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def measured_workload(name: str) -> Workload:
    """Shapes and measured densities of a network at batch 1."""
    if name == "alexnet-caffe":
        return caffe_alexnet_dense(1).with_densities(measured_alexnet_densities())
    return torchvision_workload(name)


# ---------------------------------------------------------------------------- numbers

def per_image(values: dict[str, float], batch: int) -> dict[str, float]:
    return {k: v / batch for k, v in values.items()}


def network_summary(report: EnergyReport, batch: int) -> dict[str, Any]:
    """Per-image totals of one estimate."""
    conv = sum(item.total for item in report.layers if item.layer.kind is LayerKind.CONV)
    total = report.total()
    return {
        "weights": report.weights(),
        "nonzero_weights": report.nonzero_weights(),
        "macs_per_image": report.macs() / batch,
        "nonskipped_macs_per_image": report.nonskipped_macs() / batch,
        "energy_per_image": total / batch,
        "energy_per_mac": total / report.macs(),
        "conv_share": conv / total,
        "fc_share": 1.0 - conv / total,
        "by_operand_per_image": per_image(report.by_operand(), batch),
        "by_level_per_image": per_image(report.by_level(), batch),
        "layers": len(report.layers),
    }


def layer_rows(report: EnergyReport, batch: int) -> list[dict[str, Any]]:
    """Per-layer, per-image energy by operand and by level, with the mapping."""
    rows = []
    for item in report.layers:
        layer = item.layer
        rows.append({
            "name": layer.name, "kind": layer.kind.value,
            "shape": {k: getattr(layer, k) for k in ("G", "M", "C", "H", "R", "E", "U")},
            "density": {"weights": layer.density.weights, "ifmaps": layer.density.ifmaps},
            "macs_per_image": layer.macs / batch,
            "nonskipped_macs_per_image": item.energy.nonskipped_macs / batch,
            "energy_per_image": item.total / batch,
            "by_operand_per_image": per_image(item.by_operand(), batch),
            "by_level_per_image": per_image(item.by_level(), batch),
            "mapping": item.mapping.as_dict(),
        })
    return rows


def run_estimate(workload: Workload, batch: int, compression: Compression,
                 gating: Gating = Gating.EITHER,
                 levels: CompressionLevels = CompressionLevels.DRAM,
                 ) -> tuple[EnergyReport, float]:
    t0 = time.perf_counter()
    report = estimate_workload(with_batch(workload, batch), eyeriss(), compression=compression,
                               gating=gating, compression_levels=levels)
    return report, time.perf_counter() - t0


def analyse_network(name: str, batches: tuple[int, ...],
                    overrides: dict[str, dict[str, float]] | None) -> dict[str, Any]:
    """Every (density mode, batch) estimate of one network."""
    t0 = time.perf_counter()
    base = measured_workload(name)
    extract_s = time.perf_counter() - t0
    modes: dict[str, tuple[Workload, Compression]] = {
        "dense": (dense(base), Compression.NONE),
        "measured": (base, Compression.SIGNIFICANCE_MAP),
    }
    if overrides:
        modes["json"] = (apply_density_file(base, overrides), Compression.SIGNIFICANCE_MAP)
    out: dict[str, Any] = {"extract_s": extract_s, "modes": {}}
    for mode, (workload, compression) in modes.items():
        out["modes"][mode] = {"compression": compression.value, "batches": {}}
        for batch in batches:
            report, wall = run_estimate(workload, batch, compression)
            out["modes"][mode]["batches"][str(batch)] = {
                "wall_s": wall, "summary": network_summary(report, batch),
                "layers": layer_rows(report, batch)}
    out["unmodelled_ops"] = {op.op: op.count for op in base.unmodelled}
    return out


def pruning_study(batches: tuple[int, ...], han: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Caffe AlexNet with Han et al. weight densities vs unpruned, same ifmap densities."""
    measured = measured_workload("alexnet-caffe")
    out: dict[str, Any] = {"weight_densities": {k: v["weights"] for k, v in han.items()},
                           "ifmaps": {}}
    for ifmaps, base, compression in (
            ("measured", measured, Compression.SIGNIFICANCE_MAP),
            ("dense", dense(measured), Compression.SIGNIFICANCE_MAP)):
        pruned = apply_density_file(base, han)
        rows = {}
        for batch in batches:
            before, _ = run_estimate(base, batch, compression)
            after, _ = run_estimate(pruned, batch, compression)
            rows[str(batch)] = {
                "energy_ratio": after.total() / before.total(),
                "energy_reduction": before.total() / after.total(),
                "nonskipped_macs_ratio": after.nonskipped_macs() / before.nonskipped_macs(),
                "weights_ratio": after.nonzero_weights() / before.nonzero_weights(),
                "unpruned": network_summary(before, batch),
                "pruned": network_summary(after, batch),
                "per_layer_energy_ratio": {
                    a.name: b.total / a.total for a, b in zip(before.layers, after.layers,
                                                              strict=True)},
                "per_layer_pruned_by_operand": {
                    b.name: per_image(b.by_operand(), batch) for b in after.layers},
                "per_layer_unpruned_by_operand": {
                    a.name: per_image(a.by_operand(), batch) for a in before.layers},
            }
        out["ifmaps"][ifmaps] = {"compression": compression.value, "batches": rows}
    return out


# Reproduction of the RS model in shared/reference/energy-model.md section 2.4 [computed
# there from rs_flow.m, exhaustive search, array psums charged twice as in the code's
# objective]: ISCA 2016 setup (256 PEs, 512 B RF, 128 KB GLB), Caffe AlexNet, N = 16,
# 16-bit, dense. Per CONV layer: total, DRAM, GLB, array, RF, ALU (normalised).
ISCA2016_REPRODUCTION = {
    "conv1": (1.11e10, 2.19e9, 1.50e8, 6.54e8, 6.44e9, 1.69e9),
    "conv2": (2.10e10, 2.22e9, 2.92e8, 7.50e8, 1.41e10, 3.58e9),
    "conv3": (1.45e10, 1.84e9, 2.96e8, 6.61e8, 9.34e9, 2.39e9),
    "conv4": (1.11e10, 1.57e9, 1.78e8, 4.93e8, 7.03e9, 1.79e9),
    "conv5": (7.38e9, 1.05e9, 1.33e8, 3.20e8, 4.68e9, 1.20e9),
}


def isca2016_check() -> dict[str, Any]:
    """Our CONV layers on `eyeriss-isca2016` at N = 16 vs the section 2.4 reproduction."""
    from nnjoules.energy.hardware import eyeriss_isca2016

    layers = tuple(la for la in caffe_alexnet_dense(16).layers if la.kind is LayerKind.CONV)
    report = estimate_workload(Workload("alexnet-caffe-conv", layers), eyeriss_isca2016(),
                               compression=Compression.NONE)
    rows = {}
    for item in report.layers:
        ref = dict(zip(("total", "dram", "glb", "array", "rf", "mac"),
                       ISCA2016_REPRODUCTION[item.name], strict=True))
        ours = {"total": item.total, **item.by_level()}
        rows[item.name] = {"reference": ref, "ours": ours,
                           "ratio": {k: ours[k] / ref[k] for k in ref},
                           "mapping": item.mapping.as_dict()}
    total_ref = sum(v[0] for v in ISCA2016_REPRODUCTION.values())
    return {"layers": rows, "total_reference": total_ref, "total_ours": report.total(),
            "total_ratio": report.total() / total_ref}


# --------------------------------------------------------------------------- markdown

def _g(x: float) -> str:
    return format(x, ".3g")


def to_markdown(doc: dict[str, Any]) -> str:
    lines = ["# The paper's network analysis on the `eyeriss` preset", "",
             f"Generated {doc['date']} by `benchmarks/paper/analysis.py` (nnjoules "
             f"{doc['nnjoules_version']}). Hardware `eyeriss` (12 x 14 PEs, 108 KiB GLB, "
             "pads 224/12/24 words, costs DRAM 200 / GLB 6 / array 2 / RF 1 / MAC 1, "
             "normalised: 1 = one 16-bit MAC), 16-bit data. Energies are **per image**.", "",
             "Densities: `dense` = all 1 with uncompressed DRAM; `measured` = weights and "
             "activations measured on one N(0, 1) sample image with **random weights** "
             "(weights fully dense, about half of every ReLU output zero: the statistics of "
             "an untrained network, unlike a trained one's), DRAM significance-map "
             "compression; `json` = a per-layer density file. AlexNet is Caffe's "
             "(ISCA 2016 Table II, groups of 2 in CONV2/4/5, written by hand); the others "
             "are torchvision's (GoogLeNet v1 without auxiliary heads).", ""]
    for mode in ("dense", "measured", "json"):
        rows = [(net, data["modes"][mode]) for net, data in doc["networks"].items()
                if mode in data["modes"]]
        if not rows:
            continue
        lines += [f"## Networks, densities `{mode}`", "",
                  "| network | batch | weights | MACs | non-skipped MACs | energy | "
                  "energy / MAC | CONV share | FC share | ifmaps | ofmaps+psums | weights "
                  "| computation | DRAM | GLB | array | RF | time (s) |",
                  "|---|---:|" + "---:|" * 16]
        for net, entry in rows:
            for batch, data in entry["batches"].items():
                s = data["summary"]
                op = s["by_operand_per_image"]
                lv = s["by_level_per_image"]
                e = s["energy_per_image"]
                lines.append(
                    f"| {net} | {batch} | {_g(s['weights'])} | {_g(s['macs_per_image'])} | "
                    f"{_g(s['nonskipped_macs_per_image'])} | {_g(e)} | "
                    f"{s['energy_per_mac']:.2f} | {s['conv_share']:.0%} | "
                    f"{s['fc_share']:.0%} | "
                    + " | ".join(f"{op[k] / e:.0%}" for k in OPERAND_KEYS) + " | "
                    + " | ".join(f"{lv[k] / e:.0%}" for k in ("dram", "glb", "array", "rf"))
                    + f" | {data['wall_s']:.2f} |")
        lines.append("")
    alex = doc["networks"].get("alexnet-caffe")
    if alex:
        for batch in ("4",):
            data = alex["modes"]["measured"]["batches"].get(batch)
            if not data:
                continue
            lines += [f"## Caffe AlexNet per layer (measured densities, batch {batch})", "",
                      "| layer | MACs | non-skipped | energy | ifmaps | ofmaps+psums | "
                      "weights | computation | DRAM | GLB | array | RF | MAC | mapping "
                      "(m,n,e,p,q,r,t) |", "|---|" + "---:|" * 12 + "---|"]
            for row in data["layers"]:
                op, lv = row["by_operand_per_image"], row["by_level_per_image"]
                mp = row["mapping"]
                lines.append(
                    f"| {row['name']} | {_g(row['macs_per_image'])} | "
                    f"{_g(row['nonskipped_macs_per_image'])} | {_g(row['energy_per_image'])} | "
                    + " | ".join(_g(op[k]) for k in OPERAND_KEYS) + " | "
                    + " | ".join(_g(lv[k]) for k in LEVEL_KEYS)
                    + f" | {','.join(str(mp[k]) for k in 'mnepqrt')} |")
            lines.append("")
    pruning = doc.get("pruning")
    if pruning:
        lines += ["## Magnitude-pruned AlexNet (Han et al. 2015 weight densities)", "",
                  "Weight densities " + ", ".join(f"{k} {v:.0%}" for k, v in
                                                 pruning["weight_densities"].items())
                  + ". Same ifmap densities before and after (pruning would change them in "
                  "a trained network). DRAM significance-map compression.", "",
                  "| ifmaps | batch | energy pruned / unpruned | energy reduction | "
                  "non-skipped MACs pruned / unpruned | non-zero weights pruned / unpruned |",
                  "|---|---:|---:|---:|---:|---:|"]
        for ifmaps, entry in pruning["ifmaps"].items():
            for batch, row in entry["batches"].items():
                lines.append(f"| {ifmaps} | {batch} | {row['energy_ratio']:.3f} | "
                             f"{row['energy_reduction']:.2f}x | "
                             f"{row['nonskipped_macs_ratio']:.3f} | "
                             f"{row['weights_ratio']:.3f} |")
        row4 = pruning["ifmaps"]["measured"]["batches"].get("4")
        if row4:
            lines += ["", "Per layer, batch 4, measured ifmaps: energy pruned / unpruned: "
                      + ", ".join(f"{k} {v:.2f}" for k, v in
                                  row4["per_layer_energy_ratio"].items()) + "."]
        lines += ["", "For scale: the CVPR 2017 paper reports energy-aware pruning 3.7x below "
                  "unpruned AlexNet and 1.74x below magnitude pruning, i.e. about 2.1x for "
                  "magnitude pruning (computed), with trained activations (sparser than "
                  "these random-weight ones) and its own (unpublished here) mapping.", ""]
    check = doc.get("isca2016_check")
    if check:
        lines += ["## Check: the ISCA 2016 setup against the reference reproduction", "",
                  "Caffe AlexNet CONV layers, preset `eyeriss-isca2016` (256 PEs, 512 B RF, "
                  "128 KB GLB), N = 16, dense, vs the exhaustive-search reproduction of "
                  "`rs_flow.m` in `shared/reference/energy-model.md` section 2.4 (which "
                  "charges the array psum term twice, as the code's objective does; we "
                  "count it once). Ratio ours / reproduction:", "",
                  "| layer | total | DRAM | GLB | array | RF | MAC | our mapping |",
                  "|---|---:|---:|---:|---:|---:|---:|---|"]
        for name, row in check["layers"].items():
            r = row["ratio"]
            lines.append(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k in
                                                     ("total", "dram", "glb", "array", "rf",
                                                      "mac"))
                         + f" | {row['mapping']} |")
        lines += ["", f"Sum of CONV layers: ours {check['total_ours']:.3g}, reproduction "
                      f"{check['total_reference']:.3g} (x{check['total_ratio']:.3f}) per 16 "
                      "images.", ""]
    plots = doc.get("plots")
    if plots:
        lines += ["## Charts", ""] + [f"* `{p}`" for p in plots] + [""]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ plots

def make_plots(doc: dict[str, Any], folder: Path) -> list[str]:
    """Stacked bars: per layer by operand (batch 4, measured), networks, pruning."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colours = {"ifmaps": "#4c72b0", "psums": "#dd8452", "weights": "#55a868",
               "computation": "#8172b3"}
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig: Figure, name: str) -> None:
        FigureCanvasAgg(fig)
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110)
        written.append(str((folder / name).relative_to(REPO)))

    def stacked(ax: Any, labels: list[str], parts: list[dict[str, float]]) -> None:
        bottom = [0.0] * len(labels)
        for key in OPERAND_KEYS:
            values = [p[key] for p in parts]
            ax.bar(range(len(labels)), values, bottom=bottom, color=colours[key],
                   label=OPERAND_LABELS[key])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=90, fontsize=6 if len(labels) > 20 else 8)
        ax.set_ylabel("energy per image (normalised)")
        ax.legend(fontsize=7)

    for net, data in doc["networks"].items():
        batch = data["modes"]["measured"]["batches"].get("4")
        if not batch:
            continue
        fig = Figure(figsize=(max(6.0, 0.18 * len(batch["layers"]) + 2), 4))
        ax = fig.add_subplot()
        stacked(ax, [r["name"] for r in batch["layers"]],
                [r["by_operand_per_image"] for r in batch["layers"]])
        ax.set_title(f"{net}: energy per layer by data type (batch 4, measured densities)",
                     fontsize=9)
        save(fig, f"{net}_b4_by_operand.png")
    nets = [(net, d["modes"]["measured"]["batches"].get("4")) for net, d in
            doc["networks"].items()]
    nets = [(n, b) for n, b in nets if b]
    if nets:
        fig = Figure(figsize=(7, 4))
        ax = fig.add_subplot()
        stacked(ax, [n for n, _ in nets], [b["summary"]["by_operand_per_image"]
                                          for _, b in nets])
        ax.set_title("networks: energy per image by data type (batch 4, measured)", fontsize=9)
        save(fig, "networks_b4_by_operand.png")
    pruning = doc.get("pruning")
    if pruning and "4" in pruning["ifmaps"]["measured"]["batches"]:
        row = pruning["ifmaps"]["measured"]["batches"]["4"]
        names = list(row["per_layer_pruned_by_operand"])
        labels, parts = [], []
        for name in names:
            labels += [f"{name}", f"{name} pruned"]
            parts += [row["per_layer_unpruned_by_operand"][name],
                      row["per_layer_pruned_by_operand"][name]]
        fig = Figure(figsize=(8, 4))
        ax = fig.add_subplot()
        stacked(ax, labels, parts)
        ax.set_title("Caffe AlexNet, unpruned vs Han et al. magnitude pruning (batch 4)",
                     fontsize=9)
        save(fig, "alexnet_pruning_b4.png")
    return written


# ------------------------------------------------------------------------------- main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--networks", default=",".join(NETWORKS),
                    help=f"comma-separated, from {', '.join(NETWORKS)}")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--densities", type=Path, default=None,
                    help="density JSON {network: {layer: {weights|ifmaps|ofmaps: x}}} for "
                         "the `json` mode (default: Han et al. for alexnet-caffe)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    args.networks = tuple(n.strip() for n in args.networks.split(",") if n.strip())
    unknown = sorted(set(args.networks) - set(NETWORKS))
    if unknown:
        ap.error(f"unknown network(s) {unknown}; choose from {', '.join(NETWORKS)}")
    try:
        args.batches = tuple(int(b) for b in args.batches.split(","))
    except ValueError:
        ap.error("--batches takes comma-separated positive integers")
    if any(b < 1 for b in args.batches):
        ap.error("--batches takes comma-separated positive integers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import nnjoules

    overrides = load_density_file(args.densities or HAN_JSON)
    han = load_density_file(HAN_JSON)["alexnet-caffe"]
    doc: dict[str, Any] = {
        "benchmark": "paper network analysis (CVPR 2017 / ISCA 2016) on the eyeriss preset",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "nnjoules_version": nnjoules.__version__, "hardware": "eyeriss",
        "unit": "normalized (1 = one 16-bit MAC)", "per": "image",
        "density_file": str(args.densities or HAN_JSON.relative_to(REPO)),
        "networks": {}}
    for name in args.networks:
        print(f"{name} ...", file=sys.stderr, flush=True)
        doc["networks"][name] = analyse_network(name, args.batches, overrides.get(name))
    if "alexnet-caffe" in args.networks:
        doc["pruning"] = pruning_study(args.batches, han)
        doc["isca2016_check"] = isca2016_check()
    if not args.no_plots:
        doc["plots"] = make_plots(doc, args.out_dir / "paper_plots")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "paper_analysis.json").write_text(
        json.dumps(doc, separators=(",", ":")) + "\n")
    (args.out_dir / "paper_analysis.md").write_text(to_markdown(doc))
    for name, data in doc["networks"].items():
        for mode, entry in data["modes"].items():
            for batch, row in entry["batches"].items():
                s = row["summary"]
                print(f"{name:14s} {mode:8s} N={batch:>2s}: {s['energy_per_image']:.4g} per "
                      f"image, {s['energy_per_mac']:.2f} per MAC, CONV {s['conv_share']:.0%}")
    print(f"wrote {args.out_dir / 'paper_analysis.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

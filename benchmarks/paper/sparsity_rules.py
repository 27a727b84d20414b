#!/usr/bin/env python3
"""The paper analysis under each sparsity rule: which combination lands closest.

For each combination of skipping rule (`--gating`) and compressed moves
(`--compression-levels`): unpruned Caffe AlexNet and GoogLeNet energy per image at batch 1, 4 and 16
(measured ifmap densities, random weights, significance-map DRAM compression), the CONV
share, the four-way split (ifmaps, ofmaps incl. psums, weights, computation), and the
reduction of magnitude-pruned AlexNet (Han et al. 2015 weight densities) against
unpruned. The reference material gives 3.7x (energy-aware) and 1.74x (energy-aware vs
magnitude) for AlexNet, so magnitude pruning about 3.7 / 1.74 = 2.13x, and GoogLeNet
1.6x (energy-aware); it gives no absolute totals to compare with.

Usage::

    python benchmarks/paper/sparsity_rules.py [--batches 1,4,16]

Writes ``benchmarks/results/sparsity_rules.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from analysis import (  # noqa: E402
    HAN_JSON,
    RESULTS,
    apply_density_file,
    load_density_file,
    measured_workload,
    network_summary,
    run_estimate,
)

from nnjoules.energy.cost import Compression, CompressionLevels, Gating  # noqa: E402
from nnjoules.io import write_text_atomic  # noqa: E402

IMPLIED_MAGNITUDE_REDUCTION = 3.7 / 1.74  # reference §3 / brief: 3.7x and 1.74x


def study(batches: tuple[int, ...]) -> dict[str, Any]:
    alexnet, googlenet = measured_workload("alexnet-caffe"), measured_workload("googlenet")
    pruned = apply_density_file(alexnet, load_density_file(HAN_JSON)["alexnet-caffe"])
    out: dict[str, Any] = {"compression": Compression.SIGNIFICANCE_MAP.value, "rules": {}}
    for levels in CompressionLevels:
        for gating in Gating:
            rows: dict[str, Any] = {}
            for batch in batches:
                row = {}
                for name, workload in (("alexnet", alexnet), ("googlenet", googlenet),
                                       ("alexnet_han", pruned)):
                    report, _ = run_estimate(workload, batch, Compression.SIGNIFICANCE_MAP,
                                             gating, levels)
                    row[name] = network_summary(report, batch)
                row["han_reduction"] = (row["alexnet"]["energy_per_image"]
                                        / row["alexnet_han"]["energy_per_image"])
                rows[str(batch)] = row
            out["rules"][f"{levels.value} / {gating.value}"] = rows
    return out


def to_markdown(doc: dict[str, Any]) -> str:
    lines = ["# The paper analysis under each skipping rule", "",
             "`python benchmarks/paper/sparsity_rules.py`; `eyeriss` preset, 16-bit, "
             f"{doc['compression']} DRAM compression, measured ifmap densities (one random "
             "image, random weights), energy per image (normalised). Split: ifmaps / ofmaps "
             "incl. psums / weights / computation, as shares of the total. The last column "
             "is unpruned / Han et al.'s magnitude-pruned AlexNet; the reference implies "
             f"about {IMPLIED_MAGNITUDE_REDUCTION:.2f}x with trained activations.", "",
             "| levels / gating | N | AlexNet | CONV share | AlexNet split | GoogLeNet "
             "| GoogLeNet split | Han reduction |", "|---|---:|---:|---:|---|---:|---|---:|"]

    def split(summary: dict[str, Any]) -> str:
        parts = summary["by_operand_per_image"]
        total = summary["energy_per_image"]
        return " / ".join(f"{100 * parts[k] / total:.0f}%"
                          for k in ("ifmaps", "psums", "weights", "computation"))

    for rule, rows in doc["rules"].items():
        for batch, row in rows.items():
            a, g = row["alexnet"], row["googlenet"]
            lines.append(f"| {rule} | {batch} | {a['energy_per_image']:.3g} | "
                         f"{100 * a['conv_share']:.0f}% | {split(a)} | "
                         f"{g['energy_per_image']:.3g} | {split(g)} | "
                         f"{row['han_reduction']:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", default="1,4,16")
    args = ap.parse_args(argv)
    doc = study(tuple(int(b) for b in args.batches.split(",")))
    write_text_atomic(RESULTS / "sparsity_rules.json", json.dumps(doc, indent=1) + "\n")
    text = to_markdown(doc)
    write_text_atomic(RESULTS / "sparsity_rules.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

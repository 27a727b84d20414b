#!/usr/bin/env python3
"""Cross-check against Timeloop+Accelergy and Sparseloop: published reference outputs.

The reference statistics (``reference.json``) are transcribed from the committed outputs
of ``Accelergy-Project/timeloop-accelergy-exercises`` (file paths and commits inside);
nothing here runs Timeloop. For each case we estimate the same layer on a hardware file
of ours with the same per-access energies and storage sizes (``hardware/*.yaml``) and put
both side by side per level and per (level, operand):

* ``ours``: nnjoules as a user runs it (its own row-stationary mapping, its counting
  convention, its sparsity rules);
* ``ours, Timeloop accounting``: the same counts plus the writes Timeloop charges and
  the closed form leaves out (fills of the GLB and of the scratch pads, one psum update
  per MAC, outputs passing through the GLB), so that what remains is the mapping;
* for the sparse case T5, ``ours, --gating ifmap``: nnjoules with the Eyeriss chip's
  gating (only zero ifmaps skip MACs), and ``ours, Sparseloop rules``: also costed with
  that exercise's sparsity rules (gating of weight reads on zero ifmaps only, MACs
  charged per non-zero ifmap, only non-zero ifmaps and ofmaps moved to and from DRAM,
  weights dense), and a dense comparison against the reference's algorithmic (dense)
  counts re-costed with its own energies.

Usage::

    python benchmarks/timeloop/compare.py        # writes benchmarks/results/timeloop.{json,md}

Exit status: 0 done, 1 failure.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
REFERENCE = HERE / "reference.json"
LEVELS = ("dram", "glb", "array", "rf")
OPERANDS = ("weights", "ifmaps", "psums")

try:  # pragma: no cover - the benchmark may run from a source tree
    import nnjoules  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(REPO / "src"))

from nnjoules.energy.cost import (  # noqa: E402
    Compression,
    CompressionLevels,
    Gating,
    dram_bits_per_value,
)
from nnjoules.energy.counts import AccessCounts  # noqa: E402
from nnjoules.energy.dataflows.row_stationary.mapping import ceil_div  # noqa: E402
from nnjoules.energy.estimate import estimate_workload  # noqa: E402
from nnjoules.energy.hardware import Hardware, Level  # noqa: E402
from nnjoules.energy.hardware.loading import load_hardware  # noqa: E402
from nnjoules.energy.results import LayerEstimate  # noqa: E402
from nnjoules.energy.workload import (  # noqa: E402
    Density,
    Layer,
    LayerKind,
    Operand,
    Precision,
    Workload,
)

Energy = dict[str, Any]  # {"by_level": {...}, "by_level_operand": {...}, "total": float}


def load_reference(path: Path = REFERENCE) -> dict[str, Any]:
    """The transcribed reference document."""
    return json.loads(path.read_text())


def case_layer(case: dict[str, Any], *, dense: bool = False) -> Layer:
    """Our `Layer` for a reference case (densities from the case unless ``dense``)."""
    shape = case["layer"]
    bits = case["bits"]
    density = Density() if dense or case["density"] is None else Density(**case["density"])
    return Layer(case.get("name", "layer"), LayerKind.CONV, N=shape["N"], M=shape["M"],
                 C=shape["C"], H=shape["H"], W=shape["W"], R=shape["R"], S=shape["S"],
                 E=shape["E"], F=shape["F"], stride=tuple(shape["stride"]),
                 precision=Precision(bits["weights"], bits["ifmaps"], bits["ofmaps"]),
                 density=density)


def case_hardware(case: dict[str, Any]) -> Hardware:
    """Our hardware description of the case's design."""
    return load_hardware(HERE / case["hardware_file"])


def case_compression(case: dict[str, Any], *, dense: bool = False) -> Compression:
    """DRAM compression matching the reference: none for the dense designs."""
    return Compression.NONE if dense or case["density"] is None else \
        Compression.SIGNIFICANCE_MAP


def estimate_case(case: dict[str, Any], *, dense: bool = False,
                  gating: Gating = Gating.EITHER,
                  levels: CompressionLevels = CompressionLevels.DRAM,
                  ) -> tuple[LayerEstimate, float]:
    """Our estimate of the case's layer, and the wall time of mapping + costing (s)."""
    layer = case_layer(case, dense=dense)
    hw = case_hardware(case)
    t0 = time.perf_counter()
    report = estimate_workload(Workload(layer.name, (layer,)), hw,
                               compression=case_compression(case, dense=dense), gating=gating,
                               compression_levels=levels)
    return report.layers[0], time.perf_counter() - t0


# ----------------------------------------------------------------------------- ours

def _energy(data: dict[tuple[str, str], float], mac: float) -> Energy:
    by_level = {lv: sum(data.get((lv, op), 0.0) for op in OPERANDS) for lv in LEVELS}
    by_level["mac"] = mac
    return {"by_level": by_level,
            "by_level_operand": {f"{lv}.{op}": data.get((lv, op), 0.0)
                                 for lv in LEVELS for op in OPERANDS},
            "total": sum(by_level.values())}


def ours_energy(est: LayerEstimate) -> Energy:
    """nnjoules' own breakdown, in the comparison's shape."""
    data = {(lv.value, op.value): value for (lv, op), value in est.energy.data.items()}
    return _energy(data, est.energy.computation)


def fill_counts(layer: Layer, est: LayerEstimate) -> dict[tuple[str, str], int]:
    """Writes Timeloop charges that the closed form folds into the level above.

    On our schedule: the GLB is filled with every ifmap read from DRAM and every final
    ofmap passes through it; each scratch pad is filled with every value the array
    delivers to it; and the psum pad is updated once per MAC (the closed form's RF psum
    writes leave out the first accumulation of each psum row, ``O*R*ceil(C/q)``).
    """
    counts: AccessCounts = est.counts
    first_touch = layer.num_ofmap_values * layer.R * ceil_div(layer.C, est.mapping.q)
    return {
        ("glb", "ifmaps"): counts.read(Level.DRAM, Operand.IFMAPS),
        ("glb", "psums"): layer.num_ofmap_values,
        ("rf", "weights"): counts.read(Level.ARRAY, Operand.WEIGHTS),
        ("rf", "ifmaps"): counts.read(Level.ARRAY, Operand.IFMAPS),
        ("rf", "psums"): first_touch,
    }


def _per_value(hw: Hardware, level: str, operand: str, bits: int) -> tuple[float, float]:
    cost = hw.cost_of(Level(level), Operand(operand))
    return bits * cost.read_per_bit(), bits * cost.write_per_bit()


def recost(layer: Layer, est: LayerEstimate, hw: Hardware, *, rules: str,
           compression: Compression) -> Energy:
    """Our counts costed with Timeloop's accounting (fills charged as writes).

    Args:
        rules: ``"nnjoules"`` (our default sparsity rules: MACs and the weight and psum
            RF accesses serving them gated by weight density x ifmap density, ifmap RF
            reads ungated, DRAM traffic compressed per ``compression``)
            or ``"sparseloop"`` (exercise 04.2.1: weight-pad reads and MACs gated by the
            ifmap density only, other pads ungated, DRAM carries only the non-zero
            ifmaps and ofmaps and dense weights, no metadata energy).
    """
    d = layer.density
    counts = est.counts
    fills = fill_counts(layer, est)
    data: dict[tuple[str, str], float] = {}
    for lv in LEVELS:
        for op in OPERANDS:
            bits = layer.precision.bits_of(Operand(op))
            e_read, e_write = _per_value(hw, lv, op, bits)
            if lv == "dram":
                if rules == "sparseloop":
                    scale = 1.0 if op == "weights" else d.of(Operand(op))
                else:
                    scale = dram_bits_per_value(layer, Operand(op), compression) / bits
                e_read, e_write = e_read * scale, e_write * scale
            reads = counts.read(Level(lv), Operand(op))
            writes = counts.write(Level(lv), Operand(op))
            extra = fills.get((lv, op), 0)
            if lv == "rf":
                if rules == "sparseloop":
                    gate_reads = d.ifmaps if op == "weights" else 1.0
                    value = reads * e_read * gate_reads + (writes + extra) * e_write
                else:
                    gate = 1.0 if op == "ifmaps" else d.weights * d.ifmaps
                    value = (reads * e_read + writes * e_write) * gate + extra * e_write
            else:
                value = reads * e_read + (writes + extra) * e_write
            data[lv, op] = value
    gate_mac = d.ifmaps if rules == "sparseloop" else d.weights * d.ifmaps
    mac = layer.macs * gate_mac * hw.mac_energy(layer.precision.weight_bits,
                                                layer.precision.ifmap_bits)
    return _energy(data, mac)


# ------------------------------------------------------------------------ reference

def reference_energy(case: dict[str, Any], *, algorithmic: bool = False) -> Energy:
    """The reference's dynamic energy per level and (level, operand), in pJ.

    With ``algorithmic`` the dense counts (Sparseloop's 'algorithmic' reads/updates and
    computes, where printed) are re-costed with the reference's own per-scalar energies:
    the energy the same mapping would have without its sparsity optimisations.
    """
    data: dict[tuple[str, str], float] = {}
    for row in case["accesses"]:
        if algorithmic:
            reads = row.get("algorithmic_reads", row["reads"])
            updates = row.get("algorithmic_updates", row["updates"])
            value = row["instances"] * (reads * row["read_pj"]
                                        + (row["fills"] + updates) * row["write_pj"])
        else:
            value = row["energy_pj"]
        key = (row["level"], row["operand"])
        data[key] = data.get(key, 0.0) + value
    mac = case["mac"]
    if algorithmic:
        mac_energy = mac.get("algorithmic_computes", mac["computes"]) * mac["compute_pj"]
    else:
        mac_energy = mac["energy_pj"]
    return _energy(data, mac_energy)


def recomputed_reference(case: dict[str, Any]) -> dict[str, float]:
    """Each transcribed dataspace energy recomputed from its counts x per-scalar energies.

    A check of the transcription: Timeloop's printed energy should equal
    ``instances * (reads * read + (fills + updates) * write)``.
    """
    out = {}
    for row in case["accesses"]:
        out[f"{row['component']}.{row['operand']}"] = row["instances"] * (
            row["reads"] * row["read_pj"] + (row["fills"] + row["updates"]) * row["write_pj"])
    return out


# ----------------------------------------------------------------------- comparison

def _ratio(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def compare_energies(ref: Energy, columns: dict[str, Energy]) -> dict[str, Any]:
    """Per level and per (level, operand): reference, each column and its ratio."""
    rows: dict[str, Any] = {}
    keys = [("level", k) for k in (*LEVELS, "mac")] + \
        [("level_operand", f"{lv}.{op}") for lv in LEVELS for op in OPERANDS]
    for kind, key in keys:
        ref_value = ref["by_level"][key] if kind == "level" else ref["by_level_operand"][key]
        row: dict[str, Any] = {"reference": ref_value}
        for name, energy in columns.items():
            value = energy["by_level"][key] if kind == "level" else \
                energy["by_level_operand"][key]
            row[name] = value
            row[f"{name} / reference"] = _ratio(value, ref_value)
        rows[key] = row
    total = {"reference": ref["total"]}
    for name, energy in columns.items():
        total[name] = energy["total"]
        total[f"{name} / reference"] = _ratio(energy["total"], ref["total"])
    rows["total"] = total
    return rows


def ours_counts(layer: Layer, est: LayerEstimate) -> dict[str, dict[str, int]]:
    """Our reads, writes and Timeloop-style fills per (level, operand), whole layer."""
    fills = fill_counts(layer, est)
    out = {}
    for lv in LEVELS:
        for op in OPERANDS:
            out[f"{lv}.{op}"] = {"reads": est.counts.read(Level(lv), Operand(op)),
                                 "writes": est.counts.write(Level(lv), Operand(op)),
                                 "fills": fills.get((lv, op), 0)}
    return out


def reference_counts(case: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The reference's reads, fills and updates per (level, operand), all instances."""
    out: dict[str, dict[str, int]] = {}
    for row in case["accesses"]:
        key = f"{row['level']}.{row['operand']}"
        entry = out.setdefault(key, {"reads": 0, "fills": 0, "updates": 0})
        for field in ("reads", "fills", "updates"):
            entry[field] += row["instances"] * row[field]
    return out


def run_case(name: str, case: dict[str, Any]) -> dict[str, Any]:
    """Everything the report shows for one case."""
    case = {**case, "name": name}
    layer = case_layer(case)
    hw = case_hardware(case)
    compression = case_compression(case)
    est, wall = estimate_case(case)
    ref = reference_energy(case)
    columns = {"ours": ours_energy(est),
               "ours, Timeloop accounting": recost(layer, est, hw, rules="nnjoules",
                                                   compression=compression)}
    sparse = case["density"] is not None
    if sparse:
        chip_est, _ = estimate_case(case, gating=Gating.IFMAP)
        columns["ours, --gating ifmap"] = ours_energy(chip_est)
        columns["ours, Sparseloop rules"] = recost(layer, est, hw, rules="sparseloop",
                                                   compression=compression)
    result: dict[str, Any] = {
        "title": case["title"],
        "files": case["files"],
        "hardware_file": f"benchmarks/timeloop/{case['hardware_file']}",
        "layer": case["layer"], "bits": case["bits"], "density": case["density"],
        "compression": compression.value,
        "macs": layer.macs,
        "reference_mapping": case["mapping_text"],
        "ours_mapping": est.mapping.as_dict(),
        "ours_active_pes": est.mapping.active_pes(layer),
        "ours_wall_s": wall,
        "reference_summary": case["summary"],
        "reference_dynamic_pj": ref["total"],
        "comparison": compare_energies(ref, columns),
        "counts": {"reference": reference_counts(case), "ours": ours_counts(layer, est)},
    }
    if sparse:
        result["rules"] = rules_study(case, ref)
        dense_est, _ = estimate_case(case, dense=True)
        dense_layer = case_layer(case, dense=True)
        dense_cols = {"ours": ours_energy(dense_est),
                      "ours, Timeloop accounting": recost(
                          dense_layer, dense_est, hw, rules="nnjoules",
                          compression=Compression.NONE)}
        result["dense"] = {
            "about": "our dense estimate vs the reference's algorithmic (dense) counts "
                     "re-costed with its own per-scalar energies (computed, not printed "
                     "by Sparseloop)",
            "ours_mapping": dense_est.mapping.as_dict(),
            "comparison": compare_energies(reference_energy(case, algorithmic=True),
                                           dense_cols),
        }
    return result


def rules_study(case: dict[str, Any], ref: Energy) -> dict[str, dict[str, float | None]]:
    """Ours / reference, in total and per level, under every sparsity-rule combination."""
    out = {}
    for levels in CompressionLevels:
        for gating in Gating:
            energy = ours_energy(estimate_case(case, gating=gating, levels=levels)[0])
            ratios = {key: _ratio(energy["by_level"][key], ref["by_level"][key])
                      for key in (*LEVELS, "mac")}
            out[f"{levels.value} / {gating.value}"] = {
                "total": _ratio(energy["total"], ref["total"]), **ratios}
    return out


def run_all(reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole comparison document."""
    reference = reference or load_reference()
    import nnjoules

    return {
        "benchmark": "nnjoules vs Timeloop+Accelergy / Sparseloop reference outputs",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "nnjoules_version": nnjoules.__version__,
        "python": platform.python_version(),
        "repository": reference["repository"],
        "issue_commit": reference["issue_commit"],
        "energy_unit": "pJ",
        "cases": {name: run_case(name, case) for name, case in reference["cases"].items()},
    }


# ------------------------------------------------------------------------- markdown

def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "n/a" if x is None else format(x, spec)


def _table(rows: dict[str, Any], columns: list[str], keys: list[str]) -> list[str]:
    head = "| | reference | " + " | ".join(f"{c} | {c} / ref" for c in columns) + " |"
    lines = [head, "|---|---:|" + "---:|---:|" * len(columns)]
    for key in keys:
        row = rows[key]
        cells = [_fmt(row["reference"] / 1e6, ".4g")]
        for c in columns:
            cells += [_fmt(row[c] / 1e6, ".4g"), _fmt(row[f"{c} / reference"], ".3f")]
        label = f"**{key}**" if key == "total" else key
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


GAPS_MD = Path(HERE / "gaps.md")


def to_markdown(doc: dict[str, Any]) -> str:
    """Tables per case and the explanation of the gaps (``gaps.md``)."""
    out = ["# nnjoules vs Timeloop+Accelergy / Sparseloop (published reference outputs)", "",
           f"Generated {doc['date']} by `benchmarks/timeloop/compare.py` (nnjoules "
           f"{doc['nnjoules_version']}). References transcribed from "
           f"`{doc['repository']}` (files and commits per case below; the issue names "
           f"commit {doc['issue_commit']}). Energies in **µJ**; reference = Timeloop's "
           "dynamic energy per dataspace (leakage, printed separately, excluded).", ""]
    level_keys = ["dram", "glb", "array", "rf", "mac", "total"]
    operand_keys = [f"{lv}.{op}" for lv in ("dram", "glb", "rf") for op in OPERANDS]
    for name, case in doc["cases"].items():
        columns = [c for c in ("ours", "ours, Timeloop accounting", "ours, --gating ifmap",
                               "ours, Sparseloop rules")
                   if f"{c} / reference" in case["comparison"]["total"]]
        summary = case["reference_summary"]
        out += [f"## {name}: {case['title']}", "",
                f"Layer {case['layer']}, bits {case['bits']}, densities {case['density']}, "
                f"{case['macs']:,} MACs; our DRAM compression `{case['compression']}`; "
                f"hardware `{case['hardware_file']}`.", "",
                f"* reference total {summary['energy_uj']} µJ (incl. "
                f"{summary['leakage_pj'] / 1e6:.3f} µJ leakage), mapping: "
                f"{case['reference_mapping']}",
                f"* ours: mapping {case['ours_mapping']}, {case['ours_active_pes']} active "
                f"PEs, estimated in {case['ours_wall_s'] * 1e3:.1f} ms",
                "* files: " + "; ".join(f"{k} `{p}` @ {c[:8]}"
                                        for k, (p, c) in case["files"].items()), "",
                "By level:", ""]
        out += _table(case["comparison"], columns, level_keys)
        out += ["", "By level and operand (psums = ofmaps incl. psums):", ""]
        out += _table(case["comparison"], columns, operand_keys)
        out += ["", "Counts (whole layer; reference reads / fills / updates, ours reads / "
                "writes / Timeloop-style fills):", "",
                "| | ref reads | ref fills | ref updates | our reads | our writes | "
                "our fills |", "|---|---:|---:|---:|---:|---:|---:|"]
        for key in operand_keys:
            r = case["counts"]["reference"].get(key, {"reads": 0, "fills": 0, "updates": 0})
            o = case["counts"]["ours"][key]
            out.append(f"| {key} | {r['reads']:,} | {r['fills']:,} | {r['updates']:,} | "
                       f"{o['reads']:,} | {o['writes']:,} | {o['fills']:,} |")
        if "rules" in case:
            out += ["", "Ours / reference under each sparsity rule (`--compression-levels` / "
                    "`--gating`):", "", "| rules | total | dram | glb | array | rf | mac |",
                    "|---|---:|---:|---:|---:|---:|---:|"]
            for rules, ratios in case["rules"].items():
                cells = " | ".join(_fmt(ratios[k], ".3f")
                                   for k in ("total", "dram", "glb", "array", "rf", "mac"))
                out.append(f"| {rules} | {cells} |")
        if "dense" in case:
            dense = case["dense"]
            out += ["", f"Dense ({dense['about']}); our dense mapping "
                        f"{dense['ours_mapping']}:", ""]
            out += _table(dense["comparison"], ["ours", "ours, Timeloop accounting"],
                          level_keys)
        out.append("")
    if GAPS_MD.exists():
        out += [GAPS_MD.read_text()]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    doc = run_all()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "timeloop.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out_dir / "timeloop.md").write_text(to_markdown(doc))
    for name, case in doc["cases"].items():
        total = case["comparison"]["total"]
        print(f"{name}: reference {total['reference'] / 1e6:.2f} uJ, ours "
              f"{total['ours'] / 1e6:.2f} uJ (x{total['ours / reference']:.3f}), "
              f"Timeloop accounting x{total['ours, Timeloop accounting / reference']:.3f}")
    print(f"wrote {args.out_dir / 'timeloop.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

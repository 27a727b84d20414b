#!/usr/bin/env python3
"""Side-by-side benchmark: nnjoules vs the Stanford nn-dataflow searcher on AlexNet.

Runs ``benchmarks/peers/nn_dataflow_runner.py`` with the Python of the isolated venv
``benchmarks/peers/.venv-nn-dataflow`` (nn-dataflow 2.1 pins sympy==1.6.2, which
torch cannot share), then estimates the *same* layers with ``nnjoules.estimate`` in
this process, and writes

    benchmarks/results/nn_dataflow.json   (everything, including the peer's raw output)
    benchmarks/results/nn_dataflow.md     (per-layer energies, ratios, totals, timing)

The layers are taken from the peer's JSON, so both tools see identical shapes:
nn-dataflow's AlexNet has no groups; it splits CONV1, CONV2, CONV4 and CONV5 into two
towers (``conv1_a``/``conv1_b`` ...), and CONV3 into two halves of the filters that
each read all 256 channels, so every layer here has G = 1. Its pooling layers are
scheduled by nn-dataflow but not by nnjoules: they are listed, not compared.

Usage::

    bash benchmarks/peers/setup_peers.sh           # once
    python benchmarks/bench_vs_nn_dataflow.py      # [--batch 1] [--solver] [--regf-bytes 512]

Exit status: 0 done (or skipped: the venv is missing), 1 a side failed, 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS = HERE / "peers"
VENV_PYTHON = PEERS / ".venv-nn-dataflow" / "bin" / "python"
RUNNER = PEERS / "nn_dataflow_runner.py"
RESULTS = HERE / "results"
LEVEL_KEYS = ("dram", "glb", "array", "rf", "mac")
SKIP_MESSAGE = ("skipped: nn-dataflow not installed, run benchmarks/peers/setup_peers.sh "
                "(expected {python})")

MODEL_NOTES = """\
How nn-dataflow's model differs from the row-stationary closed form that nnjoules
implements (reference/energy-model.md section 2.3), as read in its code
(`core/map_strategy.py`, `core/loop_blocking_scheme.py`, `core/scheduling.py`):

* **Mapping onto the array is fixed, not searched.** `MapStrategyEyeriss` places the
  logical R x E PE set on the 12 x 14 array by fixed rules: fold E into ceil(E/14)
  strips when E > 14 (CONV1: 4 strips of <= 14 output rows), replicate the set
  floor(14/E) times horizontally (over filters) and floor(12/R) times vertically (split
  between ifmap channels and filters so that the loop count is smallest). The closed
  form instead searches e (strip height), r (sets on channels) and t (sets on filters)
  together with m, n, p, q.
* **Loop blocking is searched.** nn-dataflow enumerates blocking factors and loop orders
  of the three loops (ifmap channels, ofmap channels, batch) at two levels (DRAM->GLB
  and GLB->RF): the analogue of m, n, p, q. Any data type may bypass the GLB when it
  gets no reuse there; the closed form always sends weights around the GLB and always
  reads ifmaps (and spilled psums) from it. At batch 1 nn-dataflow bypasses the GLB for
  almost everything, hence its GLB energy near 0.
* **One unified RF per PE** (here 512 B = 256 words) holding the filter rows, ifmap
  windows (S values each) and psums of the innermost loops: the closed form's constraint
  `p*q*S + q*S + p <= RF`, but in one pool, where the chip and nnjoules' `eyeriss`
  preset have three pads (224 weight / 12 ifmap / 24 psum words).
* **Psums stay in the RF across all channel iterations.** A PE reserves one psum word
  per filter (`sz_regf[OFM] = 1`, the sliding-window assumption), yet a psum is only
  re-fetched when an ofmap/batch loop sits above the RF level (`_set_fetch`); the
  ifmap-channel loop does not count. So on AlexNet CONV3-5 psums never leave the PEs
  until done: array psum traffic is O*R (one transfer per PE of the set) and GLB psum
  traffic 0, where the closed form charges O*(R*ceil(C/q) - ceil(C/(q r))) array
  transfers and 2*O*(ceil(C/(q r)) - 1) GLB accesses. Keeping a CONV psum row in the RF
  would need F words per filter, so this is optimistic for CONV layers (exact for FC,
  where F = 1). It is a main reason why nnjoules is higher on CONV layers.
* **RF accesses**: one weight read, one ifmap read and a psum read + write per MAC (4 x
  MACs). The closed form charges `MACs` for weights and ifmaps and `2*O*(C*R*S -
  R*ceil(C/q))` for psums, slightly less than 2 x MACs.
* **Array (inter-PE) accesses** are charged at the `ITCN` level of `mem_hier` (cost 2):
  each PE receives its filter row (S) and ifmap row (W) and sends its psums (F) once per
  RF refill; a weight row thus counts E times (as in the closed form, `Wt*E`), the R*E
  PEs of a set each count one ifmap row per channel (about R/U per ifmap row), and
  ifmaps multicast to replicated sets that share them count once. `noc_hop` is the cost
  of the network *between nodes*; with one node it is unused (0 here, as in
  nn-dataflow's ISCA'16 test, which also puts the array cost 2 in `mem_hier`).
* **DRAM**: reads of weights and ifmaps times their refetch counts (ifmap halo rows of
  folded strips included); ofmaps are written once, and psums that spill to DRAM are
  read and written again (2f - 1 accesses for f fetches). The closed form never spills
  psums to DRAM, but re-reads weights from DRAM for every strip of e ofmap rows and
  every batch chunk (weights bypass the GLB), and ifmaps for every chunk of m filters
  whose psums must fit the GLB beside the ifmap tile; nn-dataflow can keep weights in
  the RF across strips and, with psums held in the RF, needs no GLB room for them.
* **GLB fills are not charged** at the GLB in either model: a GLB access is a read
  towards the array (psums: read + write); the DRAM->GLB transfer is in the DRAM cost
  ("the cost of moving data between two levels is dominated by the higher one").
* **Wall time**: nn-dataflow's search also covers the 6 pooling layers and reuses its
  result for identical layers (`conv1_a`/`conv1_b` ...; see `cache_stats`); nnjoules
  searches each of the 13 layers.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1, help="batch size N (default 1)")
    ap.add_argument("--solver", action="store_true",
                    help="nn-dataflow's analytical loop-blocking solver instead of its "
                         "exhaustive search")
    ap.add_argument("--regf-bytes", type=int, default=512,
                    help="nn-dataflow's unified RF per PE in bytes (default 512)")
    ap.add_argument("--compression", default="none",
                    help="nnjoules' DRAM compression of zeros (default none: nn-dataflow "
                         "has no compression, and the layers are dense)")
    ap.add_argument("--warm-repeats", type=int, default=3,
                    help="warm nnjoules calls; the fastest is reported (default 3)")
    ap.add_argument("--venv-python", type=Path, default=VENV_PYTHON)
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    ap.add_argument("--timeout-s", type=float, default=1800.0,
                    help="limit for the nn-dataflow subprocess (default 1800)")
    args = ap.parse_args(argv)
    if args.batch < 1 or args.warm_repeats < 1:
        ap.error("--batch and --warm-repeats must be positive")
    return args


def run_peer(args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """Run the nn-dataflow runner in its venv; return its JSON and the subprocess wall time."""
    cmd = [str(args.venv_python), str(RUNNER), "--batch", str(args.batch),
           "--regf-bytes", str(args.regf_bytes)]
    if args.solver:
        cmd.append("--solver")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=args.timeout_s, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"nn-dataflow runner failed (exit {proc.returncode}):\n"
                           f"{proc.stderr.strip()}")
    sys.stderr.write(proc.stderr)
    return json.loads(proc.stdout), wall


def import_nnjoules() -> tuple[Any, Any, Any, Any, str | None]:
    """Import ``estimate`` and the workload types; fall back to ``src/`` if not installed."""
    try:
        import nnjoules  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO / "src"))
    from nnjoules import estimate
    from nnjoules.energy.workload import Layer, LayerKind, Workload
    try:
        from importlib.metadata import version
        ver: str | None = version("nnjoules")
    except Exception:  # noqa: BLE001 - informational only
        ver = None
    return estimate, Layer, LayerKind, Workload, ver


def build_workload(peer: dict[str, Any], Layer: Any, LayerKind: Any, Workload: Any) -> Any:
    """Our Workload from the peer's CONV/FC layer shapes (H, W padded; G = 1)."""
    layers = []
    for row in peer["layers"]:
        s = row["shape"]
        if s["kind"] not in ("conv", "fc"):
            continue
        kind = LayerKind.CONV if s["kind"] == "conv" else LayerKind.FC
        layers.append(Layer(row["name"], kind, N=s["N"], M=s["M"], C=s["C"], H=s["H"],
                            W=s["W"], R=s["R"], S=s["S"], E=s["E"], F=s["F"], G=1,
                            stride=(s["stride"][0], s["stride"][1])))
    return Workload(f"{peer['net']} (nn-dataflow shapes)", tuple(layers))


def run_ours(workload: Any, estimate: Any, *, compression: str,
             repeats: int) -> dict[str, Any]:
    """Estimate the workload once cold and ``repeats`` times warm; timings exclude imports.

    The batch is already in the layers (N), and ``estimate`` rejects ``batch=`` for a
    `Workload`, so it is not passed.
    """
    t0 = time.perf_counter()
    report = estimate(workload, hardware="eyeriss", compression=compression)
    cold = time.perf_counter() - t0
    warm_times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        estimate(workload, hardware="eyeriss", compression=compression)
        warm_times.append(time.perf_counter() - t0)
    by_layer = report.by_layer()
    layers = {}
    for layer in workload.layers:
        per = report.layer(layer.name)
        layers[layer.name] = {"energy": float(by_layer[layer.name]),
                              "energy_by_level": {k: float(v)
                                                  for k, v in per.by_level().items()}}
        if hasattr(per, "by_operand"):
            layers[layer.name]["energy_by_operand"] = {k: float(v) for k, v
                                                       in per.by_operand().items()}
        mapping = getattr(per, "mapping", None)
        if mapping is not None and hasattr(mapping, "as_dict"):
            layers[layer.name]["mapping"] = mapping.as_dict()
    return {
        "total_energy": float(report.total()),
        "energy_by_level": {k: float(v) for k, v in report.by_level().items()},
        "layers": layers,
        "cold_s": cold,
        "warm_s": min(warm_times),
        "warm_all_s": warm_times,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def combine(peer: dict[str, Any], peer_wall: float, ours: dict[str, Any] | None,
            ours_meta: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The comparison document written to nn_dataflow.json."""
    rows = []
    for row in peer["layers"]:
        if row["shape"]["kind"] not in ("conv", "fc"):
            continue
        mine = ours["layers"][row["name"]] if ours else None
        rows.append({
            "name": row["name"], "shape": row["shape"], "macs": row["macs"],
            "nn_dataflow": {"energy": row["energy"], "energy_by_level": row["energy_by_level"]},
            "nnjoules": mine,
            "ratio_nnjoules_over_nn_dataflow": _ratio(mine["energy"] if mine else None,
                                                      row["energy"]),
        })
    peer_total = sum(r["nn_dataflow"]["energy"] for r in rows)
    not_compared = [{"name": r["name"], "kind": r["shape"]["kind"], "energy": r["energy"]}
                    for r in peer["layers"] if r["shape"]["kind"] not in ("conv", "fc")]
    search_s = peer["search_wall_s"]
    ours_total = ours["total_energy"] if ours else None
    cold_s = ours["cold_s"] if ours else None
    warm_s = ours["warm_s"] if ours else None
    doc: dict[str, Any] = {
        "benchmark": "nnjoules vs nn-dataflow (Stanford), AlexNet, Eyeriss-like, row stationary",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "batch": args.batch,
        "energy_unit": "normalised: 1 = one 16-bit MAC",
        "nn_dataflow": {
            "versions": peer["versions"], "map_strategy": peer["map_strategy"],
            "resource": peer["resource"], "cost": peer["cost"], "options": peer["options"],
            "search_wall_s": search_s, "subprocess_wall_s": peer_wall,
            "total_energy_compared_layers": peer_total,
            "total_energy_all_layers": peer["total_energy"],
            "energy_by_level_compared_layers": peer["energy_by_level_mac_layers"],
            "not_compared": not_compared,
        },
        "nnjoules": {**ours_meta, **({k: ours[k] for k in
                                      ("total_energy", "energy_by_level", "cold_s", "warm_s",
                                       "warm_all_s")} if ours else {})},
        "layers": rows,
        "totals": {
            "nn_dataflow": peer_total,
            "nnjoules": ours_total,
            "ratio_nnjoules_over_nn_dataflow": _ratio(ours_total, peer_total),
        },
        "wall_time": {
            "nn_dataflow_search_s": search_s,
            "nnjoules_cold_s": cold_s,
            "nnjoules_warm_s": warm_s,
            "speedup_cold": _ratio(search_s, cold_s),
            "speedup_warm": _ratio(search_s, warm_s),
        },
        "model_notes": MODEL_NOTES,
        "nn_dataflow_raw": peer,
    }
    return doc


def _g(x: float | None, fmt: str = ".4g") -> str:
    return "n/a" if x is None else format(x, fmt)


def to_markdown(doc: dict[str, Any]) -> str:
    """The human-readable report."""
    nd, us = doc["nn_dataflow"], doc["nnjoules"]
    opts = nd["options"]
    res = nd["resource"]
    lines = [
        "# nnjoules vs nn-dataflow: AlexNet on an Eyeriss-like chip (row stationary)",
        "",
        f"Generated {doc['date']} by `benchmarks/bench_vs_nn_dataflow.py`, batch "
        f"{doc['batch']}, energy normalised to one 16-bit MAC. Both tools ran in the same "
        f"invocation on the same machine ({doc['machine']['cpus']} CPUs, "
        f"Python {doc['machine']['python']}).",
        "",
        f"* nn-dataflow {nd['versions']['nn_dataflow']} (sympy {nd['versions']['sympy']}), "
        f"`{nd['map_strategy']}`, one node, {res['dim_array'][0]} x {res['dim_array'][1]} "
        f"PEs, GLB {res['gbuf_bytes']} B ({res['gbuf_bytes'] / 1024:g} KiB), "
        f"unified RF {res['regf_bytes']} B/PE, "
        f"{res['word_bits']}-bit words; costs DRAM {nd['cost']['mem_hier']['dram']:g} / "
        f"GLB {nd['cost']['mem_hier']['gbuf']:g} / array (ITCN) "
        f"{nd['cost']['mem_hier']['itcn']:g} / RF {nd['cost']['mem_hier']['regf']:g} / "
        f"MAC {nd['cost']['mac_op']:g}, noc_hop {nd['cost']['noc_hop']:g}.",
        f"* nn-dataflow options: loop blocking "
        f"{'analytical solver' if opts['sw_solve_loopblocking'] else 'exhaustive search'}, "
        f"GLB bypass allowed for (weights, ifmaps, ofmaps) = {opts['sw_gbuf_bypass']}, "
        f"no partitioning across nodes / layers, no write-back saving, goal "
        f"`{opts['opt_goal']}`, {opts['nprocesses']} process.",
        f"* nnjoules {us.get('version') or ''}: `estimate(workload, hardware=\"eyeriss\", "
        f"compression=\"{us.get('compression', 'none')}\")` on the same layer shapes, "
        f"N = {doc['batch']} in every layer (G = 1: nn-dataflow's AlexNet splits the two "
        "towers into `_a`/`_b` layers instead of using groups). The `eyeriss` preset has "
        "the chip's separate scratch pads (224 weight, 12 ifmap, 24 psum words per PE).",
        "",
    ]
    if not us.get("available"):
        lines += [f"**nnjoules side not run:** {us.get('error')}", ""]
    lines += ["## Per layer", "",
              "| layer | C | M | H | R | U | MACs | nn-dataflow | nnjoules | ours / theirs |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in doc["layers"]:
        s = r["shape"]
        mine = r["nnjoules"]["energy"] if r["nnjoules"] else None
        lines.append(f"| {r['name']} | {s['C']} | {s['M']} | {s['H']} | {s['R']} | "
                     f"{s['stride'][0]} | {r['macs']:.4g} | {r['nn_dataflow']['energy']:.4g} | "
                     f"{_g(mine)} | {_g(r['ratio_nnjoules_over_nn_dataflow'], '.3f')} |")
    t = doc["totals"]
    lines += [f"| **total** | | | | | | {sum(r['macs'] for r in doc['layers']):.4g} | "
              f"**{t['nn_dataflow']:.4g}** | **{_g(t['nnjoules'])}** | "
              f"**{_g(t['ratio_nnjoules_over_nn_dataflow'], '.3f')}** |", ""]
    if nd["not_compared"]:
        pool = sum(x["energy"] for x in nd["not_compared"])
        lines += [f"Not compared: nn-dataflow also schedules "
                  f"{len(nd['not_compared'])} pooling layers "
                  f"({', '.join(x['name'] for x in nd['not_compared'])}), "
                  f"{pool:.4g} in all; its whole-network total is "
                  f"{nd['total_energy_all_layers']:.4g}.", ""]
    lines += ["## By level (compared layers)", "",
              "| level | nn-dataflow | nnjoules | ours / theirs |", "|---|---:|---:|---:|"]
    ours_lv = us.get("energy_by_level") or {}
    for k in LEVEL_KEYS:
        a = nd["energy_by_level_compared_layers"].get(k)
        b = ours_lv.get(k)
        lines.append(f"| {k} | {_g(a)} | {_g(b)} | {_g(_ratio(b, a), '.3f')} |")
    lines += ["", "Per layer and level:", "",
              "| layer | tool | " + " | ".join(LEVEL_KEYS) + " |",
              "|---|---|" + "---:|" * len(LEVEL_KEYS)]
    for r in doc["layers"]:
        for tool, key in (("nn-dataflow", "nn_dataflow"), ("nnjoules", "nnjoules")):
            lv = (r[key] or {}).get("energy_by_level") or {}
            lines.append(f"| {r['name']} | {tool} | "
                         + " | ".join(_g(lv.get(k)) for k in LEVEL_KEYS) + " |")
    w = doc["wall_time"]
    lines += ["", "## Wall time", "",
              "| | seconds |", "|---|---:|",
              f"| nn-dataflow search (`schedule_search`, whole network incl. pooling) | "
              f"{w['nn_dataflow_search_s']:.3f} |",
              f"| nn-dataflow subprocess (interpreter start + import + search + JSON) | "
              f"{nd['subprocess_wall_s']:.3f} |",
              f"| nnjoules `estimate`, first call (cold) | {_g(w['nnjoules_cold_s'], '.3g')} |",
              f"| nnjoules `estimate`, best of {len(us.get('warm_all_s') or [])} later calls "
              f"(warm) | {_g(w['nnjoules_warm_s'], '.3g')} |",
              f"| speed-up, nn-dataflow search / nnjoules cold | "
              f"{_g(w['speedup_cold'], '.1f')}x |",
              f"| speed-up, nn-dataflow search / nnjoules warm | "
              f"{_g(w['speedup_warm'], '.1f')}x |",
              "", "Imports are excluded from both sides' timings.", "",
              "## Model differences", "", MODEL_NOTES]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.venv_python.exists():
        print(SKIP_MESSAGE.format(python=args.venv_python))
        return 0

    try:
        peer, peer_wall = run_peer(args)
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    ours = None
    meta: dict[str, Any] = {"available": False, "error": None, "version": None}
    status = 0
    try:
        t0 = time.perf_counter()
        estimate, Layer, LayerKind, Workload, ver = import_nnjoules()
        meta.update(available=True, version=ver, import_s=time.perf_counter() - t0)
    except ImportError as exc:
        meta["error"] = (f"cannot import nnjoules.estimate ({exc}); the nnjoules side "
                         "was not run")
        print(f"error: {meta['error']}", file=sys.stderr)
        status = 1
    if meta["available"]:
        workload = build_workload(peer, Layer, LayerKind, Workload)
        ours = run_ours(workload, estimate, compression=args.compression,
                        repeats=args.warm_repeats)
        meta["compression"] = args.compression

    doc = combine(peer, peer_wall, ours, meta, args)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = args.out_dir / "nn_dataflow.json"
    md_path = args.out_dir / "nn_dataflow.md"
    json_path.write_text(json.dumps(doc, indent=1) + "\n")
    md_path.write_text(to_markdown(doc))
    t = doc["totals"]
    w = doc["wall_time"]
    print(f"nn-dataflow {t['nn_dataflow']:.4g} in {w['nn_dataflow_search_s']:.2f} s; "
          f"nnjoules {_g(t['nnjoules'])} (cold {_g(w['nnjoules_cold_s'], '.3f')} s, "
          f"warm {_g(w['nnjoules_warm_s'], '.3f')} s); ratio "
          f"{_g(t['ratio_nnjoules_over_nn_dataflow'], '.3f')}")
    print(f"wrote {json_path.relative_to(REPO) if json_path.is_relative_to(REPO) else json_path}"
          f" and {md_path.name}")
    return status


if __name__ == "__main__":
    sys.exit(main())

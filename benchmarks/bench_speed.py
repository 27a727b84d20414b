"""Speed of whole-network estimates and of sweeps, one process, with the machine's load.

Measures, on ``eyeriss`` at batch 1, single thread:

* single estimates (extraction + mapping search + costing): warm (median of repeats in
  one interpreter) and cold (a fresh process: its first estimate, and the whole process
  with imports);
* ``nnjoules sweep`` over a 1,000-point grid on ResNet-50 (a fresh process, as a user
  runs it), its in-process engine time, and the plain point-by-point path on a sample of
  the same points, measured in the same run (the speed-up is their ratio);
* peak resident memory (RSS) of ``nnjoules sweep`` at 1,000 and 10,000 points;
* every registered dataflow's mapping and costing of ResNet-50 (extracted once), each on
  its own preset (``--dataflows-only`` measures just these and updates that part of the
  JSON).

Every figure carries the 1-minute load average when it was taken (``os.getloadavg``):
on a shared machine wall times grow with the load; CPU times much less.
Writes ``benchmarks/results/speed.json``. Run: ``python benchmarks/bench_speed.py``
(``--quick`` for a smaller run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import nnjoules
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.extract import extract_workload
from nnjoules.energy.hardware import eyeriss
from nnjoules.energy.workload import Precision, Workload
from nnjoules.errors import MappingError
from nnjoules.models import LoadedModel, load_model

ROOT = Path(__file__).resolve().parents[1]
TARGETS_S = {"alexnet": 0.05, "resnet50": 0.2, "vit_b_16": 0.5}
MODELS = ("alexnet", "resnet50", "mobilenet_v2", "vit_b_16")
SWEEP_MODEL = "resnet50"
# 5 x 4 x 2 x 25 = 1,000 points: sizes change the candidates, DRAM energy only weighs them.
SWEEP_GRID = {"glb_kb": "32,64,108,256,512", "pe_array": "8x8,12x14,16x16,16x32",
              "bits": "8,16", "dram_energy": ",".join(str(100 + 10 * i) for i in range(25))}
# 10,000 points for the memory profile: glb_energy x 10 on top of the above.
MEMORY_EXTRA = {"glb_energy": "2,3,4,5,6,7,8,9,10,11"}
SAMPLE_POINTS = 24  # points of the grid also estimated one by one (the old path)


def load() -> float:
    """The 1-minute load average (runnable processes; this machine has os.cpu_count())."""
    return round(os.getloadavg()[0], 2)


def sample_input(loaded: LoadedModel) -> torch.Tensor:
    """The fixed (seed 0) batch-1 input every measurement uses."""
    return torch.randn((1, *loaded.input_shape), generator=torch.Generator().manual_seed(0))


def workload_of(name: str) -> Workload:
    """Built-in model ``name`` extracted once from its fixed sample input."""
    loaded = load_model(name)
    return extract_workload(loaded.model, sample_input(loaded), name=name)


def single(name: str, repeats: int) -> dict[str, object]:
    """Median warm wall times of the whole estimate and of its two stages."""
    loaded = load_model(name)
    x = sample_input(loaded)
    hw = eyeriss()
    nnjoules.estimate(loaded.model, x, hardware=hw)  # warm-up: first-call costs
    totals, extracts, searches = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        report = nnjoules.estimate(loaded.model, x, hardware=hw)
        totals.append(time.perf_counter() - start)
        start = time.perf_counter()
        workload = extract_workload(loaded.model, x, name=name)
        extracts.append(time.perf_counter() - start)
        start = time.perf_counter()
        estimate_workload(workload, hw)
        searches.append(time.perf_counter() - start)
    return {"model": name, "layers": len(report.layers), "macs": report.macs(),
            "energy": report.total(), "estimate_s": statistics.median(totals),
            "extract_s": statistics.median(extracts),
            "map_and_cost_s": statistics.median(searches), "runs_s": totals,
            "target_s": TARGETS_S.get(name), "load": load()}


COLD = """
import time, torch
torch.set_num_threads(1)
import nnjoules
from nnjoules.models import LoadedModel, load_model
m = load_model({name!r})
x = torch.randn((1, *m.input_shape), generator=torch.Generator().manual_seed(0))
start = time.perf_counter()
nnjoules.estimate(m.model, x, hardware="eyeriss")
print(time.perf_counter() - start)
"""


DATAFLOW_PRESETS = {"row-stationary": "eyeriss", "weight-stationary": "eyeriss-isca2016-ws",
                    "output-stationary-a": "eyeriss-isca2016-os-a",
                    "output-stationary-b": "eyeriss-isca2016-os-b",
                    "output-stationary-c": "eyeriss-isca2016-os-c",
                    "no-local-reuse": "eyeriss-isca2016-nlr",
                    "systolic-ws": "systolic-32x32", "systolic-os": "systolic-32x32"}


def dataflow_speed(name: str, repeats: int) -> list[dict[str, object]]:
    """Median warm map-and-cost time of ``name`` (extracted once) under every dataflow."""
    from nnjoules.energy.dataflows import DATAFLOWS
    from nnjoules.energy.hardware import load_hardware

    workload = workload_of(name)
    rows = []
    for flow in DATAFLOWS:
        hw = load_hardware(DATAFLOW_PRESETS.get(flow, "eyeriss"))
        width = hw.word_bits  # as `estimate` does: operands take the hardware's word width
        bits = workload.with_precision(Precision(width, width, width))
        try:
            estimate_workload(bits, hw, dataflow=flow)  # warm-up
        except MappingError as err:
            rows.append({"dataflow": flow, "hardware": hw.name, "error": str(err)})
            continue
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            report = estimate_workload(bits, hw, dataflow=flow)
            times.append(time.perf_counter() - start)
        rows.append({"dataflow": flow, "hardware": hw.name, "model": name,
                     "map_and_cost_s": statistics.median(times), "energy": report.total(),
                     "unit": report.unit.value, "load": load()})
    return rows


def cold(name: str) -> dict[str, object]:
    """A fresh process: its first estimate, and the whole process (imports included)."""
    start = time.perf_counter()
    out = _python(["-c", COLD.format(name=name)])
    return {"model": name, "first_estimate_s": float(out["stdout"].split()[-1]),
            "process_s": time.perf_counter() - start, "load": load()}


def _python(args: list[str]) -> dict[str, object]:
    """Run ``python ARGS`` single-threaded; its stdout and wall seconds."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT / "src"))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        raise RuntimeError(f"python {' '.join(args)} failed:\n{proc.stderr}")
    return {"stdout": proc.stdout, "wall_s": time.perf_counter() - start}


def cli_sweep(grid: dict[str, str], model: str) -> dict[str, object]:
    """``nnjoules sweep MODEL --set ...`` in a fresh process: wall, CPU, peak RSS."""
    sets = [arg for name, values in grid.items() for arg in ("--set", f"{name}={values}")]
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "sweep.csv"
        script = ("import resource, sys, time\n"
                  "from nnjoules.cli import main\n"
                  "start = time.perf_counter()\n"
                  "code = main(sys.argv[1:])\n"
                  "wall = time.perf_counter() - start\n"
                  "r = resource.getrusage(resource.RUSAGE_SELF)\n"
                  "print(code, wall, r.ru_utime + r.ru_stime, r.ru_maxrss)\n")
        before = load()
        out = _python(["-c", script, "sweep", model, *sets, "--csv", str(csv), "--quiet"])
        code, wall, cpu, rss_kb = str(out["stdout"]).split()[-4:]
        rows = sum(1 for _ in csv.open()) - 1
    points = 1
    for values in grid.values():
        points *= len(values.split(","))
    assert int(code) == 0 and rows == points, (code, rows, points)
    return {"model": model, "points": points, "grid": grid, "wall_s": float(wall),
            "cpu_s": float(cpu), "peak_rss_mb": int(rss_kb) / 1024,
            "load_before": before, "load_after": load()}


def engine_vs_point_by_point(model: str, grid: dict[str, str]) -> dict[str, object]:
    """In one process: the engine over the whole grid, the plain path on a sample."""
    from nnjoules.energy.sweep import evaluate_point, parse_settings, sweep

    workload = workload_of(model)
    parsed = parse_settings([f"{k}={v}" for k, v in grid.items()])
    start, cpu = time.perf_counter(), time.process_time()
    result = sweep(workload, parsed)
    engine_s, engine_cpu = time.perf_counter() - start, time.process_time() - cpu
    load_engine = load()
    from nnjoules.energy.sweep import PointTask
    from nnjoules.energy.sweep_params import apply_precision

    step = max(1, len(result.points) // SAMPLE_POINTS)
    sample = result.points[::step][:SAMPLE_POINTS]
    start, cpu = time.perf_counter(), time.process_time()
    for point in sample:
        task = PointTask(point.index, apply_precision(workload, point.settings),
                         point.hardware, result.compression)
        outcome = evaluate_point(task)
        assert outcome.totals == point.totals  # identical, point by point
    plain_s, plain_cpu = time.perf_counter() - start, time.process_time() - cpu
    per_point = plain_s / len(sample)
    return {"model": model, "points": len(result.points),
            "engine_s": engine_s, "engine_cpu_s": engine_cpu, "load_engine": load_engine,
            "sample_points": len(sample), "point_by_point_s_per_point": per_point,
            "point_by_point_cpu_s_per_point": plain_cpu / len(sample),
            "point_by_point_extrapolated_s": per_point * len(result.points),
            "speedup_wall": per_point * len(result.points) / engine_s,
            "speedup_cpu": plain_cpu / len(sample) * len(result.points) / engine_cpu,
            "sample_identical": True, "load_point_by_point": load()}


def engine_memory(model: str, grid: dict[str, str]) -> dict[str, object]:
    """Peak RSS growth while the engine streams every point of ``grid`` (none kept)."""
    import itertools
    import resource

    from nnjoules.energy.cost import Compression
    from nnjoules.energy.sweep import PointTask, iter_outcomes, parse_settings
    from nnjoules.energy.sweep_params import apply_hardware, apply_precision

    workload = workload_of(model)
    parsed = parse_settings([f"{k}={v}" for k, v in grid.items()])
    hw = eyeriss()
    at_bits: dict[object, object] = {}

    def tasks():  # type: ignore[no-untyped-def]
        for index, combo in enumerate(itertools.product(*parsed.values())):
            point = dict(zip(parsed, combo, strict=True))
            bits = point.get("bits")
            if bits not in at_bits:
                at_bits[bits] = apply_precision(workload, point)
            yield PointTask(index, at_bits[bits], apply_hardware(hw, point),
                            Compression.SIGNIFICANCE_MAP)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start, cpu, points, marks = time.perf_counter(), time.process_time(), 0, []
    for outcome in iter_outcomes(tasks()):
        points += 1
        if points % 1000 == 0:
            marks.append(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                               - before, 1))
        del outcome
    return {"model": model, "points": points, "wall_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu, "rss_before_mb": before,
            "peak_rss_growth_mb_per_1000_points": marks, "load": load()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--no-sweep", action="store_true", help="single estimates only")
    parser.add_argument("--no-memory", action="store_true", help="skip the 10,000 points")
    parser.add_argument("--dataflows-only", action="store_true",
                        help="measure the dataflows only; update that part of --out")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "speed.json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # single process, single thread: the figure users can count on
    if args.dataflows_only:
        out = json.loads(args.out.read_text()) if args.out.exists() else {}
        out["dataflows"] = _print_dataflows(dataflow_speed(SWEEP_MODEL, args.repeats))
        args.out.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.out}")
        return
    out: dict[str, object] = {}
    out["single_warm"] = rows = [single(name, args.repeats) for name in args.models]
    print(f"{'model':<14}{'layers':>7}{'estimate s':>12}{'extract s':>11}{'map+cost s':>12}"
          f"{'target s':>10}{'load':>7}")
    for row in rows:
        target = row["target_s"]
        print(f"{row['model']:<14}{row['layers']:>7}{row['estimate_s']:>12.3f}"
              f"{row['extract_s']:>11.3f}{row['map_and_cost_s']:>12.3f}"
              f"{target if target is not None else '-':>10}{row['load']:>7}")
    out["single_cold"] = colds = [cold(name) for name in args.models]
    for row in colds:
        print(f"cold {row['model']:<14} first estimate {row['first_estimate_s']:.3f} s, "
              f"process {row['process_s']:.2f} s (load {row['load']})")
    out["dataflows"] = _print_dataflows(dataflow_speed(SWEEP_MODEL, args.repeats))
    if not args.no_sweep:
        out["sweep_engine"] = engine = engine_vs_point_by_point(SWEEP_MODEL, SWEEP_GRID)
        print(f"sweep engine {engine['points']} points {engine['engine_s']:.1f} s "
              f"(CPU {engine['engine_cpu_s']:.1f} s); point by point "
              f"{engine['point_by_point_s_per_point']:.2f} s/point: "
              f"{engine['speedup_wall']:.0f}x wall, {engine['speedup_cpu']:.0f}x CPU "
              f"(load {engine['load_engine']} / {engine['load_point_by_point']})")
        if not args.no_memory:
            out["engine_memory"] = mem = engine_memory(SWEEP_MODEL, SWEEP_GRID | MEMORY_EXTRA)
            print(f"engine streaming {mem['points']} points: {mem['wall_s']:.1f} s "
                  f"(CPU {mem['cpu_s']:.1f} s); peak RSS growth after each 1,000 points "
                  f"{mem['peak_rss_growth_mb_per_1000_points']} MB (load {mem['load']})")
        runs = [cli_sweep(SWEEP_GRID, SWEEP_MODEL)]
        if not args.no_memory:
            runs.append(cli_sweep(SWEEP_GRID | MEMORY_EXTRA, SWEEP_MODEL))
        out["sweep_cli"] = runs
        for run in runs:
            print(f"nnjoules sweep {run['model']} {run['points']} points: {run['wall_s']:.1f} s "
                  f"(CPU {run['cpu_s']:.1f} s), peak RSS {run['peak_rss_mb']:.0f} MB "
                  f"(load {run['load_before']} -> {run['load_after']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    out["meta"] = {"machine": platform.machine(), "python": platform.python_version(),
                   "torch": torch.__version__, "nnjoules": nnjoules.__version__,
                   "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
                   "hardware": "eyeriss", "batch": 1}
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


def _print_dataflows(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    for row in rows:
        if "error" in row:
            print(f"{row['dataflow']:<22}{row['hardware']:<24} cannot map: {row['error']}")
        else:
            print(f"{row['dataflow']:<22}{row['hardware']:<24}{row['map_and_cost_s']:>8.3f} s "
                  f"(map + cost, {SWEEP_MODEL}, load {row['load']})")
    return rows


if __name__ == "__main__":
    main()

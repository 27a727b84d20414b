"""Speed of a whole-network estimate (extraction + mapping search + costing), one process.

Targets on a 2-core machine: AlexNet < 0.5 s, ResNet-50 < 2 s. Prints a table and
writes benchmarks/results/speed.json. Run: ``python benchmarks/bench_speed.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import nnjoules
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.extract import extract_workload
from nnjoules.energy.hardware import eyeriss
from nnjoules.models import load_model

TARGETS_S = {"alexnet": 0.5, "resnet50": 2.0}
MODELS = ("alexnet", "resnet50", "mobilenet_v2", "vit_b_16")


def measure(name: str, repeats: int) -> dict[str, object]:
    """Median wall times of the whole estimate and of its two stages."""
    loaded = load_model(name)
    x = torch.randn((1, *loaded.input_shape), generator=torch.Generator().manual_seed(0))
    totals, extracts, searches = [], [], []
    hw = eyeriss()
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
    return {
        "model": name,
        "layers": len(report.layers),
        "macs": report.macs(),
        "energy": report.total(),
        "estimate_s": statistics.median(totals),
        "extract_s": statistics.median(extracts),
        "map_and_cost_s": statistics.median(searches),
        "runs_s": totals,
        "target_s": TARGETS_S.get(name),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "speed.json")
    args = parser.parse_args()
    torch.set_num_threads(1)  # single process, single thread: the figure users can count on
    rows = [measure(name, args.repeats) for name in args.models]
    print(f"{'model':<14}{'layers':>7}{'MACs':>14}{'estimate s':>12}{'extract s':>11}"
          f"{'map+cost s':>12}{'target s':>10}")
    for row in rows:
        target = row["target_s"]
        print(f"{row['model']:<14}{row['layers']:>7}{row['macs']:>14,}{row['estimate_s']:>12.3f}"
              f"{row['extract_s']:>11.3f}{row['map_and_cost_s']:>12.3f}"
              f"{target if target is not None else '-':>10}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "nnjoules": nnjoules.__version__,
            "cpu_count": torch.get_num_threads(), "hardware": "eyeriss", "batch": 1}
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

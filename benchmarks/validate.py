#!/usr/bin/env python3
"""Run the whole validation suite in one go and print where each part's results are.

1. the paper's network analysis   (benchmarks/paper/analysis.py)
2. Timeloop+Accelergy/Sparseloop  (benchmarks/timeloop/compare.py, reference outputs)
3. ZigZag                         (benchmarks/zigzag/bench_vs_zigzag.py; skipped if absent)
4. nn-dataflow                    (benchmarks/bench_vs_nn_dataflow.py; skipped if its venv
                                   is absent: bash benchmarks/peers/setup_peers.sh)
5. the Eyeriss chip's time/power  (benchmarks/paper/eyeriss_anchor.py)

Each part runs as its own process (ZigZag configures logging, nn-dataflow lives in its
own venv); results land in benchmarks/results/. Usage::

    python benchmarks/validate.py [--skip paper,zigzag,...]

Exit status: 0 all parts done or skipped, 1 a part failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = {
    "paper": [HERE / "paper" / "analysis.py"],
    "timeloop": [HERE / "timeloop" / "compare.py"],
    "zigzag": [HERE / "zigzag" / "bench_vs_zigzag.py"],
    "nn-dataflow": [HERE / "bench_vs_nn_dataflow.py"],
    "eyeriss-anchor": [HERE / "paper" / "eyeriss_anchor.py"],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", default="", help=f"comma-separated, from {', '.join(PARTS)}")
    args = ap.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = sorted(skip - set(PARTS))
    if unknown:
        ap.error(f"unknown part(s) {unknown}")
    failed = []
    for name, script in PARTS.items():
        if name in skip:
            print(f"== {name}: skipped (--skip)")
            continue
        print(f"== {name}: {' '.join(str(s) for s in script)}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, *map(str, script)], check=False).returncode
        print(f"== {name}: exit {rc} after {time.perf_counter() - t0:.1f} s", flush=True)
        if rc != 0:
            failed.append(name)
    print("results in benchmarks/results/ (paper_analysis, timeloop, zigzag, nn_dataflow, "
          "eyeriss_anchor)")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fine-tuning under torchrun with DistributedDataParallel: 2 CPU processes, gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_prune_with_ddp_on_two_cpu_processes(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "ddp_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["digest"] == ranks[1]["digest"]  # every rank holds the same model
    assert ranks[0]["history"] == ranks[1]["history"]
    assert all(r["masked_nonzero"] == 0 for r in ranks)
    assert len(ranks[0]["history"]) == 3
    assert ranks[0]["history"][-1][3] < ranks[0]["history"][0][3]
    assert (tmp_path / "run" / "pruner-state.pt").is_file()  # written by rank 0

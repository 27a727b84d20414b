"""Run by tests/test_ddp.py under torchrun: prune a tiny CNN with DDP fine-tuning.

Usage: torchrun --nproc_per_node 2 tests/ddp_worker.py OUT_DIR
Every rank writes OUT_DIR/rank<r>.json: its history and a digest of its final weights.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nnjoules.prune import PruneConfig, RestoreConfig, TrainConfig, prune  # noqa: E402
from nnjoules.prune.finetune import train  # noqa: E402
from nnjoules.prune.masks import mask_of, prunable_layers, weight_of  # noqa: E402
from prune_helpers import tiny_model, tiny_task  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = tiny_model()
    data, val = tiny_task(600), tiny_task(200, seed=1)
    train(model, data, TrainConfig(epochs=2, lr=0.1), seed=0)  # DDP already: 2 ranks
    config = PruneConfig(rounds=2, rate=0.4, density_images=8,
                         restore=RestoreConfig(samples=64, positions=8))
    result = prune(model, data, val, method="energy-aware", accuracy_drop=1.0, config=config,
                   finetune=TrainConfig(epochs=0.5, lr=0.05), reference="given",
                   checkpoint_dir=out / "run", device="cpu")
    digest = hashlib.sha256()
    masked_nonzero = 0
    for module in prunable_layers(result.model).values():
        digest.update(weight_of(module).numpy().tobytes())
        masked_nonzero += int((weight_of(module)[mask_of(module) == 0] != 0).sum())
    record = {"rank": rank, "world": world, "digest": digest.hexdigest(),
              "masked_nonzero": masked_nonzero,
              "history": [[r.round, r.accepted, r.accuracy, r.nonzero_weights]
                          for r in result.history]}
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()

"""Energy-aware pruning (Yang, Chen & Sze, CVPR 2017) and the magnitude baseline.

Names are imported on first use, so that ``nnjoules.prune.config`` (plain dataclasses)
loads without torch, e.g. for the CLI's ``--help``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nnjoules.prune.api import prune as prune
    from nnjoules.prune.config import PruneConfig as PruneConfig
    from nnjoules.prune.config import RestoreConfig as RestoreConfig
    from nnjoules.prune.config import TrainConfig as TrainConfig
    from nnjoules.prune.export import export_onnx as export_onnx
    from nnjoules.prune.export import layer_densities as layer_densities
    from nnjoules.prune.export import save_module as save_module
    from nnjoules.prune.export import save_state_dict as save_state_dict
    from nnjoules.prune.latency import cpu_latency as cpu_latency
    from nnjoules.prune.loop import Pruner as Pruner
    from nnjoules.prune.masks import load_masked_state as load_masked_state
    from nnjoules.prune.masks import make_permanent as make_permanent
    from nnjoules.prune.result import LayerRecord as LayerRecord
    from nnjoules.prune.result import PruneResult as PruneResult
    from nnjoules.prune.result import StepRecord as StepRecord

_WHERE = {"prune": "api", "PruneConfig": "config", "RestoreConfig": "config",
          "TrainConfig": "config", "Pruner": "loop", "load_masked_state": "masks",
          "make_permanent": "masks", "LayerRecord": "result", "PruneResult": "result",
          "StepRecord": "result", "export_onnx": "export", "layer_densities": "export",
          "save_module": "export", "save_state_dict": "export", "cpu_latency": "latency"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nnjoules.prune' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nnjoules.prune.{_WHERE[name]}"), name)

"""Energy-aware pruning (Yang, Chen & Sze, CVPR 2017) and the magnitude baseline."""

from nnjoules.prune.api import prune as prune
from nnjoules.prune.config import PruneConfig as PruneConfig
from nnjoules.prune.finetune import TrainConfig as TrainConfig
from nnjoules.prune.loop import Pruner as Pruner
from nnjoules.prune.masks import load_masked_state as load_masked_state
from nnjoules.prune.masks import make_permanent as make_permanent
from nnjoules.prune.restore import RestoreConfig as RestoreConfig
from nnjoules.prune.result import LayerRecord as LayerRecord
from nnjoules.prune.result import PruneResult as PruneResult
from nnjoules.prune.result import StepRecord as StepRecord

__all__ = ["LayerRecord", "PruneConfig", "PruneResult", "Pruner", "RestoreConfig",
           "StepRecord", "TrainConfig", "load_masked_state", "make_permanent", "prune"]

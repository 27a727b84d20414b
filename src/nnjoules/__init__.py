"""nnjoules: where a neural network's energy goes on an Eyeriss-like accelerator."""

from nnjoules.energy.cost import Compression as Compression
from nnjoules.energy.estimate import estimate as estimate
from nnjoules.energy.hardware import Hardware as Hardware
from nnjoules.energy.workload import Density as Density
from nnjoules.energy.workload import Layer as Layer
from nnjoules.energy.workload import LayerKind as LayerKind
from nnjoules.energy.workload import Precision as Precision
from nnjoules.energy.workload import Workload as Workload
from nnjoules.prune.api import prune as prune
from nnjoules.prune.result import PruneResult as PruneResult
from nnjoules.report.energy_report import EnergyReport as EnergyReport
from nnjoules.version import __version__ as __version__

__all__ = ["Compression", "Density", "EnergyReport", "Hardware", "Layer", "LayerKind",
           "Precision", "PruneResult", "Workload", "estimate", "prune", "__version__"]

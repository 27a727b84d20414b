"""nnjoules: where a neural network's energy goes on an Eyeriss-like accelerator."""

from importlib.metadata import PackageNotFoundError, version

from nnjoules.energy.cost import Compression as Compression
from nnjoules.energy.estimate import estimate as estimate
from nnjoules.energy.hardware import Hardware as Hardware
from nnjoules.energy.report import EnergyReport as EnergyReport
from nnjoules.energy.workload import Density as Density
from nnjoules.energy.workload import Layer as Layer
from nnjoules.energy.workload import LayerKind as LayerKind
from nnjoules.energy.workload import Precision as Precision
from nnjoules.energy.workload import Workload as Workload
from nnjoules.prune.api import prune as prune
from nnjoules.prune.result import PruneResult as PruneResult

try:
    __version__ = version("nnjoules")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["Compression", "Density", "EnergyReport", "Hardware", "Layer", "LayerKind",
           "Precision", "PruneResult", "Workload", "estimate", "prune", "__version__"]

"""The accelerator: its levels, sizes and access costs (`spec`), read from YAML (`loading`,
which checks each field with `fields`)."""

from nnjoules.energy.hardware.catalog import PRESETS as PRESETS
from nnjoules.energy.hardware.loading import dump_hardware as dump_hardware
from nnjoules.energy.hardware.loading import hardware_from_dict as hardware_from_dict
from nnjoules.energy.hardware.loading import hardware_to_dict as hardware_to_dict
from nnjoules.energy.hardware.loading import load_hardware as load_hardware
from nnjoules.energy.hardware.spec import LEVELS as LEVELS
from nnjoules.energy.hardware.spec import OPERANDS as OPERANDS
from nnjoules.energy.hardware.spec import AccessCost as AccessCost
from nnjoules.energy.hardware.spec import EnergyUnit as EnergyUnit
from nnjoules.energy.hardware.spec import GlobalBuffer as GlobalBuffer
from nnjoules.energy.hardware.spec import Hardware as Hardware
from nnjoules.energy.hardware.spec import Level as Level
from nnjoules.energy.hardware.spec import PEArray as PEArray
from nnjoules.energy.hardware.spec import RegisterFile as RegisterFile
from nnjoules.energy.hardware.spec import check_count as check_count
from nnjoules.energy.hardware.spec import check_energy as check_energy
from nnjoules.energy.hardware.spec import eyeriss as eyeriss
from nnjoules.energy.hardware.spec import eyeriss_isca2016 as eyeriss_isca2016
from nnjoules.energy.hardware.spec import eyeriss_isca2016_for as eyeriss_isca2016_for

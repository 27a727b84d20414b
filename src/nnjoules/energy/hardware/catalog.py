"""The built-in hardware presets, by name (each also ships as YAML in ``presets/``)."""

from __future__ import annotations

from collections.abc import Callable

from nnjoules.energy.hardware.absolute import ABSOLUTE_PRESETS
from nnjoules.energy.hardware.spec import Hardware, eyeriss, eyeriss_isca2016
from nnjoules.energy.hardware.systolic import SYSTOLIC_PRESETS

PRESETS: dict[str, Callable[[], Hardware]] = {
    "eyeriss": eyeriss, "eyeriss-isca2016": eyeriss_isca2016, **ABSOLUTE_PRESETS,
    **SYSTOLIC_PRESETS}

"""The built-in hardware presets, by name (each also ships as YAML in ``presets/``)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from nnjoules.energy.hardware.absolute import ABSOLUTE_PRESETS
from nnjoules.energy.hardware.spec import (
    ISCA2016_SUFFIX,
    Hardware,
    eyeriss,
    eyeriss_isca2016,
    eyeriss_isca2016_for,
)
from nnjoules.energy.hardware.systolic import SYSTOLIC_PRESETS

PRESETS: dict[str, Callable[[], Hardware]] = {
    "eyeriss": eyeriss, "eyeriss-isca2016": eyeriss_isca2016,
    # ISCA 2016's other dataflows, each with its equal-area storage split (area.py)
    **{f"eyeriss-isca2016{suffix}": partial(eyeriss_isca2016_for, name)
       for name, suffix in ISCA2016_SUFFIX.items() if suffix},
    **ABSOLUTE_PRESETS, **SYSTOLIC_PRESETS}

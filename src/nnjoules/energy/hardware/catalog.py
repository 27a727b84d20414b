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

# The dataflow(s) each preset is made for (its storage split, its array): named in the
# error when a layer fits no mapping under another dataflow on it.
_SYSTOLIC: tuple[str, ...] = ("systolic-ws", "systolic-os")
PRESET_DATAFLOWS: dict[str, tuple[str, ...]] = {
    name: _SYSTOLIC if name in SYSTOLIC_PRESETS else ("row-stationary",) for name in PRESETS}
PRESET_DATAFLOWS |= {f"eyeriss-isca2016{suffix}": (flow,)
                     for flow, suffix in ISCA2016_SUFFIX.items()}


def preset_hint(hardware: str, dataflow: str) -> str:
    """A clause naming the dataflow a preset is made for, when ``dataflow`` is another.

    >>> preset_hint("systolic-32x32", "row-stationary")
    " (the preset 'systolic-32x32' is made for the systolic-ws or systolic-os dataflow)"
    >>> preset_hint("eyeriss", "row-stationary"), preset_hint("my-chip", "systolic-ws")
    ('', '')
    """
    made = PRESET_DATAFLOWS.get(hardware, ())
    if not made or dataflow in made:
        return ""
    return f" (the preset {hardware!r} is made for the {' or '.join(made)} dataflow)"

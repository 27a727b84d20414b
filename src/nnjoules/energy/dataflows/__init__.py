"""Dataflow plug-ins, by name (see `nnjoules.energy.dataflows.base.Dataflow`).

Names are as ISCA 2016 (Chen, Emer & Sze) spells them, lower case with hyphens; the
paper's abbreviations (RS, WS, OS-A, OS-B, OS-C, NLR) are accepted too, in any case,
with ``_`` for ``-``. The systolic-array dataflows (``systolic-ws``, ``systolic-os``)
follow SCALE-Sim's names.
"""

from __future__ import annotations

import difflib

from nnjoules.energy.dataflows.base import Dataflow
from nnjoules.energy.dataflows.no_local_reuse import NO_LOCAL_REUSE
from nnjoules.energy.dataflows.output_stationary import OS_A, OS_B, OS_C
from nnjoules.energy.dataflows.row_stationary import ROW_STATIONARY
from nnjoules.energy.dataflows.systolic import SYSTOLIC_OS, SYSTOLIC_WS
from nnjoules.energy.dataflows.weight_stationary import WEIGHT_STATIONARY
from nnjoules.errors import InputError

DATAFLOWS: dict[str, Dataflow] = {flow.name: flow for flow in (
    ROW_STATIONARY, WEIGHT_STATIONARY, OS_A, OS_B, OS_C, NO_LOCAL_REUSE, SYSTOLIC_WS,
    SYSTOLIC_OS)}
DEFAULT_DATAFLOW = ROW_STATIONARY.name
ABBREVIATIONS: dict[str, str] = {
    "row-stationary": "RS", "weight-stationary": "WS", "output-stationary-a": "OS-A",
    "output-stationary-b": "OS-B", "output-stationary-c": "OS-C", "no-local-reuse": "NLR"}
_ALIASES = {abbr.lower(): name for name, abbr in ABBREVIATIONS.items()}


def canonical_name(dataflow: str) -> str:
    """The registered name of ``dataflow`` (a name or an abbreviation, any case).

    >>> canonical_name("OS_B"), canonical_name("Weight-Stationary")
    ('output-stationary-b', 'weight-stationary')

    Raises:
        InputError: no dataflow has that name; the message lists those that do.
    """
    key = dataflow.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key in DATAFLOWS:
        return key
    choices = [*DATAFLOWS, *_ALIASES]
    close = difflib.get_close_matches(key, choices, n=1)
    hint = f" (did you mean {_ALIASES.get(close[0], close[0])!r}?)" if close else ""
    raise InputError(f"dataflow: unknown {dataflow!r}{hint}; known: {known_dataflows()}")


def known_dataflows() -> str:
    """Every registered dataflow, with its abbreviation, for help texts and errors.

    >>> known_dataflows().split(", ")[:2]
    ['row-stationary (RS)', 'weight-stationary (WS)']
    """
    return ", ".join(dataflow_label(name) for name in DATAFLOWS)


def get_dataflow(dataflow: str | Dataflow) -> Dataflow:
    """The dataflow called ``dataflow`` (or ``dataflow`` itself when it is one).

    Raises:
        InputError: no dataflow has that name; the message lists those that do.
    """
    if not isinstance(dataflow, str):
        return dataflow
    return DATAFLOWS[canonical_name(dataflow)]


def dataflow_label(name: str) -> str:
    """``name`` with its ISCA 2016 abbreviation, for reports: ``"row-stationary (RS)"``."""
    abbr = ABBREVIATIONS.get(name)
    return f"{name} ({abbr})" if abbr else name

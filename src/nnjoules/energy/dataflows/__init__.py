"""Dataflow plug-ins, by name (see `nnjoules.energy.dataflows.base.Dataflow`)."""

from __future__ import annotations

import difflib

from nnjoules.energy.dataflows.base import Dataflow
from nnjoules.energy.dataflows.row_stationary import ROW_STATIONARY
from nnjoules.energy.dataflows.systolic import SYSTOLIC_OS, SYSTOLIC_WS
from nnjoules.errors import InputError

DATAFLOWS: dict[str, Dataflow] = {ROW_STATIONARY.name: ROW_STATIONARY}
DATAFLOWS |= {flow.name: flow for flow in (SYSTOLIC_WS, SYSTOLIC_OS)}
DEFAULT_DATAFLOW = ROW_STATIONARY.name


def get_dataflow(dataflow: str | Dataflow) -> Dataflow:
    """The dataflow called ``dataflow`` (or ``dataflow`` itself when it is one).

    Raises:
        InputError: no dataflow has that name; the message lists those that do.
    """
    if not isinstance(dataflow, str):
        return dataflow
    found = DATAFLOWS.get(dataflow.lower())
    if found is None:
        close = difflib.get_close_matches(dataflow.lower(), DATAFLOWS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"dataflow: unknown {dataflow!r}{hint}; known: {', '.join(DATAFLOWS)}")
    return found

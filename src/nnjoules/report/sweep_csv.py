"""A sweep's CSV written as it runs, and read back to resume an interrupted sweep.

The header is written first (atomically); then each finished chunk of points is
appended with one ``write`` and an ``fsync``, so a sweep killed at any moment leaves a
CSV of whole rows: every point finished before the last completed write, in grid
order, with the ``pareto`` cells empty (the front is known only at the end, when the
whole file is rewritten atomically with them). `read_partial` reads such a file back,
checks that it belongs to the same sweep, and returns its rows.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nnjoules.energy.results import BOUND_KEYS, LEVEL_KEYS, OPERAND_KEYS, Totals
from nnjoules.errors import InputError
from nnjoules.report.summary import rows_to_csv, write_text


def start_csv(path: Path, columns: Sequence[str]) -> None:
    """Replace ``path`` with a CSV holding only the header line."""
    write_text(path, rows_to_csv([], columns))


def restart_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Replace ``path`` with the header and ``rows`` (drops a torn last line on resume)."""
    write_text(path, rows_to_csv(list(rows), columns))


def append_rows(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Append ``rows`` to the CSV at ``path`` in one write, then flush it to disk.

    Raises:
        InputError: the file cannot be written (e.g. the disk is full).
    """
    text = rows_to_csv(rows, columns).partition("\n")[2]  # without the header
    data = text.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as err:
        raise InputError(f"{path}: cannot append the sweep's rows ({err.strerror or err})") \
            from None


def read_partial(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    """The complete rows of a sweep CSV written by `start_csv` and `append_rows`.

    A last line torn by a crash (too few cells, or no line end) is dropped; any other
    damage is an error, not a guess.

    Raises:
        InputError: no such file, a header that is not this sweep's, or a bad row.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"--resume: {path} does not exist; run without --resume to start "
                         "the sweep") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"--resume: cannot read {path} ({err})") from None
    records = list(csv.reader(io.StringIO(text)))
    if not records or records[0] != list(columns):
        raise InputError(f"--resume: {path} is not a CSV of this sweep (its header differs: "
                         "give the same models, --set values and options as before)")
    rows = records[1:]
    if rows and (len(rows[-1]) != len(columns) or not text.endswith("\n")):
        rows.pop()  # torn by the interruption
    for number, cells in enumerate(rows, start=2):
        if len(cells) != len(columns):
            raise InputError(f"--resume: {path} line {number} has {len(cells)} cells, "
                             f"not {len(columns)}")
    return [dict(zip(columns, cells, strict=True)) for cells in rows]


def totals_of_row(row: Mapping[str, str]) -> Totals | None:
    """The totals written in a CSV row, or None for a point that did not map.

    Time and power are recomputed from ``cycles``, ``clock_mhz`` and ``items`` (the same
    arithmetic, so the row is written back byte for byte).

    Raises:
        ValueError: a cell that is not a number.
        KeyError: a column is missing.
    """
    if row["energy"] == "":
        return None
    return Totals(unit=row["unit"], energy=_number(row["energy"]),
                  computation=_number(row["computation"]),
                  data_movement=_number(row["data_movement"]),
                  by_level={k: _number(row[f"energy_{k}"]) for k in LEVEL_KEYS},
                  by_operand={k: _number(row[f"energy_{k}"]) for k in OPERAND_KEYS},
                  macs=int(row["macs"]), nonskipped_macs=_number(row["nonskipped_macs"]),
                  weights=int(row["weights"]), nonzero_weights=_number(row["nonzero_weights"]),
                  cycles=int(row["cycles"]), clock_mhz=_number(row["clock_mhz"]),
                  items=int(row["items"]) if row["items"] else None,
                  bound_layers={k: int(row[f"{k}_bound_layers"]) for k in BOUND_KEYS})


def _number(text: str) -> Any:
    """An int written as one stays an int, so the row is written back byte for byte."""
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)

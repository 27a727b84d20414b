"""Option parsers shared by the subcommands (argparse types raise ArgumentTypeError)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nnjoules.errors import InputError


def read_densities(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such densities file") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(f'{path}: expected {{"layer name": {{"weights": 0.5, ...}}, ...}}')
    return data


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def bits(text: str) -> Any:
    from nnjoules.energy.workload import Precision

    parts = text.split(",")
    try:
        values = [int(p) for p in parts]
        if len(values) == 1:
            return Precision(values[0], values[0], values[0])
        if len(values) == 3:
            return Precision(*values)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"bad bit-width {text!r}: {err}") from None
    raise argparse.ArgumentTypeError(f"expected B or W,I,O bit-widths, got {text!r}")


def shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected dimensions like 3,224,224, got {text!r}") \
            from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"dimensions must be positive, got {text!r}")
    return dims



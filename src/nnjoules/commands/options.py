"""Option parsers shared by the subcommands (argparse types raise ArgumentTypeError)."""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nnjoules.errors import InputError

# weights_row_peak: the densest filter row, which sizes compressed weight tiles (model.md §5)
DENSITY_FIELDS = ("weights", "ifmaps", "ofmaps", "weights_row_peak")


def read_densities(path: Path) -> dict[str, dict[str, float]]:
    """Per-layer density overrides from a JSON file: ``{"layer": {"weights": 0.4}}``.

    Every value is checked here, so a mistake is named by file, layer and field; layer
    names are checked against the model later (see `unknown_density_layer`).

    Raises:
        InputError: the file is missing, a folder, not UTF-8 JSON, has duplicate keys, or
            a value that is not a number in [0, 1] (``true``, ``"0.5"``, ``NaN`` included)
            under one of the fields weights, ifmaps, ofmaps, weights_row_peak, or a
            weights_row_peak below the weights given beside it.
    """
    data = _read_json(path)
    shape = '{"layer name": {"weights": 0.5, "ifmaps": 0.3, "ofmaps": 0.4}, ...}'
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path}: expected a JSON object {shape}, got {_json_type(data)}")
    out: dict[str, dict[str, float]] = {}
    for layer, fields in data.items():
        if not isinstance(fields, dict) or not fields:
            raise InputError(f"{path}: layer {layer!r}: expected an object like "
                             f'{{"weights": 0.5}}, got {_json_type(fields)}')
        out[layer] = {}
        for field, value in fields.items():
            if field not in DENSITY_FIELDS:
                raise InputError(f"{path}: layer {layer!r}: unknown field {field!r}; use "
                                 f"{', '.join(DENSITY_FIELDS)}")
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not 0.0 <= value <= 1.0):  # NaN fails the comparison too
                raise InputError(f"{path}: layer {layer!r}: {field} must be a number in "
                                 f"[0, 1], got {_json_text(value)}")
            out[layer][field] = float(value)
        if out[layer].get("weights_row_peak", 1.0) < out[layer].get("weights", 0.0):
            raise InputError(f"{path}: layer {layer!r}: weights_row_peak "
                             f"{out[layer]['weights_row_peak']} is below weights "
                             f"{out[layer]['weights']}: the densest filter row cannot be "
                             "sparser than the mean")
    return out


def _read_json(path: Path) -> Any:
    """The JSON value in ``path``; duplicate keys and NaN/Infinity are errors."""
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a densities file")
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such densities file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not a text file (not UTF-8 at byte {err.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    except ValueError as err:  # from the hooks
        raise InputError(f"{path}: {err}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    counts = Counter(key for key, _ in pairs)
    duplicates = sorted(key for key, n in counts.items() if n > 1)
    if duplicates:
        raise ValueError(f"duplicate key(s) {', '.join(map(repr, duplicates))}")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a density (give a number in [0, 1])")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _json_text(value: Any) -> str:
    """``value`` as it was written in the JSON, and its type when that is not a number."""
    text = json.dumps(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    kind = _json_type(value)
    return text if kind == "a number" else f"{text} ({kind})"


@contextmanager
def densities_named(path: Path | None) -> Iterator[None]:
    """Name the densities file ``path`` in the error `estimate` raises on its layer names.

    Layer names can only be checked once the model is extracted, inside `estimate`.
    """
    try:
        yield
    except InputError as err:
        if path is None or not str(err).startswith("densities: "):
            raise
        raise InputError(f"{path}: {str(err).removeprefix('densities: ')}") from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``ArgumentTypeError`` otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def dataflow_name(text: str) -> str:
    """A dataflow's registered name, from its name or ISCA 2016 abbreviation."""
    from nnjoules.energy.dataflows import canonical_name

    try:
        return canonical_name(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("dataflow: ")) from None


def bits(text: str) -> Any:
    """argparse type: a `Precision` from ``B`` (all three operands) or ``W,I,O`` bits."""
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


# The model is run on its input: beyond this many values (1 GiB of float32) it would not fit.
MAX_INPUT_VALUES = 1 << 28


def check_input_size(batch: int, item_shape: tuple[int, ...] | None) -> None:
    """Refuse an input of ``batch`` items of ``item_shape`` too large to run the model on.

    Raises:
        InputError: more than `MAX_INPUT_VALUES` values in all.
    """
    if item_shape is None:
        return
    values = batch * math.prod(item_shape)
    if values > MAX_INPUT_VALUES:
        dims = ",".join(map(str, item_shape))
        raise InputError(f"--batch {batch} x --input-shape {dims} is {values:,} input values; "
                         f"at most {MAX_INPUT_VALUES:,} (1 GiB of float32) can be run")


def shape(text: str) -> tuple[int, ...]:
    """argparse type: positive dimensions ``3,224,224`` (or ``3x224x224``) of one item,
    at most `MAX_INPUT_VALUES` values (``ArgumentTypeError`` otherwise)."""
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected dimensions like 3,224,224, got {text!r}") \
            from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"dimensions must be positive, got {text!r}")
    if math.prod(dims) > MAX_INPUT_VALUES:
        raise argparse.ArgumentTypeError(f"{text!r} is {math.prod(dims):,} values per item; "
                                         f"at most {MAX_INPUT_VALUES:,} can be run")
    return dims



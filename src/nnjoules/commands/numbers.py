"""Range checks of numeric options, named as the user typed them.

argparse only parses ``--rounds 0`` as an int; the range is checked here, after
parsing and before any data is read, so that the message names the option and its
value (``--rounds 0: must be a positive integer``) rather than a field of a config.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from typing import Any

from nnjoules.errors import InputError

Rule = tuple[Callable[[Any], bool], str]  # (accepts the value, what it must be)

POSITIVE_INT: Rule = (lambda v: v >= 1, "must be a positive integer")
NON_NEGATIVE_INT: Rule = (lambda v: v >= 0, "must be a non-negative integer")
POSITIVE: Rule = (lambda v: math.isfinite(v) and v > 0, "must be a positive number")
NON_NEGATIVE: Rule = (lambda v: math.isfinite(v) and v >= 0, "must be a non-negative number")
FRACTION: Rule = (lambda v: 0 <= v <= 1, "must lie in [0, 1] (a fraction)")
OPEN_FRACTION: Rule = (lambda v: 0 < v < 1, "must lie in (0, 1) (a fraction)")
UP_TO_ONE: Rule = (lambda v: 0 < v <= 1, "must lie in (0, 1] (a fraction)")
BELOW_ONE: Rule = (lambda v: 0 <= v < 1, "must lie in [0, 1) (a fraction)")

LIMITS: dict[str, Rule] = {"train_limit": POSITIVE_INT, "val_limit": POSITIVE_INT,
                           "test_limit": POSITIVE_INT}

PRUNE: dict[str, Rule] = {
    "accuracy_drop": FRACTION, "energy_target": UP_TO_ONE, "rounds": POSITIVE_INT,
    "rate": OPEN_FRACTION, "energy_exponent": NON_NEGATIVE, "probe_drop": FRACTION,
    "min_density": BELOW_ONE, "max_failures": NON_NEGATIVE_INT,
    "finetune_epochs": NON_NEGATIVE, "lr": POSITIVE, "batch_size": POSITIVE_INT,
    "samples": POSITIVE_INT, "positions": POSITIVE_INT, "error_share": FRACTION,
    "energy_batch": POSITIVE_INT, **LIMITS}

TRAIN: dict[str, Rule] = {
    "epochs": POSITIVE, "lr": POSITIVE, "momentum": BELOW_ONE, "weight_decay": NON_NEGATIVE,
    "batch_size": POSITIVE_INT, **LIMITS}

CLOCK: dict[str, Rule] = {"clock_mhz": (lambda v: math.isfinite(v) and 0 < v <= 1e6,
                                         "must be a positive number of MHz, at most 1e+06")}

DEMO: dict[str, Rule] = {"rounds": POSITIVE_INT, "accuracy_drop": FRACTION,
                         "energy_batch": POSITIVE_INT}


def check_numbers(args: argparse.Namespace, rules: Mapping[str, Rule]) -> None:
    """Refuse the first option of ``args`` (by ``dest``) outside its range.

    Options left at None (not given, no default) are not checked.

    Raises:
        InputError: ``--rounds 0: must be a positive integer`` (NaN fails every rule).
    """
    for dest, (accepts, must) in rules.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if not accepts(value):  # NaN compares false everywhere: refused
            raise InputError(f"--{dest.replace('_', '-')} {as_typed(value)}: {must}")


def as_typed(value: Any) -> str:
    """A parsed option value as the user most likely typed it (``2.0`` -> ``2``)."""
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def bit_widths(text: str | int | None, option: str = "--bits") -> int | list[int] | None:
    """``--bits``: ``B`` (every operand) or ``W,I,O`` (weights, ifmaps, ofmaps), as
    `nnjoules.commands.options.bits` reads it for ``estimate``; a plain value a run
    folder can store: an int when the three agree, else ``[W, I, O]``.

    Raises:
        InputError: ``--bits 8,8: expected B or W,I,O bit-widths in [1, 64] (e.g. 8 or
            8,8,16)``.
    """
    if text is None or isinstance(text, int):
        values = None if text is None else [text]
    else:
        try:
            values = [int(part) for part in str(text).split(",")]
        except ValueError:
            values = []
    if values is None:
        return None
    if len(values) not in (1, 3) or not all(1 <= v <= 64 for v in values):
        raise InputError(f"{option} {text}: expected B or W,I,O bit-widths in [1, 64] "
                         "(e.g. 8 or 8,8,16)")
    return values[0] if len(set(values)) == 1 else values

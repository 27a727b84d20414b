"""Checks of ``prune`` options before any data is read: ranges, bit-widths, and
options that cannot apply to the method or granularity chosen (refused rather than
ignored while run.json records them); a warning when the training images are fewer
than the calibration asks for."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nnjoules.commands.numbers import PRUNE, as_typed, bit_widths, check_numbers
from nnjoules.errors import InputError

# option dest -> (the settings it applies to, as words)
_ENERGY_AWARE_WEIGHT = "--method energy-aware with --granularity weight or both"
APPLIES_TO = {
    "allocation": _ENERGY_AWARE_WEIGHT,
    "energy_exponent": _ENERGY_AWARE_WEIGHT,
    "error_share": _ENERGY_AWARE_WEIGHT,
    "probe_drop": f"{_ENERGY_AWARE_WEIGHT} and --allocation probe",
    "ranking": "--method magnitude with --granularity weight or both",
}


def _applies(dest: str, method: str, granularity: str, allocation: str) -> bool:
    if granularity == "channel":
        return False  # channel pruning has its own rule (nnjoules.prune.channel_loop)
    if dest == "ranking":
        return method == "magnitude"
    if method != "energy-aware":
        return False
    return dest != "probe_drop" or allocation == "probe"


def check_prune_options(args: argparse.Namespace) -> None:
    """Check the options of a new run or a resume (in place: ``--bits`` normalised to
    an int or ``[W, I, O]``, see `nnjoules.commands.numbers.bit_widths`).

    Raises:
        InputError: one line naming the option as typed: out of range
            (``--rounds 0: must be a positive integer``), bad ``--bits``, or given where
            it cannot apply (``--allocation probe: applies only to --method energy-aware
            with --granularity weight, not --method magnitude``).
    """
    check_numbers(args, PRUNE)
    args.bits = bit_widths(args.bits)
    if args.resume is not None:  # the run's own options apply; contradictions refused later
        return
    given: set[str] = set(getattr(args, "given", ()))
    for dest, where in APPLIES_TO.items():
        if dest in given and not _applies(dest, args.method, args.granularity,
                                          args.allocation):
            now = f"--method {args.method} --granularity {args.granularity}"
            if dest == "probe_drop" and args.method == "energy-aware":
                now = f"--allocation {args.allocation}"
            raise InputError(f"--{dest.replace('_', '-')} {as_typed(getattr(args, dest))}: applies "
                             f"only to {where}, not {now}")


def warn_small_pool(available: int, cfg: Any, option: str = "--train-limit") -> str | None:
    """One warning line when fewer training images exist than the calibration draws
    (restoration samples, density images, probe images); None when there are enough.

    The run goes on with the images there are (restoration samples repeat them)."""
    fit = max(cfg.restore.samples, cfg.density_images)
    asked = {"restoration": (cfg.restore.samples, cfg.restore.samples),
             "density": (cfg.density_images, cfg.density_images)}
    if cfg.method == "energy-aware" and cfg.allocation == "probe" \
            and cfg.granularity != "channel":  # held out beyond the others
        asked["held-out probe"] = (cfg.probe_images, fit + cfg.probe_images)
    short = {k: n for k, (n, needs) in asked.items() if needs > available}
    if not short:
        return None
    wants = " and ".join(f"{n:,} {k}" for k, n in short.items())
    text = (f"warning: calibration asks for {wants} images but only {available:,} training "
            f"images are used ({option}); they are drawn from those {available:,}")
    print(text, file=sys.stderr)
    return text

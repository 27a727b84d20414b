"""``nnjoules compare A B [C ...]``: networks side by side, ratios to the first.

With one model and ``--hardware`` given several times, it compares one network on
several hardware descriptions; with several of each, every model on every hardware
(model by model). Each model is extracted once, whatever the number of hardware.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nnjoules.commands import common
from nnjoules.errors import InputError

if TYPE_CHECKING:
    from nnjoules.report.energy_report import EnergyReport


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``compare`` subcommand."""
    cmp = sub.add_parser(
        "compare", help="compare networks (or hardware): weights, MACs, energy, ratios",
        description="Compare the weights, MACs, non-skipped MACs and energy of several "
        "models on one hardware, or of one model on several hardware (--hardware given "
        "twice or more). Ratios are to the first entry.")
    cmp.add_argument("models", nargs="+", metavar="MODEL",
                     help="torchvision model name, .onnx file or package.module:factory")
    cmp.add_argument("--hardware", action="append", default=None, metavar="NAME|FILE",
                     help="preset or YAML file; repeat to compare hardware [eyeriss]")
    common.add_workload_options(cmp)
    common.add_clock_option(cmp)
    cmp.add_argument("--json", type=Path, default=None, metavar="PATH",
                     help="write the comparison (with every full report) as JSON [not written]")
    cmp.add_argument("--csv", type=Path, default=None, metavar="PATH",
                     help="write one CSV row per entry [not written]")
    cmp.add_argument("--plot", type=Path, default=None, metavar="FILE",
                     help="write the comparison chart (.png or .svg) [not written]")
    cmp.add_argument("--quiet", action="store_true", help="no table on stdout")
    cmp.set_defaults(run=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    from nnjoules.energy.cost import Compression, CompressionLevels, Gating
    from nnjoules.energy.estimate import estimate_workload
    from nnjoules.energy.hardware.loading import load_hardware
    from nnjoules.progress import display_name, layer_progress, wrote
    from nnjoules.report.compare import compare
    from nnjoules.report.plots import save_figure

    hardware_names = args.hardware or ["eyeriss"]
    if len(args.models) * len(hardware_names) < 2:
        raise InputError("compare needs two or more entries: give two or more models, or "
                         "--hardware two or more times")
    common.check_output_file(args.json, "--json")
    common.check_output_file(args.csv, "--csv")
    common.check_plot_file(args.plot, "--plot")
    hardware = [common.with_clock(load_hardware(name), args.clock_mhz)  # fail early
                for name in hardware_names]
    for hw, name in zip(hardware, hardware_names, strict=True):
        common.check_dataflow_fits(hw, args, name)
    units = sorted({hw.unit.value for hw in hardware})
    if len(units) > 1:  # known from the files alone: say so before any model is loaded
        raise InputError(f"cannot compare energies in different units ({', '.join(units)}): "
                         "give --hardware descriptions that share a unit")
    names = [display_name(spec) for spec in args.models]
    if len(set(names)) < len(names):  # e.g. two run folders' model.pt: name them by path
        names = list(args.models)
    reports = []
    for spec, name in zip(args.models, names, strict=True):
        workload = common.load_workload(spec, batch=args.batch,
                                        input_shape=args.input_shape, seed=args.seed,
                                        dense=args.dense, precision=args.bits)
        workload = replace(workload, name=name)
        for hw in hardware:
            at_width = common.at_hardware_width(workload, hw, args.bits)
            with layer_progress(f"mapping {workload.name} on {hw.name}") as advance:
                reports.append(estimate_workload(at_width, hw,
                                                 compression=Compression(args.compression),
                                                 gating=Gating(args.gating),
                                                 compression_levels=CompressionLevels(
                                                     args.compression_levels),
                                                 dataflow=args.dataflow, progress=advance))
    result = compare(reports, _labels(reports, hardware_names, len(hardware)))
    if not args.quiet:
        sys.stdout.write(result.to_table())
    if args.json is not None:
        result.to_json(args.json)
        wrote(args.json)
    if args.csv is not None:
        result.to_csv(args.csv)
        wrote(args.csv)
    if args.plot is not None:
        save_figure(result.plot(), args.plot)
        wrote(args.plot)
    return 0


def _labels(reports: list[EnergyReport], hardware_args: list[str], per_model: int) -> list[str]:
    """Network names, hardware names (or the --hardware text when names repeat), or both."""
    from nnjoules.report.compare import default_labels

    names = [r.hardware.name for r in reports[:per_model]]
    hw_labels = names if len(set(names)) == len(names) else hardware_args
    if len(reports) == per_model:  # one model
        labels = hw_labels
    elif per_model == 1:
        return list(default_labels(reports))
    else:
        labels = [f"{r.workload.name} on {hw_labels[i % per_model]}"
                  for i, r in enumerate(reports)]
    if len(set(labels)) != len(labels):
        labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
    return labels

"""``nnjoules sweep MODEL --set NAME=V1,V2 ...``: what-if estimates over a grid.

The model is extracted once (once per batch size when ``batch`` is swept); every grid
point re-maps it. Writes a CSV and a line plot; a progress bar runs on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from nnjoules.commands import common
from nnjoules.commands.helpformat import RawDescriptionDefaultsHelpFormatter
from nnjoules.energy.workload import Workload
from nnjoules.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``sweep`` subcommand."""
    from nnjoules.energy.sweep import PARAMETERS

    names = "\n".join(f"  {p.name:<17} {p.help}" for p in PARAMETERS.values())
    swp = sub.add_parser(
        "sweep", help="what-if: energy over a grid of hardware and precision settings",
        formatter_class=RawDescriptionDefaultsHelpFormatter,
        description="Estimate MODEL at every point of a grid, e.g.\n"
        "  nnjoules sweep alexnet --set glb_kb=32,64,108,256 --set bits=8,16 "
        "--set pe_array=8x8,12x14,16x16\n\nparameters:\n" + names)
    swp.add_argument("model", metavar="MODEL",
                     help="torchvision model name, .onnx file or package.module:factory")
    swp.add_argument("--set", dest="settings", action="append", required=True,
                     metavar="NAME=V1,V2,...", help="a parameter and its values; repeat")
    swp.add_argument("--hardware", default="eyeriss",
                     help="base hardware: preset or YAML file [eyeriss]")
    common.add_workload_options(swp)
    swp.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                     help="worker processes (0: one per CPU) [1]")
    swp.add_argument("--csv", type=Path, default=None, metavar="PATH",
                     help="CSV, one row per point [MODEL-sweep.csv]")
    swp.add_argument("--plot", type=Path, default=None, metavar="FILE",
                     help="line plots, .png or .svg [the CSV's name, with .png]")
    swp.add_argument("--json", type=Path, default=None, metavar="PATH",
                     help="also write the sweep as JSON [not written]")
    swp.add_argument("--quiet", action="store_true", help="no table on stdout")
    swp.set_defaults(run=_run_sweep)


def _jobs(text: str) -> int:
    import os

    from nnjoules.commands.options import positive_int

    if text.strip() == "0":
        return os.cpu_count() or 1
    return positive_int(text)


def _run_sweep(args: argparse.Namespace) -> int:
    from nnjoules.energy.hardware.loading import load_hardware
    from nnjoules.energy.sweep import parse_settings, sweep
    from nnjoules.progress import display_name, wrote
    from nnjoules.report.plots import save_figure

    grid = parse_settings(args.settings)  # bad input fails before the model is loaded
    for option, value, swept in (("--bits", args.bits, ("bits", "weight_bits", "ifmap_bits",
                                                         "ofmap_bits")),
                                 ("--batch", args.batch, ("batch",))):
        clash = [name for name in swept if name in grid]
        if value is not None and clash:
            raise InputError(f"{option} and --set {clash[0]}=... both set it: give one")
    stem = common.model_stem(args.model)
    csv_path = args.csv or Path(f"{stem}-sweep.csv")
    plot_path = args.plot or csv_path.with_suffix(".png")  # two sweeps, two --csv: two plots
    common.check_output_file(csv_path, "--csv")
    common.check_plot_file(plot_path, "--plot")
    common.check_output_file(args.json, "--json")
    hardware = load_hardware(args.hardware)

    def workload_at(batch: int) -> Workload:
        workload = common.load_workload(args.model, batch=batch, input_shape=args.input_shape,
                                        seed=args.seed, dense=args.dense, precision=args.bits)
        workload = common.at_hardware_width(workload, hardware, args.bits)
        return replace(workload, name=display_name(args.model))

    with point_progress(f"sweeping {stem}") as advance:
        result = sweep(workload_at, grid, hardware=hardware,
                       compression=args.compression, gating=args.gating,
                       compression_levels=args.compression_levels, batch=args.batch or 1,
                       jobs=args.jobs, dataflow=args.dataflow, progress=advance)
    if not args.quiet:
        sys.stdout.write(result.to_table())
    result.to_csv(csv_path)
    written = [csv_path]
    if result.ok_points():
        save_figure(result.plot(), plot_path)
        written.append(plot_path)
    if args.json is not None:
        result.to_json(args.json)
        written.append(args.json)
    for path in written:
        wrote(path)
    if not result.ok_points():
        print("nnjoules: error: no point of the sweep could be mapped", file=sys.stderr)
        return 1
    return 0


@contextmanager
def point_progress(description: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a rich bar on stderr (terminals only)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=sys.stderr)
    if not console.is_terminal:
        yield lambda _done, _total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance

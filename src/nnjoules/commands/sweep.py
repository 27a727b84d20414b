"""``nnjoules sweep MODEL [MODEL ...] --set NAME=V1,V2 ...``: what-if estimates over a grid.

Each model is extracted once (once per batch size when ``batch`` is swept); every grid
point re-maps it. Points run in chunks here, in ``--jobs`` local processes or on a Dask
cluster (``--executor dask``); finished chunks stream to the CSV, so an interrupted sweep
can be finished with ``--resume``. Writes one CSV (a ``network`` column tells the models
apart, a ``pareto`` column marks each one's Pareto front), one table per model, one
plot (a row of panels per model) and beside it the energy-latency chart (one panel per
model); a progress bar runs on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nnjoules.commands import common
from nnjoules.commands.helpformat import RawDescriptionDefaultsHelpFormatter
from nnjoules.energy.workload import Workload
from nnjoules.errors import InputError

if TYPE_CHECKING:
    from nnjoules.report.sweep import Sweep


# Parameters that change whether a layer can be mapped at all (storage, array, bits, flow).
MAPPING_PARAMETERS = frozenset({"glb_kb", "pe_array", "rf_bytes", "rf_weights_bytes",
                                "rf_ifmaps_bytes", "rf_psums_bytes", "dataflow", "bits",
                                "weight_bits", "ifmap_bits", "ofmap_bits"})


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``sweep`` subcommand."""
    from nnjoules.energy.sweep import PARAMETERS
    from nnjoules.energy.sweep_exec import CONNECT_TIMEOUT_S
    from nnjoules.energy.sweep_run import CHUNK_POINTS, MAX_POINTS

    names = "\n".join(f"  {p.name:<17} {p.help}" for p in PARAMETERS.values())
    swp = sub.add_parser(
        "sweep", help="what-if: energy over a grid of hardware and precision settings",
        formatter_class=RawDescriptionDefaultsHelpFormatter,
        description="Estimate MODEL at every point of a grid, e.g.\n"
        "  nnjoules sweep alexnet --set glb_kb=32,64,108,256 --set bits=8,16 "
        "--set pe_array=8x8,12x14,16x16\n\nparameters:\n" + names)
    swp.add_argument("models", nargs="+", metavar="MODEL",
                     help="torchvision model name, .onnx file or package.module:factory; "
                     "several models share one grid and one CSV")
    swp.add_argument("--set", dest="settings", action="append", required=True,
                     metavar="NAME=V1,V2,...", help="a parameter and its values; repeat")
    swp.add_argument("--hardware", default="eyeriss",
                     help="base hardware: preset or YAML file [eyeriss]")
    common.add_workload_options(swp)
    common.add_clock_option(swp)
    swp.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                     help="worker processes (0: one per CPU) [1]")
    swp.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="where points run: this machine (--jobs) or a Dask cluster "
                     "(--scheduler) [local]")
    swp.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    swp.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT_S,
                     metavar="SECONDS", help="how long to wait for the Dask scheduler")
    swp.add_argument("--chunk", type=_positive, default=CHUNK_POINTS, metavar="N",
                     help="most points per chunk: one task, one append to the CSV")
    swp.add_argument("--resume", action="store_true",
                     help="finish the interrupted sweep whose partial CSV is at --csv "
                     "(same models, --set values and options)")
    swp.add_argument("--force", action="store_true",
                     help=f"run more than {MAX_POINTS:,} points (grid x models)")
    swp.add_argument("--csv", type=Path, default=None, metavar="PATH",
                     help="CSV, one row per point and model [MODEL-sweep.csv; "
                     "MODEL1-MODEL2-sweep.csv for several]")
    swp.add_argument("--plot", type=Path, default=None, metavar="FILE",
                     help="line plots, .png or .svg; the energy-latency chart goes beside "
                     "it, named FILE with -latency added [the CSV's name, with .png]")
    swp.add_argument("--json", type=Path, default=None, metavar="PATH",
                     help="also write the sweep as JSON [not written]")
    swp.add_argument("--quiet", action="store_true", help="no table on stdout")
    swp.set_defaults(run=_run_sweep)


def _positive(text: str) -> int:
    from nnjoules.commands.options import positive_int

    return positive_int(text)


def _jobs(text: str) -> int:
    import os

    from nnjoules.commands.options import positive_int

    if text.strip() == "0":
        return os.cpu_count() or 1
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:  # 0 is allowed: do not say "positive"
        raise argparse.ArgumentTypeError(f"expected 0 (one per CPU) or a positive number of "
                                         f"processes, got {text!r}") from None


def _run_sweep(args: argparse.Namespace) -> int:
    from nnjoules.energy.cost import Compression
    from nnjoules.energy.dataflows import DEFAULT_DATAFLOW
    from nnjoules.energy.hardware.loading import load_hardware
    from nnjoules.energy.sweep import parse_settings
    from nnjoules.energy.sweep_exec import open_executor
    from nnjoules.energy.sweep_run import sweep_networks
    from nnjoules.progress import display_name

    grid = parse_settings(args.settings)  # bad input fails before the model is loaded
    for option, value, swept in (("--bits", args.bits, ("bits", "weight_bits", "ifmap_bits",
                                                         "ofmap_bits")),
                                 ("--batch", args.batch, ("batch",)),
                                 ("--clock-mhz", args.clock_mhz, ("clock_mhz",)),
                                 # options with a default clash when they differ from it
                                 ("--dataflow", None if args.dataflow == DEFAULT_DATAFLOW
                                  else args.dataflow, ("dataflow",)),
                                 ("--compression", None if args.compression ==
                                  Compression.SIGNIFICANCE_MAP.value else args.compression,
                                  ("compression",))):
        clash = [name for name in swept if name in grid]
        if value is not None and clash:
            raise InputError(f"{option} and --set {clash[0]}=... both set it: give one")
    names = [display_name(model) for model in args.models]
    twice = [name for name in names if names.count(name) > 1]
    if twice:
        raise InputError(f"model {twice[0]!r} is given twice; sweep each model once")
    stem = "-".join(common.model_stem(model) for model in args.models)
    csv_path = args.csv or Path(f"{stem}-sweep.csv")
    plot_path = args.plot or csv_path.with_suffix(".png")  # two sweeps, two --csv: two plots
    common.check_output_file(csv_path, "--csv")
    common.check_plot_file(plot_path, "--plot")
    common.check_output_file(args.json, "--json")
    hardware = common.with_clock(load_hardware(args.hardware), args.clock_mhz)
    if not set(grid) & MAPPING_PARAMETERS:  # else some points may map: each says why not
        common.check_dataflow_fits(hardware, args, args.hardware)

    def source(model: str, name: str) -> Callable[[int], Workload]:
        def workload_at(batch: int) -> Workload:
            workload = common.load_workload(model, batch=batch, input_shape=args.input_shape,
                                            seed=args.seed, dense=args.dense,
                                            precision=args.bits)
            workload = common.at_hardware_width(workload, hardware, args.bits)
            return replace(workload, name=name)
        return workload_at

    networks = [(name, source(model, name)) for model, name in zip(args.models, names,
                                                                    strict=True)]
    with open_executor(args.executor, jobs=args.jobs, scheduler=args.scheduler,
                       timeout_s=args.connect_timeout) as executor, \
            point_progress(f"sweeping {stem}") as advance:
        try:
            results = sweep_networks(
                networks, grid, hardware=hardware, compression=args.compression,
                gating=args.gating, compression_levels=args.compression_levels,
                batch=args.batch or 1, dataflow=args.dataflow, executor=executor, csv=csv_path,
                resume=args.resume,
                chunk_points=args.chunk, force=args.force, progress=advance)
        except KeyboardInterrupt:
            print(f"nnjoules: the points finished so far are in {csv_path}; run the same "
                  "command with --resume to finish the sweep", file=sys.stderr)
            raise
    return _write_outputs(args, results, csv_path, plot_path)


def _write_outputs(args: argparse.Namespace, results: list[Sweep], csv_path: Path,
                   plot_path: Path) -> int:
    from nnjoules.progress import wrote
    from nnjoules.report.plots import save_figure
    from nnjoules.report.summary import write_text
    from nnjoules.report.sweep import plot_sweeps, sweeps_to_json
    from nnjoules.report.sweep_latency import plot_sweeps_latency

    if not args.quiet:
        sys.stdout.write("\n".join(result.to_table() for result in results))
    written = [csv_path]
    mapped = [result for result in results if result.ok_points()]
    if mapped:
        save_figure(plot_sweeps(mapped), plot_path)
        latency_path = latency_plot_path(plot_path)
        save_figure(plot_sweeps_latency(mapped), latency_path)
        written += [plot_path, latency_path]
    if args.json is not None:
        text = results[0].to_json() if len(results) == 1 else sweeps_to_json(results)
        write_text(args.json, text + "\n")
        written.append(args.json)
    for path in written:
        wrote(path)
    for result in results:
        if not result.ok_points():
            print(f"nnjoules: error: no point of the sweep of {result.network} could be "
                  "mapped", file=sys.stderr)
    return 0 if len(mapped) == len(results) else 1


def latency_plot_path(plot_path: Path) -> Path:
    """Where the energy-latency chart goes: beside the sweep plot, ``-latency`` added.

    >>> latency_plot_path(Path("out/alexnet-sweep.png")).as_posix()
    'out/alexnet-sweep-latency.png'
    """
    return plot_path.with_name(f"{plot_path.stem}-latency{plot_path.suffix}")


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

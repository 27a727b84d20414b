"""``nnjoules estimate MODEL``: the per-layer energy table; optionally JSON, CSV, HTML, plots."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from nnjoules.commands.common import (
    add_clock_option,
    add_workload_options,
    check_dataflow_fits,
    with_clock,
    with_random_inputs_note,
)
from nnjoules.commands.options import check_input_size, densities_named, read_densities
from nnjoules.energy.workload import Workload
from nnjoules.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``estimate`` subcommand."""
    est = sub.add_parser("estimate", help="per-layer energy of a network",
                         description="Estimate the energy of MODEL: a torchvision model name "
                         "(random weights), an .onnx file or package.module:factory.")
    est.add_argument("model", metavar="MODEL")
    est.add_argument("--hardware", default="eyeriss",
                     help="preset (eyeriss, eyeriss-isca2016, eyeriss-isca2016-ws, ...; in pJ: "
                     "eyeriss-65nm-pj, eyeriss-45nm-int8, -int16, -int32; systolic-32x32 with "
                     "--dataflow systolic-ws/-os) or YAML file [eyeriss]")
    add_workload_options(est)
    est.add_argument("--densities", type=Path, default=None,
                     help="JSON file of per-layer density overrides: "
                     '{"layer": {"weights": 0.4, "ifmaps": 0.5}} [none: measured]')
    est.add_argument("--json", type=Path, default=None, metavar="PATH",
                     help="also write the report as JSON (schema: docs/report-json.md) "
                     "[not written]")
    est.add_argument("--csv", type=Path, default=None, metavar="PATH",
                     help="also write the per-layer CSV (columns: docs/report-json.md) "
                     "[not written]")
    est.add_argument("--html", type=Path, default=None, metavar="FILE",
                     help="also write a self-contained HTML report (charts, sortable table) "
                     "[not written]")
    est.add_argument("--plot", type=Path, default=None, metavar="DIR",
                     help="also write the charts (PNG and SVG) into DIR, created if missing "
                     "[not written]")
    add_clock_option(est)
    est.add_argument("--quiet", action="store_true", help="no table on stdout")
    est.set_defaults(run=_run_estimate)


def _run_estimate(args: argparse.Namespace) -> int:
    from nnjoules.commands.common import check_output_file, check_output_folder
    from nnjoules.energy.estimate import estimate
    from nnjoules.energy.hardware.loading import load_hardware
    from nnjoules.models import load_model
    from nnjoules.progress import display_name, layer_progress, wrote

    for option, path in (("--json", args.json), ("--csv", args.csv), ("--html", args.html)):
        check_output_file(path, option)
    check_output_folder(args.plot, "--plot")
    hardware = with_clock(load_hardware(args.hardware), args.clock_mhz)  # before the model
    check_dataflow_fits(hardware, args, args.hardware)
    densities = read_densities(args.densities) if args.densities else None
    loaded = load_model(args.model, seed=args.seed)
    example_inputs = None
    input_shape = args.input_shape or loaded.input_shape
    check_input_size(args.batch or 1, input_shape)
    if not isinstance(loaded.model, Path):
        if input_shape is None:
            raise InputError(f"{args.model}: give --input-shape (e.g. 3,224,224)")
        import torch

        generator = torch.Generator().manual_seed(args.seed)
        example_inputs = torch.randn((args.batch or 1, *input_shape), generator=generator)
    with layer_progress("mapping layers") as advance, densities_named(args.densities):
        report = estimate(loaded.model, example_inputs, hardware=hardware,
                          batch=args.batch if example_inputs is None else None,
                          bits=args.bits,
                          input_shape=args.input_shape if example_inputs is None else None,
                          compression=args.compression, gating=args.gating,
                          compression_levels=args.compression_levels,
                          densities=densities, measure_density=not args.dense,
                          name=display_name(args.model), seed=args.seed,
                          dataflow=args.dataflow, progress=advance)
    if not args.dense and not _activations_given(report.workload, densities):
        report = replace(report, workload=with_random_inputs_note(report.workload, args.seed))
    if not args.quiet:
        sys.stdout.write(report.to_table())
    for path, write in ((args.json, report.to_json), (args.csv, report.to_csv),
                        (args.html, report.to_html)):
        if path is not None:
            write(path)
            wrote(path)
    if args.plot is not None:
        from nnjoules.report.plots import save_report_plots

        for path in save_report_plots(report, args.plot):
            wrote(path)
    return 0


def _activations_given(workload: Workload, densities: dict[str, dict[str, float]] | None) -> bool:
    """Whether ``--densities`` sets the ifmap and ofmap density of every layer, so that
    no measured activation density (from random inputs) is left in the report."""
    return densities is not None and all(
        {"ifmaps", "ofmaps"} <= set(densities.get(layer.name, ())) for layer in workload)


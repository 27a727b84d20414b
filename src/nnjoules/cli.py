"""The ``nnjoules`` command line. Tables on stdout, logs and progress on stderr.

Exit codes: 0 ok, 1 failure (e.g. a layer that cannot be mapped), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnjoules.errors import InputError, NNJoulesError

log = logging.getLogger("nnjoules")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * args.verbose, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.run(args))
    except NNJoulesError as err:
        print(f"nnjoules: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("nnjoules: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    from nnjoules import __version__
    from nnjoules.energy.cost import Compression

    parser = argparse.ArgumentParser(prog="nnjoules", description=(
        "Estimate where a neural network's energy goes on an Eyeriss-like accelerator."))
    parser.add_argument("--version", action="version", version=f"nnjoules {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    est = sub.add_parser("estimate", help="per-layer energy of a network",
                         description="Estimate the energy of MODEL: a torchvision model name "
                         "(random weights), an .onnx file or package.module:factory.")
    est.add_argument("model", metavar="MODEL")
    est.add_argument("--hardware", default="eyeriss",
                     help="preset (eyeriss, eyeriss-isca2016) or YAML file [eyeriss]")
    est.add_argument("--batch", type=_positive_int, default=None, help="batch size N [1]")
    est.add_argument("--bits", type=_bits, default=None,
                     help="bit-width for all operands (8) or weights,ifmaps,ofmaps (8,8,16)")
    est.add_argument("--input-shape", type=_shape, default=None,
                     help="per-item input shape, e.g. 3,224,224")
    est.add_argument("--compression", choices=[c.value for c in Compression],
                     default=Compression.SIGNIFICANCE_MAP.value,
                     help="DRAM compression of zeros [significance-map]")
    est.add_argument("--densities", type=Path, default=None,
                     help="JSON file of per-layer density overrides: "
                     '{"layer": {"weights": 0.4, "ifmaps": 0.5}}')
    est.add_argument("--dense", action="store_true",
                     help="do not measure densities (all operands dense)")
    est.add_argument("--seed", type=int, default=0, help="seed of random weights and inputs")
    est.add_argument("--json", type=Path, default=None, metavar="PATH",
                     help="also write the report as JSON (schema: docs/report-json.md)")
    est.add_argument("--quiet", action="store_true", help="no table on stdout")
    est.set_defaults(run=_run_estimate)
    return parser


def _run_estimate(args: argparse.Namespace) -> int:
    from nnjoules.energy.estimate import estimate
    from nnjoules.energy.hardware_io import load_hardware
    from nnjoules.models import load_model
    from nnjoules.progress import layer_progress

    hardware = load_hardware(args.hardware)  # fail on a bad file before loading the model
    densities = _read_densities(args.densities) if args.densities else None
    loaded = load_model(args.model, seed=args.seed)
    example_inputs = None
    input_shape = args.input_shape or loaded.input_shape
    if not isinstance(loaded.model, Path):
        if input_shape is None:
            raise InputError(f"{args.model}: give --input-shape (e.g. 3,224,224)")
        import torch

        generator = torch.Generator().manual_seed(args.seed)
        example_inputs = torch.randn((args.batch or 1, *input_shape), generator=generator)
    with layer_progress("mapping layers") as advance:
        report = estimate(loaded.model, example_inputs, hardware=hardware,
                          batch=args.batch if example_inputs is None else None,
                          bits=args.bits, input_shape=args.input_shape if example_inputs is None
                          else None, compression=args.compression, densities=densities,
                          measure_density=not args.dense, name=loaded.name, progress=advance)
    if not args.quiet:
        sys.stdout.write(report.to_table())
    if args.json is not None:
        report.to_json(args.json)
        log.info("wrote %s", args.json)
    return 0


def _read_densities(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such densities file") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(f'{path}: expected {{"layer name": {{"weights": 0.5, ...}}, ...}}')
    return data


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _bits(text: str) -> Any:
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


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(p) for p in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected dimensions like 3,224,224, got {text!r}") \
            from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"dimensions must be positive, got {text!r}")
    return dims


if __name__ == "__main__":
    raise SystemExit(main())

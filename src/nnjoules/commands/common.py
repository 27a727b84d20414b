"""Pieces the report subcommands share: workload options, loading, output-path checks.

Output paths are checked before any model is loaded, so a typo costs no waiting.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from nnjoules.commands.options import (
    bits,
    check_input_size,
    dataflow_name,
    positive_int,
    shape,
)
from nnjoules.energy.dataflows import known_dataflows
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.workload import Density, Precision, Workload
from nnjoules.errors import InputError


def add_workload_options(parser: argparse.ArgumentParser) -> None:
    """``--batch --bits --input-shape --compression --compression-levels --gating --dense
    --seed --dataflow``."""
    from nnjoules.energy.cost import Compression, CompressionLevels, Gating

    parser.add_argument("--batch", type=positive_int, default=None, help="batch size N [1]")
    parser.add_argument("--bits", type=bits, default=None,
                        help="bit-width for all operands (8) or weights,ifmaps,ofmaps (8,8,16) "
                        "[16]")
    parser.add_argument("--input-shape", type=shape, default=None,
                        help="per-item input shape, e.g. 3,224,224 [the model's own]")
    parser.add_argument("--compression", choices=[c.value for c in Compression],
                        default=Compression.SIGNIFICANCE_MAP.value,
                        help="DRAM compression of zeros [significance-map]")
    parser.add_argument("--compression-levels", choices=[c.value for c in CompressionLevels],
                        default=CompressionLevels.DRAM.value, metavar="LEVELS",
                        help="which moves carry compressed weights and ifmaps: dram (to and "
                        "from DRAM only), dram,glb (also GLB reads) or all (also the PE "
                        "array) [dram]")
    parser.add_argument("--gating", choices=[g.value for g in Gating],
                        default=Gating.EITHER.value,
                        help="which zero operands skip a MAC: either (the analytical tool), "
                        "ifmap (the Eyeriss chip's zero buffer), none, or compressed-weights "
                        "(as either, and zero weights are never read nor paired with an "
                        "ifmap: Eyeriss v2) [either]")
    parser.add_argument("--dense", action="store_true",
                        help="do not measure densities (all operands dense)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of random weights and inputs")
    parser.add_argument("--dataflow", type=dataflow_name, default="row-stationary",
                        metavar="NAME",
                        help=f"{known_dataflows()}; pair an ISCA 2016 one with its "
                        "eyeriss-isca2016-* preset (the paper's equal-area storage split), "
                        "systolic-ws/-os with systolic-32x32 [row-stationary]")


def add_clock_option(parser: argparse.ArgumentParser) -> None:
    """``--clock-mhz``: the core clock for latency, throughput and power."""
    parser.add_argument("--clock-mhz", type=float, default=None, metavar="MHZ",
                        help="core clock for latency, throughput and power [the hardware's "
                        "clock_mhz: 200 for eyeriss]")


def with_clock(hardware: Hardware, clock_mhz: float | None) -> Hardware:
    """``hardware`` at ``--clock-mhz`` (unchanged when None).

    Raises:
        InputError: ``--clock-mhz 0: must be a positive number of MHz, at most 1e+06``.
    """
    from dataclasses import replace

    from nnjoules.commands.numbers import CLOCK, check_numbers

    if clock_mhz is None:
        return hardware
    check_numbers(argparse.Namespace(clock_mhz=clock_mhz), CLOCK)
    return replace(hardware, clock_mhz=clock_mhz)


def check_dataflow_fits(hardware: Hardware, args: argparse.Namespace, source: str) -> None:
    """Refuse, before any model is loaded, a hardware on which ``--dataflow`` cannot map
    even one MAC at ``--bits`` (see `nnjoules.energy.dataflows.requirements`).

    Raises:
        HardwareFileError: names the hardware (and ``source``, a file) and its fields.
    """
    from nnjoules.energy.dataflows.requirements import check_dataflow_fits as check

    check(hardware, args.dataflow, args.bits, source=source)


def load_workload(spec: str, *, batch: int | None, input_shape: tuple[int, ...] | None, seed: int,
                  dense: bool, precision: Precision | None) -> Workload:
    """Extract the workload of the model ``spec`` once, at batch size ``batch``.

    Args:
        spec: a torchvision model name, an ``.onnx`` path or ``package.module:factory``.
        batch: the batch size N of the random inputs (or of an ONNX dynamic batch; a
            fixed one must agree); None: 1, or the ONNX graph's fixed batch.
        input_shape: per-item input shape; default the model's own.
        seed: seed of the random weights and inputs.
        dense: all operands dense instead of measured densities.
        precision: bit-widths for every layer (None: as extracted, 16 bits).

    Raises:
        InputError: the model cannot be loaded or has no input shape.
    """
    from nnjoules.energy.extract import extract_workload
    from nnjoules.models import load_model

    loaded = load_model(spec, seed=seed)
    check_input_size(batch or 1, input_shape or loaded.input_shape)
    if isinstance(loaded.model, Path):
        workload = extract_workload(loaded.model, name=loaded.name, batch=batch,
                                    input_shape=input_shape, measure_density=not dense,
                                    seed=seed)
    else:
        item_shape = input_shape or loaded.input_shape
        if item_shape is None:
            raise InputError(f"{spec}: give --input-shape (e.g. 3,224,224)")
        import torch

        generator = torch.Generator().manual_seed(seed)
        inputs = torch.randn((batch or 1, *item_shape), generator=generator)
        workload = extract_workload(loaded.model, inputs, name=loaded.name)
    if dense:
        workload = workload.with_densities({layer.name: Density() for layer in workload})
    else:
        workload = with_random_inputs_note(workload, seed)
    if precision is not None:
        workload = workload.with_precision(precision)
    return workload


def random_inputs_note(seed: int) -> str:
    """What a report says when its activation densities come from generated inputs."""
    return (f"activation densities measured on random N(0, 1) inputs (seed {seed}), not on "
            "real data: ReLU zeros differ on real inputs; pass them with "
            "nnjoules.estimate(model, inputs) for real densities")


def with_random_inputs_note(workload: Workload, seed: int) -> Workload:
    """``workload`` with `random_inputs_note` among its notes, unless its activations were
    not measured at all (an ONNX graph that could not run says so already)."""
    from dataclasses import replace

    from nnjoules.energy.extract.onnx_run import DENSE_NOTE

    if any(DENSE_NOTE in note for note in workload.notes):
        return workload
    return replace(workload, notes=(*workload.notes, random_inputs_note(seed)))


def at_hardware_width(workload: Workload, hw: Hardware, bits: Precision | None) -> Workload:
    """With no ``--bits``, the operands take the hardware's word width (``word_bits``)."""
    if bits is not None or hw.word_bits == Precision().weight_bits:
        return workload
    return workload.with_precision(Precision(hw.word_bits, hw.word_bits, hw.word_bits))


def model_stem(spec: str) -> str:
    """A file-name stem for the model ``spec`` (known before it is loaded).

    >>> model_stem("alexnet"), model_stem("nets/small.onnx"), model_stem("pkg.nets:build")
    ('alexnet', 'small', 'build')
    """
    if spec.lower().endswith(".onnx"):
        return Path(spec).stem
    return spec.rpartition(":")[2] or spec


def check_output_file(path: Path | None, option: str) -> None:
    """Fail now, not after the estimate, if ``path`` cannot be written.

    Raises:
        InputError: the path is a folder, or its folder is missing or not writable.
    """
    if path is None:
        return
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{option} {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: folder {folder} is not writable")


def check_output_folder(path: Path | None, option: str) -> None:
    """Fail now if ``path`` is not, and cannot become, a writable folder.

    Raises:
        InputError: the path is a file, or its nearest existing parent is not a writable
            folder.
    """
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path}: exists and is not a folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{option} {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: {existing} is not writable")


def check_plot_file(path: Path | None, option: str) -> None:
    """`check_output_file`, and the suffix must be ``.png`` or ``.svg``.

    Raises:
        InputError: another suffix, or the file cannot be written (names ``option``).
    """
    if path is not None and path.suffix.lower() not in (".png", ".svg"):
        raise InputError(f"{option} {path}: plots are written as .png or .svg")
    check_output_file(path, option)

"""What ``nnjoules prune`` writes for use without nnjoules, and ``--export-onnx``.

Every finished run folder gets ``model-module.pt`` (``torch.save`` of the pruned model
as a self-contained torch.fx module: ``torch.load(path, weights_only=False)`` needs only
torch) and ``model-state-dict.pt`` (its plain state dict, the new shapes, masks folded
in). ``--export-onnx FILE.onnx`` also writes the model as ONNX and, beside it,
``FILE.densities.json``: the densities pruning measured on real images, so that
``nnjoules estimate FILE.onnx --batch N --densities FILE.densities.json`` (the command is
printed) gives the energy the run reported. See `nnjoules.prune.export`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from nnjoules.errors import InputError

MODULE_FILE = "model-module.pt"
STATE_DICT_FILE = "model-state-dict.pt"


def add_export_option(p: argparse.ArgumentParser) -> None:
    """``--export-onnx FILE.onnx``."""
    p.add_argument("--export-onnx", type=Path, default=None, metavar="FILE.onnx",
                   help="also write the pruned model as ONNX (dynamic batch) and, beside "
                   "it, FILE.densities.json: the densities `nnjoules estimate` needs to "
                   "reproduce the run's energy [not written]")


def check_export_option(args: argparse.Namespace) -> None:
    """Refuse an ``--export-onnx`` path that is not ``.onnx`` or cannot be written, before
    any data is read.

    Raises:
        InputError: ``--export-onnx x.pt: the file should end in .onnx``, a folder, or
            a missing or read-only folder.
    """
    from nnjoules.commands.common import check_output_file

    path = getattr(args, "export_onnx", None)
    if path is None:
        return
    if path.suffix.lower() != ".onnx":
        raise InputError(f"--export-onnx {path}: the file should end in .onnx")
    check_output_file(path, "--export-onnx")


def write_plain_files(folder: Path, model: Any) -> None:
    """``model-module.pt`` and ``model-state-dict.pt`` in the run folder."""
    from nnjoules.progress import wrote
    from nnjoules.prune.export import save_module, save_state_dict

    save_state_dict(folder / STATE_DICT_FILE, model)
    wrote(folder / STATE_DICT_FILE)
    try:
        standalone = save_module(folder / MODULE_FILE, model)
    except Exception as err:  # noqa: BLE001  (pickling user code fails in many ways)
        print(f"note: {folder / MODULE_FILE} not written: torch.fx cannot trace the model and "
              f"torch.save cannot pickle it ({type(err).__name__}: {err})", file=sys.stderr)
        return
    wrote(folder / MODULE_FILE)
    if not standalone:
        print(f"note: torch.fx cannot trace this model, so {folder / MODULE_FILE} holds the "
              "module itself: loading it needs the model's classes importable",
              file=sys.stderr)


def export_run(path: Path, model: Any, densities: dict[str, dict[str, float]],
               input_shape: tuple[int, ...], opts: dict[str, Any], *, folder: Path) -> str:
    """Write ``path`` (ONNX) and its densities file; the ``nnjoules estimate`` command
    that reproduces the run's energy (also printed on stderr).

    Raises:
        InputError: the model cannot be exported (the message says that the run in
            ``folder`` is finished, and how to export it again).
    """
    from nnjoules.io import write_text_atomic
    from nnjoules.progress import wrote
    from nnjoules.prune.export import densities_path, export_onnx

    try:
        export_onnx(model, path, input_shape)
    except InputError as err:
        raise InputError(f"--export-onnx {path}: {err} (the run in {folder} is finished; "
                         f"retry with `nnjoules prune --resume {folder} --export-onnx "
                         "PATH`)") from None
    side = densities_path(path)
    write_text_atomic(side, json.dumps(densities, indent=2) + "\n")
    wrote(path)
    wrote(side)
    command = estimate_command(path, side, opts)
    print(f"the run's energy again: {command}", file=sys.stderr)
    return command


def estimate_command(path: Path, densities: Path, opts: dict[str, Any]) -> str:
    """``nnjoules estimate`` with the run's batch, bits, hardware and sparsity rules."""
    words = ["nnjoules", "estimate", str(path), "--batch", str(opts["energy_batch"]),
             "--densities", str(densities)]
    bits = opts.get("bits")
    if bits is not None:
        words += ["--bits", ",".join(map(str, bits)) if isinstance(bits, list | tuple)
                  else str(bits)]
    defaults = {"hardware": "eyeriss", "compression": "significance-map",
                "compression_levels": "dram", "gating": "either"}
    for key, default in defaults.items():
        if str(opts.get(key, default)) != default:
            words += ["--" + key.replace("_", "-"), str(opts[key])]
    return shlex.join(words)


def densities_of_report_file(path: Path) -> dict[str, dict[str, float]]:
    """The per-layer densities in an energy report JSON (``energy-pruned.json``).

    Raises:
        InputError: the file is missing or not an energy report.
    """
    try:
        layers = json.loads(path.read_text())["layers"]
        return {str(item["name"]): {k: float(item["density"][k])
                                    for k in ("weights", "ifmaps", "ofmaps")}
                for item in layers}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path}: not a readable energy report ({type(err).__name__}); "
                         "cannot export the run") from None

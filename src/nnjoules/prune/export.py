"""A pruned model as files that need no nnjoules: a plain module, a state dict, ONNX.

* `save_module`: ``torch.save`` of the model as a `torch.fx.GraphModule`. Its forward
  code is stored in the file and its submodules are torch's own (``Conv2d``,
  ``BatchNorm2d``, ...), so ``torch.load(path, weights_only=False)`` rebuilds it on a
  machine without nnjoules (tested in a process that cannot import nnjoules). Weight
  masks are folded in first, on a copy. A model that torch.fx cannot trace (Python
  control flow on tensor values) is saved as itself: loading it then needs its classes.
* `save_state_dict`: the plain state dict with the new (smaller) shapes, readable with
  ``torch.load(path, weights_only=True)`` and loadable into that module.
* `export_onnx`: ONNX through torch's exporter (``torch.export``, one file, a dynamic
  batch dimension). Its convolution and Gemm/MatMul nodes are renamed to the module paths
  that nnjoules' reports use, and `layer_densities` gives the densities pruning measured
  on real images per layer, so that ``nnjoules estimate FILE.onnx --batch N --densities
  FILE.densities.json`` reproduces the energy the pruning result reported (with the
  same ``--bits``, ``--compression`` and ``--gating``; under ``--compression rlc`` the
  run-length statistics are not in the file, and estimate assumes independent zeros).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnjoules.errors import InputError
from nnjoules.io import write_bytes_atomic, write_text_atomic
from nnjoules.report.energy_report import EnergyReport

NODE_TYPES = ("Conv", "Gemm", "MatMul")  # the ONNX nodes nnjoules reports as layers


def plain_copy(model: nn.Module) -> nn.Module:
    """A CPU copy in eval mode with every weight mask folded into its weight."""
    from nnjoules.prune.masks import clone, make_permanent

    return make_permanent(clone(model)).cpu().eval()


def plain_module(model: nn.Module) -> tuple[nn.Module, bool]:
    """(``model`` as a self-contained `torch.fx.GraphModule`, True), or (a plain copy,
    False) when torch.fx cannot trace it."""
    plain = plain_copy(model)
    try:
        traced = torch.fx.symbolic_trace(plain)
    except Exception:  # noqa: BLE001  (tracing fails in many ways on user code)
        return plain, False
    shape = getattr(plain, "input_shape", None)
    if isinstance(shape, tuple):
        setattr(traced, "input_shape", shape)  # noqa: B010  (nn.Module's typed setattr)
    return traced.eval(), True


def save_module(path: Path, model: nn.Module) -> bool:
    """Write ``torch.save`` of the model (atomic); True when the file needs no nnjoules
    (nor the model's own classes) to load (see the module doc)."""
    module, standalone = plain_module(model)
    buffer = io.BytesIO()
    torch.save(module, buffer)
    write_bytes_atomic(path, buffer.getvalue())
    return standalone


def save_state_dict(path: Path, model: nn.Module) -> None:
    """Write the plain state dict (masks folded in, new shapes, CPU tensors; atomic)."""
    state = {k: v.detach().clone() for k, v in plain_copy(model).state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def export_onnx(model: nn.Module, path: Path, input_shape: tuple[int, ...]) -> Path:
    """Write ``model`` as ONNX with a dynamic batch; layer nodes named by module path.

    Args:
        model: the (pruned) model; masks are folded in on a copy.
        path: the ``.onnx`` file to write (atomic, one file: weights inside).
        input_shape: one item's shape, e.g. ``(1, 28, 28)``.

    Raises:
        InputError: torch cannot export the model (the message says why), or its ONNX
            layers do not match the model's (the names are then not given).
    """
    import onnx

    from nnjoules.energy.extract import extract_workload

    plain = plain_copy(model)
    example = torch.zeros(2, *input_shape)
    exported = path.with_name(path.name + ".part")
    try:
        with _quiet_torch():
            torch.onnx.export(plain, (example,), str(exported), dynamo=True,
                              external_data=False, input_names=["images"],
                              output_names=["logits"], verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},))
        graph = onnx.load(str(exported))
    except Exception as err:  # noqa: BLE001  (the exporter raises many kinds)
        raise InputError("cannot export the model to ONNX (torch.export must trace it: no "
                         f"Python control flow on tensor values): {_first_sentence(err)}"
                         ) from None
    finally:
        exported.unlink(missing_ok=True)
    expected = extract_workload(plain, example[:1]).layers
    _name_layers(graph, [layer.name for layer in expected], path)
    buffer = io.BytesIO()
    onnx.save(graph, buffer)
    write_bytes_atomic(path, buffer.getvalue())
    written = extract_workload(path, batch=1, measure_density=False).layers
    if [_shape(a) for a in written] != [_shape(b) for b in expected]:
        path.unlink()
        raise InputError(f"{path}: the exported ONNX layers differ from the model's")
    return path


@contextlib.contextmanager
def _quiet_torch() -> Iterator[None]:
    """The exporter's own log lines and graph dumps (on failure) kept from the user: the
    error names what failed in one line."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _first_sentence(err: Exception) -> str:
    """``TypeName: first sentence`` of an exporter error, without terminal colour codes."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    first = text.splitlines()[0] if text else ""
    first = first.split(". ")[0].rstrip(".")
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def _shape(layer: Any) -> tuple[Any, ...]:
    return (layer.name, layer.kind, layer.M, layer.C, layer.G, layer.H, layer.W, layer.R,
            layer.S, layer.E, layer.F)


def _name_layers(graph: Any, names: list[str], path: Path) -> None:
    """Rename the layer nodes (in graph order) to ``names`` (the model's, in call order)."""
    nodes = [n for n in graph.graph.node if n.op_type in NODE_TYPES]
    if len(nodes) != len(names):
        raise InputError(f"{path}: the exported graph has {len(nodes)} convolution and "
                         f"matrix nodes, the model {len(names)} layers")
    for node, name in zip(nodes, names, strict=True):
        node.name = name


def layer_densities(report: EnergyReport) -> dict[str, dict[str, float]]:
    """Per layer, the densities ``report`` was costed with, in the form of ``nnjoules
    estimate --densities``: ``{"layer": {"weights": w, "ifmaps": i, "ofmaps": o}}``."""
    return {item.name: {"weights": item.layer.density.weights,
                        "ifmaps": item.layer.density.ifmaps,
                        "ofmaps": item.layer.density.ofmaps} for item in report.layers}


def write_densities(path: Path, report: EnergyReport) -> None:
    """Write `layer_densities` as JSON (atomic)."""
    write_text_atomic(path, json.dumps(layer_densities(report), indent=2) + "\n")


def densities_path(onnx_path: Path) -> Path:
    """``pruned.onnx`` -> ``pruned.densities.json`` beside it."""
    return onnx_path.with_name(onnx_path.stem + ".densities.json")

"""Workload extraction: from an ``nn.Module`` run on sample inputs, or from an ONNX file.

``extract_workload`` picks the reader; `torch_capture` and `onnx_import` hold one small
handler per operator, `sparsity` the density and run-length statistics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from nnjoules.energy.extract.onnx_import import workload_from_onnx as workload_from_onnx
from nnjoules.energy.extract.sparsity import density as density
from nnjoules.energy.extract.sparsity import (
    expected_rlc_pairs_per_value as expected_rlc_pairs_per_value,
)
from nnjoules.energy.extract.sparsity import rlc_pairs_per_value as rlc_pairs_per_value
from nnjoules.energy.extract.torch_capture import workload_from_module as workload_from_module
from nnjoules.energy.workload import Workload
from nnjoules.errors import InputError

__all__ = ["density", "expected_rlc_pairs_per_value", "extract_workload", "rlc_pairs_per_value",
           "workload_from_module", "workload_from_onnx"]


def extract_workload(model: nn.Module | str | Path,
                     example_inputs: Tensor | tuple[Tensor, ...] | None = None, *,
                     name: str | None = None, batch: int | None = None,
                     input_shape: tuple[int, ...] | None = None,
                     measure_density: bool = True, seed: int = 0) -> Workload:
    """The workload of a module (run on sample inputs) or of an ONNX file.

    Args:
        model: an ``nn.Module``, or the path of an ``.onnx`` file.
        example_inputs: inputs to run the model on (for ONNX, one per graph input, in
            order); their values set the measured densities and their shapes the layers'.
        name: the workload name (default: the class name, or the file name).
        batch: without ``example_inputs``, the batch of the generated input (default 1);
            for ONNX, the size of a dynamic batch dimension (a fixed one must agree).
        input_shape: one input's shape without the batch, e.g. ``(3, 224, 224)``, when no
            ``example_inputs`` are given; for ONNX it fills the first graph input's
            dynamic dimensions (fixed ones must agree).
        measure_density: measure operand densities and run-length statistics (ONNX:
            weights from the initializers, activations by running the graph with ONNX
            Runtime); when False every density is 1.0.
        seed: seed of generated inputs: standard normal values from a
            ``torch.Generator`` seeded with it.

    Raises:
        InputError: a module without ``example_inputs`` or ``input_shape``, options that
            contradict an ONNX graph, or a model of another type.
        ModelLoadError: see `workload_from_module` and `workload_from_onnx`.
    """
    if isinstance(model, nn.Module):
        if example_inputs is None:
            if input_shape is None:
                raise InputError("a module needs example_inputs or an input_shape to run on")
            generator = torch.Generator().manual_seed(seed)
            example_inputs = torch.randn((batch or 1, *input_shape), generator=generator)
        return workload_from_module(model, example_inputs, name=name,
                                    measure_density=measure_density)
    if isinstance(model, str | Path):
        arrays = None if example_inputs is None else _arrays(model, example_inputs)
        return workload_from_onnx(model, batch=batch, input_shape=input_shape, name=name,
                                  measure_density=measure_density, inputs=arrays, seed=seed)
    raise InputError(f"cannot extract a workload from a {type(model).__name__}: give an "
                     "nn.Module or the path of an .onnx file")


def _arrays(model: str | Path, example_inputs: object) -> list[np.ndarray]:
    """Example inputs for an ONNX graph as numpy arrays (tensors or arrays accepted)."""
    items = example_inputs if isinstance(example_inputs, tuple | list) else (example_inputs,)
    arrays = []
    for k, item in enumerate(items):
        if isinstance(item, Tensor):
            arrays.append(item.detach().cpu().numpy())
        elif isinstance(item, np.ndarray):
            arrays.append(item)
        else:
            raise InputError(f"example input {k} for the ONNX file {str(model)!r} is a "
                             f"{type(item).__name__}: give tensors or numpy arrays")
    return arrays

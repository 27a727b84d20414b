"""Workload extraction: from an ``nn.Module`` run on sample inputs, or from an ONNX file.

``extract_workload`` picks the reader; `torch_capture` and `onnx_import` hold one small
handler per operator, `sparsity` the density and run-length statistics.
"""

from __future__ import annotations

from pathlib import Path

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
                     name: str | None = None, batch: int = 1,
                     input_shape: tuple[int, ...] | None = None,
                     measure_density: bool = True) -> Workload:
    """The workload of a module (run on sample inputs) or of an ONNX file.

    Args:
        model: an ``nn.Module``, or the path of an ``.onnx`` file.
        example_inputs: inputs to run a module on; their values set the measured
            densities. Not used with ONNX files.
        name: the workload name (default: the class name, or the file name).
        batch: for a module without ``example_inputs``, the batch of the random input;
            for ONNX, the size given to a dynamic batch dimension.
        input_shape: one input's shape without the batch, e.g. ``(3, 224, 224)``. For a
            module without ``example_inputs`` the input is drawn from a standard normal
            distribution with seed 0; for ONNX it overrides the graph's input shape.
        measure_density: measure operand densities and run-length statistics (weights
            only, for ONNX); when False every density is 1.0.

    Raises:
        InputError: a module without ``example_inputs`` or ``input_shape``, example
            inputs given with an ONNX file, or a model of another type.
        ModelLoadError: see `workload_from_module` and `workload_from_onnx`.
    """
    if isinstance(model, nn.Module):
        if example_inputs is None:
            if input_shape is None:
                raise InputError("a module needs example_inputs or an input_shape to run on")
            generator = torch.Generator().manual_seed(0)
            example_inputs = torch.randn((batch, *input_shape), generator=generator)
        return workload_from_module(model, example_inputs, name=name,
                                    measure_density=measure_density)
    if isinstance(model, str | Path):
        if example_inputs is not None:
            raise InputError(f"example_inputs cannot be used with the ONNX file {str(model)!r}: "
                             "its activation densities are not measured")
        return workload_from_onnx(model, batch=batch, input_shape=input_shape, name=name,
                                  measure_density=measure_density)
    raise InputError(f"cannot extract a workload from a {type(model).__name__}: give an "
                     "nn.Module or the path of an .onnx file")

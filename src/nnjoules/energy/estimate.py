"""Orchestration only: workload -> mapping -> access counts -> energy and time -> report."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

from nnjoules.energy.cost import (
    Compression,
    CompressionLevels,
    Gating,
    energy_of,
    parse_rule,
)
from nnjoules.energy.dataflows import DEFAULT_DATAFLOW, get_dataflow
from nnjoules.energy.dataflows.base import Dataflow, DataflowMapping, lower_to_fc
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.hardware.catalog import preset_hint
from nnjoules.energy.results import LayerEstimate
from nnjoules.energy.timing import layer_timing
from nnjoules.energy.workload import Density, Layer, Precision, Workload
from nnjoules.errors import InputError, MappingError
from nnjoules.report.energy_report import EnergyReport

ModelLike = Any  # nn.Module | str | Path | Workload (torch is imported only when needed)


def estimate(model: ModelLike, example_inputs: Any = None, *, hardware: str | Path | Hardware
             = "eyeriss", batch: int | None = None, bits: int | Precision | None = None,
             input_shape: tuple[int, ...] | None = None,
             compression: Compression | str = Compression.SIGNIFICANCE_MAP,
             gating: Gating | str = Gating.EITHER,
             compression_levels: CompressionLevels | str = CompressionLevels.DRAM,
             densities: MappingABC[str, Density | MappingABC[str, float]] | None = None,
             measure_density: bool = True, name: str | None = None, seed: int = 0,
             dataflow: str | Dataflow = DEFAULT_DATAFLOW,
             progress: Callable[[Layer], None] | None = None) -> EnergyReport:
    """Estimate the energy of running ``model`` on ``hardware``.

    Args:
        model: a ``torch.nn.Module``, a path to an ``.onnx`` file, or a `Workload`.
        example_inputs: inputs to run the model on (their batch is N); activation
            densities are measured from them. For an ONNX file: one tensor or array per
            graph input, in order.
        hardware: a preset name (``"eyeriss"``, ``"eyeriss-isca2016"``), a YAML file
            or a `Hardware`.
        batch: N when inputs are generated from ``input_shape`` or for an ONNX file's
            dynamic batch (default 1); an ONNX file's fixed batch must agree.
        bits: one bit-width for weights, ifmaps and ofmaps, or a `Precision`; default
            the hardware's ``word_bits`` for a module or ONNX file (a `Workload` keeps
            its own).
        input_shape: per-item input shape, e.g. ``(3, 224, 224)``, when no
            ``example_inputs`` are given (ONNX: the first input's, for its dynamic
            dimensions; fixed ones must agree).
        compression: DRAM compression of zeros: ``"none"``, ``"significance-map"``
            (default, the analytical tool's rule) or ``"rlc"``.
        gating: which zeros skip a MAC: ``"either"`` operand (default, the
            analytical tool), ``"ifmap"`` only (the Eyeriss chip), ``"none"``, or
            ``"compressed-weights"`` (as ``"either"``, and zero weights are never read
            nor paired with an ifmap; Eyeriss v2).
        compression_levels: which moves carry compressed weights and ifmaps:
            ``"dram"`` (default), ``"dram,glb"`` or ``"all"`` (DRAM, GLB and array).
        densities: per-layer overrides, by layer name: a `Density` or a dict of
            its fields (``{"weights": 0.3}``); unnamed fields keep measured values,
            except ``weights_row_peak`` (the densest filter row, which sizes compressed
            weight tiles), which falls to 1.0 (no bound) when ``weights`` is given alone.
        measure_density: measure weight and activation densities from the model (an
            ONNX graph is run with ONNX Runtime; if it cannot run, activations are taken
            as dense and ``report.workload.notes`` says so).
        name: the network's name in the report.
        seed: seed of the inputs generated when no ``example_inputs`` are given
            (standard normal, from ``torch.Generator().manual_seed(seed)``).
        dataflow: the dataflow's name (see `nnjoules.energy.dataflows.DATAFLOWS`) or a
            `Dataflow` plug-in; default ``"row-stationary"``.
        progress: called with each layer before it is mapped (for progress bars).

    Returns:
        The `EnergyReport`.

    Raises:
        InputError: bad options (an unknown dataflow among them) or a model that cannot
            be read.
        MappingError: a layer fits no legal mapping on the hardware.
    """
    from nnjoules.energy.hardware.loading import load_hardware

    hw = load_hardware(hardware)
    flow = get_dataflow(dataflow)
    compression = parse_rule(Compression, compression, "compression")
    gating = parse_rule(Gating, gating, "gating")
    levels = parse_rule(CompressionLevels, compression_levels, "compression levels")
    workload = _workload(model, example_inputs, batch=batch, input_shape=input_shape,
                         measure_density=measure_density, name=name, seed=seed)
    if bits is None and not isinstance(model, Workload) and hw.word_bits != 16:
        bits = hw.word_bits  # a model's operands take the hardware's word width
    if bits is not None:
        workload = workload.with_precision(_precision(bits))
    if densities:
        workload = workload.with_densities(_densities(workload, densities))
    return estimate_workload(workload, hw, compression=compression, gating=gating,
                             compression_levels=levels, dataflow=flow, progress=progress)


def estimate_workload(workload: Workload, hw: Hardware, *,
                      compression: Compression | str = Compression.SIGNIFICANCE_MAP,
                      gating: Gating | str = Gating.EITHER,
                      compression_levels: CompressionLevels | str = CompressionLevels.DRAM,
                      dataflow: str | Dataflow = DEFAULT_DATAFLOW,
                      progress: Callable[[Layer], None] | None = None) -> EnergyReport:
    """Map, count and cost every layer of ``workload`` on ``hw`` under ``dataflow``.

    Args:
        workload: the layers, with their densities and bit-widths.
        hw: the accelerator; its unit (normalised or pJ) is every energy's unit.
        compression: how zeros are compressed in moves (docs/model.md §5), as the enum
            or its value (``"none"``, ``"significance-map"``, ``"rlc"``).
        gating: which zero operands skip a MAC (enum or value, as for `estimate`).
        compression_levels: which moves carry compressed weights and ifmaps (enum or
            value).
        dataflow: a registered name (see `nnjoules.energy.dataflows`) or a plug-in.
        progress: called with each layer as it is reached, before its search.

    Returns:
        The report: energy per layer, level and operand in ``hw``'s unit; cycles and
        seconds at ``hw.clock_mhz``.

    Raises:
        InputError: an unknown dataflow name or rule.
        MappingError: a layer fits no legal mapping on the hardware.
    """
    flow = get_dataflow(dataflow)
    compression = parse_rule(Compression, compression, "compression")
    gating = parse_rule(Gating, gating, "gating")
    compression_levels = parse_rule(CompressionLevels, compression_levels, "compression levels")
    results = []
    # Repeated blocks (ViT's encoder layers, ResNet's bottlenecks) often repeat a layer
    # exactly; the search depends on nothing but these, so it runs once for each.
    searched: dict[tuple[object, ...], tuple[DataflowMapping, bool]] = {}
    rules = (compression, gating, compression_levels)
    for layer in workload.layers:
        if progress is not None:
            progress(layer)
        key = (layer.shape_key, layer.density)
        if key not in searched:
            try:
                searched |= _search_shape(flow, workload, layer, hw, rules, searched)
            except MappingError as err:  # a preset made for another dataflow? say so
                raise MappingError(f"{err}{preset_hint(hw.name, flow.name)}") from None
        mapping, lowered = searched[key]
        mapped = lower_to_fc(layer) if lowered else layer
        assert mapped is not None  # lowered only when lower_to_fc applies
        counts = flow.count_accesses(mapped, mapping)
        timing = layer_timing(flow.compute_cycles(mapped, mapping, hw), counts, mapped, hw,
                              compression, compression_levels)
        results.append(LayerEstimate(
            layer=layer, mapping=mapping, counts=counts,
            energy=energy_of(counts, mapped, hw, compression, gating, compression_levels),
            timing=timing, mapped_as=mapped if lowered else None))
    return EnergyReport(workload=workload, hardware=hw, compression=compression,
                        layers=tuple(results), gating=gating,
                        compression_levels=compression_levels, dataflow=flow.name)


def _search_shape(flow: Dataflow, workload: Workload, layer: Layer, hw: Hardware,
                  rules: tuple[Compression, Gating, CompressionLevels],
                  searched: MappingABC[tuple[object, ...], object],
                  ) -> dict[tuple[object, ...], tuple[DataflowMapping, bool]]:
    """Mappings of ``layer`` and of every later layer of its shape not yet searched.

    Layers of one shape differ only in densities, which mostly only weigh the
    candidates: a dataflow that can (``best_mappings``) searches them together, with the
    result of searching each alone.

    Raises:
        MappingError: ``layer`` fits no mapping (the message names it).
    """
    batched = getattr(flow, "best_mappings", None)
    if batched is None:
        found = flow.best_mapping(layer, hw, *rules)
        return {(layer.shape_key, layer.density): (found.mapping, found.mapped is not layer)}
    same: dict[tuple[object, ...], Layer] = {}
    for other in workload.layers:
        key = (other.shape_key, other.density)
        if other.shape_key == layer.shape_key and key not in searched:
            same.setdefault(key, other)
    try:
        results = batched(list(same.values()), hw, *rules)
    except MappingError:  # some layer of the shape fits no mapping: which one comes first
        found = flow.best_mapping(layer, hw, *rules)
        return {(layer.shape_key, layer.density): (found.mapping, found.mapped is not layer)}
    return {key: (found.mapping, found.mapped is not other)
            for (key, other), found in zip(same.items(), results, strict=True)}


def _workload(model: ModelLike, example_inputs: Any, *, batch: int | None,
              input_shape: tuple[int, ...] | None, measure_density: bool,
              name: str | None, seed: int) -> Workload:
    if batch is not None and (not isinstance(batch, int) or batch < 1):
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    if isinstance(model, Workload):
        if batch is not None or example_inputs is not None or input_shape is not None:
            raise InputError("a Workload already fixes N and its shapes: batch, "
                             "example_inputs and input_shape do not apply to it")
        return model
    from nnjoules.energy.extract import extract_workload

    if example_inputs is not None and batch is not None:
        first = example_inputs[0] if isinstance(example_inputs, (tuple, list)) else example_inputs
        given = int(first.shape[0]) if getattr(first, "ndim", 0) else None
        if given != batch:
            raise InputError(f"batch={batch} but the example inputs have batch {given}: the "
                             "inputs fix N; give inputs of that batch or leave batch out")
    return extract_workload(model, example_inputs, name=name, batch=batch,
                            input_shape=input_shape, measure_density=measure_density,
                            seed=seed)


def _precision(bits: int | Precision) -> Precision:
    if isinstance(bits, Precision):
        return bits
    try:
        return Precision(weight_bits=bits, ifmap_bits=bits, ofmap_bits=bits)
    except ValueError as err:
        raise InputError(f"bits: {err}") from None


def _densities(workload: Workload, given: MappingABC[str, Density | MappingABC[str, float]],
               ) -> dict[str, Density]:
    """Per-layer overrides merged over the measured densities."""
    known = {layer.name: layer for layer in workload.layers}
    out: dict[str, Density] = {}
    for layer_name, value in given.items():
        if layer_name not in known:
            raise InputError(f"densities: no layer named {layer_name!r}; layers are "
                             f"{', '.join(known)}")
        if isinstance(value, Density):
            out[layer_name] = value
            continue
        current = known[layer_name].density
        fields = {"weights", "ifmaps", "ofmaps"}
        unknown = set(value) - fields - {"weights_row_peak"}
        if unknown:
            raise InputError(f"densities.{layer_name}: unknown field(s) {sorted(unknown)}; "
                             f"use {sorted(fields | {'weights_row_peak'})}")
        merged = {f: getattr(current, f) for f in fields} | dict(value)
        # The densest filter row was measured for the old weights: new weights are taken as
        # unbounded (dense rows, 1.0) unless the override gives their peak too.
        if "weights" in value:
            merged.setdefault("weights_row_peak", 1.0)
        else:
            merged.setdefault("weights_row_peak", current.weights_row_peak)
        try:
            # Run-length statistics were measured for the old values; drop the changed ones.
            out[layer_name] = Density(**merged, **{
                f"{f}_rlc_pairs": getattr(current, f"{f}_rlc_pairs")
                for f in fields if f not in value})
        except (TypeError, ValueError) as err:
            raise InputError(f"densities.{layer_name}: {err}") from None
    return out

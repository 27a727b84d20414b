"""What-if sweeps: re-run the estimate over a grid of hardware and workload settings.

The network is extracted once (once per batch size when ``batch`` is swept); every
grid point re-maps that `Workload` on a changed `Hardware`, at a changed `Precision`
or under another DRAM compression. Points run in worker processes when ``jobs > 1``;
results keep the grid's order whatever order they finish in.

Parameters (``--set NAME=V1,V2,...`` on the command line; defined in
:mod:`nnjoules.energy.sweep_params`):

- ``glb_kb``: global buffer size, kB (1 kB = 1024 bytes);
- ``pe_array``: PE array, ``ROWSxCOLS`` (e.g. ``12x14``);
- ``bits``: bit-width of weights, ifmaps and ofmaps; ``weight_bits``, ``ifmap_bits``,
  ``ofmap_bits``: one operand's;
- ``batch``: batch size N (the network is extracted once per value);
- ``compression``: DRAM compression, ``none``, ``significance-map`` or ``rlc``;
- ``dataflow``: the dataflow, by name or ISCA 2016 abbreviation (``RS``, ``WS``, ...);
- ``dram_energy``, ``glb_energy``, ``array_energy``, ``rf_energy``: energy per access
  (read and write) of that level, ``mac_energy`` per MAC, in the hardware's unit;
- ``rf_bytes``: unified register file per PE, bytes; ``rf_weights_bytes``,
  ``rf_ifmaps_bytes``, ``rf_psums_bytes``: split scratch pads per PE, bytes.

``bits`` is applied before ``weight_bits``, ``ifmap_bits`` and ``ofmap_bits``.

Example: a global buffer of 32 kB against 108 kB on one small layer.

    >>> from nnjoules.energy.workload import Layer, LayerKind
    >>> layer = Layer("c", LayerKind.CONV, N=1, M=4, C=3, H=6, W=6, R=3, S=3, E=4, F=4)
    >>> result = sweep(Workload("toy", (layer,)), {"glb_kb": ["32", "108"]})
    >>> [point.settings["glb_kb"] for point in result.points], result.points[0].totals.macs
    ([32, 108], 1728)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, parse_rule
from nnjoules.energy.dataflows import DEFAULT_DATAFLOW, canonical_name
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.sweep_engine import CHUNK_POINTS as CHUNK_POINTS
from nnjoules.energy.sweep_engine import PointOutcome as PointOutcome
from nnjoules.energy.sweep_engine import PointTask as PointTask
from nnjoules.energy.sweep_engine import SweepEngine
from nnjoules.energy.sweep_engine import evaluate_point as evaluate_point
from nnjoules.energy.sweep_params import PARAMETERS as PARAMETERS
from nnjoules.energy.sweep_params import (
    apply_hardware,
    apply_precision,
    compression_of,
    parse_values,
)
from nnjoules.energy.sweep_params import format_value as format_value
from nnjoules.energy.sweep_params import parse_settings as parse_settings
from nnjoules.energy.workload import Workload
from nnjoules.errors import InputError

if TYPE_CHECKING:
    from nnjoules.report.sweep import Sweep

__all__ = ["PARAMETERS", "PointOutcome", "PointTask", "evaluate_point", "evaluate_points",
           "format_value", "iter_outcomes", "parse_settings", "run_points", "sweep"]
# Settings that change the workload's bit-widths (applied by `apply_precision`).
PRECISION_PARAMETERS = ("bits", "weight_bits", "ifmap_bits", "ofmap_bits")


def iter_outcomes(tasks: Iterable[PointTask]) -> Iterator[PointOutcome]:
    """The outcome of every task, in order, as each chunk of points is done (streams)."""
    return SweepEngine().outcomes(tasks)


def evaluate_points(tasks: Sequence[PointTask]) -> list[PointOutcome]:
    """The outcomes of ``tasks``, in order, evaluated together (top level, for workers).

    Each equals `evaluate_point` of its task.
    """
    return SweepEngine().evaluate(tasks)


WorkloadSource = Workload | Callable[[int], Workload]


def sweep(workload: WorkloadSource, grid: Mapping[str, Sequence[Any]], *,
          hardware: str | Path | Hardware = "eyeriss",
          compression: Compression | str = Compression.SIGNIFICANCE_MAP,
          gating: Gating | str = Gating.EITHER,
          compression_levels: CompressionLevels | str = CompressionLevels.DRAM,
          batch: int = 1, jobs: int = 1, dataflow: str = DEFAULT_DATAFLOW,
          progress: Callable[[int, int], None] | None = None) -> Sweep:
    """Estimate ``workload`` at every point of ``grid``.

    Args:
        workload: the network, or a function from batch size to the network (needed to
            sweep ``batch``; it is called once per batch value).
        grid: parameter name -> values (text as on the command line, or typed values);
            see the module docstring for the names. Points are the product, the last
            parameter varying fastest.
        hardware: the base hardware (preset name, YAML file or `Hardware`).
        compression: DRAM compression where ``compression`` is not swept.
        gating: which zero operands skip a MAC (``either``, ``ifmap``, ``none``,
            ``compressed-weights``).
        compression_levels: which moves carry compressed weights and ifmaps (``dram``,
            ``dram,glb``, ``all``).
        batch: the batch size the workload was (or is to be) extracted at.
        jobs: worker processes (1: run here).
        dataflow: the dataflow where ``dataflow`` is not swept, by name or abbreviation
            (see `nnjoules.energy.dataflows`).
        progress: called as ``progress(done, total)`` after each point.

    Returns:
        The `Sweep`, points in grid order. Points where a layer fits no mapping carry
        the error instead of totals.

    Raises:
        InputError: a bad parameter, value, hardware or dataflow, or ``batch`` swept over
            a fixed `Workload`.
    """
    from nnjoules.energy.hardware.loading import load_hardware
    from nnjoules.report.sweep import Sweep, SweepPoint

    if jobs < 1:
        raise InputError(f"jobs must be a positive integer, got {jobs!r}")
    base = load_hardware(hardware)
    dataflow = canonical_name(dataflow)
    base_compression = _compression_input(compression)
    parsed = {name: parse_values(name, list(values)) for name, values in grid.items()}
    if not parsed:
        raise InputError("nothing to sweep: the grid has no parameter")
    points = []  # every hardware is checked before the (slow) extraction
    for combo in itertools.product(*parsed.values()):
        settings = dict(zip(parsed, combo, strict=True))
        points.append((settings, apply_hardware(base, settings), settings.get("batch", batch)))
    workloads = _workloads(workload, parsed.get("batch", (batch,)),
                           batch_swept="batch" in parsed)
    gating = parse_rule(Gating, gating, "gating")
    levels = parse_rule(CompressionLevels, compression_levels, "compression levels")
    # Points at the same batch and bit-widths share one workload (memory stays flat).
    at_precision: dict[tuple[object, ...], Workload] = {}
    tasks = []
    for index, (settings, hw, b) in enumerate(points):
        key = (b, *(settings.get(name) for name in PRECISION_PARAMETERS))
        if key not in at_precision:
            at_precision[key] = apply_precision(workloads[b], settings)
        tasks.append(PointTask(index, at_precision[key], hw,
                               settings.get("compression", base_compression), gating, levels,
                               settings.get("dataflow", dataflow)))
    outcomes = run_points(tasks, jobs=jobs, progress=progress)
    name = next(iter(workloads.values())).name
    return Sweep(network=name, base_hardware=base, compression=base_compression,
                 batch=batch, dataflow=dataflow, parameters=tuple(parsed.items()),
                 points=tuple(SweepPoint(index=o.index, settings=s, hardware=hw, batch=b,
                                         totals=o.totals, error=o.error)
                              for o, (s, hw, b) in zip(outcomes, points, strict=True)))


def _compression_input(value: Compression | str) -> Compression:
    try:
        return compression_of(value)
    except ValueError as err:
        raise InputError(f"compression: {err}") from None


def _workloads(source: WorkloadSource, batches: Sequence[int], *,
               batch_swept: bool) -> dict[int, Workload]:
    if not isinstance(source, Workload):
        return {b: source(b) for b in batches}
    if batch_swept:
        raise InputError(f"workload {source.name!r} is fixed at its batch size: to sweep "
                         "batch, pass a function from batch size to Workload (the CLI does)")
    return {batches[0]: source}


def run_points(tasks: Sequence[PointTask], *, jobs: int,
               progress: Callable[[int, int], None] | None = None) -> list[PointOutcome]:
    """Evaluate ``tasks``, in ``jobs`` processes when > 1; outcomes in task order.

    Each outcome equals `evaluate_point` of its task; the points are evaluated together
    (see :mod:`nnjoules.energy.sweep_engine`), in chunks of ``CHUNK_POINTS`` per process.
    """
    total = len(tasks)
    if jobs == 1 or total <= 1:
        outcomes = []
        for outcome in iter_outcomes(tasks):
            outcomes.append(outcome)
            if progress is not None:
                progress(len(outcomes), total)
        return outcomes
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: workers never inherit torch's threads (fork after threads can deadlock).
    context = multiprocessing.get_context("spawn")
    found: dict[int, PointOutcome] = {}
    # Chunks small enough to keep every worker busy, large enough to share work.
    size = max(1, min(CHUNK_POINTS, -(-total // (4 * jobs))))
    chunks = [tasks[i:i + size] for i in range(0, total, size)]
    with ProcessPoolExecutor(max_workers=min(jobs, len(chunks)), mp_context=context) as pool:
        futures = [pool.submit(evaluate_points, chunk) for chunk in chunks]
        try:
            for future in as_completed(futures):
                for outcome in future.result():
                    found[outcome.index] = outcome
                    if progress is not None:
                        progress(len(found), total)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return [found[task.index] for task in tasks]

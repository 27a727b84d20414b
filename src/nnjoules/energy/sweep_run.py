"""Sweeps of one or more networks over one grid, streamed to a CSV, resumable, scalable.

`sweep_networks` runs the sweep engine (`nnjoules.energy.sweep.sweep`) chunk by chunk
(`nnjoules.energy.sweep_plan`) on an executor (`nnjoules.energy.sweep_exec`: here, local
processes or a Dask cluster). Finished chunks are appended to the CSV as they arrive, in
grid order, so an interrupted sweep leaves a valid partial CSV, and ``resume=True``
evaluates only the points it lacks. The finished CSV, rewritten at the end with the
Pareto column, is byte-identical whatever the executor, the chunk size or the number of
interruptions.

Rows are network-major: every point of the first network (in grid order), then every
point of the next; ``index`` restarts at 0 for each network.

Example: two networks on a two-point grid.

    >>> from dataclasses import replace
    >>> from nnjoules.energy.workload import Layer, LayerKind, Workload
    >>> conv = Layer("c", LayerKind.CONV, N=1, M=4, C=3, H=6, W=6, R=3, S=3, E=4, F=4)
    >>> twice = (conv, replace(conv, name="d"))
    >>> nets = [("a", Workload("a", (conv,))), ("b", Workload("b", twice))]
    >>> a, b = sweep_networks(nets, {"glb_kb": ["32", "108"]})
    >>> [p.totals.macs for p in a.points + b.points]  # 4 x 3 x 3 x 3 x 4 x 4 per conv
    [1728, 1728, 3456, 3456]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnjoules.energy.cost import Compression, CompressionLevels, Gating, parse_rule
from nnjoules.energy.dataflows import DEFAULT_DATAFLOW, get_dataflow
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.sweep_exec import Executor, LocalExecutor, SweepJob, Work
from nnjoules.energy.sweep_params import (
    PARAMETERS,
    apply_hardware,
    compression_of,
    format_value,
    parse_values,
)
from nnjoules.energy.sweep_plan import grid_size, plan_chunks
from nnjoules.energy.workload import Workload
from nnjoules.errors import InputError

if TYPE_CHECKING:
    from nnjoules.report.sweep import Sweep, SweepPoint

MAX_POINTS = 100_000  # more points in all (grid x networks) need force=True (--force)
CHUNK_POINTS = 500  # most points per chunk: one engine call, one append to the CSV

WorkloadSource = Workload | Callable[[int], Workload]
Parameters = tuple[tuple[str, tuple[Any, ...]], ...]


def sweep_networks(networks: Sequence[tuple[str, WorkloadSource]],
                   grid: Mapping[str, Sequence[Any]], *,
                   hardware: str | Path | Hardware = "eyeriss",
                   compression: Compression | str = Compression.SIGNIFICANCE_MAP,
                   gating: Gating | str = Gating.EITHER,
                   compression_levels: CompressionLevels | str = CompressionLevels.DRAM,
                   batch: int = 1, dataflow: str = DEFAULT_DATAFLOW,
                   executor: Executor | None = None,
                   csv: Path | None = None, resume: bool = False,
                   chunk_points: int = CHUNK_POINTS, force: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> list[Sweep]:
    """Estimate every network at every point of ``grid``.

    Args:
        networks: (name, workload) pairs, names unique; a workload may be a function
            from batch size to `Workload` (needed to sweep ``batch``; called once per
            batch value, and not at all for a network whose points a resumed CSV holds).
        grid: parameter name -> values, as for `nnjoules.energy.sweep.sweep`.
        hardware, compression, gating, compression_levels, batch, dataflow: as for that
            function.
        executor: where chunks run; default `LocalExecutor` (this process).
        csv: the CSV to stream the points to (and to resume from), or None.
        resume: continue the sweep whose partial CSV is at ``csv``.
        chunk_points: most points per chunk; with several workers, chunks are made
            smaller so that each worker gets about four.
        force: allow more than `MAX_POINTS` points in all.
        progress: called as ``progress(done, total)`` as points finish (resumed points
            count as done).

    Returns:
        One `Sweep` per network, in the order given, points in grid order.

    Raises:
        InputError: bad parameters, values or hardware settings, a duplicate network
            name, too many points without ``force``, or a CSV that cannot be resumed.
    """
    from nnjoules.energy.hardware.loading import load_hardware
    from nnjoules.report.sweep import Sweep

    parameters = _parameters(grid)
    _check_size(len(networks), parameters, force=force)
    if len({name for name, _ in networks}) != len(networks):
        raise InputError("each network may be swept once: a name is given twice")
    if chunk_points < 1:
        raise InputError(f"chunk size must be a positive integer, got {chunk_points}")
    base = load_hardware(hardware)
    flow = get_dataflow(dataflow).name
    _check_hardware(base, parameters)  # before any (slow) extraction
    try:
        base_compression = compression_of(compression)
    except ValueError as err:
        raise InputError(f"compression: {err}") from None
    templates = [Sweep(network=name, base_hardware=base, compression=base_compression,
                       batch=batch, parameters=parameters, points=(), dataflow=flow)
                 for name, _ in networks]
    done = _restore(templates, csv, resume)
    job_options = (base, base_compression, parse_rule(Gating, gating, "gating"),
                   parse_rule(CompressionLevels, compression_levels, "compression levels"),
                   batch, parameters, flow)
    work: list[tuple[int, Work]] = []
    per_network = grid_size([len(v) for _, v in parameters])
    remaining = per_network * len(networks) - sum(len(p) for p in done)
    executor = executor or LocalExecutor()
    target = chunk_points if executor.workers == 1 else \
        max(1, min(chunk_points, -(-remaining // (4 * executor.workers))))
    for number, (_, source) in enumerate(networks):
        if len(done[number]) == per_network:
            continue
        job = SweepJob(_extract(source, parameters, batch), *job_options)
        work += [(number, (job, chunk)) for chunk in plan_chunks(
            [len(v) for _, v in parameters], len(done[number]), per_network, target)]
    _run(executor, work, templates, done, csv, progress)
    sweeps = [Sweep(network=t.network, base_hardware=base, compression=base_compression,
                    batch=batch, parameters=parameters, points=tuple(points), dataflow=flow)
              for t, points in zip(templates, done, strict=True)]
    if csv is not None:
        write_csv(sweeps, csv)
    return sweeps


def write_csv(sweeps: Sequence[Sweep], path: Path) -> None:
    """Write the finished CSV of ``sweeps`` (network-major, Pareto marked) atomically."""
    from nnjoules.report.summary import rows_to_csv, write_text

    write_text(path, rows_to_csv([row for s in sweeps for row in s.rows()],
                                 sweeps[0].columns()))


def _parameters(grid: Mapping[str, Sequence[Any]]) -> Parameters:
    parsed = tuple((name, parse_values(name, list(values))) for name, values in grid.items())
    if not parsed:
        raise InputError("nothing to sweep: the grid has no parameter")
    return parsed


def _check_size(networks: int, parameters: Parameters, *, force: bool) -> None:
    points = grid_size([len(v) for _, v in parameters]) * networks
    if points == 0:
        raise InputError("the sweep has no point: give at least one network and one value "
                         "per parameter")
    if points > MAX_POINTS and not force:
        sizes = " x ".join(f"{len(v)} {n}" for n, v in parameters)
        nets = f"{networks} network{'s' if networks > 1 else ''}"
        raise InputError(f"the sweep has {points:,} points ({nets} x {sizes}), "
                         f"more than the cap of {MAX_POINTS:,}: give --force to run it")


def _check_hardware(base: Hardware, parameters: Parameters) -> None:
    """Apply every combination of the hardware settings once (InputError if one fails)."""
    swept = [(n, v) for n, v in parameters if PARAMETERS[n].change_hardware is not None]
    for combo in itertools.product(*(values for _, values in swept)):
        apply_hardware(base, dict(zip([n for n, _ in swept], combo, strict=True)))


def _extract(source: WorkloadSource, parameters: Parameters,
             batch: int) -> dict[int, Workload]:
    batches = dict(parameters).get("batch", (batch,))
    if not isinstance(source, Workload):
        return {b: source(b) for b in batches}
    if "batch" in dict(parameters):
        raise InputError(f"workload {source.name!r} is fixed at its batch size: to sweep "
                         "batch, pass a function from batch size to Workload (the CLI does)")
    return {batch: source}


def settings_at(parameters: Parameters, index: int) -> dict[str, Any]:
    """The settings of grid point ``index`` (the last parameter varies fastest)."""
    settings = {}
    for name, values in reversed(parameters):
        index, position = divmod(index, len(values))
        settings[name] = values[position]
    return {name: settings[name] for name, _ in parameters}


def _restore(templates: Sequence[Sweep], csv: Path | None,
             resume: bool) -> list[list[SweepPoint]]:
    """Points already in the CSV (when resuming), else start the CSV with its header."""
    from nnjoules.report.sweep_csv import read_partial, restart_csv, start_csv

    done: list[list[SweepPoint]] = [[] for _ in templates]
    if csv is None:
        if resume:
            raise InputError("--resume needs the CSV of the interrupted sweep (--csv)")
        return done
    columns = templates[0].columns()
    if not resume:
        start_csv(csv, columns)
        return done
    rows = read_partial(csv, columns)
    for row, (number, index) in zip(rows, _expected(templates), strict=False):
        done[number].append(_point_of_row(templates[number], row, index, csv))
    if len(rows) > sum(1 for _ in _expected(templates)):
        raise InputError(f"--resume: {csv} has more rows than this sweep has points")
    restart_csv(csv, columns, rows)  # drops a torn last line before appending
    return done


def _expected(templates: Sequence[Sweep]) -> Iterator[tuple[int, int]]:
    size = grid_size([len(v) for _, v in templates[0].parameters])
    for number in range(len(templates)):
        for index in range(size):
            yield number, index


def _point_of_row(template: Sweep, row: Mapping[str, str], index: int,
                  csv: Path) -> SweepPoint:
    from nnjoules.report.sweep import SweepPoint
    from nnjoules.report.sweep_csv import totals_of_row

    settings = settings_at(template.parameters, index)
    expected = {"index": str(index), "network": template.network} | {
        name: format_value(value) for name, value in settings.items()}
    if "dataflow" not in settings:
        expected["dataflow"] = template.dataflow
    for key, text in expected.items():
        if row[key] != text:
            raise InputError(f"--resume: {csv} row {index} of {template.network} has "
                             f"{key} {row[key]!r} where this sweep has {text!r}: give the "
                             "same models, --set values and --dataflow as before")
    try:
        totals = totals_of_row(row)
    except (ValueError, KeyError) as err:
        raise InputError(f"--resume: {csv} row {index} of {template.network}: "
                         f"bad number ({err})") from None
    return SweepPoint(index=index, settings=settings,
                      hardware=apply_hardware(template.base_hardware, settings),
                      batch=settings.get("batch", template.batch), totals=totals,
                      error=row["error"] or None)


def _run(executor: Executor, work: Sequence[tuple[int, Work]], templates: Sequence[Sweep],
         done: list[list[SweepPoint]], csv: Path | None,
         progress: Callable[[int, int], None] | None) -> None:
    """Run ``work`` and append each chunk's points to ``done`` and the CSV, in order."""
    from nnjoules.report.sweep_csv import append_rows

    total = grid_size([len(v) for _, v in templates[0].parameters]) * len(templates)
    count = [sum(len(points) for points in done)]

    def advance(points: int) -> None:
        count[0] += points
        if progress is not None:
            progress(count[0], total)

    if not work:
        advance(0)
        return
    columns = templates[0].columns()
    results = executor.run([item for _, item in work], advance)
    for (number, _), points in zip(work, results, strict=True):
        done[number].extend(points)
        if csv is not None:
            append_rows(csv, columns, [templates[number].row(p, pareto=None) for p in points])

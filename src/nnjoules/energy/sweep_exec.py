"""Where a sweep's chunks run: here, in local worker processes, or on a Dask cluster.

Every executor evaluates `Chunk`s with the sweep engine (`nnjoules.energy.sweep.sweep`,
one call per chunk) and yields their points in the order the chunks were given,
whatever order they finish in, so every executor writes the same CSV.

- `LocalExecutor(jobs=1)`: in this process;
- `LocalExecutor(jobs=N)`: N spawned worker processes on this machine;
- `DaskExecutor(address)`: the workers of a running Dask distributed scheduler
  (``pip install 'nnjoules[cluster]'`` here and on every worker, same nnjoules version).

Dask rather than Ray: ``dask`` and ``distributed`` are pure Python and a light install
(no compiled core, no separate daemon to start), a cluster is one ``dask scheduler`` and
some ``dask worker ADDRESS`` commands or an existing deployment (Kubernetes, SLURM via
dask-jobqueue), and ``distributed.LocalCluster`` runs in-process for tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from nnjoules.energy.cost import Compression, CompressionLevels, Gating
from nnjoules.energy.dataflows import DEFAULT_DATAFLOW
from nnjoules.energy.hardware import Hardware
from nnjoules.energy.sweep_plan import Chunk, chunk_grid
from nnjoules.energy.workload import Workload
from nnjoules.errors import InputError, NNJoulesError

if TYPE_CHECKING:
    from nnjoules.report.sweep import SweepPoint

CONNECT_TIMEOUT_S = 10.0  # default wait for a Dask scheduler before giving up


@dataclass(frozen=True)
class SweepJob:
    """What every chunk of one network's sweep shares; sent to each worker once.

    Attributes:
        workloads: batch size -> the network extracted at that batch size.
        hardware: the base hardware.
        compression: DRAM compression where it is not swept.
        gating: which zero operands skip a MAC.
        compression_levels: which moves carry compressed data.
        batch: the batch size where ``batch`` is not swept.
        parameters: the whole grid, parameter name and typed values, in order.
        dataflow: the dataflow where ``dataflow`` is not swept.
    """

    workloads: Mapping[int, Workload]
    hardware: Hardware
    compression: Compression
    gating: Gating
    compression_levels: CompressionLevels
    batch: int
    parameters: tuple[tuple[str, tuple[Any, ...]], ...]
    dataflow: str = DEFAULT_DATAFLOW


@dataclass(frozen=True)
class _Extracted:
    """Batch size -> workload, already extracted (picklable, unlike a closure)."""

    workloads: Mapping[int, Workload]

    def __call__(self, batch: int) -> Workload:
        return self.workloads[batch]


def run_chunk(job: SweepJob, chunk: Chunk,
              progress: Callable[[int, int], None] | None = None) -> tuple[SweepPoint, ...]:
    """The points of ``chunk``, indexed in the whole grid (top level: workers import it)."""
    from nnjoules.energy.sweep import sweep

    result = sweep(_Extracted(job.workloads), chunk_grid(job.parameters, chunk),
                   hardware=job.hardware, compression=job.compression, gating=job.gating,
                   compression_levels=job.compression_levels, batch=job.batch, jobs=1,
                   dataflow=job.dataflow, progress=progress)
    return tuple(replace(point, index=chunk.start + point.index) for point in result.points)


Work = tuple[SweepJob, Chunk]


class Executor(Protocol):
    """Runs chunks; ``workers`` is how many it runs at once (for sizing chunks)."""

    workers: int

    def run(self, work: Sequence[Work], progress: Callable[[int], None] | None = None,
            ) -> Iterator[tuple[SweepPoint, ...]]:
        """Each chunk's points, in the order of ``work``; ``progress(points)`` as they
        are evaluated (points of the chunk under way, or of a chunk that finished)."""
        ...


class LocalExecutor:
    """Chunks in this process (``jobs`` 1) or in ``jobs`` spawned processes."""

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise InputError(f"jobs must be a positive integer, got {jobs!r}")
        self.workers = jobs

    def run(self, work: Sequence[Work], progress: Callable[[int], None] | None = None,
            ) -> Iterator[tuple[SweepPoint, ...]]:
        """See `Executor.run`."""
        if self.workers == 1 or len(work) <= 1:
            for job, chunk in work:
                yield run_chunk(job, chunk, None if progress is None else _deltas(progress))
            return
        yield from self._pooled(work, progress)

    def _pooled(self, work: Sequence[Work], progress: Callable[[int], None] | None,
                ) -> Iterator[tuple[SweepPoint, ...]]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: workers never inherit torch's threads (fork after threads can deadlock).
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(work)),
                                   mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_ignore_sigint)
        try:
            futures = [pool.submit(run_chunk, job, chunk) for job, chunk in work]
            for future in futures:
                points = future.result()
                if progress is not None:
                    progress(len(points))
                yield points
        finally:  # an interrupted sweep does not wait for the chunks still queued
            pool.shutdown(wait=True, cancel_futures=True)


def _ignore_sigint() -> None:
    """Ctrl-C reaches the whole process group: the parent alone stops the sweep (and
    cancels the queued chunks); workers finish their chunk instead of printing tracebacks."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _deltas(progress: Callable[[int], None]) -> Callable[[int, int], None]:
    """The engine's ``progress(done, total)`` as ``progress(points since the last call)``."""
    reported = [0]

    def report(done: int, _total: int) -> None:
        progress(done - reported[0])
        reported[0] = done
    return report


class DaskExecutor:
    """Chunks on the workers of the Dask scheduler at ``address``.

    Raises:
        InputError: dask or distributed is not installed, or no scheduler answers at
            ``address`` within ``timeout_s`` seconds.
    """

    def __init__(self, address: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        try:
            from distributed import Client
            from distributed.comm import resolve_address
        except ImportError:
            raise InputError("--executor dask needs the packages dask and distributed: "
                             "pip install 'nnjoules[cluster]'") from None
        try:  # a malformed address fails here, before a half-made Client warns on exit
            resolve_address(address)
        except (OSError, ValueError, TypeError) as err:
            raise InputError(f"--scheduler {address}: not a Dask scheduler address, e.g. "
                             f"tcp://10.0.0.5:8786 ({' '.join(str(err).split())})") from None
        try:
            self.client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as err:
            reason = " ".join(str(err).split()) or type(err).__name__
            raise InputError(f"--scheduler {address}: no Dask scheduler answered within "
                             f"{timeout_s:g} s ({reason})") from None
        self.workers = max(1, sum(self.client.nthreads().values()))

    def run(self, work: Sequence[Work], progress: Callable[[int], None] | None = None,
            ) -> Iterator[tuple[SweepPoint, ...]]:
        """See `Executor.run`."""
        shared: dict[int, Any] = {}
        futures = []
        for job, chunk in work:  # each job travels to the workers once, not per chunk
            if id(job) not in shared:
                shared[id(job)] = self.client.scatter(job, broadcast=True, hash=False)
            futures.append(self.client.submit(run_chunk, shared[id(job)], chunk, pure=False))
        try:
            for future in futures:
                try:
                    points: tuple[SweepPoint, ...] = future.result()
                except ImportError as err:
                    raise NNJoulesError(f"a Dask worker cannot run nnjoules ({err}): install "
                                        "the same nnjoules version on every worker") from None
                if progress is not None:
                    progress(len(points))
                yield points
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        """Disconnect from the scheduler (the cluster keeps running)."""
        self.client.close()


@contextlib.contextmanager
def open_executor(kind: str, *, jobs: int = 1, scheduler: str | None = None,
                  timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Executor]:
    """The executor ``kind`` (``local`` or ``dask``), closed on leaving the block.

    Raises:
        InputError: an unknown kind, ``dask`` without a scheduler address, ``local``
            with one, ``jobs`` with ``dask``, or a scheduler that does not answer.
    """
    if kind == "local":
        if scheduler is not None:
            raise InputError("--scheduler is for --executor dask; the local executor "
                             "uses --jobs")
        yield LocalExecutor(jobs)
        return
    if kind != "dask":
        raise InputError(f"unknown executor {kind!r}; choose local or dask")
    if scheduler is None:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. "
                         "tcp://10.0.0.5:8786)")
    if jobs != 1:
        raise InputError("--jobs is for --executor local; a Dask cluster runs as many "
                         "chunks at once as its workers have threads")
    if not 0 < timeout_s < float("inf"):  # also refuses NaN
        raise InputError(f"--connect-timeout must be a positive number of seconds, got "
                         f"{timeout_s:g}")
    executor = DaskExecutor(scheduler, timeout_s=timeout_s)
    try:
        yield executor
    finally:
        executor.close()

"""Wall-clock CPU latency of a model in torch, per image: what users ask of a smaller model.

The energy model prices an accelerator; this measures the machine the run is on. A
weight-pruned model keeps its shapes (its masks are folded in first: dense kernels run
as fast on zeros), a channel-pruned one is physically smaller. The numbers are the
median over ``runs`` timed runs after ``warmup`` untimed ones; each timed run repeats
the forward pass until it lasts at least ``min_run_s`` so that timer resolution does
not matter. They are noisy: other processes, frequency scaling and the thread count
move them (recorded with them), and they are not comparable across machines.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

NOTE = ("wall-clock time of torch on this machine's CPU, median of several runs after "
        "warm-up; noisy (other processes, frequency scaling) and not comparable across "
        "machines")


@dataclass(frozen=True)
class Latency:
    """Latency of one model at one batch size.

    Attributes:
        batch: images per forward pass.
        ms_per_image: median wall-clock milliseconds of one pass, divided by ``batch``.
        runs: timed runs the median is over.
        threads: torch intra-op threads while timing.
    """

    batch: int
    ms_per_image: float
    runs: int
    threads: int


def cpu_latency(model: nn.Module, input_shape: Sequence[int], *,
                batches: Sequence[int] = (1, 16), runs: int = 7, warmup: int = 2,
                min_run_s: float = 0.02) -> tuple[Latency, ...]:
    """Per-image CPU latency of ``model`` (a CPU copy in eval mode, masks folded in) at
    each batch size, on inputs of ``input_shape`` per image.

    >>> [lat.batch for lat in cpu_latency(nn.Linear(4, 2), (4,), runs=1, min_run_s=0)]
    [1, 16]
    """
    from nnjoules.prune.export import plain_copy

    plain = plain_copy(model)
    gen = torch.Generator().manual_seed(0)
    out = []
    with torch.inference_mode():
        for batch in batches:
            x = torch.randn((batch, *input_shape), generator=gen)
            for _ in range(warmup):
                plain(x)
            repeat = _repeats(plain, x, min_run_s)
            times = []
            for _ in range(runs):
                began = time.perf_counter()
                for _ in range(repeat):
                    plain(x)
                times.append((time.perf_counter() - began) / repeat)
            out.append(Latency(batch=batch, ms_per_image=1e3 * statistics.median(times) / batch,
                               runs=runs, threads=torch.get_num_threads()))
    return tuple(out)


def _repeats(model: nn.Module, x: torch.Tensor, min_run_s: float) -> int:
    """Passes per timed run, so that one run lasts at least ``min_run_s``."""
    began = time.perf_counter()
    model(x)
    once = max(time.perf_counter() - began, 1e-6)
    return max(1, min(1000, int(min_run_s / once) + 1))


def latency_record(dense: Sequence[Latency], pruned: Sequence[Latency]) -> dict[str, Any]:
    """The JSON form kept in a pruning result (``cpu_latency``)."""
    return {"unit": "ms per image", "statistic": "median", "note": NOTE,
            "threads": dense[0].threads if dense else torch.get_num_threads(),
            "dense": [asdict(lat) for lat in dense],
            "pruned": [asdict(lat) for lat in pruned]}


def latency_line(record: dict[str, Any]) -> str:
    """One summary line, e.g. ``batch 1: 0.40 -> 0.21 ms/image (1.90x faster); ...``."""
    cells = []
    for dense, pruned in zip(record["dense"], record["pruned"], strict=True):
        before, after = dense["ms_per_image"], pruned["ms_per_image"]
        cell = f"batch {dense['batch']}: {before:.3g} -> {after:.3g} ms/image"
        if after > 0 and before > 0:  # "0.75x faster" reads badly: say slower
            cell += f" ({before / after:.2f}x faster)" if before >= after else \
                f" ({after / before:.2f}x slower)"
        cells.append(cell)
    runs = record["dense"][0]["runs"] if record["dense"] else 0
    threads = record["threads"]
    return (f"{'; '.join(cells)} (torch, {threads} thread{'s' if threads != 1 else ''}, "
            f"median of {runs} runs; wall-clock on this machine, noisy)")

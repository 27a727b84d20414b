"""Progress on stderr for the long commands: a bar per fine-tuning, a line per round.

Bars (rich) show only when stderr is a terminal; the one-line round summaries are
always written to stderr, so logs of non-interactive runs still tell the story.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Bars:
    """Progress bars and notes; see the module docstring."""

    def __init__(self, progress: Progress | None, console: Console, quiet: bool) -> None:
        self._progress = progress
        self._console = console
        self._quiet = quiet
        self._task: TaskID | None = None
        self.label = "training"

    def batches(self, done: int, total: int) -> None:
        """Callback for `nnjoules.prune.finetune.train`: batch ``done`` of ``total``."""
        if self._progress is None:
            return
        if self._task is None or done == 1:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(self.label, total=total)
        self._progress.update(self._task, completed=done, description=self.label)

    def note(self, text: str) -> None:
        """One line on stderr (above the bars)."""
        if not self._quiet:
            self._console.print(text, highlight=False, soft_wrap=True)


@contextmanager
def bars(*, quiet: bool = False) -> Iterator[Bars]:
    """A `Bars` for the duration of a command."""
    console = Console(file=sys.stderr)
    if not console.is_terminal or quiet:
        yield Bars(None, console, quiet)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        yield Bars(progress, console, quiet)


def round_line(method: str, record: Any, dense_energy: float,
               dense_weights: int | None = None) -> str:
    """``energy-aware round 3: accepted  val 89.12%  non-zero weights 21.4%  energy 0.412x
    dense  (2.1 s)``.

    Args:
        method: the method's label.
        record: the round's `nnjoules.prune.result.StepRecord`.
        dense_energy: the dense model's energy, in the record's unit.
        dense_weights: the dense model's prunable weights, for channel pruning, whose
            records count the weights of the shrunk model (their own density is about
            100 %); None: the record's density.
    """
    verdict = "accepted" if record.accepted else "undone  "
    density = record.density if dense_weights is None else \
        record.nonzero_weights / dense_weights
    return (f"{method} round {record.round}: {verdict} val {100 * record.accuracy:.2f}%  "
            f"non-zero weights {100 * density:.1f}%  energy "
            f"{record.energy / dense_energy:.3f}x dense  ({record.seconds:.1f} s)")


Callback = Callable[[int, int], None]

"""Progress bars on stderr (rich), silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def layer_progress(description: str) -> Iterator[Callable[[Any], None]]:
    """A callback to call once per layer; shows a spinner-bar with the current layer."""
    console = Console(file=sys.stderr)
    if not console.is_terminal:
        yield lambda _layer: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[layer]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None, layer="")

        def advance(layer: Any) -> None:
            bar.update(task, advance=1, layer=getattr(layer, "name", ""))

        yield advance

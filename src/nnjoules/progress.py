"""What the commands tell the user on stderr: progress bars (rich, silent when stderr is not
a terminal) and the files they wrote; and the name a network is shown by."""

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


def wrote(path: Any) -> None:
    """Tell the user a file was written: ``wrote PATH`` on stderr (stdout keeps the tables)."""
    print(f"wrote {path}", file=sys.stderr, flush=True)


def display_name(spec: str) -> str:
    """The network's name as the user typed it: ``resnet18``, ``pkg.nets:build``; an ONNX
    or model file by its name without folder and suffix (``nets/small.onnx`` -> ``small``).

    >>> display_name("resnet18"), display_name("pkg.nets:build"), display_name("a/b.onnx")
    ('resnet18', 'pkg.nets:build', 'b')
    >>> display_name("runs/lenet.pt")
    'lenet'
    """
    from pathlib import Path

    return Path(spec).stem if spec.lower().endswith((".onnx", ".pt")) else spec

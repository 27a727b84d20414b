"""Resumable pruning state: one file per run folder, replaced atomically after each step.

``DIR/pruner-state.pt`` holds the configuration, the round counter, the backoff state,
the history and the current (last accepted) model with its masks; a reader never sees
half a file (`nnjoules.io.write_bytes_atomic`), so a kill at any moment leaves the
state of the last finished step. Loading uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from nnjoules.errors import InputError
from nnjoules.io import write_bytes_atomic

STATE_FILE = "pruner-state.pt"
FORMAT_VERSION = 1


def save_checkpoint(folder: Path, payload: dict[str, Any], name: str = STATE_FILE) -> Path:
    """Write ``payload`` (tensors, numbers, strings, lists, dicts) to ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({"format": FORMAT_VERSION, **payload}, buffer)
    path = folder / name
    write_bytes_atomic(path, buffer.getvalue())
    return path


def load_checkpoint(folder: Path, name: str = STATE_FILE) -> dict[str, Any]:
    """The payload saved in ``folder/name``.

    Raises:
        InputError: no such folder or file, or a file of another format.
    """
    path = Path(folder) / name
    if not path.is_file():
        raise InputError(f"{folder}: no pruning checkpoint here (expected {name})")
    data = safe_load(path, "a readable checkpoint")
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise InputError(f"{path}: unknown checkpoint format")
    return data


def load_run_file(folder: Path, name: str, ident: dict[str, Any] | None) -> dict[str, Any]:
    """`load_checkpoint`, refused when the file belongs to another run than ``ident``
    (see `nnjoules.prune.runfolder.check_identity`; None: no check)."""
    from nnjoules.prune.runfolder import check_identity

    data = load_checkpoint(folder, name)
    if ident is not None:
        check_identity(Path(folder) / name, data.get("run"), ident)
    return data


def safe_load(source: Path | io.BytesIO, what: str, label: Path | None = None) -> Any:
    """``torch.load(weights_only=True)`` of ``source``; a failure is one line that names
    the file and says why (never torch's advice to load with ``weights_only=False``,
    which would run whatever code the file holds).

    Raises:
        InputError: ``"{path}: not {what} (reason)"`` (``label``: the path of bytes).
    """
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds (KeyError on junk, EOFError ...)
        raise InputError(f"{label or source}: not {what} ({load_failure(err)})") from None


def load_failure(err: BaseException) -> str:
    """Why ``torch.load`` failed, in a few words on one line."""
    if isinstance(err, pickle.UnpicklingError):
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        kind = f"an object of type {found.group(1)}" if found else "Python objects"
        return (f"it holds {kind}; only tensors and plain values are loaded, since "
                "loading anything else could run code from the file")
    if isinstance(err, EOFError):
        return "the file is empty or cut short"
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, KeyError) or not first:
        return f"unreadable data ({type(err).__name__})"
    return first.split(". ")[0][:200]  # torch's first sentence; the rest is advice

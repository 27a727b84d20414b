"""Resumable pruning state: one file per run folder, replaced atomically after each step.

``DIR/pruner-state.pt`` holds the configuration, the round counter, the backoff state,
the history and the current (last accepted) model with its masks; a reader never sees
half a file (`nnjoules.io.write_bytes_atomic`), so a kill at any moment leaves the
state of the last finished step. Loading uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import pickle
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
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise InputError(f"{path}: not a readable checkpoint ({err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise InputError(f"{path}: unknown checkpoint format")
    return data

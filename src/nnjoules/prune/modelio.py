"""Model files of ``nnjoules train`` and ``nnjoules prune``, and resolving a model spec.

A model file is a ``torch.save`` of ``{"format": "nnjoules-model", "model": NAME,
"num_classes": K, "in_channels": C, "state_dict": ..., "info": {...}}``, NAME a built-in
model; the state dict of a pruned model keeps its masks (``weight_orig``/``weight_mask``).
Every model file gets a JSON sidecar ``<file>.json`` with ``info`` and the SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnjoules.errors import InputError
from nnjoules.io import write_bytes_atomic, write_text_atomic
from nnjoules.models.builtin import build_model
from nnjoules.prune.checkpoint import safe_load
from nnjoules.prune.masks import check_state, load_masked_state, masked_state_dict

FORMAT = "nnjoules-model"


def save_model(path: Path, model: nn.Module, *, name: str, num_classes: int,
               in_channels: int = 1, info: dict[str, Any] | None = None,
               half: bool = False, cuts: list[dict[str, list[int]]] | None = None) -> str:
    """Write a model file and its sidecar (atomic); returns the SHA-256 of the file.

    ``cuts``: the channels channel pruning removed, per accepted round (root module path
    -> channel indices); loading rebuilds the architecture by replaying them."""
    state = masked_state_dict(model)
    if half:
        state = {k: v.half() if v.is_floating_point() and not k.endswith("_mask") else v
                 for k, v in state.items()}
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "model": name, "num_classes": num_classes,
                "in_channels": in_channels, "state_dict": state, "info": info or {},
                "cuts": list(cuts or [])}, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    sidecar = {"model": name, "num_classes": num_classes, "in_channels": in_channels,
               "sha256": digest, "bytes": len(data), **(info or {})}
    write_text_atomic(path.with_name(path.name + ".json"), json.dumps(sidecar, indent=2) + "\n")
    return digest


def load_model_file(path: Path) -> tuple[str, nn.Module, dict[str, Any]]:
    """(name, model in eval mode, info) from a model file.

    The SHA-256 in the sidecar ``<file>.json`` (when there is one) must match the file;
    masks must hold only 0 and 1, weights must be finite.

    Raises:
        InputError: missing, foreign, altered or damaged file; names the file (and layer).
    """
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    data = path.read_bytes()
    _check_sidecar(path, hashlib.sha256(data).hexdigest())
    saved = safe_load(io.BytesIO(data), "a model file of nnjoules", path)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise InputError(f"{path}: not a model file of nnjoules (written by `nnjoules train` "
                         "or `nnjoules prune`)")
    try:
        name, classes, channels = (str(saved["model"]), int(saved["num_classes"]),
                                   int(saved["in_channels"]))
        raw = dict(saved["state_dict"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: damaged model file (entry {err} missing or unusable)") \
            from None
    if not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise InputError(f"{path}: damaged model file (its state_dict holds non-tensors)")
    model = build_model(name, num_classes=classes, in_channels=channels)
    _replay_cuts(path, model, saved.get("cuts", []), channels)
    state = {k: v.float() if v.is_floating_point() else v for k, v in raw.items()}
    try:
        check_state(state)
        load_masked_state(model, state)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
    return name, model.eval(), dict(saved.get("info", {}))


def _replay_cuts(path: Path, model: nn.Module, cuts: Any, in_channels: int) -> None:
    """Shrink the built architecture as channel pruning did (see `save_model`)."""
    if not cuts:
        return
    from nnjoules.prune.structure import remove_channels

    example = torch.zeros(2, in_channels, *getattr(model, "input_shape", (0, 28, 28))[1:])
    try:
        for round_cuts in cuts:
            remove_channels(model, example, {str(k): [int(c) for c in v]
                                             for k, v in dict(round_cuts).items()})
    except (InputError, TypeError, ValueError, AttributeError) as err:
        raise InputError(f"{path}: damaged model file (its channel cuts: {err})") from None


def _check_sidecar(path: Path, digest: str) -> None:
    """Compare ``digest`` with the SHA-256 that ``<path>.json`` records (if it exists)."""
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        return
    try:
        expected = json.loads(sidecar.read_text()).get("sha256")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as err:
        raise InputError(f"{sidecar}: not a readable sidecar ({type(err).__name__})") from None
    if expected != digest:
        raise InputError(f"{path}: SHA-256 {digest[:16]}... differs from the {expected!s:.16}"
                         f"... recorded in {sidecar.name}: the file was changed or damaged")


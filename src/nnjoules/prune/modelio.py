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
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnjoules.errors import InputError
from nnjoules.io import write_bytes_atomic, write_text_atomic
from nnjoules.models.builtin import BUILTIN_MODELS, build_model, has_pretrained, pretrained
from nnjoules.prune.masks import load_masked_state, masked_state_dict

FORMAT = "nnjoules-model"


def save_model(path: Path, model: nn.Module, *, name: str, num_classes: int,
               in_channels: int = 1, info: dict[str, Any] | None = None,
               half: bool = False) -> str:
    """Write a model file and its sidecar (atomic); returns the SHA-256 of the file."""
    state = masked_state_dict(model)
    if half:
        state = {k: v.half() if v.is_floating_point() and not k.endswith("_mask") else v
                 for k, v in state.items()}
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "model": name, "num_classes": num_classes,
                "in_channels": in_channels, "state_dict": state, "info": info or {}}, buffer)
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

    Raises:
        InputError: missing or foreign file.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise InputError(f"{path}: not a model file of nnjoules ({err})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise InputError(f"{path}: not a model file of nnjoules (written by `nnjoules train` "
                         "or `nnjoules prune`)")
    name = str(saved["model"])
    model = build_model(name, num_classes=int(saved["num_classes"]),
                        in_channels=int(saved["in_channels"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in saved["state_dict"].items()}
    load_masked_state(model, state)
    return name, model.eval(), dict(saved.get("info", {}))


def resolve_trained(spec: str) -> tuple[str, nn.Module]:
    """A trained model from a spec: a model file (``.pt``), a built-in name with a
    shipped checkpoint, or ``package.module:factory`` (the user's trained model).

    Raises:
        InputError: nothing trained can be found for the spec.
    """
    if spec.endswith(".pt") or Path(spec).is_file():
        name, model, _info = load_model_file(Path(spec))
        return name, model
    if spec in BUILTIN_MODELS:
        if not has_pretrained(spec):
            raise InputError(f"no trained checkpoint ships for {spec!r}: train one with "
                             f"`nnjoules train {spec} --out {spec}.pt` and pass {spec}.pt")
        return spec, pretrained(spec)
    if ":" in spec:
        from nnjoules.models import load_model

        loaded = load_model(spec)
        if not isinstance(loaded.model, nn.Module):
            raise InputError(f"{spec}: not a torch module")
        return loaded.name, loaded.model
    raise InputError(f"unknown model {spec!r}: give a model file (.pt), a built-in model "
                     f"({', '.join(BUILTIN_MODELS)}) or package.module:factory")

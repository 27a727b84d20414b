"""Resolve a model spec: a torchvision name, an ``.onnx`` path or ``package.module:factory``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnjoules.errors import ModelLoadError

# Constructor options that keep torchvision models download-free and deterministic.
_TORCHVISION_OPTIONS: dict[str, dict[str, Any]] = {
    "googlenet": {"aux_logits": False, "init_weights": False},
    "inception_v3": {"aux_logits": False, "init_weights": False},
}
_INPUT_SHAPES: dict[str, tuple[int, ...]] = {"inception_v3": (3, 299, 299)}
DEFAULT_INPUT_SHAPE = (3, 224, 224)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to estimate: an ``nn.Module`` or an ONNX path, and its input shape."""

    name: str
    model: Any  # torch.nn.Module | Path
    input_shape: tuple[int, ...] | None  # per item, without the batch; None for ONNX


def load_model(spec: str, *, seed: int = 0) -> LoadedModel:
    """Load ``spec``; torchvision models get random weights from ``seed`` (no download).

    Raises:
        ModelLoadError: the spec names nothing loadable; the message says why.
    """
    if spec.lower().endswith(".onnx"):
        path = Path(spec)
        if path.is_dir():
            raise ModelLoadError(f"{spec}: is a folder, not an ONNX file")
        if not path.is_file():
            raise ModelLoadError(f"{spec}: no such ONNX file")
        return LoadedModel(name=path.stem, model=path, input_shape=None)
    if ":" in spec:
        return _from_factory(spec)
    return _from_torchvision(spec, seed=seed)


def torchvision_names() -> list[str]:
    """Names of torchvision's classification models."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _from_torchvision(name: str, *, seed: int) -> LoadedModel:
    import torch
    import torchvision

    names = torchvision_names()
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelLoadError(f"unknown model {name!r}: not a torchvision classification model, "
                             f"an .onnx path or package.module:factory{hint}")
    torch.manual_seed(seed)
    module = torchvision.models.get_model(name, weights=None, **_TORCHVISION_OPTIONS.get(name, {}))
    return LoadedModel(name=name, model=module.eval(),
                       input_shape=_INPUT_SHAPES.get(name, DEFAULT_INPUT_SHAPE))


def _from_factory(spec: str) -> LoadedModel:
    import torch

    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except ImportError as err:
        raise ModelLoadError(f"{spec}: cannot import {module_name!r} ({err})") from None
    except AttributeError:
        raise ModelLoadError(f"{spec}: module {module_name!r} has no {attr!r}") from None
    model = factory() if callable(factory) and not isinstance(factory, torch.nn.Module) \
        else factory
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(f"{spec}: expected a torch.nn.Module, got {type(model).__name__}")
    shape = getattr(model, "input_shape", None)
    return LoadedModel(name=attr, model=model.eval(),
                       input_shape=tuple(shape) if shape is not None else None)

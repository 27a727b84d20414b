"""Resolve a model spec: a torchvision name, an ``.onnx`` path, a ``.pt`` model file of
``nnjoules train``/``prune``, or ``package.module:factory`` (or ``file.py:factory``)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nnjoules.errors import InputError, ModelLoadError

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
    if spec.lower().endswith(".pt"):
        return _from_model_file(Path(spec))
    if ":" in spec:
        return _from_factory(spec)
    from nnjoules.models.builtin import BUILTIN_MODELS

    if spec in BUILTIN_MODELS:
        return _from_builtin(spec, seed=seed)
    return _from_torchvision(spec, seed=seed)


def _from_builtin(name: str, *, seed: int) -> LoadedModel:
    """A built-in network (`nnjoules.models.builtin`): its shipped trained weights when a
    checkpoint ships, else random weights from ``seed``."""
    import torch

    from nnjoules.models.builtin import build_model, has_pretrained, pretrained

    if has_pretrained(name):
        module = pretrained(name)
    else:
        torch.manual_seed(seed)
        module = build_model(name)
    return LoadedModel(name=name, model=module.eval(),
                       input_shape=tuple(getattr(module, "input_shape", (1, 28, 28))))


def torchvision_names() -> list[str]:
    """Names of torchvision's classification models."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _from_torchvision(name: str, *, seed: int) -> LoadedModel:
    import torch
    import torchvision

    names = torchvision_names()
    if name not in names and Path(name).is_dir():  # e.g. a prune run folder
        inside = Path(name) / "model.pt"
        hint = f"; give its model file, {inside}" if inside.is_file() else ""
        raise ModelLoadError(f"{name}: is a folder, not a model{hint}")
    if name not in names:
        import difflib

        from nnjoules.models.builtin import BUILTIN_MODELS

        close = difflib.get_close_matches(name, [*BUILTIN_MODELS, *names], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ModelLoadError(f"unknown model {name!r}: not a built-in network "
                             f"({', '.join(BUILTIN_MODELS)}), a torchvision classification "
                             f"model, an .onnx or .pt path or package.module:factory{hint}")
    torch.manual_seed(seed)
    module = torchvision.models.get_model(name, weights=None, **_TORCHVISION_OPTIONS.get(name, {}))
    return LoadedModel(name=name, model=module.eval(),
                       input_shape=_INPUT_SHAPES.get(name, DEFAULT_INPUT_SHAPE))


def _from_model_file(path: Path) -> LoadedModel:
    """A model file written by ``nnjoules train`` or ``nnjoules prune`` (masks applied)."""
    from nnjoules.prune.modelio import load_model_file

    try:
        _name, model, _info = load_model_file(path)
    except InputError as err:
        sibling = path.with_name("model.pt")
        if path.name == "model-module.pt" and sibling.is_file():  # the export for torch alone
            raise ModelLoadError(f"{err}; estimate the run's {sibling} instead") from None
        raise
    except Exception as err:  # a damaged file: the unpickler or the state dict fails anyhow
        raise ModelLoadError(f"{path}: not a model file of nnjoules, or a damaged one "
                             f"({_one_line(err)})") from None
    return LoadedModel(name=path.stem, model=model,
                       input_shape=_input_shape(str(path), model))


def _from_factory(spec: str) -> LoadedModel:
    """Import ``package.module`` (or a ``.py`` file) and call its ``factory()``.

    The user's code runs here: whatever it raises, ``SystemExit`` included, becomes one
    `ModelLoadError` line naming the spec, never a traceback or a silent exit.
    """
    import torch

    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr.isidentifier():
        raise ModelLoadError(f"{spec}: expected package.module:factory or file.py:factory, "
                             "with the factory's name after the colon")
    module = _import_user_module(spec, module_name)
    try:
        factory = getattr(module, attr)
    except AttributeError:
        public = sorted(n for n in vars(module) if not n.startswith("_"))[:12]
        raise ModelLoadError(f"{spec}: module {module_name!r} has no {attr!r}; it defines "
                             f"{', '.join(public) or 'nothing public'}") from None
    if isinstance(factory, torch.nn.Module):
        model = factory
    elif callable(factory):
        _check_no_required_arguments(spec, factory)
        try:
            model = factory()
        except (Exception, SystemExit) as err:  # the user's code: any failure is theirs
            raise ModelLoadError(f"{spec}: calling {attr}() failed: {_one_line(err)}") from None
    else:
        model = factory
    if not isinstance(model, torch.nn.Module):
        raise ModelLoadError(f"{spec}: expected a torch.nn.Module, got {type(model).__name__}")
    return LoadedModel(name=attr, model=model.eval(), input_shape=_input_shape(spec, model))


def _import_user_module(spec: str, module_name: str) -> ModuleType:
    """The module named ``module_name``; the current folder is searched first, as by
    ``python -m``. A name ending in ``.py`` is imported from that file.

    Raises:
        ModelLoadError: the module is not found, or importing it fails in any way.
    """
    if module_name.endswith(".py"):
        return _import_file(spec, Path(module_name))
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # as `python -m` does; an installed script would not
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name is not None and (module_name == err.name
                                     or module_name.startswith(err.name + ".")):
            raise ModelLoadError(f"{spec}: no module named {module_name!r} in the current "
                                 f"folder or on PYTHONPATH (add its folder to PYTHONPATH, "
                                 "or give path/to/file.py:factory)") from None
        raise ModelLoadError(f"{spec}: importing {module_name!r} failed: "
                             f"{_one_line(err)}") from None
    except (Exception, SystemExit) as err:  # the user's module: SyntaxError, its own errors
        raise ModelLoadError(f"{spec}: importing {module_name!r} failed: "
                             f"{_one_line(err)}") from None


def _import_file(spec: str, path: Path) -> ModuleType:
    """Import the Python file ``path`` as a module named after its stem."""
    import importlib.util

    if not path.is_file():
        raise ModelLoadError(f"{spec}: no such Python file {str(path)!r}")
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    if module_spec is None or module_spec.loader is None:
        raise ModelLoadError(f"{spec}: cannot import {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:
        raise ModelLoadError(f"{spec}: importing {str(path)!r} failed: "
                             f"{_one_line(err)}") from None
    return module


def _check_no_required_arguments(spec: str, factory: Callable[..., object]) -> None:
    """nnjoules calls the factory with no arguments: say so before calling it."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: just call them
        return
    required = [p.name for p in signature.parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                                        p.KEYWORD_ONLY)]
    if required:
        raise ModelLoadError(f"{spec}: the factory needs argument(s) {', '.join(required)}; "
                             "nnjoules calls it with none: give defaults or wrap it in a "
                             "function without arguments")


def _input_shape(spec: str, model: Any) -> tuple[int, ...] | None:
    """The model's own ``input_shape`` attribute (per item, no batch), if it has one."""
    shape = getattr(model, "input_shape", None)
    if shape is None:
        return None
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if not dims or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                           for d in dims):
        raise ModelLoadError(f"{spec}: the model's input_shape must be positive integers "
                             f"like (3, 224, 224), got {shape!r}")
    return dims


def _one_line(err: BaseException) -> str:
    """``Type: first line of the message``, for an error raised by the user's code."""
    if isinstance(err, SystemExit):
        return f"it called sys.exit({err.code!r})"
    if isinstance(err, SyntaxError):
        where = f" ({err.filename}, line {err.lineno})" if err.filename else ""
        return f"SyntaxError: {err.msg}{where}"
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def resolve_trained(spec: str) -> tuple[str, Any]:
    """A trained model from a spec: a model file (``.pt``), a built-in name with a
    shipped checkpoint, or ``package.module:factory`` (the user's trained model).

    Returns:
        The model's name and its ``torch.nn.Module``.

    Raises:
        InputError: nothing trained can be found for the spec.
    """
    from torch import nn

    from nnjoules.models.builtin import BUILTIN_MODELS, has_pretrained, pretrained
    from nnjoules.prune.modelio import load_model_file

    if spec.endswith(".pt") or Path(spec).is_file():
        name, model, _info = load_model_file(Path(spec))
        return name, model
    if spec in BUILTIN_MODELS:
        if not has_pretrained(spec):
            raise InputError(f"no trained checkpoint ships for {spec!r}: train one with "
                             f"`nnjoules train {spec} --out {spec}.pt` and pass {spec}.pt")
        return spec, pretrained(spec)
    if ":" in spec:
        loaded = load_model(spec)
        if not isinstance(loaded.model, nn.Module):
            raise InputError(f"{spec}: not a torch module")
        return loaded.name, loaded.model
    raise InputError(f"unknown model {spec!r}: give a model file (.pt), a built-in model "
                     f"({', '.join(BUILTIN_MODELS)}) or package.module:factory")

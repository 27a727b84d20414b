"""Tensor bookkeeping for the PyTorch capture: identity sets, operands, written tensors.

Helpers of `torch_capture` that know nothing of layers: which tensors an operator's
arguments hold, which of them it writes into (from its schema), a tensor's version
counter, and the name an operator is reported under.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

from torch import Tensor
from torch._ops import HigherOrderOperator

__all__ = ["TensorSet", "first_tensor", "op_label", "tensor_version", "tensors_in",
           "written_tensors"]


class TensorSet:
    """Tensors by identity, held weakly (tensors compare element-wise, so no WeakSet)."""

    def __init__(self) -> None:
        self._refs: dict[int, tuple[weakref.ref[Tensor], object]] = {}

    def add(self, t: Tensor, value: object = True) -> None:
        """Hold ``t`` (weakly), mapped to ``value``."""
        self._refs[id(t)] = (weakref.ref(t), value)

    def get(self, t: Tensor) -> object | None:
        """The value ``t`` maps to; None if ``t`` (this very tensor) was never added."""
        entry = self._refs.get(id(t))
        return entry[1] if entry is not None and entry[0]() is t else None

    def discard(self, key: int, value: object) -> None:
        """Forget the tensor with id ``key`` if it maps to ``value`` (ids are reused)."""
        entry = self._refs.get(key)
        if entry is not None and entry[1] is value:
            del self._refs[key]


def tensors_in(obj: object) -> list[Tensor]:
    """Tensors among ``obj`` and the items of a list/tuple/dict ``obj`` (one level down)."""
    if isinstance(obj, Tensor):
        return [obj]
    items = list(obj.values()) if isinstance(obj, dict) else obj
    found: list[Tensor] = []
    for item in items if isinstance(items, list | tuple) else ():
        if isinstance(item, Tensor):
            found.append(item)
        elif isinstance(item, list | tuple):  # e.g. the tensors of aten.cat
            found.extend(t for t in item if isinstance(t, Tensor))
    return found


def tensor_version(t: Tensor) -> int:
    """``t``'s in-place write counter; -1 for an inference tensor, which keeps none."""
    try:
        return t._version
    except RuntimeError:  # inference tensors keep no version counter
        return -1


def written_tensors(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Tensor]:
    """The tensors an operator writes into: its mutable arguments (``self`` of
    ``copy_``, ``out=``), from its schema."""
    schema = getattr(func, "_schema", None)
    for index, arg in enumerate(schema.arguments if schema is not None else ()):
        if arg.alias_info is None or not arg.alias_info.is_write:
            continue
        value = kwargs.get(arg.name) if arg.kwarg_only or index >= len(args) else args[index]
        yield from tensors_in(value)


def first_tensor(out: object) -> Tensor | None:
    """The first tensor of an operator's output (see `tensors_in`), or None."""
    found = tensors_in(out)
    return found[0] if found else None


def op_label(key: object) -> str:
    """``aten.relu_`` and ``aten.relu`` are one operator for the report."""
    if isinstance(key, HigherOrderOperator):
        return f"higher_order.{key.name()}"
    label = str(key)
    return label[:-1] if label.endswith("_") and not label.endswith("__") else label

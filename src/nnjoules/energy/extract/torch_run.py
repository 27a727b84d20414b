"""Running a module for capture: inputs checked, layer names tracked, eager settings.

The capture itself (`torch_capture`) only sees ATen operators; this module runs the
model so that it can: in eval mode, with PyTorch's fused fast paths off, with
``flex_attention`` eager, and with the module path of every operator known (forward
hooks, or the ``nn_module_stack`` an exported graph records on its nodes).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from nnjoules.errors import InputError

__all__ = ["ModuleNames", "check_inputs", "eager_settings", "first_line", "run_module"]

log = logging.getLogger(__name__)


def check_inputs(module: object, example_inputs: object) -> tuple[Tensor, ...]:
    """The example inputs as a tuple of tensors.

    Raises:
        InputError: ``module`` is not an ``nn.Module``, or ``example_inputs`` is not a
            tensor or a non-empty tuple (or list) of tensors; names the bad element.
    """
    if not isinstance(module, nn.Module):
        raise InputError(f"workload_from_module needs an nn.Module, got "
                         f"{type(module).__name__}")
    inputs = (example_inputs,) if isinstance(example_inputs, Tensor) else example_inputs
    if not isinstance(inputs, tuple | list) or not inputs:
        raise InputError(f"example inputs of {type(module).__name__} must be a tensor or a "
                         f"non-empty tuple of tensors, got {type(example_inputs).__name__}")
    for index, item in enumerate(inputs):
        if not isinstance(item, Tensor):
            raise InputError(f"example inputs of {type(module).__name__}: element {index} is "
                             f"a {type(item).__name__} ({first_line(repr(item))[:40]}), not a "
                             f"tensor; give the model a tuple of tensors only")
    return tuple(inputs)


def first_line(text: str) -> str:
    """The first non-empty line of ``text`` (error messages of torch span many)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


class ModuleNames:
    """The path of the innermost module running, kept by global forward hooks."""

    def __init__(self, root: nn.Module) -> None:
        self._names = {id(m): n for n, m in root.named_modules() if n}
        self._names[id(root)] = type(root).__name__
        self.stack = [type(root).__name__]
        self._handles = [nn.modules.module.register_module_forward_pre_hook(self._enter),
                         nn.modules.module.register_module_forward_hook(self._leave)]

    def _enter(self, module: nn.Module, _args: object) -> None:
        name = self._names.get(id(module)) or f"{self.stack[-1]}.{type(module).__name__}"
        self.stack.append(name)

    def _leave(self, _module: nn.Module, _args: object, _out: object) -> None:
        if len(self.stack) > 1:
            self.stack.pop()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


class _ExportedGraph(torch.fx.Interpreter):
    """Runs a graph of ``torch.export`` node by node, naming each by its source module.

    Its ATen calls are not module calls (no hooks fire); each node records the module
    it was traced in (``nn_module_stack``), whose path becomes the layer name.
    """

    def __init__(self, module: torch.fx.GraphModule, names: ModuleNames) -> None:
        super().__init__(module)
        self._names = names

    def run_node(self, n: torch.fx.Node) -> Any:
        stack = n.meta.get("nn_module_stack")
        path = list(stack.values())[-1][0] if stack else ""
        self._names.stack.append(path or self._names.stack[-1])
        try:
            return super().run_node(n)
        finally:
            self._names.stack.pop()


def run_module(module: Callable[..., Any], inputs: tuple[Any, ...],
               names: ModuleNames) -> Any:
    """``module(*inputs)``; a graph from ``torch.export`` runs node by node (see above)."""
    if isinstance(module, torch.fx.GraphModule) and any(
            "nn_module_stack" in n.meta for n in module.graph.nodes):
        return _ExportedGraph(module, names).run(*inputs)
    return module(*inputs)


@contextlib.contextmanager
def eager_settings(module: nn.Module) -> Iterator[None]:
    """Eval mode, no MultiheadAttention fast path, eager flex_attention; all restored.

    ``nn.MultiheadAttention``'s fast path is one opaque operator; ``flex_attention``
    outside ``torch.compile`` compiles itself, which no dispatch mode can watch.
    """
    import torch.nn.attention.flex_attention as flex

    modes = [(m, m.training) for m in module.modules()]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    flex_eager = flex._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG
    try:
        try:
            module.eval()
        except NotImplementedError:  # torch.export(...).module(): fixed when exported
            log.debug("%s cannot switch to eval mode; it runs as it was exported",
                      type(module).__name__)
        torch.backends.mha.set_fastpath_enabled(False)
        flex._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = True
        yield
    finally:
        flex._FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = flex_eager
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for m, training in modes:
            m.training = training

"""How many torch threads a command uses: the user's choice, else one that suits the model.

Torch starts one intra-op thread per core. For a model as small as LeNet-5 (0.42 M MACs
per 28x28 image) a batch is too little work to share: the threads spend their time
waiting for each other, and on a 2-core machine with other work running one training
step of 128 images took 13-19 ms with 1 thread against 48-179 ms with 2 (measured for
this module). So models under `SMALL_MODEL_MACS` MACs per item run on one thread;
larger ones on every core this process may use, at most `MAX_THREADS`.

An explicit ``--threads N`` wins, then ``OMP_NUM_THREADS`` (its first number), then the
rule above. The choice is recorded (`Threads.to_dict`) next to the results it produced.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SMALL_MODEL_MACS = 2_000_000  # MACs per item below which one thread is fastest
MAX_THREADS = 8  # beyond this, the small batches of these commands gain nothing


@dataclass(frozen=True)
class Threads:
    """The torch thread count and where it came from.

    Attributes:
        count: intra-op threads (``torch.set_num_threads``).
        source: ``"--threads"``, ``"OMP_NUM_THREADS"`` or ``"auto"`` (model size and CPUs).
    """

    count: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, e.g. ``{"torch_threads": 1, "source": "auto"}``."""
        return {"torch_threads": self.count, "source": self.source, "cpus": available_cpus()}


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _from_env(env: Mapping[str, str]) -> int | None:
    """The first number of ``OMP_NUM_THREADS`` (``"4,2"`` -> 4); None if unset or not one."""
    text = env.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def choose_threads(requested: int | None, *, macs_per_item: float | None,
                   env: Mapping[str, str] | None = None, cpus: int | None = None) -> Threads:
    """The thread count for a run (see the module doc for the rule).

    Args:
        requested: ``--threads`` (None: not given).
        macs_per_item: the model's MACs for one input item (None: unknown, taken as large).
        env: the environment (default ``os.environ``).
        cpus: CPUs available (default `available_cpus`).

    >>> choose_threads(None, macs_per_item=420_000, env={}, cpus=2)
    Threads(count=1, source='auto')
    >>> choose_threads(None, macs_per_item=5e6, env={}, cpus=16).count, \
choose_threads(3, macs_per_item=1, env={"OMP_NUM_THREADS": "2"}).count
    (8, 3)
    """
    if requested is not None:
        return Threads(requested, "--threads")
    from_env = _from_env(os.environ if env is None else env)
    if from_env is not None:
        return Threads(from_env, "OMP_NUM_THREADS")
    cpus = available_cpus() if cpus is None else cpus
    if macs_per_item is not None and macs_per_item < SMALL_MODEL_MACS:
        return Threads(1, "auto")
    return Threads(max(1, min(cpus, MAX_THREADS)), "auto")


def apply_threads(requested: int | None, *, model: Any = None,
                  input_shape: Sequence[int] | None = None) -> Threads:
    """Choose the thread count for ``model`` (see `choose_threads`) and set it in torch.

    Args:
        requested: ``--threads`` (None: not given).
        model: the ``nn.Module`` to run, measured on one item of ``input_shape``.
        input_shape: one item's shape, e.g. ``(1, 28, 28)``.
    """
    import torch

    macs = macs_per_item(model, input_shape) if model is not None and input_shape else None
    threads = choose_threads(requested, macs_per_item=macs)
    torch.set_num_threads(threads.count)
    return threads


def macs_per_item(model: Any, input_shape: Sequence[int]) -> int:
    """MACs of convolutions and linear layers for one item (a forward pass, no gradients).

    A rough size for the thread rule only; `nnjoules.estimate` counts every product.
    """
    import torch
    from torch import nn

    total = [0]

    def count(module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and isinstance(module, nn.Conv2d | nn.Linear):
            weight = module.weight
            per_output = weight.numel() // weight.shape[0] if weight.dim() else 1
            total[0] += output.numel() * per_output

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    hooks = [m.register_forward_hook(count) for m in layers]
    was_training = model.training
    try:
        device = next(iter(model.parameters()), torch.zeros(0)).device
        with torch.no_grad():
            model.eval()(torch.zeros((1, *input_shape), device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total[0]

"""Training and evaluation: the dense training, the fine-tuning between pruning rounds.

Callers may bring their own loops (see `nnjoules.prune.Pruner`); these are ours.

* **Determinism.** The order of examples comes from a ``torch.Generator`` seeded with
  ``seed`` (no global RNG); deterministic algorithms are switched on for the duration
  of a call; data is read in the calling process (no workers). Same seed, same
  numbers, on the same machine and thread count.
* **Fractional epochs.** ``epochs=0.5`` runs the first half of one shuffled pass;
  epoch ``k`` of a call is shuffled with seed ``(seed, k)``.
* **DDP.** When ``torch.distributed`` is initialised with more than one process (e.g.
  under ``torchrun``), the model is wrapped in ``DistributedDataParallel`` and each
  global batch of ``batch_size`` examples is split between the ranks, so a run on P
  processes follows the same schedule as on one (up to floating-point order).
* **Masks.** Layers pruned with ``torch.nn.utils.prune`` train their ``weight_orig``;
  the mask multiplies it in every forward, so pruned weights stay zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import default_collate

from nnjoules.errors import InputError
from nnjoules.prune.config import TrainConfig as TrainConfig

Progress = Callable[[int, int], None]  # (batches done, batches in total)
Checkpoint = Callable[[dict[str, Any]], None]  # the training state after an epoch


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """``"auto"``/None: CUDA when present (under torchrun: this rank's GPU), else CPU.

    Raises:
        InputError: an unknown device, or one this machine does not have
            (see `check_device`).
    """
    if device is not None and str(device) != "auto":
        return check_device(device)
    if torch.cuda.is_available():
        import os

        # cuBLAS needs this for deterministic results; it must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        return torch.device("cuda", _rank_and_world()[2] % torch.cuda.device_count())
    return torch.device("cpu")


def check_device(device: str | torch.device) -> torch.device:
    """The device ``device`` names (``cpu``, ``cuda``, ``cuda:N``, ``mps``), if this
    machine has it; ``"auto"`` passes as CPU or CUDA (`pick_device`).

    Raises:
        InputError: ``"--device tpu: unknown device ..."`` or ``"--device cuda: no CUDA
            GPU is available ..."`` (one line; callers check before reading data).
    """
    if str(device) == "auto":
        return pick_device(None)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device {device}: unknown device (choose cpu, cuda, cuda:N, mps "
                         "or auto)")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"--device {device}: no CUDA GPU is available on this machine "
                             "(use --device cpu or auto)")
        if dev.index is not None and dev.index >= count:
            raise InputError(f"--device {device}: this machine has {count} CUDA GPU(s), "
                             f"numbered 0 to {count - 1}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"--device {device}: MPS is not available on this machine "
                         "(use --device cpu or auto)")
    return dev


@contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic algorithms on for the duration (restored afterwards). On CUDA an
    operator without a deterministic kernel warns instead of failing."""
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def train(model: nn.Module, dataset: Any, config: TrainConfig, *, seed: int = 0,
          device: str | torch.device | None = None, progress: Progress | None = None,
          checkpoint: Checkpoint | None = None,
          resume_from: dict[str, Any] | None = None) -> float:
    """Train ``model`` in place on ``dataset`` (items ``(image, label)``); the mean loss.

    Cross-entropy loss; see the module docstring for determinism and DDP.

    Args:
        checkpoint: called after every full epoch with the training state (model,
            optimizer, schedule, batches done): plain values and tensors to save.
        resume_from: such a state: training continues after its last batch and
            ends with the same numbers as a run never interrupted.
    """
    size = len(dataset)
    if size == 0:
        raise InputError("cannot train on an empty dataset")
    steps_per_epoch = math.ceil(size / config.batch_size)
    total = math.ceil(config.epochs * steps_per_epoch)
    if total == 0:
        return 0.0
    dev = pick_device(device)
    model.to(dev).train()
    rank, world, _local = _rank_and_world()
    net: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
             if config.schedule == "cosine" else None)
    loss_sum, done = 0.0, 0
    if resume_from is not None:
        loss_sum, done = _restore(model, opt, sched, resume_from, dev)
    with deterministic():
        for step, indices in enumerate(_batches(size, config.batch_size, total, seed), 1):
            if step <= done or len(indices) < world:  # done before; too few for all ranks
                continue
            local = indices[rank::world]
            x, y = fetch(dataset, local, dev)
            loss = nn.functional.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            loss_sum += float(loss.detach())
            done = step
            if progress is not None:
                progress(done, total)
            if checkpoint is not None and done % steps_per_epoch == 0 and done < total:
                checkpoint(_snapshot(model, opt, sched, loss_sum, done))
    model.eval()
    return loss_sum / max(done, 1)


def _snapshot(model: nn.Module, opt: torch.optim.Optimizer, sched: Any, loss_sum: float,
              done: int) -> dict[str, Any]:
    """The state `train` resumes from (CPU copies)."""
    from nnjoules.prune.masks import masked_state_dict

    def cpu(value: Any) -> Any:
        if isinstance(value, Tensor):
            return value.detach().cpu().clone()
        if isinstance(value, dict):
            return {k: cpu(v) for k, v in value.items()}
        if isinstance(value, list):
            return [cpu(v) for v in value]
        return value

    return {"batches_done": done, "loss_sum": loss_sum, "model": masked_state_dict(model),
            "optimizer": cpu(opt.state_dict()),
            "schedule": None if sched is None else cpu(sched.state_dict())}


def _restore(model: nn.Module, opt: torch.optim.Optimizer, sched: Any, state: dict[str, Any],
             device: torch.device) -> tuple[float, int]:
    """Load a `_snapshot` into the model, optimizer and schedule; (loss sum, batches done)."""
    from nnjoules.prune.masks import load_masked_state

    load_masked_state(model, state["model"])
    model.to(device)
    opt.load_state_dict(state["optimizer"])
    if sched is not None and state.get("schedule") is not None:
        sched.load_state_dict(state["schedule"])
    return float(state["loss_sum"]), int(state["batches_done"])


CHANCE_MARGIN = 0.02  # within 2 points of 1/classes: the model has learnt ~nothing


def near_chance(accuracy: float, num_classes: int, what: str) -> str | None:
    """A one-line warning when ``accuracy`` (top-1 in [0, 1]) is at most 2 points above
    chance (1 / ``num_classes``); None otherwise.

    >>> near_chance(0.5, 10, "the model") is None
    True
    """
    chance = 1 / num_classes if num_classes > 0 else 0.0
    if accuracy > chance + CHANCE_MARGIN:
        return None
    return (f"warning: {what} has {100 * accuracy:.2f}% accuracy, within 2 points of chance "
            f"({100 * chance:.2f}% for {num_classes} classes): it has barely learnt")


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Any, *, batch_size: int = 1000,
             device: str | torch.device | None = None) -> float:
    """Top-1 accuracy of ``model`` on ``dataset``, in [0, 1] (every rank sees all of it)."""
    if len(dataset) == 0:
        raise InputError("cannot evaluate on an empty dataset")
    dev = pick_device(device)
    was_training = model.training
    model.to(dev).eval()
    correct = 0
    with deterministic():
        for start in range(0, len(dataset), batch_size):
            indices = torch.arange(start, min(start + batch_size, len(dataset)))
            x, y = fetch(dataset, indices, dev)
            correct += int((model(x).argmax(1) == y).sum())
    model.train(was_training)
    return correct / len(dataset)


def fetch(dataset: Any, indices: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
    """Images and labels at ``indices``, on ``device`` (fast path: ``dataset.batch``)."""
    if hasattr(dataset, "batch"):
        x, y = dataset.batch(indices)
    else:
        x, y = default_collate([dataset[int(i)] for i in indices])
    return x.to(device, non_blocking=True), torch.as_tensor(y).to(device, non_blocking=True)


def _batches(size: int, batch_size: int, total: int, seed: int) -> Iterator[Tensor]:
    """``total`` batches of indices; epoch k is a permutation seeded with (seed, k)."""
    emitted, epoch = 0, 0
    while emitted < total:
        generator = torch.Generator().manual_seed(_mix(seed, epoch))
        order = torch.randperm(size, generator=generator)
        for start in range(0, size, batch_size):
            if emitted == total:
                return
            yield order[start:start + batch_size]
            emitted += 1
        epoch += 1


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (stable across runs, unlike ``hash``)."""
    out = 0x9E3779B97F4A7C15
    for v in values:
        out = (out ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        out ^= out >> 31
    return out & 0x7FFFFFFFFFFFFFFF


def mix_seed(*values: int) -> int:
    """Public form of the seed mixer: one seed per (run seed, round, layer ...)."""
    return _mix(*values)


def _rank_and_world() -> tuple[int, int, int]:
    """(rank, world size, local rank); (0, 1, 0) without an initialised process group."""
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, int(os.environ.get("LOCAL_RANK", 0))


def init_distributed_from_env() -> bool:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1), initialise the default process group
    (NCCL with CUDA, gloo otherwise); whether one is running."""
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)
    return True


def is_main_rank() -> bool:
    """True outside DDP and on rank 0 (the rank that writes files and prints)."""
    return _rank_and_world()[0] == 0

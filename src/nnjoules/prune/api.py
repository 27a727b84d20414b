"""`prune()`: the whole run on datasets, with our fine-tuning and an honest reference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnjoules.errors import InputError
from nnjoules.prune.config import PruneConfig, TrainConfig

if TYPE_CHECKING:  # torch is imported when pruning starts, not with ``import nnjoules``
    from torch import nn

    from nnjoules.prune.loop import Pruner
    from nnjoules.prune.result import PruneResult, StepRecord

REFERENCE_FILE = "reference.pt"


def prune(model: nn.Module, train_data: Any, val_data: Any, *, hardware: Any = "eyeriss",
          method: str = "energy-aware", accuracy_drop: float = 0.01,
          energy_target: float | None = None, config: PruneConfig | None = None,
          finetune: TrainConfig | None = None, reference: str = "matched",
          reference_accuracy: float | None = None, test_data: Any = None,
          checkpoint_dir: str | Path | None = None, resume: bool = False,
          device: Any = None, on_step: Callable[[StepRecord], Any] | None = None,
          progress: Callable[[int, int], None] | None = None,
          extra_state: dict[str, Any] | None = None) -> PruneResult:
    """Prune ``model`` (in place) guided by the energy model; the `PruneResult`.

    Args:
        model: a trained model with ``nn.Conv2d``/``nn.Linear`` layers.
        train_data: dataset of ``(image, label)``: fine-tuning, and the images the
            restoration samples.
        val_data: dataset the accuracy budget is checked on.
        hardware: preset name, YAML file or `Hardware`.
        method: ``"energy-aware"`` or ``"magnitude"`` (overrides ``config.method``).
        accuracy_drop: allowed top-1 drop from the reference, a fraction (0.01 = 1 pt).
        energy_target: stop once energy <= this fraction of the dense energy.
        config: the other parameters (`PruneConfig`); the three above override it.
        finetune: the fine-tuning between rounds (`TrainConfig`; default 0.5 epochs
            of SGD at lr 0.01 per round).
        reference: ``"matched"``: the budget counts from a copy of the dense model
            trained for as many epochs as pruning may fine-tune in total (rounds x
            epochs per round), so that pruning is never credited with what extra
            training gives; ``"given"``: from ``model`` as it is.
        reference_accuracy: use this reference accuracy instead (e.g. shared by runs).
        test_data: if given, the final and reference test accuracies are reported.
        checkpoint_dir: checkpoint there after every round (and the reference).
        resume: continue from ``checkpoint_dir``'s checkpoint if there is one.
        device: ``"cpu"``, ``"cuda"`` or None/``"auto"``.
        on_step: called with each `StepRecord` after it is checkpointed.
        progress: called with (batches done, total) during each fine-tuning.
        extra_state: plain values saved in the checkpoint (the CLI stores its options).

    Raises:
        InputError: bad budgets, a model without prunable layer, unusable data.
    """
    from nnjoules.prune import checkpoint
    from nnjoules.prune.finetune import evaluate, mix_seed, train
    from nnjoules.prune.loop import Pruner

    base = config or PruneConfig()
    cfg = replace(base, method=method, accuracy_drop=accuracy_drop,
                  energy_target=energy_target)
    ft = finetune or TrainConfig()
    if reference not in ("matched", "given"):
        raise InputError(f"reference must be 'matched' or 'given', got {reference!r}")
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and folder is None:
        raise InputError("resume needs a checkpoint folder")
    from nnjoules.prune.finetune import pick_device
    from nnjoules.prune.masks import check_finite, prunable_layers

    prunable_layers(model)  # fail early on a model without prunable layer
    check_finite(model)  # and on NaN/Inf weights, before any training or fit
    pick_device(device)  # and on a device this machine lacks
    info = _reference(model, train_data, val_data, test_data, cfg, ft, reference,
                      reference_accuracy, folder, device)
    pruner: Pruner

    def run_finetune(m: nn.Module) -> None:
        train(m, train_data, ft, seed=mix_seed(cfg.seed, 5, pruner.round), device=device,
              progress=progress)

    def run_evaluate(m: nn.Module) -> float:
        return evaluate(m, val_data, device=device)

    pruner = Pruner(model, train_data, evaluate=run_evaluate, finetune=run_finetune,
                    config=cfg, hardware=hardware, reference_accuracy=info["accuracy"],
                    checkpoint_dir=folder, on_step=on_step, extra_state=extra_state)
    if resume and folder is not None and (folder / checkpoint.STATE_FILE).is_file():
        pruner.load_state(checkpoint.load_checkpoint(folder))
    result = pruner.run()
    extra = dict(result.extra)
    extra["reference"] = {k: v for k, v in info.items() if k != "state"}
    extra["finetune"] = {"epochs_per_round": ft.epochs, "lr": ft.lr, "momentum": ft.momentum,
                         "weight_decay": ft.weight_decay, "batch_size": ft.batch_size,
                         "epochs_total": ft.epochs * (len(result.history) - 1)}
    if test_data is not None:
        extra["test_accuracy"] = evaluate(result.model, test_data, device=device)
    return replace(result, extra=extra)


def _reference(model: nn.Module, train_data: Any, val_data: Any, test_data: Any,
               cfg: PruneConfig, ft: TrainConfig, kind: str, given: float | None,
               folder: Path | None, device: Any) -> dict[str, Any]:
    """The reference accuracy (and how it was obtained)."""
    from nnjoules.prune import checkpoint
    from nnjoules.prune.finetune import evaluate
    if given is not None:
        if not 0 <= given <= 1:
            raise InputError(f"reference accuracy must lie in [0, 1], got {given}")
        return {"kind": "given value", "accuracy": given}
    if kind == "given":
        out: dict[str, Any] = {"kind": "given model", "epochs": 0.0,
                               "accuracy": evaluate(model, val_data, device=device)}
        if test_data is not None:
            out["test_accuracy"] = evaluate(model, test_data, device=device)
        return out
    if folder is not None and (folder / REFERENCE_FILE).is_file():
        saved = checkpoint.load_checkpoint(folder, REFERENCE_FILE)
        return dict(saved["info"])
    out = matched_reference(model, train_data, val_data, test_data, epochs=cfg.rounds * ft.epochs,
                            finetune=ft, seed=cfg.seed, device=device)
    if folder is not None:
        checkpoint.save_checkpoint(folder, {"info": out}, REFERENCE_FILE)
    return out


def matched_reference(model: nn.Module, train_data: Any, val_data: Any, test_data: Any, *,
                      epochs: float, finetune: TrainConfig, seed: int = 0,
                      device: Any = None) -> dict[str, Any]:
    """Train a copy of the dense ``model`` for ``epochs`` more epochs with the fine-tuning
    recipe; its validation (and test) accuracy."""
    from nnjoules.prune.finetune import evaluate, mix_seed, train
    from nnjoules.prune.masks import clone

    dense = clone(model)
    train(dense, train_data, replace(finetune, epochs=epochs), seed=mix_seed(seed, 3),
          device=device)
    out: dict[str, Any] = {"kind": "dense, matched training", "epochs": epochs,
                           "accuracy": evaluate(dense, val_data, device=device)}
    if test_data is not None:
        out["test_accuracy"] = evaluate(dense, test_data, device=device)
    return out

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

    from nnjoules.prune.both_loop import BothPruner
    from nnjoules.prune.channel_loop import ChannelPruner
    from nnjoules.prune.loop import Pruner
    from nnjoules.prune.result import PruneResult, StepRecord

REFERENCE_FILE = "reference.pt"
REFERENCE_TRAINING_FILE = "reference-training.pt"  # the reference's training, per epoch
Phase = Callable[[str, str], None]  # (phase, one line saying what runs)


def prune(model: nn.Module, train_data: Any, val_data: Any, *, hardware: Any = "eyeriss",
          method: str = "energy-aware", granularity: str | None = None,
          dataflow: str | None = None, accuracy_drop: float = 0.01,
          energy_target: float | None = None, config: PruneConfig | None = None,
          finetune: TrainConfig | None = None, reference: str = "matched",
          reference_accuracy: float | None = None, test_data: Any = None,
          checkpoint_dir: str | Path | None = None, resume: bool = False,
          device: Any = None, on_step: Callable[[StepRecord], Any] | None = None,
          progress: Callable[[int, int], None] | None = None,
          extra_state: dict[str, Any] | None = None,
          on_phase: Phase | None = None, num_classes: int | None = None,
          measure_latency: bool = True) -> PruneResult:
    """Prune ``model`` (in place) guided by the energy model; the `PruneResult`.

    Args:
        model: a trained model with ``nn.Conv2d``/``nn.Linear`` layers.
        train_data: dataset of ``(image, label)``: fine-tuning, and the images the
            restoration samples.
        val_data: dataset the accuracy budget is checked on.
        hardware: preset name, YAML file or `Hardware`.
        method: ``"energy-aware"`` or ``"magnitude"`` (overrides ``config.method``).
        granularity: ``"weight"``, ``"channel"`` or ``"both"`` (channels, then weights;
            `nnjoules.prune.both_loop`); None: ``config.granularity``.
        dataflow: the dataflow of the energy model that orders and allocates the
            pruning and measures its reductions (a name or ISCA 2016 abbreviation,
            `nnjoules.energy.dataflows`); None: ``config.dataflow`` (row-stationary).
        accuracy_drop: allowed top-1 drop from the reference, a fraction (0.01 = 1 pt).
        energy_target: stop once energy <= this fraction of the dense energy.
        config: the other parameters (`PruneConfig`); ``method``, ``accuracy_drop``,
            ``energy_target`` and a given ``granularity`` or ``dataflow`` override it.
        finetune: the fine-tuning between rounds (`TrainConfig`; default 0.5 epochs
            of SGD at lr 0.01 per round).
        reference: ``"matched"``: the budget counts from a copy of the dense model
            trained for as many epochs as pruning may fine-tune in total (rounds x
            epochs per round), so that pruning is never credited with what extra
            training gives; ``"given"``: from ``model`` as it is.
        reference_accuracy: use this reference accuracy instead (e.g. shared by runs).
        test_data: if given, the final and reference test accuracies are reported.
        checkpoint_dir: checkpoint there after every round (and every epoch of the
            reference's training).
        resume: continue from ``checkpoint_dir``'s checkpoint if there is one.
        device: ``"cpu"``, ``"cuda"`` or None/``"auto"``.
        on_step: called with each `StepRecord` after it is checkpointed.
        progress: called with (batches done, total) during each fine-tuning.
        extra_state: plain values saved in the checkpoint (the CLI stores its options).
        on_phase: called with (phase, message) as each long phase starts or ends:
            ``"reference"``, ``"reference-done"``, ``"calibration"``, ``"round"``, and
            ``"warning"`` (a line for stderr).
        num_classes: when given, a reference within 2 points of chance (1 /
            ``num_classes``) is reported as a ``"warning"`` phase: every round would pass
            a budget counted from it.
        measure_latency: time the dense and the pruned model on this CPU (torch, batch
            1 and 16, `nnjoules.prune.latency`) into ``extra["cpu_latency"]``.

    Every file in ``checkpoint_dir`` is tied to this run (`run_identity`): a folder of
    another run, or a non-empty folder that is not a run folder, is refused; a kill in
    any phase resumes (``resume=True``) to the result of an uninterrupted run.

    Raises:
        InputError: bad budgets, a model without prunable layer, unusable data.
    """
    from nnjoules.prune import checkpoint
    from nnjoules.prune.both_loop import BothPruner
    from nnjoules.prune.channel_loop import ChannelPruner
    from nnjoules.prune.finetune import evaluate, is_main_rank, mix_seed, pick_device, train
    from nnjoules.prune.loop import Pruner
    from nnjoules.prune.masks import check_finite, prunable_layers
    from nnjoules.prune.runfolder import check_identity, open_run

    base = config or PruneConfig()
    cfg = replace(base, method=method, accuracy_drop=accuracy_drop,
                  energy_target=energy_target,
                  granularity=base.granularity if granularity is None else granularity,
                  dataflow=base.dataflow if dataflow is None else dataflow)
    ft = finetune or TrainConfig()
    if reference not in ("matched", "given"):
        raise InputError(f"reference must be 'matched' or 'given', got {reference!r}")
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if resume and folder is None:
        raise InputError("resume needs a checkpoint folder")
    prunable_layers(model)  # fail early on a model without prunable layer
    check_finite(model)  # and on NaN/Inf weights, before any training or fit
    pick_device(device)  # and on a device this machine lacks
    if cfg.granularity in ("channel", "both"):
        from nnjoules.prune.structure import check_channel_support

        check_channel_support(model)  # before the reference is trained
    phase = on_phase or _silent
    ident = None
    if folder is not None:
        ident = run_identity(model, (train_data, val_data, test_data), cfg, ft, reference,
                             reference_accuracy, hardware)
        if is_main_rank():
            open_run(folder, ident, resume=resume)
    info = _reference(model, (train_data, val_data, test_data), cfg, ft, reference,
                      reference_accuracy, folder, ident, device, phase, progress)
    if num_classes is not None:
        from nnjoules.prune.finetune import near_chance

        warning = near_chance(info["accuracy"], num_classes, "the dense reference")
        if warning:
            phase("warning", warning)
    pruner: Pruner | ChannelPruner | BothPruner
    dense_latency = _latency(model, train_data) if measure_latency and is_main_rank() else None

    def run_finetune(m: nn.Module) -> None:
        train(m, train_data, ft, seed=mix_seed(cfg.seed, 5, pruner.round), device=device,
              progress=progress)

    def run_evaluate(m: nn.Module) -> float:
        return evaluate(m, val_data, device=device)

    phase("calibration", f"calibration: drawing {cfg.restore.samples} restoration and "
          f"{cfg.density_images} density images; measuring the dense model's energy")
    kinds: dict[str, type[Pruner | ChannelPruner | BothPruner]] = {
        "weight": Pruner, "channel": ChannelPruner, "both": BothPruner}
    pruner = kinds[cfg.granularity](model, train_data, evaluate=run_evaluate,
                                    finetune=run_finetune, config=cfg, hardware=hardware,
                                    reference_accuracy=info["accuracy"],
                                    checkpoint_dir=folder, on_step=on_step,
                                    extra_state={**(extra_state or {}), "run": ident})
    if resume and folder is not None and ident and (folder / checkpoint.STATE_FILE).is_file():
        state = checkpoint.load_checkpoint(folder)
        check_identity(folder / checkpoint.STATE_FILE, state.get("extra", {}).get("run"), ident)
        pruner.load_state(state)
    while not pruner.done:
        phase("round", f"round {pruner.round + 1}: pruning at rate "
              f"{cfg.rate * pruner.rate_scale:.3g}, then fine-tuning")
        pruner.step()
    result = pruner.result()
    extra = dict(result.extra)
    extra["reference"] = {k: v for k, v in info.items() if k != "state"}
    extra["dataflow"] = cfg.dataflow  # also in extra["config"]; said at the top level
    extra["finetune"] = {"epochs_per_round": ft.epochs, "lr": ft.lr, "momentum": ft.momentum,
                         "weight_decay": ft.weight_decay, "batch_size": ft.batch_size,
                         "epochs_total": ft.epochs * (len(result.history) - 1)}
    if ident is not None:
        extra["run"] = ident
    if test_data is not None:
        extra["test_accuracy"] = evaluate(result.model, test_data, device=device)
    if dense_latency is not None:
        from nnjoules.prune.latency import latency_record

        extra["cpu_latency"] = latency_record(dense_latency, _latency(result.model, train_data))
    return replace(result, extra=extra)


def _latency(model: nn.Module, data: Any) -> Any:
    """`nnjoules.prune.latency.cpu_latency` on items shaped like ``data``'s."""
    from nnjoules.prune.latency import cpu_latency
    from nnjoules.prune.loop import _images

    return cpu_latency(model, tuple(_images(data, 1).shape[1:]))


def _silent(_phase: str, _text: str) -> None:
    """The default phase callback: nothing."""


def run_identity(model: nn.Module, datasets: tuple[Any, ...], cfg: PruneConfig,
                 ft: TrainConfig, reference: str, reference_accuracy: float | None,
                 hardware: Any) -> dict[str, Any]:
    """The identity of a pruning run (`nnjoules.prune.runfolder.identity`): the dense
    model, the data, the seed and every setting that changes the result."""
    from dataclasses import asdict

    from nnjoules.prune.runfolder import identity

    settings: dict[str, Any] = {}
    for key, value in cfg.to_dict().items():
        if key == "channel_share" and cfg.granularity != "both":
            continue  # it changes nothing there (and run folders from before it still match)
        if isinstance(value, dict):
            settings.update({f"{key}.{k}": v for k, v in value.items()})
        elif key != "seed":
            settings[key] = value
    settings.update({f"finetune.{k}": v for k, v in asdict(ft).items()})
    settings.update({"reference": reference, "reference_accuracy": reference_accuracy,
                     "hardware": _hardware_label(hardware)})
    return identity(model, datasets, cfg.seed, settings)


def _hardware_label(hardware: Any) -> str:
    """A preset name, a YAML file's SHA-256, or the `Hardware` value itself."""
    import hashlib

    if isinstance(hardware, (str, Path)) and Path(hardware).is_file():
        return f"{hardware} (sha256 {hashlib.sha256(Path(hardware).read_bytes()).hexdigest()})"
    return str(hardware) if isinstance(hardware, (str, Path)) else repr(hardware)


def _reference(model: nn.Module, datasets: tuple[Any, Any, Any], cfg: PruneConfig,
               ft: TrainConfig, kind: str, given: float | None, folder: Path | None,
               ident: dict[str, Any] | None, device: Any, phase: Phase,
               progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    """The reference accuracy (and how it was obtained); the matched reference is
    checkpointed after every epoch and when done, and resumed from there."""
    from nnjoules.prune import checkpoint
    from nnjoules.prune.finetune import evaluate, is_main_rank

    train_data, val_data, test_data = datasets
    if given is not None:
        if not 0 <= given <= 1:
            raise InputError(f"reference accuracy must lie in [0, 1], got {given}")
        phase("reference-done", f"reference: the given accuracy {100 * given:.2f}%")
        return {"kind": "given value", "accuracy": given}
    if kind == "given":
        out: dict[str, Any] = {"kind": "given model", "epochs": 0.0,
                               "accuracy": evaluate(model, val_data, device=device)}
        if test_data is not None:
            out["test_accuracy"] = evaluate(model, test_data, device=device)
        phase("reference-done", f"reference: the model as given, val "
              f"{100 * out['accuracy']:.2f}%")
        return out
    epochs = cfg.rounds * ft.epochs
    if folder is not None and (folder / REFERENCE_FILE).is_file():
        saved = dict(checkpoint.load_run_file(folder, REFERENCE_FILE, ident)["info"])
        phase("reference-done", f"dense reference: val {100 * saved['accuracy']:.2f}% "
              f"(trained earlier, {folder / REFERENCE_FILE})")
        return saved
    partial, save = None, None
    if folder is not None:
        if (folder / REFERENCE_TRAINING_FILE).is_file():
            partial = checkpoint.load_run_file(folder, REFERENCE_TRAINING_FILE, ident)["train"]
        if is_main_rank():
            def save(state: dict[str, Any]) -> None:
                checkpoint.save_checkpoint(folder, {"run": ident, "train": state},
                                           REFERENCE_TRAINING_FILE)
    resumed = f", resuming after batch {partial['batches_done']}" if partial else ""
    unit = "epoch" if epochs == 1 else "epochs"
    phase("reference", f"training the dense reference for {epochs:g} {unit} (as long as "
          f"pruning may fine-tune){resumed}")
    out = matched_reference(model, train_data, val_data, test_data, epochs=epochs,
                            finetune=ft, seed=cfg.seed, device=device, progress=progress,
                            checkpoint=save, resume_from=partial)
    if folder is not None and is_main_rank():
        checkpoint.save_checkpoint(folder, {"run": ident, "info": out}, REFERENCE_FILE)
        (folder / REFERENCE_TRAINING_FILE).unlink(missing_ok=True)
    phase("reference-done", f"dense reference: val {100 * out['accuracy']:.2f}% after "
          f"{epochs:g} more {unit}")
    return out


def matched_reference(model: nn.Module, train_data: Any, val_data: Any, test_data: Any, *,
                      epochs: float, finetune: TrainConfig, seed: int = 0,
                      device: Any = None, progress: Callable[[int, int], None] | None = None,
                      checkpoint: Callable[[dict[str, Any]], None] | None = None,
                      resume_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train a copy of the dense ``model`` for ``epochs`` more epochs with the fine-tuning
    recipe; its validation (and test) accuracy, mean training loss and the SHA-256 of
    its state (`nnjoules.prune.runfolder.model_digest`: a resumed training matches).

    ``progress``, ``checkpoint`` and ``resume_from`` are those of
    `nnjoules.prune.finetune.train` (a checkpoint after every epoch; resumed exactly).
    """
    from nnjoules.prune.finetune import evaluate, mix_seed, train
    from nnjoules.prune.masks import clone
    from nnjoules.prune.runfolder import model_digest

    dense = clone(model)
    loss = train(dense, train_data, replace(finetune, epochs=epochs), seed=mix_seed(seed, 3),
                 device=device, progress=progress, checkpoint=checkpoint,
                 resume_from=resume_from)
    out: dict[str, Any] = {"kind": "dense, matched training", "epochs": epochs,
                           "accuracy": evaluate(dense, val_data, device=device),
                           "train_loss": loss, "sha256": model_digest(dense.cpu())}
    if test_data is not None:
        out["test_accuracy"] = evaluate(dense, test_data, device=device)
    return out

"""``nnjoules prune [MODEL]``: energy-aware (or magnitude) pruning with a resumable folder.

``--out DIR`` receives, after every round, the checkpoint ``pruner-state.pt`` (atomic);
at the end the pruned model ``model.pt`` (masks kept; ``+ .json`` sidecar), the result
``result.json`` and the energy reports ``energy-dense.json`` / ``energy-pruned.json``.
``nnjoules prune --resume DIR`` continues a run that was killed or stopped
(``--stop-after N``) with the options it was started with, and reaches the same result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nnjoules.commands.train import add_data_options, command_line, load_splits
from nnjoules.errors import InputError

# Options that define a run: stored in the checkpoint, restored by --resume.
RUN_OPTIONS = ("model", "method", "accuracy_drop", "energy_target", "rounds", "rate",
               "energy_exponent", "ranking", "finetune_epochs", "lr", "batch_size",
               "hardware", "energy_batch", "bits", "samples", "positions", "error_share",
               "reference", "data", "data_dir", "train_limit", "val_limit", "test_limit",
               "seed", "min_density", "max_failures", "allocation", "probe_drop")


# Options added after checkpoints were first written: absent ones take their default.
OPTIONAL = ("allocation", "probe_drop")


class StopRequested(Exception):
    """Raised from the step callback once ``--stop-after`` rounds have run."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``prune`` subcommand."""
    p = sub.add_parser("prune", help="prune a CNN guided by the energy model",
                       description="Prune MODEL (a model file from `nnjoules train`, a "
                       "built-in name with a shipped checkpoint, or package.module:factory) "
                       "with energy-aware pruning or the magnitude baseline, under an "
                       "accuracy budget and an optional energy target.")
    p.add_argument("model", nargs="?", default="lenet5", metavar="MODEL",
                   help="model to prune [lenet5: the shipped checkpoint]")
    p.add_argument("--out", type=Path, default=None, help="run folder (checkpoints, results)")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the run in DIR with its stored options")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N rounds of this invocation (resumable)")
    add_prune_options(p)
    add_data_options(p)
    p.add_argument("--json", type=Path, default=None, help="also write the result JSON here")
    p.set_defaults(run=_run)


def add_prune_options(p: argparse.ArgumentParser) -> None:
    """Algorithm, budget and energy options (shared with ``demo``)."""
    from nnjoules.prune.config import PruneConfig, RestoreConfig, TrainConfig

    c, f, r = PruneConfig(), TrainConfig(), RestoreConfig()
    p.add_argument("--method", choices=["energy-aware", "magnitude"], default=c.method,
                   help=f"pruning method [{c.method}]")
    p.add_argument("--accuracy-drop", type=float, default=c.accuracy_drop,
                   help="allowed top-1 drop from the dense reference, as a fraction "
                   f"(0.01 = 1 point) [{c.accuracy_drop}]")
    p.add_argument("--energy-target", type=float, default=None,
                   help="stop when energy <= this fraction of dense, in (0, 1]")
    p.add_argument("--rounds", type=int, default=c.rounds, help=f"most rounds [{c.rounds}]")
    p.add_argument("--rate", type=float, default=c.rate,
                   help=f"fraction of remaining weights removed per round [{c.rate}]")
    p.add_argument("--energy-exponent", type=float, default=c.energy_exponent,
                   help=f"energy weighting of per-layer rates [{c.energy_exponent}]")
    p.add_argument("--allocation", choices=["energy", "saliency", "probe"],
                   default=c.allocation,
                   help="energy-aware: how a round's removal is shared between layers; "
                   "probe: each layer, in energy order, as far as a prediction check on "
                   f"held-out training images allows [{c.allocation}]")
    p.add_argument("--probe-drop", type=float, default=c.probe_drop,
                   help="allocation probe: share of the held-out images whose class a "
                   f"round may change before fine-tuning [{c.probe_drop}]")
    p.add_argument("--ranking", choices=["global", "layer"], default=c.ranking,
                   help=f"magnitude ranking across layers or per layer [{c.ranking}]")
    p.add_argument("--min-density", type=float, default=c.min_density,
                   help=f"no layer below this density [{c.min_density}]")
    p.add_argument("--max-failures", type=int, default=c.max_failures,
                   help=f"stop after this many undone rounds [{c.max_failures}]")
    p.add_argument("--finetune-epochs", type=float, default=f.epochs,
                   help=f"fine-tuning epochs per round [{f.epochs}]")
    p.add_argument("--lr", type=float, default=f.lr, help=f"fine-tuning learning rate [{f.lr}]")
    p.add_argument("--batch-size", type=int, default=f.batch_size,
                   help=f"fine-tuning batch size [{f.batch_size}]")
    p.add_argument("--samples", type=int, default=r.samples,
                   help=f"images per layer restoration [{r.samples}]")
    p.add_argument("--positions", type=int, default=r.positions,
                   help=f"output positions sampled per image [{r.positions}]")
    p.add_argument("--error-share", type=float, default=r.error_share,
                   help=f"share of each round's removals chosen by output error, the rest "
                   f"by magnitude [{r.error_share}]")
    p.add_argument("--reference", choices=["matched", "given"], default="matched",
                   help="budget from a dense model trained as long as pruning fine-tunes "
                   "(matched) or from the model as given [matched]")
    p.add_argument("--hardware", default="eyeriss", help="energy model hardware [eyeriss]")
    p.add_argument("--energy-batch", type=int, default=c.energy_batch,
                   help=f"batch size N of the energy estimate [{c.energy_batch}]")
    p.add_argument("--bits", type=int, default=None, help="bit-width of the energy estimate [16]")


def configs(opts: dict[str, Any]) -> tuple[Any, Any]:
    """(PruneConfig, TrainConfig) from stored options."""
    from nnjoules.prune.config import PruneConfig, RestoreConfig, TrainConfig

    restore = RestoreConfig(samples=opts["samples"], positions=opts["positions"],
                            error_share=opts["error_share"])
    cfg = PruneConfig(method=opts["method"], accuracy_drop=opts["accuracy_drop"],
                      energy_target=opts["energy_target"], rounds=opts["rounds"],
                      rate=opts["rate"], energy_exponent=opts["energy_exponent"],
                      ranking=opts["ranking"], min_density=opts["min_density"],
                      allocation=opts.get("allocation", "energy"),
                      probe_drop=opts.get("probe_drop", PruneConfig.probe_drop),
                      max_failures=opts["max_failures"], energy_batch=opts["energy_batch"],
                      bits=opts["bits"], seed=opts["seed"], restore=restore)
    ft = TrainConfig(epochs=opts["finetune_epochs"], lr=opts["lr"],
                     batch_size=opts["batch_size"])
    return cfg, ft


def _run(args: argparse.Namespace) -> int:
    from nnjoules.prune.finetune import init_distributed_from_env
    from nnjoules.prune.loop import Pruner

    init_distributed_from_env()

    if args.resume is not None:
        state = Pruner.read_checkpoint(args.resume)
        opts = dict(state["extra"]["options"])
        folder = args.resume
        missing = [k for k in RUN_OPTIONS if k not in opts and k not in OPTIONAL]
        if missing:
            raise InputError(f"{folder} was written by another version of nnjoules "
                             f"(its options lack {', '.join(missing)}); start a new run")
    else:
        if args.out is None:
            raise InputError("give --out DIR (the run folder) or --resume DIR")
        opts = {k: getattr(args, k) for k in RUN_OPTIONS}
        folder = args.out
        if (folder / "pruner-state.pt").exists():
            raise InputError(f"{folder} already holds a run; continue it with --resume "
                             f"{folder} or choose another --out")
    if args.stop_after is not None and args.stop_after < 1:
        raise InputError(f"--stop-after must be positive, got {args.stop_after}")
    cfg, ft = configs(opts)  # validates budgets before any data is read
    data_args = argparse.Namespace(**{**vars(args), **{k: opts[k] for k in RUN_OPTIONS}})
    splits = load_splits(data_args)
    return run_prune(args, opts, cfg, ft, splits, folder)


def run_prune(args: argparse.Namespace, opts: dict[str, Any], cfg: Any, ft: Any, splits: Any,
              folder: Path) -> int:
    """Prune with the options; write the folder; print the summary."""
    from nnjoules.prune.api import prune
    from nnjoules.prune.bars import bars, round_line
    from nnjoules.prune.finetune import is_main_rank
    from nnjoules.prune.masks import prunable_layers
    from nnjoules.prune.modelio import resolve_trained, save_model

    name, model = resolve_trained(opts["model"])
    prunable_layers(model)  # a clear error before anything runs
    from nnjoules.threads import apply_threads  # (thread policy: --threads, see threads.py)

    apply_threads(args.threads, model=model, input_shape=splits.input_shape)
    done = {"n": 0}
    with bars(quiet=args.quiet) as ui:
        ui.label = f"fine-tuning ({cfg.method})"

        def on_step(record: Any) -> None:
            ui.note(round_line(cfg.method, record, dense_energy[0]))
            done["n"] += 1
            if args.stop_after is not None and done["n"] >= args.stop_after:
                raise StopRequested

        dense_energy = [0.0]
        from nnjoules.prune.loop import Pruner

        meter = _meter(splits, cfg, opts)
        if args.resume is not None:
            dense_energy[0] = float(Pruner.read_checkpoint(folder)["history"][0]["energy"])
        else:
            dense_report = meter.report(model)
            dense_energy[0] = dense_report.total()
            if is_main_rank():
                folder.mkdir(parents=True, exist_ok=True)
                dense_report.to_json(folder / "energy-dense.json")
        ui.note(f"{cfg.method} pruning of {name} on {splits.describe()}")
        try:
            result = prune(model, splits.train, splits.val, hardware=opts["hardware"],
                           method=cfg.method, accuracy_drop=cfg.accuracy_drop,
                           energy_target=cfg.energy_target, config=cfg, finetune=ft,
                           reference=opts["reference"], test_data=splits.test,
                           checkpoint_dir=folder, resume=True, device=args.device,
                           on_step=on_step, progress=ui.batches,
                           extra_state={"options": opts, "command": command_line()})
        except StopRequested:
            print(f"stopped after {done['n']} round(s); continue with "
                  f"`nnjoules prune --resume {folder}`")
            return 0
    if not is_main_rank():
        return 0
    model.to("cpu")
    meter.report(result.model).to_json(folder / "energy-pruned.json")
    save_model(folder / "model.pt", result.model, name=name, num_classes=splits.num_classes,
               in_channels=splits.input_shape[0],
               info={"method": cfg.method, "test_accuracy": result.extra.get("test_accuracy"),
                     "val_accuracy": result.final.accuracy,
                     "energy_reduction": result.energy_reduction()})
    result.to_json(folder / "result.json")
    if args.json is not None:
        result.to_json(args.json)
    sys.stdout.write(summary(result))
    return 0


def _meter(splits: Any, cfg: Any, opts: dict[str, Any]) -> Any:
    """The energy meter the pruner uses (same density images, batch, bits)."""
    from nnjoules.prune.energy import EnergyMeter
    from nnjoules.prune.loop import _images

    return EnergyMeter(_images(splits.train, cfg.density_images), hardware=opts["hardware"],
                       batch=cfg.energy_batch, bits=cfg.bits, compression=cfg.compression)


def summary(result: Any) -> str:
    """A short plain-text summary of a `PruneResult`."""
    dense, final = result.dense, result.final
    test = result.extra.get("test_accuracy")
    ref = result.extra.get("reference", {})
    lines = [
        f"method            {result.method}  (stopped: {result.stop_reason})",
        f"reference         val {100 * result.reference_accuracy:.2f}%  "
        f"({ref.get('kind', '?')}, {ref.get('epochs', 0):g} extra epochs); "
        f"floor {100 * result.accuracy_floor:.2f}%",
        f"accuracy          val {100 * final.accuracy:.2f}%"
        + (f"  test {100 * test:.2f}%" if test is not None else ""),
        f"non-zero weights  {final.nonzero_weights} of {final.weights} "
        f"({100 * final.density:.1f}%)",
        f"non-skipped MACs  {final.nonskipped_macs:,.0f} (dense {dense.nonskipped_macs:,.0f})",
        f"energy            {final.energy:,.0f} {result.energy_unit} (dense {dense.energy:,.0f}): "
        f"{result.energy_reduction():.2f}x less",
        "per layer (density, energy):  " + ", ".join(
            f"{layer.name} {100 * layer.density:.0f}% {layer.energy:,.0f}"
            for layer in final.layers),
    ]
    return "\n".join(lines) + "\n"

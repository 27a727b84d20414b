"""``nnjoules prune [MODEL]``: energy-aware (or magnitude) pruning with a resumable folder.

``--out DIR`` (new, empty, or refused) receives first ``run.json`` (the run's identity
and options), then ``energy-dense.json``, the dense reference (``reference.pt``; its
training is checkpointed per epoch in ``reference-training.pt``), the checkpoint
``pruner-state.pt`` after every round (atomic), and at the end the pruned model
``model.pt`` (masks kept; ``+ .json`` sidecar), ``result.json``,
``energy-pruned.json``, and ``model-module.pt`` / ``model-state-dict.pt`` (the pruned
model for use without nnjoules; ``--export-onnx`` also writes ONNX, see
`nnjoules.commands.prune_export`). ``nnjoules prune --resume DIR`` continues a run that was killed
or stopped (``--stop-after N`` rounds, or ``--stop-after reference``) in any phase,
with the options it was started with, and reaches the same result; options given with
it must agree with the run's. Progress of every phase goes to stderr.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

from nnjoules.commands.prune_checks import check_prune_options, warn_small_pool
from nnjoules.commands.train import (
    Given,
    add_data_options,
    command_line,
    load_splits,
)
from nnjoules.errors import InputError

# Options that define a run: stored in the checkpoint, restored by --resume.
RUN_OPTIONS = ("model", "method", "accuracy_drop", "energy_target", "rounds", "rate",
               "energy_exponent", "ranking", "finetune_epochs", "lr", "batch_size",
               "hardware", "energy_batch", "bits", "samples", "positions", "error_share",
               "reference", "data", "data_dir", "train_limit", "val_limit", "test_limit",
               "seed", "min_density", "max_failures", "allocation", "probe_drop",
               "granularity", "compression", "compression_levels", "gating", "dataflow")
# Options added later, with the value a run folder that lacks them was run with.
LATER_OPTIONS = {"dataflow": "row-stationary"}


class StopRequested(Exception):
    """Raised from the step callback once ``--stop-after`` rounds have run."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``prune`` subcommand."""
    p = sub.add_parser("prune", help="prune a CNN guided by the energy model",
                       description="Prune MODEL (a model file from `nnjoules train`, a "
                       "built-in name with a shipped checkpoint, or package.module:factory) "
                       "with energy-aware pruning or the magnitude baseline, under an "
                       "accuracy budget and an optional energy target.")
    p.add_argument("model", nargs="?", default=None, metavar="MODEL", action=Given,
                   help="model to prune [lenet5: the shipped checkpoint]")
    p.add_argument("--out", type=Path, default=None, help="run folder (checkpoints, results)")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue the run in DIR with its stored options (options given "
                   "with it must agree with them)")
    p.add_argument("--stop-after", default=None, metavar="N",
                   help="stop after N rounds of this invocation, or after the dense "
                   "reference ('reference'); continue with --resume")
    add_prune_options(p)
    add_data_options(p)
    p.add_argument("--json", type=Path, default=None, help="also write the result JSON here")
    from nnjoules.commands.prune_export import add_export_option

    add_export_option(p)
    p.add_argument("--permanent", action="store_true",
                   help="write model.pt with the masks folded into the weights (half the "
                   "size; weight pruning keeps weight_orig and weight_mask otherwise)")
    p.set_defaults(run=_run)


def add_prune_options(p: argparse.ArgumentParser) -> None:
    """Algorithm, budget and energy options (shared with ``demo``)."""
    from nnjoules.prune.config import PruneConfig, RestoreConfig, TrainConfig

    c, f, r = PruneConfig(), TrainConfig(), RestoreConfig()
    add = functools.partial(p.add_argument, action=Given)  # --resume refuses contradictions
    add("--method", choices=["energy-aware", "magnitude"], default=c.method,
        help=f"pruning method [{c.method}]")
    add("--granularity", choices=["weight", "channel", "both"], default=c.granularity,
        help="what is removed: single weights (masks), whole output channels (the "
        "model shrinks; with --method magnitude, L1-norm filter pruning), or both "
        "(channels for at most half the rounds, then weights; one budget) "
        f"[{c.granularity}]")
    add("--accuracy-drop", type=float, default=c.accuracy_drop,
        help="allowed top-1 drop from the dense reference, as a fraction "
        f"(0.01 = 1 point) [{c.accuracy_drop}]")
    add("--energy-target", type=float, default=None,
        help="stop when energy <= this fraction of dense, in (0, 1]")
    add("--rounds", type=int, default=c.rounds, help=f"most rounds [{c.rounds}]")
    add("--rate", type=float, default=c.rate,
        help=f"fraction of remaining weights removed per round [{c.rate}]")
    add("--energy-exponent", type=float, default=c.energy_exponent,
        help=f"energy weighting of per-layer rates [{c.energy_exponent}]")
    add("--allocation", choices=["energy", "saliency", "probe"],
        default=c.allocation,
        help="energy-aware: how a round's removal is shared between layers; "
        "probe: each layer, in energy order, as far as a prediction check on "
        f"held-out training images allows [{c.allocation}]")
    add("--probe-drop", type=float, default=c.probe_drop,
        help="allocation probe: share of the held-out images whose class a "
        f"round may change before fine-tuning [{c.probe_drop}]")
    add("--ranking", choices=["global", "layer"], default=c.ranking,
        help=f"magnitude ranking across layers or per layer [{c.ranking}]")
    add("--min-density", type=float, default=c.min_density,
        help=f"no layer below this density [{c.min_density}]")
    add("--max-failures", type=int, default=c.max_failures,
        help=f"stop after this many undone rounds [{c.max_failures}]")
    add("--finetune-epochs", type=float, default=f.epochs,
        help=f"fine-tuning epochs per round [{f.epochs}]")
    add("--lr", type=float, default=f.lr, help=f"fine-tuning learning rate [{f.lr}]")
    add("--batch-size", type=int, default=f.batch_size,
        help=f"fine-tuning batch size [{f.batch_size}]")
    add("--samples", type=int, default=r.samples,
        help=f"images per layer restoration [{r.samples}]")
    add("--positions", type=int, default=r.positions,
        help=f"output positions sampled per image [{r.positions}]")
    add("--error-share", type=float, default=r.error_share,
        help=f"share of each round's removals chosen by output error, the rest "
        f"by magnitude [{r.error_share}]")
    add("--reference", choices=["matched", "given"], default="matched",
        help="budget from a dense model trained as long as pruning fine-tunes "
        "(matched) or from the model as given [matched]")
    add("--hardware", default="eyeriss", help="energy model hardware [eyeriss]")
    from nnjoules.commands.options import dataflow_name
    from nnjoules.energy.dataflows import known_dataflows

    add("--dataflow", type=dataflow_name, default=c.dataflow, metavar="NAME",
        help=f"dataflow of the energy model that guides the pruning and measures it: "
        f"{known_dataflows()} [{c.dataflow}]")
    add("--energy-batch", type=int, default=c.energy_batch,
        help=f"batch size N of the energy estimate [{c.energy_batch}]")
    add("--bits", default=None,
        help="bit-widths of the energy estimate: all operands (8) or weights,ifmaps,ofmaps "
        "(8,8,16) [16]")
    from nnjoules.energy.cost import Compression, CompressionLevels, Gating

    add("--compression", choices=[v.value for v in Compression], default=c.compression,
        help=f"DRAM compression of zeros in the energy estimate [{c.compression}]")
    add("--compression-levels", choices=[v.value for v in CompressionLevels],
        default=c.compression_levels, metavar="LEVELS",  # "{dram,dram,glb,all}" misleads
        help="which moves carry compressed data in the estimate: dram, dram,glb or all "
        f"[{c.compression_levels}]")
    add("--gating", choices=[v.value for v in Gating], default=c.gating,
        help=f"which zeros skip a MAC in the estimate [{c.gating}]")


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
                      bits=opts["bits"], seed=opts["seed"], restore=restore,
                      granularity=opts["granularity"], compression=opts["compression"],
                      gating=opts["gating"], compression_levels=opts["compression_levels"],
                      dataflow=opts.get("dataflow", LATER_OPTIONS["dataflow"]))
    ft = TrainConfig(epochs=opts["finetune_epochs"], lr=opts["lr"],
                     batch_size=opts["batch_size"])
    return cfg, ft


def _run(args: argparse.Namespace) -> int:
    from nnjoules.prune.finetune import check_device, init_distributed_from_env
    from nnjoules.prune.runfolder import check_new_folder, read_manifest

    check_device(args.device)  # before any data is read or folder made
    check_prune_options(args)
    from nnjoules.commands.prune_export import check_export_option

    check_export_option(args)
    init_distributed_from_env()
    stop = _stop_after(args.stop_after)
    if args.model is None:  # None as default tells an absent MODEL from a typed one
        args.model = "lenet5"
    if args.resume is not None:
        folder = args.resume
        opts = {**LATER_OPTIONS, **read_manifest(folder).get("options", {})}
        missing = [k for k in RUN_OPTIONS if k not in opts]
        if missing:
            raise InputError(f"{folder / 'run.json'} was written by another version of "
                             f"nnjoules (its options lack {', '.join(missing)}); start a new run")
        _refuse_contradictions(args, opts, folder)
        if (folder / "result.json").is_file() and (folder / "model.pt").is_file():
            return _finished(folder, opts, args.export_onnx)
    else:
        if args.out is None:
            raise InputError("give --out DIR (the run folder) or --resume DIR")
        opts = {k: getattr(args, k) for k in RUN_OPTIONS}
        folder = args.out
        check_new_folder(folder)  # never overwrite a user's files
    cfg, ft = configs(opts)  # validates budgets before any data is read
    data_args = argparse.Namespace(**{**vars(args), **{k: opts[k] for k in RUN_OPTIONS}})
    splits = load_splits(data_args)
    warn_small_pool(len(splits.train), cfg)
    return run_prune(args, opts, cfg, ft, splits, folder, stop)


def _stop_after(text: str | None) -> int | str | None:
    """``--stop-after``: a positive number of rounds, or ``reference``."""
    if text is None or text == "reference":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"--stop-after must be a positive number of rounds or 'reference', "
                         f"got {text!r}")
    return value


def _refuse_contradictions(args: argparse.Namespace, opts: dict[str, Any],
                           folder: Path) -> None:
    """``--resume DIR`` continues the run as it was started: an option given now that
    differs from the run's is refused, naming the option."""
    if args.out is not None and args.out.resolve() != folder.resolve():
        raise InputError(f"--out {args.out} contradicts --resume {folder}: a resumed run "
                         "writes into its own folder")
    for key in sorted(getattr(args, "given", ())):
        if key not in RUN_OPTIONS or _same(key, getattr(args, key), opts[key]):
            continue
        flag = "MODEL" if key == "model" else "--" + key.replace("_", "-")
        raise InputError(f"{flag} {getattr(args, key)} contradicts the run in {folder} "
                         f"(started with {opts[key]}); resume without it, or start a new run "
                         "with --out")


def _same(key: str, given: Any, stored: Any) -> bool:
    if key in ("model", "data_dir") and given is not None and stored is not None:
        return bool(Path(given).resolve() == Path(stored).resolve())
    return bool(given == stored)


def run_prune(args: argparse.Namespace, opts: dict[str, Any], cfg: Any, ft: Any, splits: Any,
              folder: Path, stop: int | str | None = None) -> int:
    """Prune with the options; write the folder; print the summary."""
    from nnjoules.models.loading import resolve_trained
    from nnjoules.prune.api import prune, run_identity
    from nnjoules.prune.bars import bars, round_line
    from nnjoules.prune.finetune import is_main_rank
    from nnjoules.prune.masks import check_finite, prunable_layers
    from nnjoules.prune.modelio import save_model
    from nnjoules.prune.runfolder import check_run, open_run

    name, model = resolve_trained(opts["model"])
    prunable_layers(model)  # a clear error before anything runs
    check_finite(model)
    if cfg.granularity in ("channel", "both"):
        from nnjoules.prune.structure import check_channel_support

        check_channel_support(model)  # before run.json is written
    from nnjoules.threads import apply_threads  # (thread policy: --threads, see threads.py)

    apply_threads(args.threads, model=model, input_shape=splits.input_shape)
    resume = args.resume is not None
    ident = run_identity(model, (splits.train, splits.val, splits.test), cfg, ft,
                         opts["reference"], None, opts["hardware"])
    # the folder's checks, then the dense estimate, then run.json: a layer no mapping fits
    # on --hardware fails here without leaving a run folder that only --resume would accept
    check_run(folder, ident, resume=resume)
    if not args.quiet and is_main_rank():
        print("estimating the dense model's energy", file=sys.stderr)
    meter = _meter(splits, cfg, opts)
    dense_report = meter.report(model)
    if is_main_rank():  # run.json first: a kill in any later phase leaves a resumable folder
        open_run(folder, ident, resume=resume,
                 extra={"options": opts, "command": command_line()})
    done = {"n": 0}
    with bars(quiet=args.quiet) as ui:
        ui.note(f"{cfg.method} pruning of {name} on {splits.describe()}"
                + (f" (resuming {folder})" if resume else ""))
        if is_main_rank():
            dense_report.to_json(folder / "energy-dense.json")

        def on_phase(phase: str, text: str) -> None:
            if phase in ("reference", "round"):
                ui.label = "dense reference" if phase == "reference" else \
                    text.split(":")[0] + ": fine-tuning"
            if phase == "warning":  # shown even with --quiet, and once
                print(text, file=sys.stderr)
                return
            ui.note(text)
            if phase == "reference-done" and stop == "reference":
                raise StopRequested("the dense reference")

        # channel pruning shrinks the model: count its non-zero weights against the dense's
        dense_weights = dense_report.weights() if cfg.granularity == "channel" else None

        def on_step(record: Any) -> None:
            ui.note(round_line(cfg.method, record, dense_report.total(), dense_weights))
            done["n"] += 1
            if isinstance(stop, int) and done["n"] >= stop:
                raise StopRequested(f"{done['n']} round(s)")

        try:
            result = prune(model, splits.train, splits.val, hardware=opts["hardware"],
                           method=cfg.method, accuracy_drop=cfg.accuracy_drop,
                           energy_target=cfg.energy_target, config=cfg, finetune=ft,
                           reference=opts["reference"], test_data=splits.test,
                           checkpoint_dir=folder, resume=resume, device=args.device,
                           on_step=on_step, progress=ui.batches, on_phase=on_phase,
                           extra_state={"options": opts, "command": command_line()},
                           num_classes=splits.num_classes)
        except StopRequested as stopped:
            print(f"stopped after {stopped}; continue with `nnjoules prune --resume {folder}`")
            return 0
    if not is_main_rank():
        return 0
    model.to("cpu")
    pruned_report = meter.report(result.model)
    pruned_report.to_json(folder / "energy-pruned.json")
    if args.permanent:
        from nnjoules.prune.masks import make_permanent

        make_permanent(result.model)
    save_model(folder / "model.pt", result.model, name=name, num_classes=splits.num_classes,
               in_channels=splits.input_shape[0],
               cuts=result.extra.get("cuts"),
               info={"method": cfg.method, "granularity": cfg.granularity,
                     **({"stages": result.extra["stages"]} if "stages" in result.extra
                        else {}),
                     "test_accuracy": result.extra.get("test_accuracy"),
                     "val_accuracy": result.final.accuracy,
                     "energy_reduction": result.energy_reduction(), "run": ident,
                     "masks": "folded in" if args.permanent else "kept"})
    result.to_json(folder / "result.json")  # the run is finished: exports come after
    if args.json is not None:
        result.to_json(args.json)
    from nnjoules.commands.prune_export import export_run, write_plain_files
    from nnjoules.prune.export import layer_densities

    write_plain_files(folder, result.model)
    if args.export_onnx is not None:
        export_run(args.export_onnx, result.model, layer_densities(pruned_report),
                   splits.input_shape, opts, folder=folder)
    sys.stdout.write(summary(result, cfg.energy_batch))
    return 0


def _finished(folder: Path, opts: dict[str, Any], export_onnx: Path | None = None) -> int:
    """``--resume`` of a run that already finished: its summary again, nothing redone
    (with ``--export-onnx``: its model exported)."""
    import json

    from nnjoules.prune.result import PruneResult

    try:
        result = PruneResult.from_dict(json.loads((folder / "result.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{folder / 'result.json'}: unreadable ({type(err).__name__}); "
                         "start a new run") from None
    print(f"{folder}: this run already finished; nothing to resume (its summary follows)",
          file=sys.stderr)
    if export_onnx is not None:
        _export_finished(folder, opts, export_onnx)
    sys.stdout.write(summary(result, int(opts["energy_batch"])))
    return 0


def _export_finished(folder: Path, opts: dict[str, Any], path: Path) -> None:
    """``--resume DIR --export-onnx PATH`` of a finished run: its model.pt exported with
    the densities in its energy-pruned.json."""
    from nnjoules.commands.prune_export import densities_of_report_file, export_run
    from nnjoules.prune.modelio import load_model_file

    _name, model, _info = load_model_file(folder / "model.pt")
    densities = densities_of_report_file(folder / "energy-pruned.json")
    shape = getattr(model, "input_shape", None)
    if not isinstance(shape, tuple):
        raise InputError(f"{folder / 'model.pt'}: the model does not record its input shape")
    export_run(path, model, densities, shape, opts, folder=folder)


def _meter(splits: Any, cfg: Any, opts: dict[str, Any]) -> Any:
    """The energy meter the pruner uses (same density images, batch, bits, dataflow)."""
    from nnjoules.prune.energy import EnergyMeter
    from nnjoules.prune.loop import _images

    return EnergyMeter.of(cfg, _images(splits.train, cfg.density_images), opts["hardware"])


def summary(result: Any, energy_batch: int | None = None) -> str:
    """A short plain-text summary of a `PruneResult`; weights counted against the dense
    model (channel pruning shrinks it), energy at batch ``energy_batch``."""
    dense, final = result.dense, result.final
    test = result.extra.get("test_accuracy")
    ref = result.extra.get("reference", {})
    stopped = result.stop_reason
    if final.round == 0 and len(result.history) > 1:
        stopped += "; no round met the accuracy budget, the model is unpruned"
    dense_layers = {layer.name: layer.weights for layer in dense.layers}
    batch = f" (batch {energy_batch})" if energy_batch is not None else ""
    flow = result.extra.get("dataflow", "row-stationary")
    flow = "" if flow == "row-stationary" else f" ({flow} dataflow)"
    lines = [
        f"method            {result.method}  (stopped: {stopped})",
        f"reference         val {100 * result.reference_accuracy:.2f}%  "
        f"({ref.get('kind', '?')}, {ref.get('epochs', 0):g} extra epochs); "
        f"floor {100 * result.accuracy_floor:.2f}%",
        f"accuracy          val {100 * final.accuracy:.2f}%"
        + (f"  test {100 * test:.2f}%" if test is not None else ""),
        f"non-zero weights  {final.nonzero_weights:,} of {dense.weights:,} "
        f"({_percent(final.nonzero_weights, dense.weights)} of the dense model)",
        f"non-skipped MACs  {final.nonskipped_macs:,.0f} (dense {dense.nonskipped_macs:,.0f})",
        f"energy{batch:<12}{_energy(final.energy, result.energy_unit)} "
        f"(dense {_energy(dense.energy, result.energy_unit, named=False)}): "
        f"{result.energy_reduction():.2f}x less{flow}",
        *_latency_lines(result.extra.get("cpu_latency")),
        "per layer (non-zero weights of dense, energy):  " + ", ".join(
            f"{'='.join((layer.name, *layer.tied))} "
            f"{_percent(layer.nonzero_weights, dense_layers.get(layer.name, layer.weights))} "
            f"{layer.energy:,.0f}"
            for layer in final.layers),
    ]
    return "\n".join(lines) + "\n"


def _energy(value: float, unit: str, *, named: bool = True) -> str:
    """A summary energy: in pJ its natural unit (``5.83 mJ``, `energy_text`), else
    ``1,234 normalized`` (the unit left out when not ``named``)."""
    if unit == "pJ":
        from nnjoules.report.table import energy_text

        return energy_text(value, unit)
    return f"{value:,.0f} {unit}" if named else f"{value:,.0f}"


def _latency_lines(record: dict[str, Any] | None) -> list[str]:
    if not record or not record.get("dense"):
        return []
    from nnjoules.prune.latency import latency_line

    return [f"CPU latency       {latency_line(record)}"]


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"

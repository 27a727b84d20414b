"""``nnjoules demo``: energy-aware vs magnitude pruning of the shipped LeNet-5, offline.

Loads the default model (trained by ``nnjoules train``, shipped with the package),
estimates its energy on the Eyeriss chip, trains the dense reference for as many
epochs as pruning may fine-tune, runs energy-aware and magnitude weight pruning and
energy-aware channel pruning (`METHODS`) under the same accuracy budget, prints a
comparison table and writes the pruned models and a JSON report. ``--quick`` uses
10,000 training images and 6 rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnjoules.commands.train import add_threads_option, command_line
from nnjoules.prune.config import PruneConfig


@dataclass(frozen=True)
class Plan:
    """How much data and how many rounds a demo uses."""

    train_limit: int | None
    val_limit: int | None
    rounds: int
    finetune_epochs: float


FULL = Plan(train_limit=None, val_limit=None, rounds=10, finetune_epochs=0.5)
QUICK = Plan(train_limit=10_000, val_limit=5_000, rounds=6, finetune_epochs=0.5)

# name in the table, demo.json and the model file -> (method, granularity)
METHODS = {"energy-aware": ("energy-aware", "weight"), "magnitude": ("magnitude", "weight"),
           "energy-aware-channel": ("energy-aware", "channel")}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``demo`` subcommand."""
    p = sub.add_parser("demo", help="energy-aware vs magnitude pruning, one command",
                       description="Prune the shipped LeNet-5 (Fashion-MNIST) with energy-aware "
                       "and magnitude weight pruning and energy-aware channel pruning under "
                       "the same 1-point accuracy budget and compare accuracy, non-zero "
                       "weights, non-skipped MACs and energy.")
    p.add_argument("--quick", action="store_true",
                   help="10,000 training images and 6 rounds (under a minute on 2 cores)")
    p.add_argument("--rounds", type=int, default=None,
                   help="most pruning rounds [10; 6 with --quick]")
    p.add_argument("--out", type=Path, default=Path("nnjoules-demo"),
                   help="folder for the pruned models and demo.json [nnjoules-demo]")
    p.add_argument("--accuracy-drop", type=float, default=0.01,
                   help="allowed top-1 drop from the dense reference [0.01 = 1 point]")
    p.add_argument("--energy-batch", type=int, default=None,
                   help=f"batch size N of the energy estimate [{PruneConfig().energy_batch}]")
    p.add_argument("--bits", default=None,
                   help="bit-widths of the energy estimate: all operands (8) or "
                   "weights,ifmaps,ofmaps (8,8,16) [16]")
    p.add_argument("--hardware", default="eyeriss", help="energy model hardware [eyeriss]")
    from nnjoules.commands.options import dataflow_name

    p.add_argument("--dataflow", type=dataflow_name, default="row-stationary", metavar="NAME",
                   help="dataflow of the energy model (see `nnjoules prune --help`) "
                   "[row-stationary]")
    p.add_argument("--data-dir", default=None,
                   help="folder of the Fashion-MNIST IDX files "
                   "[the Debian package's /usr/share/datasets/fashion-mnist]")
    p.add_argument("--download", action="store_true", help="download Fashion-MNIST if missing")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto [auto]")
    add_threads_option(p)
    p.add_argument("--seed", type=int, default=0, help="seed [0]")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from nnjoules.commands.numbers import DEMO, bit_widths, check_numbers
    from nnjoules.data import fashion_mnist_splits
    from nnjoules.models.builtin import DEFAULT_MODEL, pretrained, pretrained_info
    from nnjoules.progress import wrote
    from nnjoules.prune.api import matched_reference, prune
    from nnjoules.prune.bars import bars
    from nnjoules.prune.energy import EnergyMeter
    from nnjoules.prune.finetune import TrainConfig, check_device, evaluate
    from nnjoules.prune.loop import _images
    from nnjoules.prune.masks import clone
    from nnjoules.prune.modelio import save_model
    from nnjoules.threads import apply_threads

    check_device(args.device)  # before any data is read or folder made
    check_numbers(args, DEMO)
    bits = bit_widths(args.bits)
    began = time.perf_counter()
    plan = QUICK if args.quick else FULL
    if args.rounds is not None:
        plan = replace(plan, rounds=args.rounds)
    splits = fashion_mnist_splits(args.data_dir, train_limit=plan.train_limit,
                                  val_limit=plan.val_limit, download=args.download)
    base = PruneConfig(rounds=plan.rounds, seed=args.seed, accuracy_drop=args.accuracy_drop,
                       bits=bits, dataflow=args.dataflow)
    if args.energy_batch is not None:
        base = replace(base, energy_batch=args.energy_batch)
    ft = TrainConfig(epochs=plan.finetune_epochs)
    dense = pretrained(DEFAULT_MODEL)
    threads = apply_threads(args.threads, model=dense, input_shape=splits.input_shape)
    meter = EnergyMeter.of(base, _images(splits.train, base.density_images), args.hardware)
    report = meter.report(dense)
    report = replace(report, workload=replace(report.workload, name=DEFAULT_MODEL))
    args.out.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"command": command_line(), "quick": args.quick,
                           "data": splits.describe(), "energy_batch": base.energy_batch,
                           "hardware": str(args.hardware), "dataflow": base.dataflow,
                           "energy_unit": report.unit.value,
                           "checkpoint": pretrained_info(DEFAULT_MODEL),
                           "threads": threads.to_dict()}
    # on the demo's own splits, as the reference and the pruned models are
    dense_acc = {"accuracy": evaluate(dense, splits.val, device=args.device),
                 "test_accuracy": evaluate(dense, splits.test, device=args.device)}
    out["dense"] = dense_acc
    sys.stdout.write(dense_table(report, splits.describe(), base.energy_batch))
    sys.stdout.flush()
    results = {}
    with bars(quiet=args.quiet) as ui:
        epochs = base.rounds * ft.epochs
        ui.label = "dense reference"
        ui.note(f"training the dense reference for {epochs:g} more epochs (as long as "
                "pruning may fine-tune)")
        ref = matched_reference(dense, splits.train, splits.val, splits.test, epochs=epochs,
                                finetune=ft, seed=args.seed, device=args.device)
        ui.note(f"dense reference: val {100 * ref['accuracy']:.2f}%, budget: val >= "
                f"{100 * (ref['accuracy'] - base.accuracy_drop):.2f}%")
        out["reference"] = ref
        for label, (method, granularity) in METHODS.items():
            ui.label = f"fine-tuning ({label})"
            results[label] = prune(
                clone(dense), splits.train, splits.val, hardware=args.hardware, method=method,
                accuracy_drop=base.accuracy_drop,
                config=replace(base, granularity=granularity), finetune=ft,
                reference_accuracy=ref["accuracy"], test_data=splits.test, device=args.device,
                on_step=_printer(ui, label, report.total(),
                                 report.weights() if granularity == "channel" else None),
                progress=ui.batches)
    table = comparison_table(report, dense_acc, ref, results)
    sys.stdout.write(table)
    for label, result in results.items():
        path = args.out / f"{DEFAULT_MODEL}-{label}.pt"
        result.model.to("cpu")
        save_model(path, result.model, name=DEFAULT_MODEL, num_classes=splits.num_classes,
                   cuts=result.extra.get("cuts"),
                   info={"method": METHODS[label][0], "granularity": METHODS[label][1],
                         "test_accuracy": result.extra["test_accuracy"],
                         "energy_reduction": result.energy_reduction()})
        out[label] = result.to_dict()
    out["seconds"] = round(time.perf_counter() - began, 1)
    out["table"] = table
    from nnjoules.io import write_text_atomic

    write_text_atomic(args.out / "demo.json", json.dumps(out, indent=2) + "\n")
    report.to_json(args.out / "energy-dense.json")
    for path in (args.out / "demo.json", args.out / "energy-dense.json",
                 *(args.out / f"{DEFAULT_MODEL}-{method}.pt" for method in results)):
        wrote(path)
    print(f"demo done in {out['seconds']:.0f} s with {threads.count} torch thread(s)",
          file=sys.stderr)
    return 0


def _printer(ui: Any, method: str, dense_energy: float, dense_weights: int | None) -> Any:
    from nnjoules.prune.bars import round_line

    return lambda record: ui.note(round_line(method, record, dense_energy, dense_weights))


def dense_table(report: Any, data: str, batch: int) -> str:
    """Where the dense model's energy goes, per layer."""
    from nnjoules.report.table import bits_text

    total = report.total()
    lines = [f"LeNet-5 on {data}", f"energy on {report.hardware.name} (batch {batch}, "
             f"{report.compression.value} DRAM compression, bits: {bits_text(report)}), "
             f"unit: {report.unit.value}",
             f"{'layer':<14}{'weights':>9}{'MACs':>11}{'energy':>13}{'share':>8}"]
    for item in report.layers:
        lines.append(f"{item.name:<14}{item.layer.num_weights:>9,}{item.layer.macs:>11,}"
                     f"{item.total:>13,.0f}{100 * item.total / total:>7.1f}%")
    lines.append(f"{'total':<14}{report.weights():>9,}{report.macs():>11,}{total:>13,.0f}")
    return "\n".join(lines) + "\n\n"


def comparison_table(report: Any, dense_acc: dict[str, float], ref: dict[str, Any],
                     results: dict[str, Any]) -> str:
    """Dense vs reference vs the pruned models (one row per entry of ``results``,
    which must hold ``"magnitude"``).

    ``dense_acc`` and ``ref`` hold ``accuracy`` (validation) and ``test_accuracy`` of the
    shipped model and of the dense reference (``ref["epochs"]`` more epochs, named in its
    row; its weights and energy are the dense model's, not measured again: ``-``). Both
    ratio columns read the same way: the energy of the model named in the header
    divided by this row's energy, i.e. how many times less energy this row uses
    (below 1: more).
    """
    e_dense = report.total()
    mag = results["magnitude"].final.energy
    head = (f"{'model':<26}{'val acc':>9}{'test acc':>10}{'non-zero w':>12}"
            f"{'non-skip MACs':>15}{'energy':>13}{'dense/this':>12}{'magn./this':>12}")
    ref_name = f"dense reference +{ref['epochs']:g} ep"
    rows = [head, "-" * len(head),
            f"{'dense (shipped)':<26}{_acc(dense_acc, 9)}"
            f"{report.nonzero_weights():>12,.0f}{report.nonskipped_macs():>15,.0f}"
            f"{e_dense:>13,.0f}{_times(e_dense, e_dense)}{_times(mag, e_dense)}",
            f"{ref_name:<26}{_acc(ref, 9)}{'-':>12}{'-':>15}{'-':>13}{'-':>12}{'-':>12}"]
    for method, result in results.items():
        f = result.final
        acc = {"accuracy": f.accuracy, "test_accuracy": result.extra["test_accuracy"]}
        rows.append(f"{method:<26}{_acc(acc, 9)}{f.nonzero_weights:>12,}"
                    f"{f.nonskipped_macs:>15,.0f}{f.energy:>13,.0f}"
                    f"{_times(e_dense, f.energy)}{_times(mag, f.energy)}")
    budget = results["magnitude"].accuracy_floor
    rows.append(f"accuracy budget: validation >= {100 * budget:.2f}% (reference - "
                f"{100 * (ref['accuracy'] - budget):.1f} point)")
    rows.append(f"{ref_name}: the shipped model trained {ref['epochs']:g} more epochs (as "
                "long as pruning may fine-tune); the budget counts from it")
    rows.append("dense/this, magn./this: energy of the dense (magnitude-pruned) model divided "
                "by this row's: how many times less energy this row uses (below 1: more)")
    return "\n" + "\n".join(rows) + "\n"


def _acc(acc: dict[str, Any], width: int) -> str:
    """Validation and test accuracy (``-`` when unknown) in columns of ``width`` and
    ``width + 1`` characters."""
    cells = []
    for key, w in (("accuracy", width), ("test_accuracy", width + 1)):
        value = acc.get(key)
        cells.append(f"{100 * value:>{w - 1}.2f}%" if value is not None else f"{'-':>{w}}")
    return "".join(cells)


def _times(reference: float, energy: float) -> str:
    """``reference / energy`` as ``1.42x`` in a 12-character column."""
    return f"{reference / energy:>11.2f}x" if energy else f"{'-':>12}"

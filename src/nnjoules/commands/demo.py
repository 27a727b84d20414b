"""``nnjoules demo``: energy-aware vs magnitude pruning of the shipped LeNet-5, offline.

Loads the default model (trained by ``nnjoules train``, shipped with the package),
estimates its energy on the Eyeriss chip, trains the dense reference for as many
epochs as pruning may fine-tune, runs energy-aware and magnitude pruning under the
same accuracy budget, prints a comparison table and writes the pruned models and a
JSON report. ``--quick`` uses 10,000 training images and 6 rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnjoules.commands.train import command_line


@dataclass(frozen=True)
class Plan:
    """How much data and how many rounds a demo uses."""

    train_limit: int | None
    val_limit: int | None
    rounds: int
    finetune_epochs: float


FULL = Plan(train_limit=None, val_limit=None, rounds=10, finetune_epochs=0.5)
QUICK = Plan(train_limit=10_000, val_limit=5_000, rounds=6, finetune_epochs=0.5)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``demo`` subcommand."""
    p = sub.add_parser("demo", help="energy-aware vs magnitude pruning, one command",
                       description="Prune the shipped LeNet-5 (Fashion-MNIST) with energy-aware "
                       "and magnitude pruning under the same 1-point accuracy budget and "
                       "compare accuracy, non-zero weights, non-skipped MACs and energy.")
    p.add_argument("--quick", action="store_true",
                   help="10,000 training images and 6 rounds (about a minute)")
    p.add_argument("--rounds", type=int, default=None,
                   help="most pruning rounds [10; 6 with --quick]")
    p.add_argument("--out", type=Path, default=Path("nnjoules-demo"),
                   help="folder for the pruned models and demo.json [nnjoules-demo]")
    p.add_argument("--accuracy-drop", type=float, default=0.01,
                   help="allowed top-1 drop from the dense reference [0.01 = 1 point]")
    p.add_argument("--energy-batch", type=int, default=None,
                   help="batch size N of the energy estimate [the PruneConfig default]")
    p.add_argument("--hardware", default="eyeriss", help="energy model hardware [eyeriss]")
    p.add_argument("--data-dir", default=None, help="folder of the Fashion-MNIST IDX files")
    p.add_argument("--download", action="store_true", help="download Fashion-MNIST if missing")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto [auto]")
    p.add_argument("--seed", type=int, default=0, help="seed [0]")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from nnjoules.data import fashion_mnist_splits
    from nnjoules.models.builtin import DEFAULT_MODEL, pretrained, pretrained_info
    from nnjoules.prune.api import matched_reference, prune
    from nnjoules.prune.bars import bars
    from nnjoules.prune.config import PruneConfig
    from nnjoules.prune.energy import EnergyMeter
    from nnjoules.prune.finetune import TrainConfig, check_device
    from nnjoules.prune.loop import _images
    from nnjoules.prune.masks import clone
    from nnjoules.prune.modelio import save_model

    check_device(args.device)  # before any data is read or folder made
    began = time.perf_counter()
    plan = QUICK if args.quick else FULL
    if args.rounds is not None:
        plan = replace(plan, rounds=args.rounds)
    splits = fashion_mnist_splits(args.data_dir, train_limit=plan.train_limit,
                                  val_limit=plan.val_limit, download=args.download)
    base = PruneConfig(rounds=plan.rounds, seed=args.seed, accuracy_drop=args.accuracy_drop)
    if args.energy_batch is not None:
        base = replace(base, energy_batch=args.energy_batch)
    ft = TrainConfig(epochs=plan.finetune_epochs)
    dense = pretrained(DEFAULT_MODEL)
    meter = EnergyMeter(_images(splits.train, base.density_images), hardware=args.hardware,
                        batch=base.energy_batch, bits=base.bits, compression=base.compression)
    report = meter.report(dense)
    args.out.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"command": command_line(), "quick": args.quick,
                           "data": splits.describe(), "energy_batch": base.energy_batch,
                           "hardware": str(args.hardware), "energy_unit": report.unit.value,
                           "checkpoint": pretrained_info(DEFAULT_MODEL)}
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
        for method in ("energy-aware", "magnitude"):
            ui.label = f"fine-tuning ({method})"
            results[method] = prune(
                clone(dense), splits.train, splits.val, hardware=args.hardware, method=method,
                accuracy_drop=base.accuracy_drop, config=base, finetune=ft,
                reference_accuracy=ref["accuracy"], test_data=splits.test, device=args.device,
                on_step=_printer(ui, method, report.total()),
                progress=ui.batches)
    dense_test = float(pretrained_info(DEFAULT_MODEL)["test_accuracy"])
    table = comparison_table(report, dense_test, ref, results)
    sys.stdout.write(table)
    for method, result in results.items():
        path = args.out / f"{DEFAULT_MODEL}-{method}.pt"
        result.model.to("cpu")
        save_model(path, result.model, name=DEFAULT_MODEL, num_classes=splits.num_classes,
                   info={"method": method, "test_accuracy": result.extra["test_accuracy"],
                         "energy_reduction": result.energy_reduction()})
        out[method] = result.to_dict()
    out["seconds"] = round(time.perf_counter() - began, 1)
    out["table"] = table
    from nnjoules.io import write_text_atomic

    write_text_atomic(args.out / "demo.json", json.dumps(out, indent=2) + "\n")
    report.to_json(args.out / "energy-dense.json")
    print(f"wrote {args.out}/demo.json, {args.out}/energy-dense.json and the pruned models "
          f"({out['seconds']:.0f} s)")
    return 0


def _printer(ui: Any, method: str, dense_energy: float) -> Any:
    from nnjoules.prune.bars import round_line

    return lambda record: ui.note(round_line(method, record, dense_energy))


def dense_table(report: Any, data: str, batch: int) -> str:
    """Where the dense model's energy goes, per layer."""
    total = report.total()
    lines = [f"LeNet-5 on {data}", f"energy on {report.hardware.name} (batch {batch}, "
             f"{report.compression.value} DRAM compression), unit: {report.unit.value}",
             f"{'layer':<14}{'weights':>9}{'MACs':>11}{'energy':>13}{'share':>8}"]
    for item in report.layers:
        lines.append(f"{item.name:<14}{item.layer.num_weights:>9,}{item.layer.macs:>11,}"
                     f"{item.total:>13,.0f}{100 * item.total / total:>7.1f}%")
    lines.append(f"{'total':<14}{report.weights():>9,}{report.macs():>11,}{total:>13,.0f}")
    return "\n".join(lines) + "\n\n"


def comparison_table(report: Any, dense_test: float, ref: dict[str, Any],
                     results: dict[str, Any]) -> str:
    """Dense vs reference vs the two pruned models."""
    e_dense = report.total()
    mag = results["magnitude"].final.energy
    head = (f"{'model':<22}{'val acc':>9}{'test acc':>10}{'non-zero w':>12}{'non-skip MACs':>15}"
            f"{'energy':>13}{'vs dense':>10}{'vs magn.':>10}")
    rows = [head, "-" * len(head),
            f"{'dense (shipped)':<22}{'':>9}{100 * dense_test:>9.2f}%"
            f"{report.nonzero_weights():>12,.0f}{report.nonskipped_macs():>15,.0f}"
            f"{e_dense:>13,.0f}{'1.00x':>10}{e_dense / mag:>9.2f}x",
            f"{'dense reference':<22}{100 * ref['accuracy']:>8.2f}%"
            f"{100 * ref.get('test_accuracy', float('nan')):>9.2f}%"
            f"{'(+' + format(ref['epochs'], 'g') + ' epochs)':>42}"]
    for method, result in results.items():
        f = result.final
        rows.append(f"{method:<22}{100 * f.accuracy:>8.2f}%"
                    f"{100 * result.extra['test_accuracy']:>9.2f}%{f.nonzero_weights:>12,}"
                    f"{f.nonskipped_macs:>15,.0f}{f.energy:>13,.0f}"
                    f"{e_dense / f.energy:>9.2f}x{mag / f.energy:>9.2f}x")
    budget = results["magnitude"].accuracy_floor
    rows.append(f"accuracy budget: validation >= {100 * budget:.2f}% (reference - "
                f"{100 * (ref['accuracy'] - budget):.1f} point); reductions are dense / pruned")
    return "\n" + "\n".join(rows) + "\n"

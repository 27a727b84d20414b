#!/usr/bin/env python3
"""Energy-aware vs magnitude pruning on Fashion-MNIST with both built-in CNNs.

For each model (LeNet-5: the shipped checkpoint; VGG-small: trained here with the
recipe of ``nnjoules train`` and cached) and each energy batch size, the dense model is
pruned by energy-aware pruning and by iterative magnitude pruning (global ranking)
under the same schedule, fine-tuning budget and 1-point accuracy budget. The dense
reference gets as many extra epochs as pruning may fine-tune. Writes

    benchmarks/results/pruning.json   (every run: history, per-layer densities, timing)
    benchmarks/results/pruning.md     (the comparison tables)

The bar to compare with: the paper's AlexNet/ImageNet figures, 3.7x less energy than
dense and 1.74x less than magnitude pruning (under 1% top-5 loss).

Usage::

    python benchmarks/bench_pruning.py                     # both models, batches 1 and 16
    python benchmarks/bench_pruning.py --models lenet5 --batches 16 --rounds 6

Not a timed test; minutes to an hour on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "nnjoules" / "bench"


def dense_model(name: str, splits: Any, epochs: float) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The shipped LeNet-5, or a VGG-small trained like ``nnjoules train`` (cached)."""
    from nnjoules.models.builtin import build_model, has_pretrained, pretrained, pretrained_info
    from nnjoules.prune.config import TrainConfig
    from nnjoules.prune.finetune import evaluate, train
    from nnjoules.prune.modelio import load_model_file, save_model

    if has_pretrained(name):
        return pretrained(name), pretrained_info(name)
    path = CACHE / f"{name}-{epochs:g}ep.pt"
    if path.is_file():
        _name, model, info = load_model_file(path)
        return model, info
    model = build_model(name)
    began = time.perf_counter()
    train(model, splits.train, TrainConfig(epochs=epochs, lr=0.05, weight_decay=5e-4,
                                           schedule="cosine"), seed=0)
    info = {"command": f"nnjoules train {name} --epochs {epochs:g} --seed 0",
            "val_accuracy": evaluate(model, splits.val),
            "test_accuracy": evaluate(model, splits.test),
            "train_seconds": round(time.perf_counter() - began, 1)}
    save_model(path, model, name=name, num_classes=10, info=info)
    return model, info


def run_model(name: str, args: argparse.Namespace, splits: Any) -> dict[str, Any]:
    from nnjoules.prune import PruneConfig, TrainConfig, prune
    from nnjoules.prune.api import matched_reference
    from nnjoules.prune.masks import clone

    dense, info = dense_model(name, splits, args.train_epochs)
    ft = TrainConfig(epochs=args.finetune_epochs)
    base = PruneConfig(rounds=args.rounds, accuracy_drop=args.accuracy_drop)
    began = time.perf_counter()
    ref = matched_reference(dense, splits.train, splits.val, splits.test,
                            epochs=base.rounds * ft.epochs, finetune=ft, seed=base.seed)
    ref["seconds"] = round(time.perf_counter() - began, 1)
    print(f"{name}: dense test {100 * info['test_accuracy']:.2f}%, reference val "
          f"{100 * ref['accuracy']:.2f}% test {100 * ref['test_accuracy']:.2f}%", flush=True)
    out: dict[str, Any] = {"dense": info, "reference": ref, "runs": {}}
    for batch in args.batches:
        for method in args.methods:
            config = replace(base, energy_batch=batch)
            if method == "magnitude-layer":
                config = replace(config, ranking="layer")
            began = time.perf_counter()
            result = prune(clone(dense), splits.train, splits.val, config=config, finetune=ft,
                           method=method.split("-layer")[0], accuracy_drop=args.accuracy_drop,
                           reference_accuracy=ref["accuracy"], test_data=splits.test)
            seconds = time.perf_counter() - began
            run = result.to_dict() | {"seconds": round(seconds, 1), "energy_batch": batch}
            out["runs"][f"{method}@{batch}"] = run
            final = result.final
            print(f"  batch {batch:>3} {method:<16} val {100 * final.accuracy:.2f}% test "
                  f"{100 * result.extra['test_accuracy']:.2f}% density "
                  f"{100 * final.density:.1f}% energy {result.energy_reduction():.2f}x less "
                  f"({seconds:.0f} s)", flush=True)
    return out


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = ["| model | batch | method | val acc | test acc | non-zero weights | "
             "non-skipped MACs | energy | vs dense | vs magnitude |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        ref = res["reference"]
        lines.append(f"| {name} | | dense reference (+{ref['epochs']:g} ep) | "
                     f"{100 * ref['accuracy']:.2f}% | {100 * ref['test_accuracy']:.2f}% "
                     "| | | | | |")
        for batch in args.batches:
            mag = res["runs"].get(f"magnitude@{batch}")
            for method in args.methods:
                run = res["runs"][f"{method}@{batch}"]
                final = run["final"]
                dense = run["history"][0]
                vs_mag = mag["final"]["energy"] / final["energy"] if mag else float("nan")
                lines.append(
                    f"| {name} | {batch} | {method} | {100 * final['accuracy']:.2f}% | "
                    f"{100 * run['test_accuracy']:.2f}% | {final['nonzero_weights']:,} of "
                    f"{dense['weights']:,} ({100 * final['density']:.1f}%) | "
                    f"{final['nonskipped_macs']:,.0f} of {dense['nonskipped_macs']:,.0f} | "
                    f"{final['energy']:,.0f} | {final['energy_reduction']:.2f}x | "
                    f"{vs_mag:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "vgg-small"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--methods", nargs="+",
                        default=["energy-aware", "magnitude", "magnitude-layer"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=float, default=0.5)
    parser.add_argument("--train-epochs", type=float, default=10.0)
    parser.add_argument("--accuracy-drop", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "pruning")
    args = parser.parse_args()
    from nnjoules.data import fashion_mnist_splits

    splits = fashion_mnist_splits()
    began = time.perf_counter()
    results = {name: run_model(name, args, splits) for name in args.models}
    text = table(results, args)
    print(text)
    meta = {"torch": str(torch.__version__), "threads": torch.get_num_threads(),
            "machine": platform.machine(), "processor": platform.processor(),
            "seconds": round(time.perf_counter() - began, 1), "options": {
                k: v if not isinstance(v, Path) else str(v) for k, v in vars(args).items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps({"meta": meta, "results": results},
                                                   indent=2) + "\n")
    Path(f"{args.out}.md").write_text(
        "# Energy-aware vs magnitude pruning, Fashion-MNIST\n\n"
        f"Produced by `python benchmarks/bench_pruning.py` ({meta['seconds']:.0f} s, "
        f"{meta['threads']} threads). Energy in normalised units (1 = one 16-bit MAC), "
        "Eyeriss chip, significance-map DRAM compression. Reductions are dense / pruned.\n\n"
        + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

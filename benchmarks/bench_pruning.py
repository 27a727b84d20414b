#!/usr/bin/env python3
"""Energy-aware vs magnitude pruning on Fashion-MNIST with both built-in CNNs, over seeds.

For each model (LeNet-5: the shipped checkpoint; VGG-small: trained here with the
recipe of ``nnjoules train`` and cached), each seed and each energy batch size, the
dense model is pruned by energy-aware pruning (``energy-aware``: the default
allocation; ``energy-aware-probe``: ``allocation="probe"``) and by iterative magnitude
pruning (``magnitude``: global ranking; ``magnitude-layer``: per layer), and at channel
granularity by energy-aware channel pruning (``channel``) and L1-norm filter pruning
(``l1-channel``, Li et al. 2017), all under the same
schedule, fine-tuning budget and 1-point accuracy budget. Each seed has its own dense
reference, trained as many extra epochs as pruning may fine-tune. Writes, after every
seed (atomically, so a cut run keeps what it finished),

    benchmarks/results/pruning-MODELS.json   (every run: history, per-layer densities, timing)
    benchmarks/results/pruning-MODELS.md     (mean ± sd over seeds, wins per seed, floors)

The bar to compare with: the paper's AlexNet/ImageNet figures, 3.7x less energy than
dense and 1.74x less than magnitude pruning (under 1% top-5 loss).

Usage::

    python benchmarks/bench_pruning.py --models lenet5 --threads 1 \\
        --methods energy-aware energy-aware-probe magnitude magnitude-layer
    python benchmarks/bench_pruning.py --models vgg-small --seeds 0 1 --threads 1

Not a timed test; about 10 minutes per seed for LeNet-5 and 30 for VGG-small on one core.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
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


def floor_energy(dense: torch.nn.Module, splits: Any, batch: int) -> dict[str, float]:
    """Dense energy and the energy with every weight zero (what no pruning removes)."""
    from nnjoules.prune.config import PruneConfig
    from nnjoules.prune.energy import EnergyMeter
    from nnjoules.prune.masks import clone, ensure_masks

    model = clone(dense)
    ensure_masks(model)
    cfg = PruneConfig(energy_batch=batch)
    images = splits.train.batch(torch.arange(cfg.density_images))[0]
    meter = EnergyMeter(images, hardware="eyeriss", batch=batch, compression=cfg.compression)
    report = meter.report(model)
    return {"dense": report.total(), "floor": meter.floor_report(model, report).total()}


def run_model(name: str, args: argparse.Namespace, splits: Any,
              out: dict[str, Any], save: Any) -> None:
    """Fill ``out`` seed by seed, calling ``save()`` after each (a cut run keeps them)."""
    from nnjoules.prune import PruneConfig, TrainConfig, prune
    from nnjoules.prune.api import matched_reference
    from nnjoules.prune.masks import clone

    dense, info = dense_model(name, splits, args.train_epochs)
    ft = TrainConfig(epochs=args.finetune_epochs)
    out.update({"dense": info, "seeds": {},
                "floor": {str(b): floor_energy(dense, splits, b) for b in args.batches}})
    for seed in args.seeds:
        base = PruneConfig(rounds=args.rounds, accuracy_drop=args.accuracy_drop, seed=seed)
        began = time.perf_counter()
        ref = matched_reference(dense, splits.train, splits.val, splits.test,
                                epochs=base.rounds * ft.epochs, finetune=ft, seed=seed)
        ref["seconds"] = round(time.perf_counter() - began, 1)
        print(f"{name} seed {seed}: dense test {100 * info['test_accuracy']:.2f}%, reference "
              f"val {100 * ref['accuracy']:.2f}% test {100 * ref['test_accuracy']:.2f}%",
              flush=True)
        runs: dict[str, Any] = {}
        for batch in args.batches:
            for method in args.methods:
                config = replace(base, energy_batch=batch)
                if method == "magnitude-layer":
                    config = replace(config, ranking="layer")
                if method == "energy-aware-probe":
                    config = replace(config, allocation="probe")
                if method in ("channel", "l1-channel"):
                    config = replace(config, granularity="channel")
                if method in ABLATIONS:  # energy-aware without (part of) the restoration
                    config = replace(config, restore=replace(config.restore,
                                                             **ABLATIONS[method]))
                began = time.perf_counter()
                result = prune(clone(dense), splits.train, splits.val, config=config,
                               finetune=ft, method=METHOD[method],
                               accuracy_drop=args.accuracy_drop,
                               reference_accuracy=ref["accuracy"], test_data=splits.test)
                seconds = time.perf_counter() - began
                runs[f"{method}@{batch}"] = result.to_dict() | {"seconds": round(seconds, 1),
                                                                 "energy_batch": batch}
                final = result.final
                print(f"  batch {batch:>3} {method:<18} val {100 * final.accuracy:.2f}% test "
                      f"{100 * result.extra['test_accuracy']:.2f}% density "
                      f"{100 * final.density:.1f}% energy {result.energy_reduction():.2f}x "
                      f"less ({seconds:.0f} s)", flush=True)
        out["seeds"][str(seed)] = {"reference": ref, "runs": runs}
        save()


METHOD = {"energy-aware": "energy-aware", "energy-aware-probe": "energy-aware",
          "channel": "energy-aware", "l1-channel": "magnitude",
          "magnitude": "magnitude", "magnitude-layer": "magnitude",
          "ea-magnitude-refit": "energy-aware", "ea-magnitude-only": "energy-aware"}
# Ablations of the layer step: magnitude selection + least-squares refit; magnitude only.
ABLATIONS: dict[str, dict[str, Any]] = {"ea-magnitude-refit": {"error_share": 0.0},
                                        "ea-magnitude-only": {"error_share": 0.0,
                                                              "refit": False}}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def _fmt(values: list[float], scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    mean, sd = _mean_sd([scale * v for v in values])
    return f"{mean:.{digits}f}{unit} ± {sd:.{digits}f}" if len(values) > 1 else \
        f"{mean:.{digits}f}{unit}"


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Mean ± standard deviation over seeds; 'vs magnitude' is the per-seed ratio to
    global magnitude pruning, averaged; 'wins' counts the seeds where it is above 1."""
    lines = ["| model | batch | method | val acc | test acc | density | vs dense | "
             "vs magnitude | wins |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        seeds = list(res["seeds"].values())
        lines.append(f"| {name} | | dense reference (+{seeds[0]['reference']['epochs']:g} ep) | "
                     f"{_fmt([s['reference']['accuracy'] for s in seeds], 100, unit='%')} | "
                     f"{_fmt([s['reference']['test_accuracy'] for s in seeds], 100, unit='%')}"
                     " | | | | |")
        for batch in args.batches:
            for method in args.methods:
                runs = [s["runs"][f"{method}@{batch}"] for s in seeds]
                mags = [s["runs"].get(f"magnitude@{batch}") for s in seeds]
                ratios = [m["final"]["energy"] / r["final"]["energy"]
                          for r, m in zip(runs, mags, strict=True) if m]
                wins = sum(r > 1.0 for r in ratios)
                lines.append(
                    f"| {name} | {batch} | {method} | "
                    f"{_fmt([r['final']['accuracy'] for r in runs], 100, unit='%')} | "
                    f"{_fmt([r['test_accuracy'] for r in runs], 100, unit='%')} | "
                    f"{_fmt([r['final']['density'] for r in runs], 100, 1, '%')} | "
                    f"{_fmt([r['final']['energy_reduction'] for r in runs], unit='x')} | "
                    f"{_fmt(ratios, unit='x')} | "
                    f"{wins if method != 'magnitude' else '-'} of {len(ratios)} |")
    lines += ["", "What no weight pruning can remove (energy with every weight zero): the "
              "largest reduction any pruning could reach.", "",
              "| model | batch | dense energy | floor | largest possible reduction |",
              "| --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        for batch, floor in res["floor"].items():
            lines.append(f"| {name} | {batch} | {floor['dense']:,.0f} | {floor['floor']:,.0f} "
                         f"| {floor['dense'] / floor['floor']:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "vgg-small"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--methods", nargs="+",
                        default=["energy-aware", "magnitude", "magnitude-layer"],
                        choices=sorted(METHOD))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=float, default=0.5)
    parser.add_argument("--train-epochs", type=float, default=10.0)
    parser.add_argument("--accuracy-drop", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1: two runs side by side on 2 cores)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output stem [benchmarks/results/pruning-MODELS]")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.out is None:
        args.out = HERE / "results" / f"pruning-{'-'.join(args.models)}"
    from nnjoules.data import fashion_mnist_splits

    splits = fashion_mnist_splits()
    began = time.perf_counter()
    results: dict[str, Any] = {}

    def save() -> None:
        from nnjoules.io import write_text_atomic

        text = table({k: v for k, v in results.items() if v.get("seeds")}, args)
        print(text, flush=True)
        meta = {"torch": str(torch.__version__), "threads": torch.get_num_threads(),
                "machine": platform.machine(), "processor": platform.processor(),
                "seconds": round(time.perf_counter() - began, 1), "options": {
                    k: v if not isinstance(v, Path) else str(v) for k, v in vars(args).items()}}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(f"{args.out}.json"),
                          json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
        write_text_atomic(Path(f"{args.out}.md"),
            "# Energy-aware vs magnitude pruning, Fashion-MNIST\n\n"
            f"Produced by `python benchmarks/bench_pruning.py --models {' '.join(args.models)} "
            f"--seeds {' '.join(map(str, args.seeds))} --batches "
            f"{' '.join(map(str, args.batches))} --methods {' '.join(args.methods)}` "
            f"({meta['seconds']:.0f} s, "
            f"{meta['threads']} threads). Mean ± standard deviation over the seeds run (each "
            "seed: its own matched dense reference, fine-tuning order and restoration "
            f"samples; the dense model is the same). {args.rounds} rounds of "
            f"{args.finetune_epochs:g} epoch fine-tuning, {100 * args.accuracy_drop:g}-point "
            "budget on the validation split. Energy in normalised units (1 = one 16-bit MAC), "
            "Eyeriss chip, significance-map DRAM compression; reductions are dense / pruned; "
            "'vs magnitude' is the per-seed ratio to global magnitude pruning.\n\n" + text)

    for name in args.models:
        results[name] = {}
        run_model(name, args, splits, results[name], save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

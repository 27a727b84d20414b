#!/usr/bin/env python3
"""Energy-aware vs baseline pruning on Fashion-MNIST with the built-in CNNs, over seeds.

For each model (any built-in name: a shipped checkpoint is used, otherwise the model is
trained here with the recipe of ``nnjoules train`` and cached), each seed and each energy
batch size, the dense model is pruned by every method under the same schedule,
fine-tuning budget and 1-point validation budget:

* ``magnitude``: iterative global magnitude pruning of weights (Han et al.);
  ``magnitude-layer``: per layer;
* ``energy-aware``: energy-aware weight pruning (``energy-aware-probe``:
  ``allocation="probe"``; ``ea-magnitude-*``: ablations of the restoration);
* ``channel``: energy-aware channel pruning; ``l1-channel``: L1-norm filter pruning
  (Li et al., 2017) in the same loop;
* ``equal-macs``: Torch-Pruning's own global channel pruning to the MAC count that
  ``channel`` reached at that batch (``equal_macs.py``; needs ``channel`` in the run);
* ``both``: channels first, then energy-aware weight pruning (``granularity="both"``).

Each seed has its own dense reference, trained as many extra epochs as pruning may
fine-tune. Writes, after every run (atomically, so a cut run keeps what it finished),

    benchmarks/results/pruning-MODELS.json   (every run: history, per-layer densities, timing)
    benchmarks/results/pruning-MODELS.md     (mean ± sd over seeds, wins per seed, floors)

The bar (the issue's, after the paper's AlexNet/ImageNet figures): 3.7x less energy than
dense and 1.74x less than global magnitude pruning, and never below 1.0x against any
baseline; the "target" column gives the share of each bar reached.

Usage::

    python benchmarks/bench_pruning.py --models lenet5 --seeds 0 --threads 1
    python benchmarks/bench_pruning.py --models vgg-small resnet20 --seeds 0 1 2

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
BASELINES = ("magnitude", "magnitude-layer", "l1-channel", "equal-macs")
TARGET_DENSE, TARGET_MAGNITUDE = 3.7, 1.74
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
    """Fill ``out`` run by run, calling ``save()`` after each (a cut run keeps them)."""
    from nnjoules.prune import PruneConfig, TrainConfig, prune
    from nnjoules.prune.api import matched_reference
    from nnjoules.prune.masks import clone

    dense, info = dense_model(name, splits, args.train_epochs)
    ft = TrainConfig(epochs=args.finetune_epochs)
    out.update({"dense": info, "seeds": {},
                "floor": {str(b): floor_energy(dense, splits, b) for b in args.batches}})
    for seed in args.seeds:
        base = PruneConfig(rounds=args.rounds, accuracy_drop=args.accuracy_drop, seed=seed,
                           rate=args.rate, channel_share=args.channel_share)
        began = time.perf_counter()
        ref = matched_reference(dense, splits.train, splits.val, splits.test,
                                epochs=base.rounds * ft.epochs, finetune=ft, seed=seed)
        ref["seconds"] = round(time.perf_counter() - began, 1)
        print(f"{name} seed {seed}: dense test {100 * info['test_accuracy']:.2f}%, reference "
              f"val {100 * ref['accuracy']:.2f}% test {100 * ref['test_accuracy']:.2f}%",
              flush=True)
        runs: dict[str, Any] = {}
        out["seeds"][str(seed)] = {"reference": ref, "runs": runs}  # saved after every run
        for batch in args.batches:
            for method in args.methods:
                if method == "equal-macs":
                    runs[f"{method}@{batch}"] = equal_macs(dense, runs[f"channel@{batch}"],
                                                           splits, ft, seed, batch)
                    _print_run(batch, method, runs[f"{method}@{batch}"])
                    save()
                    continue
                began = time.perf_counter()
                result = prune(clone(dense), splits.train, splits.val,
                               config=method_config(base, method, batch),
                               finetune=ft, method=METHOD[method],
                               accuracy_drop=args.accuracy_drop,
                               reference_accuracy=ref["accuracy"], test_data=splits.test)
                seconds = time.perf_counter() - began
                runs[f"{method}@{batch}"] = result.to_dict() | {"seconds": round(seconds, 1),
                                                                 "energy_batch": batch}
                _print_run(batch, method, runs[f"{method}@{batch}"])
                save()


def method_config(base: Any, method: str, batch: int) -> Any:
    """The `PruneConfig` of ``method`` at energy batch ``batch``."""
    config = replace(base, energy_batch=batch)
    if method == "magnitude-layer":
        config = replace(config, ranking="layer")
    if method == "energy-aware-probe":
        config = replace(config, allocation="probe")
    if method in ("channel", "l1-channel", "both"):
        config = replace(config, granularity="both" if method == "both" else "channel")
    if method in ABLATIONS:  # energy-aware without (part of) the restoration
        config = replace(config, restore=replace(config.restore, **ABLATIONS[method]))
    return config


def _macs(run: dict[str, Any]) -> float:
    """MACs of the delivered model (all, skipped or not; at the energy batch)."""
    if "macs" in run["final"]:
        return float(run["final"]["macs"])
    return float(next(r for r in reversed(run["history"]) if r["accepted"])["macs"])


def _print_run(batch: int, method: str, run: dict[str, Any]) -> None:
    final = run["final"]
    print(f"  batch {batch:>3} {method:<18} val {100 * final['accuracy']:.2f}% test "
          f"{100 * run['test_accuracy']:.2f}% density {100 * final['density']:.1f}% "
          f"energy {final['energy']:,.0f} ({final['energy_reduction']:.2f}x less) MACs/item "
          f"{_macs(run) / batch:,.0f} ({run['seconds']:.0f} s)", flush=True)


def equal_macs(dense: torch.nn.Module, channel: dict[str, Any], splits: Any, ft: Any,
               seed: int, batch: int) -> dict[str, Any]:
    """The equal-MACs baseline (``equal_macs.py``) at the MACs ``channel`` reached, in as
    many rounds as it ran; energy measured as the pruning loop measures it."""
    from equal_macs import equal_macs_run
    from nnjoules.prune.config import PruneConfig
    from nnjoules.prune.energy import EnergyMeter

    cfg = PruneConfig(energy_batch=batch)
    images = splits.train.batch(torch.arange(cfg.density_images))[0]
    meter = EnergyMeter(images, hardware="eyeriss", batch=batch, compression=cfg.compression)
    final = next(r for r in reversed(channel["history"]) if r["accepted"])
    run = equal_macs_run(dense, final["macs"] / batch, len(channel["history"]) - 1, splits,
                         ft, seed, meter)
    run["final"]["energy_reduction"] = channel["history"][0]["energy"] / run["final"]["energy"]
    return run | {"energy_batch": batch, "matched_to": {"energy": final["energy"],
                                                         "macs": final["macs"]}}


METHOD = {"energy-aware": "energy-aware", "energy-aware-probe": "energy-aware",
          "channel": "energy-aware", "l1-channel": "magnitude",
          "magnitude": "magnitude", "magnitude-layer": "magnitude",
          "both": "energy-aware", "equal-macs": "magnitude",
          "ea-magnitude-refit": "energy-aware", "ea-magnitude-only": "energy-aware"}
# Ablations of the layer step: magnitude selection + least-squares refit; magnitude only.
ABLATIONS: dict[str, dict[str, Any]] = {"ea-magnitude-refit": {"error_share": 0.0},
                                        "ea-magnitude-only": {"error_share": 0.0,
                                                              "refit": False}}


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def _fmt(values: list[float], scale: float = 1.0, digits: int = 2, unit: str = "") -> str:
    if not values:
        return "-"
    mean, sd = _mean_sd([scale * v for v in values])
    return f"{mean:.{digits}f}{unit} ± {sd:.{digits}f}" if len(values) > 1 else \
        f"{mean:.{digits}f}{unit}"


def _ratios(seeds: list[dict[str, Any]], key: str, baseline: str) -> list[float]:
    """Per seed: the baseline's energy / this run's energy (where both ran)."""
    out = []
    for seed in seeds:
        ours, theirs = seed["runs"].get(key), seed["runs"].get(baseline)
        if ours and theirs:
            out.append(theirs["final"]["energy"] / ours["final"]["energy"])
    return out


def _target(vs_dense: list[float], vs_mag: list[float]) -> str:
    """Share of the 3.7x-vs-dense and 1.74x-vs-magnitude bars reached (mean over seeds)."""
    parts = [f"{100 * statistics.fmean(v) / bar:.0f}% of {bar}x"
             for v, bar in ((vs_dense, TARGET_DENSE), (vs_mag, TARGET_MAGNITUDE)) if v]
    return ", ".join(parts) or "-"


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Mean ± standard deviation over seeds. 'vs magnitude': per-seed ratio to global
    magnitude pruning, averaged; 'worst vs baselines' (energy-aware methods): the lowest
    per-seed ratio to any baseline that ran; 'target': the share of the bars reached;
    'wins': seeds above 1x against magnitude."""
    lines = ["| model | batch | method | val acc | test acc | density | MACs | vs dense | "
             "vs magnitude | worst vs baselines | target | s/run | wins |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        seeds = list(res["seeds"].values())
        lines.append(f"| {name} | | dense reference (+{seeds[0]['reference']['epochs']:g} ep) | "
                     f"{_fmt([s['reference']['accuracy'] for s in seeds], 100, unit='%')} | "
                     f"{_fmt([s['reference']['test_accuracy'] for s in seeds], 100, unit='%')}"
                     " | | | | | | | | |")
        for batch in args.batches:
            for method in args.methods:
                key = f"{method}@{batch}"
                runs = [s["runs"][key] for s in seeds if key in s["runs"]]
                if not runs:
                    continue
                dense = [r["final"]["energy_reduction"] for r in runs]
                mag = _ratios(seeds, key, f"magnitude@{batch}")
                ours = method not in BASELINES
                worst = [min(v) for v in zip(*(_ratios(seeds, key, f"{b}@{batch}")
                                               for b in BASELINES
                                               if b in args.methods), strict=False)]
                lines.append(
                    f"| {name} | {batch} | {method} | "
                    f"{_fmt([r['final']['accuracy'] for r in runs], 100, unit='%')} | "
                    f"{_fmt([r['test_accuracy'] for r in runs], 100, unit='%')} | "
                    f"{_fmt([r['final']['density'] for r in runs], 100, 1, '%')} | "
                    f"{_fmt([_macs(r) / batch for r in runs], digits=0)} | "
                    f"{_fmt(dense, unit='x')} | {_fmt(mag, unit='x')} | "
                    f"{_fmt(worst, unit='x') if ours else '-'} | "
                    f"{_target(dense, mag) if ours else '-'} | "
                    f"{_fmt([r['seconds'] for r in runs], digits=0)} | "
                    f"{sum(r > 1.0 for r in mag) if method != 'magnitude' else '-'} of "
                    f"{len(mag)} |")
    return "\n".join(lines + _equal_macs_lines(results, args) + _floor_lines(results)) + "\n"


def _equal_macs_lines(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    if "equal-macs" not in args.methods:
        return []
    lines = ["", "Equal MACs: Torch-Pruning's global magnitude channel pruning forced to the "
             "MACs energy-aware channel pruning reached (per item; Torch-Pruning's steps "
             "overshoot a little), same rounds and fine-tuning, no accuracy budget. Energy "
             "ratio: equal-macs / channel (above 1x: the channels chosen by MACs cost more "
             "energy).", "",
             "| model | batch | seed | channel MACs | equal-macs MACs | channel energy | "
             "equal-macs energy | energy ratio | equal-macs val / test acc |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        for seed, data in res["seeds"].items():
            for batch in args.batches:
                run = data["runs"].get(f"equal-macs@{batch}")
                if not run:
                    continue
                ours, theirs = run["matched_to"], run["final"]
                lines.append(f"| {name} | {batch} | {seed} | {ours['macs'] / batch:,.0f} | "
                             f"{theirs['macs'] / batch:,.0f} | {ours['energy']:,.0f} | "
                             f"{theirs['energy']:,.0f} | "
                             f"{theirs['energy'] / ours['energy']:.2f}x | "
                             f"{100 * theirs['accuracy']:.2f}% / "
                             f"{100 * run['test_accuracy']:.2f}% |")
    return lines


def _floor_lines(results: dict[str, Any]) -> list[str]:
    lines = ["", "What no weight pruning can remove (energy with every weight zero): the "
             "largest reduction any weight pruning could reach.", "",
             "| model | batch | dense energy | floor | largest possible reduction |",
             "| --- | --- | --- | --- | --- |"]
    for name, res in results.items():
        for batch, floor in res["floor"].items():
            lines.append(f"| {name} | {batch} | {floor['dense']:,.0f} | {floor['floor']:,.0f} "
                         f"| {floor['dense'] / floor['floor']:.2f}x |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lenet5", "vgg-small"],
                        help="built-in model names (nnjoules.models.builtin)")
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--methods", nargs="+",
                        default=["magnitude", "energy-aware", "channel", "l1-channel",
                                 "equal-macs", "both"],
                        choices=sorted(METHOD))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rate", type=float, default=0.3, help="PruneConfig.rate")
    parser.add_argument("--channel-share", type=float, default=0.5,
                        help="PruneConfig.channel_share (method both)")
    parser.add_argument("--finetune-epochs", type=float, default=0.5)
    parser.add_argument("--train-epochs", type=float, default=10.0)
    parser.add_argument("--accuracy-drop", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1: two runs side by side on 2 cores)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output stem [benchmarks/results/pruning-MODELS]")
    args = parser.parse_args()
    from nnjoules.models.builtin import BUILTIN_MODELS

    unknown = [m for m in args.models if m not in BUILTIN_MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; built-in: {', '.join(BUILTIN_MODELS)}")
    if "equal-macs" in args.methods:  # matched to channel's MACs: channel runs first
        if "channel" not in args.methods:
            parser.error("equal-macs needs channel among --methods (it matches its MACs)")
        args.methods = [m for m in args.methods if m != "equal-macs"]
        args.methods.insert(args.methods.index("channel") + 1, "equal-macs")
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
            "# Energy-aware vs baseline pruning, Fashion-MNIST\n\n"
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
            "'vs magnitude' is the per-seed ratio to global magnitude pruning; 'worst vs "
            "baselines' the lowest ratio to magnitude, magnitude-layer, l1-channel or "
            "equal-macs (those run); 'target' the share of 3.7x vs dense and 1.74x vs "
            "magnitude reached; 's/run' the wall time of one pruning run (reference "
            "training excluded).\n\n" + text)

    for name in args.models:
        results[name] = {}
        run_model(name, args, splits, results[name], save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

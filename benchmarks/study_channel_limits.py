#!/usr/bin/env python3
"""Why channel pruning stops early: what one cut of each channel group costs and saves.

For each channel group of a trained built-in model (default: the shipped LeNet-5) and a
few shares of its channels, the cut is made alone on the dense model as the energy-aware
round makes it (channels by the consumers' output error, physical removal, least-squares
refit), then: the energy saved at energy batch 16 and 1 (the energy model on the shrunk
model), the network's output divergence (`channel_alloc.divergence`), the validation
accuracy right after the cut, and after the fine-tuning a pruning round gives (0.5 epoch,
seeded). The dense model fine-tuned alike is the reference. Writes
``benchmarks/results/channel-limits-MODEL.md``.

Usage::

    python benchmarks/study_channel_limits.py --threads 1
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--shares", nargs="+", type=float, default=[0.17, 0.34, 0.5])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from nnjoules.data import fashion_mnist_splits
    from nnjoules.models.builtin import pretrained
    from nnjoules.prune.channel_alloc import divergence, log_probs
    from nnjoules.prune.channel_select import channel_order, consumer_stats, refit_consumers
    from nnjoules.prune.config import TrainConfig
    from nnjoules.prune.energy import EnergyMeter
    from nnjoules.prune.finetune import evaluate, train
    from nnjoules.prune.structure import channel_groups, remove_channels

    began = time.perf_counter()
    splits = fashion_mnist_splits()
    dense = pretrained(args.model)
    images = splits.train.batch(torch.arange(1024))[0]
    meters = {b: EnergyMeter(images[:64], batch=b) for b in (16, 1)}
    energy = {b: m.report(dense).total() for b, m in meters.items()}
    start = log_probs(dense, images[:512])

    def finetuned(model: torch.nn.Module) -> float:
        train(model, splits.train, TrainConfig(epochs=0.5), seed=1)
        return evaluate(model, splits.val)

    ref_val = evaluate(dense, splits.val)
    ref_ft = finetuned(copy.deepcopy(dense))
    rows = []
    for group in channel_groups(dense, images[:2]):
        stats = consumer_stats(dense, group, images, positions=16,
                               generator=torch.Generator().manual_seed(0))
        for share in args.shares:
            count = max(1, min(group.channels - 1, round(share * group.channels)))
            order = list(channel_order(dense, group, stats, limit=count).order)
            model = copy.deepcopy(dense)
            remove_channels(model, images[:2], {group.root: order})
            refit_consumers(model, group, stats, order)
            saved = {b: 1 - m.report(model).total() / energy[b] for b, m in meters.items()}
            cut_val = evaluate(model, splits.val)
            rows.append((group.root, f"{count} of {group.channels}", saved[16], saved[1],
                         divergence(start, model, images[:512]), cut_val, finetuned(model)))
            print(rows[-1], flush=True)
    lines = [f"# What one channel cut costs and saves ({args.model}, Fashion-MNIST)", "",
             f"Produced by `python benchmarks/study_channel_limits.py --model {args.model}` "
             f"({time.perf_counter() - began:.0f} s). Each row: one group cut alone on the "
             "dense model (channels by the consumers' output error, physical removal, "
             "least-squares refit); energy saved as a share of the dense model's; "
             "divergence: mean KL of the softmax outputs from the dense model's (512 "
             "training images); accuracies on the validation split, right after the cut "
             "and after 0.5 epoch of fine-tuning (seed 1). Dense: "
             f"{100 * ref_val:.2f}%, and {100 * ref_ft:.2f}% after the same fine-tuning "
             "(the reference a 1-point budget counts from in this table).", "",
             "| group | channels cut | energy saved @16 | @1 | divergence | val after cut | "
             "after fine-tuning | points lost per 10% energy @16 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for root, cut, s16, s1, div, cut_val, ft_val in rows:
        lost = 100 * (ref_ft - ft_val)
        lines.append(f"| {root} | {cut} | {100 * s16:.1f}% | {100 * s1:.1f}% | {div:.4f} | "
                     f"{100 * cut_val:.2f}% | {100 * ft_val:.2f}% | "
                     f"{lost / (10 * s16):.2f} |")
    out = HERE / "results" / f"channel-limits-{args.model}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

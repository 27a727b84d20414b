"""``nnjoules train [MODEL]``: train a built-in CNN deterministically; write a model file.

The shipped checkpoint of the default model was made with this command (see
docs/pruning.md for the exact line and its accuracy). The data options defined here
are shared with ``prune`` and ``demo``.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from nnjoules.errors import InputError

log = logging.getLogger("nnjoules")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``train`` subcommand."""
    p = sub.add_parser("train", help="train a built-in CNN (deterministic)",
                       description="Train a built-in CNN (lenet5, vgg-small, resnet20, "
                       "mobilenetv2) on Fashion-MNIST or an image folder, deterministically, "
                       "and write a model file with a JSON sidecar (accuracy, command, "
                       "SHA-256).")
    p.add_argument("model", nargs="?", default="lenet5", metavar="MODEL",
                   help="built-in model: lenet5, vgg-small, resnet20 or mobilenetv2 [lenet5]")
    p.add_argument("--epochs", type=float, default=10.0, help="epochs [10]")
    p.add_argument("--lr", type=float, default=0.05, help="initial learning rate (cosine) [0.05]")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum [0.9]")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay [5e-4]")
    p.add_argument("--batch-size", type=int, default=128, help="batch size [128]")
    p.add_argument("--out", type=Path, required=True,
                   help="model file to write (.pt) [required]")
    p.add_argument("--half", action="store_true", help="store the weights in float16")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file and its sidecar (run folders "
                   "pruned from it record its SHA-256 and will refuse the new one)")
    add_data_options(p)
    p.set_defaults(run=_run)


class Given(argparse.Action):
    """Store the value and record the option as given on the command line (in
    ``namespace.given``), so that ``prune --resume`` can refuse options that contradict
    the run it continues, the default values included."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        if option_string is not None or values is not self.default:  # absent positional
            namespace.given = {*getattr(namespace, "given", ()), self.dest}


def add_data_options(p: argparse.ArgumentParser) -> None:
    """Dataset, limits, device and seed options shared by train, prune and demo."""
    p.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "imagefolder"],
                   action=Given, help="dataset [fashion-mnist]")
    p.add_argument("--data-dir", default=None, action=Given,
                   help="folder of the Fashion-MNIST IDX files, or the image folder "
                   "[the Debian package's /usr/share/datasets/fashion-mnist]")
    p.add_argument("--download", action="store_true",
                   help="download Fashion-MNIST through torchvision if not found")
    p.add_argument("--train-limit", type=int, default=None, action=Given,
                   help="use the first N training images [all]")
    p.add_argument("--val-limit", type=int, default=None, action=Given,
                   help="use the first N validation images [all]")
    p.add_argument("--test-limit", type=int, default=None, action=Given,
                   help="use the first N test images [all]")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto [auto]")
    add_threads_option(p)
    p.add_argument("--seed", type=int, default=0, action=Given,
                   help="seed of every random choice [0]")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """``--threads N``: torch threads (see `nnjoules.threads`)."""
    from nnjoules.commands.options import positive_int

    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="torch CPU threads [$OMP_NUM_THREADS if set, else 1 for models under "
                   "2M MACs per image (LeNet-5), else one per CPU up to 8]")


def load_splits(args: argparse.Namespace) -> Any:
    """The `DataSplits` the data options name."""
    from nnjoules.data import load_data

    return load_data(args.data, args.data_dir, train_limit=args.train_limit,
                     val_limit=args.val_limit, test_limit=args.test_limit,
                     download=args.download)


def command_line(argv: list[str] | None = None) -> str:
    """The command as typed (for the records written next to results)."""
    return "nnjoules " + shlex.join(sys.argv[1:] if argv is None else argv)


def _run(args: argparse.Namespace) -> int:
    import torch

    from nnjoules.models.builtin import build_model
    from nnjoules.prune.bars import bars
    from nnjoules.prune.finetune import (
        TrainConfig,
        check_device,
        evaluate,
        init_distributed_from_env,
        is_main_rank,
        near_chance,
        train,
    )
    from nnjoules.prune.modelio import save_model
    from nnjoules.threads import apply_threads

    check_device(args.device)  # before any data is read or file written
    check_train_options(args)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, momentum=args.momentum,
                         weight_decay=args.weight_decay, batch_size=args.batch_size,
                         schedule="cosine")
    init_distributed_from_env()
    splits = load_splits(args)
    model = build_model(args.model, num_classes=splits.num_classes,
                        in_channels=splits.input_shape[0], seed=args.seed)
    threads = apply_threads(args.threads, model=model, input_shape=splits.input_shape)
    began = time.perf_counter()
    with bars(quiet=args.quiet) as ui:
        ui.label = f"training {args.model}"
        ui.note(f"training {args.model} for {args.epochs:g} epochs on {splits.describe()}")
        train(model, splits.train, config, seed=args.seed, device=args.device,
              progress=ui.batches)
    seconds = time.perf_counter() - began
    val = evaluate(model, splits.val, device=args.device)
    warning = near_chance(val, splits.num_classes, f"the trained {args.model}")
    if warning and is_main_rank():
        print(warning, file=sys.stderr)
    test = evaluate(model, splits.test, device=args.device)
    # --overwrite says nothing about the model: the recorded command is the same without it
    recorded = command_line([a for a in sys.argv[1:] if a != "--overwrite"])
    info = {"command": recorded, "dataset": splits.describe(), "epochs": args.epochs,
            "lr": args.lr, "momentum": args.momentum, "weight_decay": args.weight_decay,
            "batch_size": args.batch_size, "schedule": "cosine", "seed": args.seed,
            "val_accuracy": val, "test_accuracy": test, "train_seconds": round(seconds, 1),
            "torch": str(torch.__version__), "threads": threads.to_dict()}
    if not is_main_rank():
        return 0
    model.to("cpu")
    digest = save_model(args.out, model, name=args.model, num_classes=splits.num_classes,
                        in_channels=splits.input_shape[0], info=info, half=args.half)
    print(f"{args.model}: validation accuracy {100 * val:.2f}%, test accuracy {100 * test:.2f}% "
          f"after {args.epochs:g} epochs ({seconds:.0f} s)")
    print(f"wrote {args.out} (sha256 {digest[:16]}...) and {args.out}.json")
    return 0


def check_train_options(args: argparse.Namespace) -> None:
    """Refuse bad numbers and an ``--out`` that cannot (or may not) be written, before
    any data is read.

    Raises:
        InputError: a number out of range (``--epochs 0: must be a positive number``);
            ``--out`` not ``.pt``, a folder, in a missing or read-only folder, or an
            existing file without ``--overwrite``.
    """
    from nnjoules.commands.common import check_output_file
    from nnjoules.commands.numbers import TRAIN, check_numbers

    check_numbers(args, TRAIN)
    if args.out.suffix != ".pt":
        raise InputError(f"--out {args.out}: the model file should end in .pt")
    check_output_file(args.out, "--out")
    if args.out.exists() and not args.overwrite:
        raise InputError(f"--out {args.out}: exists (run folders pruned from it are tied to "
                         "its SHA-256); give --overwrite to replace it, or another name")

"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017) from local IDX files; no network needed.

Where the files are looked for, in order:

1. the folder the user gives (``root``), also in torchvision's layout
   ``root/FashionMNIST/raw``; nothing else is tried when a folder is given, except
   that with ``download=True`` the files are downloaded into it (torchvision's layout);
2. ``$NNJOULES_DATA/fashion-mnist`` when that variable is set;
3. ``/usr/share/datasets/fashion-mnist``, where the Debian package
   ``dataset-fashion-mnist`` installs them (``apt-get install dataset-fashion-mnist``);
4. the torchvision cache ``<cache>/FashionMNIST/raw``, where ``<cache>`` is
   ``$NNJOULES_CACHE`` when that variable is set, else ``~/.cache/nnjoules``
   (see `cache_dir`);
5. with ``download=True``, torchvision downloads them into that cache (from
   ``torchvision.datasets.FashionMNIST.mirrors``, checking the MD5 sums in its
   ``resources``); a failed download is an `InputError`.

Each file may be gzipped (``train-images-idx3-ubyte.gz``) or not.

Splits: the 60,000 training images are split into the first ``60000 - val_size`` for
training and the last ``val_size`` (default 10,000) for validation, which the pruning
loop's accuracy budget is checked on; the 10,000 test images are only used for the
final figures. Images are normalised with the training set's mean and standard
deviation (0.2860, 0.3530).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from nnjoules.data.datasets import DataSplits, ImageTensorDataset
from nnjoules.data.idx import read_idx
from nnjoules.errors import InputError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CACHE_DIR = Path.home() / ".cache" / "nnjoules"
MEAN, STD = (0.2860,), (0.3530,)
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def find_fashion_mnist(root: str | Path | None = None, *, download: bool = False) -> Path:
    """The folder holding the four Fashion-MNIST IDX files (see the module docstring).

    Raises:
        InputError: the files are not found (the message says how to get them).
    """
    if root is not None:
        given = Path(root).expanduser()
        if not given.exists() and not download:
            raise InputError(f"{given}: no such dataset folder")
        for folder in (given, given / "FashionMNIST" / "raw", given / "fashion-mnist"):
            if _complete(folder):
                return folder
        if download:
            return _download(given)
        raise InputError(f"{given}: no Fashion-MNIST IDX files here (expected "
                         f"{', '.join(n + '[.gz]' for pair in FILES.values() for n in pair)})")
    candidates = []
    if os.environ.get("NNJOULES_DATA"):
        candidates.append(Path(os.environ["NNJOULES_DATA"]) / "fashion-mnist")
    candidates += [DEBIAN_DIR, cache_dir() / "FashionMNIST" / "raw"]
    for folder in candidates:
        if _complete(folder):
            return folder
    if download:
        return _download(cache_dir())
    raise InputError("Fashion-MNIST not found in " + ", ".join(map(str, candidates))
                     + ": install it with `apt-get install dataset-fashion-mnist`, give "
                     "its folder (--data-dir), or allow a download (--download)")


def load_fashion_mnist(root: str | Path | None = None, *, split: str = "train",
                       download: bool = False) -> ImageTensorDataset:
    """One split (``"train"``: 60,000 images, ``"test"``: 10,000) as a dataset."""
    if split not in FILES:
        raise InputError(f"unknown Fashion-MNIST split {split!r}; use 'train' or 'test'")
    folder = find_fashion_mnist(root, download=download)
    images_name, labels_name = FILES[split]
    images = read_idx(_file(folder, images_name))
    labels = read_idx(_file(folder, labels_name))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise InputError(f"{folder}: unexpected Fashion-MNIST shapes {images.shape} and "
                         f"{labels.shape}")
    return ImageTensorDataset(torch.from_numpy(images).unsqueeze(1),
                              torch.from_numpy(labels.astype("int64")), mean=MEAN, std=STD)


def fashion_mnist_splits(root: str | Path | None = None, *, val_size: int = 10_000,
                         train_limit: int | None = None, val_limit: int | None = None,
                         test_limit: int | None = None, download: bool = False) -> DataSplits:
    """Train / validation / test splits (see the module docstring); ``*_limit`` keeps the
    first items of a split only (for quick runs and tests)."""
    if val_size < 1:
        raise InputError(f"val_size must be positive, got {val_size}")
    for name, limit in (("train_limit", train_limit), ("val_limit", val_limit),
                        ("test_limit", test_limit)):
        if limit is not None and limit < 1:
            raise InputError(f"{name} must be positive, got {limit}")
    full = load_fashion_mnist(root, split="train", download=download)
    test = load_fashion_mnist(root, split="test", download=download)
    if len(full) <= val_size:
        raise InputError(f"{len(full)} training images cannot give {val_size} to validation")
    cut = len(full) - val_size
    train = full.subset(0, min(cut, train_limit) if train_limit else cut)
    val = full.subset(cut, cut + val_limit if val_limit else None)
    return DataSplits(name="fashion-mnist", train=train, val=val,
                      test=test.subset(0, test_limit), input_shape=(1, 28, 28),
                      num_classes=len(CLASSES), classes=CLASSES)


def _file(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise InputError(f"{folder}: missing {name}[.gz]")


def _complete(folder: Path) -> bool:
    return folder.is_dir() and all(
        (folder / n).is_file() or (folder / f"{n}.gz").is_file()
        for pair in FILES.values() for n in pair)


def cache_dir() -> Path:
    """The download cache: ``$NNJOULES_CACHE`` when set (and not empty), else `CACHE_DIR`."""
    chosen = os.environ.get("NNJOULES_CACHE")
    return Path(chosen).expanduser() if chosen else CACHE_DIR


def _download(cache: Path) -> Path:
    """Download through torchvision into ``cache/FashionMNIST/raw``."""
    from torchvision.datasets import FashionMNIST

    try:
        cache.mkdir(parents=True, exist_ok=True)
        FashionMNIST(str(cache), train=True, download=True)
        FashionMNIST(str(cache), train=False, download=True)
    except (OSError, RuntimeError) as err:
        reason = " ".join(str(err).split())  # torchvision's message spans several lines
        raise InputError(f"downloading Fashion-MNIST into {cache} failed ({reason}); install "
                         "`dataset-fashion-mnist` or give --data-dir") from None
    return cache / "FashionMNIST" / "raw"

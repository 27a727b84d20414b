"""Users' own images: a folder of class subfolders (torchvision ``ImageFolder`` layout).

``root/train/<class>/*.png`` and ``root/val/<class>/*.png`` (and optionally
``root/test/...``) are used as given; a plain ``root/<class>/*.png`` is split
deterministically: every ``round(1 / val_fraction)``-th image of each class (sorted by
file name) goes to validation. Without a test folder, the test split is the validation
split (and ``DataSplits.name`` says so). Images are resized to ``size``, converted to
``channels`` (1: grayscale, 3: RGB) and loaded into memory as ``uint8``; they are
normalised with mean 0.5 and standard deviation 0.5 per channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nnjoules.data.datasets import DataSplits, ImageTensorDataset
from nnjoules.errors import InputError


def image_folder_splits(root: str | Path, *, size: tuple[int, int] = (28, 28),
                        channels: int = 1, val_fraction: float = 0.1) -> DataSplits:
    """Load the images under ``root`` (see the module docstring).

    Raises:
        InputError: the folder is missing, holds no class folders or no images, or the
            options are out of range.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise InputError(f"{folder}: no such image folder")
    if channels not in (1, 3):
        raise InputError(f"channels must be 1 or 3, got {channels}")
    if not 0.0 < val_fraction < 1.0:
        raise InputError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    if (folder / "train").is_dir() and (folder / "val").is_dir():
        train_set = _load(folder / "train", size, channels)
        classes = train_set[2]
        val_set = _load(folder / "val", size, channels, classes)
        test_dir = folder / "test"
        test_set = _load(test_dir, size, channels, classes) if test_dir.is_dir() else val_set
        name = f"imagefolder:{folder}" + ("" if test_dir.is_dir() else " (test = val)")
        return _splits(name, train_set, val_set, test_set, channels, size)
    images, labels, classes = _load(folder, size, channels)
    step = max(2, round(1.0 / val_fraction))
    rank = np.zeros(len(labels), dtype=np.int64)
    for c in range(len(classes)):
        members = np.flatnonzero(labels.numpy() == c)
        rank[members] = np.arange(len(members))
    is_val = torch.from_numpy(rank % step == step - 1)
    if not bool(is_val.any()) or bool(is_val.all()):
        raise InputError(f"{folder}: too few images to split off a validation set")
    val_set = (images[is_val], labels[is_val], classes)
    train_set = (images[~is_val], labels[~is_val], classes)
    return _splits(f"imagefolder:{folder} (test = val)", train_set, val_set, val_set,
                   channels, size)


_Loaded = tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]


def _load(folder: Path, size: tuple[int, int], channels: int,
          classes: tuple[str, ...] | None = None) -> _Loaded:
    from PIL import Image
    from torchvision.datasets import ImageFolder

    try:
        found = ImageFolder(str(folder))
    except (FileNotFoundError, RuntimeError) as err:
        raise InputError(f"{folder}: not an image folder of class subfolders ({err})") \
            from None
    if classes is not None and tuple(found.classes) != classes:
        raise InputError(f"{folder}: classes {found.classes} differ from the training "
                         f"classes {list(classes)}")
    mode = "L" if channels == 1 else "RGB"
    images = np.empty((len(found.samples), channels, *size), dtype=np.uint8)
    for i, (path, _label) in enumerate(found.samples):
        with Image.open(path) as img:
            pixels = np.asarray(img.convert(mode).resize(size[::-1]), dtype=np.uint8)
        images[i] = pixels.reshape(size[0], size[1], channels).transpose(2, 0, 1)
    labels = torch.tensor([label for _path, label in found.samples], dtype=torch.int64)
    return torch.from_numpy(images), labels, tuple(found.classes)


def _splits(name: str, train: _Loaded, val: _Loaded, test: _Loaded, channels: int,
            size: tuple[int, int]) -> DataSplits:
    stats = {"mean": (0.5,) * channels, "std": (0.5,) * channels}
    return DataSplits(name=name, train=ImageTensorDataset(train[0], train[1], **stats),
                      val=ImageTensorDataset(val[0], val[1], **stats),
                      test=ImageTensorDataset(test[0], test[1], **stats),
                      input_shape=(channels, *size), num_classes=len(train[2]),
                      classes=train[2])

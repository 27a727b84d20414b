"""In-memory image datasets that batch without per-item collation.

`ImageTensorDataset` keeps images as ``uint8`` (a quarter of the memory of floats)
and normalises on the way out, one item (``dataset[i]``) or a whole batch
(``dataset.batch(indices)``) at a time. The training loop uses ``batch`` when it
exists and a ``DataLoader`` otherwise (e.g. for ``ImageFolder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset


class ImageTensorDataset(Dataset[tuple[Tensor, Tensor]]):
    """Images ``[N, C, H, W]`` (uint8) and integer labels ``[N]``, normalised on access."""

    def __init__(self, images: Tensor, labels: Tensor, *, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"expected images [N, C, H, W] and labels [N], got "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        self.images = images
        self.labels = labels.long()
        channels = images.shape[1]
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(1, channels, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(1, channels, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        x, y = self.batch(torch.tensor([index]))
        return x[0], y[0]

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised images ``[B, C, H, W]`` (float32) and labels ``[B]`` at ``indices``."""
        images = self.images[indices].float().div_(255.0)
        return (images - self.mean) / self.std, self.labels[indices]

    def subset(self, start: int, stop: int | None = None) -> ImageTensorDataset:
        """Items ``start:stop`` as a dataset sharing the storage."""
        return ImageTensorDataset(self.images[start:stop], self.labels[start:stop],
                                  mean=self.mean.flatten().tolist(),
                                  std=self.std.flatten().tolist())


@dataclass(frozen=True)
class DataSplits:
    """Training, validation (budget checks) and test (final report) data of one task."""

    name: str
    train: Any  # torch Dataset of (image, label)
    val: Any
    test: Any
    input_shape: tuple[int, int, int]  # C, H, W
    num_classes: int
    classes: tuple[str, ...]

    def describe(self) -> str:
        """One line: the name and the split sizes."""
        return (f"{self.name}: {len(self.train)} train / {len(self.val)} val / "
                f"{len(self.test)} test images of {'x'.join(map(str, self.input_shape))}, "
                f"{self.num_classes} classes")

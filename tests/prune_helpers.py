"""Small synthetic tasks and networks for the pruning tests (seconds, no dataset needed)."""

from __future__ import annotations

import torch
from torch import nn

from nnjoules.data.datasets import ImageTensorDataset


class TinyNet(nn.Module):
    """conv 3x3 x4 - ReLU - pool - conv 3x3 x8 (2 groups) - ReLU - pool - FC 3."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 8, 3, padding=1, groups=2), nn.ReLU(),
                                      nn.MaxPool2d(2))
        self.classifier = nn.Linear(8 * 3 * 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def tiny_task(n: int = 600, seed: int = 0) -> ImageTensorDataset:
    """12x12 images whose class is the brightest of three horizontal bands."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = torch.randint(0, 120, (n, 1, 12, 12), generator=g)
    for c in range(3):
        rows = slice(4 * c, 4 * c + 4)
        images[labels == c, :, rows, :] += 100
    return ImageTensorDataset(images.to(torch.uint8), labels, mean=(0.5,), std=(0.25,))


def tiny_model(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    return TinyNet()


def no_prunable_model() -> nn.Module:
    """A model without any Conv2d or Linear (for the error path)."""
    return nn.Sequential(nn.Flatten(), nn.ReLU())

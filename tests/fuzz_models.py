"""Tiny models for the fuzz suite: fast to capture and to map (``fuzz_models:tiny``)."""

from __future__ import annotations

import torch
from torch import nn


def tiny() -> nn.Module:
    """Linear(4, 3) - ReLU - Linear(3, 2), layers ``0`` and ``2``; any input whose last
    dimension is 4 runs (e.g. ``--input-shape 4`` or ``2,4``)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))

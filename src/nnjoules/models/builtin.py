"""Small built-in CNNs for 28x28 inputs with ReLU, and the shipped dense checkpoint.

* ``lenet5``: LeNet-5 in its common modern form (LeCun et al., 1998, with ReLU and max
  pooling): conv 5x5 x6 (padding 2) - pool - conv 5x5 x16 - pool - FC 120 - FC 84 -
  FC classes. 61,706 parameters for 10 classes.
* ``vgg-small``: a VGG-style stack (Simonyan & Zisserman, 2015) of 3x3 convolutions,
  16-16-pool-32-32-pool-64-pool, then FC 128 - FC classes. 110,010 parameters.
* ``resnet20`` and ``mobilenetv2``: a residual and a depthwise-separable network
  (`nnjoules.models.residual`, with BatchNorm), for channel pruning across residual
  additions and depthwise groups.

Layers are named by module path (``features.0``, ``classifier.0``), the names energy
reports use. The default model, ``lenet5`` trained on Fashion-MNIST by
``nnjoules train`` (the command and its accuracy are in the checkpoint's JSON sidecar
and in docs/pruning.md), ships with the package; `pretrained` loads it after checking
its SHA-256. It was made with

    nnjoules train lenet5 --epochs 10 --seed 0 --overwrite --out \
        src/nnjoules/models/lenet5-fashion-mnist.pt

(validation 90.99 %, test 90.57 %; 251 KB, float32).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

import torch
from torch import Tensor, nn

from nnjoules.errors import InputError
from nnjoules.models.residual import MobileNetV2, ResNet20

DEFAULT_MODEL = "lenet5"
_CHECKPOINTS = {"lenet5": "lenet5-fashion-mnist"}


class LeNet5(nn.Module):
    """LeNet-5 with ReLU for ``in_channels`` x 28 x 28 inputs."""

    input_shape = (1, 28, 28)

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.input_shape = (in_channels, 28, 28)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[N, num_classes]``."""
        return self.classifier(torch.flatten(self.features(x), 1))


class SmallVGG(nn.Module):
    """A VGG-style CNN of 3x3 convolutions for ``in_channels`` x 28 x 28 inputs."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.input_shape = (in_channels, 28, 28)

        def conv(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]

        self.features = nn.Sequential(
            *conv(in_channels, 16), *conv(16, 16), nn.MaxPool2d(2),   # 14x14
            *conv(16, 32), *conv(32, 32), nn.MaxPool2d(2),            # 7x7
            *conv(32, 64), nn.MaxPool2d(2))                           # 3x3
        self.classifier = nn.Sequential(
            nn.Linear(64 * 3 * 3, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[N, num_classes]``."""
        return self.classifier(torch.flatten(self.features(x), 1))


BUILTIN_MODELS: dict[str, Callable[..., nn.Module]] = {
    "lenet5": LeNet5, "vgg-small": SmallVGG, "resnet20": ResNet20, "mobilenetv2": MobileNetV2}


def build_model(name: str, *, num_classes: int = 10, in_channels: int = 1,
                seed: int = 0) -> nn.Module:
    """A freshly initialised built-in model (weights drawn from ``seed``).

    Raises:
        InputError: ``name`` is not a built-in model.
    """
    if name not in BUILTIN_MODELS:
        raise InputError(f"unknown built-in model {name!r}; choose one of "
                         f"{', '.join(BUILTIN_MODELS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BUILTIN_MODELS[name](num_classes=num_classes, in_channels=in_channels)


def has_pretrained(name: str) -> bool:
    """Whether a trained checkpoint of ``name`` ships with nnjoules."""
    return name in _CHECKPOINTS


def pretrained_info(name: str = DEFAULT_MODEL) -> dict[str, Any]:
    """The sidecar of the shipped checkpoint: how it was trained, its accuracy, SHA-256.

    Raises:
        InputError: no checkpoint of ``name`` ships with nnjoules.
    """
    if name not in _CHECKPOINTS:
        raise InputError(f"no shipped checkpoint for {name!r}; shipped: "
                         f"{', '.join(_CHECKPOINTS)} (train one with `nnjoules train`)")
    text = resources.files("nnjoules.models").joinpath(
        f"{_CHECKPOINTS[name]}.pt.json").read_text()
    info: dict[str, Any] = json.loads(text)
    return info


def pretrained(name: str = DEFAULT_MODEL) -> nn.Module:
    """The shipped dense model ``name``, trained on Fashion-MNIST, in eval mode.

    Raises:
        InputError: no checkpoint ships for ``name``, or its checksum does not match.
    """
    info = pretrained_info(name)
    data = resources.files("nnjoules.models").joinpath(f"{_CHECKPOINTS[name]}.pt").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != info["sha256"]:
        raise InputError(f"shipped checkpoint {_CHECKPOINTS[name]}.pt is damaged: SHA-256 "
                         f"{digest} != {info['sha256']}")
    import io

    saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    model = build_model(name, num_classes=int(saved["num_classes"]),
                        in_channels=int(saved["in_channels"]))
    model.load_state_dict({k: v.float() for k, v in saved["state_dict"].items()})
    return model.eval()

"""Built-in CNNs and the shipped checkpoint."""

from __future__ import annotations

import pytest
import torch

from nnjoules.errors import InputError
from nnjoules.models.builtin import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    build_model,
    pretrained,
    pretrained_info,
)
from nnjoules.prune.masks import prunable_layers


@pytest.mark.parametrize("name, params, layers", [
    ("lenet5", 61_706, ["features.0", "features.3", "classifier.0", "classifier.2",
                        "classifier.4"]),
    ("vgg-small", 110_010, ["features.0", "features.2", "features.5", "features.7",
                            "features.10", "classifier.0", "classifier.2"]),
])
def test_builtin_shapes(name: str, params: int, layers: list[str]) -> None:
    model = build_model(name)
    assert sum(p.numel() for p in model.parameters()) == params
    assert list(prunable_layers(model)) == layers
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert any(isinstance(m, torch.nn.ReLU) for m in model.modules())


def test_build_is_seeded_and_does_not_touch_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model("lenet5", seed=1)
    after = torch.rand(1)
    b = build_model("lenet5", seed=1)
    assert torch.equal(before, after)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    with pytest.raises(InputError, match="unknown built-in model"):
        build_model("resnet-tiny")
    assert set(BUILTIN_MODELS) == {"lenet5", "vgg-small", "resnet20", "mobilenetv2"}


def test_shipped_checkpoint_loads_and_records_how_it_was_made() -> None:
    info = pretrained_info()
    assert info["model"] == DEFAULT_MODEL
    assert info["command"].startswith("nnjoules train lenet5")
    assert info["bytes"] < 1_000_000 and len(info["sha256"]) == 64
    assert 0.85 < info["test_accuracy"] < 1.0
    model = pretrained()
    assert not model.training
    with pytest.raises(InputError, match="no shipped checkpoint"):
        pretrained("vgg-small")


@pytest.mark.usefixtures("fashion_mnist_installed")
def test_shipped_checkpoint_accuracy_matches_its_record() -> None:
    from nnjoules.data import fashion_mnist_splits
    from nnjoules.prune.finetune import evaluate

    splits = fashion_mnist_splits()
    assert evaluate(pretrained(), splits.test) == pytest.approx(
        pretrained_info()["test_accuracy"], abs=1e-9)

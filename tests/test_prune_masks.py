"""Masks follow torch.nn.utils.prune and stay zero through fine-tuning and save/load."""

from __future__ import annotations

import io

import torch
from torch.nn.utils import prune as torch_prune

from nnjoules.prune import load_masked_state, make_permanent
from nnjoules.prune.finetune import TrainConfig, train
from nnjoules.prune.masks import (
    clone,
    ensure_masks,
    mask_of,
    nonzero_counts,
    prunable_layers,
    set_weight,
    weight_of,
)
from prune_helpers import tiny_model, tiny_task


def masked_model() -> torch.nn.Module:
    model = tiny_model()
    layers = ensure_masks(model)
    g = torch.Generator().manual_seed(0)
    for module in layers.values():
        weight = weight_of(module)
        set_weight(module, weight, (torch.rand(weight.shape, generator=g) > 0.6).float())
    return model


def test_pytorch_convention() -> None:
    model = masked_model()
    conv = model.features[0]
    names = {n for n, _ in conv.named_parameters()} | {n for n, _ in conv.named_buffers()}
    assert {"weight_orig", "weight_mask", "bias"} <= names
    assert torch_prune.is_pruned(model)
    assert torch.equal(conv.weight, conv.weight_orig * conv.weight_mask)
    assert list(prunable_layers(model)) == ["features.0", "features.3", "classifier"]


def test_masked_weights_stay_zero_through_finetuning_and_save_load() -> None:
    model = masked_model()
    before = {n: mask_of(m).clone() for n, m in prunable_layers(model).items()}
    train(model, tiny_task(200), TrainConfig(epochs=1, lr=0.1, weight_decay=1e-3), seed=0)
    for name, module in prunable_layers(model).items():
        assert torch.equal(mask_of(module), before[name])
        assert torch.all(weight_of(module)[before[name] == 0] == 0)
        x = torch.randn(2, 1, 12, 12)
        model(x)  # the forward hook recomputes weight from weight_orig * mask
        assert torch.all(module.weight[before[name] == 0] == 0)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    fresh = load_masked_state(tiny_model(seed=9), torch.load(buffer, weights_only=True))
    x = torch.randn(4, 1, 12, 12)
    assert torch.equal(fresh(x), model(x))
    assert nonzero_counts(fresh) == nonzero_counts(model)
    permanent = make_permanent(clone(fresh))
    assert not torch_prune.is_pruned(permanent)
    assert torch.equal(permanent(x), model(x))
    assert nonzero_counts(permanent) == nonzero_counts(model)

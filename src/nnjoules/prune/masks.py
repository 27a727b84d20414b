"""Masks in the convention of ``torch.nn.utils.prune``: ``weight_orig`` and ``weight_mask``.

A pruned layer keeps its trainable ``weight_orig`` and a ``weight_mask`` buffer of
ones and zeros; a forward pre-hook sets ``weight = weight_orig * weight_mask``.
``prune.remove`` (`make_permanent`) folds the mask in. Users' own tools that know this
convention keep working on our models, and ours on theirs.

Prunable layers are ``nn.Conv2d`` (any groups, zero padding or not) and ``nn.Linear``;
biases are never pruned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import prune

from nnjoules.errors import InputError

PRUNABLE = (nn.Conv2d, nn.Linear)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Conv2d and Linear modules by module path, in definition order.

    Raises:
        InputError: the model has none.
    """
    layers: dict[str, nn.Module] = {name: m for name, m in model.named_modules()
                                    if isinstance(m, PRUNABLE)}
    if not layers:
        raise InputError(f"model {type(model).__name__} has no prunable layer "
                         "(nn.Conv2d or nn.Linear)")
    return layers


def tied_groups(model: nn.Module) -> dict[str, list[str]]:
    """Prunable layers grouped by the weight tensor they use: the first module path of
    each distinct weight -> every module path that uses it (one path unless tied)."""
    groups: dict[int, list[str]] = {}
    for name, module in prunable_layers(model).items():
        param = module._parameters.get("weight_orig", module._parameters.get("weight"))
        groups.setdefault(id(param) if param is not None else id(module), []).append(name)
    return {names[0]: names for names in groups.values()}


def distinct_layers(model: nn.Module) -> dict[str, nn.Module]:
    """One prunable layer per distinct weight (`tied_groups`: the first that uses it)."""
    layers = prunable_layers(model)
    return {name: layers[name] for name in tied_groups(model)}


def ensure_masks(model: nn.Module, names: list[str] | None = None) -> dict[str, nn.Module]:
    """Give every prunable layer (or those named, and the layers tied to them) a mask of
    ones if it has none yet; layers that share one weight share one mask tensor, so
    that a pruned shared weight stays shared (a weight zero in one use is zero in all)."""
    layers = prunable_layers(model)
    groups = [g for g in tied_groups(model).values() if names is None or set(g) & set(names)]
    chosen = {n: layers[n] for g in groups for n in g}
    for module in chosen.values():
        if not prune.is_pruned(module) or not hasattr(module, "weight_mask"):
            prune.identity(module, "weight")
    for group in groups:
        shared = layers[group[0]].weight_mask
        assert isinstance(shared, Tensor)
        for name in group[1:]:
            own = layers[name].weight_mask
            if isinstance(own, Tensor) and own is not shared:
                with torch.no_grad():
                    shared.mul_(own)
                layers[name]._buffers["weight_mask"] = shared
        for name in group:
            refresh(layers[name])
    return chosen


def clone(model: nn.Module) -> nn.Module:
    """A deep copy of a model whose layers may be masked (``copy.deepcopy`` refuses the
    non-leaf ``weight`` tensors that the pruning hooks leave behind)."""
    import copy

    for module in model.modules():
        if isinstance(getattr(module, "weight_mask", None), Tensor):
            refresh(module)
    return copy.deepcopy(model)


def refresh(module: nn.Module) -> None:
    """Recompute ``weight`` from ``weight_orig * weight_mask`` outside autograd."""
    orig, mask = module.weight_orig, module.weight_mask
    assert isinstance(orig, Tensor) and isinstance(mask, Tensor)
    with torch.no_grad():
        module.weight = orig * mask


def mask_of(module: nn.Module) -> Tensor:
    """The layer's mask (ones when it is not pruned)."""
    mask = getattr(module, "weight_mask", None)
    if isinstance(mask, Tensor):
        return mask
    weight = module.weight
    assert isinstance(weight, Tensor)
    return torch.ones_like(weight)


def weight_of(module: nn.Module) -> Tensor:
    """The effective weight (``weight_orig * weight_mask`` for a pruned layer), detached."""
    orig = getattr(module, "weight_orig", None)
    if isinstance(orig, Tensor):
        return (orig * mask_of(module)).detach()
    weight = module.weight
    assert isinstance(weight, Tensor)
    return weight.detach()


@torch.no_grad()
def set_weight(module: nn.Module, weight: Tensor, mask: Tensor) -> None:
    """Set a masked layer's values and mask (``ensure_masks`` must have run)."""
    orig = module.weight_orig
    assert isinstance(orig, Tensor)
    mask_buf = module.weight_mask
    assert isinstance(mask_buf, Tensor)
    mask_buf.copy_(mask.to(mask_buf))
    orig.copy_((weight * mask).to(orig))
    refresh(module)


def nonzero_counts(model: nn.Module) -> dict[str, tuple[int, int]]:
    """(non-zero weights, weights) per distinct weight (`distinct_layers`): a weight
    that several layers share is counted once."""
    return {name: (int(torch.count_nonzero(weight_of(m))), weight_of(m).numel())
            for name, m in distinct_layers(model).items()}


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold every mask into its weight (``prune.remove``); returns the model."""
    for module in prunable_layers(model).values():
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            prune.remove(module, "weight")
    return model


def masked_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """A CPU copy of the state dict (masked layers keep ``weight_orig``/``weight_mask``)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def load_masked_state(model: nn.Module, state: Mapping[str, Any]) -> nn.Module:
    """Load a state dict that may hold ``*.weight_orig``/``*.weight_mask`` pairs into a
    model (masks are added to the layers that need them); returns the model.

    Raises:
        InputError: the state does not fit the model.
    """
    masked = [k[: -len(".weight_mask")] for k in state if k.endswith(".weight_mask")]
    layers = prunable_layers(model)
    unknown = [n for n in masked if n not in layers]
    if unknown:
        raise InputError(f"saved masks for layers the model lacks: {unknown}")
    ensure_masks(model, masked)
    try:
        model.load_state_dict(dict(state))
    except RuntimeError as err:
        raise InputError(f"saved weights do not fit model {type(model).__name__}: {err}") \
            from None
    for name in masked:
        refresh(layers[name])
    return model


def check_state(state: Mapping[str, Any]) -> None:
    """Refuse a state dict with a mask that is not 0/1 or a non-finite float tensor.

    Raises:
        InputError: names the layer (module path) and the entry.
    """
    for key, value in state.items():
        if not isinstance(value, Tensor):
            continue
        layer = key.rsplit(".", 1)[0] if "." in key else key
        if key.endswith("_mask"):
            bad = value[(value != 0) & (value != 1)]
            if bad.numel():
                raise InputError(f"layer {layer}: mask {key} holds {bad.numel()} value(s) "
                                 f"other than 0 and 1 (e.g. {float(bad.flatten()[0]):g})")
        elif value.is_floating_point() and not bool(torch.isfinite(value).all()):
            count = int((~torch.isfinite(value)).sum())
            raise InputError(f"layer {layer}: {key} holds {count} non-finite value(s) "
                             "(NaN or Inf)")


def check_finite(model: nn.Module, when: str = "") -> None:
    """Refuse a model whose parameters or buffers hold NaN or Inf.

    Raises:
        InputError: ``"layer NAME: weight holds K non-finite value(s) (NaN or Inf)"``,
            followed by ``when`` (e.g. " after fine-tuning in round 3").
    """
    try:
        check_state({k: v.detach() for k, v in model.state_dict().items()})
    except InputError as err:
        raise InputError(f"{err}{when}; nnjoules cannot prune a model with non-finite "
                         "weights") from None

"""Weights used by more than one layer (tied weights, a module called twice).

A weight tensor that several layers use is one set of parameters: the energy of each
use is counted (each layer reads it), but `Workload.num_weights` and the report's
``weights()``/``nonzero_weights()`` count it once. A layer whose weights an earlier
layer already holds names that layer in ``Layer.shares_weights``.
"""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from nnjoules.energy.workload import Layer, LayerKind, Workload


def mark_shared_weights(workload: Workload, module: nn.Module) -> Workload:
    """``workload`` (captured from ``module``) with ``shares_weights`` set on every conv
    or FC layer whose module's weight parameter an earlier layer already used.

    Layers are matched to modules by path (``name`` or ``name#k``); the weight is the
    module's ``weight`` (``weight_orig`` when pruned with ``torch.nn.utils.prune``) and
    must hold exactly the layer's weights.
    """
    modules = dict(module.named_modules())
    first: dict[int, str] = {}
    layers: list[Layer] = []
    for layer in workload.layers:
        owner = modules.get(layer.name.split("#", 1)[0])
        params = owner._parameters if owner is not None else {}
        weight = params.get("weight_orig", params.get("weight"))
        if (weight is None or layer.kind not in (LayerKind.CONV, LayerKind.FC)
                or weight.numel() != layer.num_weights):
            layers.append(layer)
            continue
        holder = first.setdefault(id(weight), layer.name)
        layers.append(layer if holder == layer.name else replace(layer, shares_weights=holder))
    return replace(workload, layers=tuple(layers))

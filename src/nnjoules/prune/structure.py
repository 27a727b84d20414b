"""Channel (filter) groups, their physical removal, and the shapes they leave.

Removing output channel c of a convolution or linear layer also removes, everywhere the
graph couples it: the BatchNorm channel, the consumers' input channels (a block of
input features after a flatten), the other producers of a residual sum, the filters of
a depthwise layer. Torch-Pruning's `DependencyGraph` finds that coupling and does the
surgery; this module records it per channel (`ChannelGroup`) so that the energy model
can price a cut on shapes alone (`shrink_workload`) before the model is touched, and
applies the cuts (`remove_channels`), checking that the model still runs and still
gives outputs of the same shape.

A group is named by its *root*: the first convolution or linear layer (in module
order) whose output channels it removes. Layers whose output channels reach the model's
output unchanged (the classifier) have no consumer and form no group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from nnjoules.energy.workload import Layer, Workload
from nnjoules.errors import InputError

PRUNABLE = (nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class Coupled:
    """One convolution or linear layer that a group's cut changes.

    Attributes:
        module: its module path.
        side: ``"out"`` (its filters go) or ``"in"`` (its input channels go).
        per_channel: for each channel of the group's root, the indices it removes on
            that side (one index for filters and conv inputs; a block of input features
            for a linear layer after a flatten).
        groups: the module's ``groups`` (1 for a linear layer).
        linear: the module is ``nn.Linear``.
    """

    module: str
    side: str
    per_channel: tuple[tuple[int, ...], ...]
    groups: int
    linear: bool

    def removed(self, channels: Iterable[int]) -> int:
        """How many indices this module loses when the root loses ``channels``."""
        return sum(len(self.per_channel[c]) for c in channels)


@dataclass(frozen=True)
class ChannelGroup:
    """The output channels of ``root`` and every layer coupled to them.

    Attributes:
        root: module path of the layer whose filters the group removes.
        channels: its output channels now.
        coupled: every convolution or linear layer the cut changes (the root first).
    """

    root: str
    channels: int
    coupled: tuple[Coupled, ...]

    @property
    def consumers(self) -> tuple[Coupled, ...]:
        """The layers whose input channels go (they read the removed feature maps)."""
        return tuple(c for c in self.coupled if c.side == "in")


def check_channel_support(model: nn.Module) -> None:
    """Refuse a model with a convolution channel pruning cannot cut: grouped but not
    depthwise (1 < groups, not in = out = groups). Torch-Pruning removes its channels
    without keeping every group the same size, and the model would no longer run.

    Raises:
        InputError: ``channel pruning does not support grouped convolution conv2
            (groups=2, 8 -> 16 channels); ...``.
    """
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d) or module.groups == 1:
            continue
        if module.in_channels == module.out_channels == module.groups:
            continue  # depthwise: one channel per group, cut whole groups
        raise InputError(f"channel pruning does not support grouped convolution {name} "
                         f"(groups={module.groups}, {module.in_channels} -> "
                         f"{module.out_channels} channels): only groups=1 and depthwise "
                         "(groups = in = out channels); use --granularity weight")


def _graph(model: nn.Module, example_inputs: Tensor) -> Any:
    import torch_pruning as tp

    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():  # Torch-Pruning traces through autograd
            return tp.DependencyGraph().build_dependency(model, example_inputs=example_inputs)
    except Exception as err:  # noqa: BLE001  (Torch-Pruning raises plain exceptions)
        raise InputError(f"Torch-Pruning cannot trace this model for channel pruning: "
                         f"{type(err).__name__}: {err}") from None
    finally:
        model.train(was_training)


def _out_handler(module: nn.Module) -> Any:
    import torch_pruning as tp

    return tp.prune_linear_out_channels if isinstance(module, nn.Linear) \
        else tp.prune_conv_out_channels


def _coupling(graph: Any, module: nn.Module, channel: int,
              names: Mapping[nn.Module, str]) -> dict[tuple[str, str], tuple[int, ...]]:
    """(module path, side) -> indices removed, for one channel of ``module``."""
    found: dict[tuple[str, str], tuple[int, ...]] = {}
    for dep, idxs in graph.get_pruning_group(module, _out_handler(module), idxs=[channel]):
        target = dep.target.module
        if not isinstance(target, PRUNABLE) or target not in names:
            continue
        side = "in" if "in_channels" in dep.handler.__name__ else "out"
        found[names[target], side] = tuple(int(i) for i in idxs)
    return found


def _out_channels(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.out_features
    assert isinstance(module, nn.Conv2d)
    return module.out_channels


def channel_groups(model: nn.Module, example_inputs: Tensor) -> tuple[ChannelGroup, ...]:
    """Every prunable channel group of ``model``, in module order.

    Args:
        model: the network (not modified).
        example_inputs: one batch of inputs ``[N, ...]`` to trace it with.

    Raises:
        InputError: Torch-Pruning cannot trace the model; a coupled layer type that
            it does not prune (named).
    """
    graph = _graph(model, example_inputs)
    modules = dict(model.named_modules())
    names: dict[nn.Module, str] = {m: n for n, m in modules.items()
                                   if isinstance(m, PRUNABLE)}
    covered: set[str] = set()
    groups = []
    for module, name in names.items():
        if name in covered:
            continue
        out = _out_channels(module)
        per: dict[tuple[str, str], list[tuple[int, ...]]] = {}
        for channel in range(out):
            for key, idxs in _coupling(graph, module, channel, names).items():
                per.setdefault(key, []).append(idxs)
        coupled = tuple(
            Coupled(module=path, side=side, per_channel=tuple(idxs),
                    groups=getattr(modules[path], "groups", 1),
                    linear=isinstance(modules[path], nn.Linear))
            for (path, side), idxs in per.items() if len(idxs) == out)
        covered.update(c.module for c in coupled if c.side == "out")
        group = ChannelGroup(root=name, channels=out, coupled=coupled)
        if group.consumers:
            groups.append(group)
    return tuple(groups)


def shrink_workload(workload: Workload, cuts: Mapping[ChannelGroup, Sequence[int]]
                    ) -> Workload:
    """The shapes ``workload`` has once each group loses its listed root channels.

    Filters go from M (or, for a depthwise layer, G), input channels from C (input
    features for a linear layer). Densities stay as measured. A layer called more than
    once (``name#1``) changes at every call.

    Raises:
        InputError: a cut would remove every channel of a layer.
    """
    change: dict[str, tuple[int, int]] = {}  # module -> (filters lost, inputs lost)
    for group, channels in cuts.items():
        for c in group.coupled:
            lost = c.removed(channels)
            out_lost, in_lost = change.get(c.module, (0, 0))
            change[c.module] = ((out_lost + lost, in_lost) if c.side == "out"
                                else (out_lost, in_lost + lost))
    layers = []
    for layer in workload.layers:
        cut = change.get(layer.name.split("#", 1)[0])
        layers.append(layer if cut is None else _shrunk(layer, *cut))
    return replace(workload, layers=tuple(layers))


def _shrunk(layer: Layer, filters: int, inputs: int) -> Layer:
    if layer.G > 1 and layer.C == 1 and layer.M == 1:  # depthwise: a channel is a group
        g = layer.G - max(filters, inputs)
        if g < 1:
            raise InputError(f"layer {layer.name}: a cut would remove all its channels")
        return replace(layer, G=g)
    m, c = layer.M - filters // layer.G, layer.C - inputs // layer.G
    if m < 1 or c < 1:
        raise InputError(f"layer {layer.name}: a cut would remove all its channels")
    return replace(layer, M=m, C=c)


def remove_channels(model: nn.Module, example_inputs: Tensor,
                    cuts: Mapping[str, Sequence[int]]) -> None:
    """Remove root channels in place: ``{root module path: channel indices}``.

    Raises:
        InputError: a cut names no group root or would leave a layer without channels;
            the model no longer runs, or its output shape changed (the message names the
            root: Torch-Pruning could not handle a layer coupled to it).
    """
    modules = dict(model.named_modules())
    before = _output_shape(model, example_inputs)
    for root, channels in cuts.items():
        if not channels:
            continue
        module = modules.get(root)
        if not isinstance(module, PRUNABLE):
            raise InputError(f"no convolution or linear layer named {root!r} to prune")
        graph = _graph(model, example_inputs)
        group = graph.get_pruning_group(module, _out_handler(module),
                                        idxs=sorted(set(int(c) for c in channels)))
        if not graph.check_pruning_group(group):
            raise InputError(f"layer {root}: removing {len(set(channels))} channels would "
                             "leave a coupled layer without channels")
        group.prune()
    after = _output_shape(model, example_inputs, root=", ".join(cuts))
    if after != before:
        raise InputError(f"channel pruning of {', '.join(cuts)} changed the model's output "
                         f"shape from {before} to {after}: Torch-Pruning cannot handle a "
                         "layer coupled to it")


def _output_shape(model: nn.Module, inputs: Tensor, *, root: str = "") -> tuple[int, ...]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(inputs)
    except Exception as err:  # noqa: BLE001  (any failure of the pruned graph)
        where = f" after pruning {root}" if root else ""
        raise InputError(f"the model does not run{where}: {type(err).__name__}: {err}"
                         ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, Tensor):
        raise InputError("channel pruning needs a model that returns one tensor")
    return tuple(out.shape)

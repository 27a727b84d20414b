"""Capture the workload of an ``nn.Module`` by running it once under a dispatch mode.

Like ``torch.utils.flop_counter.FlopCounterMode``, a ``TorchDispatchMode`` sees every
ATen operator the forward runs, functional calls included. A table maps each modelled
operator to a small handler that turns its operands into Eyeriss shape letters; every
other operator that touches an activation is counted in ``Workload.unmodelled``.

Decisions (documented here once):

* **Activations vs. weights.** A tensor is an *activation* when it derives from the
  example inputs; everything else (parameters, buffers, constants and what is computed
  from them alone, e.g. ``weight_orig * weight_mask`` of ``torch.nn.utils.prune``) is a
  weight. A product whose second operand is a weight is an FC layer; a product of two
  activations is a MATMUL layer. Operators that touch no activation are weight
  preprocessing that a deployed model folds away: they are neither layers nor counted.
* **Free operators** (`FREE_OPS`) only move or relabel data (views, reshapes, copies,
  concatenation, padding, allocation) and cost nothing in the model; they are not
  reported. Transposed and 3-D convolutions are reported as unmodelled
  (``aten.convolution[transposed]``, ``aten.convolution[3d]``), never silently dropped.
* **Attention.** The fused ``_scaled_dot_product_*attention*`` kernels become two MATMUL
  layers, Q·K^T and attn·V, as FlopCounterMode counts them. The fast path of
  ``nn.MultiheadAttention`` (one opaque ``_native_multi_head_attention`` op) is switched
  off during capture so that its projections and attention products are seen.
* **Densities.** Weight density is that of the weight operand actually used (pruning
  masks included). Ifmap density is that of the layer's input *before* padding: the
  zero padding is generated on chip, never read from DRAM. Ofmap density is measured on
  the value written back: after a chain of element-wise operators applied directly to
  the output (batch norm, ReLU, clamp, GELU, ...) and views of it. Attention scores and
  probabilities are never materialised by the fused kernel: density 1.0, no RLC count.
* The module runs in eval mode under ``torch.no_grad()``; training flags are restored.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from nnjoules.energy.extract.product import ProductShape
from nnjoules.energy.extract.sparsity import finite_tensor_stats
from nnjoules.energy.workload import Density, Layer, LayerKind, UnmodelledOp, Workload
from nnjoules.errors import InputError, ModelLoadError

__all__ = ["FREE_OPS", "FUSED_OPS", "workload_from_module"]

aten = torch.ops.aten


def _packets(*names: str) -> frozenset[object]:
    """ATen overload packets by name, skipping any this torch version lacks."""
    return frozenset(getattr(aten, n) for n in names if hasattr(aten, n))


# Pure data-layout operators: same values, other shape or place. Chains of fused
# operators (below) continue through the first group.
_VIEW_OPS = _packets("view", "_unsafe_view", "reshape", "_reshape_alias", "t", "transpose",
                     "permute", "squeeze", "unsqueeze", "flatten", "clone", "contiguous",
                     "detach", "alias", "_to_copy", "lift_fresh")
FREE_OPS: frozenset[object] = _VIEW_OPS | _packets(
    "expand", "select", "slice", "split", "split_with_sizes", "unbind", "chunk", "narrow",
    "as_strided", "cat", "stack", "constant_pad_nd", "copy_", "empty", "empty_like",
    "empty_strided", "new_empty", "zeros", "zeros_like", "new_zeros", "fill_",
    "_local_scalar_dense")
# Single-input element-wise operators that a layer's output goes through before it is
# written back: the ofmap density is measured after them.
FUSED_OPS: frozenset[object] = _packets(
    "native_batch_norm", "_native_batch_norm_legit_no_training", "_native_batch_norm_legit",
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "clamp", "clamp_", "clamp_min",
    "clamp_min_", "clamp_max", "clamp_max_", "dropout", "native_dropout", "gelu", "gelu_",
    "silu", "silu_", "leaky_relu", "leaky_relu_", "hardswish", "hardswish_", "elu", "elu_")


@dataclass(frozen=True, eq=False)
class _Product(ProductShape):
    """A modelled product found in one op: its shape letters and the operand tensors."""

    ifmap: Tensor | None = None  # None: not materialised, density 1.0
    weights: Tensor | None = None
    ofmap: Tensor | None = None


_IsAct = Callable[[Tensor], bool]
# handler(op arguments, op output, is_activation) -> products, or a label to report as
# unmodelled; arguments and output are as ATen passes them (tensors, lists, numbers)
_Handler = Callable[[tuple[Any, ...], Any, _IsAct], "tuple[_Product, ...] | str"]


def _conv(args: tuple[Any, ...], out: Any, is_act: _IsAct) -> tuple[_Product, ...] | str:
    # [N, G*M, E, F] = convolution([N, G*C, H, W], [G*M, C, R, S]; stride U, padding,
    #                              dilation, groups G); a 1-D conv is a 1 x L image
    x, w = args[0], args[1]
    stride, padding, dilation, transposed, _, groups = args[3:9]
    if transposed:
        return "aten.convolution[transposed]"
    if x.dim() not in (3, 4):
        return f"aten.convolution[{x.dim() - 2}d]"
    lead = (1,) if x.dim() == 3 else ()  # the 1-D case gets H = R = E = 1, no padding
    (u, v), (dh, dw) = _pair(stride, lead), _pair(dilation, lead)
    ph, pw = _pair(padding, (0,) if lead else ())
    (n, _, h, width), (_, c, r, s), (_, m_all, e, f) = (_as_2d(t) for t in (x, w, out))
    return (_Product(LayerKind.CONV, N=n, M=m_all // groups, C=c, G=groups, H=h + 2 * ph,
                     W=width + 2 * pw, R=r, S=s, E=e, F=f, stride=(u, v), dilation=(dh, dw),
                     padding=(ph, ph, pw, pw), ifmap=x, weights=w, ofmap=out),)


def _pair(values: list[int], lead: tuple[int, ...]) -> tuple[int, ...]:
    """A conv argument as (vertical, horizontal); one value applies to both."""
    vals = tuple(int(v) for v in values)
    if lead:
        return (*lead, vals[-1])
    return vals * 2 if len(vals) == 1 else vals


def _as_2d(t: Tensor) -> tuple[int, ...]:
    """Shape of a conv operand as 2-D: ``[N, C, L]`` becomes ``[N, C, 1, L]``."""
    shape = tuple(t.shape)
    return (*shape[:2], 1, *shape[2:]) if len(shape) == 3 else shape


def _product(a: Tensor, b: Tensor, out: Tensor, is_act: _IsAct) -> tuple[_Product, ...]:
    # [G, N, M] = a [G, N, C] @ b [G, C, M]; a constant b makes it an FC layer
    g = math.prod(a.shape[:-2])
    n, c, m = a.shape[-2], a.shape[-1], b.shape[-1]
    if not is_act(b):
        return (_Product(LayerKind.FC, N=n, M=m, C=c, G=g, ifmap=a, weights=b, ofmap=out),)
    if not is_act(a):  # W @ X: the columns of X are the FC rows
        return (_Product(LayerKind.FC, N=m, M=n, C=c, G=g, ifmap=b, weights=a, ofmap=out),)
    return (_Product(LayerKind.MATMUL, N=n, M=m, C=c, G=g, ifmap=a, weights=b, ofmap=out),)


def _mm(args: tuple[Any, ...], out: Any, is_act: _IsAct) -> tuple[_Product, ...]:
    # [N, M] = mm([N, C], [C, M])
    return _product(args[0], args[1], out, is_act)


def _addmm(args: tuple[Any, ...], out: Any, is_act: _IsAct) -> tuple[_Product, ...]:
    # [N, M] = bias + mm([N, C], [C, M])
    return _product(args[1], args[2], out, is_act)


def _sdpa(args: tuple[Any, ...], out: Any, is_act: _IsAct) -> tuple[_Product, ...]:
    # [B.., L, Ev] = softmax(q [B.., L, E] @ k [B.., S, E]^T) @ v [B.., S, Ev]
    q, k, v = args[0], args[1], args[2]
    g = math.prod(q.shape[:-2])
    (length, e), s, ev = q.shape[-2:], k.shape[-2], v.shape[-1]
    result = out[0] if isinstance(out, tuple | list) else out
    return (_Product(LayerKind.MATMUL, N=length, M=s, C=e, G=g, ifmap=q, weights=k),
            _Product(LayerKind.MATMUL, N=length, M=ev, C=s, G=g, weights=v, ofmap=result))


_HANDLERS: dict[object, _Handler] = {
    aten.convolution: _conv,
    aten._convolution: _conv,
    aten.mm: _mm,
    aten.bmm: _mm,
    aten.addmm: _addmm,
    aten.baddbmm: _addmm,
    **{op: _sdpa for op in _packets(
        "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_fused_attention_overrideable")},
}


@dataclass(eq=False)
class _Chain:
    """A layer whose ofmap is not yet measured: ``head`` is its latest fused value."""

    layer_index: int
    head: Tensor
    tensor_ids: list[int] = field(default_factory=list)


class _TensorSet:
    """Tensors by identity, held weakly (tensors compare element-wise, so no WeakSet)."""

    def __init__(self) -> None:
        self._refs: dict[int, tuple[weakref.ref[Tensor], object]] = {}

    def add(self, t: Tensor, value: object = True) -> None:
        self._refs[id(t)] = (weakref.ref(t), value)

    def get(self, t: Tensor) -> object | None:
        entry = self._refs.get(id(t))
        return entry[1] if entry is not None and entry[0]() is t else None

    def discard(self, key: int, value: object) -> None:
        """Forget the tensor with id ``key`` if it maps to ``value`` (ids are reused)."""
        entry = self._refs.get(key)
        if entry is not None and entry[1] is value:
            del self._refs[key]


class _ModuleNames:
    """The path of the innermost module running, kept by global forward hooks."""

    def __init__(self, root: nn.Module) -> None:
        self._names = {id(m): n for n, m in root.named_modules() if n}
        self._names[id(root)] = type(root).__name__
        self.stack = [type(root).__name__]
        self._handles = [nn.modules.module.register_module_forward_pre_hook(self._enter),
                         nn.modules.module.register_module_forward_hook(self._leave)]

    def _enter(self, module: nn.Module, _args: object) -> None:
        name = self._names.get(id(module)) or f"{self.stack[-1]}.{type(module).__name__}"
        self.stack.append(name)

    def _leave(self, _module: nn.Module, _args: object, _out: object) -> None:
        if len(self.stack) > 1:
            self.stack.pop()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def _tensors(obj: object) -> list[Tensor]:
    """Tensors among ``obj`` and the items of a list/tuple/dict ``obj`` (one level down)."""
    if isinstance(obj, Tensor):
        return [obj]
    items = list(obj.values()) if isinstance(obj, dict) else obj
    found: list[Tensor] = []
    for item in items if isinstance(items, list | tuple) else ():
        if isinstance(item, Tensor):
            found.append(item)
        elif isinstance(item, list | tuple):  # e.g. the tensors of aten.cat
            found.extend(t for t in item if isinstance(t, Tensor))
    return found


def _version(t: Tensor) -> int:
    try:
        return t._version
    except RuntimeError:  # inference tensors keep no version counter
        return -1


_Stats = tuple[float, float | None]  # density, RLC pairs per value
_UNMEASURED: _Stats = (1.0, None)


class _Capture(TorchDispatchMode):
    """Records layers, unmodelled operators and densities while the model runs."""

    def __init__(self, names: _ModuleNames, *, measure_density: bool) -> None:
        super().__init__()
        self._names = names
        self._measure = measure_density
        self.activations = _TensorSet()
        self.layers: list[Layer] = []
        self.stats: list[dict[str, _Stats]] = []  # per layer: operand -> stats
        self.unmodelled: Counter[str] = Counter()
        self._name_count: Counter[str] = Counter()
        self._chains = _TensorSet()  # tensor -> the _Chain it belongs to
        self._open: dict[int, _Chain] = {}  # layer index -> chain not yet measured
        self._cache: dict[int, tuple[weakref.ref[Tensor], int, _Stats]] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        packet = func.overloadpacket
        acts = [t for t in _tensors(args) + _tensors(kwargs) if self.activations.get(t)]
        if not acts:  # weight preprocessing or allocation: not part of the workload
            return func(*args, **kwargs)
        handler = _HANDLERS.get(packet)
        if handler is None and packet not in FREE_OPS and packet not in FUSED_OPS:
            with self:  # as FlopCounterMode: see the parts of a composite operator
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        extend = self._settle_chains(packet, acts, args) if self._measure else None
        out = func(*args, **kwargs)
        for t in _tensors(out):
            self.activations.add(t)
        if extend is not None and isinstance(head := _first_tensor(out), Tensor):
            extend.head = head
            extend.tensor_ids.append(id(head))
            self._chains.add(head, extend)
        if handler is not None:
            products = handler(args, out, lambda t: bool(self.activations.get(t)))
            if isinstance(products, str):
                self.unmodelled[products] += 1
            for product in () if isinstance(products, str) else products:
                self._record(product, packet)
        elif packet not in FREE_OPS:
            self.unmodelled[_op_label(packet)] += 1
        return out

    def _settle_chains(self, packet: object, acts: list[Tensor], args: tuple) -> _Chain | None:
        """Measure the ofmaps this op consumes, unless it extends their chain of fused ops.

        Runs before the op, so that an in-place op cannot change what is measured.
        """
        extend = None
        for t in acts:
            chain = self._chains.get(t)
            if not isinstance(chain, _Chain):
                continue
            if (len(acts) == 1 and args and args[0] is t and t is chain.head
                    and (packet in FUSED_OPS or packet in _VIEW_OPS)):
                extend = chain
            else:
                self._finish_chain(chain)
        return extend

    def _finish_chain(self, chain: _Chain) -> None:
        self.stats[chain.layer_index]["ofmaps"] = self._stats(
            chain.head, f"layer {self.layers[chain.layer_index].name!r}: ofmaps")
        self._open.pop(chain.layer_index, None)
        for key in chain.tensor_ids:
            self._chains.discard(key, chain)

    def finish(self) -> None:
        """Measure the ofmaps still open when the forward returns."""
        for chain in list(self._open.values()):
            self._finish_chain(chain)

    def _record(self, p: _Product, packet: object) -> None:
        base = self._names.stack[-1]
        count = self._name_count[base]
        self._name_count[base] += 1
        name = base if count == 0 else f"{base}#{count}"
        self.layers.append(Layer(name, p.kind, N=p.N, M=p.M, C=p.C, G=p.G, H=p.H, W=p.W,
                                 R=p.R, S=p.S, E=p.E, F=p.F, stride=p.stride,
                                 dilation=p.dilation, padding=p.padding, op=str(packet)))
        stats = {"ifmaps": _UNMEASURED, "weights": _UNMEASURED, "ofmaps": _UNMEASURED}
        if self._measure:
            stats["ifmaps"] = self._stats(p.ifmap, f"layer {name!r}: ifmaps")
            stats["weights"] = self._stats(p.weights, f"layer {name!r}: weights")
            if p.ofmap is not None:
                chain = _Chain(len(self.layers) - 1, p.ofmap, [id(p.ofmap)])
                self._chains.add(p.ofmap, chain)
                self._open[chain.layer_index] = chain
        self.stats.append(stats)

    def _stats(self, t: Tensor | None, what: str) -> _Stats:
        """Density and RLC pairs per value of ``t``, cached while ``t`` is unchanged.

        Raises:
            InputError: ``t`` holds NaN or infinite values (``what`` names it).
        """
        if t is None:
            return _UNMEASURED
        hit = self._cache.get(id(t))
        version = _version(t)
        if hit is not None and hit[0]() is t and hit[1] == version >= 0:
            return hit[2]
        stats = finite_tensor_stats(t, what=what)
        self._cache[id(t)] = (weakref.ref(t), version, stats)
        return stats

    def workload(self, name: str) -> Workload:
        layers = tuple(replace(layer, density=Density(
            weights=s["weights"][0], ifmaps=s["ifmaps"][0], ofmaps=s["ofmaps"][0],
            weights_rlc_pairs=s["weights"][1], ifmaps_rlc_pairs=s["ifmaps"][1],
            ofmaps_rlc_pairs=s["ofmaps"][1])) for layer, s in zip(self.layers, self.stats,
                                                                   strict=True))
        unmodelled = tuple(UnmodelledOp(op, n) for op, n in sorted(self.unmodelled.items()))
        if not layers:
            raise ModelLoadError(f"model {name!r} ran no convolution, linear or matrix product "
                                 f"on its inputs; operators seen: "
                                 f"{[u.op for u in unmodelled] or 'none'}")
        return Workload(name, layers, unmodelled)


def _first_tensor(out: object) -> Tensor | None:
    found = _tensors(out)
    return found[0] if found else None


def _op_label(packet: object) -> str:
    """``aten.relu_`` and ``aten.relu`` are one operator for the report."""
    label = str(packet)
    return label[:-1] if label.endswith("_") and not label.endswith("__") else label


def workload_from_module(module: nn.Module, example_inputs: Tensor | tuple[Tensor, ...], *,
                         name: str | None = None, measure_density: bool = True) -> Workload:
    """The workload of ``module`` on ``example_inputs``, captured at the ATen dispatch level.

    Args:
        module: the network; run once in eval mode under ``torch.no_grad()`` (its
            training flags are restored afterwards).
        example_inputs: one tensor, or a tuple of positional tensors, to call it with.
            Their batch size is the layers' N; densities are measured on them.
        name: the workload name; defaults to the module's class name.
        measure_density: measure densities and run-length statistics of every operand
            (a count of non-zeros per tensor); when False all densities are 1.0.

    Returns:
        The layers in execution order, named by module path (repeats get ``#1``, ``#2``
        ...), and the unmodelled operators with their counts, sorted by name.

    Raises:
        InputError: ``example_inputs`` is not a tensor or tuple of tensors, or the
            module fails on them.
        ModelLoadError: the module runs no convolution, linear or matrix product.
    """
    inputs = (example_inputs,) if isinstance(example_inputs, Tensor) else example_inputs
    if (not isinstance(module, nn.Module) or not isinstance(inputs, tuple)
            or not inputs or not all(isinstance(t, Tensor) for t in inputs)):
        raise InputError("workload_from_module needs an nn.Module and a tensor or a tuple of "
                         f"tensors, got {type(module).__name__} and "
                         f"{type(example_inputs).__name__}")
    label = name or type(module).__name__
    modes = [(m, m.training) for m in module.modules()]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    names = _ModuleNames(module)
    capture = _Capture(names, measure_density=measure_density)
    try:
        module.eval()
        torch.backends.mha.set_fastpath_enabled(False)
        with torch.no_grad(), capture:
            for t in inputs:
                capture.activations.add(t)
            module(*inputs)
            if measure_density:
                capture.finish()
    except (RuntimeError, TypeError) as exc:  # shape mismatches, wrong number of inputs
        shapes = [tuple(t.shape) for t in inputs]
        raise InputError(f"running model {label!r} on inputs of shape {shapes} failed: "
                         f"{exc}") from exc
    finally:
        names.close()
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for m, training in modes:
            m.training = training
    return capture.workload(label)

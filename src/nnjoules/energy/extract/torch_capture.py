"""Capture the workload of an ``nn.Module`` by running it once under a dispatch mode.

Like ``torch.utils.flop_counter.FlopCounterMode``, a ``TorchDispatchMode`` sees every
ATen operator the forward runs, functional calls included. A table (`torch_ops`) maps
each modelled operator to a small handler that turns its operands into Eyeriss shape
letters; every other operator that touches an activation is counted in
``Workload.unmodelled``.

Decisions (documented here once):

* **Activations vs. weights.** A tensor is an *activation* when it derives from the
  example inputs: computed from them, or a tensor (or a view of one) that one was
  written into (``buf[a:b] = x``, ``copy_``, ``index_put_``, ``scatter_``, ``out=``: a
  preallocated output or a key-value cache). Everything else (parameters, buffers,
  constants and what is computed from them alone, e.g. ``weight_orig * weight_mask`` of
  ``torch.nn.utils.prune``) is a weight. A product whose second operand is a weight is
  an FC layer; a product of two activations is a MATMUL layer. Operators that touch no
  activation are weight preprocessing that a deployed model folds away: they are
  neither layers nor counted.
* **Free operators** (`FREE_OPS`) only move or relabel data (views, reshapes, copies,
  concatenation, padding, allocation) and cost nothing in the model; they are not
  reported. Transposed and 3-D convolutions are lowered onto an FC layer and a 2-D
  convolution (`product`; docs/model.md).
* **Empty tensors.** A product on a tensor with no elements (a Linear on 0 detections)
  does no MAC and is not a layer; it is logged.
* **Higher-order operators.** ``flex_attention`` is fused attention (below);
  ``torch.cond``, ``while_loop``, ``scan`` ... run their subgraphs eagerly under the
  capture, so what counts is what runs on these inputs: for ``cond`` the branch taken,
  which is logged.
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
  The measurement's own operators are not part of the model: they are not captured.
* The module runs in eval mode under ``torch.no_grad()``; training flags are restored.
  An error the model raises on the example inputs is an `InputError`.

Tensor bookkeeping (identity sets, operands, written tensors) is in `torch_tensors`.
"""

from __future__ import annotations

import logging
import weakref
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch._C import DispatchKey
from torch._ops import HigherOrderOperator
from torch.utils._python_dispatch import TorchDispatchMode

from nnjoules.energy.extract.product import has_zero_dim
from nnjoules.energy.extract.shared import mark_shared_weights
from nnjoules.energy.extract.sparsity import finite_tensor_stats, row_peak_density
from nnjoules.energy.extract.torch_ops import (
    FREE_OPS,
    FUSED_OPS,
    HANDLERS,
    HOP_HANDLERS,
    VIEW_OPS,
    Found,
    _Product,
)
from nnjoules.energy.extract.torch_run import (
    ModuleNames,
    check_inputs,
    eager_settings,
    first_line,
    run_module,
)
from nnjoules.energy.extract.torch_tensors import (
    TensorSet,
    first_tensor,
    op_label,
    tensor_version,
    tensors_in,
    written_tensors,
)
from nnjoules.energy.workload import Density, Layer, UnmodelledOp, Workload
from nnjoules.errors import InputError, ModelLoadError, NNJoulesError

__all__ = ["FREE_OPS", "FUSED_OPS", "workload_from_module"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Chain:
    """A layer whose ofmap is not yet measured: ``head`` is its latest fused value."""

    layer_index: int
    head: Tensor
    tensor_ids: list[int] = field(default_factory=list)


_Stats = tuple[float, float | None]  # density, RLC pairs per value
_UNMEASURED: _Stats = (1.0, None)


class _Capture(TorchDispatchMode):
    """Records layers, unmodelled operators and densities while the model runs."""

    supports_higher_order_operators = True

    def __init__(self, names: ModuleNames, *, measure_density: bool) -> None:
        super().__init__()
        self._names = names
        self._measure = measure_density
        self.activations = TensorSet()
        self.layers: list[Layer] = []
        self.stats: list[dict[str, _Stats]] = []  # per layer: operand -> stats
        self.row_peaks: list[float] = []  # per layer: Density.weights_row_peak
        self.unmodelled: Counter[str] = Counter()
        self.empty: list[str] = []  # products that ran on empty tensors
        self.fault: BaseException | None = None  # an error of ours, not of the model
        self._measuring = False
        self._name_count: Counter[str] = Counter()
        self._chains = TensorSet()  # tensor -> the _Chain it belongs to
        self._open: dict[int, _Chain] = {}  # layer index -> chain not yet measured
        self._cache: dict[int, tuple[weakref.ref[Tensor], int, _Stats]] = {}

    def is_act(self, t: Tensor) -> bool:
        """Whether ``t`` holds activation values: it, or the tensor it views, does."""
        if self.activations.get(t):
            return True
        base = t._base
        return base is not None and bool(self.activations.get(base))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if self._measuring:  # our own density measurement
            return func(*args, **kwargs)
        hop = isinstance(func, HigherOrderOperator)
        key = func if hop else func.overloadpacket
        acts = [t for t in tensors_in(args) + tensors_in(kwargs) if self.is_act(t)]
        if not acts:  # weight preprocessing or allocation: not part of the workload
            return func(*args, **kwargs)
        handler = HOP_HANDLERS.get(func.name()) if hop else HANDLERS.get(key)
        if handler is None and hop:
            return self._run_subgraphs(func, args, kwargs)
        if handler is None and key not in FREE_OPS and key not in FUSED_OPS:
            with self:  # as FlopCounterMode: see the parts of a composite operator
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        extend = self._settle_chains(key, acts, args) if self._measure else None
        out = func(*args, **kwargs)
        try:
            self._observe(func, key, args, kwargs, out, extend,
                          handler(args, out, self.is_act) if handler else None)
        except Exception as exc:  # a bug of ours: not to be reported as the model's error
            self.fault = exc
            raise
        return out

    def _observe(self, func: Any, key: object, args: tuple[Any, ...], kwargs: dict[str, Any],
                 out: Any, extend: _Chain | None, found: Found | None) -> None:
        """Mark what the op wrote as activations; record its products or report it."""
        for t in tensors_in(out):
            self.activations.add(t)
        for t in written_tensors(func, args, kwargs):
            self.activations.add(t)
            if t._base is not None:  # a write through a view fills its base
                self.activations.add(t._base)
        if extend is not None and isinstance(head := first_tensor(out), Tensor):
            extend.head = head
            extend.tensor_ids.append(id(head))
            self._chains.add(head, extend)
        if found is None:
            if key not in FREE_OPS:
                self.unmodelled[op_label(key)] += 1
            return
        for item in found:
            if isinstance(item, str):
                self.unmodelled[item] += 1
            else:
                self._record(item, op_label(key))

    def _run_subgraphs(self, hop: HigherOrderOperator, args: tuple[Any, ...],
                       kwargs: dict[str, Any]) -> Any:
        """Run a higher-order operator's eager kernel under the capture (or report it)."""
        kernel = hop.py_kernels.get(DispatchKey.CompositeExplicitAutograd)
        if kernel is None:
            self.unmodelled[f"higher_order.{hop.name()}"] += 1
            out = hop(*args, **kwargs)
            for t in tensors_in(out):
                self.activations.add(t)
            return out
        if hop.name() == "cond" and isinstance(args[0], Tensor | bool):
            log.warning("%s: torch.cond counted only the branch these inputs take (the %s "
                        "branch)", self._names.stack[-1], "true" if bool(args[0]) else "false")
        # the eager kernel runs outside any dispatch mode; the subgraphs it calls, inside
        return kernel(*(self._inside(a) for a in args), **kwargs)

    def _inside(self, arg: Any) -> Any:
        """``arg``, or if it is a subgraph (a callable), one that runs under the capture."""
        if not callable(arg) or isinstance(arg, Tensor):
            return arg

        def run(*a: Any) -> Any:
            with self:
                return run_module(arg, a, self._names)
        return run

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
                    and (packet in FUSED_OPS or packet in VIEW_OPS)):
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

    def _record(self, p: _Product, op: str) -> None:
        base = self._names.stack[-1]
        if has_zero_dim(p):
            log.info("%s (%s) ran on an empty tensor: 0 MACs, not a layer", base, op)
            self.empty.append(base)
            return
        count = self._name_count[base]
        self._name_count[base] += 1
        name = base if count == 0 else f"{base}#{count}"
        self.layers.append(Layer(name, p.kind, N=p.N, M=p.M, C=p.C, G=p.G, H=p.H, W=p.W,
                                 R=p.R, S=p.S, E=p.E, F=p.F, stride=p.stride,
                                 dilation=p.dilation, padding=p.padding,
                                 op=f"{op}[{p.lowering}]" if p.lowering else op))
        stats = {"ifmaps": _UNMEASURED, "weights": _UNMEASURED, "ofmaps": _UNMEASURED}
        if self._measure:
            stats["ifmaps"] = self._stats(p.ifmap, f"layer {name!r}: ifmaps")
            stats["weights"] = self._stats(p.weights, f"layer {name!r}: weights")
            if p.ofmap is not None:
                chain = _Chain(len(self.layers) - 1, p.ofmap, [id(p.ofmap)])
                self._chains.add(p.ofmap, chain)
                self._open[chain.layer_index] = chain
        self.stats.append(stats)
        self.row_peaks.append(self._row_peak(p.weights, p.S) if self._measure else 1.0)

    def _row_peak(self, weights: Tensor | None, row_len: int) -> float:
        """`row_peak_density` of statically known weights; 1.0 (no bound) for activations,
        whose zeros the next inputs may move."""
        if weights is None or self.is_act(weights):
            return 1.0
        self._measuring = True  # the operators measuring it are not the model's
        try:
            return row_peak_density(weights, row_len)
        finally:
            self._measuring = False

    def _stats(self, t: Tensor | None, what: str) -> _Stats:
        """Density and RLC pairs per value of ``t``, cached while ``t`` is unchanged.

        Raises:
            InputError: ``t`` holds NaN or infinite values (``what`` names it).
        """
        if t is None:
            return _UNMEASURED
        hit = self._cache.get(id(t))
        version = tensor_version(t)
        if hit is not None and hit[0]() is t and hit[1] == version >= 0:
            return hit[2]
        self._measuring = True  # the operators measuring it are not the model's
        try:
            stats = finite_tensor_stats(t, what=what)
        finally:
            self._measuring = False
        self._cache[id(t)] = (weakref.ref(t), version, stats)
        return stats

    def workload(self, name: str) -> Workload:
        layers = tuple(replace(layer, density=Density(
            weights=s["weights"][0], ifmaps=s["ifmaps"][0], ofmaps=s["ofmaps"][0],
            weights_rlc_pairs=s["weights"][1], ifmaps_rlc_pairs=s["ifmaps"][1],
            ofmaps_rlc_pairs=s["ofmaps"][1], weights_row_peak=peak))
            for layer, s, peak in zip(self.layers, self.stats, self.row_peaks, strict=True))
        unmodelled = tuple(UnmodelledOp(op, n) for op, n in sorted(self.unmodelled.items()))
        if not layers:
            empty = f"; on empty tensors only: {self.empty}" if self.empty else ""
            raise ModelLoadError(f"model {name!r} ran no operator the energy model maps "
                                 f"(convolution, linear layer or matrix product) on its "
                                 f"inputs{empty}; unmodelled operators seen: "
                                 f"{[u.op for u in unmodelled] or 'none'}")
        return Workload(name, layers, unmodelled)


def workload_from_module(module: nn.Module, example_inputs: Tensor | tuple[Tensor, ...], *,
                         name: str | None = None, measure_density: bool = True) -> Workload:
    """The workload of ``module`` on ``example_inputs``, captured at the ATen dispatch level.

    Args:
        module: the network; run once in eval mode under ``torch.no_grad()`` (its
            training flags are restored afterwards). A graph from
            ``torch.export(...).module()`` runs as it was exported.
        example_inputs: one tensor, or a tuple of positional tensors, to call it with.
            Their batch size is the layers' N; densities are measured on them.
        name: the workload name; defaults to the module's class name.
        measure_density: measure densities and run-length statistics of every operand
            (a count of non-zeros per tensor); when False all densities are 1.0.

    Returns:
        The layers in execution order, named by module path (repeats get ``#1``, ``#2``
        ...), and the unmodelled operators with their counts, sorted by name.

    Raises:
        InputError: ``example_inputs`` is not a tensor or tuple of tensors (the message
            names the element), or the module raises an error on them (the message
            names the model and gives the error's first line).
        ModelLoadError: the module runs no convolution, linear or matrix product.
    """
    inputs = check_inputs(module, example_inputs)
    label = name or type(module).__name__
    names = ModuleNames(module)
    capture = _Capture(names, measure_density=measure_density)
    try:
        with eager_settings(module), torch.no_grad():
            with capture:
                for t in inputs:
                    capture.activations.add(t)
                run_module(module, inputs, names)
            if measure_density:
                capture.finish()
    except NNJoulesError:
        raise
    except Exception as exc:  # the model rejects the inputs: shapes, dtypes, asserts ...
        if capture.fault is not None:
            raise
        shapes = [tuple(t.shape) for t in inputs]
        error = ": ".join(filter(None, (type(exc).__name__, first_line(str(exc)))))
        raise InputError(f"model {label!r} rejected inputs of shape {shapes}: "
                         f"{error}") from exc
    finally:
        names.close()
    items = inputs[0].shape[0] if inputs and inputs[0].dim() > 0 else None
    return replace(mark_shared_weights(capture.workload(label), module), items=items)

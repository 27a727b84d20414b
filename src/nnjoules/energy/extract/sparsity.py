"""Density and run-length statistics of tensors, as Eyeriss compresses them.

Eyeriss run-length codes zeros on their way to and from DRAM: the stream becomes a
sequence of (run, level) pairs, where ``run`` is the number of zeros (0 .. 2**run_bits - 1)
before the non-zero ``level``. A longer run of zeros is split by a pair whose level is
a literal zero; that pair covers ``2**run_bits`` zeros (the maximal run and the zero
level itself). Zeros at the end of the stream also take pairs, counted as full pairs.

So a stream of ``n`` values with non-zeros at positions ``i_1 < ... < i_k`` needs::

    pairs = k + sum_j floor(z_j / L) + ceil(t / L),   L = 2**run_bits

where ``z_j`` is the number of zeros just before the j-th non-zero and ``t`` the number
of trailing zeros. Tensors are read in memory order (for a contiguous NCHW tensor:
N, then C, then H, then W), the order in which a DMA engine would stream them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor
from torch.utils._python_dispatch import _disable_current_modes

from nnjoules.energy.cost import expected_rlc_pairs
from nnjoules.errors import InputError

__all__ = ["density", "expected_rlc_pairs_per_value", "finite_tensor_stats", "require_finite",
           "rlc_pairs_per_value", "row_peak_density", "tensor_stats"]

# Values examined at a time by the run-length counter: bounds its scratch memory
# (an index array of int64) on large FC weights such as VGG-16's 102 M-value fc6.
_CHUNK = 1 << 22


def density(t: Tensor | np.ndarray) -> float:
    """Fraction of non-zero values in ``t`` (1.0 for an empty tensor).

    >>> density(torch.tensor([0.0, 1.0, 2.0, 0.0]))
    0.5
    """
    flat = _flat_in_memory_order(t)
    return int(np.count_nonzero(flat)) / flat.shape[0] if flat.shape[0] else 1.0


def rlc_pairs_per_value(values: Tensor | np.ndarray, run_bits: int = 5) -> float:
    """Run-length-coding (run, level) pairs per value of ``values``, read in memory order.

    Args:
        values: any tensor or array; zeros are the values equal to 0.
        run_bits: bits of the run field; runs of up to ``2**run_bits - 1`` zeros fit one pair.

    Returns:
        pairs / numel, in (0, 1]; 0.0 for an empty tensor.

    >>> rlc_pairs_per_value(torch.tensor([0, 0, 1]))  # (2, 1)
    0.3333333333333333
    >>> rlc_pairs_per_value(torch.tensor([0, 1, 0]))  # (1, 1) + a pair for the trailing zero
    0.6666666666666666
    """
    return tensor_stats(values, run_bits=run_bits)[1]


def tensor_stats(values: Tensor | np.ndarray, run_bits: int = 5) -> tuple[float, float]:
    """Density and RLC pairs per value of ``values`` in one pass (see `rlc_pairs_per_value`)."""
    max_zeros = _run_limit(run_bits)
    flat = _flat_in_memory_order(values)
    numel = int(flat.shape[0])
    if numel == 0:
        return 1.0, 0.0
    nonzero, extra, carry = 0, 0, 0  # carry: zeros since the last non-zero
    for start in range(0, numel, _CHUNK):
        mask = flat[start:start + _CHUNK] != 0  # numpy finds non-zeros of bool fastest
        count = int(np.count_nonzero(mask))
        nonzero += count
        if count == 0:
            carry += mask.shape[0]
            continue
        if count == mask.shape[0]:  # dense: only the run carried in can be long
            extra += carry // max_zeros
            carry = 0
            continue
        idx = np.flatnonzero(mask)
        extra += (carry + int(idx[0])) // max_zeros
        gaps = idx[1:] - idx[:-1]  # zeros between consecutive non-zeros, plus one
        long_gaps = gaps[gaps > max_zeros]
        extra += int(((long_gaps - 1) // max_zeros).sum())
        carry = mask.shape[0] - 1 - int(idx[-1])
    pairs = nonzero + extra + math.ceil(carry / max_zeros)
    return nonzero / numel, pairs / numel


def row_peak_density(weights: Tensor | np.ndarray, row_len: int) -> float:
    """Largest non-zero fraction of any filter row: ``row_len`` consecutive values along the
    last (kernel width) axis of ``weights``, in logical order.

    Every weight chunk a row-stationary mapping moves is made of whole filter rows, so
    no chunk is denser than this (`nnjoules.energy.footprint`). When the last axis is not
    ``row_len`` long (a layout this rule does not know), the answer is 1.0: no bound.

    >>> row_peak_density(torch.tensor([[[[0.0, 2.0, 0.0], [1.0, 0.0, 0.0]]]]), 3)
    0.3333333333333333
    >>> row_peak_density(np.zeros((4, 2)), 1), row_peak_density(np.eye(3), 2)
    (0.0, 1.0)
    """
    if isinstance(weights, Tensor):
        with _disable_current_modes():  # not the model's own operators under a capture
            t = weights.detach()
            values = (t != 0).cpu().numpy()
    else:
        values = np.asarray(weights) != 0
    if values.size == 0:
        return 1.0
    if row_len == 1:
        return 1.0 if values.any() else 0.0
    if values.ndim == 0 or values.shape[-1] != row_len:
        return 1.0
    rows = values.reshape(-1, row_len)
    step = max(1, _CHUNK // row_len)  # bounds the per-row count array
    peak = max(int(np.count_nonzero(rows[start:start + step], axis=1).max())
               for start in range(0, rows.shape[0], step))
    return peak / row_len


def finite_tensor_stats(values: Tensor | np.ndarray, *, what: str,
                        run_bits: int = 5) -> tuple[float, float]:
    """`tensor_stats` of ``values``, after `require_finite` (``what`` names them)."""
    require_finite(values, what=what)
    return tensor_stats(values, run_bits=run_bits)


def require_finite(values: Tensor | np.ndarray, *, what: str) -> None:
    """Refuse a tensor holding NaN or infinite values: its density would be meaningless.

    A NaN is not zero, so it would count as a non-zero value (and a NaN weight spreads
    NaN through every later activation), giving a confident but wrong estimate.

    Args:
        values: any tensor or array; integer and boolean ones are always finite.
        what: what they are, for the message, e.g. ``"layer 'fc1': weights"``.

    Raises:
        InputError: some value is NaN or infinite; the message says how many.

    >>> require_finite(torch.tensor([1.0, float("nan"), float("inf")]), what="layer 'fc': weights")
    Traceback (most recent call last):
    ...
    nnjoules.errors.InputError: layer 'fc': weights hold 2 NaN or infinite values (of 3)
    """
    bad = _count_non_finite(values)
    if bad:
        numel = values.numel() if isinstance(values, Tensor) else np.asarray(values).size
        raise InputError(f"{what} hold {bad} NaN or infinite value{'s' if bad > 1 else ''} "
                         f"(of {numel})")


def _count_non_finite(values: Tensor | np.ndarray) -> int:
    if isinstance(values, Tensor):
        if not (values.is_floating_point() or values.is_complex()):
            return 0
        # Under a capture mode these ops would be recorded as the model's own: hide them.
        with _disable_current_modes():
            if values.is_floating_point() and values.numel():
                # One pass, no mask: min and max are finite only if every value is
                # (NaN propagates through both); count only when one is not. Read in
                # memory order: a transposed view (a linear layer's weight) is 20x slower.
                low, high = torch.aminmax(_in_memory_order(values.detach()))
                if bool(torch.isfinite(low)) and bool(torch.isfinite(high)):
                    return 0
            finite = torch.isfinite(values.detach())
            return 0 if bool(finite.all()) else int(finite.numel() - finite.sum())
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.inexact):
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


def expected_rlc_pairs_per_value(density: float, run_bits: int = 5) -> float:
    """Expected RLC pairs per value when each value is non-zero independently.

    For a long stream in which each value is non-zero with probability ``p``, a run of
    zeros before a non-zero is geometric, ``P(Z = z) = (1 - p)**z * p``, and needs
    ``floor(Z / L)`` extra pairs, whose expectation is ``q**L / (1 - q**L)`` with
    ``q = 1 - p``. With ``p`` runs per value this gives the closed form::

        pairs per value = p / (1 - (1 - p)**L),   L = 2**run_bits

    which tends to ``1 / L`` as ``p -> 0`` (an all-zero stream: one pair per L zeros).
    It is exact in the limit of a long stream; the pair for trailing zeros adds at most
    ``1 / numel`` to a finite one.

    Raises:
        InputError: ``density`` outside [0, 1], or ``run_bits`` not an integer in [1, 32].

    >>> expected_rlc_pairs_per_value(1.0)
    1.0
    >>> round(expected_rlc_pairs_per_value(0.5, run_bits=1), 4)  # 0.5 / (1 - 0.25)
    0.6667
    """
    p = float(density)
    if not 0.0 <= p <= 1.0:
        raise InputError(f"density must lie in [0, 1], got {density!r}")
    _run_limit(run_bits)  # validates run_bits
    return expected_rlc_pairs(p, run_bits)


def _run_limit(run_bits: int) -> int:
    """Zeros one pair can cover: the longest run plus the literal-zero level."""
    if not isinstance(run_bits, int) or isinstance(run_bits, bool) or not 1 <= run_bits <= 32:
        raise InputError(f"run_bits must be an integer in [1, 32], got {run_bits!r}")
    return 1 << run_bits


def _in_memory_order(t: Tensor) -> Tensor:
    """A permuted view (e.g. the transposed weight of a linear layer) with its dimensions
    in storage order, outermost (largest stride) first: contiguous when ``t`` is dense."""
    if t.is_contiguous():
        return t
    return t.permute(sorted(range(t.dim()), key=lambda d: -t.stride()[d]))


def _flat_in_memory_order(values: Tensor | np.ndarray) -> np.ndarray:
    """``values`` as a 1-D numpy array in the order its elements lie in memory."""
    if isinstance(values, Tensor):
        t = _in_memory_order(values.detach()).reshape(-1)
        if t.device.type != "cpu" or t.dtype not in _NUMPY_DTYPES:
            t = (t != 0).cpu()  # only zero / non-zero matters
        return t.numpy()
    return np.ravel(np.asarray(values), order="K")


_NUMPY_DTYPES = frozenset({torch.float64, torch.float32, torch.float16, torch.int64,
                           torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool})

"""Density and run-length-coding counts, checked on hand-worked streams."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nnjoules.energy.extract import sparsity
from nnjoules.energy.extract.sparsity import (
    density,
    expected_rlc_pairs_per_value,
    rlc_pairs_per_value,
    tensor_stats,
)
from nnjoules.errors import InputError


def naive_pairs(values: list[float], run_bits: int = 5) -> int:
    """The RLC encoder written as a loop: the oracle for the vectorised counter."""
    max_run, pairs, run = 2**run_bits - 1, 0, 0
    for v in values:
        if v != 0 or run == max_run:  # a level, or a literal-zero level after a full run
            pairs, run = pairs + 1, 0
        else:
            run += 1
    return pairs + (1 if run else 0)


@pytest.mark.parametrize(("stream", "pairs"), [
    ([0, 0, 1], 1),        # (2, 1)
    ([0, 1, 0], 2),        # (1, 1) + (0, 0) for the trailing zero
    ([1, 2, 3], 3),        # one pair per non-zero
    ([0] * 40 + [1], 2),   # (31, 0) covers 32 zeros, then (8, 1)
    ([0] * 31 + [1], 1),   # the longest run that fits
    ([0] * 32 + [1], 2),   # one zero too many: (31, 0), (0, 1)
    ([0] * 64 + [1], 3),   # (31, 0), (31, 0), (0, 1)
    ([0] * 64, 2),         # trailing zeros only: two full pairs
    ([0], 1),
])
def test_hand_worked_streams(stream: list[int], pairs: int) -> None:
    assert naive_pairs(stream) == pairs
    assert rlc_pairs_per_value(torch.tensor(stream)) == pytest.approx(pairs / len(stream))
    assert rlc_pairs_per_value(np.array(stream)) == pytest.approx(pairs / len(stream))


def test_zero_positions_matter_not_only_their_number() -> None:
    # same density, different streams: the paper's example of why RLC is position-aware
    assert density(torch.tensor([0, 1, 0])) == density(torch.tensor([0, 0, 1]))
    assert rlc_pairs_per_value(torch.tensor([0, 1, 0])) == pytest.approx(2 / 3)
    assert rlc_pairs_per_value(torch.tensor([0, 0, 1])) == pytest.approx(1 / 3)


def test_run_bits_set_the_longest_run() -> None:
    # 2-bit runs: up to 3 zeros per pair; 5 zeros then 1 -> (3, 0), (1, 1)
    assert rlc_pairs_per_value([0, 0, 0, 0, 0, 1], run_bits=2) == pytest.approx(2 / 6)
    assert naive_pairs([0, 0, 0, 0, 0, 1], run_bits=2) == 2


def test_all_zero_and_all_nonzero_tensors() -> None:
    zeros, ones = torch.zeros(4, 8, 10), torch.ones(4, 8, 10)  # 320 values
    assert tensor_stats(zeros) == (0.0, pytest.approx(math.ceil(320 / 32) / 320))
    assert tensor_stats(ones) == (1.0, 1.0)
    assert tensor_stats(torch.zeros(0)) == (1.0, 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_counter_matches_the_loop(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # small chunks force runs of zeros across chunk boundaries
    monkeypatch.setattr(sparsity, "_CHUNK", 37)
    rng = np.random.default_rng(seed)
    values = rng.random(2000) * (rng.random(2000) < rng.choice([0.02, 0.3, 0.9]))
    values[rng.integers(0, 2000):][:rng.integers(0, 200)] = 0  # a long zero run
    assert rlc_pairs_per_value(values) == pytest.approx(naive_pairs(list(values)) / 2000)


def test_memory_order_of_a_transposed_view() -> None:
    # 1-bit runs: one pair covers at most two zeros
    stored = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # memory: 0 0 0 0 1 0
    # (1, 0) (1, 0) (0, 1) + one pair for the trailing zero
    assert rlc_pairs_per_value(stored, run_bits=1) == pytest.approx(4 / 6)
    # a transposed view is read as it lies in memory ...
    assert rlc_pairs_per_value(stored.t(), run_bits=1) == pytest.approx(4 / 6)
    # ... unlike its contiguous copy: 0 0 0 1 0 0 -> (1, 0) (1, 1) (1, 0)
    assert rlc_pairs_per_value(stored.t().contiguous(), run_bits=1) == pytest.approx(3 / 6)


@pytest.mark.parametrize("p", [0.02, 0.1, 0.5, 0.9])
def test_expectation_matches_monte_carlo(p: float) -> None:
    rng = np.random.default_rng(0)
    samples = [rlc_pairs_per_value(rng.random(200_000) < p) for _ in range(5)]
    assert expected_rlc_pairs_per_value(p) == pytest.approx(np.mean(samples), rel=0.02)


def test_expectation_closed_form_and_limits() -> None:
    assert expected_rlc_pairs_per_value(0.5, run_bits=1) == pytest.approx(0.5 / (1 - 0.25))
    assert expected_rlc_pairs_per_value(1.0) == 1.0
    assert expected_rlc_pairs_per_value(0.0) == 1 / 32
    assert expected_rlc_pairs_per_value(1e-12) == pytest.approx(1 / 32)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_expectation_rejects_bad_density(bad: float) -> None:
    with pytest.raises(InputError, match="density must lie in"):
        expected_rlc_pairs_per_value(bad)


@pytest.mark.parametrize("bad", [0, 33, 2.0, True])
def test_bad_run_bits(bad: object) -> None:
    with pytest.raises(InputError, match="run_bits must be an integer"):
        rlc_pairs_per_value(torch.ones(3), run_bits=bad)  # type: ignore[arg-type]


def test_density_of_tensors_and_arrays() -> None:
    assert density(torch.tensor([0.0, 1.0, 2.0, 0.0])) == 0.5
    assert density(np.array([[0, 3], [0, 0]])) == 0.25
    assert density(torch.tensor([0.0, 1.0], dtype=torch.bfloat16)) == 0.5  # no numpy dtype
    assert density(torch.zeros(0)) == 1.0

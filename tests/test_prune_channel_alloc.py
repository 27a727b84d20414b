"""Channel allocation: network-output divergence, energy per divergence, and the guard
that keeps the baseline's uniform cut (same energy) within the round's choice."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from nnjoules.models.builtin import pretrained
from nnjoules.prune.channel_alloc import (
    PROBE_IMAGES,
    GroupPlan,
    divergence,
    greedy_counts,
    log_probs,
    uniform_counts,
)
from nnjoules.prune.channel_loop import ChannelPruner, _l1_smallest
from nnjoules.prune.config import PruneConfig, RestoreConfig
from nnjoules.prune.finetune import evaluate
from nnjoules.prune.structure import channel_groups, remove_channels

pytestmark = pytest.mark.usefixtures("fashion_mnist_installed")


@pytest.fixture(scope="module")
def first_round():
    """One energy-aware round on the shipped LeNet-5: the pruner, the model before it,
    and the round's images."""
    from nnjoules.data import fashion_mnist_splits

    splits = fashion_mnist_splits(train_limit=512, val_limit=300)
    cfg = PruneConfig(granularity="channel", rate=0.2, rounds=1, energy_batch=16,
                      density_images=32, accuracy_drop=1.0,
                      restore=RestoreConfig(samples=256, positions=8))
    run = ChannelPruner(pretrained("lenet5"), splits.train,
                        evaluate=lambda m: evaluate(m, splits.val), finetune=lambda m: None,
                        config=cfg)
    run._start()
    before = copy.deepcopy(run.model)
    run.round = 1  # as step() numbers it, so the round's images are drawn alike
    images = run._round_images()
    run.round = 0
    run.step()
    return run, before, images


def test_divergence_is_the_mean_kl_of_the_softmax_outputs():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    other = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    expected = 0.0
    for a, b in zip(logits.double(), other.double(), strict=True):
        p, q = a.softmax(0), b.softmax(0)
        expected += float((p * (p / q).log()).sum()) / 2
    got = divergence(log_probs(torch.nn.Identity(), logits), torch.nn.Identity(), other)
    assert got == pytest.approx(expected, rel=1e-12)
    assert divergence(log_probs(torch.nn.Identity(), logits), torch.nn.Identity(),
                      logits) == pytest.approx(0.0, abs=1e-15)


def test_greedy_spends_the_budget_where_energy_per_divergence_is_highest():
    # group "conv": 10 energy a channel for 1e-3 divergence; "fc": 1 energy for 1e-6
    conv = GroupPlan("conv", 6, (0, 1, 2), (0.0, 10.0, 20.0, 30.0), (0.0, 1e-3, 2e-3, 3e-3))
    fc = GroupPlan("fc", 100, tuple(range(50)), tuple(float(j) for j in range(51)),
                   tuple(1e-6 * j for j in range(51)))
    # 1 / 1e-6 = 1e6 per unit beats 10 / 1e-3 = 1e4: fc goes first, all 50 (50 energy)
    assert greedy_counts([conv, fc], 50.0) == {"fc": 50}
    assert greedy_counts([conv, fc], 70.0) == {"conv": 2, "fc": 50}
    assert greedy_counts([conv, fc], 1e9) == {"conv": 3, "fc": 50}  # all there is
    # the uniform share: 10 % -> conv round(0.6) = 1 (10), fc 10 (10): 20 >= 20
    assert uniform_counts([conv, fc], 20.0) == {"conv": 1, "fc": 10}


def test_the_round_keeps_the_least_divergent_of_the_energy_and_uniform_cuts(first_round):
    run, before, images = first_round
    choice = run.choices[0]
    tried = choice["divergence"]
    assert set(tried) == {"energy", "uniform", "uniform-l1"}
    assert tried[choice["chosen"]] == min(tried.values())
    # the kept cut's divergence, measured afresh on the pruned model
    probe = images[:PROBE_IMAGES]
    start = log_probs(before, probe)
    assert divergence(start, run.model, probe) == pytest.approx(tried[choice["chosen"]],
                                                                rel=1e-9)
    # the baseline's own cut at the same energy (uniform shares, smallest L1, no refit),
    # made here by hand: the round's cut changes the outputs no more than it
    baseline = copy.deepcopy(before)
    example = images[:2]
    for group in channel_groups(before, example):
        count = choice["counts"]["uniform"].get(group.root, 0)
        if count:
            now = {g.root: g for g in channel_groups(baseline, example)}[group.root]
            remove_channels(baseline, example, {group.root: _l1_smallest(baseline, now, count)})
    by_hand = divergence(start, baseline, probe)
    assert by_hand == pytest.approx(tried["uniform-l1"], rel=1e-9)
    assert tried[choice["chosen"]] <= by_hand
    assert math.isfinite(by_hand) and by_hand > 0

"""The channel-pruning loop: energy credited, budget held, undo, resume, bad input."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
from torch import nn

import nnjoules
from nnjoules.errors import InputError
from nnjoules.models.builtin import pretrained
from nnjoules.prune.channel_loop import ChannelPruner
from nnjoules.prune.config import PruneConfig, RestoreConfig
from nnjoules.prune.finetune import evaluate

pytestmark = pytest.mark.usefixtures("fashion_mnist_installed")


@pytest.fixture(scope="module")
def data():
    from nnjoules.data import fashion_mnist_splits

    splits = fashion_mnist_splits(train_limit=512, val_limit=500)
    return splits.train, splits.val


def config(**changes):
    base = PruneConfig(granularity="channel", rate=0.15, rounds=3, energy_batch=4,
                       density_images=32, accuracy_drop=0.02,
                       restore=RestoreConfig(samples=256, positions=8))
    return base if not changes else PruneConfig(**{**base.to_dict(), **changes,
                                                   "restore": base.restore})


def pruner(data, cfg, folder=None, model=None):
    train, val = data
    model = model if model is not None else pretrained("lenet5")
    return ChannelPruner(model, train, evaluate=lambda m: evaluate(m, val),
                         finetune=lambda m: None, config=cfg, checkpoint_dir=folder)


def test_accepted_rounds_shrink_the_model_and_report_its_energy(data):
    run = pruner(data, config())
    result = run.run()
    accepted = [r for r in result.history[1:] if r.accepted]
    assert accepted, "no round met the budget"
    model = result.model
    assert sum(p.numel() for p in model.parameters()) < \
        sum(p.numel() for p in pretrained("lenet5").parameters())
    # the record's energy is the energy model's estimate of the shrunk model itself
    measured = nnjoules.estimate(model, run.meter.density_inputs).workload
    at_batch = replace(measured, layers=tuple(replace(lay, N=4) for lay in measured.layers))
    assert result.final.energy == pytest.approx(nnjoules.estimate(at_batch).total(), rel=1e-9)
    assert result.final.energy < result.history[0].energy
    assert result.final.accuracy >= result.accuracy_floor
    for record in result.history[1:]:
        assert record.accepted == (record.accuracy >= result.accuracy_floor)


def test_a_round_below_the_budget_is_undone(data):
    train, val = data
    strict = config(accuracy_drop=0.0, rate=0.5, rounds=1, max_failures=0)
    run = ChannelPruner(pretrained("lenet5"), train, evaluate=lambda m: evaluate(m, val),
                        finetune=lambda m: None, config=strict)
    before = copy.deepcopy(run.model)
    record = run.step()
    assert not record.accepted
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(run.model(x), before(x), rtol=0, atol=0)
    assert run.done


def test_resume_gives_the_uninterrupted_run(data, tmp_path):
    cfg = config(rounds=2)
    whole = pruner(data, cfg).run()
    first = pruner(data, cfg, tmp_path)
    first.step()
    state = ChannelPruner.read_checkpoint(tmp_path)
    again = pruner(data, cfg, tmp_path)
    again.load_state(state)
    resumed = again.run()
    assert [r.to_dict() | {"seconds": 0} for r in resumed.history] == \
        [r.to_dict() | {"seconds": 0} for r in whole.history]
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(resumed.model(x), whole.model(x), rtol=0, atol=0)


def test_bad_input_is_one_clear_error(data):
    with pytest.raises(InputError, match="unknown granularity 'filter'; choose weight or "
                                         "channel or both"):
        PruneConfig(granularity="filter")
    masked = pretrained("lenet5")
    torch.nn.utils.prune.identity(masked.features[0], "weight")
    with pytest.raises(InputError, match="without weight masks"):
        pruner(data, config(), model=masked)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(InputError, match="no prunable channel"):
        pruner(data, config(), model=flat)

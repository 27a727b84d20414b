"""``granularity="both"``: channels first under their share of the budget, then weights;
resume at any round; a checkpoint of another granularity refused."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

import nnjoules
from nnjoules.errors import InputError
from nnjoules.models.builtin import pretrained
from nnjoules.prune.both_loop import BothPruner, stage_configs
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
    base = PruneConfig(granularity="both", rate=0.2, rounds=4, energy_batch=4,
                       density_images=32, accuracy_drop=0.04, channel_share=0.5,
                       restore=RestoreConfig(samples=256, positions=8))
    return PruneConfig(**{**base.to_dict(), **changes, "restore": base.restore})


def pruner(data, cfg, folder=None, kind=BothPruner):
    train, val = data
    return kind(pretrained("lenet5"), train, evaluate=lambda m: evaluate(m, val),
                finetune=lambda m: None, config=cfg, checkpoint_dir=folder)


@pytest.fixture(scope="module")
def whole(data):
    run = pruner(data, config())
    return run, run.run()


def test_stage_configs_split_the_rounds_under_one_budget():
    channel, weight = stage_configs(config(rounds=7, accuracy_drop=0.02, channel_share=0.25))
    assert (channel.granularity, channel.rounds, channel.accuracy_drop) == \
        ("channel", 2, 0.02)  # round(0.25 * 7) = 2; one budget
    assert (weight.granularity, weight.rounds, weight.accuracy_drop) == ("weight", 7, 0.02)
    assert stage_configs(config(rounds=1, channel_share=0.1))[0].rounds == 1


def test_channels_then_weights_one_history_and_the_energy_of_the_model(whole):
    run, result = whole
    stages = result.extra["stages"]
    assert [s["granularity"] for s in stages] == ["channel", "weight"]
    channel, weight = stages
    assert channel["first_round"] == 1 and channel["last_round"] <= 2  # 0.5 * 4 rounds
    assert weight["first_round"] == channel["last_round"] + 1
    assert weight["last_round"] <= 4
    assert [r.round for r in result.history] == list(range(len(result.history)))
    ref = result.reference_accuracy
    assert channel["accuracy_floor"] == pytest.approx(ref - 0.04)  # one floor
    assert weight["accuracy_floor"] == pytest.approx(ref - 0.04) == result.accuracy_floor
    assert result.extra["cuts"], "the channel stage removed nothing"
    model = result.model
    dense = pretrained("lenet5")
    assert model.features[0].weight.shape[0] < dense.features[0].weight.shape[0] or \
        model.features[3].weight.shape[0] < dense.features[3].weight.shape[0]
    masks = [b for n, b in model.named_buffers() if n.endswith("weight_mask")]
    assert masks, "the weight stage added no masks"
    if weight["rounds_accepted"]:
        assert any(float(m.sum()) < m.numel() for m in masks)
    assert result.final.energy == pytest.approx(weight["energy"], rel=1e-12)
    # the recorded energy is the energy model's estimate of the shrunk, masked model
    measured = nnjoules.estimate(model, run.meter.density_inputs).workload
    at_batch = replace(measured, layers=tuple(replace(lay, N=4) for lay in measured.layers))
    assert result.final.energy == pytest.approx(nnjoules.estimate(at_batch).total(), rel=1e-9)
    assert result.final.energy <= channel["energy"] < result.history[0].energy
    assert result.extra["config"]["granularity"] == "both"


@pytest.mark.parametrize("kill_after", [1, 2, 3])  # in, at the end of, after the channels
def test_kill_and_resume_at_any_round_gives_the_uninterrupted_run(data, whole, tmp_path,
                                                                  kill_after):
    _, expected = whole
    first = pruner(data, config(), tmp_path)
    for _ in range(kill_after):
        first.step()
    del first  # the process dies; only the checkpoint remains
    again = pruner(data, config(), tmp_path)
    again.load_state(BothPruner.read_checkpoint(tmp_path))
    resumed = again.run()
    assert [r.to_dict() | {"seconds": 0} for r in resumed.history] == \
        [r.to_dict() | {"seconds": 0} for r in expected.history]
    assert resumed.extra["stages"] == expected.extra["stages"]
    assert resumed.extra["cuts"] == expected.extra["cuts"]
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(resumed.model(x), expected.model(x), rtol=0, atol=0)


def test_a_checkpoint_of_another_granularity_is_refused(data, tmp_path):
    channel_cfg = replace(config(), granularity="channel")
    pruner(data, channel_cfg, tmp_path / "channel", kind=ChannelPruner).step()
    both = pruner(data, config())
    with pytest.raises(InputError, match=r"^the checkpoint was written by --granularity "
                       r"channel pruning, not --granularity both; resume it with its own "
                       r"granularity or start a new run$"):
        both.load_state(ChannelPruner.read_checkpoint(tmp_path / "channel"))
    pruner(data, config(), tmp_path / "both").step()
    channel = pruner(data, channel_cfg, kind=ChannelPruner)
    with pytest.raises(InputError, match="written by --granularity both pruning, not "
                                         "--granularity channel"):
        channel.load_state(BothPruner.read_checkpoint(tmp_path / "both"))


def test_energy_target_met_by_channels_skips_the_weight_stage(data):
    run = pruner(data, config(energy_target=0.99, rounds=4))
    result = run.run()
    assert result.stop_reason == "energy target met"
    assert [s["granularity"] for s in result.extra["stages"]] == ["channel"]
    assert not any(n.endswith("weight_mask") for n, _ in result.model.named_buffers())


def test_bad_input():
    with pytest.raises(InputError, match=r"channel_share must lie in \(0, 1\], got 0"):
        config(channel_share=0)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(InputError, match="no prunable channel"):
        BothPruner(flat, torch.zeros(4, 1, 28, 28), evaluate=lambda m: 0.0,
                   finetune=lambda m: None, config=config())


def test_the_api_takes_granularity_and_refuses_another_runs_folder(data, tmp_path):
    from nnjoules.prune.config import TrainConfig

    train, val = data
    cfg = config(rounds=2, accuracy_drop=0.5)
    ft = TrainConfig(epochs=0.05)
    result = nnjoules.prune(pretrained("lenet5"), train, val, config=cfg, finetune=ft,
                            granularity="both", accuracy_drop=0.5, reference="given",
                            checkpoint_dir=tmp_path / "both")
    assert result.extra["config"]["granularity"] == "both"
    assert [s["granularity"] for s in result.extra["stages"]] == ["channel", "weight"]
    with pytest.raises(InputError, match="setting granularity: 'both' there, 'channel' now"):
        nnjoules.prune(pretrained("lenet5"), train, val, config=cfg, finetune=ft,
                       granularity="channel", accuracy_drop=0.5, reference="given",
                       checkpoint_dir=tmp_path / "both", resume=True)

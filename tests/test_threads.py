"""The torch thread rule: --threads, then OMP_NUM_THREADS, then the model's size."""

from __future__ import annotations

import pytest
import torch

from nnjoules.models.builtin import build_model
from nnjoules.threads import (
    MAX_THREADS,
    SMALL_MODEL_MACS,
    Threads,
    apply_threads,
    choose_threads,
    macs_per_item,
)

# LeNet-5 on 1x28x28, by hand: conv 28*28*6*(1*25) + conv 10*10*16*(6*25)
# + fc 400*120 + 120*84 + 84*10
LENET5_MACS = 117_600 + 240_000 + 48_000 + 10_080 + 840


def test_macs_per_item_of_lenet5_and_vgg_small():
    assert macs_per_item(build_model("lenet5", num_classes=10, in_channels=1, seed=0),
                         (1, 28, 28)) == LENET5_MACS
    vgg = build_model("vgg-small", num_classes=10, in_channels=1, seed=0)
    assert macs_per_item(vgg, (1, 28, 28)) > SMALL_MODEL_MACS


@pytest.mark.parametrize(("requested", "env", "macs", "cpus", "expected"), [
    (None, {}, LENET5_MACS, 2, Threads(1, "auto")),
    (None, {}, 5e6, 2, Threads(2, "auto")),
    (None, {}, 5e6, 64, Threads(MAX_THREADS, "auto")),
    (None, {}, None, 4, Threads(4, "auto")),  # size unknown: taken as large
    (None, {"OMP_NUM_THREADS": "3"}, LENET5_MACS, 2, Threads(3, "OMP_NUM_THREADS")),
    (None, {"OMP_NUM_THREADS": "4,2"}, LENET5_MACS, 2, Threads(4, "OMP_NUM_THREADS")),
    (None, {"OMP_NUM_THREADS": "lots"}, LENET5_MACS, 2, Threads(1, "auto")),
    (2, {"OMP_NUM_THREADS": "3"}, LENET5_MACS, 2, Threads(2, "--threads")),
])
def test_choose_threads(requested, env, macs, cpus, expected):
    assert choose_threads(requested, macs_per_item=macs, env=env, cpus=cpus) == expected


def test_apply_threads_sets_torch_and_keeps_the_model_unchanged(monkeypatch):
    before = torch.get_num_threads()
    model = build_model("lenet5", num_classes=10, in_channels=1, seed=0).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert apply_threads(None, model=model, input_shape=(1, 28, 28)) == Threads(1, "auto")
        assert torch.get_num_threads() == 1
        assert model.training and not model.features[0]._forward_hooks
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert apply_threads(None, model=model, input_shape=(1, 28, 28)).count == 2
        assert torch.get_num_threads() == 2
        assert apply_threads(1, model=model, input_shape=(1, 28, 28)).to_dict()[
            "source"] == "--threads"
    finally:
        torch.set_num_threads(before)


def test_threads_option_on_train_prune_and_demo(capsys):
    from nnjoules.cli import _parser

    parser = _parser()
    for command in (["train", "--out", "m.pt"], ["prune"], ["demo"]):
        assert parser.parse_args([*command, "--threads", "2"]).threads == 2
        assert parser.parse_args(command).threads is None
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["demo", "--threads", "0"])
    assert stop.value.code == 2 and "positive integer" in capsys.readouterr().err

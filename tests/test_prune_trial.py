"""Fresh-user trial of train / prune / demo: refusals that name the option typed,
warnings on stderr, the summary's wording and the permanent model file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from nnjoules.cli import main
from nnjoules.commands.numbers import bit_widths
from nnjoules.commands.prune import summary
from nnjoules.commands.prune_checks import warn_small_pool
from nnjoules.energy.workload import Precision
from nnjoules.errors import InputError
from nnjoules.prune import PruneConfig, RestoreConfig, prune
from nnjoules.prune.channel_loop import ChannelPruner
from nnjoules.prune.finetune import near_chance
from nnjoules.prune.masks import ensure_masks, make_permanent, set_weight
from nnjoules.prune.modelio import save_model
from nnjoules.prune.result import LayerRecord, PruneResult, StepRecord
from prune_helpers import tiny_task


class Grouped(nn.Module):
    """A grouped, not depthwise, convolution (8 -> 16 channels in 2 groups)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 16, 3, padding=1, groups=2)
        self.head = nn.Linear(16 * 12 * 12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(torch.relu(self.grouped(torch.relu(self.stem(x)))), 1))


GROUPED = ("channel pruning does not support grouped convolution grouped (groups=2, 8 -> 16 "
           "channels): only groups=1 and depthwise (groups = in = out channels); use "
           "--granularity weight")


def test_channel_pruning_refuses_a_grouped_convolution_before_any_training() -> None:
    phases: list[str] = []
    with pytest.raises(InputError) as err:
        prune(Grouped(), tiny_task(60), tiny_task(30, seed=1),
              config=PruneConfig(granularity="channel"), on_phase=lambda p, t: phases.append(p))
    assert str(err.value) == GROUPED and phases == []  # the reference was never trained
    with pytest.raises(InputError) as err:
        ChannelPruner(Grouped(), tiny_task(60), evaluate=lambda m: 1.0,
                      finetune=lambda m: None, config=PruneConfig(granularity="channel"))
    assert str(err.value) == GROUPED


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("command, option, value, must", [
    ("prune", "--rounds", "0", "must be a positive integer"),
    ("prune", "--max-failures", "-1", "must be a non-negative integer"),
    ("prune", "--energy-batch", "0", "must be a positive integer"),
    ("prune", "--samples", "0", "must be a positive integer"),
    ("prune", "--positions", "0", "must be a positive integer"),
    ("prune", "--batch-size", "0", "must be a positive integer"),
    ("prune", "--train-limit", "0", "must be a positive integer"),
    ("prune", "--val-limit", "-3", "must be a positive integer"),
    ("prune", "--rate", "1", "must lie in (0, 1) (a fraction)"),
    ("prune", "--lr", "nan", "must be a positive number"),
    ("prune", "--finetune-epochs", "-0.5", "must be a non-negative number"),
    ("prune", "--min-density", "1", "must lie in [0, 1) (a fraction)"),
    ("prune", "--error-share", "2", "must lie in [0, 1] (a fraction)"),
    ("prune", "--energy-exponent", "inf", "must be a non-negative number"),
    ("train", "--epochs", "0", "must be a positive number"),
    ("train", "--momentum", "1", "must lie in [0, 1) (a fraction)"),
    ("train", "--weight-decay", "-1", "must be a non-negative number"),
    ("train", "--batch-size", "0", "must be a positive integer"),
    ("train", "--test-limit", "0", "must be a positive integer"),
    ("demo", "--rounds", "0", "must be a positive integer"),
    ("demo", "--energy-batch", "0", "must be a positive integer"),
    ("demo", "--accuracy-drop", "1.5", "must lie in [0, 1] (a fraction)"),
])
def test_a_numeric_option_out_of_range_is_named_as_typed(
        command: str, option: str, value: str, must: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ("m.pt" if command == "train" else "run")
    code, err = _run_cli([command, "--out", str(out), f"{option}={value}"], capsys)
    assert (code, err) == (2, f"nnjoules: error: {option} {value}: {must}\n")
    assert not out.exists()


@pytest.mark.parametrize("options, message", [
    (["--method", "magnitude", "--allocation", "probe"],
     "--allocation probe: applies only to --method energy-aware with --granularity weight "
     "or both, not --method magnitude --granularity weight"),
    (["--method", "magnitude", "--energy-exponent", "2"],
     "--energy-exponent 2: applies only to --method energy-aware with --granularity "
     "weight or both, not --method magnitude --granularity weight"),
    (["--ranking", "layer"],
     "--ranking layer: applies only to --method magnitude with --granularity weight or "
     "both, not --method energy-aware --granularity weight"),
    (["--granularity", "channel", "--allocation", "saliency"],
     "--allocation saliency: applies only to --method energy-aware with --granularity "
     "weight or both, not --method energy-aware --granularity channel"),
    (["--granularity", "both", "--ranking", "layer"],
     "--ranking layer: applies only to --method magnitude with --granularity weight or "
     "both, not --method energy-aware --granularity both"),
    (["--probe-drop", "0.05"],
     "--probe-drop 0.05: applies only to --method energy-aware with --granularity weight "
     "or both and --allocation probe, not --allocation energy"),
    (["--bits", "8,8"], "--bits 8,8: expected B or W,I,O bit-widths in [1, 64] (e.g. 8 or "
                        "8,8,16)"),
])
def test_options_that_cannot_apply_are_refused(options: list[str], message: str,
                                               tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run_cli(["prune", "--out", str(tmp_path / "run"), *options], capsys)
    assert (code, err) == (2, f"nnjoules: error: {message}\n")


def test_bit_widths_take_estimate_forms_and_prune_config_keeps_them() -> None:
    assert bit_widths("8") == 8 and bit_widths("8,8,8") == 8
    assert bit_widths("8,8,16") == [8, 8, 16] and bit_widths(None) is None
    cfg = PruneConfig(bits=[8, 8, 16])  # as read back from run.json
    assert cfg.bits == (8, 8, 16) and cfg.precision == Precision(8, 8, 16)
    assert PruneConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert PruneConfig(bits=4).precision == 4
    with pytest.raises(InputError, match=r"bits must be an integer in \[1, 64\] or three"):
        PruneConfig(bits=(8, 8))


def test_small_calibration_pool_warns_once(capsys: pytest.CaptureFixture[str]) -> None:
    assert warn_small_pool(5000, PruneConfig()) is None
    text = warn_small_pool(5, PruneConfig())
    assert text == ("warning: calibration asks for 1,024 restoration and 64 density images "
                    "but only 5 training images are used (--train-limit); they are drawn "
                    "from those 5")
    probe = PruneConfig(allocation="probe", restore=RestoreConfig(samples=64))
    assert warn_small_pool(1000, probe) == (
        "warning: calibration asks for 1,024 held-out probe images but only 1,000 training "
        "images are used (--train-limit); they are drawn from those 1,000")  # 64 + 1,024
    assert capsys.readouterr().err == f"{text}\n{warn_small_pool(1000, probe)}\n"


def test_near_chance_is_within_two_points_of_one_over_classes() -> None:
    assert near_chance(0.0910, 10, "the trained lenet5") == (
        "warning: the trained lenet5 has 9.10% accuracy, within 2 points of chance (10.00% "
        "for 10 classes): it has barely learnt")
    assert near_chance(0.12, 10, "m") is not None  # 10% + 2 points: still warned
    assert near_chance(0.1201, 10, "m") is None
    assert near_chance(0.35, 3, "m") is not None and near_chance(0.36, 3, "m") is None


def test_prune_reports_a_reference_at_chance_as_a_warning_phase() -> None:
    class Seen(Exception):
        pass

    def on_phase(phase: str, text: str) -> None:
        if phase == "warning":
            raise Seen(text)

    with pytest.raises(Seen) as seen:
        prune(Grouped(), tiny_task(60), tiny_task(30, seed=1), reference_accuracy=0.34,
              num_classes=3, on_phase=on_phase)
    assert str(seen.value) == ("warning: the dense reference has 34.00% accuracy, within 2 "
                               "points of chance (33.33% for 3 classes): it has barely learnt")


def _step(r: int, accepted: bool, nonzero: int, weights: int, energy: float,
          layers: tuple[LayerRecord, ...]) -> StepRecord:
    return StepRecord(round=r, accepted=accepted, accuracy=0.9, energy=energy,
                      nonzero_weights=nonzero, weights=weights, nonskipped_macs=1e6,
                      macs=2_000_000, rate=0.3 * bool(r), seconds=1.0, layers=layers)


def _result(history: tuple[StepRecord, ...], stop: str) -> PruneResult:
    return PruneResult(model=nn.Identity(), method="energy-aware", history=history,
                       reference_accuracy=0.91, accuracy_floor=0.90, energy_target=None,
                       stop_reason=stop, extra={"reference": {"kind": "given model"}})


def test_summary_counts_weights_against_the_dense_model() -> None:
    dense = _step(0, True, 61_470, 61_470, 4e6, (LayerRecord("fc", 48_000, 48_000, 1e6, 3e6),))
    shrunk = _step(1, True, 12_975, 12_975, 1e6, (LayerRecord("fc", 9_600, 9_600, 2e5, 6e5),))
    text = summary(_result((dense, shrunk), "round limit"), 16)
    assert "non-zero weights  12,975 of 61,470 (21.1% of the dense model)" in text
    assert "energy (batch 16) 1,000,000 normalized (dense 4,000,000): 4.00x less" in text
    assert "fc 20.0% 600,000" in text  # 9,600 of the dense layer's 48,000
    assert "no round met" not in text


def test_summary_says_when_every_round_was_undone() -> None:
    dense = _step(0, True, 100, 100, 4e6, ())
    text = summary(_result((dense, _step(1, False, 70, 100, 3e6, ()),
                            _step(2, False, 85, 100, 3.5e6, ())), "round limit"), 16)
    assert text.splitlines()[0] == ("method            energy-aware  (stopped: round limit; no "
                                    "round met the accuracy budget, the model is unpruned)")
    assert "100 of 100 (100.0% of the dense model)" in text and "1.00x less" in text
    again = PruneResult.from_dict(_result((dense,), "x").to_dict())
    assert again.history == (dense,) and again.extra == {"reference": {"kind": "given model"}}


def test_permanent_model_file_is_smaller_and_gives_the_same_outputs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    layers = ensure_masks(model)
    for module in layers.values():
        weight = module.weight.detach()
        set_weight(module, weight, (weight.abs() > weight.abs().median()).float())
    x = torch.randn(5, 1, 8, 8)
    masked = tmp_path / "masked.pt"
    save_model(masked, model, name="lenet5", num_classes=10)
    expected = model(x)
    folded = tmp_path / "permanent.pt"
    save_model(folded, make_permanent(model), name="lenet5", num_classes=10)
    state = torch.load(folded, weights_only=True)["state_dict"]
    assert not any(k.endswith(("_orig", "_mask")) for k in state)
    assert folded.stat().st_size < 0.6 * masked.stat().st_size
    assert torch.equal(model(x), expected)
    assert torch.equal(state["0.weight"] == 0, state["0.weight"].abs() == 0)  # zeros kept
    assert int((state["0.weight"] == 0).sum()) >= 18  # half of 36 pruned


@pytest.mark.parametrize("command", ["estimate", "compare", "sweep", "prune"])
def test_compression_levels_help_shows_a_metavar_not_its_choices(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``{dram,dram,glb,all}`` reads as four choices: the option names a metavar."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--compression-levels LEVELS" in text
    for braces in re.findall(r"\{([^}]*)\}", text):
        assert "dram,glb" not in braces, braces


def test_cpu_latency_line_says_slower_rather_than_below_one_times_faster() -> None:
    from nnjoules.prune.latency import latency_line

    record = {"threads": 1,
              "dense": [{"batch": 1, "ms_per_image": 3.78, "runs": 7},
                        {"batch": 16, "ms_per_image": 0.756, "runs": 7}],
              "pruned": [{"batch": 1, "ms_per_image": 3.47, "runs": 7},
                         {"batch": 16, "ms_per_image": 1.01, "runs": 7}]}
    line = latency_line(record)
    assert "batch 1: 3.78 -> 3.47 ms/image (1.09x faster)" in line  # 3.78 / 3.47
    assert "batch 16: 0.756 -> 1.01 ms/image (1.34x slower)" in line  # 1.01 / 0.756
    assert "0.75x" not in line

"""Run folders: a kill in any phase resumes to the uninterrupted result; every file is
tied to its run; foreign folders and contradicting options are refused."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from nnjoules.errors import InputError
from nnjoules.prune import PruneConfig, RestoreConfig, TrainConfig, prune
from nnjoules.prune.api import REFERENCE_FILE, REFERENCE_TRAINING_FILE
from nnjoules.prune.checkpoint import load_checkpoint
from nnjoules.prune.finetune import train
from nnjoules.prune.masks import clone
from prune_helpers import tiny_model, tiny_task

FAST = PruneConfig(rounds=3, rate=0.4, density_images=8, accuracy_drop=1.0,
                   restore=RestoreConfig(samples=96, positions=8))
FT = TrainConfig(epochs=0.5, lr=0.05)  # 600 images, batch 128: 5 batches per epoch
REFERENCE_BATCHES = 8  # ceil(3 rounds x 0.5 epochs x 5 batches)


class Killed(Exception):
    """Stands for a SIGKILL at a chosen point."""


@pytest.fixture(scope="module")
def trained() -> nn.Module:
    model = tiny_model()
    train(model, tiny_task(600), TrainConfig(epochs=2, lr=0.1), seed=0)
    return model


def run(model: nn.Module, folder: Path | None, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"config": FAST, "finetune": FT, "method": "energy-aware",
                               "accuracy_drop": 1.0, "checkpoint_dir": folder}
    options.update(kwargs)
    return prune(model, tiny_task(600), tiny_task(300, seed=1), **options)


@pytest.fixture(scope="module")
def whole(trained: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Any:
    phases: list[str] = []
    result = run(clone(trained), tmp_path_factory.mktemp("whole"),
                 on_phase=lambda phase, text: phases.append(f"{phase}|{text}"))
    return result, phases


def same(a: Any, b: Any) -> None:
    assert [r.to_dict() | {"seconds": 0} for r in a.history] == \
        [r.to_dict() | {"seconds": 0} for r in b.history]
    assert a.extra["reference"] == b.extra["reference"]
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key


def test_every_phase_reports_progress(whole: Any) -> None:
    result, phases = whole
    assert result.extra["reference"]["epochs"] == 1.5
    assert [p.split("|")[0] for p in phases] == ["reference", "reference-done", "calibration",
                                                 "round", "round", "round"]
    assert phases[0] == ("reference|training the dense reference for 1.5 epochs (as long as "
                         "pruning may fine-tune)")
    assert phases[1] == (f"reference-done|dense reference: val "
                         f"{100 * result.extra['reference']['accuracy']:.2f}% after 1.5 more "
                         "epochs")
    assert phases[3] == "round|round 1: pruning at rate 0.4, then fine-tuning"


@pytest.mark.parametrize("where", ["reference batch 7", "calibration", "round 2"])
def test_kill_in_any_phase_resumes_to_the_uninterrupted_result(
        trained: nn.Module, whole: Any, tmp_path: Path, where: str) -> None:
    seen = {"batches": 0}

    def progress(done: int, total: int) -> None:
        if total == REFERENCE_BATCHES and seen["batches"] < REFERENCE_BATCHES:
            seen["batches"] = done
            if where == "reference batch 7" and done == 7:
                raise Killed

    def on_phase(phase: str, text: str) -> None:
        if (where == "calibration" and phase == "calibration") or \
                (where == "round 2" and text.startswith("round 2:")):
            raise Killed

    with pytest.raises(Killed):
        run(clone(trained), tmp_path, progress=progress, on_phase=on_phase)
    if where == "reference batch 7":  # the state after the first epoch (5 batches) is kept
        state = load_checkpoint(tmp_path, REFERENCE_TRAINING_FILE)
        assert state["train"]["batches_done"] == 5 and not (tmp_path / REFERENCE_FILE).exists()
    else:
        assert (tmp_path / REFERENCE_FILE).is_file()
        assert not (tmp_path / REFERENCE_TRAINING_FILE).exists()
    batches: list[int] = []
    phases: list[str] = []
    resumed = run(clone(trained), tmp_path, resume=True, on_phase=lambda p, t: phases.append(t),
                  progress=lambda done, total: batches.append(done)
                  if total == REFERENCE_BATCHES else None)
    same(resumed, whole[0])
    assert not (tmp_path / REFERENCE_TRAINING_FILE).exists()
    if where == "reference batch 7":  # only the batches after the checkpoint ran again
        assert batches == [6, 7, 8]
        assert phases[0].endswith("fine-tune), resuming after batch 5")
    else:
        assert batches == [] and phases[0].endswith(f"(trained earlier, {tmp_path}/reference.pt)")


def test_a_file_of_another_run_is_refused(trained: nn.Module, tmp_path: Path) -> None:
    def stop_after_reference(phase: str, text: str) -> None:
        if phase == "reference-done":
            raise Killed

    for seed in (0, 1):
        with pytest.raises(Killed):
            run(clone(trained), tmp_path / f"seed{seed}", on_phase=stop_after_reference,
                config=PruneConfig(**{**FAST.to_dict(), "restore": FAST.restore,
                                      "seed": seed}))
    stale = tmp_path / "seed1" / REFERENCE_FILE
    shutil.copy(tmp_path / "seed0" / REFERENCE_FILE, stale)  # a stale reference.pt
    seed1 = PruneConfig(**{**FAST.to_dict(), "restore": FAST.restore, "seed": 1})
    with pytest.raises(InputError, match=rf"^{stale}: written by another run \(seed 0 there, "
                                         r"1 now\); use a new folder or the run's own inputs$"):
        run(clone(trained), tmp_path / "seed1", config=seed1, resume=True)
    untrained = tiny_model(seed=5)  # another model into the folder of the first run
    manifest = tmp_path / "seed0" / "run.json"
    with pytest.raises(InputError, match=rf"^{manifest}: written by another run \(model "
                                         r"SHA-256 \w{12}\.\.\. there, \w{12}\.\.\. now\)"):
        run(untrained, tmp_path / "seed0", resume=True)
    with pytest.raises(InputError, match=rf"{manifest}: written by another run \(setting "
                                         r"rounds: 3 there, 4 now\)"):
        run(clone(trained), tmp_path / "seed0", resume=True,
            config=PruneConfig(**{**FAST.to_dict(), "restore": FAST.restore, "rounds": 4}))
    with pytest.raises(InputError, match=r"data SHA-256 \w{12}\.\.\. there, \w{12}\.\.\. now"):
        prune(clone(trained), tiny_task(500), tiny_task(300, seed=1), config=FAST,
              finetune=FT, checkpoint_dir=tmp_path / "seed0", resume=True)


def test_a_foreign_folder_is_never_written(trained: nn.Module, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=rf"^{tmp_path}: not empty and not a pruning run folder "
                                         r"\(no run\.json\); choose a new or empty folder"):
        run(clone(trained), tmp_path, resume=True)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_damaged_checkpoint_is_one_line_without_unsafe_advice(trained: nn.Module,
                                                               tmp_path: Path) -> None:
    def stop_after_reference(phase: str, text: str) -> None:
        if phase == "reference-done":
            raise Killed

    with pytest.raises(Killed):
        run(clone(trained), tmp_path, on_phase=stop_after_reference)
    path = tmp_path / REFERENCE_FILE
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # cut short, e.g. by a full disk
    with pytest.raises(InputError) as caught:
        run(clone(trained), tmp_path, resume=True)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a readable checkpoint (") and "\n" not in message
    assert "weights_only" not in message

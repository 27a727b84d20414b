"""``nnjoules train``, ``prune`` (resume) and ``demo`` end to end on a small fake dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nnjoules.cli import main
from test_data import write_fake_fashion_mnist

SMALL = ["--train-limit", "300", "--val-limit", "200", "--test-limit", "200", "--quiet"]
PRUNE = ["--rounds", "3", "--rate", "0.4", "--finetune-epochs", "0.5", "--samples", "64",
         "--positions", "4", "--accuracy-drop", "1.0", "--reference", "given"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fmnist")
    write_fake_fashion_mnist(folder, n_train=10_400, n_test=200, gz=False)
    return folder


@pytest.fixture(scope="module")
def model_file(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "lenet.pt"
    code = main(["train", "lenet5", "--epochs", "0.2", "--out", str(out), "--data-dir",
                 str(data_dir), *SMALL])
    assert code == 0
    return out


def test_train_writes_model_and_sidecar(model_file: Path) -> None:
    info = json.loads(Path(f"{model_file}.json").read_text())
    assert info["model"] == "lenet5" and info["epochs"] == 0.2
    assert info["command"].startswith("nnjoules ") and len(info["sha256"]) == 64
    assert 0.0 <= info["val_accuracy"] <= 1.0


@pytest.mark.parametrize("method", [
    ["--method", "magnitude"],
    ["--method", "energy-aware", "--allocation", "probe", "--probe-drop", "0.05"],
], ids=["magnitude", "energy-aware-probe"])
def test_prune_stop_and_resume_equals_uninterrupted(model_file: Path, data_dir: Path,
                                                    tmp_path: Path, method: list[str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    common = [str(model_file), "--data-dir", str(data_dir), *SMALL, *PRUNE, *method]
    assert main(["prune", *common, "--out", str(tmp_path / "whole")]) == 0
    assert main(["prune", *common, "--out", str(tmp_path / "cut"), "--stop-after", "1"]) == 0
    assert "--resume" in capsys.readouterr().out
    assert not (tmp_path / "cut" / "result.json").exists()
    assert main(["prune", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    whole = json.loads((tmp_path / "whole" / "result.json").read_text())
    resumed = json.loads((tmp_path / "cut" / "result.json").read_text())
    for doc in (whole, resumed):
        for record in doc["history"]:
            record["seconds"] = 0
    assert resumed == whole
    for name in ("model.pt", "model.pt.json", "energy-dense.json", "energy-pruned.json"):
        assert (tmp_path / "cut" / name).is_file()
    assert main(["prune", *common, "--out", str(tmp_path / "whole")]) == 2  # already a run


@pytest.mark.parametrize("extra, message", [
    (["--data-dir", "/nonexistent/fmnist"], "no such dataset folder"),
    (["--accuracy-drop", "-0.5"], "accuracy budget must be a non-negative"),
    (["--energy-target", "0"], "energy target must lie in"),
    (["--energy-target", "1.25"], "energy target must lie in"),
    (["--allocation", "probe", "--probe-drop", "1.5"], "probe_drop must lie in"),
])
def test_bad_input_exits_2(model_file: Path, data_dir: Path, tmp_path: Path, extra: list[str],
                           message: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["prune", str(model_file), "--out", str(tmp_path / "run"), "--data-dir",
            str(data_dir), *SMALL, *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_model_without_prunable_layer_exits_2(data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    args = ["prune", "prune_helpers:no_prunable_model", "--out", str(tmp_path / "run"),
            "--data-dir", str(data_dir), *SMALL]
    assert main(args) == 2
    assert "no prunable layer" in capsys.readouterr().err


def test_demo_compares_both_methods(data_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--rounds", "1", "--data-dir", str(data_dir), "--out",
                 str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    for word in ("energy-aware", "magnitude", "dense reference", "magn./this"):
        assert word in text
    report = json.loads((out / "demo.json").read_text())
    assert report["energy-aware"]["method"] == "energy-aware"
    assert report["reference"]["epochs"] == 0.5
    assert report["threads"]["torch_threads"] == torch.get_num_threads()
    for name in ("lenet5-energy-aware.pt", "lenet5-magnitude.pt", "energy-dense.json"):
        assert (out / name).is_file()

"""Model files, checkpoints, devices and non-finite weights: one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nnjoules.cli import main
from nnjoules.errors import InputError
from nnjoules.models.builtin import build_model
from nnjoules.prune import Pruner, prune
from nnjoules.prune.masks import ensure_masks
from nnjoules.prune.modelio import load_model_file, save_model
from prune_helpers import tiny_model, tiny_task


def write_model(path: Path, *, mask: float | None = None, weight: float | None = None) -> Path:
    """A LeNet-5 model file; ``mask``/``weight`` set element [0,0,0,0] of features.0."""
    model = build_model("lenet5")
    ensure_masks(model)
    with torch.no_grad():
        if mask is not None:
            model.features[0].weight_mask[0, 0, 0, 0] = mask
        if weight is not None:
            model.features[0].weight_orig[0, 0, 0, 0] = weight
    save_model(path, model, name="lenet5", num_classes=10)
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnjoules: error: "), captured.err
    return lines[0][len("nnjoules: error: "):]


def test_sha256_of_the_sidecar_is_checked(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = write_model(tmp_path / "m.pt")
    load_model_file(path)  # intact: loads
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside the tensor data
    path.write_bytes(bytes(data))
    recorded = json.loads((tmp_path / "m.pt.json").read_text())["sha256"]
    with pytest.raises(InputError, match=rf"m\.pt: SHA-256 \w{{16}}\.\.\. differs from the "
                                         rf"{recorded[:16]}\.\.\. recorded in m\.pt\.json"):
        load_model_file(path)
    assert main(["prune", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "recorded in m.pt.json: the file was changed or damaged" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("mask, weight, message", [
    (-1.7e38, None, r"layer features\.0: mask features\.0\.weight_mask holds 1 value\(s\) "
                    r"other than 0 and 1 \(e\.g\. -1\.7e\+38\)"),
    (0.5, None, r"features\.0\.weight_mask holds 1 value\(s\) other than 0 and 1 \(e\.g\. 0\.5"),
    (None, float("nan"), r"layer features\.0: features\.0\.weight_orig holds 1 non-finite"),
    (None, float("inf"), r"layer features\.0: features\.0\.weight_orig holds 1 non-finite"),
])
def test_masks_must_be_0_or_1_and_weights_finite(tmp_path: Path, mask: float | None,
                                                 weight: float | None, message: str) -> None:
    path = write_model(tmp_path / "m.pt", mask=mask, weight=weight)  # sidecar matches
    with pytest.raises(InputError, match=message):
        load_model_file(path)


@pytest.mark.parametrize("content, reason", [
    (b"hello world" * 10, "unreadable data (KeyError)"),
    (b"", "the file is empty or cut short"),
    ("object", "it holds an object of type test_prune_files.Foreign; only tensors and plain "
               "values are loaded, since loading anything else could run code from the file"),
])
def test_bad_checkpoint_is_one_line_without_unsafe_advice(
        tmp_path: Path, content: bytes | str, reason: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.pt"
    if content == "object":
        torch.save({"format": "nnjoules-model", "x": Foreign()}, path)
    else:
        path.write_bytes(content)  # type: ignore[arg-type]
    assert main(["prune", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    line = one_error_line(capsys)
    assert line == f"{path}: not a model file of nnjoules ({reason})"
    assert "weights_only" not in line


class Foreign:
    """A class a checkpoint may not instantiate."""


@pytest.mark.parametrize("command", [["prune", "--out", "{out}"], ["train", "--out", "{out}.pt"],
                                     ["demo", "--out", "{out}"]])
@pytest.mark.parametrize("device, message", [
    ("tpu", "--device tpu: unknown device (choose cpu, cuda, cuda:N, mps or auto)"),
    ("cuda", "--device cuda: no CUDA GPU is available on this machine (use --device cpu or "
             "auto)"),
])
def test_unusable_device_before_data_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                command: list[str], device: str, message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without GPU
    out = tmp_path / "run"
    args = [a.replace("{out}", str(out)) for a in command]
    # a data folder that does not exist: reading data first would give another error
    code = main([*args, "--device", device, "--data-dir", str(tmp_path / "no-data")])
    assert code == 2
    assert one_error_line(capsys) == message
    assert list(tmp_path.iterdir()) == []


def test_nan_weight_is_named_before_any_fit(capfd: pytest.CaptureFixture[str]) -> None:
    model = tiny_model()
    with torch.no_grad():
        model.features[3].weight[2, 1, 0, 0] = float("nan")
    with pytest.raises(InputError, match=r"^layer features\.3: features\.3\.weight holds 1 "
                                         r"non-finite value\(s\) \(NaN or Inf\); nnjoules "
                                         r"cannot prune a model with non-finite weights$"):
        prune(model, tiny_task(60), tiny_task(30), reference="given")
    out = capfd.readouterr()
    assert out.out == "" and "MKL" not in out.err


def test_nan_after_fine_tuning_is_named_with_the_round() -> None:
    def diverge(model: torch.nn.Module) -> None:
        with torch.no_grad():
            model.classifier.weight_orig[0, 0] = float("inf")

    pruner = Pruner(tiny_model(), tiny_task(100), evaluate=lambda m: 1.0, finetune=diverge)
    with pytest.raises(InputError, match=r"layer classifier: classifier\.weight_orig holds 1 "
                                         r"non-finite value\(s\) \(NaN or Inf\) after the "
                                         r"fine-tuning of round 1"):
        pruner.step()


def test_a_run_folder_or_its_torch_export_points_to_the_runs_model_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    model = build_model("lenet5").eval()
    write_model(run / "model.pt")
    torch.save(torch.fx.symbolic_trace(model), run / "model-module.pt")  # as prune exports
    monkeypatch.chdir(tmp_path)
    assert main(["estimate", "run", "--quiet"]) == 2
    assert one_error_line(capsys) == "run: is a folder, not a model; give its model file, " \
        "run/model.pt"
    assert main(["estimate", "run/model-module.pt", "--quiet"]) == 2
    assert one_error_line(capsys).endswith("; estimate the run's run/model.pt instead")
    (tmp_path / "empty").mkdir()
    assert main(["estimate", "empty", "--quiet"]) == 2
    assert one_error_line(capsys) == "empty: is a folder, not a model"


def test_hardware_no_mapping_fits_fails_before_the_run_folder_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_data import write_fake_fashion_mnist

    data = tmp_path / "fm"
    write_fake_fashion_mnist(data, n_train=10_600, n_test=100, gz=False)
    model = write_model(tmp_path / "m.pt")
    run = tmp_path / "run"
    argv = ["prune", str(model), "--out", str(run), "--data-dir", str(data), "--train-limit",
            "200", "--val-limit", "100", "--test-limit", "100", "--quiet"]
    assert main([*argv, "--hardware", "systolic-32x32"]) == 1  # no RS mapping: 1-byte pads
    err = capsys.readouterr().err
    assert "is made for the systolic-ws or systolic-os dataflow" in err
    assert not run.exists()  # so the same --out works with another --hardware
    assert main([*argv, "--hardware", "eyeriss", "--stop-after", "reference",
                 "--reference", "given"]) == 0
    assert (run / "run.json").is_file()

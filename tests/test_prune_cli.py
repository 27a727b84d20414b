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
    ["--granularity", "channel"],
], ids=["magnitude", "energy-aware-probe", "channel"])
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
        doc.pop("cpu_latency")  # wall-clock, measured again by the resumed run
    assert resumed == whole
    for name in ("model.pt", "model.pt.json", "energy-dense.json", "energy-pruned.json"):
        assert (tmp_path / "cut" / name).is_file()
    assert main(["prune", *common, "--out", str(tmp_path / "whole")]) == 2  # already a run


@pytest.mark.parametrize("extra, message", [
    (["--data-dir", "/nonexistent/fmnist"], "no such dataset folder"),
    (["--accuracy-drop", "-0.5"], "--accuracy-drop -0.5: must lie in [0, 1] (a fraction)"),
    (["--energy-target", "0"], "--energy-target 0: must lie in (0, 1] (a fraction)"),
    (["--energy-target", "1.25"], "--energy-target 1.25: must lie in (0, 1] (a fraction)"),
    (["--allocation", "probe", "--probe-drop", "1.5"],
     "--probe-drop 1.5: must lie in [0, 1] (a fraction)"),
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
                 str(out), "--quiet", "--dataflow", "WS"]) == 0
    text = capsys.readouterr().out
    dense = json.loads((out / "energy-dense.json").read_text())
    assert dense["dataflow"] == "weight-stationary"
    assert json.loads((out / "demo.json").read_text())["dataflow"] == "weight-stationary"
    assert json.loads((out / "demo.json").read_text())["magnitude"]["dataflow"] == \
        "weight-stationary"
    for word in ("energy-aware", "magnitude", "dense reference", "magn./this"):
        assert word in text
    report = json.loads((out / "demo.json").read_text())
    assert report["energy-aware"]["method"] == "energy-aware"
    assert report["reference"]["epochs"] == 0.5
    assert report["threads"]["torch_threads"] == torch.get_num_threads()
    for name in ("lenet5-energy-aware.pt", "lenet5-magnitude.pt", "energy-dense.json",
                 "lenet5-energy-aware-channel.pt"):
        assert (out / name).is_file()
    # the structured method: a row of its own, and a model file of the shrunk shapes
    channel = report["energy-aware-channel"]
    row = next(line for line in text.splitlines() if line.startswith("energy-aware-channel"))
    assert f"{channel['final']['energy']:,.0f}" in row
    from nnjoules.prune.modelio import load_model_file

    _, model, info = load_model_file(out / "lenet5-energy-aware-channel.pt")
    assert info["granularity"] == "channel"
    weights = sum(m.weight.numel() for m in model.modules()
                  if isinstance(m, torch.nn.Conv2d | torch.nn.Linear))
    assert weights == channel["history"][channel["final"]["round"]]["weights"]


MATCHED = ["--rounds", "3", "--rate", "0.4", "--finetune-epochs", "0.5", "--samples", "64",
           "--positions", "4", "--accuracy-drop", "1.0", "--method", "magnitude"]


def test_stop_in_the_reference_phase_resumes_to_the_uninterrupted_result(
        model_file: Path, data_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    common = [str(model_file), "--data-dir", str(data_dir), *SMALL[:-1], *MATCHED]
    assert main(["prune", *common, "--out", str(tmp_path / "whole")]) == 0
    err = capsys.readouterr().err  # progress of every phase (stderr is not a terminal)
    for line in ("estimating the dense model's energy",
                 "training the dense reference for 1.5 epochs (as long as pruning may "
                 "fine-tune)", "dense reference: val ", "calibration: drawing 64 restoration",
                 "round 1: pruning at rate 0.4, then fine-tuning", "magnitude round 1: ",
                 "round 3: pruning at rate", "magnitude round 3: "):
        assert line in err, line
    cut = tmp_path / "cut"
    assert main(["prune", *common, "--out", str(cut), "--stop-after", "reference"]) == 0
    assert capsys.readouterr().out == ("stopped after the dense reference; continue with "
                                       f"`nnjoules prune --resume {cut}`\n")
    assert sorted(p.name for p in cut.iterdir()) == ["energy-dense.json", "reference.pt",
                                                     "run.json"]
    # options that agree with the run are accepted
    assert main(["prune", "--resume", str(cut), "--rounds", "3", "--seed", "0", "--quiet"]) == 0
    whole = json.loads((tmp_path / "whole" / "result.json").read_text())
    resumed = json.loads((cut / "result.json").read_text())
    for doc in (whole, resumed):
        for record in doc["history"]:
            record["seconds"] = 0
        doc.pop("cpu_latency")  # wall-clock, measured again by the resumed run
    assert resumed == whole and whole["reference"]["epochs"] == 1.5
    assert resumed["run"]["seed"] == 0 and len(resumed["reference"]["sha256"]) == 64


@pytest.fixture(scope="module")
def stopped_run(model_file: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Path:
    """A run folder stopped after its (given) reference: cheap, and resumable."""
    folder = tmp_path_factory.mktemp("runs") / "run"
    assert main(["prune", str(model_file), "--data-dir", str(data_dir), *SMALL, *PRUNE,
                 "--method", "magnitude", "--out", str(folder), "--stop-after",
                 "reference"]) == 0
    return folder


@pytest.mark.parametrize("extra, message", [
    (["--rounds", "5"], "--rounds 5 contradicts the run in {run} (started with 3)"),
    (["--rounds", "10"], "--rounds 10 contradicts the run in {run} (started with 3)"),
    (["--seed", "1"], "--seed 1 contradicts the run in {run} (started with 0)"),
    (["--method", "energy-aware"],
     "--method energy-aware contradicts the run in {run} (started with magnitude)"),
    (["--train-limit", "100"], "--train-limit 100 contradicts the run in {run} (started with "
                               "300)"),
    (["lenet5"], "MODEL lenet5 contradicts the run in {run} (started with {model})"),
])
def test_resume_refuses_contradicting_options(stopped_run: Path, model_file: Path,
                                              extra: list[str], message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", "--resume", str(stopped_run), *extra]) == 2
    expected = message.format(run=stopped_run, model=model_file)
    assert capsys.readouterr().err == (f"nnjoules: error: {expected}; resume without it, or "
                                       "start a new run with --out\n")


def test_resume_refuses_another_out_and_a_changed_model(
        stopped_run: Path, model_file: Path, data_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", "--resume", str(stopped_run), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"nnjoules: error: --out {tmp_path} contradicts "
                                       f"--resume {stopped_run}: a resumed run writes into its "
                                       "own folder\n")
    import shutil

    import torch

    from nnjoules.prune.modelio import load_model_file, save_model

    own = tmp_path / "own.pt"
    shutil.copy(model_file, own)
    shutil.copy(f"{model_file}.json", f"{own}.json")
    run = tmp_path / "run"
    assert main(["prune", str(own), "--data-dir", str(data_dir), *SMALL, *PRUNE, "--out",
                 str(run), "--stop-after", "reference"]) == 0
    name, model, _info = load_model_file(own)
    with torch.no_grad():
        model.classifier[4].bias.add_(1.0)
    save_model(own, model, name=name, num_classes=10)  # the model file is replaced
    capsys.readouterr()
    assert main(["prune", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nnjoules: error: {run}/run.json: written by another run (model "
                          "SHA-256 ") and err.count("\n") == 1


def test_out_into_a_foreign_folder_is_refused(model_file: Path, data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["prune", str(model_file), "--data-dir", str(data_dir), *SMALL, "--out",
                 str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"nnjoules: error: {tmp_path}: not empty and not a "
                                       "pruning run folder (no run.json); choose a new or empty "
                                       "folder (its files are never overwritten)\n")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("value", ["0", "two"])
def test_bad_stop_after(model_file: Path, tmp_path: Path, value: str,
                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", str(model_file), "--out", str(tmp_path / "run"), "--stop-after",
                 value]) == 2
    assert capsys.readouterr().err == ("nnjoules: error: --stop-after must be a positive "
                                       "number of rounds or 'reference', got "
                                       f"{value!r}\n")


def test_channel_pruned_model_file_loads_with_its_smaller_shapes(model_file: Path,
                                                                  data_dir: Path,
                                                                  tmp_path: Path) -> None:
    import torch

    from nnjoules.prune.modelio import load_model_file

    out = tmp_path / "run"
    assert main(["prune", str(model_file), "--data-dir", str(data_dir), *SMALL, *PRUNE,
                 "--granularity", "channel", "--out", str(out)]) == 0
    _, dense, _ = load_model_file(model_file)
    _, pruned, info = load_model_file(out / "model.pt")
    assert info["granularity"] == "channel"
    assert sum(p.numel() for p in pruned.parameters()) < \
        sum(p.numel() for p in dense.parameters())
    result = json.loads((out / "result.json").read_text())
    final = next(r for r in reversed(result["history"]) if r["accepted"])
    assert final["weights"] == sum(
        m.weight.numel() for m in pruned.modules() if isinstance(m, (torch.nn.Conv2d,
                                                                     torch.nn.Linear)))
    assert main(["prune", "--resume", str(out), "--granularity", "weight", "--quiet"]) == 2


def test_both_resumes_at_the_stage_boundary_and_its_model_file_holds_both_stages(
        model_file: Path, data_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from nnjoules.prune.modelio import load_model_file

    common = [str(model_file), "--data-dir", str(data_dir), *SMALL, *PRUNE,
              "--granularity", "both"]
    assert main(["prune", *common, "--out", str(tmp_path / "whole")]) == 0
    # 3 rounds, half for channels: round(1.5) = 2 channel rounds, then the weights
    assert main(["prune", *common, "--out", str(tmp_path / "cut"), "--stop-after", "2"]) == 0
    assert main(["prune", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    whole = json.loads((tmp_path / "whole" / "result.json").read_text())
    resumed = json.loads((tmp_path / "cut" / "result.json").read_text())
    for doc in (whole, resumed):
        doc.pop("cpu_latency")  # wall-clock, measured again by the resumed run
        for record in doc["history"]:
            record["seconds"] = 0
    assert resumed == whole
    assert [s["granularity"] for s in whole["stages"]] == ["channel", "weight"]
    _, pruned, info = load_model_file(tmp_path / "cut" / "model.pt")
    assert info["granularity"] == "both" and info["stages"] == whole["stages"]
    layers = [m for m in pruned.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    final = next(r for r in reversed(whole["history"]) if r["accepted"])
    assert final["weights"] == sum(m.weight.numel() for m in layers)  # channels gone
    assert final["nonzero_weights"] == sum(int(torch.count_nonzero(m.weight)) for m in layers)
    capsys.readouterr()
    assert main(["prune", "--resume", str(tmp_path / "cut"), "--granularity", "channel",
                 "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("nnjoules: error: --granularity channel "
                                              "contradicts the run in")


def test_train_refuses_an_existing_out_unless_overwrite(model_file: Path, data_dir: Path,
                                                        tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    before = model_file.read_bytes()
    args = ["train", "--out", str(model_file), "--data-dir", str(data_dir), *SMALL]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"nnjoules: error: --out {model_file}: exists (run folders pruned from it are tied "
        "to its SHA-256); give --overwrite to replace it, or another name\n")
    assert model_file.read_bytes() == before
    missing = tmp_path / "nodir" / "a.pt"
    assert main(["train", "--out", str(missing), "--data-dir", str(data_dir), *SMALL]) == 2
    assert capsys.readouterr().err == (f"nnjoules: error: --out {missing}: folder "
                                       f"{missing.parent} does not exist\n")
    copy = tmp_path / "copy.pt"
    copy.write_bytes(b"old")
    assert main(["train", "--out", str(copy), "--overwrite", "--epochs", "0.05",
                 "--data-dir", str(data_dir), *SMALL]) == 0
    assert "--overwrite" not in json.loads(Path(f"{copy}.json").read_text())["command"]
    assert copy.read_bytes() != b"old"


def test_permanent_bits_and_a_finished_resume(model_file: Path, data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from nnjoules.prune.modelio import load_model_file

    run = tmp_path / "run"
    assert main(["prune", str(model_file), "--data-dir", str(data_dir), *SMALL, *PRUNE,
                 "--rounds", "1", "--method", "magnitude", "--bits", "8,8,16",
                 "--energy-batch", "4", "--permanent", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "energy (batch 4)  " in out
    assert json.loads((run / "run.json").read_text())["options"]["bits"] == [8, 8, 16]
    result = json.loads((run / "result.json").read_text())
    name, model, info = load_model_file(run / "model.pt")
    state = model.state_dict()
    assert info["masks"] == "folded in" and not any(k.endswith("_mask") for k in state)
    nonzero = sum(int(torch.count_nonzero(state[f"{layer['name']}.weight"]))
                  for layer in result["history"][result["final"]["round"]]["layers"])
    assert nonzero == result["final"]["nonzero_weights"]
    stamps = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert main(["prune", "--resume", str(run)]) == 0
    again = capsys.readouterr()
    assert again.err == f"{run}: this run already finished; nothing to resume (its summary " \
                        "follows)\n"
    assert again.out == out
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == stamps


def test_prune_dataflow_guides_and_measures_with_that_dataflow(
        model_file: Path, data_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from nnjoules.data import load_data
    from nnjoules.energy.estimate import estimate
    from nnjoules.prune.modelio import load_model_file

    run = tmp_path / "run"
    hw = "eyeriss-isca2016-ws"
    # --energy-batch 64 = the 64 density images: the estimate is that of those images
    assert main(["prune", str(model_file), "--data-dir", str(data_dir), *SMALL, *PRUNE,
                 "--rounds", "1", "--hardware", hw, "--dataflow", "WS",
                 "--energy-batch", "64", "--out", str(run)]) == 0
    assert "x less (weight-stationary dataflow)" in capsys.readouterr().out
    splits = load_data("fashion-mnist", str(data_dir), train_limit=300, val_limit=200,
                       test_limit=200, download=False)
    images = splits.train.batch(torch.arange(64))[0]
    _name, dense, _info = load_model_file(model_file)
    _name, pruned, _info = load_model_file(run / "model.pt")
    result = json.loads((run / "result.json").read_text())
    ws = [estimate(m, images, hardware=hw, dataflow="weight-stationary").total()
          for m in (dense, pruned)]
    assert result["history"][0]["energy"] == pytest.approx(ws[0], rel=1e-9)
    assert result["final"]["energy"] == pytest.approx(ws[1], rel=1e-9)
    assert result["final"]["energy_reduction"] == pytest.approx(ws[0] / ws[1], rel=1e-9)
    # (this preset's 16-bit RF fits no row-stationary mapping: a prune that ignored
    # --dataflow would have failed on the first layer)
    assert result["dataflow"] == result["config"]["dataflow"] == "weight-stationary"
    manifest = json.loads((run / "run.json").read_text())
    assert manifest["options"]["dataflow"] == "weight-stationary"
    assert manifest["identity"]["settings"]["dataflow"] == "weight-stationary"
    assert json.loads((run / "energy-dense.json").read_text())["dataflow"] == \
        "weight-stationary"


def test_resume_refuses_another_dataflow(stopped_run: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prune", "--resume", str(stopped_run), "--dataflow", "weight-stationary"]) == 2
    assert capsys.readouterr().err == (
        f"nnjoules: error: --dataflow weight-stationary contradicts the run in {stopped_run} "
        "(started with row-stationary); resume without it, or start a new run with --out\n")


def test_a_run_folder_from_before_dataflow_resumes_as_row_stationary(
        model_file: Path, data_dir: Path, tmp_path: Path) -> None:
    from nnjoules.prune import checkpoint

    run = tmp_path / "run"
    assert main(["prune", str(model_file), "--data-dir", str(data_dir), *SMALL, *PRUNE,
                 "--rounds", "2", "--method", "magnitude", "--out", str(run),
                 "--stop-after", "1"]) == 0
    # strip the field from every record, as a version before --dataflow wrote them
    manifest = json.loads((run / "run.json").read_text())
    del manifest["options"]["dataflow"], manifest["identity"]["settings"]["dataflow"]
    (run / "run.json").write_text(json.dumps(manifest))
    state = checkpoint.load_checkpoint(run)
    del state["config"]["dataflow"], state["extra"]["run"]["settings"]["dataflow"]
    del state["extra"]["options"]["dataflow"]
    state.pop("format")
    checkpoint.save_checkpoint(run, state)
    assert main(["prune", "--resume", str(run), "--quiet"]) == 0
    result = json.loads((run / "result.json").read_text())
    assert result["dataflow"] == "row-stationary" and len(result["history"]) == 3
    assert main(["prune", "--resume", str(run), "--dataflow", "os-a"]) == 2


@pytest.mark.parametrize("unit, dense, final, line", [
    # 1.2e10 pJ = 12 mJ dense; 5.83e9 pJ = 5.83 mJ pruned; 12 / 5.83 = 2.058...
    ("pJ", 1.2e10, 5.83e9, "energy (batch 16) 5.83 mJ (dense 12 mJ): 2.06x less"),
    ("pJ", 8.4e6, 4.2e5, "energy (batch 16) 420 nJ (dense 8.4 uJ): 20.00x less"),
    ("normalized", 1.2e10, 5.83e9,
     "energy (batch 16) 5,830,000,000 normalized (dense 12,000,000,000): 2.06x less"),
])
def test_prune_summary_energy_in_the_natural_unit(unit: str, dense: float, final: float,
                                                  line: str) -> None:
    from nnjoules.commands.prune import summary
    from nnjoules.prune.result import PruneResult, StepRecord

    def step(n: int, energy: float) -> StepRecord:
        return StepRecord(round=n, accepted=True, accuracy=0.9, energy=energy,
                          nonzero_weights=100, weights=100, nonskipped_macs=10.0, macs=10,
                          rate=0.0, seconds=0.0)

    result = PruneResult(model=None, method="magnitude", history=(step(0, dense),
                                                                   step(1, final)),
                         reference_accuracy=0.9, accuracy_floor=0.8, energy_target=None,
                         stop_reason="round limit", energy_unit=unit)
    assert line in summary(result, 16).splitlines()

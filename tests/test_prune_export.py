"""Pruned models as files without nnjoules (torch.fx module, state dict, ONNX), the ONNX
estimate equal to the run's energy, CPU latency in the result; short real channel-pruning
runs of resnet20 and mobilenetv2 on Fashion-MNIST."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import nnjoules
from nnjoules.cli import main
from nnjoules.models.builtin import LeNet5
from nnjoules.prune import cpu_latency, export_onnx
from nnjoules.prune.modelio import load_model_file
from test_data import write_fake_fashion_mnist

SUBSET = ["--train-limit", "2000", "--val-limit", "500", "--test-limit", "500", "--quiet"]
ONE_ROUND = ["--rounds", "1", "--finetune-epochs", "0.2", "--samples", "64", "--positions",
             "4", "--reference", "given", "--accuracy-drop", "1.0"]

# Loads a module file in a Python that cannot import nnjoules (isolated mode, and every
# import of nnjoules refused), runs it on the saved input, saves the output.
LOAD_WITHOUT_NNJOULES = """
import sys, importlib.abc
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "nnjoules":
            raise ImportError("nnjoules is not importable here")
sys.meta_path.insert(0, Refuse())
import torch
folder = sys.argv[1]
module = torch.load(folder + "/model-module.pt", weights_only=False)
state = torch.load(folder + "/model-state-dict.pt", weights_only=True)
module.load_state_dict(state, strict=True)
x = torch.load(folder + "/x.pt", weights_only=True)
with torch.no_grad():
    torch.save(module.eval()(x), folder + "/y.pt")
assert not any(name.split(".")[0] == "nnjoules" for name in sys.modules)
print(type(module).__name__, module.input_shape)
"""


def loads_without_nnjoules(folder: Path, model: nn.Module) -> str:
    """Run `LOAD_WITHOUT_NNJOULES` on ``folder``; its outputs must equal ``model``'s."""
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.save(x, folder / "x.pt")
    done = subprocess.run([sys.executable, "-I", "-c", LOAD_WITHOUT_NNJOULES, str(folder)],
                          capture_output=True, text=True, timeout=120, cwd=folder)
    assert done.returncode == 0, done.stderr
    with torch.no_grad():
        expected = model.eval()(x)
    torch.testing.assert_close(torch.load(folder / "y.pt", weights_only=True), expected,
                               rtol=1e-5, atol=1e-6)
    return done.stdout


def estimate_json(onnx_path: Path, tmp_path: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / f"{onnx_path.stem}-estimate.json"
    densities = onnx_path.with_name(onnx_path.stem + ".densities.json")
    assert main(["estimate", str(onnx_path), "--batch", "16", "--densities", str(densities),
                 *extra, "--json", str(out), "--quiet"]) == 0
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=["resnet20", "mobilenetv2"])
def channel_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                ) -> tuple[str, Path, str]:
    """``nnjoules train NAME`` briefly, then one round of energy-aware channel pruning
    with --export-onnx, on a Fashion-MNIST subset; (name, folder, the prune's stderr)."""
    from nnjoules.data.fashion_mnist import DEBIAN_DIR
    from system_deps import require_fashion_mnist

    require_fashion_mnist()
    name = str(request.param)
    folder = tmp_path_factory.mktemp(name)
    model = folder / f"{name}.pt"
    assert main(["train", name, "--epochs", "0.1", "--out", str(model), "--data-dir",
                 str(DEBIAN_DIR), *SUBSET]) == 0
    code = subprocess.run(
        [sys.executable, "-m", "nnjoules.cli", "prune", str(model), "--granularity",
         "channel", *ONE_ROUND, "--data-dir", str(DEBIAN_DIR), *SUBSET[:-1], "--out",
         str(folder / "run"), "--export-onnx", str(folder / "pruned.onnx"), "--threads", "1"],
        capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr
    return name, folder, code.stderr + code.stdout


def test_channel_run_completes_and_shrinks_the_network(channel_run) -> None:  # type: ignore[no-untyped-def]
    name, folder, output = channel_run
    result = json.loads((folder / "run" / "result.json").read_text())
    assert result["final"]["round"] == 1 and result["history"][1]["accepted"]
    dense, final = result["history"][0], result["history"][1]
    assert final["weights"] < dense["weights"] and final["macs"] < dense["macs"]
    assert result["final"]["energy"] < dense["energy"]
    assert sum(len(cuts) for cuts in result["cuts"]) >= 1
    _, model, _ = load_model_file(folder / "run" / "model.pt")
    assert sum(p.numel() for n, p in model.named_parameters()
               if n.endswith("weight") and p.dim() > 1) == final["weights"]
    assert "CPU latency       batch 1: " in output
    # the round's line counts the shrunk model's weights against the dense model's
    share = 100 * final["nonzero_weights"] / dense["weights"]
    assert f"round 1: accepted val {100 * final['accuracy']:.2f}%  non-zero weights " \
        f"{share:.1f}%  energy" in output
    assert share < 99.95


def test_onnx_estimate_gives_the_energy_the_run_reported(channel_run, tmp_path) -> None:  # type: ignore[no-untyped-def]
    name, folder, output = channel_run
    result = json.loads((folder / "run" / "result.json").read_text())
    onnx_path = folder / "pruned.onnx"
    report = estimate_json(onnx_path, tmp_path)
    assert report["totals"]["energy"] == pytest.approx(result["final"]["energy"], rel=1e-6)
    pruned = json.loads((folder / "run" / "energy-pruned.json").read_text())
    # the layers carry the module paths, with the shapes of the shrunk model
    assert [lay["name"] for lay in report["layers"]] == [lay["name"] for lay in pruned["layers"]]
    assert f"nnjoules estimate {onnx_path} --batch 16 --densities " in output


def test_saved_module_loads_and_runs_without_nnjoules(channel_run) -> None:  # type: ignore[no-untyped-def]
    name, folder, _ = channel_run
    _, model, _ = load_model_file(folder / "run" / "model.pt")
    printed = loads_without_nnjoules(folder / "run", model)
    assert "(1, 28, 28)" in printed


def test_result_records_cpu_latency_of_dense_and_pruned(channel_run) -> None:  # type: ignore[no-untyped-def]
    _, folder, _ = channel_run
    latency = json.loads((folder / "run" / "result.json").read_text())["cpu_latency"]
    assert latency["unit"] == "ms per image" and "noisy" in latency["note"]
    assert latency["threads"] == 1 and latency["statistic"] == "median"  # --threads 1
    for key in ("dense", "pruned"):
        assert [lat["batch"] for lat in latency[key]] == [1, 16]
        assert all(lat["ms_per_image"] > 0 and lat["runs"] == 7 for lat in latency[key])


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fake-fmnist")
    write_fake_fashion_mnist(folder, n_train=10_600, n_test=100, gz=False)
    return folder


def test_weight_pruned_export_reproduces_energy_and_loads_without_nnjoules(
        fake_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Magnitude weight pruning of LeNet-5 at 8-bit operands: the zeros are folded into
    the exported weights; the ONNX estimate with the run's --bits equals its energy."""
    small = ["--train-limit", "600", "--val-limit", "200", "--test-limit", "100"]
    assert main(["train", "lenet5", "--epochs", "0.2", "--out", str(tmp_path / "m.pt"),
                 "--data-dir", str(fake_data), *small, "--quiet"]) == 0
    capsys.readouterr()
    assert main(["prune", str(tmp_path / "m.pt"), "--method", "magnitude", *ONE_ROUND,
                 "--rate", "0.5", "--bits", "8", "--data-dir", str(fake_data), *small,
                 "--out", str(tmp_path / "run"), "--export-onnx",
                 str(tmp_path / "lenet.onnx")]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    # random images: the reference is at chance, and the warning says so once, not twice
    assert abs(result["reference_accuracy"] - 0.10) <= 0.02
    assert capsys.readouterr().err.count("it has barely learnt") == 1
    report = estimate_json(tmp_path / "lenet.onnx", tmp_path, "--bits", "8")
    assert report["totals"]["energy"] == pytest.approx(result["final"]["energy"], rel=1e-6)
    assert report["totals"]["energy"] < result["history"][0]["energy"]
    _, model, _ = load_model_file(tmp_path / "run" / "model.pt")
    loads_without_nnjoules(tmp_path / "run", model)
    state = torch.load(tmp_path / "run" / "model-state-dict.pt", weights_only=True)
    assert not any(key.endswith(("_orig", "_mask")) for key in state)
    zeros = sum(int((v == 0).sum()) for k, v in state.items() if k.endswith("weight"))
    assert zeros == result["history"][0]["weights"] - result["final"]["nonzero_weights"]


def test_export_onnx_names_layers_by_module_path_and_keeps_their_shapes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = LeNet5().eval()
    path = export_onnx(model, tmp_path / "lenet.onnx", (1, 28, 28))
    from_onnx = nnjoules.estimate(path, batch=4, measure_density=False)
    from_torch = nnjoules.estimate(model, torch.randn(4, 1, 28, 28), measure_density=False)
    assert [item.name for item in from_onnx.layers] == \
        ["features.0", "features.3", "classifier.0", "classifier.2", "classifier.4"]
    assert [item.total for item in from_onnx.layers] == [item.total for item in from_torch.layers]
    assert not (tmp_path / "lenet.onnx.data").exists()  # one file, weights inside


class Branchy(nn.Module):
    """Python control flow on a tensor value: neither torch.fx nor torch.export trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 4, 3), nn.Conv2d(1, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a(x) if float(x.sum()) > 0 else self.b(x)


def test_untraceable_model_is_saved_as_itself_and_refused_by_onnx_export(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from nnjoules.errors import InputError
    from nnjoules.prune import save_module

    model = Branchy().eval()
    assert save_module(tmp_path / "m.pt", model) is False  # not standalone
    loaded = torch.load(tmp_path / "m.pt", weights_only=False)
    assert type(loaded) is Branchy
    with pytest.raises(InputError) as err:
        export_onnx(model, tmp_path / "b.onnx", (1, 8, 8))
    assert str(err.value) == ("cannot export the model to ONNX (torch.export must trace it: "
                              "no Python control flow on tensor values): TorchExportError: "
                              "Failed to export the model with torch.export")
    assert not list(tmp_path.glob("b.onnx*"))  # nothing half-written
    out, errors = capfd.readouterr()
    assert out == errors == ""  # the exporter's logs and graph dumps are kept back


@pytest.mark.parametrize("value, message", [
    ("pruned.pt", "--export-onnx pruned.pt: the file should end in .onnx"),
    ("missing/p.onnx", "--export-onnx missing/p.onnx: folder missing does not exist"),
])
def test_bad_export_path_is_refused_before_any_work(value: str, message: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["prune", "--out", "run", "--data-dir", "/nonexistent", "--export-onnx",
                 value]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_cpu_latency_grows_with_the_work_per_image() -> None:
    """A network with ~300x the MACs per image takes longer per image (median of runs)."""
    small = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 26 * 26, 10))
    large = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1),
                          nn.Flatten(), nn.Linear(64 * 28 * 28, 10))
    fast, slow = (cpu_latency(m, (1, 28, 28), batches=(4,), runs=3) for m in (small, large))
    assert slow[0].ms_per_image > 3 * fast[0].ms_per_image
    assert fast[0].batch == 4 and fast[0].runs == 3 and fast[0].threads == torch.get_num_threads()

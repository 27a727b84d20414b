"""Bad inputs a user writes: their own model code, densities files, output paths.

Each case is run through ``nnjoules.cli.main`` and must end in exactly one line on stderr,
``nnjoules: error: ...`` naming what is wrong, and exit code 2; never a traceback.
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from nnjoules.cli import main

USER_MODULE = textwrap.dedent("""
    import torch.nn as nn
    import sys

    def good():
        return nn.Sequential(nn.Linear(4, 3))

    def raises():
        raise RuntimeError("weights file missing\\nsecond line of the message")

    def needs(width):
        return nn.Linear(width, width)

    def exits():
        sys.exit(0)

    def not_a_module():
        return 42

    instance = nn.Linear(4, 2)
""")


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a failed run (asserts there is exactly one)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nnjoules: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A current folder holding the user's module ``usernets``, not on sys.path.

    ``sys.path`` is restored and the modules imported from the folder are forgotten.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    (tmp_path / "usernets.py").write_text(USER_MODULE)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name in ("usernets", "brokenmod", "shaped", "other"):
            del sys.modules[name]


def test_module_in_the_current_folder_is_found(user_folder: Path, capsys) -> None:
    # Linear(4, 3) on one item: 12 MACs, whether or not the folder was on sys.path before
    assert main(["estimate", "usernets:good", "--input-shape", "4", "--json", "r.json",
                 "--quiet"]) == 0
    import json

    assert json.loads((user_folder / "r.json").read_text())["totals"]["macs"] == 12


def test_python_file_path_spec(user_folder: Path, tmp_path: Path) -> None:
    sub = tmp_path / "nets"
    sub.mkdir()
    (sub / "other.py").write_text(USER_MODULE)
    assert main(["estimate", "nets/other.py:good", "--input-shape", "4", "--quiet"]) == 0


def test_a_module_instance_is_used_as_is(user_folder: Path, capsys) -> None:
    assert main(["estimate", "usernets:instance", "--input-shape", "4", "--quiet"]) == 0


@pytest.mark.parametrize(("spec", "message"), [
    ("usernets:raises", "usernets:raises: calling raises() failed: RuntimeError: weights file "
                        "missing"),
    ("usernets:needs", "usernets:needs: the factory needs argument(s) width; nnjoules calls it "
                       "with none"),
    ("usernets:exits", "usernets:exits: calling exits() failed: it called sys.exit(0)"),
    ("usernets:not_a_module", "usernets:not_a_module: expected a torch.nn.Module, got int"),
    ("usernets:missing", "usernets:missing: module 'usernets' has no 'missing'; it defines "),
    ("usernets:", "usernets:: expected package.module:factory or file.py:factory"),
    (":good", ":good: expected package.module:factory"),
    ("nosuchmodule_xyz:build", "nosuchmodule_xyz:build: no module named 'nosuchmodule_xyz' "
                               "in the current folder or on PYTHONPATH"),
    ("nets/none.py:good", "nets/none.py:good: no such Python file 'nets/none.py'"),
])
def test_user_code_failures_are_one_line_exit_2(user_folder: Path, capsys, spec: str,
                                                 message: str) -> None:
    assert main(["estimate", spec, "--input-shape", "4"]) == 2
    assert message in error_line(capsys)


@pytest.mark.parametrize(("source", "message"), [
    ("def build(:\n    pass\n", "importing 'brokenmod' failed: SyntaxError: "),
    ("import no_such_dependency_xyz\n", "importing 'brokenmod' failed: ModuleNotFoundError: "
                                        "No module named 'no_such_dependency_xyz'"),
    ("raise ValueError('bad config')\n", "importing 'brokenmod' failed: ValueError: bad config"),
    ("import sys\nsys.exit(3)\n", "importing 'brokenmod' failed: it called sys.exit(3)"),
])
def test_modules_that_fail_to_import(user_folder: Path, capsys, source: str,
                                     message: str) -> None:
    (user_folder / "brokenmod.py").write_text(source)
    assert main(["estimate", "brokenmod:build", "--input-shape", "4"]) == 2
    line = error_line(capsys)
    assert line.startswith("nnjoules: error: brokenmod:build: ")
    assert message in line


def test_syntax_error_names_file_and_line(user_folder: Path, capsys) -> None:
    (user_folder / "brokenmod.py").write_text("x = 1\ndef build(:\n")
    assert main(["estimate", "brokenmod:build", "--input-shape", "4"]) == 2
    assert f"({user_folder / 'brokenmod.py'}, line 2)" in error_line(capsys)


def test_bad_input_shape_attribute(user_folder: Path, capsys) -> None:
    (user_folder / "shaped.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        def build():
            net = nn.Linear(4, 3)
            net.input_shape = (4, -1)
            return net
    """))
    assert main(["estimate", "shaped:build"]) == 2
    assert "shaped:build: the model's input_shape must be positive integers" in \
        error_line(capsys)


# --densities --------------------------------------------------------------------------

@pytest.fixture
def two_layer_net(user_folder: Path) -> str:
    """``usernets:mlp``: Linear(4, 8) -> ReLU -> Linear(8, 2), layers ``0`` and ``2``."""
    with (user_folder / "usernets.py").open("a") as handle:
        handle.write("\ndef mlp():\n    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), "
                     "nn.Linear(8, 2))\n")
    return "usernets:mlp"


@pytest.mark.parametrize(("text", "message"), [
    ('{"0": {"weights": "0.5"}}', "layer '0': weights must be a number in [0, 1], got "
                                  '"0.5" (a string)'),
    ('{"0": {"weights": true}}', "layer '0': weights must be a number in [0, 1], got true "
                                 "(a boolean)"),
    ('{"0": {"ifmaps": false}}', "layer '0': ifmaps must be a number in [0, 1], got false"),
    ('{"0": {"ofmaps": 1.5}}', "layer '0': ofmaps must be a number in [0, 1], got 1.5"),
    ('{"0": {"weights": -0.1}}', "layer '0': weights must be a number in [0, 1], got -0.1"),
    ('{"0": {"weights": NaN}}', "NaN is not a density"),
    ('{"0": {"weights": Infinity}}', "Infinity is not a density"),
    ('{"0": {"weights": 1e400}}', "layer '0': weights must be a number in [0, 1], got "
                                  "Infinity"),
    ('{"0": {"weights": null}}', "got null (null)"),
    ('{"0": {"weight": 0.5}}', "layer '0': unknown field 'weight'; use weights, ifmaps, ofmaps"),
    ('{"0": 0.5}', "layer '0': expected an object like {\"weights\": 0.5}, got a number"),
    ('{"0": {}}', "layer '0': expected an object like"),
    ('[0.5]', "expected a JSON object {\"layer name\": {\"weights\": 0.5"),
    ('{}', "expected a JSON object"),
    ('{"0": {"weights": 0.5}, "0": {"ifmaps": 0.5}}', "duplicate key(s) '0'"),
    ('{"0": {"weights": 0.5}', "not valid JSON (Expecting ',' delimiter: line 1 column 23"),
    ('{"fc9": {"weights": 0.5}}', "no layer named 'fc9'; layers are 0, 2"),
])
def test_bad_densities_name_file_layer_and_field(two_layer_net: str, user_folder: Path, capsys,
                                                 text: str, message: str) -> None:
    path = user_folder / "d.json"
    path.write_text(text)
    assert main(["estimate", two_layer_net, "--input-shape", "4", "--densities",
                 str(path)]) == 2
    line = error_line(capsys)
    assert line.startswith(f"nnjoules: error: {path}: "), line
    assert message in line


@pytest.mark.parametrize("kind", ["binary", "folder", "missing"])
def test_densities_file_that_is_not_a_json_file(two_layer_net: str, user_folder: Path, capsys,
                                                kind: str) -> None:
    path = user_folder / "d.json"
    if kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    elif kind == "folder":
        path.mkdir()
    assert main(["estimate", two_layer_net, "--input-shape", "4", "--densities",
                 str(path)]) == 2
    expected = {"binary": "not a text file (not UTF-8 at byte 0)",
                "folder": "is a folder, not a densities file",
                "missing": "no such densities file"}[kind]
    assert error_line(capsys) == f"nnjoules: error: {path}: {expected}"


def test_densities_override_the_skipped_macs(two_layer_net: str, user_folder: Path) -> None:
    import json

    # Layer 0 is Linear(4, 8): 32 MACs. With weights at 0.25 and ifmaps at 0.5 and either
    # zero operand skipping a MAC, 32 * 0.25 * 0.5 = 4 MACs are performed.
    path = user_folder / "d.json"
    path.write_text('{"0": {"weights": 0.25, "ifmaps": 0.5}, "2": {"ofmaps": 1}}')
    out = user_folder / "r.json"
    assert main(["estimate", two_layer_net, "--input-shape", "4", "--densities", str(path),
                 "--json", str(out), "--quiet"]) == 0
    first = json.loads(out.read_text())["layers"][0]
    assert first["name"] == "0" and first["macs"] == 32
    assert first["density"]["weights"] == 0.25 and first["density"]["ifmaps"] == 0.5
    assert first["nonskipped_macs"] == pytest.approx(4.0)


@pytest.mark.parametrize("value", ["0.5", True, float("nan")])
def test_density_rejects_strings_bools_and_nan(value: object) -> None:
    from nnjoules.energy.workload import Density

    with pytest.raises(ValueError, match=r"Density.weights must be a number in \[0, 1\]"):
        Density(weights=value)  # type: ignore[arg-type]


# NaN and infinite values in weights and activations -----------------------------------

NON_FINITE_NETS = textwrap.dedent("""
    import torch
    import torch.nn as nn

    def mlp():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))

    def nan_weight():
        net = mlp()
        with torch.no_grad():
            net[2].weight[1, 3] = float("nan")
        return net

    def inf_weights():
        net = mlp()
        with torch.no_grad():
            net[0].weight[0, :2] = float("inf")
        return net

    def nan_bias():
        net = mlp()
        with torch.no_grad():
            net[0].bias[5] = float("nan")
        return net

    class Overflow(nn.Module):
        # finite weights; exp(fc1(x)) overflows float32 (exp(100) > 3.4e38)
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 8), nn.Linear(8, 2)
            with torch.no_grad():
                self.fc1.weight.zero_()
                self.fc1.bias.fill_(100.0)

        def forward(self, x):
            return self.fc2(torch.exp(self.fc1(x)))

    def overflow():
        return Overflow()
""")


@pytest.mark.parametrize(("factory", "message"), [
    ("nan_weight", "layer '2': weights hold 1 NaN or infinite value (of 16)"),
    ("inf_weights", "layer '0': weights hold 2 NaN or infinite values (of 32)"),
    # the bias is added inside the product: the layer's output is where it shows
    ("nan_bias", "layer '0': ofmaps hold 1 NaN or infinite value (of 8)"),
    ("overflow", "layer 'fc2': ifmaps hold 8 NaN or infinite values (of 8)"),
])
def test_non_finite_values_are_an_error_naming_the_layer(user_folder: Path, capsys,
                                                          factory: str, message: str) -> None:
    (user_folder / "nonfinite.py").write_text(NON_FINITE_NETS)
    assert main(["estimate", f"nonfinite:{factory}", "--input-shape", "4", "--json",
                 "r.json"]) == 2
    assert error_line(capsys) == f"nnjoules: error: {message}"
    assert not (user_folder / "r.json").exists()
    del sys.modules["nonfinite"]


def test_capture_error_leaves_no_unmodelled_op_behind() -> None:
    # the finiteness check runs torch ops on activations; none may be counted as the model's
    import torch
    from torch import nn

    from nnjoules.energy.extract import workload_from_module

    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    workload = workload_from_module(net, torch.randn(3, 4))
    # ReLU is the one operator that is not a product (no aten.isfinite, aten.sum, ...)
    assert [u.op for u in workload.unmodelled] == ["aten.relu"]


def test_onnx_initializer_with_nan_names_node_and_tensor(tmp_path: Path, capsys) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.ones((3, 4), dtype=np.float32)
    w[2, 1] = np.nan
    w[0, 0] = -np.inf
    gemm = helper.make_node("Gemm", ["x", "fc.weight"], ["y"], name="classifier", transB=1)
    graph = helper.make_graph(
        [gemm], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "fc.weight")])
    path = tmp_path / "nan.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    assert main(["estimate", str(path)]) == 2
    assert error_line(capsys) == (f"nnjoules: error: {path}: node 'classifier': weights "
                                  "'fc.weight' hold 2 NaN or infinite values (of 12)")


# sweep values: the bounds of the hardware file ---------------------------------------

@pytest.mark.parametrize(("setting", "message"), [
    ("mac_energy=1,1e308", "sweep parameter mac_energy: bad value '1e308': must be at most "
                           "1e+12 (larger totals would overflow)"),
    ("dram_energy=1e400", "sweep parameter dram_energy: bad value '1e400': expected a "
                          "non-negative number"),
    ("pe_array=12x14,1000000x1000000", "sweep parameter pe_array: bad value '1000000x1000000': "
                                       "1000000x1000000 is 1000000000000 PEs, more than the "
                                       "65536"),
    ("rf_bytes=1000000000000000000000", "sweep parameter rf_bytes: bad value "
                                        "'1000000000000000000000': must be at most "
                                        "1099511627776"),
    ("glb_kb=1e20", "sweep parameter glb_kb: bad value '1e20': must be at most 1073741824"),
    ("bits=nan", "sweep parameter bits: bad value 'nan': expected a positive number"),
])
def test_sweep_values_are_bounded_like_the_file(capsys, setting: str, message: str) -> None:
    # parsed before any model is loaded: the model name need not exist
    assert main(["sweep", "no-such-model", "--set", setting]) == 2
    assert message in error_line(capsys)


def test_sweep_energy_in_exponent_notation_is_read() -> None:
    from nnjoules.energy.sweep_params import parse_values

    assert parse_values("mac_energy", ["1e-3", "2.5E2"]) == (0.001, 250)


# Outputs that cannot be written: a full disk, a read-only folder ----------------------

# Runs the CLI with a file size limit: a write past it fails with EFBIG ("File too large"),
# exactly as a full disk fails with ENOSPC, and SIGXFSZ is ignored so that it is an error.
LIMITED_CLI = """
import resource, signal, sys
limit = int(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
from nnjoules.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_with_file_limit(limit_bytes: int, argv: list[str], cwd: Path) -> tuple[int, str]:
    """(exit code, stderr) of ``nnjoules argv`` in a process that cannot write files larger
    than ``limit_bytes``."""
    import os
    import subprocess

    import nnjoules

    env = {**os.environ, "PYTHONPATH": str(Path(nnjoules.__file__).parents[1]),
           "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", LIMITED_CLI, str(limit_bytes), *argv],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stderr


@pytest.mark.parametrize("option", ["--json", "--csv"])
def test_full_disk_while_writing_a_report(user_folder: Path, option: str) -> None:
    out = user_folder / "report.out"
    out.write_text("the user's earlier report\n")
    code, err = run_with_file_limit(
        200, ["estimate", "usernets:good", "--input-shape", "4", option, str(out), "--quiet"],
        cwd=user_folder)
    assert (code, err) == (2, f"nnjoules: error: {out}: cannot write (File too large); "
                              "nothing was written\n")
    assert out.read_text() == "the user's earlier report\n"  # untouched
    assert sorted(p.name for p in user_folder.iterdir()) == ["report.out", "usernets.py"]


def test_the_same_report_is_written_without_the_limit(user_folder: Path) -> None:
    # the control of the test above: only the size limit made it fail
    code, err = run_with_file_limit(
        10_000_000, ["estimate", "usernets:good", "--input-shape", "4", "--json", "r.json",
                     "--quiet"], cwd=user_folder)
    assert (code, err) == (0, "wrote r.json\n")
    import json

    assert json.loads((user_folder / "r.json").read_text())["totals"]["macs"] == 12


def test_full_disk_during_prune(tmp_path: Path) -> None:
    from test_data import write_fake_fashion_mnist

    data = tmp_path / "fmnist"
    data.mkdir()
    write_fake_fashion_mnist(data, n_train=10_400, n_test=200, gz=False)
    run = tmp_path / "run"
    code, err = run_with_file_limit(20_000, [
        "prune", "lenet5", "--data-dir", str(data), "--out", str(run), "--train-limit", "300",
        "--val-limit", "200", "--test-limit", "200", "--rounds", "1", "--finetune-epochs",
        "0.1", "--samples", "64", "--positions", "4", "--reference", "given", "--quiet"],
        cwd=tmp_path)
    assert code == 2
    # the fake data's labels are random: the shipped model is at chance on them (warned)
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.fullmatch(rf"nnjoules: error: {re.escape(str(run))}/[\w.-]+: cannot write "
                        r"\(File too large\); nothing was written", lines[0]), lines[0]
    # every file left in the run folder is whole: no temporary file, each under the limit
    assert all(not p.name.startswith(".") and p.stat().st_size <= 20_000 for p in run.iterdir())


@pytest.mark.parametrize("argv", [
    ["estimate", "usernets:good", "--input-shape", "4", "--json", "/sys/nnjoules-test.json"],
    ["estimate", "usernets:good", "--input-shape", "4", "--plot", "/sys/nnjoules-test/plots"],
    ["prune", "lenet5", "--out", "/sys/nnjoules-test/run", "--rounds", "1"],
])
def test_output_under_a_folder_nobody_may_write(user_folder: Path, capsys,
                                                argv: list[str]) -> None:
    # /sys refuses new files even to root, for whom os.access() says every folder is writable
    assert main([*argv, "--quiet"]) == 2
    line = error_line(capsys)
    assert line.startswith("nnjoules: error: /sys/nnjoules-test")
    assert line.endswith(("(Permission denied)", "Operation not permitted",
                          "(Operation not permitted)", "Permission denied")), line


def test_two_sweeps_in_one_folder_keep_their_plots(user_folder: Path, capsys) -> None:
    for name in ("small", "large"):
        assert main(["sweep", "usernets:good", "--input-shape", "4", "--set", "glb_kb=32,64",
                     "--csv", f"{name}.csv", "--quiet"]) == 0
    written = sorted(p.name for p in user_folder.iterdir() if p.suffix in (".csv", ".png"))
    assert written == ["large-latency.png", "large.csv", "large.png", "small-latency.png",
                       "small.csv", "small.png"]


# model files of `nnjoules train`/`prune`, and inputs too large to run -------------------

SHIPPED = Path(__file__).parents[1] / "src" / "nnjoules" / "models" / "lenet5-fashion-mnist.pt"


def test_estimate_reads_a_model_file(tmp_path: Path) -> None:
    import json
    import shutil

    path = tmp_path / "lenet.pt"
    shutil.copy(SHIPPED, path)
    out = tmp_path / "r.json"
    assert main(["estimate", str(path), "--json", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    # LeNet-5 on 1x28x28: conv 6x28x28x25, conv 16x10x10x(6x25), FC 400x120, 120x84, 84x10
    assert data["totals"]["macs"] == 6 * 28 * 28 * 25 + 16 * 10 * 10 * 6 * 25 + 400 * 120 \
        + 120 * 84 + 84 * 10 == 416_520
    assert data["network"] == "lenet"


@pytest.mark.parametrize("content", ["truncated", "random"])
def test_broken_model_file_is_one_line(tmp_path: Path, capsys, content: str) -> None:
    import random

    path = tmp_path / "broken.pt"
    data = SHIPPED.read_bytes()
    path.write_bytes(data[:3000] if content == "truncated"
                     else random.Random(0).randbytes(3000))
    assert main(["estimate", str(path)]) == 2
    assert error_line(capsys).startswith(f"nnjoules: error: {path}: not a model file of nnjoules")


@pytest.mark.parametrize(("argv", "message"), [
    (["--batch", "100000000", "--input-shape", "4"],
     "--batch 100000000 x --input-shape 4 is 400,000,000 input values; at most 268,435,456"),
    (["--batch", "70000", "--input-shape", "4,1000"], "is 280,000,000 input values"),
])
def test_input_too_large_to_run(user_folder: Path, capsys, argv: list[str],
                                message: str) -> None:
    assert main(["estimate", "usernets:good", *argv]) == 2
    assert message in error_line(capsys)


def test_a_folder_named_like_an_onnx_file(user_folder: Path, capsys) -> None:
    (user_folder / "x.onnx").mkdir()
    assert main(["estimate", "x.onnx"]) == 2
    assert error_line(capsys) == "nnjoules: error: x.onnx: is a folder, not an ONNX file"

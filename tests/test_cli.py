"""The ``nnjoules estimate`` command: output, JSON, and every bad input's message and exit code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from nnjoules.cli import main


def test_estimate_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "alexnet.json"
    assert main(["estimate", "alexnet", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "alexnet on eyeriss (energy unit: normalized)" in table
    for name in ("features.0", "features.10", "classifier.6", "total"):
        assert name in table
    data = json.loads(out.read_text())
    assert data["totals"]["macs"] == 714_188_480
    assert [layer["name"] for layer in data["layers"]][0] == "features.0"
    assert data["unmodelled_ops"]["aten.max_pool2d_with_indices"] == 3


def test_batch_bits_and_hardware_options(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["estimate", "squeezenet1_0", "--batch", "2", "--bits", "8,8,16",
                 "--hardware", "eyeriss-isca2016", "--input-shape", "3,96,96",
                 "--compression", "rlc", "--json", str(out), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    data = json.loads(out.read_text())
    first = data["layers"][0]
    assert first["shape"]["N"] == 2 and first["shape"]["H"] == 96
    assert first["bits"] == {"weights": 8, "ifmaps": 8, "ofmaps": 16}
    assert data["hardware"]["name"] == "eyeriss-isca2016" and data["compression"] == "rlc"


def test_factory_and_onnx_models(tmp_path, monkeypatch, capsys):
    (tmp_path / "mynets.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        def build():
            return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(4 * 26 * 26, 10))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["estimate", "mynets:build", "--input-shape", "1,28,28", "--quiet"]) == 0
    assert main(["estimate", "mynets:build"]) == 2
    assert "give --input-shape" in capsys.readouterr().err
    import mynets

    path = tmp_path / "net.onnx"
    torch.onnx.export(mynets.build().eval(), (torch.randn(1, 1, 28, 28),), str(path),
                      dynamo=True)
    out = tmp_path / "onnx.json"
    assert main(["estimate", str(path), "--json", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert data["totals"]["macs"] == 4 * 26 * 26 * 9 + 4 * 26 * 26 * 10


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["estimate", "alexnett"], 2, "unknown model 'alexnett'.*did you mean alexnet"),
    (["estimate", "missing.onnx"], 2, "missing.onnx: no such ONNX file"),
    (["estimate", "nosuchpkg.mod:make"], 2, "no module named 'nosuchpkg.mod' in the current"),
    (["estimate", "alexnet", "--hardware", "nosuch.yaml"], 2, "nosuch.yaml: file not found"),
    (["estimate", "alexnet", "--densities", "nope.json"], 2, "nope.json: no such densities"),
])
def test_bad_input_names_what_is_wrong(argv, code, message, capsys):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("nnjoules: error: ")
    assert re.search(message, err), err


def test_bad_hardware_field_names_file_and_field(tmp_path, capsys):
    from nnjoules.energy.hardware import eyeriss
    from nnjoules.energy.hardware_io import dump_hardware

    bad = tmp_path / "chip.yaml"

    dump_hardware(eyeriss(), bad)
    bad.write_text(bad.read_text().replace("size_bytes: 110592", "size_bytes: -5"))
    assert main(["estimate", "alexnet", "--hardware", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "chip.yaml" in err and "global_buffer.size_bytes" in err


def test_unmappable_layer_exits_1_naming_layer_and_constraint(tmp_path, capsys):
    from nnjoules.energy.hardware import eyeriss
    from nnjoules.energy.hardware_io import dump_hardware

    small = tmp_path / "small.yaml"
    dump_hardware(eyeriss(), small)
    small.write_text(small.read_text().replace("rows: 12", "rows: 2").replace("cols: 14",
                                                                                "cols: 4"))
    assert main(["estimate", "alexnet", "--hardware", str(small)]) == 1
    err = capsys.readouterr().err
    assert "layer 'features.0'" in err and "array: R*e*r*t = 11 PEs > 8" in err


@pytest.mark.parametrize("argv", [["estimate", "alexnet", "--bits", "0"],
                                  ["estimate", "alexnet", "--batch", "-1"],
                                  ["estimate", "alexnet", "--input-shape", "3,x,2"],
                                  ["estimate", "alexnet", "--compression", "zip"],
                                  ["frobnicate"]])
def test_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_console_script_gives_no_traceback_for_user_errors():
    run = subprocess.run([sys.executable, "-m", "nnjoules.cli", "estimate", "vgg17"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "unknown model 'vgg17'" in run.stderr

"""The ``nnjoules estimate`` command: output, JSON, and every bad input's message and exit code."""

from __future__ import annotations

import argparse
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
    from nnjoules.energy.hardware.loading import dump_hardware

    bad = tmp_path / "chip.yaml"

    dump_hardware(eyeriss(), bad)
    bad.write_text(bad.read_text().replace("size_bytes: 110592", "size_bytes: -5"))
    assert main(["estimate", "alexnet", "--hardware", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "chip.yaml" in err and "global_buffer.size_bytes" in err


def test_unmappable_layer_exits_1_naming_layer_and_constraint(tmp_path, capsys):
    from nnjoules.energy.hardware import eyeriss
    from nnjoules.energy.hardware.loading import dump_hardware

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
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nnjoules") and " error: " in err
    assert err.rstrip().endswith("--help`)")


def test_console_script_gives_no_traceback_for_user_errors():
    run = subprocess.run([sys.executable, "-m", "nnjoules.cli", "estimate", "vgg17"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "unknown model 'vgg17'" in run.stderr


def _subparsers():
    """Every subcommand's parser, by name (as ``nnjoules --help`` lists them)."""
    from nnjoules.cli import COMMANDS, _parser

    parser = _parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(sub.choices) == sorted(COMMANDS)
    return sub.choices


def _help_entries(text: str) -> dict[str, str]:
    """``--option METAVAR`` (or positional) -> its help text, read from ``--help`` output."""
    entries: dict[str, list[str]] = {}
    current, listing = None, False
    for line in text.splitlines():
        if re.match(r"\S", line):  # a section: options, or the description's text
            listing = line in ("options:", "positional arguments:")
            current = None
        elif not listing:
            continue
        elif re.match(r"  \S", line):
            invocation, _, rest = line.strip().partition("  ")
            current = invocation
            entries[current] = [rest.strip()]
        elif line.startswith("   ") and current is not None:
            entries[current].append(line.strip())
        else:
            current = None
    return {k: " ".join(v).strip() for k, v in entries.items()}


@pytest.mark.parametrize("command", ["estimate", "compare", "sweep", "train", "prune", "demo"])
def test_every_option_of_every_subcommand_shows_its_default(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # no hyphenated line breaks inside a default
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    entries = _help_entries(capsys.readouterr().out)
    actions = {s: a for a in _subparsers()[command]._actions
               for s in (a.option_strings or [a.metavar or a.dest])}
    checked = 0
    for invocation, text in entries.items():
        first = invocation.split(",")[0].split()
        action = actions[first[0]]
        if action.nargs == 0 or (not action.option_strings and action.nargs != "?"):
            continue  # a flag (off unless given) or a required positional
        bracket = re.search(r"\[([^\[\]]*)\]$", text)
        assert bracket, f"{command} {invocation}: no [default] in {text!r}"
        checked += 1
        if action.required:
            assert bracket.group(1) == "required", (command, invocation)
        if action.default is None:
            continue
        token = re.split(r"[ ;]|:(?= )", bracket.group(1))[0]
        value = action.type(token) if callable(action.type) else token
        assert value == action.default, (command, invocation, bracket.group(1))
    assert checked >= 5


@pytest.fixture
def factory(tmp_path, monkeypatch):
    """``outnets:build``, a small CNN in a module of tmp_path."""
    (tmp_path / "outnets.py").write_text(textwrap.dedent("""
        import torch.nn as nn
        def build():
            return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(4 * 6 * 6, 10))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "outnets:build"


def test_estimate_says_what_it_wrote_and_names_the_network_as_typed(factory, tmp_path, capsys):
    paths = {"--json": tmp_path / "r.json", "--csv": tmp_path / "r.csv",
             "--html": tmp_path / "r.html", "--plot": tmp_path / "charts"}
    argv = ["estimate", factory, "--input-shape", "1,8,8", "--bits", "8,8,16"]
    assert main([*argv, *(x for kv in paths.items() for x in map(str, kv))]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("outnets:build on eyeriss")
    assert "bits          weights 8, ifmaps 8, ofmaps 16" in captured.out
    written = [line.removeprefix("wrote ") for line in captured.err.splitlines()
               if line.startswith("wrote ")]
    assert written[:3] == [str(paths["--json"]), str(paths["--csv"]), str(paths["--html"])]
    charts = [p for p in written[3:] if p.startswith(str(paths["--plot"]))]
    assert charts and sorted(charts) == sorted(str(p) for p in paths["--plot"].iterdir())
    assert all(p.rpartition("/")[2].startswith("outnets_build-") for p in charts)
    assert all(p.exists() for p in paths.values())
    assert json.loads(paths["--json"].read_text())["network"] == "outnets:build"


def test_compare_and_sweep_say_what_they_wrote(factory, tmp_path, capsys):
    out = {k: tmp_path / f"c.{k}" for k in ("json", "csv", "png")}
    assert main(["compare", factory, "--hardware", "eyeriss", "--hardware",
                 "eyeriss-isca2016", "--input-shape", "1,8,8", "--quiet",
                 "--json", str(out["json"]), "--csv", str(out["csv"]),
                 "--plot", str(out["png"])]) == 0
    err = capsys.readouterr().err
    assert [f"wrote {out[k]}" for k in ("json", "csv", "png")] == [
        line for line in err.splitlines() if line.startswith("wrote ")]
    entries = json.loads(out["json"].read_text())["entries"]
    assert [e["network"] for e in entries] == ["outnets:build", "outnets:build"]
    sweep = {k: tmp_path / f"s.{k}" for k in ("json", "csv", "svg")}
    assert main(["sweep", factory, "--set", "glb_kb=32,64", "--input-shape", "1,8,8",
                 "--quiet", "--json", str(sweep["json"]), "--csv", str(sweep["csv"]),
                 "--plot", str(sweep["svg"])]) == 0
    err = capsys.readouterr().err
    assert sorted(line for line in err.splitlines() if line.startswith("wrote ")) == sorted(
        f"wrote {p}" for p in [*sweep.values(), tmp_path / "s-latency.svg"])
    assert json.loads(sweep["json"].read_text())["network"] == "outnets:build"


def test_torchvision_network_is_named_as_typed(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["estimate", "resnet18", "--input-shape", "3,32,32", "--json", str(out)]) == 0
    assert capsys.readouterr().out.startswith("resnet18 on eyeriss")
    assert json.loads(out.read_text())["network"] == "resnet18"

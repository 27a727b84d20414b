"""What a first-time user reads: one-line usage errors, batch and per-item energy, where
densities come from, the hardware's word width, built-in names, early refusals."""

from __future__ import annotations

import json

import pytest

from nnjoules.cli import main
from nnjoules.energy.hardware import eyeriss
from nnjoules.energy.hardware.loading import hardware_to_dict
from nnjoules.report.table import si

TINY = ["fuzz_models:tiny", "--input-shape", "2,4"]  # Linear(4,3) - ReLU - Linear(3,2)


def test_usage_errors_are_one_line_naming_the_option(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["estimate", "alexnet", "--bits", "abc"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err == ("nnjoules estimate: error: argument --bits: bad bit-width 'abc': invalid "
                   "literal for int() with base 10: 'abc' (see `nnjoules estimate --help`)\n")


def test_table_states_the_batch_and_the_energy_per_item(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["estimate", *TINY, "--batch", "4", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    total = json.loads(out.read_text())["totals"]["energy"]
    # a linear layer on [4, 2, 4] inputs runs 8 rows: the items are still 4
    assert "batch         4 input items, costed together; layer N (rows) 8" in text
    assert f"for the batch; per item {si(total / 4)} (" in text


def test_reports_say_densities_come_from_random_inputs(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["estimate", *TINY, "--json", str(out), "--seed", "3", "--quiet"]) == 0
    (note,) = json.loads(out.read_text())["notes"]
    assert note.startswith("activation densities measured on random N(0, 1) inputs (seed 3)")
    assert main(["estimate", *TINY, "--json", str(out), "--dense", "--quiet"]) == 0
    assert json.loads(out.read_text())["notes"] == []
    # --densities giving every layer's ifmaps and ofmaps leaves no measured activation
    layers = [lay["name"] for lay in json.loads(out.read_text())["layers"]]
    given = tmp_path / "d.json"
    given.write_text(json.dumps({name: {"ifmaps": 0.5, "ofmaps": 0.5} for name in layers}))
    assert main(["estimate", *TINY, "--json", str(out), "--densities", str(given),
                 "--quiet"]) == 0
    assert json.loads(out.read_text())["notes"] == []
    given.write_text(json.dumps({layers[0]: {"ifmaps": 0.5, "ofmaps": 0.5}}))  # one only
    assert main(["estimate", *TINY, "--json", str(out), "--densities", str(given),
                 "--quiet"]) == 0
    (note,) = json.loads(out.read_text())["notes"]
    assert note.startswith("activation densities measured on random N(0, 1) inputs")


def test_operands_take_the_hardware_word_width_unless_bits_is_given(tmp_path, capsys):
    import yaml

    doc = hardware_to_dict(eyeriss())
    doc.update(name="eight", word_bits=8)
    path = tmp_path / "eight.yaml"
    path.write_text(yaml.safe_dump(doc))
    runs = {}
    for extra in ([], ["--bits", "8"], ["--bits", "16"]):
        out = tmp_path / "r.json"
        assert main(["estimate", *TINY, "--hardware", str(path), "--json", str(out),
                     "--quiet", *extra]) == 0
        doc_out = json.loads(out.read_text())
        runs[" ".join(extra)] = (doc_out["layers"][0]["bits"], doc_out["totals"]["energy"])
    assert runs[""][0] == {"weights": 8, "ifmaps": 8, "ofmaps": 8}
    assert runs[""] == runs["--bits 8"]
    assert runs["--bits 16"][0] == {"weights": 16, "ifmaps": 16, "ofmaps": 16}
    assert runs["--bits 16"][1] > runs[""][1]


def test_builtin_networks_estimate_by_name(tmp_path, capsys):
    """The shipped LeNet-5: conv 1->6 5x5 on 28x28 (padded), conv 6->16 5x5 on 14x14, FC
    400-120-84-10."""
    out = tmp_path / "r.json"
    assert main(["estimate", "lenet5", "--json", str(out), "--quiet"]) == 0
    macs = 6 * 28 * 28 * 25 + 16 * 10 * 10 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10
    doc = json.loads(out.read_text())
    assert doc["network"] == "lenet5" and doc["totals"]["macs"] == macs == 416_520


def test_compare_refuses_mixed_units_before_loading_any_model(tmp_path, capsys):
    import yaml

    doc = hardware_to_dict(eyeriss())
    doc.update(name="pj-chip", unit="pJ")
    path = tmp_path / "pj.yaml"
    path.write_text(yaml.safe_dump(doc))
    # the model does not exist: the units are checked first
    assert main(["compare", "nosuchmodel", "--hardware", "eyeriss", "--hardware",
                 str(path)]) == 2
    assert capsys.readouterr().err == (
        "nnjoules: error: cannot compare energies in different units (normalized, pJ): give "
        "--hardware descriptions that share a unit\n")


def test_compare_names_same_stem_models_by_path(tmp_path, capsys):
    from nnjoules.models.builtin import pretrained
    from nnjoules.prune.modelio import save_model

    for folder in ("a", "b"):
        save_model(tmp_path / folder / "model.pt", pretrained("lenet5"), name="lenet5",
                   num_classes=10)
    out = tmp_path / "c.json"
    assert main(["compare", str(tmp_path / "a" / "model.pt"), str(tmp_path / "b" / "model.pt"),
                 "--json", str(out), "--quiet"]) == 0
    labels = [entry["label"] for entry in json.loads(out.read_text())["entries"]]
    assert labels == [str(tmp_path / "a" / "model.pt"), str(tmp_path / "b" / "model.pt")]


@pytest.mark.parametrize("args, message", [
    (["--set", "bits=8,16", "--bits", "4"], "--bits and --set bits=... both set it: give one"),
    (["--set", "batch=1,2", "--batch", "8"], "--batch and --set batch=... both set it: give one"),
    (["--set", "weight_bits=8", "--bits", "4"],
     "--bits and --set weight_bits=... both set it: give one"),
    (["--set", "dataflow=RS,OS-B", "--dataflow", "WS"],  # the grid would win silently
     "--dataflow and --set dataflow=... both set it: give one"),
    (["--set", "compression=none", "--compression", "rlc"],
     "--compression and --set compression=... both set it: give one"),
])
def test_sweep_refuses_an_option_the_grid_also_sets(tmp_path, capsys, args, message):
    assert main(["sweep", *TINY, "--csv", str(tmp_path / "s.csv"), *args]) == 2
    assert capsys.readouterr().err == f"nnjoules: error: {message}\n"

"""compare and sweep: every number equals a direct estimate; bad input exits with 2."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import pytest

from nnjoules.cli import main
from nnjoules.energy.cost import Compression
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import PEArray, eyeriss, eyeriss_isca2016
from nnjoules.energy.hardware.loading import load_hardware
from nnjoules.energy.results import Totals
from nnjoules.energy.sweep import parse_settings, sweep
from nnjoules.energy.workload import Precision
from nnjoules.errors import InputError
from nnjoules.report.compare import compare
from toy_reports import toy_report, toy_workload

ROOT = Path(__file__).resolve().parents[1]
PJ_HARDWARE = ROOT / "examples" / "hardware" / "eyeriss-like-45nm-pj.yaml"
SMALL = ["--input-shape", "3,64,64"]


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# ---------------------------------------------------------------------------- compare


def test_compare_totals_and_ratios_equal_direct_estimates():
    small, large = toy_report("small"), toy_report("large", scale=2)
    result = compare([small, large])
    assert result.labels == ("small", "large")
    ratios = result.ratios()
    assert ratios[0] == dict.fromkeys(ratios[0], 1.0)
    assert ratios[1]["energy"] == pytest.approx(large.total() / small.total(), rel=1e-12)
    assert ratios[1]["weights"] == large.weights() / small.weights()
    assert ratios[1]["nonskipped_macs"] == pytest.approx(
        large.nonskipped_macs() / small.nonskipped_macs())
    rows = read_csv(result.to_csv())
    for row, report in zip(rows, (small, large), strict=True):
        assert float(row["energy"]) == report.total()
        assert int(row["macs"]) == report.macs()
        assert float(row["energy_dram"]) == report.by_level()["dram"]
        assert float(row["energy_psums"]) == report.by_operand()["psums"]
    assert float(rows[1]["energy_ratio"]) == ratios[1]["energy"]
    data = json.loads(result.to_json())
    assert data["kind"] == "comparison" and data["baseline"] == "small"
    assert data["entries"][1]["report"] == json.loads(large.to_json())
    table = result.to_table()
    assert "ratio to small" in table and f"{ratios[1]['energy']:.2f}x" in table


def test_compare_one_network_on_several_hardware_labels_by_hardware():
    reports = [toy_report(hardware=eyeriss()), toy_report(hardware=eyeriss_isca2016())]
    assert compare(reports).labels == ("eyeriss", "eyeriss-isca2016")
    same = [toy_report(), toy_report()]
    assert compare(same).labels == ("toy on eyeriss #1", "toy on eyeriss #2")


def test_compare_refuses_mixed_units_and_bad_labels():
    pj = toy_report(hardware=load_hardware(PJ_HARDWARE))
    with pytest.raises(InputError, match="different units"):
        compare([toy_report(), pj])
    with pytest.raises(InputError, match="unique"):
        compare([toy_report(), toy_report("b")], labels=["x", "x"])
    with pytest.raises(InputError, match="at least one"):
        compare([])


# ---------------------------------------------------------------------------- sweep


def test_every_sweep_point_equals_a_direct_estimate():
    workload = toy_workload()
    result = sweep(workload, {"glb_kb": ["4", "108"], "bits": ["8", "16"],
                              "pe_array": ["8x8", "12x14"]})
    assert len(result.points) == 8
    assert [p.index for p in result.points] == list(range(8))
    assert [(p.settings["glb_kb"], p.settings["bits"], p.settings["pe_array"])
            for p in result.points[:3]] == [(4, 8, (8, 8)), (4, 8, (12, 14)), (4, 16, (8, 8))]
    base = eyeriss()
    for point in result.points:
        glb_kb, bits, (rows, cols) = (point.settings[k] for k in ("glb_kb", "bits", "pe_array"))
        hw = replace(base, glb=replace(base.glb, size_bytes=glb_kb * 1024),
                     pe_array=PEArray(rows, cols))
        direct = estimate_workload(workload.with_precision(Precision(bits, bits, bits)), hw)
        assert point.hardware == hw
        assert point.totals == Totals.of(direct)
    rows = read_csv(result.to_csv())
    assert [float(r["energy"]) for r in rows] == [p.totals.energy for p in result.points]
    assert rows[0]["pe_array"] == "8x8" and rows[0]["glb_kb"] == "4"
    best = result.best()
    assert best is not None
    assert best.totals.energy == min(p.totals.energy for p in result.points)


def test_sweep_energies_rf_sizes_and_compression():
    workload = toy_workload()
    result = sweep(workload, {"dram_energy": ["100"], "rf_energy": ["2"], "mac_energy": ["0.5"],
                              "rf_weights_bytes": ["64", "448"], "compression": ["none", "rlc"]},
                   hardware="eyeriss")
    base = eyeriss()
    for point in result.points:
        rf = base.rf
        cost = replace(rf.weights, read=2.0, write=2.0)
        hw = replace(base, dram=replace(base.dram, read=100.0, write=100.0), mac=0.5,
                     rf=replace(rf, weights=cost, ifmaps=cost, psums=cost,
                                weights_bytes=point.settings["rf_weights_bytes"]))
        direct = estimate_workload(workload, hw, compression=point.settings["compression"])
        assert point.hardware == hw
        assert point.totals == Totals.of(direct)


def test_sweep_in_worker_processes_keeps_grid_order():
    grid = {"glb_kb": ["8", "32", "108"], "pe_array": ["8x8", "16x16"]}
    here = sweep(toy_workload(), grid)
    seen = []
    pooled = sweep(toy_workload(), grid, jobs=2, progress=lambda done, total: seen.append(
        (done, total)))
    assert pooled.rows() == here.rows()
    assert seen == [(i, 6) for i in range(1, 7)]


def test_sweep_batch_extracts_once_per_batch_value():
    calls = []

    def at(batch: int):
        calls.append(batch)
        workload = toy_workload()
        return replace(workload, layers=tuple(replace(layer, N=batch)
                                              for layer in workload.layers))

    result = sweep(at, {"batch": ["1", "4"], "glb_kb": ["32", "64", "108"]})
    assert calls == [1, 4]
    for point in result.points:
        assert point.batch == point.settings["batch"]
        assert point.energy_per_item == point.totals.energy / point.batch
    with pytest.raises(InputError, match="fixed at its batch size"):
        sweep(toy_workload(), {"batch": ["2"]})


def test_unmappable_points_are_reported_not_fatal():
    result = sweep(toy_workload(), {"rf_weights_bytes": ["1", "448"]})
    failed, ok = result.points
    assert failed.totals is None and "conv1" in (failed.error or "")
    assert ok.totals is not None and result.best() is ok
    rows = read_csv(result.to_csv())
    assert rows[0]["energy"] == "" and rows[0]["error"]
    assert rows[1]["error"] == "" and float(rows[1]["energy"]) == ok.totals.energy
    assert "no mapping" in result.to_table()
    (ax,) = result.plot().axes
    (line,) = ax.get_lines()
    assert math.isnan(line.get_ydata()[0]) and line.get_ydata()[1] == ok.totals.energy


def test_sweep_plot_lines_are_the_point_energies():
    result = sweep(toy_workload(), {"glb_kb": ["4", "16", "108"], "bits": ["8", "16"]})
    glb_ax, bits_ax = result.plot().axes
    lines = {line.get_label(): list(line.get_ydata()) for line in glb_ax.get_lines()}
    energy = {(p.settings["glb_kb"], p.settings["bits"]): p.totals.energy
              for p in result.points}
    assert lines == {f"bits={b}": [energy[g, b] for g in (4, 16, 108)] for b in (8, 16)}
    assert list(glb_ax.get_lines()[0].get_xdata()) == [4, 16, 108]
    assert "energy per item" in glb_ax.get_ylabel() and "normalized" in glb_ax.get_ylabel()
    assert glb_ax.get_xlabel().startswith("glb_kb")
    assert len(bits_ax.get_lines()) == 3


@pytest.mark.parametrize(("settings", "message"), [
    ([], "nothing to sweep"),
    (["glb_kb"], "expected NAME=V1"),
    (["glbkb=32"], "unknown sweep parameter 'glbkb' .did you mean 'glb_kb'"),
    (["glb_kb="], "empty value list"),
    (["glb_kb=32,,64"], "empty value list"),
    (["glb_kb=big"], "bad value 'big'"),
    (["glb_kb=-1"], "positive"),
    (["glb_kb=0.0001"], "whole number of bytes"),
    (["bits=65"], r"\[1, 64\]"),
    (["pe_array=12"], "ROWSxCOLS"),
    (["compression=zip"], "significance-map"),
    (["bits=8,8"], "given twice"),
    (["bits=8", "bits=16"], "given twice"),
])
def test_bad_settings_are_input_errors(settings, message):
    with pytest.raises(InputError, match=message):
        parse_settings(settings)


def test_hardware_that_cannot_take_a_setting_fails_before_extraction():
    def never(batch: int):
        raise AssertionError("extracted before checking the hardware settings")

    with pytest.raises(InputError, match="split scratch pads: sweep rf_weights_bytes"):
        sweep(never, {"rf_bytes": ["512"]})
    with pytest.raises(InputError, match="one unified register file: sweep rf_bytes"):
        sweep(never, {"rf_psums_bytes": ["512"]}, hardware="eyeriss-isca2016")


# ---------------------------------------------------------------------------- CLI


def test_cli_sweep_writes_csv_plot_json_that_match_direct_estimates(tmp_path, capsys):
    from nnjoules.commands.common import load_workload

    out = tmp_path / "s.csv"
    code = main(["sweep", "squeezenet1_0", *SMALL, "--set", "glb_kb=32,108",
                 "--set", "bits=8,16", "--csv", str(out), "--plot", str(tmp_path / "s.svg"),
                 "--json", str(tmp_path / "s.json")])
    assert code == 0
    captured = capsys.readouterr()
    assert "squeezenet1_0 on eyeriss: sweep of 4 points" in captured.out
    assert "wrote" in captured.err
    rows = read_csv(out.read_text())
    workload = load_workload("squeezenet1_0", batch=1, input_shape=(3, 64, 64), seed=0,
                             dense=False, precision=None)
    for row in rows:
        hw = eyeriss()
        hw = replace(hw, glb=replace(hw.glb, size_bytes=int(row["glb_kb"]) * 1024))
        bits = int(row["bits"])
        direct = estimate_workload(workload.with_precision(Precision(bits, bits, bits)), hw)
        assert float(row["energy"]) == direct.total()
        assert int(row["macs"]) == direct.macs()
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")
    assert len(json.loads((tmp_path / "s.json").read_text())["points"]) == 4


def test_cli_compare_networks_and_hardware_match_direct_estimates(tmp_path, capsys):
    from nnjoules.commands.common import load_workload

    code = main(["compare", "squeezenet1_0", "squeezenet1_1", *SMALL, "--bits", "8",
                 "--csv", str(tmp_path / "c.csv"), "--json", str(tmp_path / "c.json"),
                 "--plot", str(tmp_path / "c.png")])
    assert code == 0
    assert "ratio to squeezenet1_0" in capsys.readouterr().out
    rows = read_csv((tmp_path / "c.csv").read_text())
    direct = [estimate_workload(load_workload(name, batch=1, input_shape=(3, 64, 64), seed=0,
                                              dense=False, precision=Precision(8, 8, 8)),
                                eyeriss()) for name in ("squeezenet1_0", "squeezenet1_1")]
    assert [float(r["energy"]) for r in rows] == [d.total() for d in direct]
    assert float(rows[1]["energy_ratio"]) == direct[1].total() / direct[0].total()
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")

    assert main(["compare", "squeezenet1_1", *SMALL, "--dense", "--hardware", "eyeriss",
                 "--hardware", "eyeriss-isca2016", "--csv", str(tmp_path / "h.csv")]) == 0
    rows = read_csv((tmp_path / "h.csv").read_text())
    assert [r["label"] for r in rows] == ["eyeriss", "eyeriss-isca2016"]
    workload = load_workload("squeezenet1_1", batch=1, input_shape=(3, 64, 64), seed=0,
                             dense=True, precision=None)
    assert float(rows[1]["energy"]) == estimate_workload(workload, eyeriss_isca2016()).total()
    assert all(float(r["nonzero_weights"]) == float(r["weights"]) for r in rows)  # --dense


@pytest.mark.parametrize(("argv", "message"), [
    (["sweep", "alexnet", "--set", "glb_kb="], "empty value list"),
    (["sweep", "alexnet", "--set", "cache_kb=3"], "unknown sweep parameter 'cache_kb'"),
    (["sweep", "alexnet", "--set", "glb_kb=1", "--csv", "/no/such/dir/s.csv"],
     "--csv /no/such/dir/s.csv: folder /no/such/dir does not exist"),
    (["sweep", "alexnet", "--set", "glb_kb=1", "--plot", "s.pdf"], ".png or .svg"),
    (["sweep", "alexnet", "--set", "rf_bytes=64"], "split scratch pads"),
    (["sweep", "alexnet", "--set", "glb_kb=1", "--hardware", "nope"], "unknown hardware"),
    (["compare", "alexnet"], "two or more entries"),
    (["compare", "alexnet", "vgg11", "--json", "/no/such/dir/c.json"], "does not exist"),
    (["compare", "alexnet", "vgg11", "--plot", "c.gif"], ".png or .svg"),
    (["compare", "alexnet", "nosuchnet"], "unknown model 'nosuchnet'"),
    (["estimate", "alexnet", "--html", "/no/such/dir/r.html"], "does not exist"),
    (["estimate", "alexnet", "--csv", "/no/such/dir/r.csv"], "does not exist"),
])
def test_cli_bad_input_exits_2_with_a_clear_message(argv, message, capsys, tmp_path,
                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_estimate_plot_into_a_file_path_exits_2(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert main(["estimate", "alexnet", "--plot", str(tmp_path / "f")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_cli_estimate_writes_csv_html_and_plots(tmp_path, capsys):
    """The output options of ``estimate`` on a real built-in network: each file holds
    what the API's report of the same run gives."""
    import torch

    from nnjoules import estimate
    from nnjoules.models import load_model

    code = main(["estimate", "lenet5", "--quiet", "--dense", "--csv", str(tmp_path / "r.csv"),
                 "--html", str(tmp_path / "r.html"), "--plot", str(tmp_path / "plots"),
                 "--json", str(tmp_path / "r.json")])
    assert code == 0, capsys.readouterr().err
    loaded = load_model("lenet5", seed=0)
    inputs = torch.randn((1, *loaded.input_shape), generator=torch.Generator().manual_seed(0))
    report = estimate(loaded.model, inputs, measure_density=False, name="lenet5")
    assert (tmp_path / "r.csv").read_text() == report.to_csv()
    assert json.loads((tmp_path / "r.json").read_text()) == report.to_dict()
    assert (tmp_path / "r.html").read_text() == report.to_html()
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(
        f"lenet5-{k}.{f}" for k in ("operand", "level", "summary", "proxies")
        for f in ("png", "svg"))


def test_report_csv_columns_match_the_json(tmp_path):
    report = toy_report()
    rows = read_csv(report.to_csv(tmp_path / "r.csv"))
    assert (tmp_path / "r.csv").read_text() == report.to_csv()
    data = report.to_dict()
    for row, layer in zip(rows, data["layers"], strict=True):
        assert row["layer"] == layer["name"] and row["kind"] == layer["kind"]
        assert int(row["macs"]) == layer["macs"]
        assert float(row["energy"]) == layer["energy"]["total"]
        assert float(row["energy_rf_psums"]) == layer["energy"]["by_level_operand"]["rf"]["psums"]
        assert int(row["map_p"]) == layer["mapping"]["p"]
        assert float(row["weight_density"]) == layer["density"]["weights"]
        assert row["unit"] == data["unit"] and row["compression"] == data["compression"]
    assert math.fsum(float(r["energy_share"]) for r in rows) == pytest.approx(1.0)
    assert Compression(rows[0]["compression"]) is report.compression


def test_every_csv_column_is_documented():
    doc = (ROOT / "docs" / "report-json.md").read_text()
    documented = set(re.findall(r"`([a-zA-Z_]+)`", doc)) | set(
        re.findall(r"`([A-Z](?: [A-Z])+)`", doc)[0].split())
    report = toy_report()
    columns = set(read_csv(report.to_csv())[0]) | set(compare([report, report],
                                                              labels=["a", "b"]).rows()[0])
    columns |= set(sweep(toy_workload(), {"bits": ["8"]}).rows()[0]) - {"bits"}
    patterned = {c for c in columns if re.fullmatch(r"energy_(dram|glb|array|rf)_\w+", c)}
    assert "`energy_<level>_<operand>`" in doc
    assert columns - patterned - documented == set()


def test_every_json_field_is_documented():
    doc = (ROOT / "docs" / "report-json.md").read_text()
    documented = set(re.findall(r"`([a-zA-Z_]+)`", doc))
    data = toy_report().to_dict()
    layer = data["layers"][0]
    fields = set(data) | set(data["totals"]) | set(layer) | set(layer["energy"])
    assert fields - documented == set()


def test_compare_names_each_entrys_bit_widths():
    eight = estimate_workload(toy_workload().with_precision(Precision(8, 8, 8)), eyeriss())
    mixed = toy_workload()
    mixed = replace(mixed, name="mixed", layers=(
        mixed.layers[0].with_precision(Precision(4, 8, 16)), *mixed.layers[1:]))
    result = compare([eight, toy_report(), estimate_workload(mixed, eyeriss())])
    assert [r["bits"] for r in result.rows()] == ["8/8/8", "16/16/16", "mixed"]
    assert "bits W/I/O" in result.to_table(width=200)
    assert read_csv(result.to_csv())[0]["bits"] == "8/8/8"

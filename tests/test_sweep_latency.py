"""Time in compare and sweep: latency and power columns, clock_mhz and bandwidths as sweep
parameters, latency on the Pareto front, the energy-latency chart, resume, bad input."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest

from nnjoules.cli import main
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import eyeriss
from nnjoules.energy.hardware.loading import load_hardware
from nnjoules.energy.results import Totals
from nnjoules.energy.sweep import sweep
from nnjoules.energy.sweep_run import sweep_networks
from nnjoules.errors import InputError
from nnjoules.report.compare import compare
from nnjoules.report.sweep_latency import FRONT_LABEL, energy_latency_front
from toy_reports import toy_report, toy_workload

ROOT = Path(__file__).resolve().parents[1]


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_totals_time_and_power_are_cycles_over_the_clock():
    report = toy_report(hardware=load_hardware("eyeriss-65nm-pj"))
    totals = Totals.of(report)
    cycles = sum(item.timing.cycles for item in report.layers)
    assert totals.cycles == cycles and totals.clock_mhz == 200.0
    assert totals.latency_s == cycles / 200e6
    assert totals.power == report.total() / (cycles / 200e6)  # pJ per second
    assert totals.power_unit == "pJ/s"
    assert totals.power_mw == pytest.approx(report.total() * 1e-12 / (cycles / 200e6) * 1e3,
                                            rel=1e-12)
    assert totals.items is None and totals.throughput is None  # toy layers' N differ
    bound = {b: sum(item.timing.bound.value == b for item in report.layers)
             for b in ("compute", "dram", "glb")}
    assert dict(totals.bound_layers) == bound and sum(bound.values()) == 5
    columns = totals.columns()
    assert columns["latency_s"] == totals.latency_s and columns["power_mw"] == totals.power_mw
    assert [columns[f"{b}_bound_layers"] for b in bound] == list(bound.values())
    assert Totals.of(toy_report()).power_mw is None  # normalised: no milliwatts


def test_compare_rows_and_table_show_latency_and_power():
    slow = replace(eyeriss(), name="slow", clock_mhz=100.0)
    fast = replace(eyeriss(), name="fast", clock_mhz=400.0)
    result = compare([toy_report(hardware=slow), toy_report(hardware=fast)])
    first, second = result.rows()
    assert first["cycles"] == second["cycles"]  # the clock changes no cycle
    assert first["latency_s"] == first["cycles"] / 100e6
    assert second["latency_s_ratio"] == pytest.approx(0.25, rel=1e-12)
    assert second["power"] == pytest.approx(4 * first["power"], rel=1e-12)
    assert first["power_unit"] == "normalized/s" and first["power_mw"] is None
    table = result.to_table(width=250)
    assert "latency (x)" in table and "power (normalized/s)" in table
    assert "0.25x" in table


def test_clock_and_bandwidth_sweeps_change_time_not_energy():
    result = sweep(toy_workload(), {"clock_mhz": ["100", "400"],
                                    "dram_bandwidth": ["4", "19.2"]})
    for point in result.points:
        hw = replace(eyeriss(), clock_mhz=point.settings["clock_mhz"],
                     dram_bits_per_cycle=point.settings["dram_bandwidth"])
        direct = estimate_workload(toy_workload(), hw)
        assert point.totals.energy == direct.total()
        assert point.totals.cycles == direct.cycles()
        assert point.latency_s == direct.cycles() / (point.settings["clock_mhz"] * 1e6)
    slow_dram, fast_dram = result.points[2].totals, result.points[3].totals
    assert slow_dram.cycles > fast_dram.cycles  # 4 bits a cycle: DRAM-bound layers
    assert slow_dram.bound_layers["dram"] == 5  # every layer waits for DRAM at 4 bits
    # Energy, storage and PEs are equal: only the fastest point is on the front.
    assert [p.index for p in result.pareto()] == [3]
    rows = rows_of(result.to_csv())
    assert list(rows[0])[:3] == ["index", "clock_mhz", "dram_bandwidth"]  # each once
    assert [r["clock_mhz"] for r in rows] == ["100", "100", "400", "400"]
    assert [float(r["latency_s"]) for r in rows] == [p.latency_s for p in result.points]


def test_batch_trades_energy_per_item_against_latency_on_the_front():
    base = toy_workload()

    def at(batch: int):
        return replace(base, layers=tuple(replace(layer, N=batch) for layer in base.layers))

    result = sweep(at, {"batch": ["1", "8"]})
    one, eight = result.points
    assert eight.energy_per_item < one.energy_per_item  # weights fetched once for 8
    assert eight.latency_s > one.latency_s  # but the batch waits for all 8
    assert eight.totals.throughput == 8 / eight.latency_s
    assert result.pareto_indices == {0, 1}  # a real trade-off: both on the front
    assert [p.index for p in energy_latency_front(result)] == [0, 1]


@pytest.mark.parametrize(("settings", "message"), [
    (["clock_mhz=0"], "sweep parameter clock_mhz: bad value '0': expected a positive number"),
    (["clock_mhz=-200"], "positive"),
    (["clock_mhz=2e6"], "at most 1e+06"),
    (["dram_bandwidth=0"], "sweep parameter dram_bandwidth: bad value '0'"),
    (["glb_bandwidth=inf"], "sweep parameter glb_bandwidth: bad value 'inf'"),
    (["dataflow=XS"], "sweep parameter dataflow: bad value 'XS': unknown 'XS'"),
])
def test_bad_time_settings_are_one_line_input_errors(settings, message):
    from nnjoules.energy.sweep import parse_settings

    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("+", r"\+")):
        parse_settings(settings)


@pytest.mark.parametrize(("argv", "message"), [
    (["sweep", "lenet5", "--set", "clock_mhz=0"], "sweep parameter clock_mhz: bad value '0'"),
    (["sweep", "lenet5", "--set", "glb_kb=8", "--clock-mhz", "0"],
     "--clock-mhz 0: must be a positive number of MHz"),
    (["sweep", "lenet5", "--set", "clock_mhz=100", "--clock-mhz", "300"],
     "--clock-mhz and --set clock_mhz=... both set it"),
    (["compare", "lenet5", "alexnet", "--clock-mhz", "-1"],
     "--clock-mhz -1: must be a positive number of MHz"),
    (["estimate", "lenet5", "--clock-mhz", "nan"], "--clock-mhz nan: must be a positive"),
    (["sweep", "lenet5", "--set", "dataflow=XS"], "sweep parameter dataflow: bad value 'XS'"),
])
def test_cli_bad_clock_and_dataflow_exit_2_in_one_line(argv, message, capsys, tmp_path,
                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # refused before any output


@pytest.mark.parametrize("command", ["compare", "sweep", "estimate"])
def test_cli_unknown_dataflow_exits_2_naming_the_known_ones(command, capsys):
    argv = [command, "lenet5", "--dataflow", "XS"]
    extra = {"compare": ["alexnet"], "sweep": ["--set", "glb_kb=8"], "estimate": []}
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it while parsing
        main([*argv, *extra[command]])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --dataflow: unknown 'XS'; known: row-stationary (RS)" in err
    assert "systolic-ws" in err


def test_resume_reads_the_time_columns_back_byte_for_byte(tmp_path):
    grid = {"clock_mhz": ["100", "123.4567891"], "dram_bandwidth": ["4", "64"],
            "bits": ["8", "16"]}
    networks = [("toy", toy_workload())]
    whole = tmp_path / "whole.csv"
    sweep_networks(networks, grid, csv=whole)
    part = tmp_path / "part.csv"

    def stop_after_3(done: int, total: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep_networks(networks, grid, csv=part, chunk_points=3, progress=stop_after_3)
    assert 0 < len(rows_of(part.read_text())) < 8  # whole chunks only
    resumed = sweep_networks(networks, grid, csv=part, chunk_points=3, resume=True)
    assert part.read_bytes() == whole.read_bytes()
    first = resumed[0].points[0].totals  # read back from the CSV, not recomputed
    assert first.latency_s == first.cycles / 100e6
    assert [p.settings["clock_mhz"] for p in resumed[0].points][-1] == 123.4567891
    assert "123.4567891" in whole.read_text()


def test_cli_sweep_writes_the_energy_latency_chart_of_its_points(tmp_path, capsys):
    """A small real sweep: LeNet-5 over PE arrays and DRAM bandwidths, in pJ."""
    code = main(["sweep", "lenet5", "--hardware", "eyeriss-65nm-pj", "--set",
                 "pe_array=4x4,12x14", "--set", "dram_bandwidth=8,64", "--csv",
                 str(tmp_path / "l.csv"), "--plot", str(tmp_path / "l.svg"),
                 "--json", str(tmp_path / "l.json")])
    assert code == 0
    captured = capsys.readouterr()
    assert "latency" in captured.out and " mW" in captured.out
    assert f"wrote {tmp_path / 'l-latency.svg'}" in captured.err
    assert (tmp_path / "l-latency.svg").read_text().lstrip().startswith("<?xml")
    rows = rows_of((tmp_path / "l.csv").read_text())
    points = json.loads((tmp_path / "l.json").read_text())["points"]
    assert [p["latency_s"] for p in points] == [float(r["latency_s"]) for r in rows]
    for row in rows:  # mW = pJ / latency, scaled
        assert float(row["power_mw"]) == pytest.approx(
            float(row["energy"]) * 1e-12 / float(row["latency_s"]) * 1e3, rel=1e-12)

    from nnjoules.commands.common import load_workload

    workload = load_workload("lenet5", batch=1, input_shape=None, seed=0, dense=False,
                             precision=None)
    result = sweep(workload, {"pe_array": ["4x4", "12x14"], "dram_bandwidth": ["8", "64"]},
                   hardware="eyeriss-65nm-pj")
    assert [p.latency_s for p in result.points] == [float(r["latency_s"]) for r in rows]
    (ax,) = result.plot_latency().axes
    dots, rings = ax.collections
    assert [tuple(xy) for xy in dots.get_offsets()] == [
        (float(r["latency_s"]), float(r["energy_per_item"])) for r in rows]
    assert sorted(tuple(xy) for xy in rings.get_offsets()) == sorted(
        (float(r["latency_s"]), float(r["energy_per_item"])) for r in rows
        if r["pareto"] == "True")
    assert FRONT_LABEL in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_xlabel() == "latency per batch (at 200 MHz)"

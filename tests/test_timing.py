"""Time: row-stationary compute cycles, the bandwidth bound, latency, throughput, power.

Expected values are computed here independently: cycles by enumerating the passes and
the work of every PE in them, traffic by summing counts x bits, power from its
definition energy / time.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nnjoules.cli import main
from nnjoules.energy.cost import Compression, CompressionLevels
from nnjoules.energy.counts import AccessCounts
from nnjoules.energy.dataflows import get_dataflow
from nnjoules.energy.dataflows.row_stationary.cycles import PIPELINE_STAGES, compute_cycles
from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import Level, eyeriss, load_hardware
from nnjoules.energy.hardware.loading import hardware_from_dict, hardware_to_dict
from nnjoules.energy.timing import Bound, layer_timing
from nnjoules.energy.workload import Layer, LayerKind, Operand, Workload
from nnjoules.errors import HardwareFileError


def _conv(*, N: int = 1, M: int = 4, C: int = 2, H: int = 7, R: int = 3, G: int = 1) -> Layer:
    E = H - R + 1
    return Layer("c", LayerKind.CONV, N=N, M=M, C=C, H=H, W=H, R=R, S=R, E=E, F=E, G=G)


def _tiles(total: int, size: int) -> list[int]:
    """Sizes of the tiles of ``size`` that cover ``total`` items, in order."""
    return [min(size, total - start) for start in range(0, total, size)]


def naive_cycles(layer: Layer, mp: Mapping) -> int:
    """Enumerate every pass; a pass lasts as long as its busiest PE, plus fill and drain."""
    filter_tiles, channel_tiles = _tiles(layer.M, mp.p), _tiles(layer.C, mp.q)
    filter_passes = [filter_tiles[i:i + mp.t] for i in range(0, len(filter_tiles), mp.t)]
    channel_passes = [channel_tiles[i:i + mp.r] for i in range(0, len(channel_tiles), mp.r)]
    strips = len(_tiles(layer.E, mp.e))
    total = 0
    for _ in range(layer.G * layer.N * strips):
        for fp in filter_passes:
            for cp in channel_passes:
                busiest = max(f * c * layer.S * layer.F for f in fp for c in cp)
                total += busiest + (PIPELINE_STAGES - 1) + (layer.R - 1)
    return total


def test_hand_worked_cycles_of_a_tiny_conv():
    # 4 filters of 3x3 on 2 channels, 5x5 ofmap; p=2, t=1 (2 filter passes of 2 filters),
    # q=1, r=1 (2 channel passes): 4 passes of 2*1*3*5 = 30 MAC cycles + 2 + 2 fill/drain.
    assert compute_cycles(_conv(), Mapping(m=4, n=1, e=5, p=2, q=1, r=1, t=1)) == 4 * (30 + 4)
    # p=3, t=2: filter tiles 3 and 1 in ONE pass (the busiest PE holds 3); q=2, r=1.
    assert compute_cycles(_conv(), Mapping(m=4, n=1, e=5, p=3, q=2, r=1, t=2)) \
        == 1 * (3 * 2 * 3 * 5 + 4)
    # p=3, t=1: passes of 3 and then 1 filter; batch 2 doubles everything.
    assert compute_cycles(_conv(N=2), Mapping(m=4, n=1, e=5, p=3, q=2, r=1, t=1)) \
        == 2 * ((3 * 2 * 15 + 4) + (1 * 2 * 15 + 4))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_cycles_equal_a_pass_by_pass_count_and_bound_macs_over_pes(data):
    R = data.draw(st.integers(1, 4))
    layer = _conv(N=data.draw(st.integers(1, 3)), M=data.draw(st.integers(1, 9)),
                  C=data.draw(st.integers(1, 9)), H=R + data.draw(st.integers(0, 6)), R=R,
                  G=data.draw(st.integers(1, 2)))
    mp = Mapping(m=layer.M, n=1, e=data.draw(st.integers(1, layer.E)),
                 p=data.draw(st.integers(1, layer.M)), q=data.draw(st.integers(1, layer.C)),
                 r=data.draw(st.integers(1, 4)), t=data.draw(st.integers(1, 4)))
    cycles = compute_cycles(layer, mp)
    assert cycles == naive_cycles(layer, mp)
    assert cycles >= layer.macs / mp.active_pes(layer)


def test_dataflow_plugin_gives_the_same_cycles():
    layer, mp = _conv(), Mapping(m=4, n=1, e=5, p=2, q=1, r=1, t=1)
    assert get_dataflow("row-stationary").compute_cycles(layer, mp, eyeriss()) == 136


def _bits(counts: AccessCounts, level: Level) -> int:
    return 16 * sum(counts.read(level, op) + counts.write(level, op) for op in Operand)


def test_layer_switches_from_compute_to_bandwidth_bound():
    layer = _conv(M=16, C=16, H=16)
    work = Workload("w", (layer,))
    wide = replace(eyeriss(), dram_bits_per_cycle=1e6, glb_bits_per_cycle=1e6)
    fast = estimate_workload(work, wide, compression=Compression.NONE).layers[0]
    assert fast.timing.bound is Bound.COMPUTE
    assert fast.timing.cycles == fast.timing.compute_cycles
    dram_bits = _bits(fast.counts, Level.DRAM)
    assert fast.timing.dram_bits == dram_bits
    # A DRAM link so slow that moving the data takes longer than computing.
    slow_bw = dram_bits / (2 * fast.timing.compute_cycles)
    slow = estimate_workload(work, replace(wide, dram_bits_per_cycle=slow_bw),
                             compression=Compression.NONE).layers[0]
    assert slow.timing.bound is Bound.DRAM
    assert slow.timing.cycles == math.ceil(dram_bits / slow_bw)
    assert slow.total == fast.total  # bandwidth changes time, never energy
    glb_bits = _bits(fast.counts, Level.GLB)
    starved = estimate_workload(work, replace(wide, glb_bits_per_cycle=glb_bits / 1e7),
                                compression=Compression.NONE).layers[0]
    assert starved.timing.bound is Bound.GLB
    assert starved.timing.cycles == math.ceil(glb_bits / (glb_bits / 1e7))


def test_dram_traffic_is_counted_at_its_compressed_size():
    # significance map: 1 bit per value + 16 bits per non-zero; all dense: 17 bits a value
    fc = Layer("fc", LayerKind.FC, N=1, M=8, C=8, H=1, W=1, R=1, S=1, E=1, F=1)
    counts = AccessCounts(reads={(Level.DRAM, Operand.WEIGHTS): 64}, writes={}, macs=64)
    timing = layer_timing(10, counts, fc, eyeriss(), Compression.SIGNIFICANCE_MAP,
                          CompressionLevels.DRAM)
    assert timing.dram_bits == 64 * 17
    assert timing.dram_cycles == math.ceil(64 * 17 / 19.2)


def test_network_latency_throughput_and_power_identities():
    layers = (_conv(N=2, M=8, C=8, H=12), replace(_conv(N=2, M=4, C=8, H=10), name="d"))
    hw = replace(eyeriss(), clock_mhz=250.0)
    report = estimate_workload(Workload("w", layers), hw)
    t = report.timing()
    assert t.cycles == sum(item.timing.cycles for item in report.layers)
    assert t.latency_s == t.cycles / 250e6
    assert t.throughput == pytest.approx(2 / t.latency_s, rel=1e-12)
    # power = energy / time = energy per inference x inferences per second
    assert t.power == pytest.approx(report.total() / t.latency_s, rel=1e-12)
    assert t.power == pytest.approx(report.total() / 2 * t.throughput, rel=1e-12)
    assert t.power_mw is None and t.energy_per_item_mj is None  # normalised units
    assert sum(t.bound_layers.values()) == 2


def test_pj_preset_reports_milliwatts_and_millijoules():
    layers = (_conv(N=4, M=8, C=8, H=12),)
    normalised = estimate_workload(Workload("w", layers), eyeriss())
    report = estimate_workload(Workload("w", layers), load_hardware("eyeriss-65nm-pj"))
    assert report.total() == pytest.approx(1.5 * normalised.total(), rel=1e-12)
    t = report.timing()
    latency = report.cycles() / 200e6
    assert t.power_mw == pytest.approx(report.total() * 1e-12 / latency * 1e3, rel=1e-12)
    assert t.energy_per_item_mj == pytest.approx(report.total() * 1e-12 / 4 * 1e3, rel=1e-12)
    data = json.loads(report.to_json())
    assert data["timing"]["power_mw"] == pytest.approx(t.power_mw)
    assert data["timing"]["power_unit"] == "pJ/s"
    assert data["layers"][0]["timing"]["bound"] in {"compute", "dram", "glb"}
    table = report.to_table(width=100)
    assert f"{t.power_mw:.4g} mW" in table and "mJ per inference" in table
    page = report.to_html(images="svg")
    assert f"<b>{t.power_mw:.4g} mW</b><span>average power</span>" in page
    assert "DRAM 19.2, GLB 128 bits per cycle" in page


def test_normalised_report_says_power_is_in_normalised_units_per_second():
    report = estimate_workload(Workload("w", (_conv(),)), eyeriss())
    text = " ".join(report.to_table(width=100).split())
    assert "normalized units per second" in text and "mW average" not in text
    assert "at 200 MHz" in text
    assert json.loads(report.to_json())["timing"]["power_mw"] is None


def test_clock_option_scales_latency_and_rejects_bad_values(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["estimate", "alexnet", "--clock-mhz", "400", "--json", str(out),
                 "--quiet"]) == 0
    timing = json.loads(out.read_text())["timing"]
    assert timing["clock_mhz"] == 400.0
    assert timing["latency_s"] == pytest.approx(timing["cycles"] / 400e6, rel=1e-12)
    capsys.readouterr()
    for bad in ("0", "-3", "nan", "inf"):
        assert main(["estimate", "alexnet", "--clock-mhz", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"nnjoules: error: --clock-mhz {bad}: must be a positive")
        assert err.count("\n") == 1


_HW: dict = {"name": "chip", "unit": "normalized", "pe_array": "12x14", "mac_energy": 1,
             "dram": {"read_energy": 200}, "global_buffer": {"size_kb": 108, "read_energy": 6},
             "array": {"transfer_energy": 2},
             "register_file": {"size_bytes": 512, "read_energy": 1}}


def _with(path: str, value: object) -> dict:
    data = json.loads(json.dumps(_HW))
    node = data
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    return data


@pytest.mark.parametrize("path", ["clock_mhz", "dram.bandwidth_bits_per_cycle",
                                  "global_buffer.bandwidth_bits_per_cycle"])
@pytest.mark.parametrize(("value", "says"), [
    (0, "must be a positive number, got 0"), (-5.0, "must be a positive number, got -5.0"),
    (float("nan"), "must be a positive number, got nan"),
    (float("inf"), "must be a positive number, got inf"),
    ("fast", "must be a positive number, got 'fast' (a string)"),
    (True, "must be a positive number, got true (a boolean)"),
    (None, "must be a positive number, got null"), (1e12, "must be at most"),
])
def test_bad_clock_or_bandwidth_is_one_line_naming_file_and_field(path, value, says):
    with pytest.raises(HardwareFileError) as info:
        hardware_from_dict(_with(path, value), source="hw.yaml")
    message = str(info.value)
    assert message.startswith(f"hw.yaml: {path}: {says}"), message
    assert "\n" not in message


def test_clock_and_bandwidths_default_to_the_eyeriss_chip_and_round_trip():
    hw = hardware_from_dict(_HW, source="hw.yaml")
    assert (hw.clock_mhz, hw.dram_bits_per_cycle, hw.glb_bits_per_cycle) == (200, 19.2, 128)
    custom = hardware_from_dict(_with("clock_mhz", 500) | {"dram": {
        "read_energy": 200, "bandwidth_bits_per_cycle": 64}}, source="hw.yaml")
    assert (custom.clock_mhz, custom.dram_bits_per_cycle) == (500.0, 64.0)
    assert hardware_from_dict(hardware_to_dict(custom), source="x") == custom


def test_bad_clock_in_a_hardware_file_exits_2_naming_it(tmp_path, capsys):
    path = tmp_path / "chip.yaml"
    path.write_text(yaml.safe_dump(_with("dram.bandwidth_bits_per_cycle", 0)))
    assert main(["estimate", "alexnet", "--hardware", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"nnjoules: error: {path}: dram.bandwidth_bits_per_cycle: must be a "
                   "positive number, got 0\n")


def test_absolute_presets_follow_their_sources():
    from nnjoules.energy.hardware.absolute import sram_pj_per_64_bits

    base, pj = eyeriss(), load_hardware("eyeriss-65nm-pj")
    assert pj.unit.value == "pJ"
    assert (pj.mac, pj.dram.read, pj.glb.cost.read, pj.array.read, pj.rf.weights.read) \
        == tuple(1.5 * v for v in (base.mac, base.dram.read, base.glb.cost.read,
                                   base.array.read, base.rf.weights.read))
    # Horowitz ISSCC 2014, 45 nm: int8 0.2 + 0.03, int32 3.1 + 0.1 pJ; SRAM 10 pJ at 8 kB
    int8, int32 = load_hardware("eyeriss-45nm-int8"), load_hardware("eyeriss-45nm-int32")
    assert int8.mac == pytest.approx(0.23) and int32.mac == pytest.approx(3.2)
    assert int8.word_bits == 8 and int8.glb.size_bytes == 54 * 1024
    assert sram_pj_per_64_bits(8192) == 10.0 and sram_pj_per_64_bits(32768) == 20.0
    assert int32.dram.read == 1300.0 and int32.dram.access_bits == 64
    assert int32.array.read == 2 * int32.rf.weights.read


def test_eyeriss_anchor_matches_its_committed_results_and_documented_ratios():
    import importlib.util
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(
        "eyeriss_anchor", root / "benchmarks" / "paper" / "eyeriss_anchor.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eyeriss_anchor"] = module
    spec.loader.exec_module(module)
    data = module.compare_with_chip()
    committed = json.loads((root / "benchmarks" / "results" / "eyeriss_anchor.json").read_text())
    for run in ("measured", "dense"):
        for key, value in committed["runs"][run].items():
            if key != "layers":
                assert data["runs"][run][key] == pytest.approx(value, rel=1e-9), (run, key)
    measured, chip = data["runs"]["measured"], data["chip"]
    # the ratios the README states, +-3 %
    for key, ratio in (("frames_per_s", 0.99), ("dram_accesses_per_mac", 1.49)):
        assert measured[key] / chip[key] == pytest.approx(ratio, rel=0.03), key
    assert measured["power_mw_on_chip"] / chip["power_mw"] == pytest.approx(0.55, rel=0.03)
    assert all(layer["bound"] == "compute" for layer in measured["layers"])

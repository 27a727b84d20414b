"""The six ISCA 2016 dataflows through the product: names, the equal-area presets,
invariants every dataflow keeps, cycles, and ``--dataflow`` on the command line."""

from __future__ import annotations

import json
import textwrap

import pytest

from nnjoules.cli import main
from nnjoules.energy.dataflows import ABBREVIATIONS, DATAFLOWS, canonical_name, get_dataflow
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import (
    Level,
    eyeriss_isca2016,
    eyeriss_isca2016_for,
    load_hardware,
)
from nnjoules.energy.hardware.area import baseline_area, glb_bytes, storage_area, storage_size
from nnjoules.energy.sweep import sweep
from nnjoules.energy.workload import Layer, LayerKind, Operand, Precision, Workload
from nnjoules.errors import InputError, MappingError

ISCA_NAMES = ["row-stationary", "weight-stationary", "output-stationary-a",
              "output-stationary-b", "output-stationary-c", "no-local-reuse"]


# ------------------------------------------------------------------------------ names

@pytest.mark.parametrize(("given", "name"), [
    ("RS", "row-stationary"), ("ws", "weight-stationary"), ("OS-A", "output-stationary-a"),
    ("os_b", "output-stationary-b"), ("Os-C", "output-stationary-c"), ("NLR", "no-local-reuse"),
    ("No_Local_Reuse", "no-local-reuse"), (" weight-stationary ", "weight-stationary")])
def test_names_and_abbreviations(given: str, name: str) -> None:
    assert canonical_name(given) == name
    assert get_dataflow(given).name == name


def test_the_registry_holds_the_six_isca_dataflows_then_the_systolic_ones() -> None:
    assert list(DATAFLOWS) == [*ISCA_NAMES, "systolic-ws", "systolic-os"]
    assert list(ABBREVIATIONS.values()) == ["RS", "WS", "OS-A", "OS-B", "OS-C", "NLR"]


def test_unknown_dataflow_is_one_line_with_a_hint() -> None:
    with pytest.raises(InputError) as err:
        get_dataflow("OS-D")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("dataflow: unknown 'OS-D' (did you mean 'output-stationary-")
    assert "no-local-reuse (NLR)" in message


# ------------------------------------------------------------------------ equal area

def test_the_area_tables_are_the_authors() -> None:
    assert storage_area(512) == pytest.approx(20.87 * 512)
    assert storage_area(3) == pytest.approx(3 * (103.47 + 172.07) / 2)  # interpolated
    assert storage_size(52020) == pytest.approx(4096)
    assert storage_size(storage_area(2048)) == pytest.approx(2048, rel=1e-3)
    assert baseline_area(256) == pytest.approx(256 * 20.87 * 512 + 12.70 * 131072)


def test_equal_area_split_gives_the_papers_storage_differences() -> None:
    """ISCA §VI-B: GLB sizes differ by up to 2.6x; total storage by up to about 80 kB."""
    rs = eyeriss_isca2016()
    assert eyeriss_isca2016_for("row-stationary") == rs
    totals = {}
    for name in ISCA_NAMES:
        hw = eyeriss_isca2016_for(name)
        assert hw.pe_array.num_pes == 256
        assert hw.glb.size_bytes == glb_bytes(256, {"row-stationary": 512,
                                                    "no-local-reuse": 0}.get(name,
                                                                             hw.rf.size_bytes))
        rf = 0 if name == "no-local-reuse" else hw.rf.size_bytes
        totals[name] = hw.glb.size_bytes + 256 * rf
    assert eyeriss_isca2016_for("weight-stationary").glb.size_bytes / rs.glb.size_bytes \
        == pytest.approx(2.61, abs=0.01)
    spread_kib = (max(totals.values()) - min(totals.values())) / 1024
    assert 78 <= spread_kib <= 83  # the paper: "can go up to 80kB"


@pytest.mark.parametrize("pes", [512, 1024])
def test_larger_arrays_scale_the_baseline(pes: int) -> None:
    rs = eyeriss_isca2016_for("row-stationary", pes)
    assert (rs.glb.size_bytes, rs.rf.size_bytes, rs.pe_array.num_pes) == (512 * pes, 512, pes)
    assert rs.pe_array.rows * rs.pe_array.cols == pes
    ws = eyeriss_isca2016_for("weight-stationary", pes)
    assert ws.name == f"eyeriss-isca2016-ws-{pes}pe"
    assert ws.glb.size_bytes > 2.5 * rs.glb.size_bytes


@pytest.mark.parametrize("suffix", ["ws", "os-a", "os-b", "os-c", "nlr"])
def test_presets_load_by_name(suffix: str) -> None:
    hw = load_hardware(f"eyeriss-isca2016-{suffix}")
    assert hw.name == f"eyeriss-isca2016-{suffix}" and hw.pe_array.num_pes == 256


# ------------------------------------------------------------------------ invariants

LAYERS = [
    Layer("conv", LayerKind.CONV, N=4, M=24, C=10, H=15, W=15, R=3, S=3, E=13, F=13),
    Layer("strided", LayerKind.CONV, N=2, M=16, C=3, H=31, W=31, R=7, S=7, E=7, F=7,
          stride=(4, 4)),
    Layer("grouped", LayerKind.CONV, N=2, M=8, C=6, G=2, H=10, W=10, R=3, S=3, E=8, F=8),
    Layer("fc", LayerKind.FC, N=16, M=100, C=300, H=1, W=1, R=1, S=1, E=1, F=1),
]


@pytest.mark.parametrize("name", ISCA_NAMES)
def test_invariants_of_every_dataflow(name: str) -> None:
    """MACs exact; compulsory DRAM traffic reached; ofmaps written once; cycles never
    below MACs per active PE."""
    hw = eyeriss_isca2016_for(name)
    report = estimate_workload(Workload("toy", tuple(LAYERS)), hw, dataflow=name)
    flow = get_dataflow(name)
    assert report.dataflow == name
    for item, layer in zip(report.layers, LAYERS, strict=True):
        counts = item.counts
        assert counts.macs == layer.G * layer.N * layer.M * layer.C * layer.E * layer.F \
            * layer.R * layer.S
        rows = layer.U * (layer.E - 1) + layer.R_eff
        cols = layer.stride[1] * (layer.F - 1) + layer.S_eff
        assert counts.read(Level.DRAM, Operand.WEIGHTS) >= layer.num_weights
        assert counts.read(Level.DRAM, Operand.IFMAPS) >= layer.G * layer.N * layer.C \
            * min(rows, layer.E * layer.R_eff) * min(cols, layer.F * layer.S_eff)
        assert counts.write(Level.DRAM, Operand.PSUMS) == layer.num_ofmap_values
        assert counts.read(Level.DRAM, Operand.PSUMS) == 0
        pes = item.mapping.active_pes(layer)
        assert 1 <= pes <= hw.pe_array.num_pes
        if name != "row-stationary":  # RS gains compute_cycles with the timing work
            cycles = flow.compute_cycles(layer, item.mapping, hw)  # type: ignore[attr-defined]
            assert cycles * pes >= layer.macs


def test_cycles_by_hand() -> None:
    """WS on the 'conv' layer: r = 10 channels x t filters of 3 x 3 weights."""
    layer = LAYERS[0]
    ws = get_dataflow("WS")
    from nnjoules.energy.dataflows.weight_stationary import WSMapping

    mapping = WSMapping(r=10, t=2, f=13)  # 180 PEs; 12 filter passes, 1 channel pass
    cycles = ws.compute_cycles(layer, mapping, eyeriss_isca2016())  # type: ignore[attr-defined]
    assert cycles == 12 * 1 * (4 * 13 * 13)
    assert cycles * mapping.active_pes(layer) == layer.macs  # every tile full


def test_ws_cannot_hold_the_psums_of_a_large_batch() -> None:
    """ISCA §VII-B: WS cannot run AlexNet CONV1 at N = 64 on 256 PEs (GLB too small)."""
    conv1 = Layer("conv1", LayerKind.CONV, N=64, M=96, C=3, H=227, W=227, R=11, S=11, E=55,
                  F=55, stride=(4, 4))
    hw = eyeriss_isca2016_for("weight-stationary")
    with pytest.raises(MappingError) as err:
        estimate_workload(Workload("a", (conv1,)), hw, dataflow="WS")
    message = str(err.value)
    assert "'conv1'" in message and "weight-stationary" in message and "GLB" in message
    assert 64 * 55 * 55 * 16 > hw.glb.size_bits  # the psums of one filter alone
    on_512 = estimate_workload(Workload("a", (conv1,)),
                               eyeriss_isca2016_for("weight-stationary", 512), dataflow="WS")
    assert on_512.layers[0].counts.macs == conv1.macs  # twice the area: it runs


# ------------------------------------------------------------------------------- CLI

MODEL = """
    import torch.nn as nn
    def build():
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                             nn.Linear(4 * 10 * 10, 10))
"""


@pytest.fixture
def small_model(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    (tmp_path / "dfnets.py").write_text(textwrap.dedent(MODEL))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "dfnets:build"


def test_estimate_with_a_dataflow(small_model, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "r.json"
    assert main(["estimate", small_model, "--input-shape", "1,12,12", "--dataflow", "OS-B",
                 "--hardware", "eyeriss-isca2016-os-b", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "dataflow: output-stationary-b (OS-B; Chen, Emer & Sze, ISCA 2016)" in " ".join(
        table.split())
    data = json.loads(out.read_text())
    assert data["dataflow"] == "output-stationary-b"
    assert [set(layer["mapping"]) for layer in data["layers"]] == [{"m", "n", "p", "f"}] * 2


def test_unknown_dataflow_on_the_command_line(small_model, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as stop:
        main(["estimate", small_model, "--dataflow", "row-stationery"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "argument --dataflow: unknown 'row-stationery' (did you mean 'row-stationary'?)" \
        in err


def test_compare_takes_a_dataflow(small_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "c.json"
    assert main(["compare", small_model, "--input-shape", "1,12,12", "--dense",
                 "--hardware", "eyeriss-isca2016", "--hardware", "eyeriss-isca2016-nlr",
                 "--dataflow", "NLR", "--json", str(out), "--quiet"]) == 0
    entries = json.loads(out.read_text())["entries"]
    assert [e["report"]["dataflow"] for e in entries] == ["no-local-reuse"] * 2
    layer = Layer("0", LayerKind.CONV, N=1, M=4, C=1, H=12, W=12, R=3, S=3, E=10, F=10)
    fc = Layer("3", LayerKind.FC, N=1, M=10, C=400, H=1, W=1, R=1, S=1, E=1, F=1)
    direct = estimate_workload(Workload("w", (layer, fc)), eyeriss_isca2016(), dataflow="NLR")
    assert entries[0]["report"]["totals"]["energy"] == pytest.approx(direct.total())


def test_sweep_runs_every_point_under_the_dataflow() -> None:
    workload = Workload("toy", (LAYERS[0],))
    result = sweep(workload, {"glb_kb": ["64", "512"]}, hardware="eyeriss-isca2016",
                   dataflow="os-c")
    assert result.dataflow == "output-stationary-c"
    assert result.to_dict()["dataflow"] == "output-stationary-c"
    for point in result.points:
        direct = estimate_workload(workload, point.hardware, dataflow="OS-C")
        assert point.totals is not None and point.totals.energy == direct.total()
    with pytest.raises(InputError, match="dataflow: unknown 'xs'"):
        sweep(workload, {"glb_kb": ["64"]}, dataflow="xs")


def test_dataflow_is_a_sweep_parameter(tmp_path) -> None:  # type: ignore[no-untyped-def]
    workload = Workload("toy", (LAYERS[0], LAYERS[3]))
    result = sweep(workload, {"dataflow": ["RS", "ws", "output-stationary-a", "NLR"]},
                   hardware="eyeriss-isca2016")
    names = ["row-stationary", "weight-stationary", "output-stationary-a", "no-local-reuse"]
    assert [p.settings["dataflow"] for p in result.points] == names
    assert [row["dataflow"] for row in result.rows()] == names
    for point, name in zip(result.points, names, strict=True):
        direct = estimate_workload(workload, eyeriss_isca2016(), dataflow=name)
        assert point.totals is not None and point.totals.energy == direct.total()
    assert "weight-stationary" in result.to_table(width=120)
    result.plot().savefig(tmp_path / "s.png")
    with pytest.raises(InputError, match=r"dataflow.*unknown 'OS-Z'"):
        sweep(workload, {"dataflow": ["OS-Z"]})


@pytest.mark.parametrize("command", ["estimate", "compare", "sweep"])
def test_every_registered_dataflow_is_named_in_the_help(command: str, capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # undo the wrapping
    for name in DATAFLOWS:  # the systolic ones too, which the help once left out
        assert name in text, name


def test_a_layer_that_fits_no_mapping_on_another_dataflows_preset_names_its_dataflow() -> None:
    from dataclasses import replace

    workload = Workload("toy", (LAYERS[1],))  # 7-wide filter rows: no 1-byte pad holds one
    npu = load_hardware("systolic-32x32")
    with pytest.raises(MappingError) as err:
        estimate_workload(workload, npu)  # row-stationary, the default
    assert str(err.value).endswith(" (the preset 'systolic-32x32' is made for the "
                                   "systolic-ws or systolic-os dataflow)")
    assert "\n" not in str(err.value)
    with pytest.raises(MappingError, match=r"made for the no-local-reuse dataflow\)$"):
        estimate_workload(workload, load_hardware("eyeriss-isca2016-nlr"), dataflow="WS")
    with pytest.raises(MappingError) as err:  # the user's own hardware: no claim about it
        estimate_workload(workload, replace(npu, name="my-npu"))
    assert "made for" not in str(err.value)
    int8 = Workload("toy", (replace(LAYERS[1], precision=Precision(8, 8, 8)),))
    assert estimate_workload(int8, npu, dataflow="systolic-ws").total() > 0  # 8-bit registers
    point = sweep(workload, {"glb_kb": ["640"]}, hardware="systolic-32x32").points[0]
    assert point.totals is None and point.error is not None
    assert point.error.endswith("is made for the systolic-ws or systolic-os dataflow)")

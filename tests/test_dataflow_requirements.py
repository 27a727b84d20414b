"""A hardware a dataflow cannot use at all: one line naming the hardware and its fields,
exit 2, before any model is loaded; a hardware it can use is never refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnjoules.cli import main
from nnjoules.energy.dataflows import DATAFLOWS
from nnjoules.energy.dataflows.requirements import check_dataflow_fits
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import (
    AccessCost,
    EnergyUnit,
    GlobalBuffer,
    Hardware,
    PEArray,
    RegisterFile,
)
from nnjoules.energy.hardware.catalog import PRESETS
from nnjoules.energy.workload import Layer, LayerKind, Precision, Workload
from nnjoules.errors import HardwareFileError, MappingError

COST = AccessCost(1.0, 1.0)
ONE = Layer("one", LayerKind.FC, N=1, M=1, C=1, H=1, W=1, R=1, S=1, E=1, F=1)


def pads(weights: int, ifmaps: int, psums: int, *, glb: int = 1 << 16) -> Hardware:
    """Eyeriss-like hardware with split scratch pads of these sizes, in bytes."""
    return Hardware(name="pads", unit=EnergyUnit.NORMALIZED, word_bits=16,
                    pe_array=PEArray(4, 4), dram=COST, glb=GlobalBuffer(glb, COST),
                    array=COST, mac=1.0,
                    rf=RegisterFile(COST, COST, COST, weights_bytes=weights,
                                    ifmaps_bytes=ifmaps, psums_bytes=psums))


# Worked out from each dataflow's RF use for one 16-bit MAC (2 bytes a value): RS keeps a
# weight, an ifmap and a psum, and so does a systolic PE (its registers); WS only the
# weight; OS-A two ifmaps and the psum, OS-B one ifmap and the psum, OS-C the psum; NLR
# nothing. A 1-byte pad holds no 16-bit value.
SYSTOLIC = ("systolic-ws", "systolic-os")


@pytest.mark.parametrize(("hw", "needs"), [
    (pads(1, 4, 2), {"row-stationary": "register_file.weights.size_bytes",
                     "weight-stationary": "register_file.weights.size_bytes",
                     **dict.fromkeys(SYSTOLIC, "register_file.weights.size_bytes")}),
    (pads(2, 1, 2), {"row-stationary": "register_file.ifmaps.size_bytes",
                     "output-stationary-a": "register_file.ifmaps.size_bytes",
                     "output-stationary-b": "register_file.ifmaps.size_bytes",
                     **dict.fromkeys(SYSTOLIC, "register_file.ifmaps.size_bytes")}),
    (pads(2, 4, 1), {"row-stationary": "register_file.psums.size_bytes",
                     "output-stationary-a": "register_file.psums.size_bytes",
                     "output-stationary-b": "register_file.psums.size_bytes",
                     "output-stationary-c": "register_file.psums.size_bytes",
                     **dict.fromkeys(SYSTOLIC, "register_file.psums.size_bytes")}),
    (pads(2, 4, 2, glb=1), {name: "global_buffer.size_bytes" for name in (
        "row-stationary", "weight-stationary", "output-stationary-a", "output-stationary-b",
        "output-stationary-c", "no-local-reuse")}),
])
def test_refused_exactly_where_one_mac_cannot_map(hw: Hardware, needs: dict[str, str]) -> None:
    for name in DATAFLOWS:
        try:
            estimate_workload(Workload("one", (ONE,)), hw, dataflow=name)
            maps = True
        except MappingError:
            maps = False
        assert maps == (name not in needs), name
        if name not in needs:
            check_dataflow_fits(hw, name)  # never refuses a hardware that maps a MAC
            continue
        with pytest.raises(HardwareFileError) as err:
            check_dataflow_fits(hw, name)
        message = str(err.value)
        assert message.startswith(f"hardware 'pads' cannot run the {name} dataflow")
        assert needs[name] in message and "\n" not in message


def test_narrower_bits_fit_where_the_word_width_does_not() -> None:
    hw = pads(1, 1, 1)  # one byte per pad: an 8-bit value fits, a 16-bit one does not
    with pytest.raises(HardwareFileError, match="one 1x1 MAC of 16-bit values"):
        check_dataflow_fits(hw, "RS")
    check_dataflow_fits(hw, "RS", Precision(8, 8, 8))


def test_every_preset_runs_its_own_dataflows() -> None:
    for preset in ("eyeriss", "eyeriss-65nm-pj", "eyeriss-isca2016", "systolic-32x32"):
        check_dataflow_fits(PRESETS[preset](), "row-stationary")
    for suffix, name in (("ws", "WS"), ("os-a", "OS-A"), ("os-b", "OS-B"), ("os-c", "OS-C"),
                         ("nlr", "NLR")):
        check_dataflow_fits(PRESETS[f"eyeriss-isca2016-{suffix}"](), name)
    # SCALE-Sim's arrays re-fetch what their SRAMs cannot keep, but a PE registers one
    # weight, one ifmap and one psum: 3 x 16 bits = 6 bytes, more than the unified RFs of
    # the ISCA 2016 WS (2 bytes), OS-C (2) and NLR (1) presets
    short = {"eyeriss-isca2016-ws", "eyeriss-isca2016-os-c", "eyeriss-isca2016-nlr"}
    for name in SYSTOLIC:
        for preset, factory in PRESETS.items():
            if preset not in short:
                check_dataflow_fits(factory(), name)
                continue
            with pytest.raises(HardwareFileError,
                               match=r"register_file\.size_bytes is too small \(RF: 1 weights"):
                check_dataflow_fits(factory(), name)


def test_cli_names_the_file_the_hardware_and_the_field(tmp_path: Path, capsys,
                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    chip = tmp_path / "tiny-rf.yaml"
    chip.write_text("name: tiny-rf\nunit: normalized\npe_array: 12x14\nmac_energy: 1\n"
                    "dram: {read_energy: 200}\nglobal_buffer: {size_kb: 108, read_energy: 6}\n"
                    "array: {transfer_energy: 2}\nregister_file: {size_bytes: 4, "
                    "read_energy: 1}\n")
    assert main(["estimate", "nosuchmodel", "--hardware", str(chip)]) == 2  # before the model
    err = capsys.readouterr().err.strip()
    assert err == (f"nnjoules: error: {chip}: hardware 'tiny-rf' cannot run the "
                   "row-stationary dataflow, not even on one 1x1 MAC of 16-bit values: "
                   "register_file.size_bytes is too small (RF: p*q*S weights + q*S ifmaps + "
                   "p psums = 48 bits > 32 bits)")
    assert main(["estimate", "lenet5", "--hardware", str(chip), "--dataflow", "WS",
                 "--quiet"]) == 0  # one weight (16 bits) fits 4 bytes
    assert main(["compare", "lenet5", "alexnet", "--hardware", "eyeriss-isca2016-nlr"]) == 2
    assert "'eyeriss-isca2016-nlr' cannot run the row-stationary" in capsys.readouterr().err
    assert main(["sweep", "lenet5", "--hardware", "eyeriss-isca2016-nlr", "--set",
                 "clock_mhz=100,200"]) == 2
    assert "register_file.size_bytes is too small" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [chip]  # nothing written

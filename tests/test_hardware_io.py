"""Hardware YAML: presets, round trips, defaults and one test per kind of error.

Every error test checks that the message starts with the file name and the dotted
field path, because that is what a user needs to fix the file.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from nnjoules.energy.hardware import (
    PRESETS,
    AccessCost,
    EnergyUnit,
    Hardware,
    RegisterFile,
    eyeriss,
    eyeriss_isca2016,
)
from nnjoules.energy.hardware import loading as hardware_io
from nnjoules.energy.hardware.loading import (
    dump_hardware,
    hardware_from_dict,
    hardware_to_dict,
    load_hardware,
)
from nnjoules.errors import HardwareFileError, InputError

PRESET_DIR = Path(hardware_io.__file__).parent / "presets"
EXAMPLE = Path(__file__).parents[1] / "examples" / "hardware" / "eyeriss-like-45nm-pj.yaml"

BASE: dict[str, Any] = {
    "name": "chip",
    "unit": "normalized",
    "word_bits": 16,
    "pe_array": {"rows": 12, "cols": 14},
    "mac_energy": 1.0,
    "dram": {"read_energy": 200},
    "global_buffer": {"size_bytes": 110592, "read_energy": 6},
    "array": {"transfer_energy": 2},
    "register_file": {"size_bytes": 512, "read_energy": 1},
}


def _data(**changes: Any) -> dict[str, Any]:
    """BASE with changes keyed by path, ``__`` between levels; ``...`` deletes the key."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for key in parents:
            node = node[key]
        if value is ...:
            del node[last]
        else:
            node[last] = value
    return data


def _write(tmp_path: Path, content: dict[str, Any] | str, name: str = "hw.yaml") -> Path:
    path = tmp_path / name
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, content: dict[str, Any] | str) -> tuple[Path, str]:
    path = _write(tmp_path, content)
    with pytest.raises(HardwareFileError) as info:
        load_hardware(path)
    return path, str(info.value)


# ---------------------------------------------------------------------------- presets


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_names_load_the_python_presets(name: str) -> None:
    assert load_hardware(name) == PRESETS[name]()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_yaml_files_equal_the_python_presets(name: str) -> None:
    assert load_hardware(PRESET_DIR / f"{name}.yaml") == PRESETS[name]()


def test_every_preset_file_is_a_preset() -> None:
    assert sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) == sorted(PRESETS)


def test_hardware_passes_through_unchanged() -> None:
    hw = eyeriss()
    assert load_hardware(hw) is hw


def test_unknown_preset_lists_presets_and_suggests() -> None:
    with pytest.raises(HardwareFileError) as info:
        load_hardware("eyeris")
    msg = str(info.value)
    assert "'eyeris'" in msg and "did you mean 'eyeriss'?" in msg
    assert all(name in msg for name in PRESETS)


def test_errors_are_input_errors_with_exit_code_2() -> None:
    with pytest.raises(InputError) as info:
        load_hardware("no-such-chip")
    assert info.value.exit_code == 2


# ---------------------------------------------------------------------------- the pJ example


def test_pj_example_loads_with_the_exercise_values() -> None:
    hw = load_hardware(EXAMPLE)
    assert hw.unit is EnergyUnit.PJ
    assert (hw.pe_array.rows, hw.pe_array.cols) == (12, 14)
    assert hw.dram.read_per_bit() == 512 / 64 == 8.0  # 128 pJ per 16-bit word
    assert hw.glb.cost.read_per_bit() * 16 == pytest.approx(18.80, abs=0.005)  # Timeloop's
    assert hw.glb.size_bytes == 16384 * 64 // 8
    assert (hw.rf.weights_bytes, hw.rf.ifmaps_bytes, hw.rf.psums_bytes) == (384, 24, 32)
    assert (hw.rf.weights.read, hw.rf.ifmaps.write, hw.rf.psums.read) == (1.586, 0.237, 0.251)
    assert hw.mac_energy(8, 8) == pytest.approx(2.2 / 4)


# ---------------------------------------------------------------------------- round trips


def _unusual() -> Hardware:
    """A unified RF with per-operand costs and read != write everywhere possible."""
    base = eyeriss_isca2016()
    rf = RegisterFile(weights=AccessCost(1.5, 2.0, 16), ifmaps=AccessCost(0.5, 0.75, 8),
                      psums=AccessCost(1.0, 1.25, 32), size_bytes=768)
    return Hardware(name="odd", unit=EnergyUnit.PJ, word_bits=8, pe_array=base.pe_array,
                    dram=AccessCost(640.0, 700.5, 64), glb=base.glb, array=AccessCost(0.0, 0.0, 8),
                    rf=rf, mac=0.2)


ROUND_TRIP = {"eyeriss": eyeriss, "eyeriss-isca2016": eyeriss_isca2016, "odd": _unusual,
              "example": lambda: load_hardware(EXAMPLE)}


@pytest.mark.parametrize("make", ROUND_TRIP.values(), ids=ROUND_TRIP.keys())
def test_dict_round_trip_is_exact(make: Any) -> None:
    hw = make()
    data = hardware_to_dict(hw)
    assert hardware_from_dict(data, source="<dict>") == hw
    assert hardware_to_dict(hardware_from_dict(data, source="<dict>")) == data


@pytest.mark.parametrize("make", ROUND_TRIP.values(), ids=ROUND_TRIP.keys())
def test_dump_then_load_is_exact(make: Any, tmp_path: Path) -> None:
    hw = make()
    dump_hardware(hw, tmp_path / "out.yaml")
    assert load_hardware(tmp_path / "out.yaml") == hw


def test_to_dict_refuses_array_with_different_read_and_write() -> None:
    hw = dataclasses.replace(eyeriss(), array=AccessCost(2.0, 3.0, 16))
    with pytest.raises(ValueError, match="transfer_energy"):
        hardware_to_dict(hw)


# ---------------------------------------------------------------------------- defaults


def test_defaults_word_bits_write_energy_and_access_bits() -> None:
    hw = hardware_from_dict(_data(word_bits=...), source="x")
    assert hw.word_bits == 16
    assert hw.dram == AccessCost(read=200.0, write=200.0, access_bits=16)


def test_access_bits_default_to_word_bits() -> None:
    hw = hardware_from_dict(_data(word_bits=8, dram__access_bits=64), source="x")
    assert hw.dram.access_bits == 64
    assert hw.glb.cost.access_bits == hw.array.access_bits == hw.rf.psums.access_bits == 8


def test_pads_inherit_register_file_fields_field_by_field() -> None:
    rf = {"read_energy": 1, "write_energy": 1.5, "access_bits": 32,
          "weights": {"size_bytes": 448, "read_energy": 2},
          "ifmaps": {"size_bytes": 24, "access_bits": 8},
          "psums": {"size_kb": 0.046875, "write_energy": 3}}
    hw = hardware_from_dict(_data(register_file=rf), source="x")
    assert hw.rf.weights == AccessCost(read=2.0, write=1.5, access_bits=32)
    assert hw.rf.ifmaps == AccessCost(read=1.0, write=1.5, access_bits=8)
    assert hw.rf.psums == AccessCost(read=1.0, write=3.0, access_bits=32)
    assert (hw.rf.unified, hw.rf.psums_bytes) == (False, 48)


def test_pad_write_energy_defaults_to_its_read_energy() -> None:
    pads = {p: {"size_bytes": 32, "read_energy": 0.5} for p in ("weights", "ifmaps", "psums")}
    hw = hardware_from_dict(_data(register_file=pads), source="x")
    assert hw.rf.weights == AccessCost(read=0.5, write=0.5, access_bits=16)


@pytest.mark.parametrize("text", ["12x14", "12 X 14", " 12x14 "])
def test_pe_array_accepts_text(text: str) -> None:
    hw = hardware_from_dict(_data(pe_array=text), source="x")
    assert (hw.pe_array.rows, hw.pe_array.cols) == (12, 14)


@pytest.mark.parametrize(("kb", "size"), [(108, 110592), (0.5, 512)])
def test_size_kb_is_1024_bytes(kb: float, size: int) -> None:
    data = _data(global_buffer__size_bytes=..., global_buffer__size_kb=kb)
    assert hardware_from_dict(data, source="x").glb.size_bytes == size


@pytest.mark.parametrize(("text", "unit"), [("pJ", EnergyUnit.PJ), ("PJ", EnergyUnit.PJ),
                                            ("Normalised", EnergyUnit.NORMALIZED)])
def test_unit_is_case_insensitive(text: str, unit: EnergyUnit) -> None:
    assert hardware_from_dict(_data(unit=text), source="x").unit is unit


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = yaml.safe_dump(_data(global_buffer=...), sort_keys=False) + (
        "global_buffer: {<<: &cost {read_energy: 6}, size_bytes: 110592}\n")
    assert load_hardware(_write(tmp_path, text)).glb.cost.read == 6.0


# ---------------------------------------------------------------------------- errors


def test_the_brief_example_message(tmp_path: Path) -> None:
    path, msg = _error(tmp_path, _data(global_buffer__size_bytes=-5))
    assert msg == f"{path}: global_buffer.size_bytes: must be a positive integer, got -5"


@pytest.mark.parametrize(("changes", "field", "detail"), [
    ({"global_bufer": {}}, "global_bufer", "did you mean 'global_buffer'?"),
    ({"global_buffer__sise_bytes": 1}, "global_buffer.sise_bytes", "did you mean 'size_bytes'?"),
    ({"register_file__psum": {}}, "register_file.psum", "did you mean 'psums'?"),
    ({"array__read_energy": 1}, "array.read_energy", "expected one of: transfer_energy"),
    ({"dram__clock_mhz": 60}, "dram.clock_mhz", "(clock_mhz belongs at the top level)"),
    ({"register_file__bandwidth_bits_per_cycle": 64}, "register_file.bandwidth_bits_per_cycle",
     "(bandwidth_bits_per_cycle belongs under dram or global_buffer)"),
    ({"bandwidth_bits_per_cycle": 64}, "bandwidth_bits_per_cycle",
     "(bandwidth_bits_per_cycle belongs under dram or global_buffer)"),
    ({"global_buffer__weights": {}}, "global_buffer.weights",
     "(weights is a scratch pad of register_file)"),
])
def test_unknown_key_suggests_the_closest(tmp_path: Path, changes: dict[str, Any], field: str,
                                          detail: str) -> None:
    path, msg = _error(tmp_path, _data(**changes))
    assert msg.startswith(f"{path}: {field}: unknown key") and detail in msg


@pytest.mark.parametrize(("changes", "field", "got"), [
    ({"global_buffer__read_energy": "6"}, "global_buffer.read_energy", "got '6' (a string)"),
    ({"mac_energy": True}, "mac_energy", "got true (a boolean)"),
    ({"pe_array__rows": True}, "pe_array.rows", "got true (a boolean)"),
    ({"global_buffer__size_bytes": 512.0}, "global_buffer.size_bytes", "got 512.0"),
    ({"word_bits": 16.5}, "word_bits", "got 16.5"),
    ({"dram__access_bits": "64"}, "dram.access_bits", "got '64' (a string)"),
    ({"dram": 200}, "dram", "must be a mapping, got 200"),
    ({"register_file__weights": [1]}, "register_file.weights", "must be a mapping, got a list"),
    ({"name": 7}, "name", "must be a non-empty string, got 7"),
    ({"pe_array": "12by14"}, "pe_array", "got '12by14' (a string)"),
    ({"pe_array": "0x14"}, "pe_array", "positive numbers"),
])
def test_wrong_type(tmp_path: Path, changes: dict[str, Any], field: str, got: str) -> None:
    path, msg = _error(tmp_path, _data(**changes))
    assert msg.startswith(f"{path}: {field}: ") and got in msg


@pytest.mark.parametrize(("changes", "field"), [
    ({"global_buffer__size_bytes": 0}, "global_buffer.size_bytes"),
    ({"register_file__size_bytes": -1}, "register_file.size_bytes"),
    ({"global_buffer__size_bytes": ..., "global_buffer__size_kb": -1}, "global_buffer.size_kb"),
    ({"global_buffer__size_bytes": ..., "global_buffer__size_kb": 0.3}, "global_buffer.size_kb"),
    ({"pe_array__cols": 0}, "pe_array.cols"),
    ({"word_bits": 0}, "word_bits"),
    ({"array__access_bits": -16}, "array.access_bits"),
])
def test_non_positive_size(tmp_path: Path, changes: dict[str, Any], field: str) -> None:
    path, msg = _error(tmp_path, _data(**changes))
    assert msg.startswith(f"{path}: {field}: ")


@pytest.mark.parametrize(("changes", "field"), [
    ({"dram__read_energy": -1}, "dram.read_energy"),
    ({"dram__write_energy": -0.5}, "dram.write_energy"),
    ({"mac_energy": -1}, "mac_energy"),
    ({"array__transfer_energy": float("nan")}, "array.transfer_energy"),
    ({"global_buffer__read_energy": float("inf")}, "global_buffer.read_energy"),
    ({"register_file__write_energy": -1}, "register_file.write_energy"),
])
def test_negative_or_non_finite_energy(tmp_path: Path, changes: dict[str, Any],
                                       field: str) -> None:
    path, msg = _error(tmp_path, _data(**changes))
    assert msg.startswith(f"{path}: {field}: must be a non-negative number, got ")


@pytest.mark.parametrize("field", ["dram", "global_buffer", "array", "register_file",
                                   "pe_array", "mac_energy", "name", "unit"])
def test_missing_required_field(tmp_path: Path, field: str) -> None:
    path, msg = _error(tmp_path, _data(**{field: ...}))
    assert msg == f"{path}: {field}: required"


@pytest.mark.parametrize(("changes", "field"), [
    ({"dram__read_energy": ...}, "dram.read_energy"),
    ({"global_buffer__size_bytes": ...}, "global_buffer.size_bytes"),
    ({"array__transfer_energy": ...}, "array.transfer_energy"),
    ({"dram": None}, "dram"),
])
def test_missing_required_subfield(tmp_path: Path, changes: dict[str, Any], field: str) -> None:
    path, msg = _error(tmp_path, _data(**changes))
    assert msg.startswith(f"{path}: {field}: required")


def test_unified_and_separate_register_file_both_given(tmp_path: Path) -> None:
    path, msg = _error(tmp_path, _data(register_file__weights={"size_bytes": 448}))
    assert msg.startswith(f"{path}: register_file.weights: ") and "unified" in msg


def test_separate_register_file_needs_all_three_sizes(tmp_path: Path) -> None:
    rf = {"read_energy": 1, "weights": {"size_bytes": 448}, "ifmaps": {"size_bytes": 24}}
    path, msg = _error(tmp_path, _data(register_file=rf))
    assert msg.startswith(f"{path}: register_file.psums.size_bytes: required")


def test_register_file_needs_a_size(tmp_path: Path) -> None:
    path, msg = _error(tmp_path, _data(register_file__size_bytes=...))
    assert msg.startswith(f"{path}: register_file: give size_bytes")


def test_pad_energy_needed_somewhere(tmp_path: Path) -> None:
    rf = {p: {"size_bytes": 32, "read_energy": 1} for p in ("weights", "ifmaps", "psums")}
    del rf["ifmaps"]["read_energy"]
    path, msg = _error(tmp_path, _data(register_file=rf))
    assert msg == f"{path}: register_file.ifmaps.read_energy: required here or in register_file"


def test_size_bytes_and_size_kb_both_given(tmp_path: Path) -> None:
    path, msg = _error(tmp_path, _data(global_buffer__size_kb=108))
    assert msg == f"{path}: global_buffer: give size_bytes or size_kb, not both"


def test_unknown_unit(tmp_path: Path) -> None:
    path, msg = _error(tmp_path, _data(unit="joules"))
    assert msg == f"{path}: unit: unknown unit 'joules' (a string); expected one of: normalized, pJ"


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path, msg = _error(tmp_path, "name: chip\nunit: pJ\ndram: {read_energy: 1\narray: x\n")
    assert msg.startswith(f"{path}: line ") and "invalid YAML" in msg
    line = re.search(r"line (\d+)", msg)
    assert line is not None and int(line[1]) == 4  # where the unclosed {...} is detected


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False) + "dram: {read_energy: 100}\n"
    path, msg = _error(tmp_path, text)
    assert msg.startswith(f"{path}: line {len(text.splitlines())}, column 1: ")
    assert "duplicate key 'dram'" in msg


def test_python_tags_are_rejected(tmp_path: Path) -> None:
    path, msg = _error(tmp_path, "name: !!python/object/apply:os.getcwd []\n")
    assert msg.startswith(f"{path}: line 1, ") and "invalid YAML" in msg


def test_file_not_found(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    for source in (missing, str(missing)):
        with pytest.raises(HardwareFileError) as info:
            load_hardware(source)
        assert str(info.value) == f"{missing}: file not found"


@pytest.mark.parametrize(("text", "detail"), [
    ("- a\n- b\n", "the top level must be a mapping, got a list"),
    ("just text\n", "the top level must be a mapping, got 'just text' (a string)"),
    ("", "the file is empty"),
    ("1: x\n", "keys must be strings, got 1"),
])
def test_top_level_not_a_mapping(tmp_path: Path, text: str, detail: str) -> None:
    path, msg = _error(tmp_path, text)
    assert msg.startswith(f"{path}: {detail}")


def test_from_dict_names_the_given_source() -> None:
    with pytest.raises(HardwareFileError, match=r"^<cli>: mac_energy: "):
        hardware_from_dict(_data(mac_energy="lots"), source="<cli>")


# ---------------------------------------------------------------------------- limits and numbers

_BASE_TEXT = """\
name: chip
unit: pJ
pe_array: 12x14
mac_energy: {mac}
dram: {{read_energy: {dram}}}
global_buffer: {{size_kb: 108, read_energy: 6}}
array: {{transfer_energy: 2}}
register_file: {{size_bytes: 512, read_energy: 1}}
"""


@pytest.mark.parametrize(("written", "value"), [
    ("1e-3", 0.001), ("1E-3", 0.001), ("1e30", None), ("2.5e+2", 250.0), (".5e1", 5.0),
    ("7e0", 7.0), ("1.0e+308", None), ("5", 5.0), ("0.25", 0.25),
])
def test_numbers_as_people_write_them(tmp_path: Path, written: str, value: float | None) -> None:
    # YAML 1.2 reads 1e-3 as a float; PyYAML's YAML 1.1 rule would make it a string
    path = _write(tmp_path, _BASE_TEXT.format(mac=written, dram=200))
    if value is None:  # a number, only too large
        with pytest.raises(HardwareFileError, match=rf"^{re.escape(str(path))}: mac_energy: "
                          r"must be at most 1e\+12 \(larger totals would overflow\), got"):
            load_hardware(path)
    else:
        assert load_hardware(path).mac == value


def test_integers_stay_integers_and_strings_stay_strings(tmp_path: Path) -> None:
    text = _BASE_TEXT.format(mac=1, dram=200).replace("name: chip", "name: 1e3x")
    hw = load_hardware(_write(tmp_path, text.replace("size_bytes: 512", "size_bytes: 1024")))
    assert hw.name == "1e3x" and hw.rf.size_bytes == 1024
    path, msg = _error(tmp_path, text.replace("size_bytes: 512", "size_bytes: 1e3"))
    assert msg == f"{path}: register_file.size_bytes: must be a positive integer, got 1000.0"


@pytest.mark.parametrize(("field", "written", "message"), [
    ("mac_energy", "mac_energy: 1.0e+308", "must be at most 1e+12 (larger totals would "
                                           "overflow), got 1e+308"),
    ("dram.read_energy", "dram: {read_energy: 1.0e+308}", "must be at most 1e+12"),
    ("dram.write_energy", "dram: {read_energy: 1, write_energy: 2e12}", "must be at most 1e+12"),
    ("pe_array", "pe_array: 1000000x1000000", "1000000x1000000 is 1000000000000 PEs, more than "
                                              "the 65536 (256x256) the mapping search supports"),
    ("pe_array", "pe_array: {rows: 300, cols: 300}", "300x300 is 90000 PEs"),
    ("pe_array.rows", "pe_array: {rows: 99999999999999999999, cols: 1}",
     "must be at most 65536, got 99999999999999999999"),
    ("register_file.size_bytes", "register_file: {size_bytes: 1000000000000000000000, "
                                 "read_energy: 1}",
     "must be at most 1099511627776, got 1000000000000000000000"),
    ("global_buffer.size_kb", "global_buffer: {size_kb: 1e20, read_energy: 6}",
     "must be at most 1073741824 (1 TiB), got 1e+20"),
    ("word_bits", "word_bits: 100000", "must be at most 4096, got 100000"),
    ("array.access_bits", "array: {transfer_energy: 2, access_bits: 10000}",
     "must be at most 4096"),
])
def test_values_that_would_overflow_are_bounded(tmp_path: Path, field: str, written: str,
                                                message: str) -> None:
    key = written.split(":")[0]
    lines = [line for line in _BASE_TEXT.format(mac=1, dram=200).splitlines()
             if not line.startswith(f"{key}:")]
    path, msg = _error(tmp_path, "\n".join([*lines, written]) + "\n")
    assert msg.startswith(f"{path}: {field}: ") and message in msg, msg


def test_largest_allowed_values_give_finite_energies(tmp_path: Path) -> None:
    import math

    from nnjoules.energy.estimate import estimate

    # every energy at the bound on a 256x256 array: every total stays finite
    text = _BASE_TEXT.format(mac="1e12", dram="1e12").replace("12x14", "256x256")
    report = estimate(_tiny_net(), _tiny_input(), hardware=load_hardware(_write(tmp_path, text)))
    assert math.isfinite(report.total()) and report.total() > 1e12


def test_bounds_hold_for_hardware_built_in_python() -> None:
    from nnjoules.energy.hardware import PEArray

    with pytest.raises(ValueError, match="more than the 65536"):
        PEArray(rows=1000, cols=1000)
    with pytest.raises(ValueError, match=r"read energy must be a number in \[0, 1e\+12\]"):
        AccessCost(read=1e308, write=1.0)
    with pytest.raises(ValueError, match=r"must be a number in \[0, 1e\+12\], got nan"):
        AccessCost(read=1.0, write=float("nan"))
    with pytest.raises(ValueError, match=r"mac energy must be a number"):
        dataclasses.replace(eyeriss(), mac=float("inf"))


def test_a_non_finite_energy_is_never_reported() -> None:
    # validation is bypassed here, as a later rule or a subclass might: cost.py still refuses
    from nnjoules.energy.cost import Compression, energy_of
    from nnjoules.energy.dataflows.row_stationary.access import count_accesses
    from nnjoules.energy.dataflows.row_stationary.mapping import Mapping
    from nnjoules.energy.workload import Layer, LayerKind

    hw = eyeriss()
    object.__setattr__(hw.dram, "read", 1e308)  # two DRAM reads: 2e308 overflows
    one = Layer("one", LayerKind.FC, N=1, M=1, C=1, H=1, W=1, R=1, S=1, E=1, F=1)
    counts = count_accesses(one, Mapping(1, 1, 1, 1, 1, 1, 1))
    with pytest.raises(InputError, match=r"^layer 'one': its energy on hardware 'eyeriss' is "
                                         "not a finite number"):
        energy_of(counts, one, hw, Compression.NONE)


def _tiny_net() -> Any:
    from torch import nn

    return nn.Sequential(nn.Linear(64, 64))


def _tiny_input() -> Any:
    import torch

    return torch.ones(2, 64)


@pytest.mark.parametrize(("written", "got"), [
    ("pe_array: 0x14", "got 20 (YAML reads 0x... as a hexadecimal number)"),  # YAML's hex
    ("pe_array: [12, 14]", "got a list"),
    ("pe_array: 168", "got 168 (YAML reads"),
])
def test_a_pe_array_that_is_no_text_and_no_mapping_shows_both_forms(
        tmp_path: Path, written: str, got: str) -> None:
    text = _BASE_TEXT.format(mac=1, dram=200).replace("pe_array: 12x14", written)
    path, msg = _error(tmp_path, text)
    assert msg.startswith(f"{path}: pe_array: must be 'ROWSxCOLS' with positive numbers, "
                          "e.g. '12x14', or {rows: 12, cols: 14}; ")
    assert got in msg

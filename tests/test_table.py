"""Text tables fit the width, never cut a number, keep every layer, and total below."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import OrderedDict
from dataclasses import replace

import pytest
import torch
from torch import nn

import nnjoules
from nnjoules.energy.workload import Precision, Workload
from nnjoules.report.table import shorten_middle, table_width

HEADERS = ["layer", "kind", "shape", "MACs", "non-skipped", "energy", "%", "DRAM", "GLB",
           "array", "RF", "MAC", "E/MAC", "cycles", "bound", "mapping m n e p q r t"]
SUFFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.self_attention = nn.Linear(16, 16)
        self.mlp = nn.Sequential(nn.Linear(16, 48), nn.GELU(), nn.Linear(48, 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.self_attention(x))


class _Encoder(nn.Module):
    """Module paths as long as torchvision's ViT: encoder.layers.encoder_layer_7.mlp.2."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", _Layer()) for i in range(12)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def long_names_report() -> nnjoules.EnergyReport:
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict(encoder=_Encoder(), head=nn.Linear(16, 10)))
    return nnjoules.estimate(model.eval(), torch.randn(4, 16))


def small_report() -> nnjoules.EnergyReport:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    return nnjoules.estimate(model.eval(), torch.randn(1, 1, 8, 8))


def number(text: str) -> float:
    """``448.5M`` -> 448.5e6 (the inverse of the table's SI format)."""
    match = re.fullmatch(r"(-?[0-9.e+-]+)([kMGT]?)", text)
    assert match, f"not a whole number: {text!r}"
    return float(match.group(1)) * SUFFIX[match.group(2)]


def table_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the table part of ``to_table`` (columns are 2+ spaces apart)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    headers = re.split(r" {2,}", lines[start].strip())
    rows = []
    for line in lines[start + 2:]:
        if not line or line.startswith("(left out"):
            break
        rows.append(re.split(r" {2,}", line.strip()))
    return headers, rows


@pytest.mark.parametrize("make", [small_report, long_names_report])
@pytest.mark.parametrize("width", [60, 80, 120, 250])
def test_table_fits_width_keeps_every_layer_and_whole_numbers(make, width):
    report = make()
    text = report.to_table(width)
    assert all(len(line) <= width for line in text.splitlines()), text
    headers, rows = table_rows(text)
    assert len(rows) == len(report.layers)
    total = report.total()
    for cells, item in zip(rows, report.layers, strict=True):
        assert len(cells) == len(headers)
        shown = cells[0]
        if shown != item.name:  # shortened in the middle: a start and an end of the name
            head, tail = shown.split("…")
            assert item.name.startswith(head) and item.name.endswith(tail)
        assert all("…" not in cell for cell in cells[1:]), cells
        row = dict(zip(headers, cells, strict=True))
        assert number(row["energy"]) == pytest.approx(item.total, rel=5e-4)
        assert float(row["%"]) == pytest.approx(100 * item.total / total, abs=0.051)
        if "MACs" in row:
            assert number(row["MACs"]) == pytest.approx(item.layer.macs, rel=5e-4)
    shortened = [cells[0] for cells in rows]
    assert len(set(shortened)) == len(report.layers)  # names stay told apart
    dropped = [h for h in HEADERS if h not in headers]
    assert ("(left out" in text) == bool(dropped)
    for header in dropped:
        assert header in " ".join(text.split())  # named in the note
    if width == 250:
        assert headers == HEADERS


def test_totals_on_their_own_lines_with_bits():
    report = small_report()
    lines = report.to_table(100).splitlines()
    assert not any(line.startswith("total ") and "layers" in line for line in lines)
    energy = next(line for line in lines if line.startswith("total energy"))
    assert number(energy.split()[2]) == pytest.approx(report.total(), rel=5e-4)
    macs = next(line for line in lines if line.startswith("MACs "))
    conv, fc = 4 * 6 * 6 * 9, 10 * 144  # hand count: Conv2d(1,4,3) on 8x8, Linear(144,10)
    assert number(macs.split()[1].rstrip(",")) == conv + fc
    level = next(line for line in lines if line.startswith("by level"))
    assert number(level.split("DRAM ")[1].split(",")[0]) == pytest.approx(
        report.by_level()["dram"], rel=5e-4)
    assert any(line.startswith("by operand") for line in lines)
    assert "bits          weights 16, ifmaps 16, ofmaps 16" in lines


def test_mixed_bit_widths_are_listed_per_layer():
    report = small_report()
    first, second = report.workload.layers
    workload = Workload("mixed", (replace(first, precision=Precision(8, 8, 16)), second))
    text = nnjoules.estimate(workload).to_table(100)
    assert "weights/ifmaps/ofmaps 8/8/16 (1 layers), 16/16/16 (1 layers)" in text


def test_default_width_is_columns_then_100_when_not_a_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert table_width() == 250
    wide = long_names_report().to_table()
    assert "mapping m n e p q r t" in wide and "(left out" not in wide
    monkeypatch.setenv("COLUMNS", "70")
    assert max(len(line) for line in long_names_report().to_table().splitlines()) <= 70
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    piped = subprocess.run(  # stdout is a pipe: not a terminal
        [sys.executable, "-c", "from nnjoules.report.table import table_width; "
         "print(table_width())"], env=env, capture_output=True, text=True, check=True)
    assert piped.stdout.strip() == "100"
    assert table_width(10) == 40  # narrower widths are taken as the minimum


def test_shorten_middle_keeps_a_third_of_the_start_and_the_rest_of_the_end():
    name = "encoder.layers.encoder_layer_11.mlp.3"
    assert shorten_middle(name, 22) == "encoder" + "…" + name[-14:]
    assert shorten_middle(name, len(name)) == name


def test_compare_and_sweep_tables_fit_too():
    from nnjoules.energy.sweep import sweep
    from nnjoules.report.compare import compare

    small, long = small_report(), long_names_report()
    result = compare([small, long], ["small", "long"])
    for width in (60, 120):
        text = result.to_table(width=width)
        assert all(len(line) <= width for line in text.splitlines())
        assert "…" not in text
        assert f"{long.total() / small.total():.2f}x" in text
    swept = sweep(long.workload, {"glb_kb": ["32", "64", "108"]})
    text = swept.to_table(width=60)
    assert all(len(line) <= 60 for line in text.splitlines()) and "…" not in text
    assert len([line for line in text.splitlines() if re.match(r" *[0-9]+ {2}", line)]) == 3


def test_energy_per_mac_stays_short_on_costly_hardware():
    from nnjoules.energy.hardware import eyeriss
    from nnjoules.report.compare import compare
    from toy_reports import toy_report

    base = eyeriss()
    costly = replace(base, name="costly", dram=replace(base.dram, read=1e12, write=1e12))
    report = toy_report(hardware=costly)
    per_mac = report.total() / report.macs()  # about 1e10 here: 10 digits with .2f
    assert per_mac > 1e9
    text = " ".join(report.to_table(width=200).split())
    digits, suffix = re.search(r"\(([\d.]+)([kMGT]) per MAC", text).groups()
    assert float(digits) * SUFFIX[suffix] == pytest.approx(per_mac, rel=1e-3)
    assert f"{per_mac:.2f}" not in text
    table = compare([report, toy_report(hardware=base)]).to_table(width=200)
    assert f"{per_mac:.2f}" not in table


JOULES = {"pJ": 1.0, "nJ": 1e3, "uJ": 1e6, "mJ": 1e9, "J": 1e12}  # in pJ


@pytest.mark.parametrize("value, unit, text", [
    (5.83e9, "pJ", "5.83 mJ"),  # 5.83e9 pJ = 5.83e-3 J
    (5_834_567_890, "pJ", "5.835 mJ"),  # four significant digits
    (24_544_000, "pJ", "24.54 uJ"),
    (1500, "pJ", "1.5 nJ"),
    (512.3, "pJ", "512.3 pJ"),
    (2.5e12, "pJ", "2.5 J"),
    (999_960_000, "pJ", "1 mJ"),  # 999.96 uJ rounds to 1000 uJ: said as 1 mJ
    (5.8e9, "normalized", "5.8G normalized"),  # no absolute scale: SI suffix, as before
])
def test_energy_text_uses_the_natural_unit_of_a_pj_energy(value: float, unit: str,
                                                           text: str) -> None:
    from nnjoules.report.table import energy_text

    assert energy_text(value, unit) == text


def _joules(text: str) -> tuple[float, float]:
    """``"5.83 mJ"`` -> (5.83, 5.83e9 pJ)."""
    digits, unit = text.split()
    return float(digits), float(digits) * JOULES[unit]


def test_pj_report_totals_read_in_joules_and_columns_stay_in_pj() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16 * 30 * 30, 10))
    report = nnjoules.estimate(model.eval(), torch.randn(2, 3, 32, 32),
                               hardware="eyeriss-65nm-pj")
    total = report.total()
    lines = report.to_table(200).splitlines()
    energy = next(line for line in lines if line.startswith("total energy"))
    match = re.fullmatch(r"total energy  (\S+ \S+) for the batch; per item (\S+ \S+) "
                         r"\(([\d.]+) pJ per MAC; data movement [\d.]+%\)", energy)
    assert match, energy
    mantissa, pj = _joules(match.group(1))
    assert 1 <= mantissa < 1000 and pj == pytest.approx(total, rel=5e-4)
    items = report.items()
    assert items == 2 and _joules(match.group(2))[1] == pytest.approx(total / items, rel=5e-4)
    assert float(match.group(3)) == pytest.approx(total / report.macs(), abs=0.005)
    level = next(line for line in lines if line.startswith("by level"))
    dram = level.split("DRAM ")[1].split(",")[0]
    assert _joules(dram)[1] == pytest.approx(report.by_level()["dram"], rel=5e-4)
    operand = next(line for line in lines if line.startswith("by operand"))
    weights = operand.split("weights ")[1].split(",")[0]
    assert _joules(weights)[1] == pytest.approx(report.by_operand()["weights"], rel=5e-4)
    # the per-layer energy column stays in the report's unit, pJ, with an SI suffix
    first = next(line for line in lines if line.startswith(report.layers[0].name))
    assert any(cell and number(cell) == pytest.approx(report.layers[0].total, rel=5e-4)
               for cell in first.split() if re.fullmatch(r"[0-9.]+[kMGT]?", cell))
    assert report.to_dict()["totals"]["energy"] == total  # JSON: pJ, unrounded

"""The demo's comparison table: both ratio columns read the same way, on every row."""

from __future__ import annotations

import re

import torch
from torch import nn

import nnjoules
from nnjoules.commands.demo import comparison_table, dense_table
from nnjoules.prune.result import PruneResult, StepRecord


def _result(method: str, dense_energy: float, energy: float, accuracy: float) -> PruneResult:
    def step(r: int, e: float, acc: float, nonzero: int) -> StepRecord:
        return StepRecord(round=r, accepted=True, accuracy=acc, energy=e,
                          nonzero_weights=nonzero, weights=1000, nonskipped_macs=e / 10,
                          macs=5000, rate=0.0 if r == 0 else 0.3, seconds=1.0)

    history = (step(0, dense_energy, 0.90, 1000), step(1, energy, accuracy, 400))
    return PruneResult(model=nn.Identity(), method=method, history=history,
                       reference_accuracy=0.905, accuracy_floor=0.895, energy_target=None,
                       stop_reason="rounds", extra={"test_accuracy": accuracy - 0.002})


def _ratios(table: str, row: str) -> tuple[float, float]:
    line = next(line for line in table.splitlines() if line.startswith(row))
    dense, magn = re.findall(r"([0-9.]+)x", line)
    return float(dense), float(magn)


def test_every_row_divides_the_named_models_energy_by_its_own():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    report = nnjoules.estimate(model.eval(), torch.randn(1, 1, 8, 8))
    e = report.total()
    results = {"energy-aware": _result("energy-aware", e, e / 4, 0.899),
               "magnitude": _result("magnitude", e, e / 2, 0.897)}
    ref = {"accuracy": 0.905, "test_accuracy": 0.9, "epochs": 3.0}
    table = comparison_table(report, {"accuracy": 0.9099, "test_accuracy": 0.9057}, ref,
                             results)
    header = table.splitlines()[1]
    assert "dense/this" in header and "magn./this" in header
    # hand-worked: dense uses e, magnitude e/2, energy-aware e/4
    assert _ratios(table, "dense (shipped)") == (1.00, 0.50)  # was 2.00: inverted
    assert _ratios(table, "energy-aware") == (4.00, 2.00)
    assert _ratios(table, "magnitude") == (2.00, 1.00)
    assert "how many times less energy this row uses" in table
    energy_aware = next(line for line in table.splitlines() if line.startswith("energy-aware"))
    assert f"{e / 4:,.0f}" in energy_aware and "89.90%" in energy_aware
    # every row's cells sit under their headers: val acc of the shipped model is shown,
    # the reference's extra epochs are in its name, not in the energy column
    lines = table.splitlines()
    header = lines[1]
    ends = {name: header.index(name) + len(name) for name in ("val acc", "test acc", "energy")}
    shipped = next(line for line in lines if line.startswith("dense (shipped)"))
    assert shipped[:ends["val acc"]].endswith("90.99%")
    assert shipped[:ends["test acc"]].endswith("90.57%")
    reference = next(line for line in lines if line.startswith("dense reference +3 ep"))
    assert reference[:ends["val acc"]].endswith("90.50%")
    assert reference[:ends["test acc"]].endswith("90.00%")
    assert reference[:ends["energy"]].endswith(" -") and "epochs)" not in reference
    assert len({len(line) for line in lines[1:6]}) == 1  # one width: header, rule, 4 rows


def test_channel_pruning_gets_a_row_read_like_the_others():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    report = nnjoules.estimate(model.eval(), torch.randn(1, 1, 8, 8))
    e = report.total()
    results = {"energy-aware": _result("energy-aware", e, e / 4, 0.899),
               "magnitude": _result("magnitude", e, e / 2, 0.897),
               "energy-aware-channel": _result("energy-aware", e, e / 5, 0.896)}
    ref = {"accuracy": 0.905, "test_accuracy": 0.9, "epochs": 3.0}
    table = comparison_table(report, {"accuracy": 0.9, "test_accuracy": 0.9}, ref, results)
    assert _ratios(table, "energy-aware-channel") == (5.00, 2.50)  # e / (e/5), (e/2) / (e/5)
    lines = table.splitlines()
    assert len({len(line) for line in lines[1:7]}) == 1  # header, rule, 5 rows


def test_dense_table_states_the_bit_widths():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 10))
    report = nnjoules.estimate(model.eval(), torch.randn(1, 1, 8, 8), bits=8)
    text = dense_table(report, "toy data", 16)
    assert "bits: weights 8, ifmaps 8, ofmaps 8" in text
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert f"{report.total():,.0f}" in total

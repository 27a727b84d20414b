"""The committed ISCA 2016 dataflow comparison (benchmarks/results/dataflows.json):
recomputed in part, and its findings pinned."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "paper"))

import dataflows as bench  # noqa: E402

DOC = json.loads((ROOT / "benchmarks" / "results" / "dataflows.json").read_text())


def point(pes: int, batch: int, abbr: str) -> dict[str, Any]:
    return next(p for p in DOC["points"]
                if (p["pes"], p["batch"], p["abbreviation"]) == (pes, batch, abbr))


@pytest.mark.parametrize(("pes", "batch", "name"), [
    (256, 1, "row-stationary"), (256, 1, "weight-stationary"),
    (256, 1, "output-stationary-a"), (256, 1, "output-stationary-b"),
    (256, 1, "output-stationary-c"), (256, 1, "no-local-reuse"),
    (1024, 16, "output-stationary-c"), (256, 64, "weight-stationary")])
def test_committed_points_are_what_the_code_gives(pes: int, batch: int, name: str) -> None:
    fresh = json.loads(json.dumps(bench.run_point(pes, batch, name)))
    committed = next(p for p in DOC["points"]
                     if (p["pes"], p["batch"], p["dataflow"]) == (pes, batch, name))
    assert fresh == committed


def test_rs_is_the_most_efficient_everywhere() -> None:
    for p in DOC["points"]:
        rs = point(p["pes"], p["batch"], "RS")
        for kind in ("conv", "fc"):
            if p[kind] is not None:
                assert p[kind]["energy_per_mac"] >= rs[kind]["energy_per_mac"] - 1e-9


def test_conv_ratios_stay_in_the_papers_band() -> None:
    """Paper: 1.4x to 2.5x; ours 1.40x to 2.54x (pinned at 1.39 to 2.56)."""
    ratios = [r["ratio"] for r in bench.ratios(DOC["points"], "conv")]
    assert len(ratios) == 9 * 5 - 1  # WS cannot run at 256 PEs, N = 64
    assert 1.39 <= min(ratios) and max(ratios) <= 2.56
    assert DOC["checks"]["conv_range"]["holds"]


def test_fc_at_batch_16_and_the_documented_shortfall() -> None:
    """Paper: at least 1.3x; ours at least 1.38x on 256 and 512 PEs, 1.28x on 1024
    (OS-B 1.29x, OS-C 1.28x: documented in docs/model.md)."""
    fc16 = [r for r in bench.ratios(DOC["points"], "fc") if r["batch"] == 16]
    assert min(r["ratio"] for r in fc16 if r["pes"] < 1024) >= 1.37
    short = {(r["dataflow"], r["pes"]) for r in fc16 if r["ratio"] < 1.3}
    assert short == {("OS-B", 1024), ("OS-C", 1024)}
    assert min(r["ratio"] for r in fc16) >= 1.27
    assert DOC["checks"]["fc_n16_floor"]["holds_to_two_digits"]


def test_only_ws_at_batch_64_on_256_pes_cannot_run() -> None:
    failed = [(p["pes"], p["batch"], p["abbreviation"], kind) for p in DOC["points"]
              for kind in ("conv", "fc") if p[kind] is None]
    assert failed == [(256, 64, "WS", "conv")]
    assert "GLB" in point(256, 64, "WS")["conv_error"]


def test_dram_accesses_order_of_fig_11() -> None:
    assert DOC["checks"]["dram_order"]["holds"]


def test_energy_splits_add_up() -> None:
    for p in DOC["points"]:
        for kind in ("conv", "fc"):
            part = p[kind]
            if part is not None:
                assert sum(part["by_level"].values()) == pytest.approx(part["energy_per_mac"])
                assert sum(part["by_operand"].values()) == pytest.approx(
                    part["energy_per_mac"])
                assert part["by_level"]["mac"] == pytest.approx(1.0)

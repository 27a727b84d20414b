"""The sparsity rules (`--compression-levels`, `--gating`) reach every stage that costs."""

from __future__ import annotations

import json

import pytest
import torch

import nnjoules
from nnjoules.cli import main
from nnjoules.energy.cost import CompressionLevels, Gating
from nnjoules.energy.hardware import Level
from nnjoules.energy.workload import Density, Layer, LayerKind, Operand, Workload
from nnjoules.errors import InputError

CONV = Layer("conv", LayerKind.CONV, N=1, M=16, C=8, H=10, W=10, R=3, S=3, E=8, F=8)
SPARSE = Workload("sparse", (CONV.with_density(Density(weights=0.25, ifmaps=0.5)),))


def test_glb_and_array_moves_carry_compressed_bits_where_asked():
    """Significance map at 16 bits: 1 + d * 16 bits a value; ifmaps d = 0.5 -> 9/16 of raw,
    weights d = 0.25 -> 5/16 of raw, psums raw on chip, the DRAM unchanged."""
    reports = {lv: nnjoules.estimate(SPARSE, compression_levels=lv.value)
               for lv in CompressionLevels}
    base = reports[CompressionLevels.DRAM]
    # same mapping under each rule here, so energy ratios are bit ratios
    assert len({r.layers[0].mapping for r in reports.values()}) == 1
    data = {lv: r.layers[0].energy.data for lv, r in reports.items()}
    for lv, glb, array in ((CompressionLevels.DRAM_GLB, 9 / 16, 1.0),
                           (CompressionLevels.ALL, 9 / 16, 9 / 16)):
        assert data[lv][Level.GLB, Operand.IFMAPS] == pytest.approx(
            data[CompressionLevels.DRAM][Level.GLB, Operand.IFMAPS] * glb)
        assert data[lv][Level.ARRAY, Operand.IFMAPS] == pytest.approx(
            data[CompressionLevels.DRAM][Level.ARRAY, Operand.IFMAPS] * array)
        for key in ((Level.DRAM, Operand.IFMAPS), (Level.GLB, Operand.PSUMS),
                    (Level.ARRAY, Operand.PSUMS), (Level.RF, Operand.IFMAPS)):
            assert data[lv][key] == pytest.approx(data[CompressionLevels.DRAM][key])
    assert data[CompressionLevels.ALL][Level.ARRAY, Operand.WEIGHTS] == pytest.approx(
        data[CompressionLevels.DRAM][Level.ARRAY, Operand.WEIGHTS] * 5 / 16)
    assert reports[CompressionLevels.ALL].total() < base.total()
    assert reports[CompressionLevels.ALL].to_dict()["compression_levels"] == "all"
    assert base.to_dict()["compression_levels"] == "dram"


def test_unknown_rules_are_one_clear_error():
    with pytest.raises(InputError, match="unknown compression levels 'sram'; choose one of "
                                         "dram, dram,glb, all"):
        nnjoules.estimate(SPARSE, compression_levels="sram")
    with pytest.raises(InputError, match="unknown gating 'zeros'; choose one of either, ifmap, "
                                         "none, compressed-weights"):
        nnjoules.estimate(SPARSE, gating="zeros")


def test_sweep_and_cli_pass_the_levels_through(tmp_path, capsys):
    from nnjoules.energy.sweep import sweep

    direct = nnjoules.estimate(SPARSE, compression_levels="all")
    swept = sweep(SPARSE, {"bits": ["16"]}, compression_levels="all")
    assert swept.points[0].totals.energy == pytest.approx(direct.total())
    out = tmp_path / "r.json"
    code = main(["estimate", "tests.test_sparsity_rules:tiny_net", "--input-shape", "3,8,8",
                 "--compression-levels", "dram,glb", "--gating", "compressed-weights",
                 "--json", str(out), "--quiet"])
    assert code == 0
    doc = json.loads(out.read_text())
    assert (doc["compression_levels"], doc["gating"]) == ("dram,glb", "compressed-weights")
    with pytest.raises(SystemExit) as exit_info:  # argparse's choices: usage error
        main(["estimate", "alexnet", "--compression-levels", "sram"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'sram'" in capsys.readouterr().err


def tiny_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(144, 5))


def test_the_html_report_names_the_rules():
    text = nnjoules.estimate(SPARSE, compression_levels="all",
                             gating="compressed-weights").to_html()
    assert "also weights and ifmaps passed across the PE array" in text
    assert "compressed-weights: zero weights are stored compressed" in text


def test_pruning_costs_with_the_configured_rules():
    from nnjoules.prune.config import PruneConfig
    from nnjoules.prune.energy import EnergyMeter

    model = tiny_net()
    with pytest.raises(InputError, match="unknown compression levels 'sram'"):
        PruneConfig(compression_levels="sram")
    with pytest.raises(InputError, match="unknown gating 'zeros'"):
        PruneConfig(gating="zeros")
    inputs = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    meter = EnergyMeter(inputs, batch=2, gating=Gating.COMPRESSED_WEIGHTS.value,
                        compression_levels="all")
    report = meter.report(model)
    assert (report.gating, report.compression_levels) == (Gating.COMPRESSED_WEIGHTS,
                                                          CompressionLevels.ALL)
    floor = meter.floor_report(model, report)
    assert (floor.gating, floor.compression_levels) == (report.gating, CompressionLevels.ALL)
    direct = nnjoules.estimate(report.workload, gating="compressed-weights",
                               compression_levels="all")
    assert report.total() == pytest.approx(direct.total())

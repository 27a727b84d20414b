"""Charts: the bars drawn are the report's numbers, the axes name the unit."""

from __future__ import annotations

import io
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from PIL import Image

from nnjoules.energy.hardware.loading import load_hardware
from nnjoules.errors import InputError
from nnjoules.report.compare import compare
from nnjoules.report.plots import (
    KINDS,
    figure_bytes,
    plot_report,
    save_figure,
    save_report_plots,
)
from toy_reports import toy_report

ROOT = Path(__file__).resolve().parents[1]
PJ_HARDWARE = ROOT / "examples" / "hardware" / "eyeriss-like-45nm-pj.yaml"
OPERAND_LABELS = ["ifmaps", "ofmaps (incl. psums)", "weights", "computation"]
OPERAND_KEYS = ["ifmaps", "psums", "weights", "computation"]
LEVEL_LABELS = ["DRAM", "GLB", "array", "RF", "MAC"]
LEVEL_KEYS = ["dram", "glb", "array", "rf", "mac"]


@pytest.fixture(scope="module")
def report():
    return toy_report()


def bars(ax) -> dict[str, BarContainer]:
    return {c.get_label(): c for c in ax.containers if isinstance(c, BarContainer)}


def heights(container: BarContainer) -> list[float]:
    return [patch.get_height() for patch in container.patches]


@pytest.mark.parametrize(("kind", "labels", "keys", "values_of"), [
    ("operand", OPERAND_LABELS, OPERAND_KEYS, lambda item: item.by_operand()),
    ("level", LEVEL_LABELS, LEVEL_KEYS, lambda item: item.by_level()),
])
def test_per_layer_stacks_are_the_report_numbers(report, kind, labels, keys, values_of):
    fig = report.plot(kind)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    drawn = bars(ax)
    assert list(drawn) == labels
    bottoms = [0.0] * len(report.layers)
    for label, key in zip(labels, keys, strict=True):
        patches = drawn[label].patches
        for i, item in enumerate(report.layers):
            assert patches[i].get_height() == pytest.approx(values_of(item)[key], rel=1e-12)
            assert patches[i].get_y() == pytest.approx(bottoms[i], rel=1e-12)
            bottoms[i] += values_of(item)[key]
    for top, item in zip(bottoms, report.layers, strict=True):
        assert top == pytest.approx(item.total, rel=1e-12)
    assert [t.get_text() for t in ax.get_xticklabels()] == [i.name for i in report.layers]
    assert ax.get_ylabel() == "energy (normalized: 1 = one 16-bit MAC)"
    assert "toy" in ax.get_title() and "eyeriss" in ax.get_title()
    assert ax.get_xlabel() == "layer (execution order)"


def test_energy_axis_names_picojoules():
    report = toy_report(hardware=load_hardware(PJ_HARDWARE))
    for kind in ("operand", "level", "summary"):
        for ax in report.plot(kind).axes:
            assert ax.get_ylabel() == "energy (pJ)"


def test_summary_bars_are_the_network_totals_with_shares(report):
    fig = plot_report(report, "summary")
    operand_ax, level_ax = fig.axes
    assert heights(bars(operand_ax)["by operand"]) == pytest.approx(
        [report.by_operand()[k] for k in OPERAND_KEYS], rel=1e-12)
    assert heights(bars(level_ax)["by level"]) == pytest.approx(
        [report.by_level()[k] for k in LEVEL_KEYS], rel=1e-12)
    assert [t.get_text() for t in level_ax.get_xticklabels()] == LEVEL_LABELS
    shares = [float(t.get_text().rstrip("%")) for t in level_ax.texts]
    expected = [100 * report.by_level()[k] / report.total() for k in LEVEL_KEYS]
    assert shares == pytest.approx(expected, abs=0.051)
    assert "normalized" in operand_ax.get_ylabel() and "normalized" in level_ax.get_ylabel()
    assert "significance-map" in fig.get_suptitle()


def test_proxies_are_each_layers_share_of_the_network(report):
    (ax,) = report.plot("proxies").axes
    drawn = bars(ax)
    assert list(drawn) == ["weights", "MACs", "non-skipped MACs", "energy"]
    expected = {
        "weights": [i.layer.num_weights / report.weights() for i in report.layers],
        "MACs": [i.layer.macs / report.macs() for i in report.layers],
        "non-skipped MACs": [i.energy.nonskipped_macs / report.nonskipped_macs()
                             for i in report.layers],
        "energy": [i.total / report.total() for i in report.layers],
    }
    for label, shares in expected.items():
        assert heights(drawn[label]) == pytest.approx(shares, rel=1e-12)
        assert math.fsum(heights(drawn[label])) == pytest.approx(1.0)
    assert "%" in ax.get_ylabel()
    # The paper's point, visible in the chart: the FC layer holds most weights but not
    # most energy, the first conv few weights but a large share of the energy.
    fc = [i.name for i in report.layers].index("fc")
    assert heights(drawn["weights"])[fc] > 0.8 > heights(drawn["energy"])[fc]


def test_unknown_kind_is_an_input_error(report):
    with pytest.raises(InputError, match="unknown plot kind 'pie'.*operand, level"):
        report.plot("pie")


def test_comparison_chart_ratios_and_splits():
    small, large = toy_report("small"), toy_report("large", scale=2)
    fig = compare([small, large]).plot()
    ratio_ax, operand_ax, level_ax = fig.axes
    drawn = bars(ratio_ax)
    assert heights(drawn["weights"]) == pytest.approx([1.0, large.weights() / small.weights()])
    assert heights(drawn["energy"]) == pytest.approx([1.0, large.total() / small.total()])
    assert heights(drawn["MACs"]) == pytest.approx([1.0, large.macs() / small.macs()])
    assert "small" in ratio_ax.get_ylabel()
    for ax, labels, keys, field in ((operand_ax, OPERAND_LABELS, OPERAND_KEYS, "by_operand"),
                                    (level_ax, LEVEL_LABELS, LEVEL_KEYS, "by_level")):
        stacks = bars(ax)
        assert list(stacks) == labels
        for label, key in zip(labels, keys, strict=True):
            assert heights(stacks[label]) == pytest.approx(
                [getattr(r, field)()[key] for r in (small, large)], rel=1e-12)
        assert ax.get_ylabel() == "energy (normalized: 1 = one 16-bit MAC)"


def test_save_report_plots_writes_every_kind_as_png_and_svg(report, tmp_path):
    folder = tmp_path / "new" / "plots"
    written = save_report_plots(report, folder)
    assert [p.name for p in written] == [f"toy-{k}.{f}" for k in KINDS for f in ("png", "svg")]
    for path in written:
        if path.suffix == ".png":
            image = Image.open(path).convert("L")
            low, high = image.getextrema()
            assert image.width > 600 and high - low > 100  # not blank
        else:
            root = ET.parse(path).getroot()
            assert root.tag.endswith("svg")


def test_svg_is_reproducible(report):
    first = figure_bytes(report.plot("level"), "svg")
    assert first == figure_bytes(report.plot("level"), "svg")
    assert b"<dc:date>" not in first


def test_save_figure_checks_the_suffix_and_folder(report, tmp_path):
    fig = report.plot("summary")
    with pytest.raises(InputError, match=r"\.png or \.svg"):
        save_figure(fig, tmp_path / "chart.pdf")
    with pytest.raises(InputError, match="does not exist"):
        save_figure(fig, tmp_path / "missing" / "chart.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        save_report_plots(report, tmp_path / "file")
    save_figure(fig, tmp_path / "chart.png")
    assert Image.open(io.BytesIO((tmp_path / "chart.png").read_bytes())).format == "PNG"


def test_importing_nnjoules_does_not_load_matplotlib_and_plots_need_no_display():
    code = ("import sys, nnjoules; assert 'matplotlib' not in sys.modules; "
            "sys.path.insert(0, 'tests'); from toy_reports import toy_report; "
            "toy_report().plot('operand').savefig('/dev/null', format='png'); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    env = {"PATH": "/usr/bin:/bin", "MPLBACKEND": "", "DISPLAY": ""}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_titles_name_a_dataflow_other_than_row_stationary():
    from nnjoules.energy.estimate import estimate_workload
    from nnjoules.energy.hardware import eyeriss
    from toy_reports import toy_workload

    systolic = estimate_workload(toy_workload(), eyeriss(), dataflow="systolic-os")
    rs = estimate_workload(toy_workload(), eyeriss())
    for kind in ("operand", "level", "summary", "proxies"):
        fig = systolic.plot(kind)
        titles = [fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)]
        assert any("toy on eyeriss (systolic-os)" in t for t in titles), (kind, titles)
        fig = rs.plot(kind)
        titles = [fig.get_suptitle(), *(ax.get_title() for ax in fig.axes)]
        assert not any("(row-stationary)" in t for t in titles)
        assert any("toy on eyeriss" in t for t in titles)

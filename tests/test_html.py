"""The HTML report: self-contained, complete, and rendered by a real headless browser."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageStat

import nnjoules
from nnjoules.errors import InputError
from system_deps import chromium_binary
from toy_reports import toy_report


@pytest.fixture(scope="module")
def report():
    return toy_report()


@pytest.fixture(scope="module")
def page(report) -> str:
    return report.to_html()


class _Parse(HTMLParser):
    """Collects attributes of every tag, the layer rows and inline script/style text."""

    def __init__(self) -> None:
        super().__init__()
        self.attrs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[str] = []
        self.rows: list[dict[str, str]] = []  # <tr> attributes in the layer table's body
        self._table: list[str] = []  # ids of the open tables
        self._in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            self.attrs.append((tag, name, value or ""))
        if tag == "table":
            self._table.append(dict(attrs).get("id") or "")
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table[-1:] == ["layers"]:
            self.rows.append({k: v or "" for k, v in attrs})

    def handle_endtag(self, tag: str) -> None:
        if tag == "tbody":
            self._in_body = False
        elif tag == "table" and self._table:
            self._table.pop()


def parse(text: str) -> _Parse:
    parser = _Parse()
    parser.feed(text)
    return parser


def assert_self_contained(text: str) -> None:
    parsed = parse(text)
    for tag, name, value in parsed.attrs:
        if name in ("src", "href", "srcset", "action", "poster", "data"):
            assert value.startswith(("data:", "#")), f"<{tag} {name}={value[:60]!r}>"
    assert "link" not in parsed.tags and "iframe" not in parsed.tags
    for url in re.findall(r"url\(([^)]*)\)", text):
        assert url.strip("'\" ").startswith(("data:", "#")), url
    assert "@import" not in text
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text)


def test_page_is_self_contained(page):
    assert_self_contained(page)
    assert page.startswith("<!DOCTYPE html>")
    sources = [v for _, name, v in parse(page).attrs if name == "src"]
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)


def test_page_states_hardware_assumptions_and_version(report, page):
    assert f"nnjoules {nnjoules.__version__}" in page
    for text in ("eyeriss", "12 x 14 (168 PEs)", "108 KB (110592 bytes)",
                 "weights 448 B, ifmaps 24 B, psums 48 B", "200 normalized per 16-bit access",
                 "significance map", "1 bit per value", "row-stationary",
                 "0.400 to 1.000", "16/16/16", "aten.max_pool2d x2",
                 "normalized (1 = one 16-bit MAC)"):
        assert text in page, text


def test_table_has_one_row_per_layer_with_sortable_values(report, page):
    rows = parse(page).rows
    assert [r["data-index"] for r in rows] == [str(i) for i in range(len(report.layers))]
    for item in report.layers:
        assert f'data-v="{item.total!r}"' in page
        assert f">{item.name}</td>" in page


def test_embedded_json_is_the_report(report, page):
    match = re.search(r'<script type="application/json" id="report-json">(.*?)</script>',
                      page, re.S)
    assert match is not None
    assert json.loads(match.group(1).replace("<\\/", "</")) == json.loads(report.to_json())


def test_inline_svg_variant_and_bad_format(report, tmp_path):
    text = report.to_html(tmp_path / "r.html", images="svg")
    assert (tmp_path / "r.html").read_text() == text
    assert text.count("<svg") >= 4 and "<?xml" not in text and "<!DOCTYPE svg" not in text
    assert_self_contained(text)
    with pytest.raises(InputError, match="png or svg"):
        report.to_html(images="gif")


# ---------------------------------------------------------------------------- real browser


def chromium() -> str:
    """The chromium binary (the README's test command installs it)."""
    return chromium_binary()


def run_chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def html_file(report, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    report.to_html(path)
    return path


@pytest.mark.parametrize(("fragment", "sorted_by", "order"), [
    ("#sort=energy:desc", "energy:desc", lambda layers: sorted(
        range(len(layers)), key=lambda i: -layers[i].total)),
    ("#sort=layer", "layer:asc", lambda layers: sorted(
        range(len(layers)), key=lambda i: layers[i].name)),
])
def test_browser_renders_every_row_and_image_and_sorts(report, html_file, tmp_path,
                                                       fragment, sorted_by, order):
    url = html_file.as_uri() + fragment
    dom = run_chromium(["--virtual-time-budget=5000", "--dump-dom", url], tmp_path).stdout
    root = re.search(r"<html([^>]*)>", dom)
    assert root is not None
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', root.group(1)))
    assert attrs["data-ready"] == "1"
    assert attrs["data-rows"] == str(len(report.layers))
    assert attrs["data-images-loaded"] == "4"
    assert attrs["data-sorted-by"] == sorted_by
    rows = parse(dom).rows
    assert len(rows) == len(report.layers)
    assert [int(r["data-index"]) for r in rows] == order(report.layers)
    direction = "descending" if sorted_by.endswith("desc") else "ascending"
    assert re.findall(r'<th[^>]*aria-sort="(\w+)"', dom) == [direction]


def test_browser_screenshot_is_not_blank(html_file, tmp_path):
    shot = tmp_path / "shot.png"
    run_chromium([f"--screenshot={shot}", "--window-size=1280,1600", html_file.as_uri()],
                 tmp_path)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 1600)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50  # text, chart colours, table lines
    assert max(ImageStat.Stat(image.convert("L")).stddev) > 20


def test_a_pj_report_gives_its_energy_card_in_joules():
    from nnjoules.energy.hardware import load_hardware
    from toy_reports import toy_report

    report = toy_report(hardware=load_hardware("eyeriss-65nm-pj"))
    total = report.total()  # pJ
    assert 1e6 <= total < 1e9  # the toy network: micro-joules
    expected = f"{float(f'{total:.4g}') / 1e6:.4g} uJ"
    assert f">{expected}<" in report.to_html()

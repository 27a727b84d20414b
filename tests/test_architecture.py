"""The package layout: the energy pipeline imports one way, and dataflows are plug-ins."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import nnjoules
from nnjoules.energy.dataflows import DATAFLOWS, get_dataflow
from nnjoules.energy.dataflows.row_stationary import ROW_STATIONARY
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import eyeriss
from nnjoules.energy.workload import Layer, LayerKind, Workload
from nnjoules.errors import InputError

PACKAGE = Path(nnjoules.__file__).parent


def _import_graph() -> dict[str, set[str]]:
    """Module -> nnjoules modules it imports anywhere (top level, functions, TYPE_CHECKING)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges[name].add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                edges[name].update(alias.name for alias in node.names)
        edges[name] = {target for target in edges[name] if target in modules} - {name}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Kosaraju)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(start: str, graph: dict[str, set[str]], out: list[str]) -> None:
        stack = [(start, iter(sorted(graph[start])))]
        seen.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                out.append(node)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(sorted(graph[child]))))

    for node in sorted(edges):
        if node not in seen:
            visit(node, edges, order)
    reverse: dict[str, set[str]] = {node: set() for node in edges}
    for node, targets in edges.items():
        for target in targets:
            reverse[target].add(node)
    seen.clear()
    found = []
    for node in reversed(order):
        if node not in seen:
            component: list[str] = []
            visit(node, reverse, component)
            if len(component) > 1:
                found.append(set(component))
    return found


def test_the_package_has_no_import_cycle():
    assert _cycles(_import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_presentation_reads_results_never_the_report_facade():
    edges = _import_graph()
    for name in ("table", "summary", "html", "plots", "compare", "sweep"):
        assert "nnjoules.report.energy_report" not in edges[f"nnjoules.report.{name}"]


def test_dataflows_are_found_by_name_and_unknown_names_are_one_line():
    assert get_dataflow("row-stationary") is ROW_STATIONARY
    assert get_dataflow("Row-Stationary") is ROW_STATIONARY
    assert get_dataflow(ROW_STATIONARY) is ROW_STATIONARY
    assert set(DATAFLOWS) >= {"row-stationary"}
    with pytest.raises(InputError, match=r"unknown 'row-stationery' \(did you mean "
                                         r"'row-stationary'\?\); known: "):
        get_dataflow("row-stationery")


def test_the_report_names_the_dataflow_it_was_estimated_under():
    layer = Layer("c", LayerKind.CONV, N=1, M=4, C=3, H=6, W=6, R=3, S=3, E=4, F=4)
    workload = Workload("toy", (layer,))
    by_name = estimate_workload(workload, eyeriss(), dataflow="row-stationary")
    by_plugin = estimate_workload(workload, eyeriss(), dataflow=ROW_STATIONARY)
    assert by_name.total() == by_plugin.total() == estimate_workload(workload, eyeriss()).total()
    assert by_name.to_dict()["dataflow"] == "row-stationary"

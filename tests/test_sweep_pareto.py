"""The Pareto front of a sweep, against a brute-force dominance check."""

from __future__ import annotations

import csv
import io
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.sweep import sweep
from nnjoules.energy.workload import Precision
from nnjoules.report.pareto import pareto_mask
from nnjoules.report.sweep import OBJECTIVES
from toy_reports import toy_workload


def brute_force_front(vectors: list[tuple[float, ...]]) -> list[bool]:
    """The definition, checked pair by pair: not dominated by any other vector."""
    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    return [not any(dominates(other, v) for other in vectors) for v in vectors]


def test_hand_worked_front_of_energy_storage_and_pes():
    # (energy per item, on-chip bytes, PEs), worked out by hand:
    points = [
        (10.0, 100, 64),   # 0: the least storage with 64 PEs: on the front
        (8.0, 200, 64),    # 1: less energy than 0 for more storage: on the front
        (9.0, 200, 64),    # 2: beaten by 1 (same storage and PEs, more energy)
        (7.0, 300, 168),   # 3: least energy so far: on the front
        (7.0, 300, 168),   # 4: a copy of 3: copies do not dominate each other
        (8.0, 200, 168),   # 5: beaten by 1 (same energy and storage, more PEs)
        (12.0, 90, 256),   # 6: the least storage of all: on the front
        (11.0, 100, 64),   # 7: beaten by 0
    ]
    expected = [True, True, False, True, True, False, True, False]
    assert pareto_mask(points) == expected
    assert brute_force_front(points) == expected
    assert pareto_mask([]) == []
    assert pareto_mask([(5.0,), (3.0,), (3.0,)]) == [False, True, True]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.integers(0, 3)),
                max_size=40))
def test_pareto_mask_equals_brute_force(vectors):
    floats = [(float(a), float(b), float(c)) for a, b, c in vectors]
    assert pareto_mask(floats) == brute_force_front(floats)


def test_sweep_marks_its_pareto_front_in_the_csv_table_and_plot():
    result = sweep(toy_workload(), {"glb_kb": ["4", "16", "108"], "pe_array": ["8x8", "12x14"],
                                    "bits": ["8", "16"]})
    assert OBJECTIVES == ("energy_per_item", "latency_s", "onchip_bytes", "pes")
    vectors = []
    for point in result.points:
        rf = point.hardware.rf
        rows, cols = point.settings["pe_array"]
        storage = point.settings["glb_kb"] * 1024 + rows * cols * (
            rf.weights_bytes + rf.ifmaps_bytes + rf.psums_bytes)
        assert point.onchip_bytes == storage and point.pes == rows * cols
        bits = point.settings["bits"]
        direct = estimate_workload(toy_workload().with_precision(Precision(bits, bits, bits)),
                                   point.hardware)
        latency = direct.cycles() / 200e6  # eyeriss: 200 MHz
        assert point.latency_s == latency
        vectors.append((point.totals.energy, latency, storage, rows * cols))
    expected = [i for i, on in enumerate(brute_force_front(vectors)) if on]
    assert [p.index for p in result.pareto()] == expected
    assert 0 < len(expected) < len(result.points)  # a real trade-off, not all or nothing
    # bits=16 costs more energy on the same hardware, so only bits=8 points are on it
    assert {p.settings["bits"] for p in result.pareto()} == {8}
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert [r["pareto"] for r in rows] == [str(i in expected) for i in range(len(rows))]
    assert [float(r["latency_s"]) for r in rows] == [v[1] for v in vectors]
    assert [int(r["onchip_bytes"]) for r in rows] == [v[2] for v in vectors]
    assert [int(r["pes"]) for r in rows] == [v[3] for v in vectors]
    table = result.to_table(width=200)
    marked = [int(line.split()[0]) for line in table.splitlines()
              if line.split() and line.split()[0].isdigit() and " yes " in line]
    assert marked == expected
    for ax in result.plot().axes:
        (rings,) = ax.collections
        assert sorted(y for _, y in rings.get_offsets()) == sorted(
            vectors[i][0] for i in expected)


def test_failed_points_are_not_on_the_front_and_have_an_empty_cell():
    result = sweep(toy_workload(), {"rf_weights_bytes": ["1", "448", "896"]})
    failed, small, large = result.points
    assert failed.totals is None
    # 896 B pads hold more and cost the same per access: less or equal energy, more bytes
    assert small.index in result.pareto_indices
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert rows[0]["pareto"] == "" and rows[1]["pareto"] == "True"
    assert [p.index for p in result.pareto()] == [
        p.index for p, on in zip(result.points[1:], brute_force_front(
            [p.objectives() for p in result.points[1:]]), strict=True) if on]


def test_front_over_all_combinations_of_a_product_grid():
    result = sweep(toy_workload(), {"glb_kb": ["2", "8", "64"], "compression": ["none", "rlc"]})
    vectors = [p.objectives() for p in result.points]
    assert all(v is not None for v in vectors)
    front = brute_force_front(vectors)
    assert result.pareto_indices == {i for i, on in enumerate(front) if on}
    for a, b in itertools.combinations(result.pareto(), 2):
        assert not all(x <= y for x, y in zip(a.objectives(), b.objectives(), strict=True)) \
            or a.objectives() == b.objectives()

"""A naive cycle-by-cycle systolic array: the independent oracle for the systolic dataflows.

It *runs* a weight- or output-stationary ``rows x cols`` array on a tiny layer, one cycle
at a time: every PE holds registers, values move one PE per cycle, every move and MAC is
counted as it happens, and the ofmaps it computes are returned so that a test can check
them against a direct convolution. Nothing here uses the closed forms of
:mod:`nnjoules.energy.dataflows.systolic`: the im2col matrices are built as explicit
lists of ifmap coordinates, the buffers as Python sets of those coordinates.

Schedule (SCALE-Sim's): column folds outer, row folds inner; padding slots (``None``)
flow through idle PEs so that every fold fills and drains the whole physical array.

* WS fold: ``rows`` cycles shift the fold's weights down into place; then ifmap row
  ``t`` enters array row ``k`` from the left at stream cycle ``t + k`` and moves right one
  PE a cycle; partial sums enter row 0 as zero and move down one PE a cycle, adding
  ``ifmap x weight`` in each PE; the fold ends when the last slot leaves the bottom.
* OS fold: ifmap ``(t, k)`` enters row ``t mod rows`` at cycle ``k + row`` and moves right;
  weight ``(k, m)`` enters column ``m mod cols`` at cycle ``k + col`` and moves down; each PE
  accumulates its own output; the fold ends one cycle after the last PE's last MAC (each
  output is written as soon as it is complete, as in SCALE-Sim's demand matrices).

Buffers (our model, executed on real address sets): an operand that fits in half its
SRAM is fetched from DRAM once; otherwise the ifmap SRAM keeps the latest row folds'
values while they fit together with the current fold's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

IfmapAddr = tuple[int, int, int, int]  # (n, c, h, w)


@dataclass
class Run:
    """What the simulated array did."""

    cycles: int = 0
    macs: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # "level.operand.read|write"
    ofmap: np.ndarray | None = None  # [T, M]


def im2col(N: int, C: int, E: int, F: int, R: int, S: int, U: int, V: int,
           ) -> list[list[IfmapAddr]]:
    """The ifmap matrix as coordinates: row t = (n, e, f), column k = (r, s, c), c fastest."""
    rows = []
    for n in range(N):
        for e in range(E):
            for f in range(F):
                rows.append([(n, c, e * U + r, f * V + s)
                             for r in range(R) for s in range(S) for c in range(C)])
    return rows


def _folds(total: int, size: int) -> list[range]:
    return [range(a, min(a + size, total)) for a in range(0, total, size)]


def _values(ifmap: np.ndarray) -> dict[IfmapAddr, float]:
    """The ifmap by coordinate (the DRAM of the simulation)."""
    return {(n, c, h, w): float(ifmap[n, c, h, w]) for n, c, h, w in np.ndindex(*ifmap.shape)}


def _fetch_ifmaps(fold_sets: list[set[IfmapAddr]], everything: set[IfmapAddr],
                  capacity: int, col_folds: int) -> int:
    """DRAM ifmap reads: once if all fit; else a window of the latest folds that fit."""
    if len(everything) <= capacity:
        return len(everything)
    fetched = 0
    for _ in range(col_folds):
        window: list[set[IfmapAddr]] = []
        for current in fold_sets:
            while window and len(set().union(*window, current)) > capacity:
                window.pop(0)
            fetched += len(current - set().union(*window)) if window else len(current)
            window.append(current)
    return fetched


def run_ws(ifmap: np.ndarray, weights: np.ndarray, stride: tuple[int, int], rows: int,
           cols: int, caps: tuple[int, int, int], t_tile: int = 0) -> Run:
    """Weight-stationary run of a conv (``ifmap`` [N,C,H,W], ``weights`` [M,C,R,S]),
    its ifmap rows cut into tiles of ``t_tile`` (0: one tile) between column and row folds."""
    N, C, H, W = ifmap.shape
    M, _, R, S = weights.shape
    E, F = (H - R) // stride[0] + 1, (W - S) // stride[1] + 1
    A = im2col(N, C, E, F, R, S, *stride)
    T, K = len(A), len(A[0])
    wmat = [[weights[m, c, r, s] for m in range(M)]
            for r in range(R) for s in range(S) for c in range(C)]
    run, values = Run(ofmap=np.zeros((T, M))), _values(ifmap)
    col_folds, row_folds = _folds(M, cols), _folds(K, rows)
    tiles = _folds(T, t_tile or T)
    for mf in col_folds:
        for tt in tiles:
            for fr, kf in enumerate(row_folds):
                _ws_fold(run, A, values, wmat, kf, mf, rows, cols, first=fr == 0, ts=tt)
    assert run.ofmap is not None
    everything = {a for row in A for a in row}
    run.counts["dram.ifmaps.read"] = sum(
        _fetch_ifmaps([{A[t][k] for t in tt for k in kf} for kf in row_folds], everything,
                      caps[0], len(col_folds)) for tt in tiles) \
        if len(everything) > caps[0] else len(everything)
    keep = len(tiles) == 1 or all(K * len(mf) <= caps[1] for mf in col_folds)
    run.counts["dram.weights.read"] = K * M * (1 if keep else len(tiles))
    fits = all(len(tiles[0]) * len(mf) <= caps[2] for mf in col_folds)
    spills = 0 if fits else len(row_folds)
    run.counts["dram.psums.write"] = T * M * (spills or 1)
    run.counts["dram.psums.read"] = T * M * max(spills - 1, 0)
    return run


def _ws_fold(run: Run, A: list[list[IfmapAddr]], values: dict[IfmapAddr, float],
             wmat: list[list[float]], kf: range, mf: range, rows: int, cols: int, *,
             first: bool, ts: range) -> None:
    """One WS fold, cycle by cycle: weight load, then the skewed stream of rows ``ts``."""
    T = len(ts)
    used_r, used_c = len(kf), len(mf)
    column: list[list[float | None]] = [[None] * cols for _ in range(rows)]
    for cycle in range(rows):  # shift weights down: the bottom row's enter first
        for k in range(rows - 1, 0, -1):
            for j in range(cols):
                if column[k - 1][j] is not None:
                    run.counts["array.weights.read"] += 1
                column[k][j] = column[k - 1][j]
        src = rows - 1 - cycle
        for j in range(cols):
            valid = src < used_r and j < used_c
            column[0][j] = wmat[kf[src]][mf[j]] if valid else None
            run.counts["glb.weights.read"] += int(valid)
    run.cycles += rows
    x: list[list[tuple[int, float] | None]] = [[None] * cols for _ in range(rows)]
    p: list[list[tuple[int, float] | None]] = [[None] * cols for _ in range(rows)]
    cycle, drained = 0, 0
    while drained < T * cols:
        new_x = [[None] * cols for _ in range(rows)]
        new_p = [[None] * cols for _ in range(rows)]
        for k in range(rows):
            for j in range(cols):
                t = cycle - k - j  # the slot that reaches PE (k, j) now
                if not 0 <= t < T:
                    continue
                if j == 0:
                    value = A[ts[t]][kf[k]] if k < used_r else None
                    run.counts["glb.ifmaps.read"] += int(value is not None)
                    xin = (t, 0.0 if value is None else values[value])
                else:
                    xin = x[k][j - 1]
                    if k < used_r and j < used_c:
                        run.counts["array.ifmaps.read"] += 1
                assert xin is not None and xin[0] == t
                pin = (t, 0.0) if k == 0 else p[k - 1][j]
                assert pin is not None and pin[0] == t
                if k > 0 and k < used_r and j < used_c:
                    run.counts["array.psums.read"] += 1
                weight = column[k][j]
                acc = pin[1]
                if weight is not None:
                    acc += xin[1] * weight
                    run.macs += 1
                    run.counts["rf.weights.read"] += 1
                    run.counts["rf.ifmaps.read"] += 1
                new_x[k][j], new_p[k][j] = xin, (t, acc)
        for j in range(cols):  # the bottom row's psums leave the array
            out = new_p[rows - 1][j]
            if out is not None:
                drained += 1
                if j < used_c:
                    _ws_output(run, (ts[out[0]], out[1]), mf[j], first)
        x, p, cycle = new_x, new_p, cycle + 1
    run.cycles += cycle


def _ws_output(run: Run, out: tuple[int, float], m: int, first: bool) -> None:
    assert run.ofmap is not None
    t, value = out
    if not first:
        run.counts["glb.psums.read"] += 1
    run.counts["glb.psums.write"] += 1
    run.ofmap[t, m] += value


def run_os(ifmap: np.ndarray, weights: np.ndarray, stride: tuple[int, int], rows: int,
           cols: int, caps: tuple[int, int, int]) -> Run:
    """Output-stationary run of the same conv."""
    N, C, H, W = ifmap.shape
    M, _, R, S = weights.shape
    E, F = (H - R) // stride[0] + 1, (W - S) // stride[1] + 1
    A = im2col(N, C, E, F, R, S, *stride)
    T, K = len(A), len(A[0])
    wmat = [[weights[m, c, r, s] for m in range(M)]
            for r in range(R) for s in range(S) for c in range(C)]
    run, values = Run(ofmap=np.zeros((T, M))), _values(ifmap)
    col_folds, row_folds = _folds(M, cols), _folds(T, rows)
    for mf in col_folds:
        for tf in row_folds:
            _os_fold(run, A, values, wmat, tf, mf, rows, cols, K)
    fold_sets = [{A[t][k] for t in tf for k in range(K)} for tf in row_folds]
    everything = {a for row in A for a in row}
    run.counts["dram.ifmaps.read"] = _fetch_ifmaps(fold_sets, everything, caps[0],
                                                   len(col_folds))
    keep = all(K * len(mf) <= caps[1] for mf in col_folds)
    run.counts["dram.weights.read"] = K * M * (1 if keep else len(row_folds))
    run.counts["dram.psums.write"] = T * M
    return run


def _os_fold(run: Run, A: list[list[IfmapAddr]], values: dict[IfmapAddr, float],
             wmat: list[list[float]], tf: range, mf: range, rows: int, cols: int,
             K: int) -> None:
    """One OS fold, cycle by cycle: skewed operands meet in the PE owning each output."""
    used_r, used_c = len(tf), len(mf)
    acc = [[0.0] * cols for _ in range(rows)]
    done = -1
    for cycle in range(K + rows + cols):
        for i in range(rows):
            for j in range(cols):
                k = cycle - i - j  # the operand pair that meets in PE (i, j) now
                if not 0 <= k < K or i >= used_r or j >= used_c:
                    continue
                run.counts["glb.ifmaps.read"] += int(j == 0)
                run.counts["array.ifmaps.read"] += int(j > 0)
                run.counts["glb.weights.read"] += int(i == 0)
                run.counts["array.weights.read"] += int(i > 0)
                acc[i][j] += values[A[tf[i]][k]] * wmat[k][mf[j]]
                run.macs += 1
                run.counts["rf.weights.read"] += 1
                run.counts["rf.ifmaps.read"] += 1
                if k > 0:
                    run.counts["rf.psums.read"] += 1
                    run.counts["rf.psums.write"] += 1
        if cycle - (rows - 1) - (cols - 1) >= K - 1:  # the farthest PE's last pair met
            done = cycle
            break
    assert done >= 0 and run.ofmap is not None
    run.cycles += done + 1  # every output written the cycle after its last MAC
    for i in range(used_r):
        for j in range(used_c):
            run.ofmap[tf[i], mf[j]] = acc[i][j]
            run.counts["glb.psums.write"] += 1
            run.counts["array.psums.read"] += used_r - 1 - i  # shifted out of the bottom

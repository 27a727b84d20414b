"""Sweeps at scale: several networks, chunks, a Dask cluster, the point cap, resume."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from nnjoules.cli import main
from nnjoules.energy.estimate import estimate_workload
from nnjoules.energy.hardware import eyeriss
from nnjoules.energy.results import Totals
from nnjoules.energy.sweep import sweep
from nnjoules.energy.sweep_exec import LocalExecutor
from nnjoules.energy.sweep_plan import chunk_grid, plan_chunks
from nnjoules.energy.sweep_run import MAX_POINTS, settings_at, sweep_networks
from nnjoules.energy.workload import Precision
from nnjoules.errors import InputError
from nnjoules.report.sweep import plot_sweeps
from nnjoules.report.sweep_csv import read_partial
from toy_reports import toy_workload

ROOT = Path(__file__).resolve().parents[1]
GRID = {"glb_kb": ["4", "16", "108"], "bits": ["8", "16"], "pe_array": ["8x8", "12x14"]}
SMALL = ["--input-shape", "3,64,64"]


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def two_networks():
    small = toy_workload()
    large = replace(small, name="large", layers=tuple(
        replace(layer, M=2 * layer.M) if i == len(small.layers) - 1 else layer
        for i, layer in enumerate(small.layers)))
    return [("toy", small), ("large", large)]


# ---------------------------------------------------------------------------- chunks


@pytest.mark.parametrize(("sizes", "start", "target"), [
    ((3, 4), 0, 5), ((3, 4), 7, 1), ((2, 3, 4), 5, 7), ((5,), 2, 2), ((2, 2, 2), 0, 100)])
def test_chunks_cover_the_range_in_order_each_a_product_grid(sizes, start, target):
    parameters = tuple((f"p{i}", tuple(range(n))) for i, n in enumerate(sizes))
    total = len(list(itertools.product(*(v for _, v in parameters))))  # independent count
    chunks = plan_chunks(sizes, start, total, target)
    covered = []
    for chunk in chunks:
        assert 1 <= chunk.size <= target
        grid = chunk_grid(parameters, chunk)
        points = list(itertools.product(*grid.values()))
        assert len(points) == chunk.size
        covered += [dict(zip(grid, p, strict=True)) for p in points]
    assert covered == [settings_at(parameters, i) for i in range(start, total)]


# ---------------------------------------------------------------------------- networks


def test_several_networks_one_csv_each_point_a_direct_estimate(tmp_path):
    out = tmp_path / "s.csv"
    toy, large = sweep_networks(two_networks(), GRID, csv=out, chunk_points=5)
    rows = rows_of(out.read_text())
    assert [r["network"] for r in rows] == ["toy"] * 12 + ["large"] * 12
    assert [int(r["index"]) for r in rows] == list(range(12)) * 2
    for (name, workload), result in zip(two_networks(), (toy, large), strict=True):
        assert result.network == name
        for point in result.points:
            glb, bits, (r, c) = (point.settings[k] for k in ("glb_kb", "bits", "pe_array"))
            hw = replace(eyeriss(), glb=replace(eyeriss().glb, size_bytes=glb * 1024),
                         pe_array=replace(eyeriss().pe_array, rows=r, cols=c))
            direct = estimate_workload(workload.with_precision(Precision(bits, bits, bits)), hw)
            assert point.totals == Totals.of(direct)
    # each network's rows are exactly its own sweep's, Pareto front included
    assert rows[:12] == rows_of(toy.to_csv()) and rows[12:] == rows_of(large.to_csv())
    assert out.read_text() == toy.to_csv() + large.to_csv().partition("\n")[2]
    assert toy.points[0].totals.energy < large.points[0].totals.energy
    axes = plot_sweeps([toy, large]).axes  # a row of panels per network, front ringed
    assert len(axes) == 2 * len(GRID)
    for ax, result in zip(axes, [toy] * 3 + [large] * 3, strict=True):
        (rings,) = ax.collections
        assert sorted(y for _, y in rings.get_offsets()) == sorted(
            p.energy_per_item for p in result.pareto())


def test_several_networks_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert main(["sweep", "squeezenet1_0", "squeezenet1_1", *SMALL, "--set", "glb_kb=32,108",
                 "--csv", str(out), "--json", str(tmp_path / "s.json"), "--plot",
                 str(tmp_path / "s.svg")]) == 0
    stdout = capsys.readouterr().out
    assert "squeezenet1_0 on eyeriss: sweep of 2 points" in stdout
    assert "squeezenet1_1 on eyeriss: sweep of 2 points" in stdout
    rows = rows_of(out.read_text())
    assert [(r["network"], r["index"]) for r in rows] == [
        ("squeezenet1_0", "0"), ("squeezenet1_0", "1"), ("squeezenet1_1", "0"),
        ("squeezenet1_1", "1")]
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["kind"] == "sweeps"
    assert [s["network"] for s in data["sweeps"]] == ["squeezenet1_0", "squeezenet1_1"]
    assert [p["energy"] for s in data["sweeps"] for p in s["points"]] == [
        float(r["energy"]) for r in rows]
    assert main(["sweep", "alexnet", "alexnet", "--set", "glb_kb=32"]) == 2
    assert "given twice" in capsys.readouterr().err


def test_chunked_and_pooled_runs_equal_one_engine_call(tmp_path):
    direct = sweep(toy_workload(), GRID).to_csv()
    for chunk, jobs in ((1, 1), (5, 1), (500, 1), (3, 2)):
        out = tmp_path / f"c{chunk}-{jobs}.csv"
        sweep_networks([("toy", toy_workload())], GRID, csv=out, chunk_points=chunk,
                       executor=LocalExecutor(jobs))
        assert out.read_text() == direct, (chunk, jobs)


# ---------------------------------------------------------------------------- Dask


def test_dask_cluster_gives_the_byte_identical_csv(tmp_path, capsys):
    import distributed  # in the [dev] extra
    argv = ["sweep", "squeezenet1_1", *SMALL, "--set", "glb_kb=16,108", "--set", "bits=8,16",
            "--quiet", "--chunk", "1"]
    assert main([*argv, "--csv", str(tmp_path / "local.csv")]) == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:  # any free port
        assert len(cluster.workers) == 2
        assert main([*argv, "--csv", str(tmp_path / "dask.csv"), "--executor", "dask",
                     "--scheduler", cluster.scheduler_address]) == 0
    local = (tmp_path / "local.csv").read_bytes()
    assert (tmp_path / "dask.csv").read_bytes() == local
    assert len(rows_of(local.decode())) == 4


@pytest.mark.parametrize(("argv", "message"), [
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "1"],
     "--scheduler tcp://127.0.0.1:1: no Dask scheduler answered within 1 s"),
    (["--executor", "dask", "--scheduler", "nonsense:::x"], "not a Dask scheduler address"),
    (["--executor", "dask"], "needs --scheduler ADDRESS"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"],
     "--jobs is for --executor local"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler is for --executor dask"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "nan"],
     "--connect-timeout must be a positive number of seconds, got nan"),
    (["--executor", "dask", "--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "-1"],
     "--connect-timeout must be a positive number of seconds, got -1"),
])
def test_bad_executor_options_exit_2_in_one_line_quickly(argv, message, capsys, tmp_path,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    assert main(["sweep", "nosuchnet", "--set", "glb_kb=32", *argv]) == 2
    assert time.monotonic() - start < 8  # bounded: the timeout, not a hang
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


# ---------------------------------------------------------------------------- the cap


def test_grids_over_the_cap_need_force_and_empty_grids_are_refused(capsys, tmp_path,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert MAX_POINTS == 100_000
    big = ["--set", "glb_kb=" + ",".join(str(k) for k in range(1, 401)),
           "--set", "bits=" + ",".join(str(b) for b in range(1, 64)),
           "--set", "pe_array=4x4,8x8,12x14,16x16"]  # 400 x 63 x 4 = 100,800 points
    assert main(["sweep", "nosuchnet", *big]) == 2
    err = capsys.readouterr().err
    assert "100,800 points (1 network x 400 glb_kb x 63 bits x 4 pe_array), more than the " \
        "cap of 100,000: give --force" in err and err.count("\n") == 1
    # --force lifts the cap: the sweep goes on to load the model (and fails there)
    assert main(["sweep", "nosuchnet", *big, "--force"]) == 2
    assert "unknown model 'nosuchnet'" in capsys.readouterr().err
    assert main(["sweep", "nosuchnet", "--set", "glb_kb="]) == 2
    assert "empty value list" in capsys.readouterr().err
    with pytest.raises(InputError, match="has no point"):
        sweep_networks([], {"glb_kb": ["32"]})
    with pytest.raises(InputError, match="nothing to sweep"):
        sweep_networks([("toy", toy_workload())], {})


# ---------------------------------------------------------------------------- resume


def test_interrupted_sweep_leaves_whole_rows_and_resume_completes_it(tmp_path):
    whole = tmp_path / "whole.csv"
    sweep_networks(two_networks(), GRID, csv=whole)
    out = tmp_path / "part.csv"

    def stop_after_7(done: int, total: int) -> None:
        if done == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep_networks(two_networks(), GRID, csv=out, chunk_points=3, progress=stop_after_7)
    partial = rows_of(out.read_text())
    expected = rows_of(whole.read_text())
    assert len(partial) == 6  # two whole chunks of 3; the third was under way
    assert partial == [r | {"pareto": ""} for r in expected[:6]]
    with out.open("a") as handle:  # a line torn by a crash in the middle of a write
        handle.write("6,16,8,toy,eyeriss,normal")
    seen = []
    sweep_networks(two_networks(), GRID, csv=out, chunk_points=3, resume=True,
                   progress=lambda done, total: seen.append(done))
    assert out.read_bytes() == whole.read_bytes()
    assert seen[-1] == 24 and min(seen) > 6
    sweep_networks(two_networks(), GRID, csv=out, resume=True)  # already complete: a no-op
    assert out.read_bytes() == whole.read_bytes()


def test_resume_refuses_a_csv_of_another_sweep(tmp_path):
    out = tmp_path / "s.csv"
    sweep_networks([("toy", toy_workload())], GRID, csv=out)
    with pytest.raises(InputError, match="header differs"):
        sweep_networks([("toy", toy_workload())], {"glb_kb": ["4"]}, csv=out, resume=True)
    with pytest.raises(InputError, match="has glb_kb '4' where this sweep has '8'"):
        sweep_networks([("toy", toy_workload())], GRID | {"glb_kb": ["8", "16", "108"]},
                       csv=out, resume=True)
    with pytest.raises(InputError, match="network 'toy' where this sweep has 'other'"):
        sweep_networks([("other", toy_workload())], GRID, csv=out, resume=True)
    with pytest.raises(InputError, match="does not exist"):
        sweep_networks([("toy", toy_workload())], GRID, csv=tmp_path / "no.csv", resume=True)
    assert len(read_partial(out, rows_of(out.read_text())[0].keys())) == 12


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "nnjoules.cli", "sweep", "lenet5", "--quiet", "--chunk", "1",
            "--set", "glb_kb=1,2,4,8,16,32", "--set", "bits=4,8,16",
            "--set", "pe_array=4x4,8x8,12x14,16x16",
            # 720 points: enough that the sweep is still running when the signal lands
            "--set", "clock_mhz=" + ",".join(str(100 + 50 * i) for i in range(10)), *argv]


def _interrupt(argv: list[str], kill: signal.Signals, rows: int, csv_path: Path,
               cwd: Path) -> str:
    """Run ``argv``, send ``kill`` once ``csv_path`` holds ``rows`` points; its stderr."""
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    # SIGINT as in a terminal: a shell without job control starts background commands
    # with SIGINT ignored, and the child would inherit that (then Python never raises
    # KeyboardInterrupt and the interrupt under test never happens)
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if csv_path.exists() and len(rows_of(csv_path.read_text())) >= rows:
            break
        time.sleep(0.02)
    process.send_signal(kill)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == (-kill if kill == signal.SIGKILL else 130), stderr
    return stderr


def test_killed_sweep_processes_resume_to_the_uninterrupted_csv(tmp_path):
    part = tmp_path / "part.csv"
    stderr = _interrupt(_cli("--csv", str(part)), signal.SIGINT, 3, part, tmp_path)
    assert "run the same command with --resume" in stderr
    first = rows_of(part.read_text())
    assert _interrupt(_cli("--csv", str(part), "--resume"), signal.SIGKILL, len(first) + 3,
                      part, tmp_path) == ""
    second = rows_of(part.read_text())
    assert 3 <= len(first) < len(second) < 720
    assert second[:len(first)] == first
    assert [int(r["index"]) for r in second] == list(range(len(second)))
    assert all(r["pareto"] == "" and float(r["energy"]) > 0 for r in second)
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    resumed = subprocess.run(_cli("--csv", str(part), "--resume"), env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    whole = tmp_path / "whole.csv"
    assert main(_cli("--csv", str(whole))[3:]) == 0
    assert part.read_bytes() == whole.read_bytes()
    assert second == [r | {"pareto": ""} for r in rows_of(whole.read_text())[:len(second)]]


@pytest.mark.parametrize("jobs", ["-1", "two"])
def test_bad_jobs_names_zero_as_allowed(jobs, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["sweep", "lenet5", "--set", "glb_kb=32", "--jobs", jobs])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert (f"argument --jobs: expected 0 (one per CPU) or a positive number of processes, "
            f"got '{jobs}'") in err and err.count("\n") == 1

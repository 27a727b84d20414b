"""Fuzzing what a user writes: hardware YAML, densities JSON, CLI numbers, model files.

Every example runs through ``nnjoules.cli.main`` and must end in one of two ways:

* exit 0, and every number in the JSON written is finite;
* an error: exactly one ``nnjoules: error: ...`` line (argparse's usage lines and the
  ``nnjoules: wrote ...`` lines of a sweep may precede it) and exit 2, or exit 1 for a
  layer that fits no mapping on a valid but tiny hardware.

Never a traceback, never a non-finite number. Examples are derandomized, so a failure
repeats; each test runs in seconds on the tiny model of `fuzz_models`.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from nnjoules.cli import main

FUZZ = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
MODEL = ["fuzz_models:tiny", "--input-shape", "4"]
ERROR_LINE = re.compile(r"^nnjoules(?: [a-z]+)?: error: \S")


@contextlib.contextmanager
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nnjoules-fuzz-") as name:
        yield Path(name)


def run(argv: list[str]) -> tuple[int, str]:
    """(exit code, stderr) of ``nnjoules argv``; argparse's SystemExit is an exit code."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse: usage error
            code = stop.code if isinstance(stop.code, int) else 1
    return code, err.getvalue()


def assert_clean_outcome(code: int, err: str, written: Path | None = None) -> None:
    """The contract above, for one run."""
    event(f"exit {code}")  # shown by --hypothesis-show-statistics
    assert "Traceback" not in err, err
    if code == 0:
        if written is not None:
            assert_finite_json(written)
        return
    lines = err.strip().splitlines()
    assert lines and ERROR_LINE.match(lines[-1]), err
    for line in lines[:-1]:  # only argparse's usage, or the files a sweep wrote
        assert line.startswith(("usage:", " ", "wrote ")), err
    if code == 1:
        assert "cannot be mapped" in lines[-1] or "no point of the sweep" in lines[-1], err
    else:
        assert code == 2, (code, err)


def assert_finite_json(path: Path) -> None:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{path}: non-finite number {name}")

    data = json.loads(path.read_text(), parse_constant=refuse)
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, float):
            assert math.isfinite(value), path


# ---------------------------------------------------------------------------- values

ODD_TEXT = ["1e-3", "1e30", "1.0e+308", "12x14", "1000000x1000000", "0x3", "-1", ".inf",
            ".nan", "~", "true", "0.5", "1_000", "0o17", "0x1F", "1:30", "", " ", "pJ", "1e400"]
ANY_VALUE = st.one_of(
    st.none(), st.booleans(),
    st.integers(-3, 300), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 1e13), st.sampled_from(ODD_TEXT), st.text(max_size=10),
    st.lists(st.integers(0, 20), max_size=3),
    st.dictionaries(st.sampled_from(["rows", "cols", "size_bytes", "x"]), st.integers(-1, 10**6),
                    max_size=2))


# ---------------------------------------------------------------------------- hardware YAML

BASE_HARDWARE: dict[str, Any] = {
    "name": "chip", "unit": "pJ", "word_bits": 16, "pe_array": {"rows": 12, "cols": 14},
    "mac_energy": 1.0, "dram": {"read_energy": 200},
    "global_buffer": {"size_bytes": 110592, "read_energy": 6},
    "array": {"transfer_energy": 2},
    "register_file": {"size_bytes": 512, "read_energy": 1},
}
HARDWARE_FIELDS = [
    "name", "unit", "word_bits", "pe_array", "pe_array.rows", "pe_array.cols", "mac_energy",
    "dram", "dram.read_energy", "dram.write_energy", "dram.access_bits",
    "global_buffer.size_bytes", "global_buffer.size_kb", "global_buffer.read_energy",
    "global_buffer.access_bits", "array.transfer_energy", "array.access_bits",
    "register_file", "register_file.size_bytes", "register_file.size_kb",
    "register_file.read_energy", "register_file.write_energy", "register_file.weights",
    "register_file.weights.size_bytes", "register_file.psums.read_energy", "bogus",
    "dram.bogus"]


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[last] = value


@FUZZ
@given(changes=st.lists(st.tuples(st.sampled_from(HARDWARE_FIELDS), ANY_VALUE), min_size=1,
                        max_size=3),
       drop=st.lists(st.sampled_from(sorted(BASE_HARDWARE)), max_size=1))
def test_fuzz_hardware_yaml(changes: list[tuple[str, Any]], drop: list[str]) -> None:
    data = json.loads(json.dumps(BASE_HARDWARE))
    for key in drop:
        del data[key]
    for dotted, value in changes:
        _set(data, dotted, value)
    with folder() as tmp:
        hw, out = tmp / "hw.yaml", tmp / "r.json"
        hw.write_text(yaml.safe_dump(data, allow_unicode=True))
        code, err = run(["estimate", *MODEL, "--hardware", str(hw), "--json", str(out),
                         "--quiet"])
        assert_clean_outcome(code, err, out)


@FUZZ
@given(text=st.one_of(st.text(max_size=80),
                      st.lists(st.sampled_from(["name: x", "unit: pJ", "pe_array: 2x2",
                                                "mac_energy: 1e-3", "dram:", "  read_energy: 1",
                                                "- 1", "&a [1]", "*a", "<<: *a", "!!python/name:os",
                                                "{", "global_buffer: {size_kb: 1e1}", "\t"]),
                               max_size=8).map("\n".join)))
def test_fuzz_hardware_yaml_text(text: str) -> None:
    with folder() as tmp:
        hw = tmp / "hw.yaml"
        hw.write_text(text)
        code, err = run(["estimate", *MODEL, "--hardware", str(hw), "--quiet"])
        assert_clean_outcome(code, err)


# ---------------------------------------------------------------------------- densities JSON

DENSITY_VALUE = st.one_of(st.floats(-0.5, 1.5), st.floats(allow_nan=True, allow_infinity=True),
                          st.integers(-2, 2), st.booleans(), st.none(), st.text(max_size=5),
                          st.lists(st.floats(0, 1), max_size=2))
VALID_DENSITIES = st.dictionaries(
    st.sampled_from(["0", "2"]),
    st.dictionaries(st.sampled_from(["weights", "ifmaps", "ofmaps"]),
                    st.one_of(st.floats(0, 1), st.integers(0, 1)), min_size=1),
    min_size=1)
DENSITY_FILE = st.dictionaries(
    st.one_of(st.sampled_from(["0", "2"]), st.text(max_size=6)),
    st.one_of(st.dictionaries(st.one_of(st.sampled_from(["weights", "ifmaps", "ofmaps"]),
                                        st.text(max_size=6)), DENSITY_VALUE, max_size=3),
              DENSITY_VALUE),
    max_size=3)


@FUZZ
@given(content=st.one_of(VALID_DENSITIES.map(lambda d: json.dumps(d).encode()),
                         DENSITY_FILE.map(lambda d: json.dumps(d).encode()),
                         st.binary(max_size=40),
                         st.sampled_from([b"[]", b"null", b"{\"0\": {\"weights\": NaN}}",
                                          b"{\"0\": {\"weights\": 1e999}}", b"\xef\xbb\xbf{}",
                                          b"{\"0\": {\"weights\": 0.5}, \"0\": {}}"])))
def test_fuzz_densities(content: bytes) -> None:
    with folder() as tmp:
        path, out = tmp / "d.json", tmp / "r.json"
        path.write_bytes(content)
        code, err = run(["estimate", *MODEL, "--densities", str(path), "--json", str(out),
                         "--quiet"])
        assert_clean_outcome(code, err, out)


# ---------------------------------------------------------------------------- CLI numbers

def _number_text() -> st.SearchStrategy[str]:
    """Numbers as typed: small or beyond every limit (never slow-but-legal sizes)."""
    return st.one_of(st.integers(-3, 40).map(str), st.integers(2**28, 2**90).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr),
                     st.from_regex(r"[0-9eE.+\-x,]{0,10}", fullmatch=True),
                     st.text(max_size=6))


@FUZZ
@given(batch=st.one_of(st.none(), _number_text()), bits=st.one_of(st.none(), _number_text()),
       shape=st.one_of(st.none(), st.lists(_number_text(), min_size=1, max_size=3).map(",".join),
                       _number_text()))
def test_fuzz_cli_numbers(batch: str | None, bits: str | None, shape: str | None) -> None:
    argv = ["estimate", "fuzz_models:tiny", f"--input-shape={shape if shape else '4'}"]
    argv += [f"--batch={batch}"] if batch is not None else []
    argv += [f"--bits={bits}"] if bits is not None else []
    with folder() as tmp:
        out = tmp / "r.json"
        code, err = run([*argv, "--json", str(out), "--quiet"])
        assert_clean_outcome(code, err, out)


SWEEP_NAMES = ["glb_kb", "pe_array", "bits", "weight_bits", "batch", "compression",
               "dram_energy", "mac_energy", "rf_bytes", "rf_weights_bytes", "rf_energy", "bogus"]


@settings(FUZZ, max_examples=50)
@given(name=st.sampled_from(SWEEP_NAMES),
       values=st.lists(st.one_of(_number_text(), st.sampled_from(
           ["1", "2", "8", "16", "64", "512", "4x4", "12x14", "rlc", "none", "1e-3", "1e30"])),
                       min_size=1, max_size=3))
def test_fuzz_sweep_values(name: str, values: list[str]) -> None:
    with folder() as tmp:
        csv, out = tmp / "s.csv", tmp / "s.json"
        code, err = run(["sweep", *MODEL, "--set", f"{name}={','.join(values)}", "--csv",
                         str(csv), "--plot", str(tmp / "s.svg"), "--json", str(out),
                         "--quiet"])
        assert_clean_outcome(code, err, out if code == 0 else None)


# ---------------------------------------------------------------------------- model files

SHIPPED = Path(__file__).parents[1] / "src" / "nnjoules" / "models" / "lenet5-fashion-mnist.pt"


def _onnx_bytes() -> bytes:
    """Gemm(4 -> 3) - Relu - Gemm(3 -> 2) on a [1, 4] input, built by hand (no exporter)."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Gemm", ["x", "w1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "w2"], ["y"], name="fc2", transB=1)]
    inits = [numpy_helper.from_array(rng.standard_normal((3, 4)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.standard_normal((2, 3)).astype(np.float32), "w2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 2])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


ONNX_BYTES = _onnx_bytes()
PT_BYTES = SHIPPED.read_bytes()


def _damaged(data: bytes, how: str, seed: int) -> bytes:
    rnd = random.Random(seed)
    if how == "truncated":
        return data[:rnd.randrange(len(data))]
    if how == "flipped":
        damaged = bytearray(data)
        for _ in range(rnd.randint(1, 8)):
            damaged[rnd.randrange(len(damaged))] ^= 1 << rnd.randrange(8)
        return bytes(damaged)
    return rnd.randbytes(rnd.randrange(200))


@settings(FUZZ, max_examples=80)
@given(how=st.sampled_from(["truncated", "flipped", "random"]), seed=st.integers(0, 2**32))
def test_fuzz_onnx_files(how: str, seed: int) -> None:
    with folder() as tmp:
        path, out = tmp / "m.onnx", tmp / "r.json"
        path.write_bytes(_damaged(ONNX_BYTES, how, seed))
        code, err = run(["estimate", str(path), "--json", str(out), "--quiet"])
        assert_clean_outcome(code, err, out)


@settings(FUZZ, max_examples=50)
@given(how=st.sampled_from(["truncated", "flipped", "random"]), seed=st.integers(0, 2**32))
def test_fuzz_model_files(how: str, seed: int) -> None:
    with folder() as tmp:
        path, out = tmp / "m.pt", tmp / "r.json"
        path.write_bytes(_damaged(PT_BYTES, how, seed))
        code, err = run(["estimate", str(path), "--json", str(out), "--quiet"])
        assert_clean_outcome(code, err, out)


def test_the_undamaged_files_estimate() -> None:
    # the control: the files the fuzzers damage are good models, so errors come from damage
    with folder() as tmp:
        for name, data in (("m.onnx", ONNX_BYTES), ("m.pt", PT_BYTES)):
            (tmp / name).write_bytes(data)
            code, err = run(["estimate", str(tmp / name), "--json", str(tmp / "r.json"),
                             "--quiet"])
            assert (code, err) == (0, f"wrote {tmp / 'r.json'}\n"), err
            macs = json.loads((tmp / "r.json").read_text())["totals"]["macs"]
            assert macs == (4 * 3 + 3 * 2 if name == "m.onnx" else 416_520)


@pytest.mark.parametrize("spec", ["fuzz_models:tiny"])
def test_the_tiny_model_estimates(spec: str) -> None:
    with folder() as tmp:
        code, err = run(["estimate", spec, "--input-shape", "2,4", "--json",
                         str(tmp / "r.json"), "--quiet"])
        assert (code, err) == (0, f"wrote {tmp / 'r.json'}\n")
        # two rows of Linear(4, 3) and Linear(3, 2): 2 x (12 + 6) MACs
        assert json.loads((tmp / "r.json").read_text())["totals"]["macs"] == 36

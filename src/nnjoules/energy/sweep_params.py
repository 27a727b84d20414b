"""Sweep parameters: their names, how their values are read, what each one changes.

See :mod:`nnjoules.energy.sweep` for the list. Values are read from text as written on
the command line (``12x14``, ``rlc``, ``64``) or given already typed.

Example:

    >>> settings = parse_settings(["glb_kb=32,108", "pe_array=12x14"])
    >>> settings["glb_kb"], settings["pe_array"]
    ((32, 108), ((12, 14),))
    >>> apply_hardware(eyeriss(), {"glb_kb": 32}).glb.size_bytes  # 32 x 1024
    32768
    >>> apply_hardware(eyeriss(), {"clock_mhz": parse_values("clock_mhz", ["400"])[0]}).clock_mhz
    400.0
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from nnjoules.energy.cost import Compression
from nnjoules.energy.hardware.spec import (  # noqa: F401  (eyeriss: doctest)
    MAX_BITS_PER_CYCLE,
    MAX_CLOCK_MHZ,
    MAX_ENERGY,
    MAX_PES,
    MAX_SIZE_BYTES,
    Hardware,
    PEArray,
    eyeriss,
)
from nnjoules.energy.workload import Precision, Workload
from nnjoules.errors import InputError

HardwareChange = Callable[[Hardware, Any], Hardware]


@dataclass(frozen=True)
class Parameter:
    """A sweepable setting: how to read a value and what it changes.

    Attributes:
        name: the name used in ``--set NAME=...`` and in CSV headers.
        help: one line, with the unit.
        parse: turns text (or an already typed value) into the value; ValueError if bad.
        numeric: whether values lie on a numeric axis in plots.
        change_hardware: for hardware settings, returns the changed hardware.
    """

    name: str
    help: str
    parse: Callable[[object], Any]
    numeric: bool = True
    change_hardware: HardwareChange | None = None


def _number(value: object, *, integer: bool = False, positive: bool = True) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: an int beyond float's range
        raise ValueError(f"expected a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ValueError(f"expected a {'positive' if positive else 'non-negative'} number, "
                         f"got {value!r}")
    if number == int(number):
        return int(number)
    if integer:
        raise ValueError(f"expected a whole number, got {value!r}")
    return float(number)


def _positive_int(value: object, maximum: int | None = None) -> int:
    number = int(_number(value, integer=True))
    if maximum is not None and number > maximum:
        raise ValueError(f"must be at most {maximum}")
    return number


def _bytes(value: object) -> int:
    return _positive_int(value, MAX_SIZE_BYTES)


def _energy(value: object) -> float:
    energy = float(_number(value, positive=False))
    if energy > MAX_ENERGY:
        raise ValueError(f"must be at most {MAX_ENERGY:g} (larger totals would overflow)")
    return energy


def _rate(maximum: float) -> Callable[[object], float]:
    """A parser of a positive, finite rate up to ``maximum`` (a clock or a bandwidth)."""
    def parse(value: object) -> float:
        rate = float(_number(value))
        if rate > maximum:
            raise ValueError(f"must be at most {maximum:g}")
        return rate
    return parse


def _bits(value: object) -> int:
    bits = _positive_int(value)
    Precision(bits, bits, bits)  # raises ValueError outside [1, 64]
    return bits


def _glb_kb(value: object) -> Any:
    kb = _number(value)
    if kb * 1024 > MAX_SIZE_BYTES:
        raise ValueError(f"must be at most {MAX_SIZE_BYTES // 1024} (1 TiB)")
    if (kb * 1024) % 1:
        raise ValueError(f"{value} kB is not a whole number of bytes (1 kB = 1024 bytes)")
    return kb


def _pe_array(value: object) -> tuple[int, int]:
    if isinstance(value, PEArray):
        rows, cols = value.rows, value.cols
    elif isinstance(value, tuple) and len(value) == 2:
        rows, cols = _positive_int(value[0]), _positive_int(value[1])
    else:
        match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", str(value))
        if match is None or 0 in (int(match[1]), int(match[2])):
            raise ValueError(f"expected ROWSxCOLS with positive numbers, e.g. 12x14, "
                             f"got {value!r}")
        rows, cols = int(match[1]), int(match[2])
    if rows * cols > MAX_PES:
        raise ValueError(f"{rows}x{cols} is {rows * cols} PEs, more than the {MAX_PES} "
                         "(256x256) the mapping search supports")
    return (rows, cols)


def compression_of(value: object) -> Compression:
    """``value`` as a `Compression`; ValueError naming the choices if it is none."""
    try:
        return Compression(str(value))
    except ValueError:
        raise ValueError(f"expected one of {', '.join(c.value for c in Compression)}, "
                         f"got {value!r}") from None


def dataflow_of(value: object) -> str:
    """``value`` as a registered dataflow name; ValueError naming the choices if none."""
    from nnjoules.energy.dataflows import canonical_name

    try:
        return canonical_name(str(value))
    except InputError as err:
        raise ValueError(str(err).removeprefix("dataflow: ")) from None


def _rf_size(field: str) -> HardwareChange:
    def change(hw: Hardware, value: Any) -> Hardware:
        unified = field == "size_bytes"
        if hw.rf.unified != unified:
            kind = "one unified register file" if hw.rf.unified else "split scratch pads"
            use = "rf_bytes" if hw.rf.unified else \
                "rf_weights_bytes, rf_ifmaps_bytes and rf_psums_bytes"
            raise InputError(f"hardware {hw.name!r} has {kind}: sweep {use} instead")
        return replace(hw, rf=replace(hw.rf, **{field: value}))
    return change


def _rf_energy(hw: Hardware, value: Any) -> Hardware:
    return replace(hw, rf=replace(hw.rf, weights=_cost(hw.rf.weights, value),
                                  ifmaps=_cost(hw.rf.ifmaps, value),
                                  psums=_cost(hw.rf.psums, value)))


def _cost(cost: Any, value: float) -> Any:
    return replace(cost, read=value, write=value)


_HELP_ENERGY = "energy per {} access (read and write), in the hardware's unit"
PARAMETERS: dict[str, Parameter] = {p.name: p for p in (
    Parameter("glb_kb", "global buffer size, kB (1 kB = 1024 bytes)", _glb_kb,
              change_hardware=lambda hw, v: replace(
                  hw, glb=replace(hw.glb, size_bytes=int(v * 1024)))),
    Parameter("pe_array", "PE array, ROWSxCOLS", _pe_array, numeric=False,
              change_hardware=lambda hw, v: replace(hw, pe_array=PEArray(*v))),
    Parameter("bits", "bit-width of weights, ifmaps and ofmaps", _bits),
    Parameter("weight_bits", "bit-width of weights", _bits),
    Parameter("ifmap_bits", "bit-width of ifmaps", _bits),
    Parameter("ofmap_bits", "bit-width of ofmaps and psums", _bits),
    Parameter("batch", "batch size N", _positive_int),
    Parameter("compression", "DRAM compression of zeros", compression_of, numeric=False),
    Parameter("dataflow", "dataflow: RS, WS, OS-A, OS-B, OS-C, NLR (or the full names), "
              "systolic-ws, systolic-os",
              dataflow_of, numeric=False),
    Parameter("dram_energy", _HELP_ENERGY.format("DRAM"), _energy,
              change_hardware=lambda hw, v: replace(hw, dram=_cost(hw.dram, v))),
    Parameter("glb_energy", _HELP_ENERGY.format("global buffer"), _energy,
              change_hardware=lambda hw, v: replace(
                  hw, glb=replace(hw.glb, cost=_cost(hw.glb.cost, v)))),
    Parameter("array_energy", _HELP_ENERGY.format("inter-PE array"), _energy,
              change_hardware=lambda hw, v: replace(hw, array=_cost(hw.array, v))),
    Parameter("rf_energy", _HELP_ENERGY.format("register file (every scratch pad)"), _energy,
              change_hardware=_rf_energy),
    Parameter("mac_energy", "energy of one word_bits x word_bits MAC", _energy,
              change_hardware=lambda hw, v: replace(hw, mac=v)),
    Parameter("clock_mhz", "core clock, MHz (latency, throughput and power; no energy)",
              _rate(MAX_CLOCK_MHZ), change_hardware=lambda hw, v: replace(hw, clock_mhz=v)),
    Parameter("dram_bandwidth", "DRAM bandwidth, bits per core cycle (reads and writes)",
              _rate(MAX_BITS_PER_CYCLE),
              change_hardware=lambda hw, v: replace(hw, dram_bits_per_cycle=v)),
    Parameter("glb_bandwidth", "global buffer bandwidth, bits per core cycle",
              _rate(MAX_BITS_PER_CYCLE),
              change_hardware=lambda hw, v: replace(hw, glb_bits_per_cycle=v)),
    Parameter("rf_bytes", "unified register file per PE, bytes", _bytes,
              change_hardware=_rf_size("size_bytes")),
    Parameter("rf_weights_bytes", "weight scratch pad per PE, bytes", _bytes,
              change_hardware=_rf_size("weights_bytes")),
    Parameter("rf_ifmaps_bytes", "ifmap scratch pad per PE, bytes", _bytes,
              change_hardware=_rf_size("ifmaps_bytes")),
    Parameter("rf_psums_bytes", "psum scratch pad per PE, bytes", _bytes,
              change_hardware=_rf_size("psums_bytes")),
)}
_PRECISION_FIELDS = ("weight_bits", "ifmap_bits", "ofmap_bits")  # as in `Precision`


def format_value(value: Any) -> str:
    """A setting's value as written on the command line; a float keeps every digit, so
    that the text reads back to the same value (a resumed sweep recomputes from it).

    >>> format_value((12, 14)), format_value(Compression.RLC), format_value(64)
    ('12x14', 'rlc', '64')
    >>> format_value(200.0), format_value(19.2), format_value(123.4567891)
    ('200', '19.2', '123.4567891')
    """
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    if isinstance(value, Compression):
        return value.value
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def parse_settings(texts: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """Read ``NAME=V1,V2,...`` settings into ``{name: values}``, in the order given.

    Raises:
        InputError: no settings, no ``=``, an unknown name, no values, a bad or repeated
            value, or a name given twice.
    """
    if not texts:
        raise InputError("nothing to sweep: give at least one --set NAME=V1,V2,...")
    grid: dict[str, tuple[Any, ...]] = {}
    for text in texts:
        name, sep, values = text.partition("=")
        name = name.strip()
        if not sep:
            raise InputError(f"--set {text!r}: expected NAME=V1,V2,... (e.g. glb_kb=32,64)")
        if name in grid:
            raise InputError(f"--set {name}: given twice; list all its values in one --set")
        items = [v.strip() for v in values.split(",")] if values.strip() else []
        grid[name] = parse_values(name, items)
    return grid


def parse_values(name: str, values: Sequence[object]) -> tuple[Any, ...]:
    """The values of parameter ``name``, parsed and checked.

    Raises:
        InputError: unknown parameter, no values, a bad value or a repeated one.
    """
    if name not in PARAMETERS:
        close = difflib.get_close_matches(name, list(PARAMETERS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InputError(f"unknown sweep parameter {name!r}{hint}; parameters: "
                         f"{', '.join(PARAMETERS)}")
    if not values or any(v == "" for v in values):
        raise InputError(f"sweep parameter {name}: empty value list; give e.g. "
                         f"{name}=V1,V2 with no empty entries")
    parsed = []
    for value in values:
        try:
            parsed.append(PARAMETERS[name].parse(value))
        except ValueError as err:
            raise InputError(f"sweep parameter {name}: bad value {value!r}: {err}") from None
    for a, b in itertools.combinations(parsed, 2):
        if a == b:
            raise InputError(f"sweep parameter {name}: value {format_value(a)} given twice")
    return tuple(parsed)


def apply_hardware(base: Hardware, settings: Mapping[str, Any]) -> Hardware:
    """``base`` with every hardware setting of ``settings`` applied.

    Raises:
        InputError: a setting that this hardware cannot take (e.g. ``rf_bytes`` on
            split scratch pads) or a resulting hardware that does not validate.
    """
    hw = base
    for name, value in settings.items():
        change = PARAMETERS[name].change_hardware
        if change is not None:
            try:
                hw = change(hw, value)
            except ValueError as err:
                if isinstance(err, InputError):
                    raise
                raise InputError(f"sweep parameter {name}={format_value(value)}: {err}") \
                    from None
    return hw


def apply_precision(workload: Workload, settings: Mapping[str, Any]) -> Workload:
    """``workload`` with ``bits``, then ``weight_bits``/``ifmap_bits``/``ofmap_bits``."""
    changes: dict[str, int] = {}
    if "bits" in settings:
        changes = dict.fromkeys(_PRECISION_FIELDS, settings["bits"])
    changes |= {name: settings[name] for name in _PRECISION_FIELDS if name in settings}
    if not changes:
        return workload
    layers = tuple(layer.with_precision(replace(layer.precision, **changes))
                   for layer in workload.layers)
    return replace(workload, layers=layers)

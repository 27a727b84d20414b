"""Field checks for hardware YAML: each failure names the source and the dotted field path.

`FieldChecker` validates one parsed file field by field (types, ranges, unknown keys with
a did-you-mean hint); `nnjoules.energy.hardware.loading` walks the schema with it. The
schema's key names live here too, so that a misplaced key can say where it belongs.

Example:
    >>> FieldChecker("hw.yaml").positive_int({"rows": 12}, "pe_array", "rows")
    12
    >>> FieldChecker("hw.yaml").positive_int({"rows": -5}, "pe_array", "rows")
    Traceback (most recent call last):
    ...
    nnjoules.errors.HardwareFileError: hw.yaml: pe_array.rows: must be a positive integer, got -5
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from nnjoules.energy.hardware.spec import (
    MAX_BITS,
    MAX_ENERGY,
    MAX_PES,
    MAX_SIZE_BYTES,
    AccessCost,
    EnergyUnit,
    PEArray,
)
from nnjoules.errors import HardwareFileError

BYTES_PER_KB = 1024  # "108 kB" in the Eyeriss papers is 108 x 1024 bytes

TOP_KEYS = ("name", "unit", "word_bits", "pe_array", "mac_energy", "clock_mhz", "dram",
            "global_buffer", "array", "register_file")
COST_KEYS = ("read_energy", "write_energy", "access_bits")
BANDWIDTH = "bandwidth_bits_per_cycle"
SIZE_KEYS = ("size_bytes", "size_kb")
PADS = ("weights", "ifmaps", "psums")
_UNITS = {"normalized": EnergyUnit.NORMALIZED, "normalised": EnergyUnit.NORMALIZED,
          "pj": EnergyUnit.PJ}
_PE_ARRAY_TEXT = re.compile(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*")


def suggest(word: str, choices: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices`` to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _elsewhere(key: str, path: str) -> str:
    """Where ``key`` belongs when it is a known key misplaced (``dram.clock_mhz``)."""
    if path and key in TOP_KEYS:
        return f" ({key} belongs at the top level)"
    if key == BANDWIDTH:
        return f" ({key} belongs under dram or global_buffer)"
    if path != "register_file" and key in PADS:
        return f" ({key} is a scratch pad of register_file)"
    return ""


def _show(value: object) -> str:
    """A value as the YAML author wrote it, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return f"{value!r} (a string)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class FieldChecker:
    """Checks fields of one source; every failure names the source and the field path."""

    source: str

    def error(self, path: str, message: str) -> HardwareFileError:
        """The error to raise: ``source: path: message`` (no path: ``source: message``)."""
        return HardwareFileError(f"{self.source}: {path}: {message}" if path
                                 else f"{self.source}: {message}")

    def fields(self, value: object, path: str, allowed: Collection[str]) -> Mapping[str, Any]:
        """``value`` as a mapping whose keys are all in ``allowed``."""
        if not isinstance(value, Mapping):
            where = "must be a mapping" if path else "the top level must be a mapping"
            raise self.error(path, f"{where}, got {_show(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.error(path, f"keys must be strings, got {_show(key)}")
            if key not in allowed:
                hint = suggest(key, allowed) or _elsewhere(key, path)
                raise self.error(_join(path, key), f"unknown key{hint}; "
                                 f"expected one of: {', '.join(allowed)}")
        return value

    def required(self, m: Mapping[str, Any], path: str, key: str) -> Any:
        """``m[key]``; absent and null are both an error."""
        if m.get(key) is None:
            raise self.error(_join(path, key), "required, got null" if key in m else "required")
        return m[key]

    def level(self, top: Mapping[str, Any], key: str, keys: Collection[str]) -> Mapping[str, Any]:
        """The required section ``top[key]``, a mapping whose keys are all in ``keys``."""
        return self.fields(self.required(top, "", key), key, keys)

    def name(self, top: Mapping[str, Any]) -> str:
        """The required, non-empty ``name``."""
        value = self.required(top, "", "name")
        if not isinstance(value, str) or not value.strip():
            raise self.error("name", f"must be a non-empty string, got {_show(value)}")
        return value

    def unit(self, top: Mapping[str, Any]) -> EnergyUnit:
        """The required energy ``unit`` (``normalized``/``normalised`` or ``pJ``, any case)."""
        value = self.required(top, "", "unit")
        if not isinstance(value, str) or value.lower() not in _UNITS:
            raise self.error("unit", f"unknown unit {_show(value)}; expected one of: "
                             f"{', '.join(u.value for u in EnergyUnit)}")
        return _UNITS[value.lower()]

    def positive_int(self, m: Mapping[str, Any], path: str, key: str, *,
                     default: int | None = None, maximum: int = MAX_BITS) -> int:
        """A positive integer up to ``maximum`` (booleans and floats are not); ``default``
        if absent."""
        value = m.get(key)
        if value is None and default is not None:
            return default
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise self.error(_join(path, key), f"must be a positive integer, got {_show(value)}")
        if value > maximum:
            raise self.error(_join(path, key), f"must be at most {maximum}, got {value}")
        return value

    def energy(self, m: Mapping[str, Any], path: str, key: str) -> float:
        """A required non-negative, finite energy in the file's unit."""
        value = self.optional_energy(m, path, key)
        if value is None:
            raise self.error(_join(path, key), "required")
        return value

    def optional_energy(self, m: Mapping[str, Any], path: str, key: str) -> float | None:
        """A non-negative, finite energy up to `MAX_ENERGY`, in the file's unit; None if
        absent."""
        value = m.get(key)
        if value is None:
            return None
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            raise self.error(_join(path, key),
                             f"must be a non-negative number, got {_show(value)}")
        if value > MAX_ENERGY:
            raise self.error(_join(path, key), f"must be at most {MAX_ENERGY:g} "
                             f"(larger totals would overflow), got {value!r}")
        return float(value)

    def rate(self, m: Mapping[str, Any], path: str, key: str, default: float,
             maximum: float) -> float:
        """A positive, finite number up to ``maximum`` (a clock or a bandwidth); ``default``
        if absent."""
        value = m.get(key)
        if value is None:
            if key in m:
                raise self.error(_join(path, key), "must be a positive number, got null "
                                 f"(leave it out for the default {default:g})")
            return default
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise self.error(_join(path, key), f"must be a positive number, got {_show(value)}")
        if value > maximum:
            raise self.error(_join(path, key), f"must be at most {maximum:g}, got {value!r}")
        return float(value)

    def size_bytes(self, m: Mapping[str, Any], path: str) -> int | None:
        """``size_bytes``, or ``size_kb`` x 1024; None if neither is given."""
        has_bytes, has_kb = m.get("size_bytes") is not None, m.get("size_kb") is not None
        if has_bytes and has_kb:
            raise self.error(path, "give size_bytes or size_kb, not both")
        if has_bytes:
            return self.positive_int(m, path, "size_bytes", maximum=MAX_SIZE_BYTES)
        if not has_kb:
            return None
        kb = m["size_kb"]
        if not _is_number(kb) or not math.isfinite(kb) or kb <= 0:
            raise self.error(_join(path, "size_kb"), f"must be a positive number, got {_show(kb)}")
        if kb * BYTES_PER_KB > MAX_SIZE_BYTES:
            raise self.error(_join(path, "size_kb"), f"must be at most "
                             f"{MAX_SIZE_BYTES // BYTES_PER_KB} (1 TiB), got {kb!r}")
        if (kb * BYTES_PER_KB) % 1:
            raise self.error(_join(path, "size_kb"),
                             f"{kb} kB is not a whole number of bytes (1 kB = 1024 bytes)")
        return int(kb * BYTES_PER_KB)

    def pe_array(self, value: object) -> PEArray:
        """``'ROWSxCOLS'`` or ``{rows, cols}``, at most `MAX_PES` PEs in all."""
        if isinstance(value, str) or not isinstance(value, Mapping):  # 0x14: YAML's hex 20
            match = _PE_ARRAY_TEXT.fullmatch(value) if isinstance(value, str) else None
            if match is None or 0 in (int(match[1]), int(match[2])):
                hexa = " (YAML reads 0x... as a hexadecimal number)" if \
                    isinstance(value, int) and not isinstance(value, bool) else ""
                raise self.error("pe_array", f"must be 'ROWSxCOLS' with positive numbers, "
                                 f"e.g. '12x14', or {{rows: 12, cols: 14}}; got "
                                 f"{_show(value)}{hexa}")
            rows, cols = int(match[1]), int(match[2])
        else:
            m = self.fields(value, "pe_array", ("rows", "cols"))
            rows = self.positive_int(m, "pe_array", "rows", maximum=MAX_PES)
            cols = self.positive_int(m, "pe_array", "cols", maximum=MAX_PES)
        if rows * cols > MAX_PES:
            raise self.error("pe_array", f"{rows}x{cols} is {rows * cols} PEs, more than the "
                             f"{MAX_PES} (256x256) the mapping search supports")
        return PEArray(rows=rows, cols=cols)

    def cost(self, m: Mapping[str, Any], path: str, word_bits: int) -> AccessCost:
        """An access cost; ``write_energy`` defaults to ``read_energy``, bits to word_bits."""
        read = self.energy(m, path, "read_energy")
        write = self.optional_energy(m, path, "write_energy")
        return AccessCost(read=read, write=read if write is None else write,
                          access_bits=self.positive_int(m, path, "access_bits",
                                                        default=word_bits))

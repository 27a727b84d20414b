"""Hardware YAML: the only place that reads it. Validate once, fill defaults, return `Hardware`.

The schema is documented in ``docs/hardware.md``; the presets ship as commented YAML
templates in ``nnjoules/energy/hardware/presets/``. Every error is a `HardwareFileError` whose
message starts with the file and the dotted field path, e.g.
``hw.yaml: global_buffer.size_bytes: must be a positive integer, got -5``. The
per-field checks live in `nnjoules.energy.hardware.fields`; this module reads files and
presets, walks the schema level by level, and writes descriptions back out.

Example:
    >>> hw = hardware_from_dict({
    ...     "name": "toy", "unit": "pJ", "pe_array": "2x3", "mac_energy": 0.5,
    ...     "dram": {"read_energy": 512, "access_bits": 64},
    ...     "global_buffer": {"size_kb": 2, "read_energy": 6},
    ...     "array": {"transfer_energy": 2},
    ...     "register_file": {"size_bytes": 32, "read_energy": 1}}, source="toy.yaml")
    >>> hw.glb.size_bytes, hw.pe_array.num_pes, hw.dram.read_per_bit(), hw.dram.write
    (2048, 6, 8.0, 512.0)
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nnjoules.energy.hardware.catalog import PRESETS
from nnjoules.energy.hardware.fields import (
    BANDWIDTH,
    COST_KEYS,
    PADS,
    SIZE_KEYS,
    TOP_KEYS,
    FieldChecker,
    suggest,
)
from nnjoules.energy.hardware.fields import BYTES_PER_KB as BYTES_PER_KB  # was defined here
from nnjoules.energy.hardware.spec import (
    EYERISS_CLOCK_MHZ,
    EYERISS_DRAM_BITS_PER_CYCLE,
    EYERISS_GLB_BITS_PER_CYCLE,
    MAX_BITS_PER_CYCLE,
    MAX_CLOCK_MHZ,
    AccessCost,
    GlobalBuffer,
    Hardware,
    RegisterFile,
)
from nnjoules.errors import HardwareFileError

__all__ = ["dump_hardware", "hardware_from_dict", "hardware_to_dict", "load_hardware"]

# ---------------------------------------------------------------------------- public API


def load_hardware(source: str | Path | Hardware) -> Hardware:
    """Return the hardware named by ``source``.

    Args:
        source: a `Hardware` (returned as is), a preset name (``eyeriss``,
            ``eyeriss-isca2016``) or the path of a YAML file. A string that is a
            preset name is the preset; write ``./eyeriss`` for a file of that name.

    Returns:
        The validated hardware description.

    Raises:
        HardwareFileError: unknown preset, missing or unreadable file, bad YAML, or a
            field that does not validate; the message names the file and the field.
    """
    if isinstance(source, Hardware):
        return source
    if isinstance(source, str) and source in PRESETS:
        return PRESETS[source]()
    path = Path(source)
    if isinstance(source, str) and not path.exists() and _looks_like_name(source):
        raise HardwareFileError(
            f"unknown hardware {source!r}: not a preset and not an existing file"
            f"{suggest(source, PRESETS)}; presets: {', '.join(PRESETS)}")
    data = _read_yaml(path, label=str(source))
    if data is None:
        raise HardwareFileError(f"{source}: the file is empty; see docs/hardware.md")
    return hardware_from_dict(data, source=str(source))


def hardware_from_dict(data: Mapping[str, Any], *, source: str) -> Hardware:
    """Validate a parsed hardware description and build the `Hardware`.

    Args:
        data: the top-level mapping, as parsed from YAML (schema: docs/hardware.md).
        source: what to name in error messages, usually the file path.

    Returns:
        The hardware, with every default filled in.

    Raises:
        HardwareFileError: the first field that does not validate, with its dotted path.
    """
    ctx = FieldChecker(source)
    top = ctx.fields(data, "", TOP_KEYS)
    word_bits = ctx.positive_int(top, "", "word_bits", default=16)
    name, unit = ctx.name(top), ctx.unit(top)
    pe_array = ctx.pe_array(ctx.required(top, "", "pe_array"))
    mac = ctx.energy(top, "", "mac_energy")
    clock = ctx.rate(top, "", "clock_mhz", EYERISS_CLOCK_MHZ, MAX_CLOCK_MHZ)
    dram_fields = ctx.level(top, "dram", (*COST_KEYS, BANDWIDTH))
    dram = ctx.cost(dram_fields, "dram", word_bits)
    dram_bw = ctx.rate(dram_fields, "dram", BANDWIDTH, EYERISS_DRAM_BITS_PER_CYCLE,
                       MAX_BITS_PER_CYCLE)
    glb = _global_buffer(ctx, top, word_bits)
    glb_bw = ctx.rate(top["global_buffer"], "global_buffer", BANDWIDTH,
                      EYERISS_GLB_BITS_PER_CYCLE, MAX_BITS_PER_CYCLE)
    array = _array(ctx, top, word_bits)
    rf = _register_file(ctx, top, word_bits)
    try:  # every field was checked above; this only guards rules added to Hardware later
        return Hardware(name=name, unit=unit, word_bits=word_bits, pe_array=pe_array,
                        mac=mac, dram=dram, glb=glb, array=array, rf=rf, clock_mhz=clock,
                        dram_bits_per_cycle=dram_bw, glb_bits_per_cycle=glb_bw)
    except ValueError as exc:
        raise HardwareFileError(f"{source}: {exc}") from exc


def hardware_to_dict(hw: Hardware) -> dict[str, Any]:
    """The YAML-ready mapping of ``hw``, every field explicit (no defaults relied on).

    ``hardware_from_dict(hardware_to_dict(hw), source=...) == hw`` for every `Hardware`
    whose array read and write energies are equal (the schema has one transfer energy).

    Raises:
        ValueError: ``hw.array`` has different read and write energies.
    """
    if hw.array.read != hw.array.write:
        raise ValueError(f"hardware {hw.name!r}: array read ({hw.array.read}) and write "
                         f"({hw.array.write}) energies differ; the schema has one transfer_energy")
    return {
        "name": hw.name,
        "unit": hw.unit.value,
        "word_bits": hw.word_bits,
        "pe_array": {"rows": hw.pe_array.rows, "cols": hw.pe_array.cols},
        "mac_energy": hw.mac,
        "clock_mhz": hw.clock_mhz,
        "dram": {**_cost_dict(hw.dram), BANDWIDTH: hw.dram_bits_per_cycle},
        "global_buffer": {"size_bytes": hw.glb.size_bytes, **_cost_dict(hw.glb.cost),
                          BANDWIDTH: hw.glb_bits_per_cycle},
        "array": {"transfer_energy": hw.array.read, "access_bits": hw.array.access_bits},
        "register_file": _rf_dict(hw.rf),
    }


def dump_hardware(hw: Hardware, path: str | Path) -> None:
    """Write ``hw`` as a YAML file that `load_hardware` reads back to an equal `Hardware`."""
    text = yaml.safe_dump(hardware_to_dict(hw), sort_keys=False, default_flow_style=False)
    Path(path).write_text(f"# nnjoules hardware description; schema: docs/hardware.md\n{text}",
                          encoding="utf-8")


# ---------------------------------------------------------------------------- reading files


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` may legitimately be overridden by explicit keys
        key = loader.construct_object(key_node)
        if isinstance(key, Hashable):
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# YAML 1.1 (PyYAML) wants a dot in a float, so `1e-3` and `1e30` would be strings; YAML 1.2
# and every other reader take them as numbers. Its int rule is tried first, so integers stay
# integers.
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))


def _read_yaml(path: Path, *, label: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HardwareFileError(f"{label}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HardwareFileError(f"{label}: cannot read: {exc}") from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise HardwareFileError(f"{label}: {where}invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise HardwareFileError(f"{label}: invalid YAML: {exc}") from None


def _looks_like_name(source: str) -> bool:
    """Whether ``source`` reads as a preset name rather than a file path."""
    is_path = "/" in source or "\\" in source or source.endswith((".yaml", ".yml"))
    return not is_path



# ---------------------------------------------------------------------------- levels


def _global_buffer(ctx: FieldChecker, top: Mapping[str, Any], word_bits: int) -> GlobalBuffer:
    m = ctx.level(top, "global_buffer", (*SIZE_KEYS, *COST_KEYS, BANDWIDTH))
    size = ctx.size_bytes(m, "global_buffer")
    if size is None:
        raise ctx.error("global_buffer.size_bytes", "required (or size_kb)")
    return GlobalBuffer(size_bytes=size, cost=ctx.cost(m, "global_buffer", word_bits))


def _array(ctx: FieldChecker, top: Mapping[str, Any], word_bits: int) -> AccessCost:
    m = ctx.level(top, "array", ("transfer_energy", "access_bits"))
    hop = ctx.energy(m, "array", "transfer_energy")
    return AccessCost(read=hop, write=hop,
                      access_bits=ctx.positive_int(m, "array", "access_bits", default=word_bits))


def _register_file(ctx: FieldChecker, top: Mapping[str, Any], word_bits: int) -> RegisterFile:
    """One unified RF (size at the top) or three scratch pads (a size in each pad).

    Energy fields at the top are defaults for every operand; a pad's own fields win.
    """
    m = ctx.level(top, "register_file", (*SIZE_KEYS, *COST_KEYS, *PADS))
    unified = ctx.size_bytes(m, "register_file")
    pads = {p: ctx.fields(m[p] if m.get(p) is not None else {}, f"register_file.{p}",
                          (*SIZE_KEYS, *COST_KEYS)) for p in PADS}
    sizes = {p: ctx.size_bytes(pad, f"register_file.{p}") for p, pad in pads.items()}
    if unified is not None:
        for p, size in sizes.items():
            if size is not None:
                raise ctx.error(f"register_file.{p}", "a scratch pad size cannot be combined "
                                "with a unified register_file size; give one or the other")
    elif all(size is None for size in sizes.values()):
        raise ctx.error("register_file", "give size_bytes (one unified RF) or weights, ifmaps "
                        "and psums scratch pads, each with its own size_bytes")
    else:
        for p, size in sizes.items():
            if size is None:
                raise ctx.error(f"register_file.{p}.size_bytes",
                                "required when the register file is split into scratch pads")
    shared = _CostFields(
        read=ctx.optional_energy(m, "register_file", "read_energy"),
        write=ctx.optional_energy(m, "register_file", "write_energy"),
        access_bits=ctx.positive_int(m, "register_file", "access_bits", default=word_bits))
    costs = {p: _pad_cost(ctx, pads[p], f"register_file.{p}", shared) for p in PADS}
    return RegisterFile(weights=costs["weights"], ifmaps=costs["ifmaps"], psums=costs["psums"],
                        size_bytes=unified, weights_bytes=sizes["weights"],
                        ifmaps_bytes=sizes["ifmaps"], psums_bytes=sizes["psums"])


@dataclass(frozen=True)
class _CostFields:
    """The register file's own energy fields: defaults for its pads."""

    read: float | None
    write: float | None
    access_bits: int


def _pad_cost(ctx: FieldChecker, pad: Mapping[str, Any], path: str,
              shared: _CostFields) -> AccessCost:
    """Each field from the pad, else from the register file; write defaults to read."""
    read = ctx.optional_energy(pad, path, "read_energy")
    read = shared.read if read is None else read
    if read is None:
        raise ctx.error(f"{path}.read_energy", "required here or in register_file")
    write = ctx.optional_energy(pad, path, "write_energy")
    write = shared.write if write is None else write
    return AccessCost(read=read, write=read if write is None else write,
                      access_bits=ctx.positive_int(pad, path, "access_bits",
                                                   default=shared.access_bits))


# ---------------------------------------------------------------------------- writing


def _cost_dict(cost: AccessCost) -> dict[str, Any]:
    return {"read_energy": cost.read, "write_energy": cost.write,
            "access_bits": cost.access_bits}


def _rf_dict(rf: RegisterFile) -> dict[str, Any]:
    """Energies at the top when all operands share them, else in each pad."""
    costs = {"weights": rf.weights, "ifmaps": rf.ifmaps, "psums": rf.psums}
    shared = len(set(costs.values())) == 1
    out: dict[str, Any] = _cost_dict(rf.weights) if shared else {}
    if rf.unified:
        out = {"size_bytes": rf.size_bytes, **out}
    sizes = {"weights": rf.weights_bytes, "ifmaps": rf.ifmaps_bytes, "psums": rf.psums_bytes}
    for pad, cost in costs.items():
        entry: dict[str, Any] = {} if rf.unified else {"size_bytes": sizes[pad]}
        if not shared:
            entry.update(_cost_dict(cost))
        if entry:
            out[pad] = entry
    return out

"""The flat CSV form of a report (one row per layer).

The columns are documented in ``docs/report-json.md``; every energy is in the report's
unit (``NetworkEstimate.unit``), repeated in the ``unit`` column so that CSV files of
several runs can be concatenated.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnjoules.energy.hardware import LEVELS, OPERANDS
from nnjoules.energy.results import LEVEL_KEYS, OPERAND_KEYS

if TYPE_CHECKING:
    from nnjoules.energy.results import LayerEstimate, NetworkEstimate

def layer_columns(item: LayerEstimate, network_total: float) -> dict[str, Any]:
    """The CSV columns of one layer (without the report-wide columns)."""
    layer, energy = item.layer, item.energy
    out: dict[str, Any] = {"layer": item.name, "kind": layer.kind.value, "op": layer.op}
    out |= {k: getattr(layer, k) for k in ("N", "M", "C", "G", "H", "W", "R", "S", "E", "F")}
    out |= {"stride_h": layer.stride[0], "stride_w": layer.stride[1],
            "dilation_h": layer.dilation[0], "dilation_w": layer.dilation[1],
            "weight_bits": layer.precision.weight_bits,
            "ifmap_bits": layer.precision.ifmap_bits,
            "ofmap_bits": layer.precision.ofmap_bits,
            "weight_density": layer.density.weights, "ifmap_density": layer.density.ifmaps,
            "ofmap_density": layer.density.ofmaps,
            "weights": layer.num_weights, "nonzero_weights": layer.nonzero_weights,
            "macs": layer.macs, "nonskipped_macs": energy.nonskipped_macs,
            "energy": item.total,
            "energy_share": item.total / network_total if network_total else 0.0,
            "computation": energy.computation, "data_movement": energy.data_movement,
            "energy_per_mac": item.total / layer.macs}
    levels, operands = item.by_level(), item.by_operand()
    out |= {f"energy_{k}": levels[k] for k in LEVEL_KEYS}
    out |= {f"energy_{k}": operands[k] for k in OPERAND_KEYS}
    out |= {f"energy_{level.value}_{op.value}": energy.data[level, op]
            for level in LEVELS for op in OPERANDS}
    out |= {f"map_{k}": v for k, v in item.mapping.as_dict().items()}
    out["active_pes"] = item.mapping.active_pes(item.mapped_as or layer)  # what it maps
    timing = item.timing.to_dict()
    out |= {"cycles": timing.pop("cycles"), "bound": timing.pop("bound")} | timing
    return out


def report_rows(report: NetworkEstimate) -> list[dict[str, Any]]:
    """One dict per layer, in execution order, with the report-wide columns first."""
    total = report.total()
    common = {"network": report.workload.name, "hardware": report.hardware.name,
              "unit": report.unit.value, "compression": report.compression.value}
    return [common | {"index": i} | layer_columns(item, total)
            for i, item in enumerate(report.layers)]


def report_to_csv(report: NetworkEstimate) -> str:
    """The per-layer CSV text of ``report`` (header line first)."""
    return rows_to_csv(report_rows(report))


def rows_to_csv(rows: Sequence[Mapping[str, Any]], fieldnames: Iterable[str] | None = None,
                ) -> str:
    """CSV text of ``rows``; ``None`` becomes an empty cell, floats keep full precision."""
    names = list(fieldnames) if fieldnames is not None else list(rows[0]) if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in names})
    return buffer.getvalue()


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically to ``path`` (an `InputError` if it cannot be written)."""
    from nnjoules.io import write_text_atomic

    write_text_atomic(Path(path), text)

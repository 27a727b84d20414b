"""Whether a hardware can run a dataflow at all, said before any model is loaded.

Each dataflow reads its own fields of `Hardware`: row-stationary needs a register file
that holds a weight, an ifmap and a psum; weight-stationary a weight; OS-A, -B and -C
their ifmaps and psums; no-local-reuse no register file at all; a systolic array's PE
registers one weight, one ifmap and one psum; all but the systolic arrays (which
re-fetch what their SRAMs cannot keep) a global buffer for their tiles;
every one, the PE array. A layer that does not fit is a `MappingError` naming the layer.
But when not even the smallest layer fits (one 1x1 MAC at the run's bit-widths: every
layer needs at least its storage), no layer will: the hardware is unsuitable for the
dataflow, and `check_dataflow_fits` says so in one line naming the hardware and the
fields (exit 2), instead of failing on the network's first layer.

Example: the ISCA 2016 no-local-reuse preset has a 1-byte placeholder register file.

    >>> from nnjoules.energy.hardware.spec import eyeriss_isca2016_for
    >>> hw = eyeriss_isca2016_for("no-local-reuse")
    >>> check_dataflow_fits(hw, "no-local-reuse")  # NLR never reads it
    >>> check_dataflow_fits(hw, "weight-stationary")
    Traceback (most recent call last):
    ...
    nnjoules.errors.HardwareFileError: hardware 'eyeriss-isca2016-nlr' cannot run the \
weight-stationary dataflow, not even on one 1x1 MAC of 16-bit values: \
register_file.size_bytes is too small (RF: 1 weights + 0 ifmaps + 0 psums = 16 bits > 8 bits)
"""

from __future__ import annotations

from nnjoules.energy.cost import Compression, CompressionLevels, Gating
from nnjoules.energy.dataflows import get_dataflow
from nnjoules.energy.hardware.spec import Hardware
from nnjoules.energy.workload import Layer, LayerKind, Precision
from nnjoules.errors import HardwareFileError, MappingError

# What a violation (as the dataflows word it) says is too small, and the YAML field.
_FIELDS = (("RF weight scratch pad", "register_file.weights.size_bytes"),
           ("RF ifmap scratch pad", "register_file.ifmaps.size_bytes"),
           ("RF psum scratch pad", "register_file.psums.size_bytes"),
           ("RF:", "register_file.size_bytes"),
           ("GLB", "global_buffer.size_bytes"),
           ("array:", "pe_array"))


def check_dataflow_fits(hw: Hardware, dataflow: str, precision: Precision | None = None, *,
                        source: str | None = None) -> None:
    """Refuse ``hw`` if ``dataflow`` cannot map even one 1x1 MAC on it.

    Args:
        hw: the hardware.
        dataflow: a registered dataflow name or abbreviation.
        precision: the run's bit-widths; default ``hw.word_bits`` for every operand.
        source: where ``hw`` came from (a YAML file), named first in the message when it
            is not the hardware's own name.

    Raises:
        HardwareFileError: the hardware, the dataflow, the fields too small and why.
        InputError: an unknown dataflow.
    """
    flow = get_dataflow(dataflow)
    bits = precision or Precision(hw.word_bits, hw.word_bits, hw.word_bits)
    one = Layer("one MAC", LayerKind.FC, N=1, M=1, C=1, H=1, W=1, R=1, S=1, E=1, F=1,
                precision=bits)
    try:
        flow.best_mapping(one, hw, Compression.NONE, Gating.NONE, CompressionLevels.DRAM)
    except MappingError as err:
        why = str(err).partition(f"onto {hw.name!r}")[2]
        why = why.partition(": ")[2] or str(err)
        fields = [field for phrase, field in _FIELDS if phrase in why]
        widths = {bits.weight_bits, bits.ifmap_bits, bits.ofmap_bits}
        width = f"{widths.pop()}-bit" if len(widths) == 1 else \
            f"{bits.weight_bits}/{bits.ifmap_bits}/{bits.ofmap_bits}-bit"
        what = f"{' and '.join(fields)} {'is' if len(fields) == 1 else 'are'} too small" \
            if fields else "it is too small"
        where = f"{source}: " if source is not None and source != hw.name else ""
        raise HardwareFileError(f"{where}hardware {hw.name!r} cannot run the {flow.name} dataflow, "
                                f"not even on one 1x1 MAC of {width} values: {what} "
                                f"({why})") from None

"""The equal-area rule of the ISCA 2016 dataflow comparison (Chen, Emer & Sze, §VI-B).

Every dataflow gets the same number of PEs and the same *storage area*: the baseline
``#PE x Area(512 B RF) + Area(#PE x 512 B GLB)`` (Eq. 2). Each dataflow fixes its RF
per PE; the GLB gets the area left. Area per byte falls with the size of a memory
(the author's ``helpers/get_storage_area_from_size.m`` table, interpolated linearly; a
memory of 4 kB or more costs 12.70 um^2/B), so a dataflow with a small RF gets a much
larger GLB: 2.6x RS's for WS at 256 PEs, as the paper says.

RF per PE, from the author's ``tests/run_all_flows.m`` (16-bit words): RS 512 B, WS 2 B
(one weight), OS-A 98 B (``U*R + U + 1`` words for AlexNet CONV1: R = 11, U = 4), OS-B
10 B (``U + 1``), OS-C 2 B (one psum), NLR none.
"""

from __future__ import annotations

import math

# (size in bytes, area per byte in um^2), ascending size: get_storage_area_from_size.m
_AREA_PER_BYTE = ((2, 103.47), (4, 172.07), (8, 177.07), (16, 169.89), (32, 96.06),
                  (64, 59.15), (128, 39.94), (256, 27.48), (512, 20.87), (1024, 16.14),
                  (2048, 13.89), (4096, 12.70))
# (area in um^2, size in bytes), ascending: get_storage_size_from_area.m
_SIZE_AT_AREA = ((207, 2), (689, 4), (1417, 8), (2718, 16), (3074, 32), (3785, 64),
                 (5112, 128), (7034, 256), (10685, 512), (16523, 1024), (28455, 2048),
                 (52020, 4096))

RF_BYTES = {"row-stationary": 512, "weight-stationary": 2, "output-stationary-a": 98,
            "output-stationary-b": 10, "output-stationary-c": 2, "no-local-reuse": 0}
BASELINE_RF_BYTES = 512


def _interpolate(x: float, table: tuple[tuple[float, float], ...]) -> float:
    for (x0, y0), (x1, y1) in zip(table, table[1:], strict=False):
        if x0 <= x < x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    raise AssertionError(f"{x} outside {table[0][0]}..{table[-1][0]}")


def storage_area(size_bytes: float) -> float:
    """Area (um^2) of a memory of ``size_bytes`` bytes.

    >>> storage_area(512), round(storage_area(131072), 1)
    (10685.44, 1664614.4)
    """
    if size_bytes <= 0:
        return 0.0
    if size_bytes >= 4096:
        per_byte = 12.70
    elif size_bytes < 2:
        per_byte = 103.47
    else:
        per_byte = _interpolate(size_bytes, _AREA_PER_BYTE)
    return per_byte * size_bytes


def storage_size(area: float) -> float:
    """Bytes of memory that fit ``area`` um^2 (the inverse table; 0 below 207 um^2)."""
    if area >= 52020:
        return area / 52020 * 4096
    if area < 207:
        return 0.0
    return _interpolate(area, _SIZE_AT_AREA)


def baseline_area(num_pes: int) -> float:
    """The storage area every dataflow gets with ``num_pes`` PEs (ISCA Eq. 2)."""
    return num_pes * storage_area(BASELINE_RF_BYTES) + storage_area(num_pes
                                                                    * BASELINE_RF_BYTES)


def glb_bytes(num_pes: int, rf_bytes: int, word_bytes: int = 2) -> int:
    """GLB bytes left, in whole words, when each PE has ``rf_bytes`` of RF.

    The baseline RF (512 B) gets the baseline GLB, ``num_pes x 512`` bytes, exactly: the
    author's two tables invert each other only to 0.002 %, which we do not carry.

    >>> glb_bytes(256, 512), glb_bytes(256, 2)
    (131072, 342286)
    """
    if rf_bytes == BASELINE_RF_BYTES:
        return num_pes * BASELINE_RF_BYTES
    size = storage_size(baseline_area(num_pes) - num_pes * storage_area(rf_bytes))
    return math.floor(size / word_bytes) * word_bytes

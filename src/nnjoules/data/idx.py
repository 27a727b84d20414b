"""IDX files (the MNIST format), read with numpy; gzipped or raw.

The format: two zero bytes, a type code (0x08 = unsigned byte), the number of
dimensions, then one big-endian 32-bit size per dimension, then the values.

>>> import io, struct
>>> raw = b"\\x00\\x00\\x08\\x02" + struct.pack(">II", 2, 3) + bytes(range(6))
>>> parse_idx(raw, "example").tolist()
[[0, 1, 2], [3, 4, 5]]
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from nnjoules.errors import InputError

_DTYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
                           0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """The array stored in the IDX file ``path`` (``.gz`` is decompressed).

    Raises:
        InputError: the file is missing, truncated or not an IDX file.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise InputError(f"{path}: not a valid gzip file ({err})") from None
    return parse_idx(data, str(path))


def parse_idx(data: bytes, label: str) -> np.ndarray:
    """Parse the bytes of an IDX file; ``label`` names it in error messages."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise InputError(f"{label}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{label}: truncated IDX header")
    shape = tuple(int(v) for v in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_DTYPES[data[2]])
    count = int(np.prod(shape)) if shape else 1
    if len(data) - header < count * dtype.itemsize:
        raise InputError(f"{label}: truncated IDX data: expected {count} values of shape "
                         f"{shape}")
    values = np.frombuffer(data, dtype, count=count, offset=header)
    return values.reshape(shape).astype(dtype.newbyteorder("="), copy=True)

"""The IDX file format of the MNIST family: a big-endian header, then one raw array.

Header: two zero bytes, a type code, the number of dimensions, then each dimension as a 4-byte
big-endian integer. Files may be gzip-compressed (`.gz`). Any mismatch is a `ValueError` naming
the file, what was expected and what was found: never a silently partial dataset.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from cnnlab.errors import UsageError

IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_bytes(path: str | Path) -> bytes:
    """The file's content, decompressed when it is gzip (detected by its magic bytes)."""
    path = Path(path)
    raw = path.read_bytes()
    return gunzip(raw, str(path)) if raw[:2] == b"\x1f\x8b" else raw


def gunzip(blob: bytes, name: str) -> bytes:
    """Decompress a gzip blob; a truncated or corrupted stream is a ValueError naming `name`."""
    try:
        return gzip.decompress(blob)
    except (EOFError, OSError, zlib.error) as exc:
        raise UsageError(
            f"{name}: corrupted or truncated gzip data ({exc}); delete it and fetch it again"
        ) from None


def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Decode IDX bytes into an array, checking the magic number and the length the header gives."""
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_TYPES:
        raise UsageError(
            f"{name}: not an IDX file: expected magic bytes 00 00 <type> <ndim> with type in "
            f"{sorted(IDX_TYPES)}, found {data[:4].hex(' ') or 'an empty file'}"
        )
    dtype, ndim = IDX_TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise UsageError(
            f"{name}: expected a header of {header} bytes for {ndim} dimensions, "
            f"found {len(data)} bytes in total"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "trailing data"
        raise UsageError(
            f"{name}: the header promises {'x'.join(map(str, shape))} {dtype.name} values "
            f"({expected} bytes), found {len(data)} bytes ({kind})"
        )
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read a (possibly gzipped) IDX file into a native-endian numpy array."""
    return parse_idx(read_bytes(path), str(path))

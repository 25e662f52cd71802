"""Reader for the IDX format of MNIST, Fashion-MNIST and EMNIST (raw or gzip-compressed).

Layout: two zero bytes, a type code (0x08 = uint8), the number of dimensions ``d``, then ``d``
big-endian uint32 sizes, then the data in C order.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from snnbp.data.base import DataIntegrityError
from snnbp.io import atomic_write_bytes

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx_bytes(raw: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode an IDX byte string into an array (native byte order).

    Raises:
        DataIntegrityError: (a ``ValueError``) naming ``source`` when the header or the payload size is wrong.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataIntegrityError(f"{source}: not an IDX file (magic bytes {raw[:4]!r})")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise DataIntegrityError(f"{source}: unknown IDX data type 0x{type_code:02x}")
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DataIntegrityError(
            f"{source}: the IDX header announces {ndim} dimensions but the file ends after "
            f"{len(raw)} bytes (truncated or corrupt)"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw[4:header_end], dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header_end != expected:
        raise DataIntegrityError(
            f"{source}: header says shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - header_end} bytes of data (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header_end).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed when its name ends in ``.gz``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataIntegrityError(f"{path}: damaged gzip file ({exc or type(exc).__name__})") from None
    return read_idx_bytes(raw, str(path))


def write_idx(array: np.ndarray, path: str | Path) -> None:
    """Write ``array`` (uint8) as an IDX file (gzip when the name ends in ``.gz``), atomically; for tests and caches."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes() + array.tobytes()
    atomic_write_bytes(path, gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)

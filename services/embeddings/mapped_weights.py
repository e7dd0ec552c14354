"""A safetensors file's tensors as read-only numpy views of the file, mapped, not read.

`safetensors.numpy.load_file` reads the whole file into fresh arrays: all-MiniLM-L6-v2's 90 MB
would be resident for as long as the process runs, most of it a 47 MB word-embedding table of
which a text touches a few rows. Mapped, the kernel pages in only what the encoder reads, the
pages are clean (dropped and re-read under memory pressure instead of swapped), and every worker
process on the machine shares one copy of them in the page cache.

The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range after the header, then the data (little-endian, C order).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}
# A header larger than this is not a model we ship or expect (safetensors caps it at 100 MB).
_MAX_HEADER_BYTES = 100_000_000


def map_tensors(path: Path | str) -> dict[str, np.ndarray]:
    """Every tensor of the file by name, each a read-only view of one shared file mapping."""
    path = Path(path)
    with path.open("rb") as file:
        (header_len,) = struct.unpack("<Q", file.read(8))
        if header_len > _MAX_HEADER_BYTES:
            raise ValueError(f"{path}: safetensors header of {header_len} bytes")
        header = json.loads(file.read(header_len))
    header.pop("__metadata__", None)
    # A plain ndarray over the mapping (which it keeps open): slices of an np.memmap would be
    # memmaps too, and so would every array computed from them.
    data = np.asarray(np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len))
    tensors = {}
    for name, info in header.items():
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        tensors[name] = data[begin:end].view(dtype).reshape(info["shape"])
    return tensors

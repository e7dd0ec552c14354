"""A safetensors file's tensors as read-only numpy views of the file, mapped, not read.

`safetensors.numpy.load_file` reads the whole file into fresh arrays: all-MiniLM-L6-v2's 90 MB
would be resident for as long as the process runs, most of it a 47 MB word-embedding table of
which a text touches a few rows. Mapped, the kernel pages in only what the encoder reads, the
pages are clean (dropped and re-read under memory pressure instead of swapped), and every worker
process on the machine shares one copy of them in the page cache. A tensor that is only an
input to a computed copy is better read than mapped: its pages then never join the process's.

The format: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
shape and byte range after the header, then the data (little-endian, C order).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Entry:
    dtype: np.dtype
    shape: tuple[int, ...]
    begin: int  # byte offsets from the start of the data
    end: int


class SafetensorsFile:
    """The tensors of one safetensors file, by name: `mapped` or `read`."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        with self.path.open("rb") as file:
            (header_len,) = struct.unpack("<Q", file.read(8))
            if header_len > _MAX_HEADER_BYTES:
                raise ValueError(f"{self.path}: safetensors header of {header_len} bytes")
            header = json.loads(file.read(header_len))
        header.pop("__metadata__", None)
        self._data_offset = 8 + header_len
        self._entries = {name: self._entry(name, info) for name, info in header.items()}
        self._data: np.ndarray | None = None

    def names(self) -> list[str]:
        return list(self._entries)

    def mapped(self, name: str) -> np.ndarray:
        """A read-only view of the tensor in the file's one mapping (nothing is read yet)."""
        if self._data is None:
            # A plain ndarray over the mapping (which it keeps open): slices of an np.memmap
            # would be memmaps too, and so would every array computed from them.
            mapping = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self._data_offset)
            self._data = np.asarray(mapping)
        entry = self._entries[name]
        return self._data[entry.begin : entry.end].view(entry.dtype).reshape(entry.shape)

    def read(self, name: str) -> np.ndarray:
        """A fresh, writable copy of the tensor, read from the file (the mapping is not used)."""
        entry = self._entries[name]
        count = (entry.end - entry.begin) // entry.dtype.itemsize
        data = np.fromfile(
            self.path, dtype=entry.dtype, count=count, offset=self._data_offset + entry.begin
        )
        return data.reshape(entry.shape)

    def _entry(self, name: str, info: dict) -> _Entry:
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{self.path}: tensor {name!r} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        return _Entry(np.dtype(dtype), tuple(info["shape"]), begin, end)

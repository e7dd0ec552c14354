"""The safetensors reader returns what safetensors itself reads: mapped (views of the file,
nothing copied, nothing writable) or read (fresh copies)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from services.embeddings.mapped_weights import SafetensorsFile
from services.embeddings.minilm import default_model_dir


def test_the_bundled_model_maps_and_reads_as_safetensors_reads_it() -> None:
    path = default_model_dir() / "model.safetensors"
    expected, weights = load_file(str(path)), SafetensorsFile(path)
    assert sorted(weights.names()) == sorted(expected)
    for name, array in expected.items():
        mapped, read = weights.mapped(name), weights.read(name)
        for got in (mapped, read):
            assert got.dtype == array.dtype, name
            assert np.array_equal(got, array), name
        assert type(mapped) is np.ndarray, name
        assert not mapped.flags.writeable, name
        assert not mapped.flags.owndata, name
        assert read.flags.writeable, name


def test_dtypes_and_shapes_round_trip(tmp_path: Path) -> None:
    tensors = {
        "f16": np.arange(6, dtype=np.float16).reshape(2, 3),
        "i32": np.array([[-1, 2], [3, -4]], dtype=np.int32),
        "u8": np.array([1, 2, 255], dtype=np.uint8),
        "scalar": np.array(1.5, dtype=np.float64),
    }
    path = tmp_path / "t.safetensors"
    save_file(tensors, str(path))
    weights = SafetensorsFile(path)
    for name, array in tensors.items():
        for got in (weights.mapped(name), weights.read(name)):
            assert got.dtype == array.dtype
            assert got.shape == array.shape
            assert np.array_equal(got, array)


def test_a_dtype_it_cannot_map_is_refused(tmp_path: Path) -> None:
    header = b'{"x": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}'
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0")
    with pytest.raises(ValueError, match="unsupported dtype BF16"):
        SafetensorsFile(path)

"""The mapped safetensors reader returns what safetensors itself reads, without reading it."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from services.embeddings.mapped_weights import map_tensors
from services.embeddings.minilm import default_model_dir


def test_the_bundled_model_maps_to_the_same_tensors_safetensors_reads() -> None:
    path = default_model_dir() / "model.safetensors"
    expected, mapped = load_file(str(path)), map_tensors(path)
    assert mapped.keys() == expected.keys()
    for name, array in mapped.items():
        assert array.dtype == expected[name].dtype, name
        assert np.array_equal(array, expected[name]), name
        # Plain read-only arrays over the file: nothing copied, nothing writable.
        assert type(array) is np.ndarray, name
        assert not array.flags.writeable, name
        assert not array.flags.owndata, name


def test_dtypes_and_shapes_round_trip(tmp_path: Path) -> None:
    tensors = {
        "f16": np.arange(6, dtype=np.float16).reshape(2, 3),
        "i32": np.array([[-1, 2], [3, -4]], dtype=np.int32),
        "u8": np.array([1, 2, 255], dtype=np.uint8),
        "scalar": np.array(1.5, dtype=np.float64),
    }
    path = tmp_path / "t.safetensors"
    save_file(tensors, str(path))
    mapped = map_tensors(path)
    for name, array in tensors.items():
        assert mapped[name].dtype == array.dtype
        assert mapped[name].shape == array.shape
        assert np.array_equal(mapped[name], array)


def test_a_dtype_it_cannot_map_is_refused(tmp_path: Path) -> None:
    header = b'{"x": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}'
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0\0")
    with pytest.raises(ValueError, match="unsupported dtype BF16"):
        map_tensors(path)

"""Reading stored tensors: every storage form gives the exact values, floats widened."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from initaudit.load import load_model
from tests import _models as M


def test_float_data_storage_and_zero_element_tensors(tmp_path: Path) -> None:
    w = M.torch_default((3, 4), 4)
    t = helper.make_tensor("W", TensorProto.FLOAT, [3, 4], w.reshape(-1).tolist())
    empty = helper.make_tensor("E", TensorProto.FLOAT, [0, 4], [])
    m = M.model(
        [helper.make_node("Gemm", ["x", "W"], ["y"], transB=1)],
        [t, empty],
        [M.value_info("x", [1, 4])],
        [M.value_info("y", [1, 3])],
    )
    loaded = load_model(M.save(m, tmp_path / "m.onnx"))
    np.testing.assert_array_equal(loaded.store.read("W"), w)
    assert loaded.store.read("E").shape == (0, 4)


@pytest.mark.parametrize(
    "data_type",
    [TensorProto.FLOAT16, TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN, TensorProto.DOUBLE],
)
def test_float_types_widen_exactly(tmp_path: Path, data_type: int) -> None:
    w = M.torch_default((8, 8), 8)
    m = M.model([], [M.tensor("W", w, data_type)], [], [])
    loaded = load_model(M.save(m, tmp_path / "m.onnx"))
    got = loaded.store.read("W")
    assert got.dtype in (np.float32, np.float64)
    expected = w.astype(helper.tensor_dtype_to_np_dtype(data_type)).astype(got.dtype)
    np.testing.assert_array_equal(got, expected)

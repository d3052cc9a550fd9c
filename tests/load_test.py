"""Loading: every broken or hostile input is one InputError with a stable code."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from initaudit.errors import INPUT_ERROR_CODES, InputError
from initaudit.load import load_model
from tests import _models as M


def _code(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_model(path)
    assert info.value.code in INPUT_ERROR_CODES
    return info.value.code


def _external(
    tmp_path: Path, location: str, offset: int | None = None, length: int | None = None
) -> Path:
    m = M.clean_mlp((4, 3))
    t = m.graph.initializer[0]
    raw = t.raw_data
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location}
    if offset is not None:
        entries["offset"] = str(offset)
    if length is not None:
        entries["length"] = str(length)
    for k, v in entries.items():
        e = t.external_data.add()
        e.key, e.value = k, v
    (tmp_path / "data.bin").write_bytes(raw)
    return M.save(m, tmp_path / "m.onnx")


def test_missing_directory_and_empty(tmp_path: Path) -> None:
    assert _code(tmp_path / "nope.onnx") == "not-found"
    assert _code(tmp_path) == "not-a-file"
    (tmp_path / "e.onnx").write_bytes(b"")
    assert _code(tmp_path / "e.onnx") == "empty"


def test_garbage_text_and_random_bytes(tmp_path: Path) -> None:
    (tmp_path / "t.onnx").write_text("hello, this is not a model\n")
    assert _code(tmp_path / "t.onnx") == "not-onnx"
    (tmp_path / "r.onnx").write_bytes(np.random.default_rng(1).bytes(4096))
    assert _code(tmp_path / "r.onnx") in ("not-onnx", "invalid-model")


def test_truncated_protobuf_is_rejected_at_every_cut(tmp_path: Path) -> None:
    data = M.clean_mlp().SerializeToString()
    p = tmp_path / "cut.onnx"
    for cut in (1, 7, len(data) // 3, len(data) // 2, len(data) - 3):
        p.write_bytes(data[:cut])
        assert _code(p) in ("not-onnx", "invalid-model", "bad-tensor"), cut


def test_other_protobuf_message_is_not_a_model(tmp_path: Path) -> None:
    t = onnx.numpy_helper.from_array(np.ones((3, 3), np.float32), "w")
    (tmp_path / "t.onnx").write_bytes(t.SerializeToString())
    assert _code(tmp_path / "t.onnx") == "not-onnx"


def test_raw_data_shorter_or_longer_than_dims(tmp_path: Path) -> None:
    for delta in (-4, 4):
        m = M.clean_mlp((4, 3))
        t = m.graph.initializer[0]
        t.raw_data = t.raw_data[:delta] if delta < 0 else t.raw_data + b"\0" * delta
        assert _code(M.save(m, tmp_path / f"m{delta}.onnx")) == "bad-tensor"


def test_huge_or_negative_dims_rejected_before_allocation(tmp_path: Path) -> None:
    m = M.clean_mlp((4, 3))
    m.graph.initializer[0].dims[:] = [2**40, 2**20]
    assert _code(M.save(m, tmp_path / "huge.onnx")) == "bad-tensor"
    m.graph.initializer[0].dims[:] = [-3, 4]
    assert _code(M.save(m, tmp_path / "neg.onnx")) == "bad-tensor"


def test_unknown_data_type(tmp_path: Path) -> None:
    m = M.clean_mlp((4, 3))
    m.graph.initializer[0].data_type = 999
    assert _code(M.save(m, tmp_path / "m.onnx")) == "bad-tensor"


def test_no_opset_import_is_invalid(tmp_path: Path) -> None:
    m = M.clean_mlp((4, 3))
    del m.opset_import[:]
    assert _code(M.save(m, tmp_path / "m.onnx")) == "invalid-model"


def test_external_data_resolves_and_reads(tmp_path: Path) -> None:
    p = _external(tmp_path, "data.bin")
    loaded = load_model(p)
    name = loaded.model.graph.initializer[0].name
    assert loaded.store.read(name).shape == (3, 4)
    loaded.close()


def test_external_data_problems(tmp_path: Path) -> None:
    assert _code(_external(tmp_path, "missing.bin")) == "external-data-missing"
    assert _code(_external(tmp_path, "../data.bin")) == "external-data-escapes"
    assert _code(_external(tmp_path, "/etc/passwd")) == "external-data-escapes"
    assert _code(_external(tmp_path, "data.bin", offset=40)) == "external-data-invalid"
    assert _code(_external(tmp_path, "data.bin", length=8)) == "bad-tensor"
    assert _code(_external(tmp_path, "")) == "external-data-invalid"


def test_external_data_symlink_escaping_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"\0" * 48)
    inner = tmp_path / "model"
    inner.mkdir()
    os.symlink(outside / "secret.bin", inner / "link.bin")
    assert _code(_external(inner, "link.bin")) == "external-data-escapes"


def test_external_data_to_device_is_not_read(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "zero.bin")
    # Resolves outside the folder first; a device inside the folder is rejected too.
    assert _code(_external(tmp_path, "zero.bin")) in (
        "external-data-escapes",
        "external-data-invalid",
    )


def test_fifo_and_device_model_paths(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    assert _code(fifo) == "not-a-file"
    assert _code(Path("/dev/zero")) == "not-a-file"


def _peak_bytes_while_rejected(path: Path) -> tuple[str, int]:
    tracemalloc.start()
    try:
        code = _code(path)
        return code, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_guard_rejects_huge_claims_before_allocating(tmp_path: Path) -> None:
    """4 PiB of float claimed by raw_data, float_data or an external length; 48 bytes exist."""
    huge = [2**40, 2**20]
    m = M.clean_mlp((4, 3))
    m.graph.initializer[0].dims[:] = huge
    raw = M.save(m, tmp_path / "raw.onnx")
    m.graph.initializer[0].ClearField("raw_data")
    m.graph.initializer[0].float_data.extend([0.5] * 12)
    typed = M.save(m, tmp_path / "typed" / "m.onnx")
    (tmp_path / "ext").mkdir()
    ext = _external(tmp_path / "ext", "data.bin", length=4 * 2**60)
    m = onnx.load(ext, load_external_data=False)
    m.graph.initializer[0].dims[:] = huge
    M.save(m, ext)
    for path, expected in (
        (raw, "bad-tensor"),
        (typed, "bad-tensor"),
        (ext, "external-data-invalid"),
    ):
        code, peak = _peak_bytes_while_rejected(path)
        assert (code, peak < 16 * 2**20) == (expected, True), (path, peak)


def test_empty_tensor_with_unaddressable_dims_or_rank_is_too_large(tmp_path: Path) -> None:
    m = M.clean_mlp((4, 3))
    m.graph.initializer.append(helper.make_tensor("E", TensorProto.FLOAT, [0, 2**62], []))
    assert _code(M.save(m, tmp_path / "empty.onnx")) == "too-large"
    m = M.clean_mlp((4, 3))
    m.graph.initializer[0].dims.extend([1] * 40)
    assert _code(M.save(m, tmp_path / "rank.onnx")) == "too-large"


def test_names_that_are_not_utf8_are_not_onnx(tmp_path: Path) -> None:
    """proto2 does not check UTF-8: protobuf would hand back bytes for such a name."""
    data = M.clean_mlp((4, 3)).SerializeToString().replace(b"fc1.weight", b"fc1.\xff\xfeight")
    (tmp_path / "m.onnx").write_bytes(data)
    assert _code(tmp_path / "m.onnx") == "not-onnx"


def test_external_data_fifo_in_the_folder_is_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.bin")
    assert _code(_external(tmp_path, "pipe.bin")) == "external-data-invalid"

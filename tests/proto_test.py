"""initaudit's ONNX message classes are onnx's schema: same fields, same parse, same bytes."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from onnx import onnx_ml_pb2

from initaudit import proto
from initaudit.proto import _descriptor, make_descriptor

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MODELS = sorted(p for p in FIXTURES.rglob("*.onnx") if "broken" not in p.parts)


def _repeated(fd: FieldDescriptor) -> bool:
    return fd.is_repeated if hasattr(fd, "is_repeated") else fd.label == fd.LABEL_REPEATED


def _fields(d: Descriptor) -> dict[int, tuple[str, int, bool, str]]:
    sub = lambda fd: (fd.message_type or fd.enum_type).full_name if fd.type in (11, 14) else ""  # noqa: E731
    return {fd.number: (fd.name, fd.type, _repeated(fd), sub(fd)) for fd in d.fields}


def _messages(d: Descriptor) -> dict[str, Descriptor]:
    out = {d.full_name: d}
    for nested in d.nested_types:
        out.update(_messages(nested))
    return out


def _enums(d: Descriptor) -> dict[str, EnumDescriptor]:
    return {e.full_name: e for m in _messages(d).values() for e in m.enum_types}


def _all(file: object) -> dict[str, Descriptor]:
    tops = file.message_types_by_name.values()  # type: ignore[attr-defined]
    return {k: v for top in tops for k, v in _messages(top).items()}


def test_descriptor_is_the_installed_onnx_schema() -> None:
    """Every message, field and enum value both know agree; the committed schema lacks none
    of the installed onnx's (else: ``python -m initaudit.proto.make_descriptor``)."""
    ours, theirs = _all(proto.ModelProto.DESCRIPTOR.file), _all(onnx_ml_pb2.DESCRIPTOR)
    assert set(theirs) <= set(ours), "regenerate: onnx has messages the descriptor lacks"
    for name, d in theirs.items():
        assert _fields(d).items() <= _fields(ours[name]).items(), name
        for e_name, e in _enums(d).items():
            mine = {v.name: v.number for v in _enums(ours[name])[e_name].values}
            assert {v.name: v.number for v in e.values}.items() <= mine.items(), e_name


def test_descriptor_bytes_are_what_the_script_writes() -> None:
    if onnx.__version__ != _descriptor.ONNX_VERSION:
        pytest.skip(f"descriptor made from onnx {_descriptor.ONNX_VERSION}, not {onnx.__version__}")
    assert onnx_ml_pb2.DESCRIPTOR.serialized_pb == _descriptor.FILE_DESCRIPTOR
    assert make_descriptor.render() == make_descriptor.TARGET.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_fixtures_parse_and_serialize_as_onnx_does(path: Path) -> None:
    data = path.read_bytes()
    ours, theirs = proto.ModelProto(), onnx.ModelProto()
    ours.ParseFromString(data)
    theirs.ParseFromString(data)
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
        deterministic=True
    )
    assert len(ours.graph.node) == len(theirs.graph.node)


def test_enum_constants_are_onnx_constants() -> None:
    for value in onnx.TensorProto.DataType.values():
        name = onnx.TensorProto.DataType.Name(value)
        assert getattr(proto.TensorProto, name) == value
    for name in ("FLOAT", "INT", "STRING", "TENSOR", "GRAPH", "FLOATS", "INTS", "STRINGS"):
        assert getattr(proto.AttributeProto, name) == getattr(onnx.AttributeProto, name)
    assert proto.TensorProto.EXTERNAL == onnx.TensorProto.EXTERNAL


def test_messages_of_either_pool_are_recognized() -> None:
    assert proto.is_model(onnx.ModelProto())
    assert proto.is_model(proto.ModelProto())
    assert not proto.is_model(onnx.TensorProto())
    assert not proto.is_model(b"\x08\x07")

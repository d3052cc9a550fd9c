"""ONNX's protobuf messages, built from onnx's own schema without importing the onnx package.

``import onnx`` costs about a second (most of it ml_dtypes, which onnx imports eagerly), ten
times ``import numpy``, and a pre-commit hook pays it on every commit. Reading a model needs
only the message classes, and protobuf builds those from a serialized FileDescriptorProto:
``_descriptor.py`` holds the one onnx's generated ``onnx_ml_pb2`` module registers (written by
``make_descriptor.py``), so these classes parse every byte exactly as onnx's do, with the same
parser (protobuf's upb backend by default).

The classes live in a private descriptor pool: a process that also imports onnx (a caller of
the Python API, ``--propagate``) has two sets of classes, which never clash. Messages do not
cross between them by ``CopyFrom``; serialize and parse instead (the public API does).

For type checkers these names are onnx's own classes, whose stubs describe the same schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeGuard

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message

from initaudit.proto._descriptor import FILE_DESCRIPTOR, ONNX_VERSION

__all__ = [
    "ONNX_VERSION",
    "AttributeProto",
    "FunctionProto",
    "GraphProto",
    "ModelProto",
    "NodeProto",
    "SparseTensorProto",
    "TensorProto",
    "ValueInfoProto",
    "is_model",
]

_POOL = descriptor_pool.DescriptorPool()
_POOL.AddSerializedFile(FILE_DESCRIPTOR)


def _message_class(name: str) -> type[Message]:
    """The class of ``onnx.<name>`` in the private pool.

    ``GetMessageClass`` is protobuf 4.22's spelling; 4.21 only has the factory method, which
    protobuf 5 removed.
    """
    descriptor = _POOL.FindMessageTypeByName(f"onnx.{name}")
    get_class = getattr(message_factory, "GetMessageClass", None)
    if get_class is None:  # protobuf 4.21
        get_class = getattr(message_factory.MessageFactory(_POOL), "GetPrototype")  # noqa: B009
    cls: type[Message] = get_class(descriptor)
    return cls


if TYPE_CHECKING:
    from onnx import (
        AttributeProto,
        FunctionProto,
        GraphProto,
        ModelProto,
        NodeProto,
        SparseTensorProto,
        TensorProto,
        ValueInfoProto,
    )
else:
    AttributeProto = _message_class("AttributeProto")
    FunctionProto = _message_class("FunctionProto")
    GraphProto = _message_class("GraphProto")
    ModelProto = _message_class("ModelProto")
    NodeProto = _message_class("NodeProto")
    SparseTensorProto = _message_class("SparseTensorProto")
    TensorProto = _message_class("TensorProto")
    ValueInfoProto = _message_class("ValueInfoProto")


def is_model(obj: object) -> TypeGuard[ModelProto]:
    """Whether ``obj`` is an ONNX ModelProto of any pool: initaudit's class, or onnx's own (a
    caller's ``onnx.ModelProto``), told apart without importing onnx."""
    return isinstance(obj, Message) and obj.DESCRIPTOR.full_name == "onnx.ModelProto"

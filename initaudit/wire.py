"""An .onnx file's bytes become an ONNX ``ModelProto``, or an :class:`InputError`.

Small files are read and parsed whole. Big ones (past :data:`PIECE_BYTES`) are parsed from a
memory map a slice at a time by walking protobuf's wire format, and the main graph's
initializers are parsed without their ``raw_data``: its bytes stay in the map, read in place
by the store (see :func:`parse_in_pieces`), so the tensors are never held as parsed copies.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError

from initaudit import proto
from initaudit.errors import InputError
from initaudit.store import open_regular

# Protobuf cannot hold more than 2 GiB; a bigger .onnx file is not a ModelProto.
MAX_MODEL_BYTES = 2**31
# Graph slices parsed at a time from a memory map (files bigger than this are parsed so).
PIECE_BYTES = 64 << 20


# ModelProto.graph; GraphProto.initializer; TensorProto.raw_data (onnx.proto field numbers).
_MODEL_GRAPH, _GRAPH_INITIALIZER, _TENSOR_RAW_DATA = 7, 5, 9


@dataclass(frozen=True, kw_only=True)
class RawSpan:
    """An initializer's ``raw_data``, left unparsed: bytes [offset, offset + length) of the
    model file ``path``, read through ``Parsed.mapped``."""

    path: Path
    offset: int
    length: int


@dataclass(frozen=True, kw_only=True)
class Parsed:
    """A parsed model file. ``spans`` maps the index of a main-graph initializer whose
    ``raw_data`` was left in the file to where it lies in ``mapped``, a read-only memory map
    of the file (None when nothing was left there); whoever keeps it closes it."""

    model: proto.ModelProto
    mapped: mmap.mmap | None = None
    spans: dict[int, RawSpan] = field(default_factory=dict)


def parse_model_file(p: Path) -> Parsed:
    """The file's ModelProto, parsed in pieces when it is big, whole otherwise."""
    parsed = parse_in_pieces(p)
    return parsed if parsed is not None else Parsed(model=_parse(_read_model_bytes(p)))


def _read_model_bytes(p: Path) -> bytes:
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InputError("not-found", "no such file") from None
    except OSError as exc:
        raise InputError("unreadable", f"cannot stat: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("not-a-file", "is a directory, not an ONNX file")
    if not stat.S_ISREG(st.st_mode):
        raise InputError("not-a-file", "is not a regular file (device, FIFO or socket)")
    if st.st_size == 0:
        raise InputError("empty", "file is empty")
    if st.st_size > MAX_MODEL_BYTES:
        raise InputError(
            "too-large", f"file is {st.st_size} bytes; an ONNX protobuf cannot exceed 2 GiB"
        )
    try:
        with open_regular(p) as fh:
            # Sized by stat, not by the limit: read(n) allocates n bytes up front.
            return fh.read(st.st_size + 1)
    except OSError as exc:
        raise InputError("unreadable", f"cannot read: {exc.strerror or exc}") from None


def _parse(data: bytes) -> proto.ModelProto:
    model = proto.ModelProto()
    try:
        model.ParseFromString(data)
    except RecursionError:
        raise InputError("invalid-model", "messages nested too deeply to parse") from None
    except (DecodeError, ValueError) as exc:
        # upb stops at 100 nested messages (~32 levels of If/Loop bodies) on purpose.
        if "MaxDepth" in str(exc) or "recursion" in str(exc).lower():
            raise InputError(
                "invalid-model", "messages (subgraphs) nested deeper than protobuf's limit"
            ) from None
        raise InputError(
            "not-onnx", "not an ONNX model (the protobuf does not parse: corrupt or truncated)"
        ) from None
    return model


def parse_in_pieces(p: Path) -> Parsed | None:
    """Parse a big model file from a memory map, a slice of the graph at a time.

    Parsing whole bytes holds the file twice (the bytes, and the parsed tensors' copies).
    Protobuf parses concatenated messages as one merged message, so feeding the top-level
    fields, and the graph's fields in slices of about :data:`PIECE_BYTES`, builds the same
    ModelProto; each slice's pages are given back once parsed. Each main-graph initializer
    is parsed from its fields but ``raw_data`` (the last one, as protobuf keeps the last of a
    repeated scalar), whose place is kept in ``spans``: the values are read in place from the
    map when measured, never copied into the message (measured on the 0.5 GB inline
    benchmark model: peak RSS 691 MiB before, the parsed tensors plus a copy of one).
    Small files, and anything the wire-format walk does not understand, return None: the
    plain path then parses (and reports errors) exactly as before.
    """
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode) or not PIECE_BYTES < st.st_size <= MAX_MODEL_BYTES:
            return None
        with open_regular(p) as fh:
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, InputError, ValueError):
        return None
    model = proto.ModelProto()
    spans: dict[int, RawSpan] = {}
    try:
        with memoryview(mapped) as view:
            for number, wire, start, value, end in _wire_fields(mapped, 0, len(mapped)):
                if number != _MODEL_GRAPH or wire != 2:
                    model.MergeFromString(view[start:end])  # type: ignore[arg-type]  # a buffer is fine
                    continue
                graph = model.graph
                graph.MergeFromString(b"")  # present even if empty, as a parse makes it
                piece = value
                for sub, sub_wire, sub_start, sub_value, sub_end in _wire_fields(
                    mapped, value, end
                ):
                    if sub == _GRAPH_INITIALIZER and sub_wire == 2:
                        _merge_piece(graph, mapped, view, piece, sub_start)
                        span = _initializer_without_raw(graph, mapped, view, sub_value, sub_end, p)
                        if span is not None:
                            spans[len(graph.initializer) - 1] = span
                        piece = sub_end
                    elif sub_end - piece >= PIECE_BYTES:
                        _merge_piece(graph, mapped, view, piece, sub_end)
                        piece = sub_end
                _merge_piece(graph, mapped, view, piece, end)
    except (DecodeError, ValueError, RecursionError):  # malformed: the plain path decides
        mapped.close()
        return None
    except BaseException:
        mapped.close()
        raise
    if not spans:
        mapped.close()
        return Parsed(model=model)
    return Parsed(model=model, mapped=mapped, spans=spans)


def _merge_piece(
    graph: proto.GraphProto, mapped: mmap.mmap, view: memoryview, start: int, end: int
) -> None:
    """Merge graph fields buf[start:end] into ``graph`` and give their pages back."""
    if end > start:
        graph.MergeFromString(view[start:end])  # type: ignore[arg-type]  # a buffer is fine
        _give_back(mapped, start, end)


def _initializer_without_raw(
    graph: proto.GraphProto, mapped: mmap.mmap, view: memoryview, start: int, end: int, p: Path
) -> RawSpan | None:
    """Append the TensorProto buf[start:end] to the graph's initializers without its
    ``raw_data``; where that lies in the file, if it has one."""
    kept: list[bytes] = []  # name, dims, type...: a few bytes (copied, so no view outlives this)
    raw = None
    for number, wire, field_start, value, field_end in _wire_fields(mapped, start, end):
        if number == _TENSOR_RAW_DATA and wire == 2:
            raw = RawSpan(path=p, offset=value, length=field_end - value)
        else:
            kept.append(bytes(view[field_start:field_end]))
    graph.initializer.add().MergeFromString(b"".join(kept))
    return raw


def _wire_fields(buf: mmap.mmap, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, field start, value start, field end) of buf[start:end]."""
    pos = start
    while pos < end:
        first = pos
        tag, pos = _varint(buf, pos, end)
        wire, value = tag & 7, pos
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, value = _varint(buf, pos, end)
            pos = value + length
        else:  # groups (3, 4) are not used by onnx.proto
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("field runs past its message")
        yield tag >> 3, wire, first, value, pos


def _varint(buf: mmap.mmap, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while pos < end and shift < 64:
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return result, pos
        shift += 7
    raise ValueError("bad varint")


def _give_back(mapped: mmap.mmap, start: int, end: int) -> None:
    lo = start // mmap.PAGESIZE * mmap.PAGESIZE
    if hasattr(mmap, "MADV_DONTNEED") and end > lo:
        mapped.madvise(mmap.MADV_DONTNEED, lo, end - lo)

"""Each stored tensor's claim (dims, data type, where its bytes are) checked against the bytes
that back it, before anything is allocated: a :class:`StoredTensor`, or an :class:`InputError`.

External data is resolved here too, once per file: a location must be relative, resolve
(also through symlinks) inside the model's folder, and name a regular file long enough.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

from initaudit import dtypes, proto
from initaudit.errors import InputError
from initaudit.store import PACKED_BITS, StoredTensor, dtype_name, np_dtype, short, tensor_label
from initaudit.wire import RawSpan

# Deeper than this a tensor is hostile: numpy arrays have at most 64 axes (32 before
# numpy 2); ONNX weights have at most 5.
MAX_RANK = 32
# A shape whose element count (ignoring zero axes) times item size exceeds this cannot be
# addressed even when it holds no elements: numpy refuses to create it.
_MAX_ADDRESSABLE = 2**62

# Numeric types that are neither string nor complex: the ones initaudit can reason about.
_UNSUPPORTED = {
    proto.TensorProto.UNDEFINED,
    proto.TensorProto.STRING,
    proto.TensorProto.COMPLEX64,
    proto.TensorProto.COMPLEX128,
}
_KNOWN_TYPES = frozenset(proto.TensorProto.DataType.values())


def validate_tensor(
    t: proto.TensorProto,
    origin: str,
    graph: str,
    files: DataFiles,
    raw: RawSpan | None = None,
) -> StoredTensor:
    """The tensor as stored, once its dims, type and bytes agree; InputError otherwise.

    ``raw``: where the tensor's ``raw_data`` lies in the model file, left unparsed (wire.py).
    """
    name = t.name
    label = tensor_label(name)
    dt = t.data_type
    if dt in _UNSUPPORTED or dt not in _KNOWN_TYPES:
        raise InputError("bad-tensor", f"tensor {label} has unsupported data type {dt}")
    if len(t.dims) > MAX_RANK:
        raise InputError(
            "too-large", f"tensor {label} has {len(t.dims)} dimensions; at most {MAX_RANK} are read"
        )
    if any(d < 0 for d in t.dims):
        raise InputError("bad-tensor", f"tensor {label} has a negative dimension {list(t.dims)}")
    dims = tuple(int(d) for d in t.dims)
    numel = math.prod(dims)
    if numel == 0 and math.prod(d for d in dims if d) * np_dtype(dt).itemsize > _MAX_ADDRESSABLE:
        # A non-empty claim must be backed by bytes (checked below); an empty one costs no
        # bytes, but numpy cannot represent even an empty array of such a shape.
        raise InputError(
            "too-large", f"tensor {label} dims {list(dims)} exceed any addressable size"
        )
    nbytes = _storage_bytes(dt, numel)
    mapped: Path | None = None  # the file the bytes are read from in place, and where
    offset = 0
    external = t.data_location == proto.TensorProto.EXTERNAL
    if external:
        mapped, offset, nbytes = _resolve_external(t, label, files, nbytes)
    elif t.external_data:
        raise InputError(
            "external-data-invalid",
            f"tensor {label} has external_data entries but data_location is not EXTERNAL",
        )
    elif raw is not None or t.HasField("raw_data"):
        have = raw.length if raw is not None else len(t.raw_data)
        if have != nbytes:
            raise InputError(
                "bad-tensor",
                f"tensor {label} dims {list(dims)} need {nbytes} bytes of {dtype_name(dt)} "
                f"but raw_data holds {have}",
            )
        if raw is not None:
            mapped, offset = raw.path, raw.offset
    else:
        fld = dtypes.STORAGE[dt].field
        have = len(getattr(t, fld))
        want = _typed_field_count(dt, numel)
        if have != want:
            raise InputError(
                "bad-tensor",
                f"tensor {label} dims {list(dims)} need {want} values in {fld} but it holds {have}",
            )
    return StoredTensor(
        name=name,
        data_type=dt,
        dims=dims,
        origin=origin,
        graph=graph,
        proto=t,
        mapped_path=mapped,
        mapped_offset=offset,
        nbytes=nbytes,
        external=external,
    )


def _storage_bytes(dt: int, numel: int) -> int:
    if dt in PACKED_BITS:
        return (numel * PACKED_BITS[dt] + 7) // 8
    return numel * np_dtype(dt).itemsize


def _typed_field_count(dt: int, numel: int) -> int:
    if dt in PACKED_BITS:
        per_int = {4: 2, 2: 4}.get(PACKED_BITS[dt], 1)
        return (numel + per_int - 1) // per_int
    return numel


def _resolve_external(
    t: proto.TensorProto, label: str, files: DataFiles, nbytes: int
) -> tuple[Path, int, int]:
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if not location:
        raise InputError(
            "external-data-invalid", f"tensor {label} is marked external but has no location"
        )
    try:
        offset = int(info.get("offset", "0") or 0)
        length = int(info["length"]) if info.get("length") else None
    except ValueError:
        raise InputError(
            "external-data-invalid", f"tensor {label} has a non-numeric external offset/length"
        ) from None
    if offset < 0 or (length is not None and length < 0):
        raise InputError("external-data-invalid", f"tensor {label} has a negative offset/length")
    real, size = files.resolve(location, label)
    if length is None:
        length = nbytes
    if length != nbytes:
        raise InputError(
            "bad-tensor",
            f"tensor {label} needs {nbytes} bytes but its external length is {length}",
        )
    if offset + length > size:
        raise InputError(
            "external-data-invalid",
            f"tensor {label} external data {short(location)} [{offset}, {offset + length}) "
            f"runs past the end of the file ({size} bytes)",
        )
    return real, offset, length


class DataFiles:
    """External data files of one model, each resolved and checked once: exporters point
    hundreds of tensors at one file, and realpath + stat per tensor cost more than parsing."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.real_base = os.path.realpath(base)
        self.resolved: dict[str, tuple[Path, int]] = {}

    def resolve(self, location: str, label: str) -> tuple[Path, int]:
        """The file's real path and size; InputError names ``label``, the first tensor whose
        location fails (escaping the model's folder, missing, not a regular file)."""
        if location not in self.resolved:
            self.resolved[location] = self._check(location, label)
        return self.resolved[location]

    def _check(self, location: str, label: str) -> tuple[Path, int]:
        if "\x00" in location or os.path.isabs(location) or location.startswith(("/", "\\")):
            raise InputError(
                "external-data-escapes",
                f"tensor {label} external data location {short(location)} is absolute; "
                "it must be relative to the model's folder",
            )
        real = os.path.realpath(self.base / location)
        if os.path.commonpath([self.real_base, real]) != self.real_base:
            raise InputError(
                "external-data-escapes",
                f"tensor {label} external data {short(location)} resolves outside the "
                "model's folder",
            )
        try:
            st = os.stat(real)
        except FileNotFoundError:
            raise InputError(
                "external-data-missing",
                f"tensor {label} external data file {short(location)} is missing",
            ) from None
        except OSError as exc:
            raise InputError(
                "external-data-missing",
                f"tensor {label} external data file {short(location)} cannot be read: "
                f"{exc.strerror}",
            ) from None
        if not stat.S_ISREG(st.st_mode):
            raise InputError(
                "external-data-invalid",
                f"tensor {label} external data {short(location)} is not a regular file",
            )
        return Path(real), st.st_size

"""What a file that is not an ONNX model is, when it is something people commit by mistake.

Only asked after the protobuf failed to parse (so a model costs nothing): the first bytes of
a Git LFS pointer or of a text file say so, and the message says what to do.
"""

from __future__ import annotations

from pathlib import Path

from initaudit.errors import InputError
from initaudit.store import open_regular

HEAD = 1024
LFS_SPEC = b"version https://git-lfs.github.com/spec/"


def describe_non_model(path: Path) -> str | None:
    """A message for a Git LFS pointer or a text file; None for anything else."""
    try:
        with open_regular(path) as fh:
            head = fh.read(HEAD)
    except (OSError, InputError):  # unreadable now: keep the parser's own message
        return None
    if head.startswith(LFS_SPEC):
        size = next(
            (
                ln.split()[1]
                for ln in head.decode("ascii", "replace").splitlines()
                if ln.startswith("size ") and len(ln.split()) == 2
            ),
            None,
        )
        of = f" of a {size}-byte file" if size and size.isdigit() else ""
        return (
            f"a Git LFS pointer{of}, not the model: run `git lfs pull` (in CI, check out "
            "with `lfs: true`)"
        )
    if _is_text(head):
        first = head.decode("utf-8", "replace").strip().splitlines()[0][:60] if head.strip() else ""
        return f"a text file, not an ONNX model (it starts with {first!r})"
    return None


def _is_text(head: bytes) -> bool:
    """UTF-8 with only printable characters and whitespace: no protobuf looks like that (an
    ONNX model starts with field 1, the byte 0x08)."""
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the head is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(c.isprintable() or c in "\t\n\r\f\v" for c in text)

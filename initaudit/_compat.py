"""What the oldest supported Python (3.10) lacks: ``enum.StrEnum`` (3.11)."""

from __future__ import annotations

import enum
import sys

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:

    class StrEnum(str, enum.Enum):
        """Members are their values: they compare, hash, format and serialize as strings,
        so JSON and text reports are the same as with plain strings."""

        def __str__(self) -> str:
            return str(self.value)


__all__ = ["StrEnum"]

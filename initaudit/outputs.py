"""Where reports go: files are made writable before the audit, stdout gets colour when wanted.

``-o/--output``, ``--html`` and ``--write-baseline`` behave alike, as ruff's ``--output-file``
does: a missing folder is created, and a path that cannot be written is a usage error (exit 2)
*before* anything is audited, never an internal error after a long run.
"""

from __future__ import annotations

import os
import sys

from initaudit.errors import ConfigError

COLOR = ("auto", "always", "never")


def prepare(path: str, option: str) -> None:
    """Create ``path``'s folder and check it can be written; ConfigError if not."""
    if os.path.isdir(path):
        raise ConfigError(f"{option} {path}: is a directory, not a file")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{option} {path}: cannot create the folder {folder}: {exc.strerror or exc}"
        ) from None
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise ConfigError(f"{option} {path}: not writable")


def write(path: str, text: str, option: str) -> None:
    """Write a report file; a failure now (disk full, folder removed) is still exit 2."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {option} {path}: {exc.strerror or exc}") from None


def use_colour(choice: str, to_file: bool) -> bool:
    """``--color``: ``always``/``never`` decide; ``auto`` is off in a file and when NO_COLOR is
    set, on when FORCE_COLOR is set, else on a terminal only (no-color.org, force-color.org;
    NO_COLOR wins over FORCE_COLOR, the user's opt-out first)."""
    if to_file or choice == "never":
        return False
    if choice == "always":
        return True
    if os.environ.get("NO_COLOR", "") != "":
        return False
    if os.environ.get("FORCE_COLOR", "") != "":
        return True
    return sys.stdout.isatty()

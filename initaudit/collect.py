"""The model files a run audits, from the paths the user typed (README "Usage").

* A directory is searched recursively for ``*.onnx`` files, in sorted order, without
  following symlinked directories and skipping the folders ruff skips by default (hidden
  ones such as ``.git`` and ``.venv``, ``node_modules``, ``site-packages``, ``venv``, ``build``,
  ``dist``...). No path at all means the current directory, as in ruff.
* ``exclude`` globs of each file's own configuration apply to files found in a directory and
  to files named on the command line (pre-commit names every staged file).
* A file given twice (``a.onnx ./a.onnx``) is audited once.
* External-data sidecars named on the command line (``models/*`` expands to
  ``model.onnx.data``) are skipped: ``*.onnx.data``/``*.onnx_data``, and a ``*.data`` file
  beside an ``.onnx``. (A data file of another name is skipped after the audit, once the model
  that reads it is known: run.py.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from initaudit.config import Config

SUFFIX = ".onnx"
SIDECAR_SUFFIXES = (".onnx.data", ".onnx_data")
# Folders never searched (as ruff's default `exclude`), unless named on the command line.
SKIPPED_DIRS = frozenset(
    {
        "__pypackages__",
        "_build",
        "buck-out",
        "build",
        "dist",
        "node_modules",
        "site-packages",
        "venv",
        "__pycache__",
    }
)


@dataclass(frozen=True, kw_only=True)
class Collected:
    paths: tuple[str, ...]  # model files, in the order given (a directory's sorted)
    excluded: int = 0  # files left out by `exclude`
    sidecars: tuple[str, ...] = ()  # external-data files named on the command line
    empty: tuple[str, ...] = field(default=())  # directories with no .onnx file to audit


def is_sidecar(path: str) -> bool:
    """An external-data file by its name: ``*.onnx.data``, or ``*.data`` beside an .onnx."""
    name = os.path.basename(path)
    if name.endswith(SIDECAR_SUFFIXES):
        return True
    if not name.endswith(".data") or not os.path.isfile(path):
        return False
    folder = os.path.dirname(path) or os.curdir
    try:
        return any(n.endswith(SUFFIX) for n in os.listdir(folder))
    except OSError:
        return False


def _shown(given: str, *parts: str) -> str:
    """``models/a.onnx`` for ``models/`` + ``a.onnx``; ``a.onnx`` (not ``./a.onnx``) for ``.``."""
    return os.path.normpath(os.path.join(given, *parts))


def _walk(given: str, config_of: Callable[[str], Config]) -> Iterator[tuple[str, bool]]:
    """(path, excluded) of every ``*.onnx`` under the directory ``given``."""
    for folder, dirs, files in os.walk(given):
        kept = []
        for d in sorted(dirs):
            sub = os.path.join(folder, d)
            if d.startswith(".") or d in SKIPPED_DIRS or os.path.islink(sub):
                continue
            if config_of(sub).excludes(sub):
                continue
            kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            if name.endswith(SUFFIX):
                path = _shown(folder, name)
                yield path, config_of(path).excludes(path)


def collect(given: Sequence[str], config_of: Callable[[str], Config]) -> Collected:
    """The files to audit; ``config_of(path)`` is the settings of a path (settings.py)."""
    paths: list[str] = []
    seen: set[str] = set()
    excluded = 0
    sidecars: list[str] = []
    empty: list[str] = []
    for raw in given:
        if os.path.isdir(raw):
            if os.path.normpath(raw) != os.curdir and config_of(raw).excludes(raw):
                excluded += 1
                continue
            found = list(_walk(raw, config_of))
            excluded += sum(1 for _, ex in found if ex)
            files = [p for p, ex in found if not ex]
            if not found:
                empty.append(raw)
        elif is_sidecar(raw):
            sidecars.append(raw)
            continue
        elif config_of(raw).excludes(raw):
            excluded += 1
            continue
        else:
            files = [raw]
        for p in files:
            key = os.path.realpath(p)
            if key not in seen:
                seen.add(key)
                paths.append(p)
    return Collected(
        paths=tuple(paths), excluded=excluded, sidecars=tuple(sidecars), empty=tuple(empty)
    )

"""Finding and validating ``[tool.initaudit]``: pyproject.toml discovery, initaudit.toml, errors.

Kept apart from :mod:`initaudit.config` because it reads files. The rule codes it validates
against are passed in (``codes``), so this module knows no rule: the rules import
:class:`Config`, and the caller that knows both (``initaudit.load_config``, the command line)
joins them.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Mapping, Set
from pathlib import Path
from typing import Any

from initaudit.config import DEFAULT, FAIL_ON, THRESHOLDS, Config, Override, parse_scheme
from initaudit.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the one backport: tomllib is stdlib from 3.11, and tomli is the same code
    import tomli as tomllib

Warn = Callable[[str], None]
ALL = "ALL"  # every rule, as in ruff's --select ALL
_TOP_KEYS = (
    "select",
    "ignore",
    "extend-select",
    "fail-on",
    "thresholds",
    "exclude",
    "baseline",
    "overrides",
    "factories",
)
_OVERRIDE_KEYS = ("tensors", "nodes", "ignore", "allow-zeros", "scheme")


def _python_warning(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)


def find_config(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.initaudit]`` table, walking up from
    ``start`` (default: the current directory). A pyproject.toml without the table is passed
    over, so a package inside a monorepo still finds the repo's settings."""
    found = _discover(start)
    return None if found is None else found[0]


def config_in(folder: Path) -> Path | None:
    """``folder/pyproject.toml`` when it exists and has a ``[tool.initaudit]`` table."""
    candidate = folder / "pyproject.toml"
    if candidate.is_file() and _tool_table(_read_toml(candidate)) is not None:
        return candidate
    return None


def _discover(start: str | os.PathLike[str] | None) -> tuple[Path, Mapping[str, Any]] | None:
    here = Path(os.path.abspath(start or os.curdir))
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            table = _tool_table(_read_toml(candidate))
            if table is not None:
                return candidate, table
    return None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    codes: Set[str],
    start: str | os.PathLike[str] | None = None,
    warn: Warn | None = None,
) -> Config:
    """Read ``path``, or else the discovered pyproject.toml; the defaults if there is none.

    ``path`` named ``pyproject.toml`` must have a ``[tool.initaudit]`` table; any other file
    (``initaudit.toml``) holds the same keys at top level, like ``ruff.toml``. Files are never
    merged: the closest one wins. Bad values raise :class:`ConfigError`; an unknown key only
    calls ``warn`` (default: a Python ``UserWarning``), so older initaudit versions can read
    newer configs. ``codes`` are the known rule codes that ``select``/``ignore`` entries must
    prefix.
    """
    if path is not None:
        p = Path(path)
        doc = _read_toml(p)
        if p.name == "pyproject.toml":
            table = _tool_table(doc)
            if table is None:
                raise ConfigError(f"{p}: no [tool.initaudit] table")
            section = "tool.initaudit"
        elif (nested := _tool_table(doc)) is not None:
            # A [tool.initaudit] table copied from a pyproject.toml: the same settings.
            others = [k for k in doc if k != "tool"]
            if others:
                raise ConfigError(
                    f"{_shown(p)}: settings both at top level ({', '.join(others)}) and in "
                    "[tool.initaudit]; keep one (in a file other than pyproject.toml the keys "
                    "need no [tool.initaudit] prefix)"
                )
            table, section = nested, "tool.initaudit"
        else:
            table, section = doc, ""
    else:
        found = _discover(start)
        if found is None:
            return DEFAULT
        (p, table), section = found, "tool.initaudit"
    return parse_config(
        table,
        codes=codes,
        source=_shown(p),
        section=section,
        root=str(p.parent.absolute()),
        warn=warn,
    )


def parse_config(
    table: Mapping[str, Any],
    *,
    codes: Set[str],
    source: str = "<config>",
    section: str = "",
    root: str | None = None,
    warn: Warn | None = None,
) -> Config:
    """Validate one settings table (already parsed from TOML) into a :class:`Config`."""
    warn = warn or _python_warning
    where = f"{source} [{section}]" if section else source
    _warn_unknown(table, _TOP_KEYS, where, warn)
    fail_on = table.get("fail-on", "error")
    if not isinstance(fail_on, str) or fail_on.lower() not in FAIL_ON:
        raise ConfigError(f"{where}: 'fail-on' must be one of {', '.join(FAIL_ON)}")
    baseline = table.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise ConfigError(f"{where}: 'baseline' must be a file path")
    overrides = table.get("overrides", [])
    if not isinstance(overrides, list):
        raise ConfigError(f"{where}: 'overrides' must be an array of tables [[...overrides]]")
    sub = f"{section}." if section else ""
    return Config(
        select=check_codes(_strings(table, "select", where, ["IA"]), f"{where} select", codes),
        ignore=check_codes(_strings(table, "ignore", where), f"{where} ignore", codes),
        extend_select=check_codes(
            _strings(table, "extend-select", where), f"{where} extend-select", codes
        ),
        fail_on=fail_on.lower(),
        thresholds=_thresholds(table.get("thresholds", {}), f"{source} [{sub}thresholds]", warn),
        overrides=tuple(
            _override(o, f"{source} [[{sub}overrides]] #{i + 1}", warn, codes)
            for i, o in enumerate(overrides)
        ),
        exclude=_strings(table, "exclude", where),
        factories=_strings(table, "factories", where),
        baseline=None if baseline is None else os.path.join(root or os.curdir, baseline),
        root=root,
        source=source,
    )


def check_codes(values: Iterable[str], where: str, codes: Set[str]) -> tuple[str, ...]:
    """Upper-case each code; one that is neither a rule code nor a prefix of one is an error
    (exit 2), because a typo in ``ignore`` would otherwise silently ignore nothing. ``ALL``
    (as in ruff) is every rule: the prefix ``IA``."""
    out: list[str] = []
    for raw in values:
        code = raw.strip().upper()
        if code == ALL:
            code = "IA"
        if not code or not any(k.startswith(code) for k in codes):
            hint = _close_code(code, codes)
            hint = f"did you mean {hint!r}? " if hint else ""
            raise ConfigError(
                f"unknown rule code {raw!r} in {where}; {hint}see 'initaudit --list-rules'"
            )
        out.append(code)
    return tuple(out)


def _override(raw: object, where: str, warn: Warn, codes: Set[str]) -> Override:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: each override must be a table")
    _warn_unknown(raw, _OVERRIDE_KEYS, where, warn)
    tensors, nodes = _strings(raw, "tensors", where), _strings(raw, "nodes", where)
    if not tensors and not nodes:
        raise ConfigError(f"{where}: an override needs 'tensors' or 'nodes' (name globs)")
    allow_zeros = raw.get("allow-zeros", False)
    if not isinstance(allow_zeros, bool):
        raise ConfigError(f"{where}: 'allow-zeros' must be true or false")
    scheme = raw.get("scheme")
    if scheme is not None:
        if not isinstance(scheme, str):
            raise ConfigError(f"{where}: 'scheme' must be a string such as \"normal(std=0.02)\"")
        try:
            parse_scheme(scheme)
        except ValueError as exc:
            raise ConfigError(f"{where}: 'scheme' = {scheme!r}: {exc}") from None
    return Override(
        tensors=tensors,
        nodes=nodes,
        ignore=check_codes(_strings(raw, "ignore", where), f"{where} ignore", codes),
        allow_zeros=allow_zeros,
        scheme=scheme,
    )


def _thresholds(raw: object, where: str, warn: Warn) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table of numbers")
    out: dict[str, float] = {}
    for key, value in raw.items():
        if key not in THRESHOLDS:
            warn(f"unknown key {key!r} in {where} (known: {', '.join(THRESHOLDS)})")
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{where}: {key!r} must be a positive number, not {value!r}")
        out[key] = float(value)
    return out


def _strings(
    table: Mapping[str, Any], key: str, where: str, default: list[str] | None = None
) -> tuple[str, ...]:
    value = table.get(key, default or [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key!r} must be a list of strings")
    return tuple(value)


def _warn_unknown(table: Mapping[str, Any], known: tuple[str, ...], where: str, warn: Warn) -> None:
    for key in table:
        if key not in known:
            warn(f"unknown key {key!r} in {where}{_did_you_mean(key, known)}")


def _close_code(code: str, codes: Set[str]) -> str | None:
    """The rule code a typo meant: ``IA1O1`` (a letter O) is IA101, ``IA10`` a prefix."""
    digits = code.replace("O", "0").replace("I", "1").replace("L", "1")
    fixed = code[:2] + digits[2:] if code.startswith("IA") else "IA" + digits.lstrip("1A")
    if fixed != code and any(k.startswith(fixed) for k in codes):
        return fixed
    import difflib  # only on the error path: the startup of every hook run stays short

    close = difflib.get_close_matches(code, sorted(codes), n=1, cutoff=0.75)
    return close[0] if close else None


def _did_you_mean(typed: str, known: Iterable[str]) -> str:
    """``; did you mean 'fail-on'?`` for a near miss (``fial-on``, ``extend_select``)."""
    known = list(known)
    spelled = typed.strip().lower().replace("_", "-")
    if spelled in known:
        return f"; did you mean {spelled!r}?"
    import difflib

    close = difflib.get_close_matches(spelled, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _tool_table(doc: Mapping[str, Any]) -> Mapping[str, Any] | None:
    tool = doc.get("tool")
    table = tool.get("initaudit") if isinstance(tool, Mapping) else None
    return table if isinstance(table, Mapping) else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{_shown(path)}: invalid TOML: {exc}") from None


def _shown(path: Path) -> str:
    """The path relative to the current directory when it is below it, else absolute."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(absolute)

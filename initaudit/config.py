"""Settings that shape an audit: rule selection, fail level, thresholds, per-tensor overrides.

The pipeline only reads the frozen :class:`Config`; :mod:`initaudit.config_file` finds and
validates the ``[tool.initaudit]`` table that produces one (README "Configuration"). Selection works
like ruff's: codes are prefixes (``IA1`` is every integrity rule), and when several entries
match a code the most specific one wins, ``ignore`` winning a tie.
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from initaudit.findings import Severity

# name -> (default, what it controls). The statistics read them through Config.threshold, and
# the README "Configuration" table is checked against this dict, so it is the one list.
THRESHOLDS: dict[str, tuple[float, str]] = {
    "scale-ratio": (
        1.5,
        "IA201: a weight is mis-scaled when std / expected std is above this or below its inverse",
    ),
    "offset-z": (6.0, "IA202: a mean further than this many standard errors from 0 is an offset"),
    "depth-band": (
        100.0,
        "IA203: the signal explodes or vanishes when the end-to-end gain leaves [1/band, band]",
    ),
}

FAIL_ON = ("error", "warning", "info", "never")

# allow-zeros in an override suppresses exactly these: a zero (or constant) tensor by design.
ZERO_RULES = ("IA101", "IA102")


# The one grammar of an override's ``scheme`` (README "Configuration"): a fixed distribution
# with a positive number, whitespace free. Fan-based schemes (kaiming, xavier...) are not
# declared: every catalog scheme is tried for the tensor's own fans anyway.
SCHEME_FORMS = "normal(std=S), trunc_normal(std=S), uniform(bound=B) or uniform(-B, B)"
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_SCHEMES = (
    (re.compile(rf"(normal|trunc_normal)\(\s*std\s*=\s*{_NUMBER}\s*\)"), 1.0),
    (re.compile(rf"(uniform)\(\s*bound\s*=\s*{_NUMBER}\s*\)"), 1 / math.sqrt(3.0)),
    (re.compile(rf"(uniform)\(\s*-\s*{_NUMBER}\s*,\s*\+?\s*(\2)\s*\)"), 1 / math.sqrt(3.0)),
)


def parse_scheme(text: str) -> float:
    """The std an override's ``scheme`` declares; ValueError naming the accepted forms.

    ``normal(std=0.02)`` and ``trunc_normal(std=0.02)`` declare 0.02, ``uniform(bound=0.05)``
    and ``uniform(-0.05, 0.05)`` 0.05/sqrt(3). Nothing else is guessed at: a misspelled key,
    a zero, negative or non-numeric value, or a fan-based name is an error.
    """
    spelled = text.strip()
    for pattern, std_per_unit in _SCHEMES:
        m = pattern.fullmatch(spelled)
        if m is not None:
            value = float(m.group(2))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"the scale must be a positive number, not {m.group(2)}")
            return value * std_per_unit
    lowered = spelled.lower()
    if lowered.startswith(("kaiming", "xavier", "glorot", "he_", "lecun", "orthogonal")):
        raise ValueError(
            f"fan-based schemes are not declared (initaudit tries every one for the tensor's "
            f"own fans); declare a fixed distribution: {SCHEME_FORMS} with S, B positive "
            "numbers, or ignore IA201 for these tensors"
        )
    raise ValueError(
        f"not a scheme initaudit understands; accepted: {SCHEME_FORMS} with S, B positive numbers"
    )


@dataclass(frozen=True)
class Override:
    """Settings for tensors whose name (or the name of a node that reads it) matches a glob.

    Globs are fnmatch-style and case-sensitive, because ONNX names are; ``*`` also matches
    ``/`` and ``.``, so ``encoder.*`` covers every tensor under ``encoder``.
    """

    tensors: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()  # rule codes or prefixes
    allow_zeros: bool = False
    scheme: str | None = None  # expected scheme, e.g. "normal(std=0.02)" (parse_scheme)

    def __post_init__(self) -> None:
        # Also built in Python code, where no TOML validation ran: the same grammar.
        if self.scheme is not None:
            parse_scheme(self.scheme)

    @property
    def declared_std(self) -> float | None:
        """The std ``scheme`` declares, None when it declares none."""
        return None if self.scheme is None else parse_scheme(self.scheme)

    def matches_any(self, tensor: str | None, nodes: Iterable[str]) -> bool:
        """True if the tensor's name, or any node that uses it, matches one of the globs."""
        if tensor is not None and any(fnmatch.fnmatchcase(tensor, g) for g in self.tensors):
            return True
        return any(fnmatch.fnmatchcase(n, g) for n in nodes if n for g in self.nodes)

    def suppresses(self, code: str) -> bool:
        if self.allow_zeros and code in ZERO_RULES:
            return True
        return any(code.startswith(prefix) for prefix in self.ignore)


@dataclass(frozen=True)
class Config:
    """Everything a run can be configured with; ``Config()`` is the built-in default.

    Build one directly in Python (``Config(select=("IA1",))``), or read ``[tool.initaudit]``
    with :func:`initaudit.load_config`. ``root`` is the folder of the file it came from: the
    ``exclude`` globs and the ``baseline`` path are relative to it, as in ruff.
    """

    select: tuple[str, ...] = ("IA",)
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    fail_on: str = "error"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    overrides: tuple[Override, ...] = ()
    exclude: tuple[str, ...] = ()
    baseline: str | None = None
    factories: tuple[str, ...] = ()  # MODULE:FUNCTION builders audited when no MODEL is given
    root: str | None = None
    source: str | None = None  # the file this came from, for messages only

    def __post_init__(self) -> None:
        # Config is also built in Python code, where no TOML validation ran.
        if self.fail_on not in FAIL_ON:
            raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON)}, not {self.fail_on!r}")

    def threshold(self, key: str, default: float | None = None) -> float:
        """The configured value of a :data:`THRESHOLDS` key, else ``default``, else its default."""
        if key in self.thresholds:
            return float(self.thresholds[key])
        if default is not None:
            return float(default)
        return THRESHOLDS[key][0]

    @property
    def fail_level(self) -> Severity | None:
        """The severity that fails the run, or None for ``fail-on = "never"``."""
        return None if self.fail_on == "never" else Severity.parse(self.fail_on)

    def selects(self, code: str) -> bool:
        """Whether rule ``code`` runs: the longest matching prefix decides, ignore wins ties."""
        entries = [(len(p), 0, p) for p in (*self.select, *self.extend_select)]
        entries += [(len(p), 1, p) for p in self.ignore]
        on = False
        for _, is_ignore, prefix in sorted(entries):
            if code.startswith(prefix):
                on = not is_ignore
        return on

    def overrides_for(
        self, tensor: str | None, node: str | Iterable[str] | None
    ) -> tuple[Override, ...]:
        """The overrides for a tensor; pass every node that reads it so node globs see all."""
        nodes = () if node is None else (node,) if isinstance(node, str) else tuple(node)
        return tuple(o for o in self.overrides if o.matches_any(tensor, nodes))

    def keeps(self, code: str, tensor: str | None, nodes: Iterable[str] = ()) -> bool:
        """Whether a finding survives selection and the overrides for its tensor."""
        if not self.selects(code):
            return False
        nodes = tuple(nodes)
        return not any(o.suppresses(code) for o in self.overrides if o.matches_any(tensor, nodes))

    def excludes(self, path: str | os.PathLike[str]) -> bool:
        """Whether a model path matches an ``exclude`` glob.

        A glob is tried on the path relative to ``root`` (the config file's folder), on each
        folder above the file there, on the path as given and on the file name, so
        ``legacy``, ``models/legacy/*`` and ``*_old.onnx`` all work.
        """
        if not self.exclude:
            return False
        given = PurePath(os.path.normpath(path))
        candidates = {given.as_posix(), given.name}
        root = os.path.abspath(self.root or os.curdir)
        try:
            rel = Path(os.path.abspath(path)).relative_to(root)
        except ValueError:
            rel = None
        if rel is not None:
            candidates.add(rel.as_posix())
            candidates.update(p.as_posix() for p in rel.parents if p.parts)
        globs = [g.rstrip("/") for g in self.exclude]
        return any(fnmatch.fnmatchcase(c, g) for g in globs for c in candidates)


DEFAULT = Config()

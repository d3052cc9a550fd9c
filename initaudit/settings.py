"""Which settings apply to which model: configuration found from each file, the command line on
top (README "Configuration").

As in ruff, each model is audited with the nearest ``pyproject.toml`` that has a
``[tool.initaudit]`` table, looking in the model's folder and then each parent. A model under
no such file gets the *root* settings: the ones found from the current directory (or the
defaults). ``--config FILE`` names one file for every model and ``--isolated`` uses the
defaults for every model. Files are never merged. Command-line options then override each
model's settings the same way.

Every file is read and validated once, before anything is audited, so a mistake in any
project's configuration stops the run before the work.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from initaudit.config import DEFAULT, Config
from initaudit.config_file import check_codes, config_in, load_config
from initaudit.errors import ConfigError
from initaudit.rules import CODES

if TYPE_CHECKING:  # the report stage's record, read only
    from initaudit.report.model import FileResult


@dataclass(frozen=True, kw_only=True)
class Overlay:
    """What the command line says about selection and failure, on top of every config."""

    select: tuple[str, ...] | None = None  # None: --select not given
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    fail_on: str | None = None

    @classmethod
    def parse(
        cls,
        select: Sequence[str],
        extend_select: Sequence[str],
        ignore: Sequence[str],
        fail_on: str | None,
    ) -> Overlay:
        """``--select IA1,IA2 --select IA3``: comma-separated, repeatable, validated. A
        ``--select`` that names no code (an empty ``$RULES``) is an error, not "no rule"."""
        chosen = None
        if select:
            chosen = _codes(select, "--select")
            if not chosen:
                shown = " ".join(repr(s) for s in select)
                raise ConfigError(
                    f"--select {shown} names no rule code (an empty variable?); give codes or "
                    "prefixes (IA1), or --select ALL for every rule"
                )
        return cls(
            select=chosen,
            extend_select=_codes(extend_select, "--extend-select"),
            ignore=_codes(ignore, "--ignore"),
            fail_on=fail_on,
        )

    def apply(self, config: Config) -> Config:
        """``--select`` replaces the whole configured selection (its extend-select and ignore
        too), so what the command line asks for is what runs; ``--extend-select`` and
        ``--ignore`` add to the configured lists."""
        if self.select is not None:
            selected, extend, ignored = self.select, self.extend_select, self.ignore
        else:
            selected = config.select
            extend = config.extend_select + self.extend_select
            ignored = config.ignore + self.ignore
        out = dataclasses.replace(
            config,
            select=selected,
            extend_select=extend,
            ignore=ignored,
            fail_on=self.fail_on or config.fail_on,
        )
        if not any(out.selects(code) for code in CODES):
            where = f" with {config.source}" if config.source else ""
            raise ConfigError(
                f"no rule is selected{where} (select {list(out.select)}, extend-select "
                f"{list(out.extend_select)}, ignore {list(out.ignore)}): the run would check "
                "nothing"
            )
        return out


def _codes(values: Sequence[str], option: str) -> tuple[str, ...]:
    parts = [p for v in values for p in v.split(",") if p.strip()]
    return check_codes(parts, option, CODES)


class Settings:
    """The settings of each model of one run; every configuration file is read once."""

    def __init__(
        self,
        *,
        overlay: Overlay,
        config_file: str | None = None,
        isolated: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        if isolated and config_file:
            raise ConfigError("--isolated and --config cannot be used together")
        self._overlay = overlay
        self._warn = warn
        self._fixed = isolated or config_file is not None
        self._files: dict[Path, Config] = {}  # pyproject.toml -> its settings, overlaid
        self._nearest: dict[Path, Path | None] = {}  # folder -> nearest pyproject.toml
        base = DEFAULT if isolated else load_config(config_file, codes=CODES, warn=warn)
        self.root = overlay.apply(base)
        if not self._fixed and base.root is not None:
            # The file found from the current directory is also the nearest one of the
            # models below it: read once, handed out as one object.
            self._files[Path(base.root) / "pyproject.toml"] = self.root

    def for_path(self, path: str | os.PathLike[str]) -> Config:
        """The settings of the model (or folder) at ``path``."""
        if self._fixed:
            return self.root
        folder = Path(os.path.abspath(path))
        if not folder.is_dir():
            folder = folder.parent
        found = self._nearest_file(folder)
        if found is None:
            return self.root
        if found not in self._files:
            loaded = load_config(found, codes=CODES, warn=self._warn)
            self._files[found] = self._overlay.apply(loaded)
        return self._files[found]

    def _nearest_file(self, folder: Path) -> Path | None:
        """The nearest pyproject.toml with the table, from ``folder`` up; each folder is
        looked at once per run, however many models a directory tree holds."""
        walked = []
        here: Path | None = folder
        found = None
        while here is not None:
            if here in self._nearest:
                found = self._nearest[here]
                break
            walked.append(here)
            found = config_in(here)
            if found is not None:
                break
            here = here.parent if here.parent != here else None
        for f in walked:
            self._nearest[f] = found
        return found


def unused_globs(audited: Sequence[tuple[FileResult, Config]]) -> list[str]:
    """An override glob that matches no tensor (or node) of any model audited with its
    configuration is most likely a typo: one line for each (like mypy's unused ignore)."""
    by_config: dict[int, tuple[Config, list[FileResult]]] = {}
    for fr, config in audited:
        if fr.error is None and config.overrides:
            by_config.setdefault(id(config), (config, []))[1].append(fr)
    messages = []
    for config, files in by_config.values():
        tensors = {t.name for fr in files for t in fr.tensors}
        nodes = {n for fr in files for t in fr.tensors for n in (t.node, *t.uses) if n}
        where = config.source or "the configuration"
        for i, o in enumerate(config.overrides, start=1):
            for kind, globs, names in (("tensors", o.tensors, tensors), ("nodes", o.nodes, nodes)):
                for g in globs:
                    if not any(fnmatch.fnmatchcase(n, g) for n in names):
                        messages.append(
                            f"{where}: override #{i}: {kind} glob {g!r} matches no "
                            f"{kind[:-1]} of the {len(files)} audited "
                            f"{'model' if len(files) == 1 else 'models'}"
                        )
    return messages

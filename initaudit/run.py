"""One run of the command line, after click has parsed it: settings, audit, output, exit status.

``cli.py`` only declares options and hands an :class:`Invocation` to :func:`run`, which returns
the exit status; this is the one function that decides it (README "Exit status"). Usage and
configuration mistakes raise :class:`click.UsageError` (exit 2, printed by click).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import click

from initaudit import progress
from initaudit.audit import AuditOptions, audit_paths
from initaudit.config import Config
from initaudit.config_file import check_codes, load_config
from initaudit.errors import EXIT_ERROR, EXIT_OK
from initaudit.factory import audit_factory
from initaudit.progress import ProgressBar
from initaudit.report import text
from initaudit.report.model import Report
from initaudit.rules import ALL_RULES, CODES, rule_by_code
from initaudit.runtime import parse_shapes


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """What the command line asked for, as parsed (README "Usage" has each option)."""

    models: tuple[str, ...] = ()
    fmt: str = "text"
    fail_on: str | None = None
    select: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    config_file: str | None = None
    isolated: bool = False
    baseline_file: str | None = None
    write_baseline: str | None = None
    output: str | None = None
    quiet: bool = False
    html_file: str | None = None
    html_all_histograms: bool = False
    jobs: int | None = None
    explain: str | None = None
    list_rules: bool = False
    propagate: bool = False
    input_shapes: tuple[str, ...] = ()
    factories: tuple[str, ...] = ()
    factory_inputs: tuple[str, ...] = ()
    debug: bool = False


def run(inv: Invocation) -> int:
    """Do what ``inv`` asks and return the exit status: 0 clean, 1 findings at or above
    ``--fail-on``, 2 a model could not be audited."""
    if inv.explain:
        _explain(inv.explain)
        return EXIT_OK
    if inv.list_rules:
        _list_rules()
        return EXIT_OK
    config = _settings(inv)
    factories = inv.factories or (() if inv.models else config.factories)
    if not inv.models and not factories:
        raise click.UsageError("no MODEL given (try 'initaudit model.onnx')")
    if inv.html_all_histograms and inv.html_file is None:
        raise click.UsageError("--html-all-histograms needs --html FILE")
    if inv.html_file is not None:
        from initaudit.report import plots

        if not plots.available():
            # Before the audit, not after it: a missing extra must not cost a long run.
            click.echo(plots.MISSING, err=True)
            return EXIT_ERROR
    # Read the baseline first, so a typo in its name does not cost a full audit; not when
    # writing one, which may be the configured baseline's first version.
    baseline_file = None if inv.write_baseline else inv.baseline_file or config.baseline
    known = None
    if baseline_file is not None:
        from initaudit import baseline

        known = baseline.load(baseline_file)
    # Excludes apply to explicitly named files too (ruff's --force-exclude): pre-commit passes
    # every staged .onnx file by name.
    paths = [m for m in inv.models if not config.excludes(m)]
    try:
        shapes = parse_shapes(inv.input_shapes)
        factory_shapes = parse_shapes(inv.factory_inputs)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    bar = ProgressBar() if progress.wanted(inv.quiet) else None
    options = AuditOptions(
        config=config,
        jobs=inv.jobs,
        propagate=shapes if inv.propagate or inv.input_shapes else None,
        histograms=inv.html_file is not None,
        progress=bar,
        debug=inv.debug,
    )
    try:
        report = audit_paths(paths, options)
        built = tuple(audit_factory(f, factory_shapes, options) for f in factories)
        report = dataclasses.replace(report, files=(*report.files, *built))
    finally:
        if bar is not None:
            bar.close()
    for fr in report.files:
        if fr.error is not None:
            click.echo(
                f"initaudit: {_printable(fr.path)}: {fr.error.code}: {fr.error.message}", err=True
            )
        for note in fr.notes:
            _warn(f"{fr.path}: {note}")
    if inv.write_baseline is not None:
        from initaudit import baseline

        count = baseline.write(report, inv.write_baseline)
        entries = f"{count} baseline {'entry' if count == 1 else 'entries'}"
        click.echo(f"initaudit: wrote {entries} to {inv.write_baseline}", err=True)
        return dataclasses.replace(report, fail_on=None).exit_code()
    if known is not None:
        from initaudit import baseline

        report = baseline.apply(report, known)
    rendered = _render(report, inv.fmt, _use_colour(inv.output), inv.quiet)
    if inv.output is not None:
        with open(inv.output, "w", encoding="utf-8") as fh:
            fh.write(rendered)
    else:
        click.echo(rendered, nl=False, color=_use_colour(None))
    if inv.html_file is not None:
        from initaudit.report import html_report

        band = config.threshold("depth-band")
        page = html_report.render(report, depth_band=band, all_histograms=inv.html_all_histograms)
        with open(inv.html_file, "w", encoding="utf-8") as fh:
            fh.write(page)
    return report.exit_code()


def _settings(inv: Invocation) -> Config:
    """The configured settings with the command line on top.

    ``--select`` replaces the whole configured selection (its extend-select and ignore too),
    so what the command line asks for is what runs; ``--extend-select`` and ``--ignore`` add
    to the configured lists.
    """
    if inv.isolated and inv.config_file:
        raise click.UsageError("--isolated and --config cannot be used together")
    config = Config() if inv.isolated else load_config(inv.config_file, codes=CODES, warn=_warn)
    extend = _codes(inv.extend_select, "--extend-select")
    ignored = _codes(inv.ignore, "--ignore")
    if inv.select:
        selected = _codes(inv.select, "--select")
    else:
        selected = config.select
        extend, ignored = config.extend_select + extend, config.ignore + ignored
    return dataclasses.replace(
        config,
        select=selected,
        extend_select=extend,
        ignore=ignored,
        fail_on=inv.fail_on or config.fail_on,
    )


def _codes(values: Sequence[str], option: str) -> tuple[str, ...]:
    """``--select IA1,IA2 --select IA3``: comma-separated, repeatable, validated."""
    parts = [p for v in values for p in v.split(",") if p.strip()]
    return check_codes(parts, option, CODES)


def _explain(code: str) -> None:
    rule = rule_by_code(code)
    if rule is None:
        raise click.UsageError(f"unknown rule code {code!r}; see --list-rules")
    click.echo(f"{rule.code} ({rule.name}) [default severity: {rule.severity.label}]\n")
    click.echo(rule.explanation())


def _list_rules() -> None:
    for rule in ALL_RULES:
        click.echo(f"{rule.code}  {rule.name:<20} {rule.severity.label:<8} {rule.summary}")


# Formats other than text (and the baseline and HTML report modules above) are imported when
# asked for: a pre-commit hook starts a process per commit, and json, hashlib (SARIF
# fingerprints) and html take longer to import than a small model takes to audit.


def _render(report: Report, fmt: str, colour: bool, quiet: bool) -> str:
    if fmt == "json":
        from initaudit.report import json_report

        return json_report.render(report)
    if fmt == "sarif":
        from initaudit.report import sarif

        return sarif.render(report)
    if fmt == "github":
        from initaudit.report import github

        return github.render(report)
    return text.render(report, colour=colour, quiet=quiet)


def _use_colour(output: str | None) -> bool:
    if output is not None or os.environ.get("NO_COLOR", "") != "":
        return False
    return sys.stdout.isatty()


def _printable(path: str) -> str:
    """A path on one line: a newline in a file name must not split the one-line error."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def _warn(message: str) -> None:
    click.echo(f"initaudit: warning: {message}", err=True)

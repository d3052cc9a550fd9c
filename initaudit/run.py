"""One run of the command line, after click has parsed it: settings, audit, output, exit status.

``cli.py`` only declares options and hands an :class:`Invocation` to :func:`run`, which returns
the exit status; this is the one function that decides it (README "Exit status"). Usage and
configuration mistakes raise :class:`click.UsageError` (exit 2, printed by click), and all of
them are found before the first model is read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from initaudit import outputs, progress, timing
from initaudit._version import __version__
from initaudit.audit import AuditOptions, audit_file
from initaudit.collect import Collected, collect
from initaudit.config import Config
from initaudit.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK
from initaudit.factory import audit_factory
from initaudit.progress import ProgressBar, StepBar
from initaudit.report import text
from initaudit.report.model import FileResult, Report
from initaudit.rules import ALL_RULES, rule_by_code
from initaudit.runtime import parse_shapes
from initaudit.settings import Overlay, Settings, unused_globs

if TYPE_CHECKING:
    from initaudit.baseline import Baseline


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
    exit_zero: bool = False
    statistics: bool = False
    color: str = "auto"


def run(inv: Invocation) -> int:
    """Do what ``inv`` asks and return the exit status: 0 clean, 1 findings at or above
    ``--fail-on``, 2 a model could not be audited, 130 interrupted (Ctrl-C)."""
    try:
        return _run(inv)
    except KeyboardInterrupt:
        # The whole run stops: no other file is audited, and audit_file released the memory
        # maps on the way out. 130 is what a shell reports for SIGINT; never "findings" (1).
        click.echo("initaudit: interrupted", err=True)
        return EXIT_INTERRUPTED
    finally:
        if timing.ENABLED:  # INITAUDIT_PROFILE=1: where the time went, after the report
            for line in timing.summary():
                click.echo(line, err=True)


def _run(inv: Invocation) -> int:
    if inv.explain:
        _explain(inv.explain)
        return EXIT_OK
    if inv.list_rules:
        _list_rules()
        return EXIT_OK
    # Everything a user can get wrong is found here, before the first model is read.
    settings = Settings(
        overlay=Overlay.parse(inv.select, inv.extend_select, inv.ignore, _fail_on(inv)),
        config_file=inv.config_file,
        isolated=inv.isolated,
        warn=_warn,
    )
    factories = inv.factories or (() if inv.models else settings.root.factories)
    models = inv.models or (() if factories else (os.curdir,))  # no path: `.`, like ruff
    if inv.html_all_histograms and inv.html_file is None:
        raise click.UsageError("--html-all-histograms needs --html FILE")
    if inv.statistics and inv.fmt not in ("text", "json"):
        raise click.UsageError(f"--statistics prints text or JSON, not --format {inv.fmt}")
    if inv.html_file is not None:
        from initaudit.report import plots

        if not plots.available():
            # Before the audit, not after it: a missing extra must not cost a long run.
            click.echo(plots.MISSING, err=True)
            return EXIT_ERROR
    for path, option in _targets(inv):
        outputs.prepare(path, option)
    try:
        shapes = parse_shapes(inv.input_shapes)
        factory_shapes = parse_shapes(inv.factory_inputs)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    collected = collect(models, settings.for_path)
    # Read every baseline first, so a typo in its name does not cost a full audit; not when
    # writing one, which may be the configured baseline's first version.
    baselines = [] if inv.write_baseline else _baselines(inv, settings, collected.paths)
    if not collected.paths and not factories:
        _nothing_to_audit(models, collected)

    bar = ProgressBar() if progress.wanted(inv.quiet) else None
    options = AuditOptions(
        jobs=inv.jobs,
        propagate=shapes if inv.propagate or inv.input_shapes else None,
        histograms=inv.html_file is not None,
        progress=bar,
        debug=inv.debug,
    )
    audited: list[tuple[FileResult, Config]] = []
    try:
        for path in collected.paths:
            config = settings.for_path(path)
            result = audit_file(path, dataclasses.replace(options, config=config))
            audited.append((dataclasses.replace(result, fail_on=config.fail_on), config))
        root = dataclasses.replace(options, config=settings.root)
        built = [audit_factory(f, factory_shapes, root) for f in factories]
    finally:
        if bar is not None:
            bar.close()
    audited = _without_data_files(audited)
    files = (*(fr for fr, _ in audited), *built)
    report = Report(files, __version__, fail_on=settings.root.fail_level)
    for fr in report.files:
        if fr.error is not None:
            click.echo(
                f"initaudit: {_printable(fr.path)}: {fr.error.code}: {fr.error.message}", err=True
            )
        for note in fr.notes:
            _warn(f"{fr.path}: {note}")
    for message in unused_globs(audited):
        _warn(message)

    if inv.write_baseline is not None:
        from initaudit import baseline

        count = baseline.write(report, inv.write_baseline)
        entries = f"{count} baseline {'entry' if count == 1 else 'entries'}"
        click.echo(f"initaudit: wrote {entries} to {inv.write_baseline}", err=True)
        return EXIT_ERROR if any(fr.error is not None for fr in report.files) else EXIT_OK
    if baselines:
        from initaudit import baseline

        for known, covered in baselines:
            report = baseline.apply(report, known, covered)
    with timing.stage("report"):
        rendered = _render(report, inv, outputs.use_colour(inv.color, inv.output is not None))
        if inv.output is not None:
            outputs.write(inv.output, rendered, "--output")
        else:
            click.echo(rendered, nl=False, color=outputs.use_colour(inv.color, False))
    if inv.html_file is not None:
        from initaudit.report import html_report

        band = settings.root.threshold("depth-band")
        steps = StepBar("writing HTML") if progress.wanted(inv.quiet) else None
        try:
            page = html_report.render(
                report, depth_band=band, all_histograms=inv.html_all_histograms, progress=steps
            )
        finally:
            if steps is not None:
                steps.close()
        outputs.write(inv.html_file, page, "--html")
    return report.exit_code()


def _fail_on(inv: Invocation) -> str | None:
    if inv.exit_zero:
        if inv.fail_on not in (None, "never"):
            raise click.UsageError(f"--exit-zero and --fail-on {inv.fail_on} contradict")
        return "never"
    return inv.fail_on


def _targets(inv: Invocation) -> list[tuple[str, str]]:
    named = (
        (inv.output, "--output"),
        (inv.html_file, "--html"),
        (inv.write_baseline, "--write-baseline"),
    )
    return [(path, option) for path, option in named if path is not None]


def _baselines(
    inv: Invocation, settings: Settings, paths: Sequence[str]
) -> list[tuple[Baseline, frozenset[str] | None]]:
    """Each baseline to apply and the models it covers (None: every model): ``--baseline``
    for all of them, else each configuration's ``baseline`` for the models it applies to."""
    if inv.baseline_file is not None:
        from initaudit import baseline

        return [(baseline.load(inv.baseline_file), None)]
    covered: dict[str, set[str]] = {}
    for path in paths:
        configured = settings.for_path(path).baseline
        if configured is not None:
            covered.setdefault(configured, set()).add(path)
    root = settings.root.baseline
    if root is not None and not paths:
        covered.setdefault(root, set())  # factories only: the root baseline, read now
    if not covered:
        return []
    from initaudit import baseline

    return [(baseline.load(b), frozenset(ps) if ps else None) for b, ps in covered.items()]


def _nothing_to_audit(models: Sequence[str], collected: Collected) -> None:
    """A gate that checked nothing must say so (ruff: "No Python files found")."""
    if collected.excluded:
        n = collected.excluded
        _warn(f"no ONNX files to audit: {n} excluded by the configuration's exclude globs")
    elif not collected.sidecars:
        _warn(f"no ONNX files found under {', '.join(models)}")


def _without_data_files(
    audited: list[tuple[FileResult, Config]],
) -> list[tuple[FileResult, Config]]:
    """A file named on the command line that another model of the run reads as external data
    (a ``weights.bin``) is that model's data, not a broken model: no error for it."""
    data = {d for fr, _ in audited for d in fr.data_files}
    return [
        (fr, c) for fr, c in audited if fr.error is None or os.path.realpath(fr.path) not in data
    ]


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


def _render(report: Report, inv: Invocation, colour: bool) -> str:
    if inv.statistics:
        from initaudit.report import statistics

        return statistics.render_json(report) if inv.fmt == "json" else statistics.render(report)
    if inv.fmt == "json":
        from initaudit.report import json_report

        return json_report.render(report)
    if inv.fmt == "sarif":
        from initaudit.report import sarif

        return sarif.render(report)
    if inv.fmt == "github":
        from initaudit.report import github

        return github.render(report)
    return text.render(report, colour=colour, quiet=inv.quiet)


def _printable(path: str) -> str:
    """A path on one line: a newline in a file name must not split the one-line error."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def _warn(message: str) -> None:
    click.echo(f"initaudit: warning: {message}", err=True)

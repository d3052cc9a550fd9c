"""Command line: parse options, run the pipeline, print, exit 0/1/2. No analysis in here."""

from __future__ import annotations

import dataclasses
import os
import sys
import traceback
from collections.abc import Sequence

import click

from initaudit import baseline, progress
from initaudit._version import __version__
from initaudit.audit import audit_paths
from initaudit.config import FAIL_ON, Config
from initaudit.config_file import check_codes, load_config
from initaudit.errors import EXIT_ERROR
from initaudit.progress import ProgressBar
from initaudit.report import github, html_report, json_report, plots, sarif, text
from initaudit.report.model import Report
from initaudit.rules import ALL_RULES, CODES, rule_by_code
from initaudit.runtime import parse_shapes
from initaudit.stats.measure import default_jobs

FORMATS = ("text", "json", "sarif", "github")


def _use_colour(output: str | None) -> bool:
    if output is not None or ("NO_COLOR" in os.environ and os.environ["NO_COLOR"] != ""):
        return False
    return sys.stdout.isatty()


def _explain(code: str) -> None:
    rule = rule_by_code(code)
    if rule is None:
        raise click.UsageError(f"unknown rule code {code!r}; see --list-rules")
    click.echo(f"{rule.code} ({rule.name}) [default severity: {rule.severity.label}]\n")
    click.echo(rule.explanation())


def _list_rules() -> None:
    for rule in ALL_RULES:
        click.echo(f"{rule.code}  {rule.name:<20} {rule.severity.label:<8} {rule.summary}")


def _render(report: Report, fmt: str, colour: bool, quiet: bool) -> str:
    if fmt == "json":
        return json_report.render(report)
    if fmt == "sarif":
        return sarif.render(report)
    if fmt == "github":
        return github.render(report)
    return text.render(report, colour=colour, quiet=quiet)


def _printable(path: str) -> str:
    """A path on one line: a newline in a file name must not split the one-line error."""
    return path if path.isprintable() else path.encode("unicode_escape").decode("ascii")


def _warn(message: str) -> None:
    click.echo(f"initaudit: warning: {message}", err=True)


def _codes(values: Sequence[str], option: str) -> tuple[str, ...]:
    """``--select IA1,IA2 --select IA3``: comma-separated, repeatable, validated."""
    parts = [p for v in values for p in v.split(",") if p.strip()]
    return check_codes(parts, option, CODES)


def _settings(
    config_file: str | None,
    isolated: bool,
    select: Sequence[str],
    extend_select: Sequence[str],
    ignore: Sequence[str],
    fail_on: str | None,
) -> Config:
    """The configured settings with the command line on top.

    ``--select`` replaces the whole configured selection (its extend-select and ignore too),
    so what the command line asks for is what runs; ``--extend-select`` and ``--ignore`` add
    to the configured lists.
    """
    if isolated and config_file:
        raise click.UsageError("--isolated and --config cannot be used together")
    config = Config() if isolated else load_config(config_file, codes=CODES, warn=_warn)
    extend, ignored = _codes(extend_select, "--extend-select"), _codes(ignore, "--ignore")
    if select:
        selected = _codes(select, "--select")
    else:
        selected = config.select
        extend, ignored = config.extend_select + extend, config.ignore + ignored
    return dataclasses.replace(
        config,
        select=selected,
        extend_select=extend,
        ignore=ignored,
        fail_on=fail_on or config.fail_on,
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("models", nargs=-1, type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Report format.",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    help="Exit 1 when a finding of this severity or worse is reported.  [default: error]",
)
@click.option("--select", multiple=True, metavar="CODES", help="Run only these rules (prefixes).")
@click.option("--extend-select", multiple=True, metavar="CODES", help="Run these rules too.")
@click.option("--ignore", multiple=True, metavar="CODES", help="Do not run these rules.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=str),
    help="Read settings from FILE (pyproject.toml or initaudit.toml), not the nearest one.",
)
@click.option("--isolated", is_flag=True, help="Ignore every configuration file.")
@click.option(
    "--baseline",
    "baseline_file",
    type=click.Path(dir_okay=False, path_type=str),
    help="Hide findings listed in FILE; fail only on new ones.",
)
@click.option(
    "--write-baseline",
    type=click.Path(dir_okay=False, path_type=str),
    help="Record every current finding in FILE and exit 0 (2 if a model is unreadable).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=str),
    help="Write the report to FILE instead of standard output.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, no summary line.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, writable=True, path_type=str),
    help="Also write a self-contained HTML report (tables, histograms, depth profile) to FILE; "
    "needs initaudit[report].",
)
@click.option(
    "--html-all-histograms",
    is_flag=True,
    help="With --html, draw a histogram for every tensor, not only the flagged ones.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Threads measuring tensors; 1 is serial. The report is the same for any number.  "
    "[default: all cores]",
)
@click.option("--explain", metavar="CODE", help="Explain a rule, with a bad and a good example.")
@click.option("--list-rules", is_flag=True, help="List every rule with its default severity.")
@click.option(
    "--propagate",
    is_flag=True,
    help="Also run the model on seeded random inputs and print each layer's "
    "measured output scale beside the prediction (onnxruntime if installed).",
)
@click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    metavar="NAME=DxD...",
    help="Shape of a model input for --propagate, e.g. pixel_values=1x3x224x224.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option(__version__, "--version", prog_name="initaudit")
def cli(
    models: Sequence[str],
    fmt: str,
    fail_on: str | None,
    select: Sequence[str],
    extend_select: Sequence[str],
    ignore: Sequence[str],
    config_file: str | None,
    isolated: bool,
    baseline_file: str | None,
    write_baseline: str | None,
    output: str | None,
    quiet: bool,
    html_file: str | None,
    html_all_histograms: bool,
    jobs: int | None,
    explain: str | None,
    list_rules: bool,
    propagate: bool,
    input_shapes: Sequence[str],
    debug: bool,
) -> None:
    """Audit the weight initialization of ONNX MODELS.

    Settings come from [tool.initaudit] in the nearest pyproject.toml (or --config); options
    given here override them. CODES are rule codes or prefixes (IA1), comma-separated or
    repeated.

    Exit status: 0 no finding at or above --fail-on, 1 findings at or above it, 2 a model could
    not be read, or the command line or configuration is wrong.
    """
    if explain:
        _explain(explain)
        return
    if list_rules:
        _list_rules()
        return
    if not models:
        raise click.UsageError("no MODEL given (try 'initaudit model.onnx')")
    config = _settings(config_file, isolated, select, extend_select, ignore, fail_on)
    _check_html(html_file, html_all_histograms)
    # Read the baseline first, so a typo in its name does not cost a full audit; not when
    # writing one, which may be the configured baseline's first version.
    baseline_file = None if write_baseline else baseline_file or config.baseline
    known = None if baseline_file is None else baseline.load(baseline_file)
    # Excludes apply to explicitly named files too (ruff's --force-exclude): pre-commit passes
    # every staged .onnx file by name.
    paths = [m for m in models if not config.excludes(m)]
    try:
        shapes = parse_shapes(input_shapes)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    bar = ProgressBar() if progress.wanted(quiet) else None
    try:
        report = audit_paths(
            paths,
            fail_on=config.fail_level,
            debug=debug,
            config=config,
            propagate=shapes if propagate or input_shapes else None,
            jobs=jobs or default_jobs(),
            progress=bar,
            histograms=html_file is not None,
        )
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
    if write_baseline is not None:
        count = baseline.write(report, write_baseline)
        entries = f"{count} baseline {'entry' if count == 1 else 'entries'}"
        click.echo(f"initaudit: wrote {entries} to {write_baseline}", err=True)
        sys.exit(dataclasses.replace(report, fail_on=None).exit_code())
    if known is not None:
        report = baseline.apply(report, known)
    rendered = _render(report, fmt, _use_colour(output), quiet)
    if output is not None:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(rendered)
    else:
        click.echo(rendered, nl=False, color=_use_colour(None))
    if html_file is not None:
        band = config.threshold("depth-band")
        page = html_report.render(report, depth_band=band, all_histograms=html_all_histograms)
        with open(html_file, "w", encoding="utf-8") as fh:
            fh.write(page)
    sys.exit(report.exit_code())


def _check_html(html_file: str | None, all_histograms: bool) -> None:
    """Before the audit, not after it: a missing extra must not cost a long run."""
    if all_histograms and html_file is None:
        raise click.UsageError("--html-all-histograms needs --html FILE")
    if html_file is not None and not plots.available():
        click.echo(plots.MISSING, err=True)
        sys.exit(EXIT_ERROR)


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: an unexpected error is one line and exit 2 unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="initaudit", standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # the last line of defence: never a traceback without --debug
        if "--debug" in args:
            traceback.print_exc()
            sys.exit(EXIT_ERROR)  # the contract's status for an internal error, traceback or not
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(
            f"initaudit: internal error: {type(exc).__name__}: {first}; rerun with --debug",
            err=True,
        )
        sys.exit(EXIT_ERROR)

"""Command line: parse options, run the pipeline, print, exit 0/1/2. No analysis in here."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from initaudit import __version__
from initaudit.audit import audit_paths
from initaudit.errors import EXIT_ERROR
from initaudit.report import json_report, text
from initaudit.report.model import Report, Severity
from initaudit.rules import ALL_RULES, RESERVED_CODES, rule_by_code

FORMATS = ("text", "json")
FAIL_ON = ("error", "warning", "info", "never")


def _use_colour(output: str | None) -> bool:
    if output is not None or ("NO_COLOR" in os.environ and os.environ["NO_COLOR"] != ""):
        return False
    return sys.stdout.isatty()


def _explain(code: str) -> None:
    rule = rule_by_code(code)
    if rule is None:
        if code.upper() in RESERVED_CODES:
            raise click.UsageError(
                f"{code.upper()} is reserved ({RESERVED_CODES[code.upper()]}) "
                "but not implemented in this version"
            )
        raise click.UsageError(f"unknown rule code {code!r}; see --list-rules")
    click.echo(f"{rule.code} ({rule.name}) [default severity: {rule.severity.label}]\n")
    click.echo(rule.explanation())


def _list_rules() -> None:
    for rule in ALL_RULES:
        click.echo(f"{rule.code}  {rule.name:<20} {rule.severity.label:<8} {rule.summary}")


def _render(report: Report, fmt: str, colour: bool, quiet: bool) -> str:
    if fmt == "json":
        return json_report.render(report)
    return text.render(report, colour=colour, quiet=quiet)


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
    default="error",
    show_default=True,
    help="Exit 1 when a finding of this severity or worse is reported.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=str),
    help="Write the report to FILE instead of standard output.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, no summary line.")
@click.option("--explain", metavar="CODE", help="Explain a rule, with a bad and a good example.")
@click.option("--list-rules", is_flag=True, help="List every rule with its default severity.")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option(__version__, "--version", prog_name="initaudit")
def cli(
    models: Sequence[str],
    fmt: str,
    fail_on: str,
    output: str | None,
    quiet: bool,
    explain: str | None,
    list_rules: bool,
    debug: bool,
) -> None:
    """Audit the weight initialization of ONNX MODELS.

    Exit status: 0 no finding at or above --fail-on, 1 findings at or above it, 2 a model could
    not be read or the command line is wrong.
    """
    if explain:
        _explain(explain)
        return
    if list_rules:
        _list_rules()
        return
    if not models:
        raise click.UsageError("no MODEL given (try 'initaudit model.onnx')")
    threshold = None if fail_on == "never" else Severity.parse(fail_on)
    report = audit_paths(models, fail_on=threshold, debug=debug)
    for fr in report.files:
        if fr.error is not None:
            click.echo(f"initaudit: {fr.path}: {fr.error.code}: {fr.error.message}", err=True)
    rendered = _render(report, fmt, _use_colour(output), quiet)
    if output is not None:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(rendered)
    else:
        click.echo(rendered, nl=False, color=_use_colour(None))
    sys.exit(report.exit_code())


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: an unexpected error is one line and exit 2 unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="initaudit", standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:  # the last line of defence: never a traceback without --debug
        if "--debug" in args:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(
            f"initaudit: internal error: {type(exc).__name__}: {first}; rerun with --debug",
            err=True,
        )
        sys.exit(EXIT_ERROR)

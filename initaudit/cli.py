"""Command line wiring: click options in, an :class:`Invocation` to ``run.run``, its status out.

Nothing else happens here; run.py decides what a run does and its exit status.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import click

from initaudit._version import __version__
from initaudit.config import FAIL_ON
from initaudit.errors import EXIT_ERROR
from initaudit.outputs import COLOR
from initaudit.run import Invocation, run

FORMATS = ("text", "json", "sarif", "github")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("models", nargs=-1, type=click.Path(dir_okay=True, path_type=str))
@click.option(
    "--format",
    "--output-format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="Report format (--output-format is the same option, as in ruff).",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    help="Exit 1 when a finding of this severity or worse is reported.  [default: error]",
)
@click.option(
    "--exit-zero",
    is_flag=True,
    help="Exit 0 even with findings (= --fail-on never); 2 still means a model was unreadable.",
)
@click.option(
    "--statistics",
    is_flag=True,
    help="Print how many findings each rule made instead of the findings (text or JSON).",
)
@click.option(
    "--color",
    type=click.Choice(COLOR),
    default="auto",
    show_default=True,
    help="Colour the text report: auto is on a terminal, off with NO_COLOR, on with FORCE_COLOR.",
)
@click.option(
    "--select",
    multiple=True,
    metavar="CODES",
    help="Run only these rules (prefixes; ALL for every rule).",
)
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
    type=click.Path(dir_okay=False, path_type=str),
    help="Write the report to FILE instead of standard output (its folder is created).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print findings only, no summary line.")
@click.option(
    "--html",
    "html_file",
    type=click.Path(dir_okay=False, path_type=str),
    help="Also write a self-contained HTML report (tables, histograms, depth profile) to FILE; "
    "needs matplotlib, the report extra.",
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
@click.option(
    "--factory",
    "factories",
    multiple=True,
    metavar="MODULE:FUNCTION",
    help="Build a model with this function of your code (torch, Keras or ONNX) and audit it.",
)
@click.option(
    "--factory-input",
    "factory_inputs",
    multiple=True,
    metavar="NAME=DxD...",
    help="Shape of a --factory model's input, e.g. x=1x3x224x224.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option(__version__, "--version", prog_name="initaudit")
def cli(
    models: Sequence[str],
    fmt: str,
    fail_on: str | None,
    exit_zero: bool,
    statistics: bool,
    color: str,
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
    factories: Sequence[str],
    factory_inputs: Sequence[str],
    debug: bool,
) -> None:
    """Audit the weight initialization of ONNX MODELS: files, or directories searched for
    *.onnx (with none, the current directory; or the models --factory builds, or the
    factories listed in [tool.initaudit] factories).

    Each model's settings come from [tool.initaudit] in the pyproject.toml nearest to it (or
    --config); options given here override them. CODES are rule codes or prefixes (IA1, or
    ALL), comma-separated or repeated.

    Exit status: 0 no finding at or above --fail-on, 1 findings at or above it, 2 a model could
    not be read, or the command line or configuration is wrong; 130 interrupted.
    """
    sys.exit(
        run(
            Invocation(
                models=tuple(models),
                fmt=fmt,
                fail_on=fail_on,
                exit_zero=exit_zero,
                statistics=statistics,
                color=color,
                select=tuple(select),
                extend_select=tuple(extend_select),
                ignore=tuple(ignore),
                config_file=config_file,
                isolated=isolated,
                baseline_file=baseline_file,
                write_baseline=write_baseline,
                output=output,
                quiet=quiet,
                html_file=html_file,
                html_all_histograms=html_all_histograms,
                jobs=jobs,
                explain=explain,
                list_rules=list_rules,
                propagate=propagate,
                input_shapes=tuple(input_shapes),
                factories=tuple(factories),
                factory_inputs=tuple(factory_inputs),
                debug=debug,
            )
        )
    )


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

"""Error types, each carrying the stable code that JSON reports and exit statuses rely on.

Input problems are per-file: the CLI turns an :class:`InputError` into that file's ``error``
entry and goes on with the other files, so one broken model never hides the others' findings.
"""

from __future__ import annotations

from typing import IO, Any

import click

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it


class InitauditError(Exception):
    """Base class of every error initaudit raises on purpose."""

    code = "error"
    exit_code = EXIT_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(InitauditError):
    """A model file that cannot be audited (missing, not ONNX, inconsistent, hostile).

    ``code`` is one of a closed, documented set (see README "Error codes"), so CI jobs can
    branch on it; the message is for humans and may change.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ConfigError(click.UsageError):
    """Bad configuration or command-line usage; click turns it into exit status 2.

    Printed as one line, ``initaudit: error: ...``, without click's usage banner: a TOML
    mistake or an unknown rule code is not a question of how to call the command.
    """

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"initaudit: error: {self.format_message()}", file=file, err=file is None)


# The closed set of InputError codes. Tests check every raise site uses one of these.
INPUT_ERROR_CODES: dict[str, str] = {
    "not-found": "the path does not exist",
    "not-a-file": "the path is a directory, device, FIFO or other non-regular file",
    "unreadable": "the file exists but cannot be read (permissions, I/O error)",
    "empty": "the file is empty",
    "not-onnx": "the bytes are not an ONNX ModelProto",
    "invalid-model": "the ModelProto is structurally invalid (no graph, bad opset, cycle, ...)",
    "too-large": "the file, a tensor (shape, rank) or the expanded graph exceeds a limit",
    "bad-tensor": "an initializer's dims, data type or stored data are inconsistent",
    "external-data-missing": "an external data file does not exist",
    "external-data-escapes": "an external data path points outside the model's folder",
    "external-data-invalid": "an external data reference is malformed or runs past the file end",
    "factory-failed": "a --factory could not be imported or called, or returned no model",
    "export-failed": "a model built in process could not be exported to ONNX",
    "internal": "initaudit itself failed; rerun with --debug and report it",
}

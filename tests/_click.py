"""click's CliRunner with stdout and stderr kept apart on every click the project supports.

click 8.2 always keeps them apart (and dropped ``mix_stderr``); click 8.1 mixes stderr into
stdout unless told not to, and then ``result.stderr`` raises.
"""

from __future__ import annotations

import inspect

from click.testing import CliRunner


def runner() -> CliRunner:
    if "mix_stderr" in inspect.signature(CliRunner).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    return CliRunner()

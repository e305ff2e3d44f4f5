"""Running ``lookalike`` for CLI tests: in-process through typer's CliRunner, or as a real process.

In-process is the default (no interpreter or TensorFlow start per call); the exit statuses and error
lines are the installed command's, since the app itself translates failures. A real process is for
what only a process shows: a SIGKILL, import order, startup time.
"""

from __future__ import annotations

import os
import subprocess
import sys

from typer.testing import CliRunner, Result

from lookalike.cli.app import app


def _arg(value: object) -> str:
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def run(*args: object, input: bytes | str | None = None, env: dict[str, str] | None = None) -> Result:
    """``lookalike ARGS`` in this process; an exception other than an exit is a bug and is raised here."""
    result = CliRunner().invoke(app, [_arg(a) for a in args], input=input, env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def run_process(*args: object, stdin: bytes | None = None, env: dict | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m lookalike.cli ARGS`` in a subprocess, output as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "lookalike.cli", *(_arg(a) for a in args)],
        capture_output=True, input=stdin, env=env, timeout=timeout,
    )


def error_lines(result: Result) -> list[str]:
    """stderr's lines, checked to hold no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr.splitlines()

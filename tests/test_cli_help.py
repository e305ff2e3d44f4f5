"""`lookalike --help` and every command's help read like click's (sqlite-utils'): no type labels, lines
that fit 80 columns, the default index spelled out, an example where one helps."""

from __future__ import annotations

import re

import pytest

from lookalike.cli.app import app
from tests.cli import run

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)
WITH_EXAMPLES = set(COMMANDS) - {"info", "failures"}


@pytest.mark.parametrize("columns", ["80", "120"])
@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_has_no_type_labels_and_fits_80_columns(command, columns):
    result = run(*filter(None, [command]), "--help", env={"COLUMNS": columns})
    assert result.exit_code == 0 and result.stderr == ""
    assert not re.search(r"<[a-z][^>]*>", result.stdout), result.stdout  # <bool>, <list[str]>, <int range>
    assert max(map(len, result.stdout.splitlines())) <= 80, result.stdout
    assert "╭" not in result.stdout  # no rich panels
    if command in WITH_EXAMPLES:
        assert re.search(rf"^\s+lookalike {command}( |$)", result.stdout, re.MULTILINE), result.stdout


def test_the_index_option_names_its_default_and_the_threshold_its_calibrated_value():
    from lookalike.index.duplicates import DEFAULT_THRESHOLD

    text = " ".join(run("duplicates", "--help").stdout.split())
    assert "-i, --index DIR The index directory (default: ~/.local/share/lookalike/index)." in text
    assert f"(default: {DEFAULT_THRESHOLD}, calibrated" in text


def test_usage_names_arguments_in_capitals():
    assert run("index", "--help").stdout.splitlines()[0].endswith(" index [OPTIONS] PATH...")
    assert run("search", "--help").stdout.splitlines()[0].endswith(" search [OPTIONS] [IMAGE]...")
    missing = run("index", "/nonexistent/folder")
    assert missing.exit_code == 2
    assert "Error: Invalid value for 'PATH': path '/nonexistent/folder' does not exist." in missing.stderr

"""`lookalike labels`: the first command, run in-process as typer's CliRunner runs it.

The `--help` test runs a real process: its subject is what the process imports at startup.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli import error_lines, run

HELP_PROBE = """
import sys
from lookalike.cli import main
sys.argv = ["lookalike", "--help"]
try:
    main()
except SystemExit as exit:
    print("exit", exit.code, "loaded", sorted({"tensorflow", "faiss", "numpy"} & set(sys.modules)))
"""


def test_help_lists_the_commands_without_importing_tensorflow():
    done = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True, timeout=60)
    *help_text, last = done.stdout.rstrip().splitlines()
    assert last == "exit 0 loaded []", done.stdout + done.stderr
    assert any(line.strip(" │").startswith("labels ") for line in help_text)


def test_labels_json_for_good_and_bad_images(tf1_module, sample_photos, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    photo = str(sample_photos[0])
    result = run("labels", "--model", tf1_module, "-k", "3", "--json", photo, bad)
    assert result.exit_code == 3  # partial: one image failed, the others were still labelled
    records = json.loads(result.stdout_bytes)
    assert len(records[0]["labels"]) == 3
    assert records[1]["path"] == str(bad) and records[1]["error"]
    assert error_lines(result) == [f"error: {bad}: {records[1]['error']}"]


def test_labels_text_exit_status_follows_how_many_failed(tf1_module, sample_photos, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    good = run("labels", "--model", tf1_module, "-k", "2", sample_photos[0], sample_photos[1])
    assert good.exit_code == 0 and good.stderr == ""
    assert good.stdout.splitlines()[::3] == [str(sample_photos[0]), str(sample_photos[1])]
    mixed = run("labels", "--model", tf1_module, "-k", "2", sample_photos[0], bad)
    assert mixed.exit_code == 3 and mixed.stdout.splitlines()[0] == str(sample_photos[0])
    assert len(mixed.stdout.splitlines()) == 3
    (line,) = error_lines(mixed)
    assert line.startswith(f"error: {bad}: ")
    only_bad = run("labels", "--model", tf1_module, bad, tmp_path / "missing.jpg")
    assert only_bad.exit_code == 1 and only_bad.stdout == ""
    assert error_lines(only_bad)[1] == f"error: {tmp_path / 'missing.jpg'}: file not found"


def test_missing_model_directory_is_one_line_exit_1(tmp_path, sample_photos):
    result = run("labels", "--model", tmp_path / "nope", sample_photos[0])
    assert result.exit_code == 1
    assert len(error_lines(result)) == 1 and result.stderr.startswith("error:")


def test_usage_error_exits_2():
    assert run("labels", "-k", "0", "x.jpg").exit_code == 2

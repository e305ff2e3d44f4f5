"""`lookalike labels`: the first command, run as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys


def lookalike(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lookalike.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_help_lists_the_labels_command():
    result = lookalike("--help")
    assert result.returncode == 0 and "labels" in result.stdout


def test_labels_json_for_good_and_bad_images(tf1_module, sample_photos, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("hello")
    photo = str(sample_photos[0])
    result = lookalike("labels", "--model", str(tf1_module), "-k", "3", "--json", photo, str(bad))
    assert result.returncode == 1  # one image failed, the others were still labelled
    records = json.loads(result.stdout)
    assert len(records[0]["labels"]) == 3
    assert records[1]["path"] == str(bad) and records[1]["error"]
    assert f"error: {bad}:" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_model_directory_is_one_line_exit_1(tmp_path, sample_photos):
    result = lookalike("labels", "--model", str(tmp_path / "nope"), str(sample_photos[0]))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error:")


def test_usage_error_exits_2():
    assert lookalike("labels", "-k", "0", "x.jpg").returncode == 2

"""`lookalike index / search / find / info / failures`, run in-process as typer's CliRunner runs them.

The SIGKILL test runs real processes: the process is its subject.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import lookalike
from lookalike.index.report import human_size
from lookalike.index.vectors import saved_generation
from tests.cli import error_lines, run
from tests.photos import blocks, photo_folder


@pytest.fixture
def indexed(tmp_path, tf1_module):
    photos = photo_folder(tmp_path / "photos")
    index = tmp_path / "index"
    result = run("index", tmp_path / "photos", "--index", index, "--model", tf1_module)
    assert result.exit_code == 0, result.stderr
    assert f"added {len(photos)}, updated 0, unchanged 0, removed 0, failed 0" in result.stdout
    return index, photos


def test_an_index_run_refreshes_traits_an_older_lookalike_found(indexed, tmp_path):
    index, photos = indexed
    with sqlite3.connect(index / "lookalike.db") as conn:
        conn.execute("UPDATE images SET traits_version = NULL")
    conn.close()
    info = run("info", "--index", index).stdout
    assert f"stale traits  {len(photos)} (lookalike index finds them again)" in info
    note = run("duplicates", "--index", index).stderr
    assert f"note: {len(photos)} images have traits from an older lookalike" in note
    result = run("index", tmp_path / "photos", "--index", index)
    assert result.exit_code == 0, result.stderr
    assert (f"unchanged {len(photos)}, removed 0, failed 0 in " in result.stdout
            and f"(traits of {len(photos)} unchanged files found again)" in result.stdout)
    assert "found again" not in run("index", tmp_path / "photos", "--index", index).stdout
    assert "stale traits" not in run("info", "--index", index).stdout
    assert "older lookalike" not in run("duplicates", "--index", index).stderr


def test_search_prints_labels_then_ranked_neighbours(indexed):
    index, photos = indexed
    result = run("search", photos["cat-small"], "--index", index, "-k", "3")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert lines[0] == str(photos["cat-small"]) and lines[1].startswith("  labels: ")
    rank, score, path = lines[2].split()[:3]
    assert (rank, path) == ("1", str(photos["cat"])) and float(score) > 0.99
    assert len(lines) == 5


def test_search_json_csv_and_stdin(indexed):
    index, photos = indexed
    as_json = json.loads(run("search", "-", "--index", index, "--json",
                             input=photos["espresso-small"].read_bytes()).stdout_bytes)
    assert as_json[0]["query"] == "-"
    assert as_json[0]["neighbours"][0]["path"] in {str(photos["espresso"]), str(photos["espresso-small"])}
    table = list(csv.DictReader(io.StringIO(
        run("search", photos["rocket"], "--index", index, "--csv", "-k", "4").stdout
    )))
    assert [row["rank"] for row in table] == ["1", "2", "3", "4"]
    assert table[0]["path"] == str(photos["rocket-small"])  # the query itself is left out
    by_id = json.loads(run("search", "--id", as_json[0]["neighbours"][0]["id"], "--index", index,
                           "--json").stdout_bytes)
    assert by_id[0]["query_id"] == as_json[0]["neighbours"][0]["id"]


def test_stdin_longer_than_any_picture_is_one_line_not_read_to_its_end(indexed, monkeypatch):
    # ``lookalike search - < /dev/zero`` read zeros until memory ran out (22 GB in a minute).
    index, photos = indexed
    monkeypatch.setattr("lookalike.embedder.images.STREAM_MAX", 2**20)
    result = run("search", "-", photos["cat"], "--index", index, "-k", "1", input=bytes(3 * 2**20))
    assert result.exit_code == 3  # partial: the file's search is still answered
    assert error_lines(result) == ["error: -: more than 1 MB: no picture lookalike reads is that large"]
    assert str(photos["cat-small"]) in result.stdout


def test_find_info_and_failures(indexed, tmp_path):
    index, photos = indexed
    empty = tmp_path / "photos" / "empty.jpg"
    empty.write_bytes(b"")
    result = run("index", tmp_path / "photos", "--index", index)
    assert result.exit_code == 3  # partial: one file failed, the others are indexed
    assert "failed 1" in result.stdout
    assert error_lines(result) == [
        f"error: {empty}: empty file", f"see why: lookalike failures --index {index}"]
    failures = json.loads(run("failures", "--index", index, "--json").stdout_bytes)
    assert failures[0]["path"] == str(empty) and failures[0]["reason"] == "empty file"
    listed = run("failures", "--index", index).stdout.splitlines()
    assert len(listed) == 1 and listed[0].endswith(f"  {empty}: empty file")
    info = json.loads(run("info", "--index", index, "--json").stdout_bytes)
    assert (info["images"], info["failures"], info["index_type"]) == (len(photos), 1, "flat")
    shown = run("info", "--index", index).stdout.splitlines()
    assert f"size on disk  {human_size(info['disk_bytes'])}" in shown  # as duplicates and the page do
    found = run("find", "copies", "--index", index, "--json")
    assert len(json.loads(found.stdout_bytes)) == len([n for n in photos if n.endswith("-small")])


def test_expected_failures_are_one_line_with_exit_1(tmp_path, indexed):
    index, photos = indexed
    missing = run("search", tmp_path / "nope.jpg", "--index", index)
    assert missing.exit_code == 1
    assert error_lines(missing) == [f"error: {tmp_path / 'nope.jpg'}: file not found"]
    no_index = run("info", "--index", tmp_path / "no-index")
    assert no_index.exit_code == 1 and len(error_lines(no_index)) == 1
    assert "no lookalike index" in no_index.stderr
    unknown_id = run("search", "--id", "999999", "--index", index)
    assert unknown_id.exit_code == 1 and len(error_lines(unknown_id)) == 1
    assert "no image with id 999999" in unknown_id.stderr
    empty = tmp_path / "empty-index"
    assert run("index", tmp_path / "no-such-folder", "--index", empty).exit_code == 2
    assert not empty.exists()  # a typo in the folder does not leave an index behind
    lookalike.open(empty).close()
    nothing = run("search", photos["cat"], "--index", empty)
    assert nothing.exit_code == 1 and len(error_lines(nothing)) == 1
    assert "holds no images yet" in nothing.stderr


def test_usage_errors_exit_2(indexed):
    index, _ = indexed
    no_query = run("search", "--index", index)
    assert no_query.exit_code == 2
    assert error_lines(no_query) == ["error: give an IMAGE (a file, or - for stdin) or --id ID"]
    assert run("index").exit_code == 2


def killed_at_first_commit(args: list[str], database: Path, count: str, poll: float = 0.005) -> int:
    """Run ``args`` and SIGKILL it as soon as the ``count`` query finds something committed in
    ``database``; what it found then (0 if the run ended or two minutes passed first)."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found = 0
    deadline = time.monotonic() + 120
    while found == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(poll)
        if database.exists():
            try:
                with contextlib.closing(sqlite3.connect(database, timeout=1)) as db:
                    (found,) = db.execute(count).fetchone()
            except sqlite3.OperationalError:
                pass
    process.send_signal(signal.SIGKILL)
    process.wait()
    return found


def test_killed_run_resumes_without_duplicates_and_faiss_agrees(tmp_path, tf1_module):
    """SIGKILL in the middle of indexing, then run again: the job finishes, nothing twice, stores agree."""
    folder = tmp_path / "many"
    folder.mkdir()
    total = 800
    for seed in range(total):
        blocks(folder / f"{seed:04d}.png", seed, size=(96, 72))
    index = tmp_path / "index"
    args = [sys.executable, "-m", "lookalike.cli", "index", str(folder), "--index", str(index),
            "--model", str(tf1_module), "--commit-every", "20", "--batch-size", "10", "--quiet"]
    committed = killed_at_first_commit(args, index / "lookalike.db", "SELECT count(*) FROM images")
    assert 0 < committed < total, "the kill must land mid-run"

    resumed = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    added = int(resumed.stderr.split("added ")[1].split(",")[0])  # --quiet puts the summary on stderr
    assert added < total  # committed batches were not redone
    with sqlite3.connect(index / "lookalike.db") as db:
        count, distinct = db.execute("SELECT count(*), count(DISTINCT path) FROM images").fetchone()
    assert count == distinct == total
    col = lookalike.open(index)
    assert saved_generation(index) == col.store.generation  # the FAISS file on disk is current
    assert col._current_vectors().id_checksum() == col.store.id_checksum()
    col.close()

    # The refresh step (traits an older lookalike found) is killed the same way, and resumes too.
    with sqlite3.connect(index / "lookalike.db") as db:
        db.execute("UPDATE images SET traits_version = NULL")
    db.close()
    refreshed = killed_at_first_commit(args, index / "lookalike.db",
                                       "SELECT count(*) FROM images WHERE traits_version IS NOT NULL")
    assert 0 < refreshed < total, "the kill must land mid-refresh"
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    again = int(resumed.stderr.split("(traits of ")[1].split(" ")[0])
    assert again <= total - refreshed  # committed batches were not read again
    with lookalike.open(index) as col:
        assert col.stale_traits() == 0 and col.store.count() == total


KILLED_WHILE_SAVING = """
import os, sys
from lookalike.index import vectors
def dying(path):
    if path.name.endswith(".tmp"):  # the FAISS file written, not yet renamed into place
        os.kill(os.getpid(), 9)
vectors._fsync = dying
from lookalike.cli.app import app
app(sys.argv[1:])
"""


def test_a_run_killed_while_saving_faiss_leaves_no_temporary_file_for_good(tmp_path, sample_photos,
                                                                           tf1_module):
    """SIGKILL while the FAISS file is written: its temporary copy (as large as the index: gigabytes at a
    million images) stayed in the index folder, hidden, for good; the next save removes it."""
    index = tmp_path / "index"
    args = ["index", *sample_photos, "--index", index, "--model", tf1_module, "-q"]
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, *map(str, args)], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = [p.name for p in index.iterdir() if p.name.endswith(".tmp")]
    assert left and all(name.startswith(".vectors.faiss.") for name in left)

    again = run(*args)
    assert again.exit_code == 0, again.stderr
    assert not [p.name for p in index.iterdir() if p.name.endswith(".tmp")]
    with lookalike.open(index) as col:
        assert saved_generation(index) == col.store.generation and col.store.count() == len(sample_photos)

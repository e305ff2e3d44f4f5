"""Exit statuses and error lines of `lookalike` (lookalike/cli/exits.py), in-process through CliRunner.

0 done, 1 failed (or every input of a batch failed), 2 usage, 3 partial (some inputs of a batch failed,
every good result printed, indexed, moved or restored), 130 interrupted. Errors are one line on stderr.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lookalike.cli import exits
from lookalike.errors import (
    CollectionError,
    ImageError,
    InvalidOption,
    LookalikeError,
    ModelError,
    NoSpace,
    WriterBusy,
)
from lookalike.paths import display
from tests.cli import error_lines, run, run_process
from tests.duplicate_photos import THRESHOLD, duplicate_folder
from tests.photos import blocks, photo_folder


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tf1_module):
    """An index of photo_folder, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("exits")
    photos = photo_folder(root / "photos")
    index = root / "index"
    result = run("index", root / "photos", "--index", index, "--model", tf1_module, "-q")
    assert result.exit_code == 0, result.stderr
    bad = root / "notes.jpg"
    bad.write_text("not an image")
    return index, photos, bad


# -- the table ---------------------------------------------------------------------------------------


def test_the_table_maps_types_to_statuses():
    assert exits.status(InvalidOption("--keep", "unknown criterion")) == exits.USAGE == 2
    for error in (CollectionError("x"), ModelError("x"), ImageError("a.jpg", "empty file"), WriterBusy("x"),
                  NoSpace("x"), LookalikeError("x")):
        assert exits.status(error) == exits.FAILURE == 1
    assert (exits.batch_status(5, 0), exits.batch_status(5, 2), exits.batch_status(0, 2)) == (0, 3, 1)
    assert exits.batch_status(0, 0) == 0  # nothing to do is not a failure


@pytest.mark.parametrize("error", [
    sqlite3.OperationalError("database or disk is full"),
    OSError(errno.ENOSPC, "No space left on device", "/idx/vectors.faiss.tmp"),
    OSError(errno.EDQUOT, "Disk quota exceeded"),
    RuntimeError("Error in void faiss::write_index(...) at faiss/impl/io.cpp:120: Error: 'ret == (n)' "
                 "failed: write error in /idx/vectors.faiss.tmp: 28 (No space left on device)\n"),
])
def test_a_full_disk_is_expected_wherever_it_escapes_from(error):
    failure = exits.expected(error)
    assert isinstance(failure, NoSpace) and exits.status(failure) == 1
    assert "\n" not in exits.message(failure) and "free some space" in str(failure)


@pytest.mark.parametrize("error", [
    sqlite3.OperationalError("no such table: images"), OSError(errno.EACCES, "Permission denied"),
    RuntimeError("boom"), ValueError("x"), KeyError("x"),
])
def test_anything_else_is_a_bug(error):
    assert exits.expected(error) is None


def test_messages_are_one_printable_line():
    assert exits.message(CollectionError("cannot open /x/a\nb\x1b[2J: gone")) == (
        "cannot open /x/a\\nb\\x1b[2J: gone")


def test_no_index_says_how_to_create_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("LOOKALIKE_INDEX", raising=False)
    default = tmp_path / "data" / "lookalike" / "index"
    assert error_lines(run("search", "x.jpg")) == [
        f"error: no lookalike index in {default} (missing lookalike.db); "
        "create one with: lookalike index FOLDER"]
    elsewhere = tmp_path / "my photos"
    assert error_lines(run("info", "--index", elsewhere)) == [
        f"error: no lookalike index in {elsewhere} (missing lookalike.db); "
        f"create one with: lookalike index FOLDER --index '{elsewhere}'"]


def test_undo_with_no_index_found_says_to_name_the_one_the_files_left(tmp_path, monkeypatch):
    """A new index is no help to undo (the files go back into the index they were moved from), and its
    error gave no hint at all of --index."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("LOOKALIKE_INDEX", raising=False)
    manifest = tmp_path / "manifest-20261126T101500.jsonl"
    manifest.write_text("")
    default = tmp_path / "data" / "lookalike" / "index"
    for args, where in [([], default), (["--index", tmp_path / "gone"], tmp_path / "gone")]:
        result = run("undo", manifest, *args)
        assert (result.exit_code, error_lines(result)) == (1, [
            f"error: no lookalike index in {where} (missing lookalike.db); undo puts files back into the "
            "index they were moved from: lookalike undo MANIFEST --index DIR"])
    assert not default.exists() and not (tmp_path / "gone").exists()


def test_another_model_than_the_index_s_says_what_to_do(indexed, tmp_path, tf2_module):
    index, photos, _ = indexed
    new = tmp_path / "new"
    new.mkdir()
    blocks(new / "new.png", 7)
    result = run("index", new, "--index", index, "--model", tf2_module, "-q")
    assert result.exit_code == 1
    (line,) = error_lines(result)
    assert "refusing vectors from" in line
    assert line.endswith("; leave out --model (an index remembers its own) or use another --index")


# -- through the app: one line, the status, in-process as in a real process ---------------------------


@pytest.mark.parametrize("error, line", [
    (sqlite3.OperationalError("database or disk is full"),
     "error: no space left on device: the index database could not be written: "
     "free some space and run the command again"),
    (OSError(errno.ENOSPC, "No space left on device", "/idx/vectors.faiss.tmp"),
     "error: no space left on device: /idx/vectors.faiss.tmp: free some space and run the command again"),
    (RuntimeError("Error in faiss::write_index: write error in /idx/v: 28 (No space left on device)"),
     "error: no space left on device: the vector index could not be written: "
     "free some space and run the command again"),
    (NoSpace("no space left to commit 256 images to /idx/lookalike.db: free some and try again"),
     "error: no space left to commit 256 images to /idx/lookalike.db: free some and try again"),
])
def test_a_full_disk_is_one_line_and_exit_1(monkeypatch, tmp_path, sample_photos, error, line):
    def full(self, *args, **kwargs):
        raise error

    monkeypatch.setattr("lookalike.index.collection.Collection.add", full)
    result = run("index", sample_photos[0], "--index", tmp_path / "index", "-q")
    assert result.exit_code == 1 and error_lines(result) == [line]


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path, sample_photos):
    def broken(self, *args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("lookalike.index.collection.Collection.add", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        run("index", sample_photos[0], "--index", tmp_path / "index", "-q")


def test_ctrl_c_is_interrupted_130(monkeypatch, tmp_path, sample_photos):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("lookalike.index.collection.Collection.add", interrupted)
    result = run("index", sample_photos[0], "--index", tmp_path / "index", "-q")
    assert result.exit_code == 130 and error_lines(result) == ["interrupted"]


def test_a_real_process_exits_and_reports_as_the_app_does_in_process(tmp_path):
    for args in (["info", "--index", tmp_path / "no-index"],  # an expected failure
                 ["search", "--index", tmp_path / "no-index"],  # our own usage error
                 ["undo", tmp_path / "no-manifest.jsonl", "--index", tmp_path / "no-index"]):
        inside, outside = run(*args), run_process(*args, timeout=60)
        assert (outside.returncode, outside.stderr.decode()) == (inside.exit_code, inside.stderr)
        assert len(error_lines(inside)) == 1 and inside.exit_code in (1, 2)


def test_bad_index_type_and_keeper_policy_are_usage_errors(tmp_path, sample_photos, indexed):
    index, _, _ = indexed
    kind = run("index", sample_photos[0], "--index", tmp_path / "new", "--index-type", "bogus")
    assert kind.exit_code == 2 and len(error_lines(kind)) == 1 and "bogus" in kind.stderr
    assert not (tmp_path / "new").exists()
    keep = run("duplicates", "--index", index, "--keep", "bogus")
    assert keep.exit_code == 2 and len(error_lines(keep)) == 1 and "bogus" in keep.stderr


EMPTY = "is empty: an empty path names no file or folder (for the current folder, give .)"


def test_an_empty_path_is_a_usage_error_never_the_current_folder(indexed, tmp_path, sample_photos,
                                                                  monkeypatch):
    """``Path("")`` is ``.``: ``lookalike index ""`` (a shell variable that was not set) indexed the folder
    the shell stood in, and ``--index ""`` made an index there."""
    index, photos, _ = indexed
    here = tmp_path / "here"
    here.mkdir()
    shutil.copy(sample_photos[0], here)
    monkeypatch.chdir(here)
    images = json.loads(run("info", "--index", index, "--json").stdout)["images"]
    for args, name in [
        (["index", ""], "PATH"), (["index", photos["cat"], "", "--index", tmp_path / "new"], "PATH"),
        (["index", photos["cat"], "--index", ""], "--index"), (["info", "--index", ""], "--index"),
        (["search", ""], "IMAGE"), (["labels", ""], "IMAGE"), (["find", "cat", "--index="], "--index"),
        (["duplicates", "--against", ""], "--against"),
        (["duplicates", "--exact", "--move-to", ""], "--move-to"),
        (["duplicates", "--html", ""], "--html"), (["undo", ""], "MANIFEST"),
        (["serve", "--quarantine", ""], "--quarantine"), (["serve", "--upload-dir", ""], "--upload-dir"),
    ]:
        if args[0] != "labels" and "--index" not in args and "--index=" not in args:
            args = [*args, "--index", index]
        result = run(*args)
        assert (result.exit_code, error_lines(result)) == (2, [f"error: {name} {EMPTY}"]), args
    assert os.listdir(here) == [sample_photos[0].name] and not (tmp_path / "new").exists()
    assert json.loads(run("info", "--index", index, "--json").stdout)["images"] == images


def test_the_library_refuses_an_empty_path_too(indexed, tmp_path, sample_photos, monkeypatch):
    import lookalike

    index, _, _ = indexed
    here = tmp_path / "here"
    here.mkdir()
    shutil.copy(sample_photos[0], here)
    monkeypatch.chdir(here)
    with pytest.raises(InvalidOption, match=f"^--index {re.escape(EMPTY)}"):
        lookalike.open("")
    with lookalike.open(index) as col:
        images = col.info().images
        for call, name in [(lambda: col.add(""), "PATH"), (lambda: col.add([here, b""]), "PATH"),
                           (lambda: col.search(""), "IMAGE"), (lambda: col.undo(""), "MANIFEST"),
                           (lambda: col.duplicates(against=""), "--against")]:
            with pytest.raises(InvalidOption, match=f"^{name} {re.escape(EMPTY)}"):
                call()
        assert col.info().images == images
    assert os.listdir(here) == [sample_photos[0].name]


def test_the_library_takes_bytes_paths_as_python_does(indexed, tmp_path, tf1_module):
    """``open(b"...")`` works all over Python (a name that is not UTF-8 can only be given so); here it
    was a bare TypeError from ``Path(b"...")`` for the index, ``--against``, ``--move-to``, the
    manifest and the report."""
    import lookalike
    from lookalike.index.report import html_report

    _, photos, _ = indexed
    pictures = tmp_path / os.fsdecode(b"pictures-\xfe")
    pictures.mkdir()
    for name in ("cat.jpg", "cat copy.jpg"):
        shutil.copy(photos["cat"], pictures / name)
    with lookalike.open(os.fsencode(tmp_path / os.fsdecode(b"\xff-index")), model=str(tf1_module)) as col:
        assert col.add(os.fsencode(pictures)).added == 2
        image = col.get_by_path(os.fsencode(pictures / "cat.jpg"))
        assert col.search(pictures / "cat.jpg", k=1).query_id == image.id  # bytes there are an encoded image
        assert len(col.duplicates(against=os.fsencode(photos["cat"].parent), exact_only=True)) == 1
        moved = col.move_duplicates(col.duplicates(exact_only=True), os.fsencode(tmp_path / "q\udcfd"))
        assert len(moved.moved) == 1 and len(os.listdir(pictures)) == 1
        assert len(col.undo(os.fsencode(moved.manifest)).restored) == 1
        assert sorted(os.listdir(pictures)) == ["cat copy.jpg", "cat.jpg"] and col.info().images == 2
    assert {b"\xff-index", b"q\xfd"} <= set(os.listdir(os.fsencode(tmp_path)))
    report = os.fsencode(tmp_path) + b"/r\xe9port.html"
    assert html_report([], report) == Path(os.fsdecode(report)) and os.path.isfile(report)


NUL = "holds a NUL byte, which no file name can"


def test_a_nul_byte_in_a_path_is_refused_as_a_bad_argument(indexed, tmp_path):
    """No file name holds a NUL byte: the OS call refused it with a bare ValueError, a traceback to
    anyone who had caught the library's errors."""
    import lookalike
    from lookalike.index.report import html_report

    index, photos, _ = indexed
    for bad in ("a\0b", b"a\0b", tmp_path / "a\0b"):
        with pytest.raises(InvalidOption, match=f"^--index {NUL}: (.*/)?a\\\\x00b$"):
            lookalike.open(bad)
    with lookalike.open(index) as col:
        images = col.info().images
        for call, name in [(lambda: col.add(["x\0"]), "PATH"),
                           (lambda: col.add([photos["cat"], b"\0"]), "PATH"),
                           (lambda: col.search("x\0.jpg"), "IMAGE"), (lambda: col.get_by_path("x\0"), "PATH"),
                           (lambda: col.duplicates(against="x\0"), "--against"),
                           (lambda: col.move_duplicates([], "x\0"), "--move-to"),
                           (lambda: col.undo("x\0"), "MANIFEST"), (lambda: html_report([], "x\0"), "--html")]:
            with pytest.raises(InvalidOption, match=f"^{name} {NUL}: .*x00"):
                call()
        assert col.info().images == images
    assert sorted(os.listdir(tmp_path)) == []


def test_a_report_or_quarantine_that_cannot_be_made_is_a_usage_error_before_the_run(indexed, tmp_path,
                                                                                    monkeypatch):
    index, _, _ = indexed
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    folder = tmp_path / "reports"
    folder.mkdir()
    unplugged = tmp_path / "usb"
    unplugged.symlink_to(tmp_path / "media" / "usb")
    monkeypatch.chdir(tmp_path)
    for args, line in [
        (["--move-to", notes], f"cannot move copies into {notes}: {notes} is a file, not a folder"),
        (["--move-to", unplugged], f"cannot move copies into {unplugged}: {unplugged} is a link to "
                                   f"{tmp_path / 'media' / 'usb'}, which does not exist"),
        (["--move-to", notes / "sub"],
         f"cannot move copies into {notes / 'sub'}: {notes} is a file, not a folder"),
        (["--html", folder], f"cannot write the report to {folder}: it is a folder"),
        (["--html", tmp_path / "missing" / "r.html"],
         f"cannot write the report to {tmp_path / 'missing' / 'r.html'}: no folder {tmp_path / 'missing'}"),
    ]:
        result = run("duplicates", "--index", index, *args)
        assert result.exit_code == 2 and error_lines(result) == [f"error: {line}"]
    assert sorted(os.listdir(tmp_path)) == ["notes.txt", "reports", "usb"]  # no half report, no folder made
    assert notes.read_text() == "notes" and os.listdir(folder) == []


def test_a_server_quarantine_that_cannot_be_one_is_refused_at_start(indexed, tmp_path):
    index, _, _ = indexed
    folder = index.parent  # holds the photos and the index: no quarantine
    result = run("serve", "--index", index, "--quarantine", folder)
    assert result.exit_code == 2
    assert error_lines(result) == [f"error: cannot move copies into {folder}: {folder} already holds "
                                   "files and is not a lookalike quarantine: choose a new or empty folder (a "
                                   "quarantine is hidden from indexing, and its files with it)"]
    unplugged = tmp_path / "usb"
    unplugged.symlink_to(tmp_path / "media" / "usb")
    result = run("serve", "--index", index, "--quarantine", unplugged)
    assert result.exit_code == 2
    assert error_lines(result) == [f"error: cannot move copies into {unplugged}: {unplugged} is a link to "
                                   f"{tmp_path / 'media' / 'usb'}, which does not exist"]


def test_moving_or_deleting_from_an_index_that_cannot_be_written_is_refused_before_the_search(
        indexed, tmp_path, monkeypatch):
    from lookalike.index.collection import Collection

    index, _, _ = indexed
    monkeypatch.setattr(Collection, "read_only", property(lambda self: "read-only file system"))
    monkeypatch.setattr(Collection, "duplicates", lambda *args, **kwargs: pytest.fail("searched first"))
    for action in (["--move-to", tmp_path / "q"], ["--delete", "--yes"]):
        result = run("duplicates", "--index", index, *action)
        assert result.exit_code == 1
        assert error_lines(result) == [f"error: {index} can be read but not written (read-only file system): "
                                       "copies cannot be moved or deleted from it"]


def test_a_minimum_score_no_cosine_reaches_is_a_usage_error_not_an_empty_answer(indexed):
    index, _, _ = indexed
    for score in ("nan", "5"):
        result = run("search", "--id", "1", "--index", index, "--min-score", score)
        assert result.exit_code == 2 and result.stdout == ""
        assert error_lines(result) == [f"error: the minimum score must be in [-1, 1], not {float(score)!r}"]


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "*", "_", '"', "-- ..."])
def test_a_text_without_a_word_is_a_usage_error_not_no_matches(indexed, text):
    """The full-text index matches words (letters or digits): ``find ""`` (an unset shell variable) or
    ``find "*"`` matched nothing by construction and answered "no matches", as if the index had been
    searched; ``--label " "`` let no neighbour through, and ``--label ""`` filtered nothing."""
    import lookalike

    index, _, _ = indexed
    for args, name in [(["find", "--", text], "TEXT"), (["search", "--id", "1", "--label", text], "--label")]:
        result = run(args[0], "--index", index, *args[1:])
        assert result.exit_code == 2 and result.stdout == "", args
        assert error_lines(result) == [f"error: {name} holds no word to match (letters or digits): "
                                       f"{display(repr(text))}"]
    with lookalike.open(index) as col:
        for call in (lambda: col.find(text), lambda: col.search_id(1, label=text)):
            with pytest.raises(InvalidOption, match="holds no word to match"):
                call()


def test_a_word_in_any_script_is_still_searched(indexed):
    import lookalike

    index, _, _ = indexed
    for text in ("猫", "été", "tabby!", "a"):
        result = run("find", text, "--index", index)
        assert result.exit_code == 0 and error_lines(result) in ([], ["no matches"]), text

    with lookalike.open(index) as col, pytest.raises(InvalidOption, match="holds no word"):
        col.find(None)


def test_an_id_beyond_what_the_index_can_hold_is_no_such_image(indexed):
    index, _, _ = indexed
    result = run("search", "--id", "99999999999999999999", "--index", index)
    assert result.exit_code == 1
    assert error_lines(result) == [
        f"error: id 99999999999999999999: no image with id 99999999999999999999 in {index}"]


# -- batches: every good result, each bad input on stderr, 3 (or 1 when nothing succeeded) -------------


def test_search_prints_every_good_result_and_reports_each_bad_one(indexed):
    index, photos, bad = indexed
    cat, rocket = photos["cat-small"], photos["rocket-small"]
    text = run("search", cat, bad, rocket, "--index", index, "-k", "2")
    assert text.exit_code == 3
    lines = text.stdout.splitlines()
    assert [line for line in lines if not line.startswith("  ")] == [str(cat), str(rocket)]
    assert len(lines) == 2 * 4
    (problem,) = error_lines(text)
    assert problem.startswith(f"error: {bad}: ")

    as_json = run("search", cat, bad, "--index", index, "-k", "2", "--json")
    assert as_json.exit_code == 3
    good, failed = json.loads(as_json.stdout_bytes)
    assert good["query"] == str(cat) and len(good["neighbours"]) == 2
    assert failed == {"query": str(bad), "error": problem.split(": ", 2)[2]}
    assert error_lines(as_json) == [problem]

    as_csv = run("search", bad, rocket, "--index", index, "-k", "2", "--csv")
    assert as_csv.exit_code == 3 and error_lines(as_csv) == [problem]
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["query"], r["rank"]) for r in rows] == [(str(rocket), "1"), (str(rocket), "2")]


def test_search_from_an_unknown_id_and_a_good_file_is_partial(indexed):
    index, photos, _ = indexed
    result = run("search", "--id", "999999", photos["cat"], "--index", index, "--json")
    assert result.exit_code == 3
    failed, good = json.loads(result.stdout_bytes)
    assert failed["query"] == "id 999999" and "no image with id 999999" in failed["error"]
    assert good["query"] == str(photos["cat"]) and good["neighbours"]


def test_search_where_every_input_failed_exits_1(indexed, tmp_path):
    index, _, bad = indexed
    result = run("search", bad, tmp_path / "missing.jpg", "--index", index, "--json")
    assert result.exit_code == 1
    assert [r["query"] for r in json.loads(result.stdout_bytes)] == [str(bad), str(tmp_path / "missing.jpg")]
    assert error_lines(result)[1] == f"error: {tmp_path / 'missing.jpg'}: file not found"


def test_index_where_every_file_failed_exits_1(tmp_path, tf1_module):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.png").write_text("hello")
    result = run("index", folder, "--index", tmp_path / "index", "--model", tf1_module)
    assert result.exit_code == 1
    assert "added 0, updated 0, unchanged 0, removed 0, failed 2" in result.stdout
    lines = error_lines(result)
    assert sorted(lines[:2])[0] == f"error: {folder / 'empty.jpg'}: empty file"
    assert lines[2] == f"see why: lookalike failures --index {tmp_path / 'index'}"


def test_index_lists_the_first_failures_and_counts_the_rest(tmp_path, tf1_module, sample_photos):
    folder = tmp_path / "many"
    folder.mkdir()
    shutil.copy2(sample_photos[0], folder)
    for n in range(23):
        (folder / f"empty{n:02d}.jpg").write_bytes(b"")
    result = run("index", folder, "--index", tmp_path / "index", "--model", tf1_module)
    assert result.exit_code == 3
    lines = error_lines(result)
    assert len(lines) == 20 + 2 and lines[20] == "... and 3 more"


def test_duplicates_move_with_a_problem_is_partial_and_undo_is_clean(tmp_path, tf1_module):
    files = duplicate_folder(tmp_path / "photos")
    index = tmp_path / "index"
    assert run("index", tmp_path / "photos", "--index", index, "--model", tf1_module, "-q").exit_code == 0
    changed = files["cat-copy"]
    with open(changed, "ab") as f:
        f.write(b"\0")  # changed since it was indexed: left alone, reported
    moved = run("duplicates", "--index", index, "--threshold", THRESHOLD, "--move-to", tmp_path / "q")
    assert moved.exit_code == 3
    assert moved.stdout.splitlines()[-1].startswith("moved 3 copies; undo: lookalike undo ")
    assert error_lines(moved) == [f"error: {changed}: changed since it was indexed"]
    manifest = moved.stdout.splitlines()[-1].rsplit(" ", 1)[1]
    undone = run("undo", manifest, "--index", index)
    assert (undone.exit_code, undone.stdout, undone.stderr) == (0, "restored 3 files\n", "")
    assert os.path.exists(changed)


def _interruptible() -> None:
    """In a child before it starts: Ctrl-C as a terminal delivers it. A test run that a script started in
    the background (``pytest &``) ignores SIGINT, as POSIX shells make asynchronous commands do, and a
    child inherits that: it ran on to exit 0 and the test failed, only when run that way."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the dropped one
def test_a_ctrl_c_that_python_drops_in_a_finaliser_still_ends_the_command_interrupted(
        tmp_path, tf1_module, monkeypatch):
    """A KeyboardInterrupt raised while a ``__del__`` runs is printed as "Exception ignored" and
    dropped; the command must still end "interrupted", 130, not 0 as if nothing had happened. Ctrl-C
    as a terminal gives it, even in a test run started in the background (see :func:`_interruptible`)."""
    index = tmp_path / "index"
    photo_folder(tmp_path / "photos")
    assert run("index", tmp_path / "photos", "--index", index, "--model", tf1_module, "-q").exit_code == 0
    from lookalike.index.collection import Collection

    class InterruptedWhileFinalised:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, inside the finaliser

    original_info = Collection.info

    def info(self):
        InterruptedWhileFinalised()  # finalised at once: the interrupt lands inside __del__
        return original_info(self)

    monkeypatch.setattr(Collection, "info", info)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    unblocked = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        result = run("info", "--index", index)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back as it was
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
    assert (result.exit_code, result.stderr.splitlines()[-1:]) == (exits.INTERRUPTED, ["interrupted"])


def test_ctrl_c_in_a_real_process_is_one_line_130_and_keeps_what_was_committed(tmp_path, tf1_module):
    """SIGINT mid-run (the process is the subject: the signal must reach the app, not a TF thread). The
    indexer is held (SIGSTOP) while the test reads the index and signals it, so on a loaded machine it
    cannot finish its pictures between the first commit the test sees and the signal."""
    folder = tmp_path / "many"
    folder.mkdir()
    for seed in range(PICTURES := 1000):
        blocks(folder / f"{seed:04d}.png", seed, size=(96, 72))
    index = tmp_path / "index"
    args = [sys.executable, "-m", "lookalike.cli", "index", folder, "--index", index, "--model", tf1_module,
            "--commit-every", "20", "--batch-size", "10", "--quiet"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=_interruptible)
    committed, deadline = 0, time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
        if not (index / "lookalike.db").exists():
            continue  # connecting would create it under the indexer
        process.send_signal(signal.SIGSTOP)
        try:
            with sqlite3.connect(index / "lookalike.db", timeout=1) as db:
                committed = db.execute("SELECT count(*) FROM images").fetchone()[0]
        except sqlite3.OperationalError:
            pass  # held while it had the database locked: let it go on and look again
        if committed:
            break
        process.send_signal(signal.SIGCONT)
    process.send_signal(signal.SIGINT)  # pending while held: it lands as soon as the indexer goes on
    process.send_signal(signal.SIGCONT)
    out, err = process.communicate(timeout=120)
    assert 0 < committed < PICTURES, "the signal must land mid-run"
    assert (process.returncode, out, err.decode().splitlines()[-1:]) == (130, b"", ["interrupted"])
    assert "Traceback" not in err.decode()
    resumed = run("index", folder, "--index", index, "-q")
    assert resumed.exit_code == 0 and int(resumed.stderr.split("added ")[1].split(",")[0]) < PICTURES

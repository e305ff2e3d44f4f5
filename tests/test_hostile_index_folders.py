"""``--index`` naming a folder that is not an index: someone's project folder, another program's
``lookalike.db``, a file, hand-edited metadata. Nothing of theirs is written, and each is one line,
status 1; what is a lookalike index (of any release, missing its FAISS files, half created) still opens.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lookalike.errors import IndexDamaged
from lookalike.index.store import DB_NAME, SCHEMA_VERSION, Store
from tests.cli import error_lines, run

RESTORE = "restore it from a backup, or move the folder aside and index your folders again"
NOT_EMPTY = ("a new index is made only in a new or empty folder (hidden files such as .DS_Store do not "
             "count); nothing was written")


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes: what must not change."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_holding_other_files_is_never_made_an_index(tmp_path, sample_photos):
    project = tmp_path / "project"
    project.mkdir()
    (project / "vectors.json").write_text('{"my": "precious embeddings"}')  # names an index would write
    (project / "vectors.faiss").write_bytes(b"my faiss")
    (project / "notes.txt").write_text("notes")
    (project / "train.py").write_text("")
    before = files_in(project)

    for args in (["index", sample_photos[0]], ["info"], ["search", sample_photos[0]], ["duplicates"]):
        result = run(*args, "--index", project)
        assert result.exit_code == 1
        assert error_lines(result) == [
            f"error: {project} is not a lookalike index and holds other files (notes.txt, train.py, "
            f"vectors.faiss and 1 more): {NOT_EMPTY}"]
    assert files_in(project) == before


def test_another_programs_sqlite_file_named_lookalike_db_is_refused_and_left_as_it_was(tmp_path,
                                                                                       sample_photos):
    app = tmp_path / "app"
    app.mkdir()
    conn = sqlite3.connect(app / DB_NAME)
    conn.execute("CREATE TABLE failures (path TEXT, reason TEXT, failed_at TEXT, customer TEXT)")
    conn.execute("INSERT INTO failures VALUES ('/x', 'late', '2020', 'ACME Corp')")
    conn.commit()
    conn.close()
    before = files_in(app)

    for args in (["index", sample_photos[0]], ["info"], ["failures"]):
        result = run(*args, "--index", app)
        assert result.exit_code == 1
        assert error_lines(result) == [
            f"error: {app / DB_NAME} is another program's database (tables failures), not a lookalike index: "
            "it was left as it was; a new index goes in a new or empty folder"]
    assert files_in(app) == before  # same bytes: no WAL switched on, no table added, none migrated


def test_a_new_index_goes_in_a_missing_or_empty_folder_hidden_files_and_lost_found_aside(
        tmp_path, sample_photos, tf1_module):
    disk = tmp_path / "new-disk"  # a fresh file system, shown once in a file manager
    (disk / "lost+found").mkdir(parents=True)
    (disk / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    missing = tmp_path / "not" / "yet"
    for index in (disk, missing):
        result = run("index", sample_photos[0], "--index", index, "--model", tf1_module, "-q")
        assert result.exit_code == 0, result.stderr
        assert (index / DB_NAME).is_file()
    assert (disk / ".DS_Store").read_bytes() == b"\0\0\0\1Bud1"


def test_an_index_that_lost_its_faiss_files_opens_and_rebuilds_them(tmp_path, sample_photos, tf1_module):
    index = tmp_path / "index"
    assert run("index", *sample_photos, "--index", index, "--model", tf1_module, "-q").exit_code == 0
    (index / "vectors.faiss").unlink()
    (index / "vectors.json").unlink()
    info = run("info", "--index", index, "--json")
    assert info.exit_code == 0 and json.loads(info.stdout)["images"] == len(sample_photos)
    assert run("index", *sample_photos, "--index", index, "-q").exit_code == 0
    assert (index / "vectors.faiss").is_file() and (index / "vectors.json").is_file()


def test_a_creation_killed_before_it_named_its_schema_is_finished_by_the_next_open(tmp_path, monkeypatch):
    index = tmp_path / "index"

    def killed(self, key, value):
        if key == "schema_version":
            raise KeyboardInterrupt  # the tables are there, the version is not: a kill right here
        original(self, key, value)

    original = Store._set_meta
    monkeypatch.setattr(Store, "_set_meta", killed)
    with pytest.raises(KeyboardInterrupt):
        Store.open(index)
    monkeypatch.setattr(Store, "_set_meta", original)
    with Store.open(index) as store:
        assert store.get_meta("schema_version") == SCHEMA_VERSION and store.count() == 0


def test_a_creation_that_waited_for_another_one_finds_the_index_made_and_leaves_it_whole(tmp_path,
                                                                                        monkeypatch):
    """Two processes creating one index: the second found no index, then waited for the writer lock
    while the first made and upgraded it, and made the first schema over it again (schema_version 1), so
    upgrading it failed with "duplicate column name: path_bytes", for that run and every one after."""
    index = tmp_path / "index"
    original = Store.writer

    def the_other_creation_first(self, wait=0.0):
        if not others:
            others.append(1)
            Store.open(index).close()  # made and upgraded while this one waits for the lock
        return original(self, wait)

    others: list[int] = []
    monkeypatch.setattr(Store, "writer", the_other_creation_first)
    with Store.open(index) as store:
        assert others and store.get_meta("schema_version") == SCHEMA_VERSION and store.count() == 0
    monkeypatch.setattr(Store, "writer", original)
    with Store.open(index) as store:
        assert store.get_meta("schema_version") == SCHEMA_VERSION


def test_two_index_runs_making_one_index_at_once_leave_one_whole_index(tmp_path, sample_photos, tf1_module):
    """The same race between real processes: each run ends indexed or busy, and the index opens after."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sample_photos:
        (photos / photo.name).write_bytes(photo.read_bytes())
    for trial in range(3):
        index = tmp_path / f"index{trial}"
        runs = [subprocess.Popen([sys.executable, "-m", "lookalike.cli", "index", photos, "--index", index,
                                  "--model", tf1_module, "-q"], stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        for process in runs:
            _, err = process.communicate(timeout=300)
            busy = "is being written by pid" in err
            assert process.returncode == 0 or (process.returncode == 1 and busy), err
        info = run("info", "--index", index, "--json")
        assert info.exit_code == 0 and json.loads(info.stdout)["images"] == len(sample_photos), info.stderr


TRIALS = 30
OPEN_ON_GO = """
import sys, time
from pathlib import Path
from lookalike.index.store import Store
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
Store.open(sys.argv[1]).close()
"""


@pytest.mark.slow  # about 40 s: thirty rounds of four processes
def test_processes_opening_one_new_index_at_the_same_moment_all_open_it(tmp_path):
    """Processes started together, each opening a new index the moment a file appears: every one opens it.
    The second used to fail with "database is locked" (SQLite does not wait for a switch to WAL, which ran
    before the writer lock), or to find the first one's database in the folder between its two looks and
    call the folder someone else's."""
    for trial in range(TRIALS):
        index, go = tmp_path / f"index{trial}", tmp_path / f"go{trial}"
        runs = [subprocess.Popen([sys.executable, "-c", OPEN_ON_GO, index, go], stderr=subprocess.PIPE,
                                 text=True)
                for _ in range(4)]
        time.sleep(1.0)  # each has imported lookalike and waits
        go.touch()
        for process in runs:
            _, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
        with Store.open(index) as store:
            assert store.get_meta("schema_version") == SCHEMA_VERSION and store.count() == 0


def test_a_file_where_the_index_folder_or_its_database_should_be_is_one_line(tmp_path, sample_photos):
    notes = tmp_path / "notes.txt"
    notes.write_text("notes")
    for args in (["index", sample_photos[0], "--index", notes], ["info", "--index", notes],
                 ["index", sample_photos[0], "--index", notes / "sub"]):
        result = run(*args)
        assert result.exit_code == 1
        assert error_lines(result) == [  # and no advice to run `index --index` on it
            f"error: {notes} is a file, not a folder: an index is a folder holding lookalike.db "
            "(a new one goes in a new or empty folder)"]
    assert notes.read_text() == "notes"

    odd = tmp_path / "odd"
    (odd / DB_NAME).mkdir(parents=True)
    result = run("index", sample_photos[0], "--index", odd)
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: {odd / DB_NAME} is not a file: {odd} is not a lookalike index"]


@pytest.mark.parametrize("key, stored, line", [
    ("created", "x", f" ({DB_NAME}: its meta value 'created': 'x' is not JSON): {RESTORE}"),
    ("schema_version", "x", f" ({DB_NAME}: its meta value 'schema_version': 'x' is not JSON): {RESTORE}"),
    ("index_type", "5", f" ({DB_NAME}: its meta value 'index_type': '5' is not an index type): {RESTORE}"),
    ("model", '{"handle": "tf1"}',
     f""" ({DB_NAME}: its meta value 'model': '{{"handle": "tf1"}}' is not a model fingerprint): """
     f"{RESTORE}"),
    ("schema_version", '"abc"', ': its schema version "abc" is none lookalike writes (edited by hand?)'),
    ("schema_version", "0", ": its schema version 0 is none lookalike writes (edited by hand?)"),
])
def test_a_damaged_or_hand_edited_meta_table_is_one_line(tmp_path, key, stored, line):
    index = tmp_path / "index"
    Store.open(index).close()
    with sqlite3.connect(index / DB_NAME) as conn:
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, stored))
    conn.close()
    result = run("info", "--index", index)
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: the index in {index} is damaged{line}"]


def overwrite_root_page(database: Path, name: str, kind: int = 0) -> None:
    """Overwrite the root page of table or index ``name`` as a disk error or a torn write leaves it: with
    zeros (``kind`` 0), which SQLite finds malformed when it reads them, or with a valid empty leaf page
    (``kind`` 13 for a table, 10 for an index), which it reads as whole, with no rows. Either way the
    database still opens (its header and schema are whole)."""
    with sqlite3.connect(database) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    conn.close()
    with open(database, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(bytes([kind]) + bytes(page_size - 1))


def test_an_index_damaged_past_what_opening_reads_is_one_line_for_every_command(tmp_path, sample_photos,
                                                                                 tf1_module):
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in sample_photos:
        (photos / photo.name).write_bytes(photo.read_bytes())
    index = tmp_path / "index"
    assert run("index", photos, "--index", index, "--model", tf1_module, "-q").exit_code == 0
    overwrite_root_page(index / DB_NAME, "images")
    before = files_in(index)

    line = (f"error: the index in {index} is damaged ({DB_NAME}: database disk image is malformed): restore "
            "it from a backup, or move the folder aside and index your folders again")
    for args in (["info"], ["find", "cat"], ["search", sample_photos[0]], ["search", "--id", "1"],
                 ["duplicates"], ["index", photos]):
        result = run(*args, "--index", index)
        assert (result.exit_code, error_lines(result)) == (1, [line]), args
    after = files_in(index)
    assert after.get(f"{DB_NAME}-wal", b"") == b""  # nothing written over the damage
    assert {name: data for name, data in after.items() if not name.startswith(f"{DB_NAME}-")} == before


@pytest.mark.parametrize("name, kind, reason", [
    ("images", 13, "2 of the images its digest index names are missing from its images table"),
    ("idx_images_digest", 10, "its digest index holds 0 images, its path index 3"),
])
def test_exact_duplicates_of_an_index_whose_tables_lost_rows_fail_rather_than_find_none(
        tmp_path, sample_photos, tf1_module, name, kind, reason):
    photos = tmp_path / "photos"
    photos.mkdir()
    for photo in [*sample_photos[:2], sample_photos[0]]:
        (photos / f"{len(list(photos.iterdir()))}{photo.suffix}").write_bytes(photo.read_bytes())
    index = tmp_path / "index"
    assert run("index", photos, "--index", index, "--model", tf1_module, "-q").exit_code == 0
    assert run("duplicates", "--exact", "--index", index).stdout.splitlines()[-1].startswith("1 clusters")
    overwrite_root_page(index / DB_NAME, name, kind)

    for args in (["duplicates", "--exact"], ["duplicates"]):
        result = run(*args, "--index", index)
        assert (result.exit_code, error_lines(result)) == (
            1, [f"error: the index in {index} is damaged ({DB_NAME}: {reason}): {RESTORE}"]), args
        assert result.stdout == ""


@pytest.mark.parametrize("garble, shown", [
    ("substr(labels, 1, 11)", "'[{\"name\": \"' is not JSON"),  # cut short: a torn write
    ("replace(labels, '\"name\"', '\"nbme\"')", "'[{\"nbme\": "),  # one flipped bit in a key
    ("'null'", "'null' is not a list of labels"),
])
def test_garbled_labels_of_one_image_are_one_line_naming_the_image(tmp_path, sample_photos, tf1_module,
                                                                    garble, shown):
    index = tmp_path / "index"
    assert run("index", *sample_photos, "--index", index, "--model", tf1_module, "-q").exit_code == 0
    with sqlite3.connect(index / DB_NAME) as conn:
        conn.execute(f"UPDATE images SET labels = {garble} WHERE id = 1")
    conn.close()

    start = f"error: the index in {index} is damaged ({DB_NAME}: image 1's labels: "
    for args in (["find", sample_photos[0].parent.name], ["search", sample_photos[1]],
                 ["search", "--id", "1"], ["duplicates"]):
        result = run(*args, "--index", index)
        [line] = error_lines(result)
        assert result.exit_code == 1, args
        assert line.startswith(start) and shown in line and line.endswith(f"): {RESTORE}"), line


@pytest.mark.parametrize("garble, commands, reason", [
    ("content_width = 'abc'", [["search", "--id", "1"]],
     "image 1's content_width: 'abc' is not what lookalike writes there"),
    ("content_width = 'abc'", [["duplicates"]], "an image's content size is not a number"),
    ("size = X'00'", [["search", "--id", "1"]],
     "image 1's size: b'\\x00' is not what lookalike writes there"),
    ("thumbnail = 7", [["search", "--id", "1"], ["duplicates"]],
     "image 1's thumbnail: 7 is not what lookalike writes there"),
    ("vector = substr(vector, 1, 101)", [["search", "--id", "1"], ["duplicates"]],
     "image 1's vector is 101 bytes, not the 192 bytes of its vector size"),
])
def test_a_stored_number_or_vector_of_the_wrong_type_or_size_is_one_line(tmp_path, sample_photos, tf1_module,
                                                                         garble, commands, reason):
    """A flipped bit in a record's header gives a column another type (SQLite keeps whatever it is given),
    or a vector another length: ValueError and TypeError tracebacks far from the read."""
    index = tmp_path / "index"
    assert run("index", *sample_photos, "--index", index, "--model", tf1_module, "-q").exit_code == 0
    with sqlite3.connect(index / DB_NAME) as conn:
        conn.execute(f"UPDATE images SET {garble} WHERE id = 1")
    conn.close()
    (index / "vectors.faiss").unlink()  # rebuilt from the stored vectors

    for args in commands:
        result = run(*args, "--index", index)
        assert (result.exit_code, error_lines(result)) == (
            1, [f"error: the index in {index} is damaged ({DB_NAME}: {reason}): {RESTORE}"]), args


def test_a_garbled_remembered_keypoint_match_is_one_line(tmp_path):
    index = tmp_path / "index"
    with Store.open(index) as store:
        store.db.conn.execute("INSERT INTO keypoint_matches (image_a, image_b, mirrored, version, match) "
                              "VALUES (1, 2, 0, 'v1', '[12, 30, \"x\"]')")
        with pytest.raises(IndexDamaged) as caught:
            store.keypoint_matches("v1", [(1, 2, False)])
    assert str(caught.value) == (f"the index in {index} is damaged ({DB_NAME}: the keypoint match of images "
                                 f"1 and 2: '[12, 30, \"x\"]' is not a keypoint match): {RESTORE}")

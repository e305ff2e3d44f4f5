"""Our own attack beyond issue 8's list: bind mounts, a really full disk, a read-only mount, every
control byte in a name, a 2 GB file. Mounting needs root (CI runs as root); elsewhere those tests say
why they skip.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3  # noqa: F401  before TensorFlow, whose bundled SQLite lacks FTS5
import subprocess
from pathlib import Path

import pytest

import lookalike
from lookalike.index.store import DB_NAME, Store
from lookalike.index.vectors import saved_generation
from tests.cli import error_lines, run
from tests.duplicate_photos import THRESHOLD
from tests.photos import DATA, blocks, photo_folder


@pytest.fixture
def mounted(tmp_path):
    """``mount(*args, target)``; every mount is undone after the test."""
    targets: list[Path] = []

    def mount(*args: str, target: Path) -> Path:
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount here (needs root): {done.stderr.strip()}")
        targets.append(target)
        return target

    yield mount
    for target in reversed(targets):
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_bind_mount_is_the_same_files_and_nothing_is_removed_for_it(tmp_path, tf1_module, mounted):
    photos = tmp_path / "photos"
    photo_folder(photos, synthetic=2)
    view = mounted("--bind", str(photos), target=tmp_path / "view")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        col.add([view])  # the same files under another real path: same device and inode
        clusters = col.duplicates(exact_only=True)
        assert clusters and all(c.copies[0].same_file and c.reclaimable == 0 for c in clusters)
        assert col.delete_duplicates(clusters).deleted == ()
        # --against the mount: every file there is one of mine, so none of mine is a copy of it.
        assert col.duplicates(0.99, against=view, exact_only=True) == []
    assert sorted(os.listdir(photos)) == sorted(os.listdir(view)) and len(os.listdir(photos)) == 7


def test_a_really_full_disk_is_one_line_and_the_index_stays_consistent(tmp_path, tf1_module, mounted):
    photos = tmp_path / "photos"
    photo_folder(photos, synthetic=40)
    disk = mounted("-t", "tmpfs", "-o", "size=1m", "tmpfs", target=tmp_path / "small-disk")
    index = disk / "index"
    assert run("index", photos / "cat.jpg", "--index", index, "--model", tf1_module, "-q").exit_code == 0
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    filler.write_bytes(b"\0" * max(free - 24 * 1024, 0))  # leave a few pages

    result = run("index", photos, "--index", index, "--commit-every", "4", "-q")

    assert result.exit_code == 1
    (line,) = error_lines(result)[-1:]
    assert line.startswith("error: ") and "no space left" in line.lower()
    filler.unlink()
    again = run("index", photos, "--index", index, "-q")
    assert again.exit_code == 0, again.stderr
    with lookalike.open(index) as col:
        assert col.info().images == 48
        assert saved_generation(index) == col.store.generation
        top = col.search((photos / "blocks3.png").read_bytes(), k=1).neighbours[0]  # FAISS agrees with SQLite
        assert top.image.path == str(photos / "blocks3.png") and top.score > 0.99


def test_an_index_on_a_read_only_mount_is_read_as_ever_and_never_written(tmp_path, tf1_module, mounted):
    """An archive disk or a snapshot: SQLite cannot make the ``-shm`` file reading a WAL index takes, so
    the index is opened read-only (immutable, the database file being the whole index)."""
    disk = mounted("-t", "tmpfs", "-o", "size=20m", "tmpfs", target=tmp_path / "archive")
    photos = photo_folder(disk / "photos", synthetic=2)
    index = disk / "index"
    assert run("index", disk / "photos", "--index", index, "--model", tf1_module, "-q").exit_code == 0
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    assert not os.access(index, os.W_OK)

    info = run("info", "--index", index, "--json")
    assert info.exit_code == 0 and json.loads(info.stdout)["images"] == 10
    search = run("search", photos["cat"], "--index", index, "-k", "1", "--json")
    assert search.exit_code == 0, search.stderr
    assert json.loads(search.stdout)[0]["neighbours"][0]["path"] == str(photos["cat-small"])
    assert run("find", "blocks", "--index", index).exit_code == 0
    assert run("failures", "--index", index).exit_code == 0

    mine = tmp_path / "mine"
    mine.mkdir()
    shutil.copy2(photos["cat"], mine / "cat.jpg")
    assert run("index", mine, "--index", tmp_path / "my-index", "--model", tf1_module, "-q").exit_code == 0
    against = run("duplicates", "--index", tmp_path / "my-index", "--against", index,
                  "--threshold", THRESHOLD, "--json")  # "another index is only read"
    assert against.exit_code == 0, against.stderr
    (cluster,) = json.loads(against.stdout)
    assert cluster["keeper"]["path"] == str(photos["cat"])
    assert cluster["copies"][0]["path"] == str(mine / "cat.jpg")

    written = run("index", disk / "photos", "--index", index, "-q")
    assert written.exit_code == 1
    assert error_lines(written) == [f"error: {index} can be read but not written (read-only file system)"]


@pytest.fixture
def as_nobody(tmp_path):
    """``with as_nobody():`` runs a block as the user ``nobody`` (real and effective ids; root stays the
    saved one, to come back to), for whom ``tmp_path``'s folders are opened to pass through (not to
    list): root reads and writes every file whatever its permissions, so what another user meets is
    seen only as another user."""
    if os.geteuid() != 0:
        pytest.skip("acting as another user needs root")
    folders = [tmp_path, *tmp_path.parents]
    modes = {folder: folder.stat().st_mode for folder in folders}
    for folder, mode in modes.items():
        folder.chmod(mode | 0o001)

    @contextlib.contextmanager
    def nobody():
        os.setresgid(65534, 65534, 0)
        os.setresuid(65534, 65534, 0)
        try:
            yield
        finally:
            os.setresuid(0, 0, 0)
            os.setresgid(0, 0, 0)

    yield nobody
    for folder, mode in modes.items():
        folder.chmod(mode)


def test_another_user_s_index_is_read_as_ever_and_never_written(tmp_path, tf1_module, as_nobody):
    """Another user's index, readable but in a folder this user cannot write: SQLite cannot make the
    ``-shm`` file there either (it says "attempt to write a readonly database", not "unable to open"),
    and every command said the index "cannot be opened as a lookalike index"."""
    photos = photo_folder(tmp_path / "photos", synthetic=2)
    index = tmp_path / "index"
    assert run("index", tmp_path / "photos", "--index", index, "--model", tf1_module, "-q").exit_code == 0

    with as_nobody():
        info = run("info", "--index", index, "--json")
        assert info.exit_code == 0, info.stderr
        assert json.loads(info.stdout)["images"] == 10
        search = run("search", photos["cat"], "--index", index, "-k", "1", "--json")
        assert search.exit_code == 0, search.stderr
        assert json.loads(search.stdout)[0]["neighbours"][0]["path"] == str(photos["cat-small"])
        written = run("index", tmp_path / "photos", "--index", index, "-q")
    assert written.exit_code == 1
    assert error_lines(written) == [f"error: {index} can be read but not written (permission denied)"]
    assert sorted(os.listdir(index)) == [DB_NAME, "vectors.faiss", "vectors.json", "write.lock"]


def test_commits_still_in_the_wal_of_a_read_only_index_are_refused_not_missed(tmp_path, mounted):
    """A snapshot taken while a writer ran, without the ``-shm`` file SQLite reads its ``-wal`` with: the
    database file alone lacks those commits, so reading it alone would answer from an older index."""
    disk = mounted("-t", "tmpfs", "-o", "size=5m", "tmpfs", target=tmp_path / "snapshot")
    (disk / "index").mkdir()
    with Store.open(tmp_path / "live"):  # open: its creation is still in lookalike.db-wal
        for name in (DB_NAME, f"{DB_NAME}-wal"):
            shutil.copy2(tmp_path / "live" / name, disk / "index" / name)
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

    result = run("info", "--index", disk / "index")
    assert result.exit_code == 1
    assert error_lines(result) == [
        f"error: {disk / 'index'} cannot be written (read-only file system) and its last commits are still "
        "in lookalike.db-wal, which SQLite cannot read without lookalike.db-shm: open it once where it can "
        "be written"]


def test_every_control_byte_in_a_name_indexes_and_prints_on_one_line(tmp_path, tf1_module):
    photos = tmp_path / "photos"
    photos.mkdir()
    name = bytes(range(1, 32)) + b"\x7f" + "\u202e".encode() + b"gpj.jpg"  # and a right-to-left override
    raw = os.fsencode(photos) + b"/" + name
    shutil.copy2(DATA / "rocket.jpg", os.fsdecode(raw))
    shutil.copy2(DATA / "rocket.jpg", photos / "rocket.jpg")
    index = tmp_path / "index"
    assert run("index", photos, "--index", index, "--model", tf1_module, "-q").exit_code == 0

    listed = run("duplicates", "--index", index, "--exact")
    lines = listed.stdout.splitlines()
    assert len(lines) == 4  # cluster, keep, copy, total: nothing in the name broke a line
    (odd,) = [line for line in lines if "gpj.jpg" in line]
    assert odd.endswith("/\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08\\t\\n\\x0b\\x0c\\r\\x0e\\x0f\\x10"
                       "\\x11\\x12\\x13\\x14\\x15\\x16\\x17\\x18\\x19\\x1a\\x1b\\x1c\\x1d\\x1e\\x1f\\x7f\\u202egpj.jpg")
    assert odd.isprintable()
    as_json = json.loads(run("duplicates", "--index", index, "--exact", "--json").stdout_bytes)
    paths = {os.fsencode(m["path"]) for m in [as_json[0]["keeper"], *as_json[0]["copies"]]}
    assert raw in paths


def test_a_2_gb_file_is_indexed_or_refused_without_reading_it_into_memory(tmp_path, tf1_module):
    photos = tmp_path / "photos"
    photos.mkdir()
    sparse = photos / "huge.jpg"  # a real JPEG followed by 2 GB of (sparse) zeros
    sparse.write_bytes((DATA / "cat.jpg").read_bytes())
    os.truncate(sparse, 2 * 2**30)
    garbage = photos / "zeros.png"
    garbage.touch()
    os.truncate(garbage, 2 * 2**30)
    blocks(photos / "small.png", 1)
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        summary = col.add([photos])
        assert summary.added == 2 and [Path(p).name for p, _ in summary.failures] == ["zeros.png"]
        assert col.get_by_path(sparse).size == 2 * 2**30

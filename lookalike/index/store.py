"""The SQLite side of a collection: the source of truth for every image, its labels and its vector.

Everything FAISS holds can be rebuilt from here, so this file is the one that must survive a crash:
WAL journaling, short write transactions committed batch by batch, and a ``generation`` counter in
``meta`` bumped by every transaction that changes vectors, which lets the FAISS file prove it is current.

Digests are SHA-256 of the file content (hex): hardware-accelerated through OpenSSL on current CPUs,
and checkable with ``sha256sum``.

Paths are keyed by their exact bytes (``path_bytes``): Linux names need not be UTF-8, and a name must
lead back to its file. The ``path`` text column is for people and full-text search only
(:func:`lookalike.paths.display`). Each row also records the device and inode the path reached when it
was indexed, so a path later swapped for another file (or a link) is noticed.

The schema changes only through :data:`MIGRATIONS`, ordered steps applied in place under the writer
lock when an older index is opened; an index is never "re-created" and nothing is re-embedded.

Besides that truth the index keeps two derived tables of what the duplicates' second looks found, so
the next run does not find it again: ``edited_vectors``, the vectors of edited pictures they embedded (a
picture turned, greyed, cropped or shrunk), and ``keypoint_matches``, how two files' keypoints matched.
Readers write them, best effort: losing them costs only time.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import functools
import json
import os
import re
import shutil
import socket
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import numpy as np
from sqlite_utils import Database

from lookalike.arguments import check_wait
from lookalike.embedder.traits import (
    THUMBNAIL_SIDE,
    TRAIT_FIELDS,
    TRAITS_VERSION,
    Traits,
    stored_traits,
    traits_from_stored,
)
from lookalike.errors import (
    CollectionError,
    IndexDamaged,
    IndexTooNew,
    NoIndex,
    NoSpace,
    NotAnIndex,
    WriterBusy,
)
from lookalike.index.walk import someones_names
from lookalike.paths import FileSet, NotRegular, display, from_bytes, read_regular, to_bytes

DB_NAME = "lookalike.db"
LOCK_NAME = "write.lock"
BUSY_TIMEOUT_S = 10.0

_ROW_COLUMNS = ("id, path_bytes, size, mtime, digest, width, height, format, indexed_at, labels, "
                "top_label, top_probability, device, inode, " + ", ".join(TRAIT_FIELDS))
_NONE, _NUMBER = type(None), (int, float)
_ROW_TYPES = {
    "id": (int,), "path_bytes": (bytes,), "size": (int,), "mtime": _NUMBER, "digest": (str,),
    "width": (int, _NONE), "height": (int, _NONE), "format": (str, _NONE), "indexed_at": (str,),
    "labels": (str,), "top_label": (str, _NONE), "top_probability": (*_NUMBER, _NONE), "device": (int, _NONE),
    "inode": (int, _NONE), "content_width": (int, _NONE), "content_height": (int, _NONE),
    "greyscale": (int, _NONE), "quality": (int, _NONE), "colours": (bytes, _NONE),
    "colourfulness": (*_NUMBER, _NONE), "thumbnail": (bytes, _NONE), "tint": (bytes, _NONE),
    "traits_version": (int, _NONE),
}
"""What each column of a row read with _ROW_COLUMNS holds as lookalike writes it (SQLite keeps whatever
type a value was given, or a flipped bit in a record's header makes it)."""
_TRAITS_AT = 14  # where the trait columns start in a row read with _ROW_COLUMNS
_TRAITS_END = _TRAITS_AT + len(TRAIT_FIELDS)
_INSERT_COLUMNS = ("path_bytes", "path", "size", "mtime", "digest", "width", "height", "format", "indexed_at",
                   "labels", "label_text", "top_label", "top_probability", "vector", "device", "inode",
                   *TRAIT_FIELDS)
_INSERT_IMAGE = f"""
    INSERT INTO images (id, {", ".join(_INSERT_COLUMNS)}) VALUES (?, {", ".join("?" * len(_INSERT_COLUMNS))})
    ON CONFLICT(path_bytes) DO UPDATE SET
        {", ".join(f"{column} = excluded.{column}" for column in _INSERT_COLUMNS if column != "path_bytes")}
    RETURNING id
"""
"""One row per file, the traits' columns taken from ``TRAIT_FIELDS``: a re-indexed file updates its row
in place and keeps its id; a new one takes the id offered (``LAST_ID``)."""
LAST_ID = "last_image_id"
"""The highest image id ever given: a new file gets a higher one, never the id of a file moved or deleted.
SQLite alone gives max(id) + 1, so the newest files' ids came back to other files, and a request naming
ids (the page's review moving copies, ``search --id``) that was made before would act on the wrong
files."""
SQLITE_IOERR = 10  # "disk I/O error": on a full disk, what growing the WAL or its index gives
SQLITE_FULL = 13  # "database or disk is full": the disk, a quota, or max_page_count
SQLITE_CORRUPT = 11  # "database disk image is malformed": a page that is no valid b-tree page
SQLITE_CANTOPEN = 14  # "unable to open database file": the file, or its journal, cannot be opened or made
SQLITE_READONLY_DIRECTORY = 1544  # "attempt to write a readonly database": no -shm can be made in its folder
SQLITE_NOTADB = 26  # "file is not a database": the header (or a page it leads to) is junk
_SQLITE_INTEGERS = range(-(1 << 63), 1 << 63)  # what an INTEGER column (an id) can hold
NEARLY_FULL = 1 << 20  # bytes free under which an I/O error is taken for a full disk
SQLITE_UNWRITABLE = frozenset({
    3,  # SQLITE_PERM
    5,  # SQLITE_BUSY: another connection kept writing past the busy timeout
    6,  # SQLITE_LOCKED
    8,  # SQLITE_READONLY: a read-only file, directory or mount
    SQLITE_IOERR,
    SQLITE_CANTOPEN,
})
"""What a best-effort write (:meth:`Store.remember_edited_vectors`) gives up on: the index cannot be
written now, which a reader's result must not depend on."""


def now() -> str:
    """UTC timestamps as ISO 8601 text: readable in any SQLite shell and sortable as strings."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class NewImage:
    """What the indexer knows about one embedded file; ``labels`` are top-5, best first."""

    path: str
    size: int
    mtime: float
    digest: str
    width: int
    height: int
    format: str
    labels: Sequence[Mapping[str, Any]]  # {"name": str, "index": int, "probability": float}
    vector: np.ndarray
    device: int | None = None
    inode: int | None = None
    traits: Traits | None = None


@dataclass(frozen=True)
class ImageRow:
    """One stored image; ``vector`` is None when the caller did not ask for it (it is 5 KB)."""

    id: int
    path: str
    size: int
    mtime: float
    digest: str
    width: int
    height: int
    format: str
    indexed_at: str
    labels: list[dict[str, Any]]
    top_label: str | None
    top_probability: float | None
    device: int | None = None
    inode: int | None = None
    traits: Traits | None = None  # None for rows indexed before schema 3, or by an older TRAITS_VERSION
    vector: np.ndarray | None = None


class FileState(NamedTuple):
    """Enough to decide whether a file on disk changed since it was indexed, without reading it."""

    id: int
    size: int
    mtime: float
    digest: str
    traits_current: bool = True  # False: its traits are missing or from an older ``TRAITS_VERSION``
    device: int | None = None  # the file the path reached when indexed (None: not recorded)
    inode: int | None = None


@dataclass(frozen=True)
class Failure:
    path: str
    reason: str
    failed_at: str


@dataclass(frozen=True)
class TextMatch:
    """A ``search_text`` hit: the best matching label and its probability, or (None, 0.0) for a path match."""

    row: ImageRow
    label: str | None
    probability: float


def words(text: str) -> list[str]:
    """Split like FTS5's unicode61 tokenizer does: runs of letters and digits, lower-cased."""
    return re.findall(r"[^\W_]+", text.lower())


def match_labels(labels: Iterable[Mapping[str, Any]], text: str) -> tuple[str, float] | None:
    """The most probable label whose name has every word of ``text`` as a word prefix, if any.

    Same rule as the full-text query (``"word"*`` for each word), so ``find`` and ``--label`` agree.
    """
    wanted = words(text)
    best: tuple[str, float] | None = None
    for label in labels:
        names = words(label["name"])
        if wanted and all(any(w.startswith(q) for w in names) for q in wanted) and (
            best is None or label["probability"] > best[1]
        ):
            best = (label["name"], float(label["probability"]))
    return best


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_labels(value: Any) -> bool:
    """Labels as :meth:`Store.upsert` writes them: ``[{"name": str, "index": int, "probability": float}]``."""
    return type(value) is list and all(
        type(la) is dict and type(la.get("name")) is str and type(la.get("index")) is int
        and type(la.get("probability")) in (int, float) for la in value)


def _is_fingerprint(value: Any) -> bool:
    """A model fingerprint as ``Fingerprint.as_dict`` writes it."""
    return type(value) is dict and _is_count(value.get("dim")) and all(
        type(value.get(key)) is str for key in ("handle", "digest", "preprocessing"))


def _is_match(value: Any) -> bool:
    """A keypoint match's fields as :meth:`Store.remember_keypoint_matches` writes them: four counts, then
    measures (or None), no more than a :class:`~lookalike.embedder.keypoints.Match` has (read only where
    matches are, so OpenCV is loaded already)."""
    from lookalike.embedder.keypoints import Match

    return (type(value) is list and 4 <= len(value) <= len(Match._fields)
            and all(_is_count(v) for v in value[:4])
            and all(v is None or type(v) in (int, float) for v in value[4:]))


Shape = tuple[str, Callable[[Any], bool]]
"""What a stored JSON value must be: its description ("labels") and the test of it."""
_META_SHAPES: dict[str, Shape] = {
    "generation": ("a count", _is_count),
    "vector_size": ("a count", _is_count),
    "model": ("a model fingerprint", _is_fingerprint),
    "created": ("a time", lambda value: type(value) is str),
    "index_type": ("an index type", lambda value: type(value) is str),
}
"""What the meta values a reader relies on must be; ``schema_version`` is checked where the schema is,
and ``last_image_id`` is only a floor that :meth:`Store.upsert` does without when it is damaged."""
_LABELS = ("a list of labels", _is_labels)
_MATCH = ("a keypoint match", _is_match)


def _out_of_space(error: sqlite3.DatabaseError, directory: Path) -> bool:
    """Whether SQLite failed for want of space: SQLITE_FULL, or an I/O error on a (nearly) full disk."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code == SQLITE_FULL:
        return True
    if code != SQLITE_IOERR:
        return False
    try:
        return shutil.disk_usage(directory).free < NEARLY_FULL
    except OSError:
        return False


_FIRST_SCHEMA: dict[str, dict[str, type]] = {
    "images": {
        "id": int, "path": str, "size": int, "mtime": float, "digest": str,
        "width": int, "height": int, "format": str, "indexed_at": str,
        "labels": str, "label_text": str, "top_label": str, "top_probability": float,
        "vector": bytes,
    },
    "failures": {"path": str, "reason": str, "failed_at": str},
    "meta": {"key": str, "value": str},
}
"""The tables of schema 1 and their columns, as :meth:`Store._create_schema` makes them (besides the
FTS5 tables ``images_fts*``); what a creation killed half way leaves, and what finishing it expects."""
def _check_new_folder(directory: Path, path: Path) -> None:
    """Refuse (NotAnIndex) to make a new index in a folder holding other files: a ``vectors.json`` there
    could be someone's, which the index would overwrite. Hidden files and litter do not count
    (:func:`~lookalike.index.walk.someones_names`),
    nor ``path``'s own files when the folder holds it (another process is creating the index this moment:
    judged from the same listing, as it may appear between a check and the listing); its ``-wal``
    without it would be an old index's, which SQLite would replay into the new one."""
    try:
        with os.scandir(directory) as entries:
            names = set(someones_names(e.name for e in entries))
    except FileNotFoundError:
        return
    except OSError as e:
        raise CollectionError(f"cannot read the folder {display(directory)}: {e.strerror}") from None
    ours = {LOCK_NAME, *((path.name, f"{path.name}-wal", f"{path.name}-shm", f"{path.name}-journal")
                        if path.name in names else ())}
    others = sorted(names - ours)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise NotAnIndex(
            f"{display(directory)} is not a lookalike index and holds other files ({shown}): a new index "
            "is made only in a new or empty folder (hidden files such as .DS_Store do not count); "
            "nothing was written")


def _database_kind(conn: sqlite3.Connection, path: Path) -> str:
    """What the database is, read before anything is written to it: "index" (a lookalike index of any
    schema: from version 1 on it has ``images`` and a ``meta`` table naming its ``schema_version``),
    "new" (no tables: an empty file), or "unfinished" (schema 1's tables only, no version yet: a
    creation killed half way, which the caller finishes). Another program's database is NotAnIndex,
    left exactly as it was: no WAL switched on, no table added or migrated."""
    tables = {name: {column for (column,) in conn.execute("SELECT name FROM pragma_table_info(?)", (name,))}
              for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                          "AND name NOT LIKE 'sqlite!_%' ESCAPE '!'")}
    if not tables:
        return "new"
    if "images" in tables and tables.get("meta") == set(_FIRST_SCHEMA["meta"]) and conn.execute(
            "SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone():
        return "index"
    if "images" in tables and all(name.startswith("images_fts") or columns == set(_FIRST_SCHEMA.get(name, ()))
                                  for name, columns in tables.items()):
        return "unfinished"
    shown = ", ".join(sorted(tables)[:3]) + (", ..." if len(tables) > 3 else "")
    raise NotAnIndex(f"{display(path)} is another program's database (tables {shown}), not a lookalike "
                     "index: it was left as it was; a new index goes in a new or empty folder")


def _unwritable(directory: Path, path: Path) -> str | None:
    """Why the index in ``directory`` cannot be written ("read-only file system", "permission denied"),
    or None when it can: its folder (SQLite makes ``-wal`` and ``-shm`` files there) and its database."""
    if os.access(directory, os.W_OK) and (not path.exists() or os.access(path, os.W_OK)):
        return None
    return "read-only file system" if os.statvfs(directory).f_flag & os.ST_RDONLY else "permission denied"


def _damage(error: sqlite3.DatabaseError, path: Path) -> IndexDamaged | None:
    """The IndexDamaged ``error`` stands for, or None: SQLite's corrupt and not-a-database codes, or a
    text value whose bytes are no longer UTF-8 (a flipped bit in a stored reason or label)."""
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB) or "Could not decode to UTF-8" in str(error):
        return IndexDamaged(path, str(error).split(" with text ")[0])
    return None


class _Cursor(sqlite3.Cursor):
    """A cursor whose damaged-database errors are :class:`IndexDamaged`.

    A database damaged past the pages read at opening (a disk error, a partial copy) opens as ever; its
    damage shows only when a command reaches a bad page, and came out as sqlite3's DatabaseError: a
    traceback on the command line and a plain-text 500 from the server. Every statement and every row
    of :class:`Store` goes through here, so each becomes one line ("... is damaged ...: restore it from a
    backup, ...") wherever the bad page lies."""

    def _translated(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except sqlite3.DatabaseError as e:
            damage = _damage(e, self.connection.path)
            if damage is None:
                raise
            raise damage from None

    def execute(self, *args: Any) -> _Cursor:
        return self._translated(super().execute, *args)

    def executemany(self, *args: Any) -> _Cursor:
        return self._translated(super().executemany, *args)

    def executescript(self, *args: Any) -> _Cursor:
        return self._translated(super().executescript, *args)

    def fetchone(self) -> Any:
        return self._translated(super().fetchone)

    def fetchmany(self, *args: Any) -> list[Any]:
        return self._translated(super().fetchmany, *args)

    def fetchall(self) -> list[Any]:
        return self._translated(super().fetchall)

    def __next__(self) -> Any:
        return self._translated(super().__next__)


class _Connection(sqlite3.Connection):
    """A connection whose statements run on :class:`_Cursor` (``sqlite3.Connection.execute`` makes its
    cursor in C, past any ``cursor`` override) and that knows its database's path for the message."""

    path: Path

    def cursor(self, factory: Any = _Cursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, *args: Any) -> Any:  # type: ignore[override]
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> Any:  # type: ignore[override]
        return self.cursor().executemany(*args)

    def executescript(self, *args: Any) -> Any:  # type: ignore[override]
        return self.cursor().executescript(*args)


def _connect(path: Path, read_only: str | None) -> sqlite3.Connection:
    """A connection to the database at ``path``, with SQLite's ``mode=ro`` when it cannot be written.

    Reading a WAL database takes its ``-shm`` file, which SQLite cannot make in a read-only folder. When
    there is none, no connection is open anywhere (the last one to close removes it) and, without a
    ``-wal`` of commits the database file lacks, that file alone is the index: it is opened
    ``immutable`` (no locks, no ``-shm``), which holds while nobody writes it - nobody can on a read-only
    mount; in another user's folder its owner can, and what they write meanwhile is read by the next
    open (SQLite then shares their ``-shm``). SQLite says "unable to open" on a read-only mount and
    "attempt to write a readonly database" (READONLY_DIRECTORY) in a folder it may not write: both are
    that case. Commits left in a ``-wal`` (a writer killed) would be missed: refused.
    """
    # Autocommit at the driver level: transactions are explicit (BEGIN IMMEDIATE, :meth:`Store._write`).
    def connect(target: str | Path, **uri: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False,
                               factory=_Connection, **uri)
        conn.path = path
        return conn

    if not read_only:
        return connect(path)
    uri = f"file:{quote(os.fsencode(path))}?mode=ro"
    conn = connect(uri, uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as e:
        conn.close()
        code = getattr(e, "sqlite_errorcode", 0)
        if code & 0xFF != SQLITE_CANTOPEN and code != SQLITE_READONLY_DIRECTORY:
            raise
    wal = path.with_name(f"{path.name}-wal")
    if wal.exists() and wal.stat().st_size:
        raise CollectionError(
            f"{display(path.parent)} cannot be written ({read_only}) and its last commits are still in "
            f"{wal.name}, which SQLite cannot read without {path.name}-shm: open it once where it can be "
            "written")
    return connect(f"{uri}&immutable=1", uri=True)


PID_SETTLE_S = 0.5  # a writer that has just taken the lock has written its pid within this, however busy


def _written_pid(fd: int) -> str:
    """The pid a lock's holder wrote in it: it writes it just after taking the lock, so a run that finds the
    lock taken in between waits a moment for it (under load, two runs at once met that gap); empty where
    none comes (a holder that writes none, as flock(1))."""
    settled = time.monotonic() + PID_SETTLE_S
    while not (pid := os.pread(fd, 32, 0).decode(errors="replace").split(" ")[0].strip()):
        if time.monotonic() >= settled:
            break
        time.sleep(0.01)
    return pid


class WriterLock:
    """One writer per index directory, across processes: an exclusive ``flock`` on ``write.lock``.

    SQLite alone would interleave two indexing runs batch by batch, and both would rewrite the FAISS
    file; the lock makes the second one wait (up to ``wait`` seconds) or fail with a clear message.
    Readers never take it. The kernel drops the lock when the holder dies, even by SIGKILL.
    """

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self, wait: float = 0.0) -> None:
        if self.held:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK, 0o644)
        except IsADirectoryError:
            raise self._no_lock(stat.S_IFDIR) from None
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # a FIFO took the pid and the truncate as a bare EINVAL
            os.close(fd)
            raise self._no_lock(mode)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    pid = _written_pid(fd)
                    os.close(fd)
                    holder = f"pid {pid}" if pid else "another process"  # flock(1): it writes none
                    raise WriterBusy(
                        f"{self.path.parent} is being written by {holder} "
                        f"(lock {self.path}); wait for it to finish and try again"
                    ) from None
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        os.ftruncate(fd, 0)
        _, started = _process_state("self") or ("", None)
        os.pwrite(fd, f"{os.getpid()} {_pid_space()} {started or ''}".strip().encode(), 0)
        self._fd = fd

    def _no_lock(self, mode: int) -> CollectionError:
        """What is at the lock's place (a FIFO, a device, a folder) cannot be the lock: one line saying so."""
        return CollectionError(f"{NotRegular(self.path, mode)}, where the index keeps its writer lock: "
                               "move it away (the lock is made again)")

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    @staticmethod
    def live_holder(directory: str | Path) -> int | None:
        """The pid of a live process holding ``directory``'s lock, from what its holder wrote in it; None
        when there is none: the lock released (emptied), or its holder dead (a SIGKILL leaves its pid
        behind), its pid now another process's (the holder's start time is written beside it). Read
        without taking the lock, so no writer is ever kept waiting. A holder on another machine or in
        another container (another pid space) cannot be checked and counts as live: fit to cut a wait
        short, not to decide anything else."""
        try:
            text = read_regular(Path(directory) / LOCK_NAME, 256)  # a FIFO there: no holder, never a wait
            pid_text, _, rest = text.decode(errors="replace").strip().partition(" ")
            space, _, started = rest.partition(" ")
            pid = int(pid_text or 0)
        except (OSError, ValueError):
            return None
        if pid <= 0:
            return None
        if space and space != _pid_space():
            return pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
        state = _process_state(pid)
        if state is None:
            return pid
        letter, now_started = state
        if started and now_started not in (None, started):
            return None  # the holder died and its pid went to another process since
        return None if letter == "Z" else pid

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _process_state(pid: int | str) -> tuple[str, str | None] | None:
    """Process ``pid``'s (or ``"self"``'s) state letter and start time (clock ticks after boot), from one
    read of ``/proc/PID/stat`` (the fields after the command name: the 1st and the 20th), or None where it
    cannot be read. A zombie ("Z") is a writer killed (SIGKILL) whose parent has not reaped it yet (a
    shell script, a notebook's subprocess): it still answers ``kill(pid, 0)``, but will never save again.
    The start time, written beside the pid, tells a pid reused after its holder died from the holder."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return None
    if not fields:
        return None
    return fields[0].decode(errors="replace"), fields[19].decode() if len(fields) > 19 else None


@functools.cache
def _pid_space() -> str:
    """Where this process's pid means something: the machine, and the pid namespace (a container's)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}".replace(" ", "_")


class Store:
    """The SQLite database of one index directory. Not thread-safe: callers serialise access."""

    def __init__(self, directory: Path, conn: sqlite3.Connection, read_only: str | None = None) -> None:
        self.directory = directory
        self.db = Database(conn)
        self.read_only = read_only  # why the index cannot be written ("read-only file system"), or None

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: str | Path, *, create: bool = True) -> Store:
        """Open (and with ``create``, initialise) the store in ``directory``; upgrade an older schema.

        Nothing is written where no lookalike index is: a new index is made only in a missing or empty
        folder (:func:`_check_new_folder`), and a database is written only once it is known to be an
        index (:func:`_database_kind`), so a mistaken ``--index`` overwrites none of someone's files.
        An index that cannot be written (a read-only mount) is opened read-only (:func:`_connect`).
        """
        directory = Path(directory).expanduser().resolve()
        path = directory / DB_NAME
        there = next(p for p in (directory, *directory.parents) if p.exists())
        if not there.is_dir():
            raise NotAnIndex(f"{display(there)} is a file, not a folder: an index is a folder holding "
                             f"{DB_NAME} (a new one goes in a new or empty folder)")
        if path.exists() and not path.is_file():
            raise NotAnIndex(f"{display(path)} is not a file: {display(directory)} is not a lookalike index")
        if not path.exists():
            _check_new_folder(directory, path)
            if not create:
                raise NoIndex(directory, DB_NAME)
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise CollectionError(f"cannot make the index folder {display(directory)}: "
                                      f"{e.strerror}") from None
        unwritable = _unwritable(directory, path)
        if unwritable and not path.exists():
            raise CollectionError(f"cannot create an index in {display(directory)}: {unwritable}")
        try:
            conn = _connect(path, unwritable)
        except IndexDamaged as e:  # damaged where opening reads: not known to be an index at all
            raise NotAnIndex(f"{display(path)} cannot be opened as a lookalike index: {e.reason}") from None
        except sqlite3.DatabaseError as e:
            raise NotAnIndex(f"{display(path)} cannot be opened as a lookalike index: {e}") from None
        store = cls(directory, conn, unwritable)
        kind = None
        try:
            kind = _database_kind(conn, path)
            if kind == "new":  # an empty database file: made here, as in a missing or empty folder only
                _check_new_folder(directory, path)
            if kind != "index" and not create:
                raise NotAnIndex(f"{display(path)} is not a lookalike index (no schema)")
            if kind != "index":
                with store.writer(wait=BUSY_TIMEOUT_S):  # two processes creating at once: one does it
                    # and the other finds it done (and maybe upgraded) once it has the lock: making the
                    # first schema again set an upgraded index back to version 1, and upgrading it again
                    # broke it for good ("duplicate column name: path_bytes"). The switch to WAL is made
                    # under the lock too: SQLite does not wait for it, and the second process failed
                    # with "database is locked" while the first was switching.
                    store._journal(unwritable)
                    if _database_kind(conn, path) != "index":
                        store._create_schema()
            else:
                store._journal(unwritable)  # an index is in WAL already: nothing to switch
            store._upgrade()
        except IndexDamaged as e:
            conn.close()
            if kind == "index":  # known to be one (its schema version garbled, say): damaged, as past opening
                raise
            raise NotAnIndex(f"{display(path)} cannot be opened as a lookalike index: {e.reason}") from None
        except sqlite3.DatabaseError as e:
            conn.close()
            if "fts5" in str(e).lower():
                raise CollectionError(
                    "this process's SQLite lacks FTS5 (TensorFlow was imported before lookalike or sqlite3): "
                    "import lookalike first"
                ) from None
            if _out_of_space(e, directory):
                raise NoSpace(f"no space left on the disk of {display(directory)} to open its index: "
                              "free some space and try again") from None
            if getattr(e, "sqlite_errorcode", 0) & 0xFF == SQLITE_IOERR:
                raise CollectionError(f"cannot open {display(path)}: {e}") from None
            raise NotAnIndex(f"{display(path)} cannot be opened as a lookalike index: {e}") from None
        except BaseException:
            conn.close()
            raise
        return store

    def _journal(self, unwritable: str | None) -> None:
        """Write-ahead logging (readers never wait for the writer), durable against process crashes."""
        if not unwritable:
            self.db.enable_wal()
            self.db.conn.execute("PRAGMA synchronous=NORMAL")

    def _create_schema(self) -> None:
        """The first schema (version 1); :meth:`_upgrade` then brings it to the current one.

        Idempotent, and ``schema_version`` is written last: a crash here is finished by the next open.
        New indexes take the same migration steps as old ones, so both always end with one schema.
        """
        db = self.db
        db["images"].create(
            _FIRST_SCHEMA["images"],
            pk="id",
            not_null={"path", "size", "mtime", "digest", "indexed_at", "labels", "vector"},
            if_not_exists=True,
        )
        db["images"].create_index(["path"], unique=True, if_not_exists=True)
        db["failures"].create(_FIRST_SCHEMA["failures"], pk="path", if_not_exists=True)
        db["meta"].create(_FIRST_SCHEMA["meta"], pk="key", if_not_exists=True)
        # Labels and paths are both searchable: "tabby" finds cats, "holiday/2019" finds folders.
        db["images"].enable_fts(["path", "label_text"], create_triggers=True, replace=True)  # kept if whole
        with self._write():
            if self.get_meta("created") is None:
                self._set_meta("created", now())
                self._set_meta("generation", 0)
            self._set_meta("schema_version", 1)

    def _upgrade(self) -> None:
        """Apply the migrations this index lacks, in order, each in its own transaction."""
        version = self.get_meta("schema_version")
        if version == SCHEMA_VERSION:
            return
        if type(version) is not int or version < 1:  # bool is an int, and "abc" or 0 no version at all
            raise CollectionError(f"the index in {display(self.directory)} is damaged: its schema version "
                                  f"{json.dumps(version)} is none lookalike writes (edited by hand?)")
        if version > SCHEMA_VERSION:
            raise IndexTooNew(
                f"{display(self.directory)} was written by a newer lookalike (index schema {version}; this "
                f"one reads up to {SCHEMA_VERSION}): upgrade lookalike to use it"
            )
        if self.read_only:
            raise CollectionError(
                f"{display(self.directory)} was written by an older lookalike (index schema {version}) and "
                f"cannot be written ({self.read_only}) to upgrade it: open it once where it can be written")
        with self.writer(wait=BUSY_TIMEOUT_S):
            version = self.get_meta("schema_version")  # another process may have upgraded meanwhile
            while version < SCHEMA_VERSION:
                with self._write() as conn:
                    MIGRATIONS[version - 1](conn)
                    version += 1
                    self._set_meta("schema_version", version)

    def close(self) -> None:
        """Close the database; closing twice is harmless, and any use after it is a CollectionError."""
        if not isinstance(self.db, _Closed):
            self.db.conn.close()
            self.db = _Closed(self.directory)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check_open(self) -> None:
        """CollectionError if this store was closed, for a caller about to move, delete or put back files
        before it first reads the database: the error must come before the files change, not after."""
        if isinstance(self.db, _Closed):
            raise self.db.error()

    def writer(self, wait: float = 0.0) -> WriterLock:
        """Take this directory's writer lock: ``with store.writer(wait=5): ...``; a closed index, or one
        opened read-only, refuses at once, before anything is tried."""
        wait = check_wait(wait)
        self.check_open()
        if self.read_only:
            raise CollectionError(f"{display(self.directory)} can be read but not written ({self.read_only})")
        lock = WriterLock(self.directory)
        lock.acquire(wait)
        return lock

    # -- transactions and meta ---------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taking the write lock up front, so it cannot deadlock on upgrade.

        A full disk rolls the transaction back (the index stays as it was at the last commit) and
        becomes :class:`NoSpace`, one line for the user instead of a driver traceback.
        """
        conn = self.db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as e:
            if conn.in_transaction:  # a COMMIT that failed leaves it open
                conn.execute("ROLLBACK")
            if not _out_of_space(e, self.directory):
                raise
            raise NoSpace(
                f"no space left on the disk of {display(self.directory)}: nothing after the last commit "
                "was written; free some space and run the command again"
            ) from None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: everything read inside sees one state, e.g. ``generation`` and vectors."""
        conn = self.db.conn
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _stored_json(self, text: Any, what: str, shape: Shape | None = None) -> Any:
        """The JSON value stored as ``what`` (its labels, a meta value), checked against ``shape`` (what it
        must be, and the test): every JSON read from the database goes through here. A value that is not
        JSON, or not of its shape (a flipped bit, a hand edit) is :class:`IndexDamaged`, one line naming
        it, never a JSONDecodeError, KeyError or TypeError further on."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            raise IndexDamaged(self.directory / DB_NAME, f"{what}: {text!r:.40} is not JSON") from None
        if shape is not None and not shape[1](value):
            raise IndexDamaged(self.directory / DB_NAME, f"{what}: {text!r:.40} is not {shape[0]}")
        return value

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.db.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        return self._stored_json(row[0], f"its meta value {key!r}", _META_SHAPES.get(key))

    def set_meta(self, key: str, value: Any) -> None:
        """Store any JSON value, e.g. the model fingerprint as a dict."""
        with self._write():
            self._set_meta(key, value)

    def _set_meta(self, key: str, value: Any) -> None:
        self.db.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    @property
    def generation(self) -> int:
        """Bumped by every commit that adds, changes or removes vectors."""
        return int(self.get_meta("generation", 0))

    def _bump_generation(self) -> None:
        self.db.conn.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
        )

    @property
    def vector_size(self) -> int | None:
        return self.get_meta("vector_size")

    # -- writing -----------------------------------------------------------------------------------

    def upsert(self, images: Sequence[NewImage]) -> list[int]:
        """Insert or replace a batch by path and clear their failures, in one transaction; returns row ids.

        One transaction per batch is the crash-safety unit: after a kill, a batch is either all there
        or not at all, and a re-run resumes after the last committed one. A re-indexed path keeps its id.
        """
        if not images:
            return []
        dims = {int(np.asarray(image.vector).size) for image in images}
        ids: list[int] = []
        with self._write() as conn:
            expected = self.vector_size
            if len(dims) > 1:
                raise CollectionError(f"a batch mixes vector sizes {', '.join(map(str, sorted(dims)))}")
            if expected is not None and dims != {expected}:
                raise CollectionError(
                    f"vectors of size {dims.pop()} offered to an index of vector size {expected}"
                )
            if expected is None:
                self._set_meta("vector_size", dims.pop())
            indexed_at = now()
            (highest,) = conn.execute("SELECT coalesce(max(id), 0) FROM images").fetchone()
            kept = self.get_meta(LAST_ID, 0)
            last = max(kept, highest) if type(kept) is int and kept in _SQLITE_INTEGERS else highest
            for image in images:
                last += 1
                labels = [{"name": str(la["name"]), "index": int(la["index"]),
                           "probability": float(la["probability"])} for la in image.labels]
                top = max(labels, key=lambda la: la["probability"], default=None)
                (row_id,) = conn.execute(
                    _INSERT_IMAGE,
                    (
                        last, to_bytes(image.path), display(image.path), image.size, image.mtime,
                        image.digest, image.width, image.height, image.format, indexed_at, json.dumps(labels),
                        "; ".join(la["name"] for la in labels),
                        top and top["name"], top and top["probability"],
                        np.ascontiguousarray(image.vector, dtype="<f4").tobytes(), image.device, image.inode,
                        *stored_traits(image.traits),
                    ),
                ).fetchone()
                ids.append(row_id)
            conn.executemany("DELETE FROM failures WHERE path_bytes = ?",
                             [(to_bytes(image.path),) for image in images])
            self._set_meta(LAST_ID, last)
            self._bump_generation()
        return ids

    def update_stats(self, changes: Iterable[tuple[str, int, float, int | None, int | None]]) -> None:
        """Record a new (size, mtime, device, inode) for files whose content digest did not change: no
        re-embedding. A file replaced by a copy of itself (``rsync -a``, a restore) is a new inode."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE images SET size = ?, mtime = ?, device = ?, inode = ? WHERE path_bytes = ?",
                [(size, mtime, device, inode, to_bytes(path))
                 for path, size, mtime, device, inode in changes])

    def update_traits(self, refreshed: Iterable[tuple[int, Traits]]) -> None:
        """Store traits found again for unchanged files (``TRAITS_VERSION`` moved on): no re-embedding."""
        with self._write() as conn:
            conn.executemany(
                f"UPDATE images SET {', '.join(f'{field} = ?' for field in TRAIT_FIELDS)} WHERE id = ?",
                [(*stored_traits(traits), int(image_id)) for image_id, traits in refreshed],
            )

    def record_failures(self, failures: Iterable[tuple[str, str]]) -> None:
        """Remember (path, reason) pairs, replacing earlier reasons for the same path."""
        failed_at = now()
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO failures (path_bytes, path, reason, failed_at) VALUES (?, ?, ?, ?) ON CONFLICT"
                "(path_bytes) DO UPDATE SET reason = excluded.reason, failed_at = excluded.failed_at",
                [(to_bytes(path), display(path), reason, failed_at) for path, reason in failures],
            )

    def clear_failures(self, paths: Iterable[str]) -> int:
        """Forget the failures of these paths (files that are gone, or fixed); returns how many."""
        with self._write() as conn:
            return conn.executemany(
                "DELETE FROM failures WHERE path_bytes = ?", [(to_bytes(p),) for p in paths]
            ).rowcount

    def failure_paths(self) -> list[str]:
        return [from_bytes(raw) for (raw,) in self.db.conn.execute("SELECT path_bytes FROM failures")]

    def delete(self, ids: Iterable[int]) -> int:
        """Remove rows (files gone from disk); returns how many existed."""
        with self._write() as conn:
            removed = conn.executemany("DELETE FROM images WHERE id = ?", [(int(i),) for i in ids]).rowcount
            if removed:
                self._bump_generation()
        return removed

    def remember_edited_vectors(self, entries: Mapping[tuple[int, str], tuple[str, np.ndarray]]) -> bool:
        """Keep the vectors of edited pictures (``{(image id, edit): (digest, vector)}``, the digest of the
        content they were made from) for the next duplicates run, in one transaction, replacing older
        ones; an entry whose image is gone or holds other content by now is not written.

        Best effort, for readers: written only if the writer lock is free at once and the index can be
        written now (not busy, full or read-only); returns whether it was. Nothing depends on it.
        """
        return self._write_if_free(
            "INSERT OR REPLACE INTO edited_vectors (image_id, edit, digest, vector) "
            "SELECT id, ?, digest, ? FROM images WHERE id = ? AND digest = ?",
            [(edit, np.ascontiguousarray(vector, dtype="<f4").tobytes(), int(image_id), digest)
             for (image_id, edit), (digest, vector) in entries.items()])

    def remember_keypoint_matches(self, version: str,
                                  entries: Mapping[tuple[int, int, bool], tuple[str, str, Sequence]]) -> bool:
        """Keep how two files' keypoints matched (``{(image a, image b, b mirrored): (digest of a, digest
        of b, the match's fields)}``, the digests of the content matched) for the next duplicates run,
        found by the code ``version`` names, replacing older ones; an entry whose images are gone or hold
        other content by now is not written. Best effort, as :meth:`remember_edited_vectors`."""
        return self._write_if_free(
            "INSERT OR REPLACE INTO keypoint_matches (image_a, image_b, mirrored, version, match) "
            "SELECT a.id, b.id, ?, ?, ? FROM images AS a JOIN images AS b "
            "ON a.id = ? AND a.digest = ? AND b.id = ? AND b.digest = ?",
            [(int(mirrored), version, json.dumps(list(fields)), int(a), digest_a, int(b), digest_b)
             for (a, b, mirrored), (digest_a, digest_b, fields) in entries.items()])

    def _write_if_free(self, statement: str, rows: list[tuple]) -> bool:
        """``statement`` for each of ``rows`` in one transaction, only if the writer lock is free at once
        and the index can be written now (not busy, full or read-only): whether it was."""
        if not rows or self.read_only:
            return not rows  # nothing to write, or nowhere to write it
        try:
            with self.writer(wait=0), self._write() as conn:
                conn.executemany(statement, rows)
        except (WriterBusy, NoSpace, OSError):  # OSError: the lock file cannot be opened for writing
            return False
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", 0) & 0xFF not in SQLITE_UNWRITABLE:
                raise
            return False
        return True

    def forget_remembered(self) -> int:
        """Drop everything the second looks remembered (:meth:`remember_edited_vectors`,
        :meth:`remember_keypoint_matches`): a benchmark timing them starts cold; nothing else is touched.
        Returns how many entries went."""
        with self._write() as conn:
            return (conn.execute("DELETE FROM edited_vectors").rowcount
                    + conn.execute("DELETE FROM keypoint_matches").rowcount)

    # -- reading -----------------------------------------------------------------------------------

    def _rows(self, where: str, params: Sequence[Any], vector: bool) -> list[ImageRow]:
        columns = _ROW_COLUMNS + (", vector" if vector else "")
        vector_bytes = 4 * (self.vector_size or 0) if vector else None
        rows = []
        for r in self.db.conn.execute(f"SELECT {columns} FROM images WHERE {where}", params):
            self._check_row(r, vector_bytes)
            traits = traits_from_stored(*r[_TRAITS_AT:_TRAITS_END])  # None when stale: read again later
            rows.append(ImageRow(
                r[0], from_bytes(r[1]), *r[2:9], self._stored_json(r[9], f"image {r[0]}'s labels", _LABELS),
                r[10], r[11], r[12], r[13], traits,
                np.frombuffer(r[_TRAITS_END], dtype="<f4") if vector else None,
            ))
        return rows

    def _check_row(self, row: Sequence[Any], vector_bytes: int | None) -> None:
        """IndexDamaged unless every value of ``row`` (read with _ROW_COLUMNS, then its vector when
        ``vector_bytes`` says how long one is) is of the type lookalike writes there: a number that is
        text, a vector cut short, came out as a ValueError or TypeError traceback far from here."""
        for (name, kinds), value in zip(_ROW_TYPES.items(), row, strict=False):
            if type(value) not in kinds:
                raise IndexDamaged(self.directory / DB_NAME, f"image {row[0]}'s {name}: {value!r:.40} is not "
                                                             "what lookalike writes there")
        if vector_bytes is not None:
            self._check_vector(row[0], row[_TRAITS_END], vector_bytes)

    def _check_vector(self, image_id: Any, vector: Any, size: int) -> None:
        if type(vector) is not bytes or len(vector) != size:
            length = f"{len(vector)} bytes" if type(vector) is bytes else type(vector).__name__
            raise IndexDamaged(self.directory / DB_NAME, f"image {image_id}'s vector is {length}, not the "
                                                         f"{size} bytes of its vector size")

    def get(self, id: int, *, vector: bool = True) -> ImageRow | None:
        if int(id) not in _SQLITE_INTEGERS:  # no row has it, and SQLite cannot even be asked
            return None
        rows = self._rows("id = ?", (int(id),), vector)
        return rows[0] if rows else None

    def get_by_path(self, path: str | Path, *, vector: bool = True) -> ImageRow | None:
        rows = self._rows("path_bytes = ?", (to_bytes(path),), vector)
        return rows[0] if rows else None

    def get_many(self, ids: Sequence[int], *, vector: bool = False) -> list[ImageRow]:
        """Rows for search hits, in the order asked; ids no longer present are skipped."""
        by_id: dict[int, ImageRow] = {}
        unique = list(dict.fromkeys(int(i) for i in ids))
        for start in range(0, len(unique), 500):  # stay under SQLite's bound-parameter limit
            chunk = unique[start:start + 500]
            for row in self._rows(f"id IN ({','.join('?' * len(chunk))})", chunk, vector):
                by_id[row.id] = row
        return [by_id[i] for i in unique if i in by_id]

    def file_states(self) -> dict[str, FileState]:
        """Every indexed path with its size, mtime, digest and whether its traits are current: change
        detection for a whole tree at once."""
        return {
            from_bytes(raw): FileState(id, size, mtime, digest, version == TRAITS_VERSION, device, inode)
            for id, raw, size, mtime, digest, version, device, inode in self.db.conn.execute(
                "SELECT id, path_bytes, size, mtime, digest, traits_version, device, inode FROM images"
            )
        }

    def file_identities(self) -> FileSet:
        """Every indexed file's path and (where known) device and inode: which files this index *is*."""
        files = FileSet()
        for raw, device, inode in self.db.conn.execute("SELECT path_bytes, device, inode FROM images"):
            files.add(from_bytes(raw), device, inode)
        return files

    def digests(self) -> dict[int, str]:
        """Every image's content digest by id: exact duplicates, with no model and no vectors."""
        return dict(self.db.conn.execute("SELECT id, digest FROM images"))

    def shared_digest_ids(self) -> list[int]:
        """Ids of images whose content digest another image shares (byte-identical files).

        SQLite answers this from the digest index alone, so it is first checked, in the same snapshot,
        against the path index (both hold every image) and the images table (which must hold each id
        found): a damaged page that reads as a whole but empty one dropped rows from one b-tree only, and
        exact duplicates came out as none ("0 clusters") where they must fail with :class:`IndexDamaged`.
        Costs a scan of the path index, as long as the answer's own scan of the digest index."""
        conn = self.db.conn
        with self.snapshot():
            ids = [i for (i,) in conn.execute(
                "SELECT id FROM images WHERE digest IN "
                "(SELECT digest FROM images GROUP BY digest HAVING count(*) > 1)"
            )]
            try:
                (by_digest,) = conn.execute(
                    "SELECT count(digest) FROM images INDEXED BY idx_images_digest").fetchone()
                (by_path,) = conn.execute(
                    "SELECT count(path_bytes) FROM images INDEXED BY idx_images_path_bytes").fetchone()
            except sqlite3.OperationalError as e:  # an index dropped by hand
                if "no such index" not in str(e):
                    raise
                raise IndexDamaged(self.directory / DB_NAME, str(e)) from None
            found = 0
            for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                chunk = ids[start:start + 500]
                found += conn.execute(f"SELECT count(*) FROM images NOT INDEXED WHERE id IN "
                                      f"({','.join('?' * len(chunk))})", chunk).fetchone()[0]
        if by_digest != by_path:
            raise IndexDamaged(self.directory / DB_NAME, f"its digest index holds {by_digest} images, its "
                                                         f"path index {by_path}")
        if found != len(ids):
            raise IndexDamaged(self.directory / DB_NAME, f"{len(ids) - found} of the images its digest index "
                                                         "names are missing from its images table")
        return ids

    def shapes(self) -> np.ndarray:
        """Every image's (width, height), indexed by id ([max id + 1, 2], zeros where no image): shape
        tests over whole neighbour lists at once (duplicates' second looks), 8 bytes per image."""
        return self._by_id("width, height", "size", 0, np.int32)

    def content_shapes(self) -> np.ndarray:
        """Every image's content box (width, height; ``Traits``), indexed by id, zeros where unknown: which
        neighbours could be a picture and its copy with a border or caption band added."""
        return self._by_id("coalesce(content_width, 0), coalesce(content_height, 0)", "content size", 0,
                           np.int32)

    def greyscale(self) -> np.ndarray:
        """Every image's greyscale trait, indexed by id: 1 grey, 0 colour, -1 unknown (no image, or
        indexed before schema 3): which neighbours could be a colour picture and its greyscale copy."""
        return self._by_id("coalesce(greyscale, -1)", "greyscale trait", -1, np.int8)[:, 0]

    def _by_id(self, columns: str, what: str, missing: int, dtype: type) -> np.ndarray:
        """``columns`` (SQL expressions over ``images``: each image's ``what``) of every image as rows of a
        table indexed by id, ``missing`` where there is no image."""
        top = self.db.conn.execute("SELECT coalesce(max(id), 0) FROM images").fetchone()[0]
        cursor = self.db.conn.execute(f"SELECT id, {columns} FROM images")
        try:
            rows = np.array(cursor.fetchall(), dtype=np.int64)
        except (TypeError, ValueError):  # text or a blob where a number is written
            raise IndexDamaged(self.directory / DB_NAME, f"an image's {what} is not a number") from None
        table = np.full((top + 1, len(cursor.description) - 1), missing, dtype=dtype)
        if len(rows):
            table[rows[:, 0]] = rows[:, 1:]
        return table

    def thumbnails(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored luminance thumbnails of ``ids`` as rows of a uint8 matrix
        (:func:`~lookalike.embedder.traits.thumbnail_matrix`), and which were recorded (schema 4 on)."""
        size = THUMBNAIL_SIDE * THUMBNAIL_SIDE
        matrix = np.zeros((len(ids), size), dtype=np.uint8)
        recorded = np.zeros(len(ids), dtype=bool)
        row_of = {int(image_id): row for row, image_id in enumerate(ids)}
        keys = list(row_of)
        for start in range(0, len(keys), 500):  # stay under SQLite's bound-parameter limit
            chunk = keys[start:start + 500]
            for image_id, thumbnail in self.db.conn.execute(
                f"SELECT id, thumbnail FROM images WHERE id IN ({','.join('?' * len(chunk))})", chunk
            ):
                if type(thumbnail) is bytes and len(thumbnail) == size:
                    matrix[row_of[image_id]] = np.frombuffer(thumbnail, dtype=np.uint8)
                    recorded[row_of[image_id]] = True
        return matrix, recorded

    def edited_vectors(self, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], np.ndarray]:
        """The vectors remembered (:meth:`remember_edited_vectors`) under these (image id, edit) keys, each
        [n, vector size] float32 as written; only those made from the content the image has now (a file
        indexed again since has another digest)."""
        wanted = set(keys)
        ids = sorted({image_id for image_id, _ in wanted})
        found: dict[tuple[int, str], np.ndarray] = {}
        dim = self.vector_size
        for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            for image_id, edit, vector in self.db.conn.execute(
                "SELECT e.image_id, e.edit, e.vector FROM edited_vectors AS e JOIN images AS i ON "
                f"i.id = e.image_id AND i.digest = e.digest WHERE i.id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                if (image_id, edit) in wanted:
                    found[image_id, edit] = np.frombuffer(vector, dtype="<f4").reshape(-1, dim)
        return found

    def keypoint_matches(self, version: str, keys: Iterable[tuple[int, int, bool]]
                         ) -> dict[tuple[int, int, bool], list]:
        """The matches remembered (:meth:`remember_keypoint_matches`) under these (image a, image b, b
        mirrored) keys, each as the list of the match's fields written; only those the code ``version``
        names found (older code may have measured otherwise; the images' content is the same, or the
        triggers of schema 8 would have dropped them)."""
        wanted = set(keys)
        found: dict[tuple[int, int, bool], list] = {}
        firsts = sorted({a for a, _, _ in wanted})
        for start in range(0, len(firsts), 500):  # stay under SQLite's bound-parameter limit
            chunk = firsts[start:start + 500]
            for a, b, mirrored, fields in self.db.conn.execute(
                "SELECT image_a, image_b, mirrored, match FROM keypoint_matches "
                f"WHERE version = ? AND image_a IN ({','.join('?' * len(chunk))})", [version, *chunk],
            ):
                if (a, b, bool(mirrored)) in wanted:
                    found[a, b, bool(mirrored)] = self._stored_json(
                        fields, f"the keypoint match of images {a} and {b}", _MATCH)
        return found

    def iter_vectors(self, chunk: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids int64, vectors float32 [n, dim]) in id order, chunk by chunk: rebuilding FAISS, no model."""
        last = -1
        while True:
            rows = self.db.conn.execute(
                "SELECT id, vector FROM images WHERE id > ? ORDER BY id LIMIT ?", (last, chunk)
            ).fetchall()
            if not rows:
                return
            size = 4 * (self.vector_size or 0)
            for image_id, vector in rows:
                self._check_vector(image_id, vector, size)
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1)
            yield ids, vectors
            last = int(ids[-1])

    def id_checksum(self) -> tuple[int, int]:
        """(count, sum of ids): a cheap fingerprint of the id set, comparable with the FAISS side."""
        count, total = self.db.conn.execute("SELECT count(*), coalesce(sum(id), 0) FROM images").fetchone()
        return count, total

    def count(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM images").fetchone()[0]

    def stale_traits_count(self) -> int:
        """Rows whose traits are missing or an older ``TRAITS_VERSION``'s (read from files when needed)."""
        return self.db.conn.execute("SELECT count(*) FROM images WHERE traits_version IS NOT ?",
                                    (TRAITS_VERSION,)).fetchone()[0]

    def failure_count(self) -> int:
        return self.db.conn.execute("SELECT count(*) FROM failures").fetchone()[0]

    def failures(self, limit: int | None = None) -> list[Failure]:
        """Most recent first: what ``lookalike failures`` shows."""
        rows = self.db.conn.execute(
            "SELECT path_bytes, reason, failed_at FROM failures ORDER BY failed_at DESC, path_bytes LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [Failure(from_bytes(raw), reason, failed_at) for raw, reason, failed_at in rows]

    def search_text(self, text: str, limit: int = 50) -> list[TextMatch]:
        """Images whose labels (or paths) contain every word of ``text`` as a word prefix.

        Ranked by the probability of the best matching label, so "tabby" lists the surest tabbies first;
        path-only matches follow with probability 0.
        """
        wanted = words(text)
        if not wanted:
            return []
        query = " ".join(f'"{w}"*' for w in wanted)
        ids = [r[0] for r in self.db.conn.execute(
            "SELECT rowid FROM images_fts WHERE images_fts MATCH ?", (query,)
        )]
        matches = []
        for row in self.get_many(ids):
            label, probability = match_labels(row.labels, text) or (None, 0.0)
            matches.append(TextMatch(row, label, probability))
        matches.sort(key=lambda m: (-m.probability, m.row.path))
        return matches[:limit]


# -- migrations ------------------------------------------------------------------------------------


def _v2_exact_paths_and_identity(conn: sqlite3.Connection) -> None:
    """Version 2: paths keyed by their exact bytes, device and inode per row, one row per real file.

    Version 1 keyed rows by path text, which cannot hold a name that is not UTF-8, and kept a file
    reached through a symlink (or a symlinked folder) once per path: a clean-up could then treat a
    file as its own copy. Rows are moved to their real path; a row whose real file already has a row
    is dropped (the same image twice). Vectors are untouched: nothing is embedded again.
    """
    for statement in (
        "ALTER TABLE images ADD COLUMN path_bytes BLOB",
        "ALTER TABLE images ADD COLUMN device INTEGER",
        "ALTER TABLE images ADD COLUMN inode INTEGER",
        "UPDATE images SET path_bytes = CAST(path AS BLOB)",
        "DROP INDEX IF EXISTS idx_images_path",
        "CREATE UNIQUE INDEX idx_images_path_bytes ON images (path_bytes)",
        "CREATE INDEX idx_images_digest ON images (digest)",
        "CREATE TABLE failures_v2 (path_bytes BLOB PRIMARY KEY, path TEXT, reason TEXT, failed_at TEXT)",
        "INSERT INTO failures_v2 SELECT CAST(path AS BLOB), path, reason, failed_at FROM failures",
        "DROP TABLE failures",
        "ALTER TABLE failures_v2 RENAME TO failures",
    ):  # one by one: executescript() would commit the migration's transaction half way
        conn.execute(statement)
    taken = {bytes(raw) for (raw,) in conn.execute("SELECT path_bytes FROM images")}
    dropped = 0
    for row_id, raw in conn.execute("SELECT id, path_bytes FROM images ORDER BY id").fetchall():
        path = from_bytes(bytes(raw))
        try:
            real = os.path.realpath(path, strict=True)
            st = os.stat(real)
        except (OSError, ValueError):
            continue  # gone: ``index --prune`` forgets it; identity is filled in if it is indexed again
        real_bytes = to_bytes(real)
        if real_bytes != bytes(raw) and real_bytes in taken:
            conn.execute("DELETE FROM images WHERE id = ?", (row_id,))
            dropped += 1
            continue
        taken.discard(bytes(raw))
        taken.add(real_bytes)
        conn.execute(
            "UPDATE images SET path_bytes = ?, path = ?, device = ?, inode = ? WHERE id = ?",
            (real_bytes, display(real), st.st_dev, st.st_ino, row_id),
        )
    if dropped:
        conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")


def _v3_traits(conn: sqlite3.Connection) -> None:
    """Version 3: what the duplicate keeper and its second look read (``embedder/traits.py``).

    Rows indexed before stay NULL and are read from their files when a duplicate run needs them.
    """
    columns = (("content_width", "INTEGER"), ("content_height", "INTEGER"), ("greyscale", "INTEGER"),
               ("quality", "INTEGER"), ("colours", "BLOB"), ("colourfulness", "REAL"))
    for column, kind in columns:
        conn.execute(f"ALTER TABLE images ADD COLUMN {column} {kind}")


def _v4_thumbnails(conn: sqlite3.Connection) -> None:
    """Version 4: each picture's luminance thumbnail (``Traits.thumbnail``), for the duplicates' pixel
    check. Rows indexed before stay NULL and are read from their files when a second look needs them."""
    conn.execute("ALTER TABLE images ADD COLUMN thumbnail BLOB")


def _v5_traits_version(conn: sqlite3.Connection) -> None:
    """Version 5: which ``TRAITS_VERSION`` found each row's traits. Rows indexed before are NULL, stale:
    read again from their files when a duplicate run needs them, refreshed by the next ``index`` run."""
    conn.execute("ALTER TABLE images ADD COLUMN traits_version INTEGER")


def _v6_tints(conn: sqlite3.Connection) -> None:
    """Version 6: each picture's colours cell by cell (``Traits.tint``), for the duplicates' colour check.
    Rows indexed before have traits of an older ``TRAITS_VERSION``: read again from their files when a
    duplicate run needs them, refreshed by the next ``index`` run."""
    conn.execute("ALTER TABLE images ADD COLUMN tint BLOB")


def _v7_edited_vectors(conn: sqlite3.Connection) -> None:
    """Version 7: the vectors of edited pictures the duplicates' second looks embedded (a picture turned
    a quarter, greyed, cropped to its content, shrunk to another's size), by image and edit, with the
    digest of the content they were made from: they depend on nothing else (the model is the index's),
    so a second run, after a review, reads them instead of embedding them again. Derived data: dropping
    the table loses only time. Triggers drop an image's entries when its row goes or is indexed again
    with other content, in the same transaction, whichever code path deletes or re-indexes it."""
    for statement in (
        "CREATE TABLE edited_vectors (image_id INTEGER NOT NULL, edit TEXT NOT NULL, digest TEXT NOT NULL, "
        "vector BLOB NOT NULL, PRIMARY KEY (image_id, edit))",
        "CREATE TRIGGER edited_vectors_of_deleted AFTER DELETE ON images BEGIN "
        "DELETE FROM edited_vectors WHERE image_id = old.id; END",
        "CREATE TRIGGER edited_vectors_of_changed AFTER UPDATE OF digest ON images "
        "WHEN new.digest IS NOT old.digest BEGIN DELETE FROM edited_vectors WHERE image_id = old.id; END",
    ):
        conn.execute(statement)


def _v8_keypoint_matches(conn: sqlite3.Connection) -> None:
    """Version 8: how two files' keypoints matched in the duplicates' geometric check and keypoint look,
    by the pair of images (the second mirrored or not) and the version of the code that matched them:
    reading and describing the files is most of a second run's time. Derived data, as ``edited_vectors``;
    triggers drop a pair's entries when either image's row goes or is indexed again with other content."""
    statements = ["CREATE TABLE keypoint_matches (image_a INTEGER NOT NULL, image_b INTEGER NOT NULL, "
                  "mirrored INTEGER NOT NULL, version TEXT NOT NULL, match TEXT NOT NULL, "
                  "PRIMARY KEY (image_a, image_b, mirrored))",
                  "CREATE INDEX keypoint_matches_by_b ON keypoint_matches (image_b)"]
    for side in ("a", "b"):
        gone = f"DELETE FROM keypoint_matches WHERE image_{side} = old.id; END"
        statements += [f"CREATE TRIGGER keypoint_matches_of_deleted_{side} AFTER DELETE ON images "
                       f"BEGIN {gone}",
                       f"CREATE TRIGGER keypoint_matches_of_changed_{side} AFTER UPDATE OF digest ON images "
                       f"WHEN new.digest IS NOT old.digest BEGIN {gone}"]
    for statement in statements:
        conn.execute(statement)


def _v9_ids_never_reused(conn: sqlite3.Connection) -> None:
    """Version 9: the highest id given so far is kept (``LAST_ID``), so new files never take the ids of
    files moved or deleted from now on (those gone before this step cannot be known)."""
    conn.execute("INSERT INTO meta (key, value) SELECT ?, CAST(coalesce(max(id), 0) AS TEXT) FROM images "
                 "WHERE true ON CONFLICT(key) DO NOTHING", (LAST_ID,))


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v2_exact_paths_and_identity,  # 1 -> 2
    _v3_traits,  # 2 -> 3
    _v4_thumbnails,  # 3 -> 4
    _v5_traits_version,  # 4 -> 5
    _v6_tints,  # 5 -> 6
    _v7_edited_vectors,  # 6 -> 7
    _v8_keypoint_matches,  # 7 -> 8
    _v9_ids_never_reused,  # 8 -> 9
]
"""Step N upgrades schema N+1 to N+2. Append only: a released step is never edited."""
SCHEMA_VERSION = len(MIGRATIONS) + 1


class _Closed:
    """What a closed store's database is: every use says, in one line, that the index was closed (a
    ``with lookalike.open(...)`` block left, ``close()`` called), instead of sqlite3's ProgrammingError."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def error(self) -> CollectionError:
        return CollectionError(f"the index in {display(self.directory)} was closed: open it again to use it")

    def __getattr__(self, name: str) -> Any:
        raise self.error()

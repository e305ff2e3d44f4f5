"""Acting on duplicate clusters: move copies to a quarantine folder (undoably) or delete them.

Safety rules, because these functions touch a person's photos:

- Keepers are never touched; a copy is only acted on while it and its keeper both still hold what was
  indexed (size, mtime and content digest: otherwise the similarity is stale, and a keeper overwritten
  with another photo would leave the copy the only one of its picture), the copy is still a regular
  file (not a link swapped in), and is not the keeper's own file under another name (a hard link, a
  bind mount: :mod:`lookalike.paths`). Those are shown in reports and never acted on.
- A quarantine folder carries a marker file (``.lookalike-quarantine``), so indexing a folder inside it
  never pulls the moved copies back in, and files already in it are never moved again. So a quarantine
  is a new or empty folder, or one already a quarantine: the marker would hide any other folder's own
  photos from indexing.
- Nothing is ever overwritten: moves use a hard link (which fails if the target exists) or, across file
  systems, a copy into a hidden partial file that takes its name only while the name is free (a kill
  leaves the name absent or whole); a name clash gets a new name, ``name (1).jpg``, shortened to fit.
- The manifest is written *ahead* of each move, one JSON object per line, flushed and fsynced, so
  a crash at any moment leaves a manifest that undoes everything that did move (a torn last line is
  ignored). Undo checks the file system and sha256 of each file, so running it twice is harmless.
- A file that vanished, fails to move, or blocks its own undo is reported and the rest carry on.

Each function returns what it did, so the caller can keep the index in step.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lookalike.errors import ImageError, NoSpace, QuarantineError
from lookalike.index.records import Cluster, Member
from lookalike.index.walk import QUARANTINE_MARKER, digest_file, is_quarantine, open_regular, someones_names
from lookalike.paths import display, same_file

MANIFEST_KIND = "lookalike-quarantine"
MANIFEST_VERSION = 1
NAME_MAX = 255  # bytes in one file name on the file systems photos live on (ext4, APFS, NTFS, exFAT)
NAME_TRIES = 1000  # names tried for one copy while other processes take them
PARTIAL_PREFIX = ".lookalike-partial-"
MANIFEST_HEADER_MAX = 1 << 16  # bytes of a manifest's first line read at most: a header takes about 200
NO_LINKS = (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK)  # a hard link cannot be made here
# Tolerance when comparing a file's mtime with the indexed one (file systems round differently).
MTIME_SLACK_S = 2.0


@dataclass(frozen=True)
class Problem:
    """A file that was left alone, and why (a few words, shown to the user)."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Moved:
    original: Path
    moved_to: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class MoveResult:
    manifest: Path | None
    """What :func:`undo` takes; None when nothing was moved (no manifest is left behind)."""
    moved: tuple[Moved, ...]
    problems: tuple[Problem, ...]

    @property
    def originals(self) -> list[Path]:
        """Paths that no longer hold an image: the rows the index should drop."""
        return [m.original for m in self.moved]


@dataclass(frozen=True)
class UndoResult:
    restored: tuple[Path, ...]
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class DeleteResult:
    deleted: tuple[Path, ...]
    problems: tuple[Problem, ...]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _actionable(
    clusters: Iterable[Cluster], quarantine: Path | None = None
) -> Iterator[tuple[Member, Path] | Problem]:
    """Each copy whose keeper is still as indexed and which is still, and only, the file that was indexed
    (its content digest is compared by the caller, right before acting)."""
    seen: set[Path] = set()
    for cluster in clusters:
        keeper = Path(cluster.keeper.path)
        keeper_changed = _keeper_changed(cluster.keeper) if cluster.copies else None
        for copy in cluster.copies:
            path = Path(copy.path)
            if path in seen or copy.same_file:
                continue  # a hard link of its keeper: removing it would free nothing
            seen.add(path)
            try:
                st = path.lstat()
            except FileNotFoundError:
                yield Problem(path, "vanished")
                continue
            if not stat.S_ISREG(st.st_mode):
                yield Problem(path, "no longer a regular file (replaced by a link or a folder)")
            elif keeper_changed:
                yield Problem(path, keeper_changed)
            elif same_file(path, keeper):
                yield Problem(path, f"the same file as its keeper {display(keeper)}; left alone")
            elif quarantine is not None and path.is_relative_to(quarantine):
                yield Problem(path, "already in the quarantine")
            elif not _stat_as_indexed(copy, st):
                yield Problem(path, "changed since it was indexed")
            else:
                yield copy, path


def _keeper_changed(keeper: Member) -> str | None:
    """Why ``keeper`` no longer vouches for its copies (gone, not a regular file, other content), or None.

    Its digest is read once a cluster: a photo overwritten with another one at its name would otherwise
    be the "original" of copies that are now the only ones of their picture."""
    path = Path(keeper.path)
    try:
        st = path.stat()
        changed = not stat.S_ISREG(st.st_mode) or not _stat_as_indexed(keeper, st) or (
            keeper.digest is not None and digest_file(path) != keeper.digest)
    except FileNotFoundError:
        return f"its keeper {display(path)} is missing"
    except (OSError, ImageError):
        changed = True
    return f"its keeper {display(path)} changed since it was indexed" if changed else None


def _stat_as_indexed(member: Member, st: os.stat_result) -> bool:
    """The size and mtime it was indexed with (file systems round times differently: ``MTIME_SLACK_S``)."""
    return st.st_size == member.size and abs(st.st_mtime - member.mtime) <= MTIME_SLACK_S


def _content_changed(member: Member, digest: str) -> bool:
    return member.digest is not None and digest != member.digest


def _free_name(target: Path) -> Path:
    """``target`` itself if free, else ``stem (1).ext``, ``stem (2).ext``... (checked, not reserved),
    the stem shortened where the number would make the name too long for the file system."""
    candidate, n = target, 0
    while os.path.lexists(candidate):
        n += 1
        candidate = _numbered(target, n)
    return candidate


def _numbered(target: Path, n: int) -> Path:
    ending = os.fsencode(f" ({n}){target.suffix}")
    stem = os.fsencode(target.stem)[:max(1, NAME_MAX - len(ending))]
    return target.with_name(os.fsdecode(stem + ending))


class SourceStays(OSError):
    """The file reached its new place, but its old one could not be removed (a read-only mount)."""


def _move_no_clobber(src: Path, dst: Path, *, keep_if_source_stays: bool = False) -> None:
    """Move a file into an existing folder without ever replacing ``dst``: raise FileExistsError instead.

    ``os.rename`` silently replaces an existing target on POSIX, so a hard link (atomic, fails on an
    existing name) is made and the source unlinked; across file systems, or where hard links are not
    supported, the bytes are copied (:func:`_copy_no_clobber`), then the source removed. When the source
    cannot be removed, ``dst`` (made here) is removed again, so a move that did not happen leaves no
    copy behind (a read-only photo folder filled the quarantine with copies no manifest named), unless
    ``keep_if_source_stays`` (an undo: the file is back, only the quarantine keeps a copy): SourceStays.
    """
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in NO_LINKS:
            raise
        _copy_no_clobber(src, dst)
    try:
        os.unlink(src)
    except FileNotFoundError:
        pass  # taken meanwhile (an undo racing this one, finding the file back): dst holds it, its only name
    except OSError as e:
        if keep_if_source_stays:
            raise SourceStays(e.errno, e.strerror, str(src)) from None
        with contextlib.suppress(OSError):
            os.unlink(dst)
        raise


def _copy_no_clobber(src: Path, dst: Path) -> None:
    """Copy ``src`` to the free name ``dst`` so that, killed at any moment, ``dst`` is absent or whole.

    The bytes go to a hidden partial file beside ``dst`` (the indexer skips hidden names), fsynced, which
    then takes ``dst``'s name by a hard link (fails if the name was taken meanwhile) or, on a file system
    without them, a rename once the name is seen free. A kill leaves at most the partial file, which the
    next move or undo into that folder removes (:func:`_remove_killed_partials`)."""
    partial = dst.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        with open(src, "rb") as fin, open(partial, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
        shutil.copystat(src, partial)
        try:
            os.link(partial, dst, follow_symlinks=False)
        except OSError as e:
            if e.errno not in NO_LINKS:
                raise
            if os.path.lexists(dst):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst)) from None
            os.rename(partial, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def _remove_killed_partials(folders: Iterable[Path]) -> None:
    """Remove the partial files that copies killed mid-way left in ``folders`` (a run's destinations, each
    looked at once, not once a file): ours by their name, and their process gone (a live one may still be
    copying)."""
    for folder in folders:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                pid = entry.name.removeprefix(PARTIAL_PREFIX).split("-")[0]
                if entry.name.startswith(PARTIAL_PREFIX) and pid.isdigit() and not _running(int(pid)):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def _make_folder(folder: Path, quarantine: Path) -> None:
    """Make a copy's folder in the quarantine; it must end up a real folder inside it (a file or a link
    in the way is the copy's problem, not a reason to retry or to leave the quarantine)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not Path(os.path.realpath(folder)).is_relative_to(quarantine):
        raise OSError(errno.EXDEV, f"{display(folder)} leads out of the quarantine")


def _append(log: IO[str], entry: dict) -> None:
    """One manifest line, on disk before the move it announces. No room for it: stop moving at all."""
    try:
        log.write(json.dumps(entry) + "\n")  # ASCII escapes keep undecodable names exact
        log.flush()
        os.fsync(log.fileno())
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise NoSpace(f"no space left for the quarantine manifest {display(log.name)}: "
                          "nothing more was moved; undo it to put back what was") from None
        raise


def _common_root(paths: list[Path]) -> Path:
    return Path(os.path.commonpath([p.parent for p in paths])) if paths else Path.cwd()


def move_copies(
    clusters: Iterable[Cluster], quarantine_dir: str | Path, root: str | Path | None = None
) -> MoveResult:
    """Move every copy (never a keeper) under ``quarantine_dir``, keeping its path relative to ``root``.

    ``root`` defaults to the deepest folder holding all copies, so ``photos/2021/a.jpg`` lands at
    ``quarantine/2021/a.jpg``. The manifest (``quarantine/manifest-<time>.jsonl``) is what ``undo``
    reads; it is made with the first move, so a run that moves nothing leaves none. Copies outside a
    given ``root`` are reported, not moved; so is a copy that cannot be placed, and the rest go on.
    """
    quarantine = check_quarantine(quarantine_dir)
    candidates, problems = [], []
    for item in _actionable(clusters, quarantine):
        if isinstance(item, Problem):
            problems.append(item)
        else:
            candidates.append((item[0], item[1].absolute()))
    base = Path(root).absolute() if root is not None else _common_root([path for _, path in candidates])
    _remove_killed_partials({(quarantine / src.relative_to(base)).parent for _, src in candidates
                             if src.is_relative_to(base)})
    moved: list[Moved] = []
    with contextlib.ExitStack() as stack:
        log: IO[str] | None = None
        for copy, src in candidates:
            if not src.is_relative_to(base):
                problems.append(Problem(src, f"outside {base}"))
                continue
            try:
                size, digest = src.stat().st_size, digest_file(src)
            except OSError as e:
                problems.append(Problem(src, e.strerror or "unreadable"))
                continue
            except ImageError as e:
                problems.append(Problem(src, e.reason))
                continue
            if _content_changed(copy, digest):
                problems.append(Problem(src, "changed since it was indexed"))
                continue
            if log is None:
                log = stack.enter_context(_new_manifest(quarantine, base))
            outcome = _move_one(log, src, quarantine / src.relative_to(base), quarantine, size, digest)
            if isinstance(outcome, Problem):
                problems.append(outcome)
            else:
                moved.append(outcome)
    if log is not None and not moved:
        os.unlink(log.name)  # every move failed: nothing to undo
    return MoveResult(Path(log.name) if moved else None, tuple(moved), tuple(problems))


def _move_one(log: IO[str], src: Path, target: Path, quarantine: Path, size: int,
              digest: str) -> Moved | Problem:
    """Move ``src`` to ``target`` or the first free name beside it, announced in the manifest first."""
    try:
        _make_folder(target.parent, quarantine)
    except OSError as e:
        return Problem(src, f"cannot make its folder in the quarantine: {e.strerror or e}")
    for _ in range(NAME_TRIES):
        try:
            dst = _free_name(target)
        except OSError as e:
            return Problem(src, f"no name for it in the quarantine: {e.strerror or e}")
        _append(log, {"op": "move", "original": str(src), "moved_to": str(dst), "size": size,
                      "sha256": digest, "time": _now()})  # written ahead: a crash after the move is undoable
        try:
            _move_no_clobber(src, dst)
        except FileExistsError:
            _append(log, {"op": "failed", "original": str(src), "moved_to": str(dst),
                          "reason": "name taken meanwhile"})
            continue
        except OSError as e:
            _append(log, {"op": "failed", "original": str(src), "moved_to": str(dst),
                          "reason": e.strerror or str(e)})
            return Problem(src, e.strerror or str(e))
        return Moved(src, dst, size, digest)
    return Problem(src, f"every free name in the quarantine was taken meanwhile ({NAME_TRIES} tries)")


def check_quarantine(quarantine_dir: str | Path) -> Path:
    """The folder ``quarantine_dir`` names (links resolved), unless copies cannot move into it: a file
    where it or a folder above it would be, a folder that cannot be written, or one holding other files
    that is not a quarantine already (its marker would hide that folder's own photos from indexing for
    good), or a link leading nowhere (the folder would be made where it points, out of sight). Asked
    before a duplicates run, which takes minutes, and again before the first move."""
    given = Path(quarantine_dir).expanduser().absolute()
    quarantine = Path(os.path.realpath(given))
    there = next(p for p in (quarantine, *quarantine.parents) if os.path.lexists(p))
    if nowhere := _link_leading_nowhere(given):
        problem = nowhere
    elif not there.is_dir():
        problem = f"{display(there)} is a file, not a folder"
    elif not os.access(there, os.W_OK | os.X_OK):
        problem = f"{display(there)} cannot be written"
    elif there == quarantine and not _empty_or_quarantine(quarantine):
        problem = (f"{display(quarantine)} already holds files and is not a lookalike quarantine: choose a "
                   "new or empty folder (a quarantine is hidden from indexing, and its files with it)")
    else:
        return quarantine
    raise QuarantineError(f"cannot move copies into {display(quarantine_dir)}: {problem}")


def _link_leading_nowhere(path: Path) -> str | None:
    """Why the deepest part of ``path`` that is there is a link to nothing (a missing target, a loop),
    or None."""
    there = next(p for p in (path, *path.parents) if os.path.lexists(p))
    try:
        os.stat(there)
    except FileNotFoundError:
        return f"{display(there)} is a link to {display(os.path.realpath(there))}, which does not exist"
    except OSError as e:
        return f"{display(there)} is a link that cannot be followed: {e.strerror}"
    return None


def _empty_or_quarantine(folder: Path) -> bool:
    """Hidden files and litter do not count, as for a new index (:func:`someones_names`): a new disk's
    lost+found."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return False
    return is_quarantine(entries) or not someones_names(e.name for e in entries)


@contextlib.contextmanager
def _new_manifest(quarantine: Path, base: Path) -> Iterator[IO[str]]:
    """The quarantine made and marked, and a manifest of a name no other run holds (two runs in one
    second, a server and the CLI, each get their own: the name is created exclusively)."""
    try:
        quarantine.mkdir(parents=True, exist_ok=True)
        (quarantine / QUARANTINE_MARKER).touch()  # the indexer never walks into this folder
    except OSError as e:
        raise QuarantineError(f"cannot make the quarantine {display(quarantine)}: {e.strerror}") from None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    while True:
        manifest = _free_name(quarantine / f"manifest-{stamp}.jsonl")
        try:
            log = open(manifest, "x", encoding="utf-8")  # noqa: SIM115 (closed below)
        except FileExistsError:
            continue
        break
    with log:
        try:
            _append(log, {"kind": MANIFEST_KIND, "version": MANIFEST_VERSION, "created": _now(),
                          "root": str(base), "quarantine": str(quarantine)})
        except BaseException:
            manifest.unlink()  # no room even for its first line: an empty manifest only misleads undo
            raise
        yield log


def read_moves(manifest: Path) -> list[dict]:
    """The move entries that were not marked failed; a torn last line (crash mid-write) is skipped.

    Every line is checked before anything is put back, so a damaged or hand-edited manifest is refused
    whole, never half undone; and only files inside the manifest's own quarantine are ever moved out. A
    quarantine moved or renamed as a whole, manifests and all, is still undone: the files its manifest
    recorded under the old folder are read in the manifest's folder now."""
    header, lines = _manifest_lines(manifest)
    entries = [header]
    for number, line in enumerate(lines, start=2):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) + 1:
                break
            raise QuarantineError(f"{display(manifest)}: line {number} is not JSON") from None
    quarantine = Path(os.path.realpath(manifest.parent))
    recorded = entries[0].get("quarantine")
    if isinstance(recorded, str) and os.path.isabs(recorded) and Path(recorded) != quarantine:
        entries[1:] = [_moved_along(entry, Path(recorded), quarantine) for entry in entries[1:]]
    for number, entry in enumerate(entries[1:], start=2):
        if not _valid_entry(entry, quarantine):
            raise QuarantineError(f"{display(manifest)}: line {number} is not a move this quarantine made; "
                                  "nothing was put back")
    failed = {(e["original"], e["moved_to"]) for e in entries[1:] if e["op"] == "failed"}
    return [e for e in entries[1:] if e["op"] == "move" and (e["original"], e["moved_to"]) not in failed]


def _manifest_lines(manifest: Path) -> tuple[dict, list[str]]:
    """The manifest's header and its other lines, read from a regular file only (a FIFO named as one
    waited forever for a writer, and /dev/zero was read until memory ran out) and past its first line
    only when that is a manifest's header (a video named by mistake was read whole into memory)."""
    try:
        with os.fdopen(open_regular(manifest), "rb") as f:
            first = f.readline(MANIFEST_HEADER_MAX)
            try:
                header = json.loads(first)
            except ValueError:  # not JSON, or not UTF-8
                header = None
            if not isinstance(header, dict) or header.get("kind") != MANIFEST_KIND:
                raise QuarantineError(f"{display(manifest)} is not a lookalike quarantine manifest")
            return header, f.read().decode("utf-8").splitlines()
    except ImageError as e:
        raise QuarantineError(f"cannot read manifest {display(manifest)}: {e.reason}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise QuarantineError(f"cannot read manifest {display(manifest)}: {e}") from None


def _moved_along(entry: object, recorded: Path, quarantine: Path) -> object:
    """``entry`` with its file in ``quarantine`` when it was recorded under ``recorded`` (the quarantine's
    folder when the manifest was written); anything else as it is, for :func:`_valid_entry` to judge."""
    moved_to = entry.get("moved_to") if isinstance(entry, dict) else None
    if not isinstance(moved_to, str) or not Path(moved_to).is_relative_to(recorded):
        return entry
    return {**entry, "moved_to": str(quarantine / Path(moved_to).relative_to(recorded))}


def _valid_entry(entry: object, quarantine: Path) -> bool:
    """A move (or a failed one) between two absolute paths, the moved file's inside ``quarantine``."""
    if not isinstance(entry, dict) or entry.get("op") not in ("move", "failed"):
        return False
    paths = (entry.get("original"), entry.get("moved_to"))
    if not all(isinstance(p, str) and os.path.isabs(p) for p in paths):
        return False
    if entry["op"] == "move" and not isinstance(entry.get("sha256"), str):
        return False
    moved_to = Path(os.path.realpath(os.path.dirname(entry["moved_to"])))
    return moved_to.is_relative_to(quarantine)


def undo(manifest_path: str | Path, moves: list[dict] | None = None) -> UndoResult:
    """Put every moved file back where it was, byte-identical; report what cannot be restored.

    A file that has reappeared at its original place is never overwritten: that one copy stays in the
    quarantine and is reported, the rest are restored; unless it is the moved file itself, left at both
    places by a move or undo that was killed (:func:`_back_already`). Partial files that killed copies
    left, in the photos' folders (an undo's) and in the quarantine's (a move's), are removed, and so are
    emptied quarantine folders.
    ``moves``: the manifest's :func:`read_moves`, for a caller that needs them too (read once).
    """
    manifest = Path(manifest_path).expanduser().absolute()  # relative: emptied folders are still found
    restored, problems = [], []
    moves = read_moves(manifest) if moves is None else moves
    _remove_killed_partials({Path(entry[key]).parent for entry in moves for key in ("original", "moved_to")})
    for entry in moves:
        original, moved_to = Path(entry["original"]), Path(entry["moved_to"])
        try:
            outcome = _put_back(original, moved_to, entry["sha256"])
        except SourceStays as e:
            problems.append(Problem(original, "put back, but its copy stays in the quarantine: "
                                              f"{e.strerror}"))
            outcome = True
        except OSError as e:
            outcome = Problem(original, e.strerror or str(e))
        if isinstance(outcome, Problem):
            problems.append(outcome)
            continue
        if outcome:
            restored.append(original)
        _remove_empty_parents(moved_to.parent, manifest.parent)  # also after another undo's move of it
    return UndoResult(tuple(restored), tuple(problems))


def _put_back(original: Path, moved_to: Path, digest: str, *, again: bool = True) -> bool | Problem:
    """Put one moved file back: True when this undo put it back, False when there was nothing to do (never
    moved, or back already: put back by an earlier undo, or meanwhile by another one of the same manifest),
    else what stops it. Raises SourceStays when the file is back but the quarantine keeps a name of it.

    Another undo of the manifest can take its steps between this one's: the look at both places, reading
    the quarantine's file, and the link and unlink that move it. A step whose ground went from under it
    (the quarantine's name gone, the original's taken) looks ``again``, once, at what is there now, so the
    slower undo finds the work done instead of a file that is "back here" or a copy that "stays in the
    quarantine"; what it removes is still only the quarantine's name of a file proven back."""
    if not moved_to.exists():
        if not original.exists():
            return Problem(original, f"missing from the quarantine ({display(moved_to)})")
        return False  # never moved (crash before the move) or restored already
    back = original.exists() or original.is_symlink()
    if back and not _back_already(original, moved_to, digest):
        if again and not moved_to.exists():  # the other undo took it back while this one compared them
            return _put_back(original, moved_to, digest, again=False)
        return Problem(original, f"a file is back here; left {display(moved_to)} in place")
    if not back:
        try:
            changed = digest_file(moved_to) != digest
        except ImageError as e:
            if again and not moved_to.exists():  # put back by the other undo before this one read it
                return _put_back(original, moved_to, digest, again=False)
            return Problem(original, f"{display(moved_to)}: {e.reason}; left in place")
        if changed:
            return Problem(original, f"{display(moved_to)} changed in the quarantine; left there")
    try:
        if back:
            _remove_second_name(moved_to)
        else:
            original.parent.mkdir(parents=True, exist_ok=True)
            _move_no_clobber(moved_to, original, keep_if_source_stays=True)
    except (FileExistsError, FileNotFoundError):
        if not again:
            raise
        return _put_back(original, moved_to, digest, again=False)  # linked back (or taken) by the other
    return True


def _back_already(original: Path, moved_to: Path, digest: str) -> bool:
    """Whether the file at ``original`` is the moved file itself, still also in the quarantine: a move or
    an undo killed after the file took its new name and before its old one was removed (a hard link: both
    names are one file), or after a copy across file systems was whole. Then nothing is left to put back,
    only the quarantine's name to remove; a link or any other content at ``original`` is someone's file."""
    try:
        if not stat.S_ISREG(original.lstat().st_mode):
            return False
        return same_file(original, moved_to) or digest_file(original) == digest == digest_file(moved_to)
    except (OSError, ImageError):
        return False


def _remove_second_name(moved_to: Path) -> None:
    """Remove the quarantine's name of a file back at its place (:func:`_back_already`), as an undo's move
    removes it: SourceStays when it cannot be."""
    try:
        os.unlink(moved_to)
    except FileNotFoundError:
        pass  # another undo of the manifest removed it meanwhile: the same work, done
    except OSError as e:
        raise SourceStays(e.errno, e.strerror, str(moved_to)) from None


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def delete_copies(clusters: Iterable[Cluster]) -> DeleteResult:
    """Delete every copy (never a keeper) for good. Asking the user first is the caller's job."""
    deleted, problems = [], []
    for item in _actionable(clusters):
        if isinstance(item, Problem):
            problems.append(item)
            continue
        copy, path = item
        try:
            if _content_changed(copy, digest_file(path)):
                problems.append(Problem(path, "changed since it was indexed"))
                continue
            path.unlink()
        except OSError as e:
            problems.append(Problem(path, e.strerror or str(e)))
            continue
        except ImageError as e:
            problems.append(Problem(path, e.reason))
            continue
        deleted.append(path)
    return DeleteResult(tuple(deleted), tuple(problems))

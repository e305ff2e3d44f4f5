"""Acting on duplicate clusters: move copies to a quarantine folder (undoably) or delete them.

Safety rules, because these functions touch a person's photos:

- Keepers are never touched; a copy is only acted on while its keeper still exists and the copy
  still has the size and mtime it was indexed with (otherwise the similarity is stale), is still a
  regular file (not a link swapped in), and is not the keeper's own file under another name (a hard
  link, a bind mount: :mod:`lookalike.paths`). Those are shown in reports and never acted on.
- A quarantine folder carries a marker file (``.lookalike-quarantine``), so indexing a folder that
  holds it never pulls the moved copies back in, and files already in it are never moved again.
- Nothing is ever overwritten: moves use a hard link (which fails if the target exists) or an
  exclusive-create copy across file systems; a name clash gets a new name, ``name (1).jpg``.
- The manifest is written *ahead* of each move, one JSON object per line, flushed and fsynced, so
  a crash at any moment leaves a manifest that undoes everything that did move (a torn last line is
  ignored). Undo checks the file system and sha256 of each file, so running it twice is harmless.
- A file that vanished, fails to move, or blocks its own undo is reported and the rest carry on.

Each function returns what it did, so the caller can keep the index in step.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lookalike.errors import ImageError, NoSpace, QuarantineError
from lookalike.index.records import Cluster, Member
from lookalike.index.walk import QUARANTINE_MARKER, digest_file
from lookalike.paths import display, same_file

MANIFEST_KIND = "lookalike-quarantine"
MANIFEST_VERSION = 1
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
    manifest: Path
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
    """Each copy whose keeper is still there and which is still, and only, the file that was indexed."""
    seen: set[Path] = set()
    for cluster in clusters:
        keeper = Path(cluster.keeper.path)
        keeper_present = keeper.is_file()
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
            elif not keeper_present:
                yield Problem(path, f"its keeper {display(keeper)} is missing")
            elif same_file(path, keeper):
                yield Problem(path, f"the same file as its keeper {display(keeper)}; left alone")
            elif quarantine is not None and path.is_relative_to(quarantine):
                yield Problem(path, "already in the quarantine")
            elif st.st_size != copy.size or abs(st.st_mtime - copy.mtime) > MTIME_SLACK_S:
                yield Problem(path, "changed since it was indexed")
            else:
                yield copy, path


def _free_name(target: Path) -> Path:
    """``target`` itself if free, else ``stem (1).ext``, ``stem (2).ext``... (checked, not reserved)."""
    candidate, n = target, 0
    while candidate.exists() or candidate.is_symlink():
        n += 1
        candidate = target.with_name(f"{target.stem} ({n}){target.suffix}")
    return candidate


def _move_no_clobber(src: Path, dst: Path) -> None:
    """Move a file without ever replacing ``dst``: raise FileExistsError instead.

    ``os.rename`` silently replaces an existing target on POSIX, so a hard link (atomic, fails on an
    existing name) is made and the source unlinked; across file systems, or where hard links are not
    supported, the bytes are copied into an exclusively created file, fsynced, then the source removed.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        with open(src, "rb") as fin, open(dst, "xb") as fout:
            try:
                shutil.copyfileobj(fin, fout, 1 << 20)
                fout.flush()
                os.fsync(fout.fileno())
                shutil.copystat(src, dst)
            except BaseException:
                dst.unlink()  # ours: created exclusively above; never leave half a file behind
                raise
    os.unlink(src)


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
    reads. Copies outside a given ``root`` are reported, not moved.
    """
    quarantine = Path(os.path.realpath(Path(quarantine_dir).expanduser()))
    candidates, problems = [], []
    for item in _actionable(clusters, quarantine):
        if isinstance(item, Problem):
            problems.append(item)
        else:
            candidates.append(item[1].absolute())
    base = Path(root).absolute() if root is not None else _common_root(candidates)

    quarantine.mkdir(parents=True, exist_ok=True)
    (quarantine / QUARANTINE_MARKER).touch()  # the indexer never walks into this folder
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    manifest = _free_name(quarantine / f"manifest-{stamp}.jsonl")
    moved = []
    with open(manifest, "x", encoding="utf-8") as log:
        _append(log, {"kind": MANIFEST_KIND, "version": MANIFEST_VERSION, "created": _now(),
                      "root": str(base), "quarantine": str(quarantine)})
        for src in candidates:
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
            target = quarantine / src.relative_to(base)
            while True:
                dst = _free_name(target)
                entry = {"op": "move", "original": str(src), "moved_to": str(dst), "size": size,
                         "sha256": digest, "time": _now()}
                _append(log, entry)  # written ahead: a crash after the move still leaves it undoable
                try:
                    _move_no_clobber(src, dst)
                except FileExistsError:
                    _append(log, {"op": "failed", "original": str(src), "moved_to": str(dst),
                                  "reason": "name taken meanwhile"})
                    continue
                except OSError as e:
                    _append(log, {"op": "failed", "original": str(src), "moved_to": str(dst),
                                  "reason": e.strerror or str(e)})
                    problems.append(Problem(src, e.strerror or str(e)))
                    break
                moved.append(Moved(src, dst, size, digest))
                break
    return MoveResult(manifest, tuple(moved), tuple(problems))


def _read_manifest(manifest: Path) -> list[dict]:
    """The move entries that were not marked failed; a torn last line (crash mid-write) is skipped."""
    try:
        lines = manifest.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise QuarantineError(f"cannot read manifest {display(manifest)}: {e}") from None
    entries = []
    for number, line in enumerate(lines):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) - 1:
                break
            raise QuarantineError(f"{display(manifest)}: line {number + 1} is not JSON") from None
    if not entries or entries[0].get("kind") != MANIFEST_KIND:
        raise QuarantineError(f"{display(manifest)} is not a lookalike quarantine manifest")
    failed = {(e["original"], e["moved_to"]) for e in entries if e.get("op") == "failed"}
    return [e for e in entries if e.get("op") == "move" and (e["original"], e["moved_to"]) not in failed]


def undo(manifest_path: str | Path) -> UndoResult:
    """Put every moved file back where it was, byte-identical; report what cannot be restored.

    A file that has reappeared at its original place is never overwritten: that one copy stays in the
    quarantine and is reported, the rest are restored. Emptied quarantine folders are removed.
    """
    manifest = Path(manifest_path).expanduser().absolute()  # relative: emptied folders are still found
    restored, problems = [], []
    for entry in _read_manifest(manifest):
        original, moved_to = Path(entry["original"]), Path(entry["moved_to"])
        if not moved_to.exists():
            if not original.exists():
                problems.append(Problem(original, f"missing from the quarantine ({display(moved_to)})"))
            continue  # never moved (crash before the move) or already restored
        if original.exists() or original.is_symlink():
            problems.append(Problem(original, f"a file is back here; left {display(moved_to)} in place"))
            continue
        try:
            changed = digest_file(moved_to) != entry["sha256"]
        except ImageError as e:
            problems.append(Problem(original, f"{display(moved_to)}: {e.reason}; left in place"))
            continue
        if changed:
            problems.append(Problem(original, f"{display(moved_to)} changed in the quarantine; left there"))
            continue
        try:
            _move_no_clobber(moved_to, original)
        except OSError as e:
            problems.append(Problem(original, e.strerror or str(e)))
            continue
        restored.append(original)
        _remove_empty_parents(moved_to.parent, manifest.parent)
    return UndoResult(tuple(restored), tuple(problems))


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
        path = item[1]
        try:
            path.unlink()
        except OSError as e:
            problems.append(Problem(path, e.strerror or str(e)))
            continue
        deleted.append(path)
    return DeleteResult(tuple(deleted), tuple(problems))

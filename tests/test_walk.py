"""Walking photo folders: which files are found, and that odd trees (hidden files, link loops) are safe."""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
import pytest

from lookalike.embedder.embedder import Embedding
from lookalike.embedder.images import CHANGED
from lookalike.errors import ImageError, LookalikeError
from lookalike.index.walk import digest_file, embed_failure, normalize_extensions, walk
from lookalike.paths import FileIdentity


def touch(path, content: bytes = b"x") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return str(path)


def found(*roots, **options) -> list[str]:
    return [f.path for f in walk(roots, **options)]


def test_image_files_are_found_recursively_in_name_order(tmp_path):
    expected = [
        touch(tmp_path / "a.jpg"),
        touch(tmp_path / "b.PNG"),  # extensions compare case-insensitively
        touch(tmp_path / "sub" / "c.webp"),
        touch(tmp_path / "sub" / "deeper" / "d.heic"),
        touch(tmp_path / "z.tiff"),
    ]
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "sub" / "movie.mp4")
    touch(tmp_path / "no_extension")

    assert found(tmp_path) == [expected[0], expected[1], expected[4], expected[2], expected[3]]


def test_each_file_comes_with_its_absolute_path_size_and_mtime(tmp_path, monkeypatch):
    touch(tmp_path / "photos" / "a.jpg", b"12345")
    monkeypatch.chdir(tmp_path)

    (file,) = walk(["photos"])

    st = os.stat(tmp_path / "photos" / "a.jpg")
    assert file.path == str(tmp_path / "photos" / "a.jpg") and os.path.isabs(file.path)
    assert (file.size, file.mtime) == (5, st.st_mtime)


def test_hidden_files_and_folders_are_skipped_unless_asked(tmp_path):
    visible = touch(tmp_path / "a.jpg")
    hidden_file = touch(tmp_path / ".b.jpg")
    in_hidden_dir = touch(tmp_path / ".thumbnails" / "c.jpg")

    assert found(tmp_path) == [visible]
    assert sorted(found(tmp_path, include_hidden=True)) == sorted([visible, hidden_file, in_hidden_dir])


def test_a_file_named_directly_is_taken_even_if_hidden_or_oddly_named(tmp_path):
    hidden = touch(tmp_path / ".secret.jpg")
    odd = touch(tmp_path / "scan.jfif")
    assert found(hidden, odd) == [hidden, odd]


def test_extensions_can_be_chosen(tmp_path):
    touch(tmp_path / "a.jpg")
    raw = touch(tmp_path / "b.CR2")
    assert found(tmp_path, extensions=["cr2"]) == [raw]
    assert normalize_extensions(["JPG", ".png"]) == {".jpg", ".png"}


def test_a_symlink_loop_is_walked_once(tmp_path):
    photo = touch(tmp_path / "album" / "a.jpg")
    os.symlink(tmp_path / "album", tmp_path / "album" / "again")  # album/again -> album
    os.symlink(tmp_path, tmp_path / "album" / "up")  # album/up -> the root

    assert found(tmp_path) == [photo]


def test_symlinked_folders_are_followed_unless_asked_not_to(tmp_path):
    touch(tmp_path / "elsewhere" / "b.jpg")
    here = touch(tmp_path / "root" / "a.jpg")
    os.symlink(tmp_path / "elsewhere", tmp_path / "root" / "linked")

    # one file, one path: its real one, whatever path led to it
    assert found(tmp_path / "root") == [here, str(tmp_path / "elsewhere" / "b.jpg")]
    assert found(tmp_path / "root", follow_symlinks=False) == [here]


def test_a_folder_reached_twice_yields_its_files_once(tmp_path):
    photo = touch(tmp_path / "album" / "a.jpg")
    assert found(tmp_path, tmp_path / "album") == [photo]


def test_dangling_links_and_unreadable_folders_are_skipped_and_reported(tmp_path, monkeypatch):
    photo = touch(tmp_path / "a.jpg")
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    locked = touch(tmp_path / "locked" / "b.jpg")
    real_scandir = os.scandir

    def scandir(path):  # chmod 0 would not stop root, so refuse the way the kernel would
        if path == os.path.dirname(locked):
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    skipped = []
    assert found(tmp_path, on_skip=lambda path, reason: skipped.append((path, reason))) == [photo]
    assert skipped == [(str(tmp_path / "dangling.jpg"), "dangling symlink"),
                       (os.path.dirname(locked), "cannot read folder: permission denied")]


def test_every_skip_has_its_reason_and_only_regular_files_are_found(tmp_path):
    photo = touch(tmp_path / "a.jpg")
    os.mkfifo(tmp_path / "fifo.jpg")
    os.symlink("loop.jpg", tmp_path / "loop.jpg")  # a link to itself
    os.symlink(tmp_path, tmp_path / "up")  # a folder link back to the top
    touch(tmp_path / "notes.txt")
    os.symlink(tmp_path / "nothing", tmp_path / "dangling.txt")  # not an image name: not a skip
    skipped = []
    assert found(tmp_path, on_skip=lambda path, reason: skipped.append((path, reason))) == [photo]
    assert dict(skipped) == {
        str(tmp_path / "fifo.jpg"): "not a regular file (FIFO)",
        str(tmp_path / "loop.jpg"): "symlink loop",
        str(tmp_path / "up"): f"symlink loop: leads back to {tmp_path}",
    }
    # A FIFO named directly is never opened (opening it would block until a writer came).
    skipped.clear()
    assert found(tmp_path / "fifo.jpg", on_skip=lambda path, reason: skipped.append(reason)) == []
    assert skipped == ["not a regular file (FIFO)"]


def test_a_path_too_long_for_the_system_is_reported(tmp_path):
    top = tmp_path / "top"
    deep = top
    fd = os.open(tmp_path, os.O_RDONLY)
    try:  # build it relative to open folders: the whole path is longer than the kernel takes
        os.mkdir("top", dir_fd=fd)
        current = os.open("top", os.O_RDONLY, dir_fd=fd)
        while len(os.fsencode(deep)) < 4200:
            os.mkdir("d" * 200, dir_fd=current)
            nxt = os.open("d" * 200, os.O_RDONLY, dir_fd=current)
            os.close(current)
            current, deep = nxt, deep / ("d" * 200)
        os.close(os.open("photo.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=current))
        os.close(current)
    finally:
        os.close(fd)
    skipped = []
    assert found(top, on_skip=lambda path, reason: skipped.append(reason)) == []
    assert skipped and all(reason.endswith("too long") for reason in skipped)


def test_a_file_reached_by_several_paths_is_found_once_under_its_real_path(tmp_path):
    real = touch(tmp_path / "photos" / "b-real.jpg")
    os.symlink("b-real.jpg", tmp_path / "photos" / "a-link.jpg")
    os.symlink(tmp_path / "photos", tmp_path / "alias")
    assert found(tmp_path / "photos") == [real]
    assert found(tmp_path / "alias") == [real]
    assert found(tmp_path / "photos" / "a-link.jpg", tmp_path / "alias" / "b-real.jpg") == [real]
    hard = tmp_path / "photos" / "c-hard.jpg"
    os.link(real, hard)  # a hard link has its own real path: found, and told apart later by its inode
    files = list(walk([tmp_path / "photos"]))
    assert [f.path for f in files] == [real, str(hard)] and files[0].inode == files[1].inode


def test_quarantine_folders_are_never_walked_into(tmp_path):
    photo = touch(tmp_path / "a.jpg")
    touch(tmp_path / "quarantine" / ".lookalike-quarantine")
    touch(tmp_path / "quarantine" / "a.jpg")
    old = tmp_path / "old-quarantine"  # made before the marker existed: its manifest tells
    touch(old / "manifest-20261126T101500.jsonl", b'{"kind": "lookalike-quarantine", "version": 1}\n')
    touch(old / "b.jpg")
    touch(tmp_path / "album" / "manifest-notes.jsonl", b'{"kind": "something else"}\n')
    kept = touch(tmp_path / "album" / "c.jpg")
    assert found(tmp_path) == [photo, kept]


def test_a_root_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(LookalikeError, match="nowhere: no such file or directory"):
        found(tmp_path / "nowhere")


def test_the_digest_is_the_sha256_of_the_content(tmp_path):
    content = os.urandom(300_000)
    assert digest_file(touch(tmp_path / "a.jpg", content)) == hashlib.sha256(content).hexdigest()


def test_the_digest_never_opens_a_fifo(tmp_path):
    os.mkfifo(tmp_path / "swapped.jpg")  # a file swapped for a FIFO after the walk
    with pytest.raises(ImageError, match="not a regular file \\(FIFO\\)"):
        digest_file(tmp_path / "swapped.jpg")


def test_an_embedding_is_stored_only_from_the_version_of_the_file_the_walk_found(tmp_path):
    """Size and mtime as found, or changed while being read; an engine's worker on another machine sees a
    shared folder under its own device number, which is no change."""
    path = touch(tmp_path / "a.jpg", b"picture")
    (found,) = walk([tmp_path])
    st = os.stat(path)
    read_as = FileIdentity(path, st.st_size, st.st_mtime, st.st_dev + 1, st.st_ino)
    embedded = Embedding(np.zeros(4, np.float32), [], 1, 1, "JPEG", digest="d", file=read_as)
    assert embed_failure(found, embedded) is None
    assert embed_failure(found, dataclasses.replace(embedded, file=read_as._replace(mtime=1.0))) == CHANGED
    assert embed_failure(found, ImageError(path, "empty file")) == "empty file"

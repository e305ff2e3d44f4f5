"""Walking photo folders: which files are found, and that odd trees (hidden files, link loops) are safe."""

from __future__ import annotations

import hashlib
import os

import pytest

from lookalike.errors import LookalikeError
from lookalike.index.walk import digest_file, normalize_extensions, walk


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

    # the path keeps the link's name, as the user sees the tree
    assert found(tmp_path / "root") == [here, str(tmp_path / "root" / "linked" / "b.jpg")]
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
    errors = []
    assert found(tmp_path, on_error=lambda path, e: errors.append((path, type(e)))) == [photo]
    assert errors == [(os.path.dirname(locked), PermissionError)]


def test_a_root_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(LookalikeError, match="nowhere: no such file or directory"):
        found(tmp_path / "nowhere")


def test_the_digest_is_the_sha256_of_the_content(tmp_path):
    content = os.urandom(300_000)
    assert digest_file(touch(tmp_path / "a.jpg", content)) == hashlib.sha256(content).hexdigest()

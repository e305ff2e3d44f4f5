"""Moving copies to a quarantine folder and back: nothing lost, nothing overwritten, always undoable."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from lookalike.errors import LookalikeError
from lookalike.index import quarantine
from lookalike.index.quarantine import delete_copies, move_copies, undo
from lookalike.index.records import Cluster, Member


def member(path: Path, similarity: float = 0.95, exact: bool = False) -> Member:
    st = path.stat()
    return Member(0, str(path), 100, 100, st.st_size, st.st_mtime, similarity, exact)


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root, by relative path: equal before and after means byte-identical."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def library(tmp_path) -> tuple[Path, list[Cluster]]:
    """photos/ with two clusters: a keeper at the top, copies in sub-folders (two share a name)."""
    photos = tmp_path / "photos"
    files = {
        "beach.jpg": b"beach original" * 100,
        "2021/whatsapp/beach.jpg": b"beach resized",
        "2021/beach copy.jpg": b"beach original" * 100,
        "cat.jpg": b"cat original" * 100,
        "2022/whatsapp/beach.jpg": b"cat, but named beach",
        "unrelated.jpg": b"not a duplicate",
    }
    for name, data in files.items():
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        (photos / name).write_bytes(data)
    clusters = [
        Cluster(member(photos / "beach.jpg", 1.0), (member(photos / "2021/whatsapp/beach.jpg"),
                                                     member(photos / "2021/beach copy.jpg", 1.0, True))),
        Cluster(member(photos / "cat.jpg", 1.0), (member(photos / "2022/whatsapp/beach.jpg", 0.91),)),
    ]
    return photos, clusters


def test_move_keeps_relative_paths_and_undo_restores_every_byte(library, tmp_path):
    photos, clusters = library
    before = tree_digest(photos)
    quarantine_dir = tmp_path / "quarantine"

    result = move_copies(clusters, quarantine_dir, root=photos)
    assert result.problems == ()
    assert sorted(p.relative_to(photos).as_posix() for p in result.originals) == [
        "2021/beach copy.jpg", "2021/whatsapp/beach.jpg", "2022/whatsapp/beach.jpg"]
    assert sorted(tree_digest(photos)) == ["beach.jpg", "cat.jpg", "unrelated.jpg"]  # keepers stay
    assert (quarantine_dir / "2021/whatsapp/beach.jpg").read_bytes() == b"beach resized"

    restored = undo(result.manifest)
    assert restored.problems == ()
    assert sorted(restored.restored) == sorted(result.originals)
    assert tree_digest(photos) == before
    # emptied folders gone; the marker that keeps the indexer out stays with the manifest
    assert sorted(p.name for p in quarantine_dir.iterdir()) == [".lookalike-quarantine", result.manifest.name]


def test_root_defaults_to_the_deepest_folder_holding_all_copies(library, tmp_path):
    photos, clusters = library
    result = move_copies(clusters, tmp_path / "q")
    assert sorted(m.moved_to.relative_to(tmp_path / "q").as_posix() for m in result.moved) == [
        "2021/beach copy.jpg", "2021/whatsapp/beach.jpg", "2022/whatsapp/beach.jpg"]


def test_a_name_clash_in_the_quarantine_gets_a_new_name_and_nothing_is_overwritten(library, tmp_path):
    photos, clusters = library
    quarantine_dir = tmp_path / "quarantine"
    earlier = quarantine_dir / "2021/whatsapp/beach.jpg"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(b"quarantined last week")

    result = move_copies(clusters, quarantine_dir, root=photos)
    assert earlier.read_bytes() == b"quarantined last week"
    renamed = quarantine_dir / "2021/whatsapp/beach (1).jpg"
    assert renamed.read_bytes() == b"beach resized"
    assert renamed in [m.moved_to for m in result.moved]

    undo(result.manifest)
    assert earlier.read_bytes() == b"quarantined last week"
    assert (photos / "2021/whatsapp/beach.jpg").read_bytes() == b"beach resized"


def test_a_file_back_at_its_original_place_blocks_only_its_own_undo(library, tmp_path):
    photos, clusters = library
    result = move_copies(clusters, tmp_path / "quarantine", root=photos)
    comeback = photos / "2021/beach copy.jpg"
    comeback.write_bytes(b"a new file the user put here")

    restored = undo(result.manifest)
    assert comeback.read_bytes() == b"a new file the user put here"
    assert [p.path for p in restored.problems] == [comeback]
    assert sorted(restored.restored) == sorted(p for p in result.originals if p != comeback)
    assert (tmp_path / "quarantine/2021/beach copy.jpg").exists()  # still safe in the quarantine


def test_the_manifest_records_each_file_with_its_checksum(library, tmp_path):
    photos, clusters = library
    result = move_copies(clusters, tmp_path / "quarantine", root=photos)
    header, *entries = [json.loads(line) for line in result.manifest.read_text().splitlines()]
    assert header["kind"] == "lookalike-quarantine" and header["root"] == str(photos)
    for entry, moved in zip(entries, result.moved, strict=True):
        assert entry["original"] == str(moved.original) and entry["moved_to"] == str(moved.moved_to)
        assert entry["sha256"] == hashlib.sha256(moved.moved_to.read_bytes()).hexdigest()
        assert entry["size"] == moved.size and entry["time"]


def test_a_crash_mid_way_leaves_an_undoable_manifest(library, tmp_path, monkeypatch):
    # The second move dies as if the process were killed: the manifest already names both moves
    # (it is written ahead), and undo restores the one that happened and skips the one that did not.
    photos, clusters = library
    before = tree_digest(photos)
    real_move, calls = quarantine._move_no_clobber, []

    def dies_on_second(src: Path, dst: Path) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_move(src, dst)

    monkeypatch.setattr(quarantine, "_move_no_clobber", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        move_copies(clusters, tmp_path / "quarantine", root=photos)
    monkeypatch.undo()
    [manifest] = (tmp_path / "quarantine").glob("manifest-*.jsonl")
    with open(manifest, "a") as f:
        f.write('{"op": "move", "original": "/torn')  # and the last line was cut short

    restored = undo(manifest)
    assert restored.restored == (calls[0],) and restored.problems == ()
    assert tree_digest(photos) == before


def test_vanished_and_unmovable_files_are_reported_and_the_rest_carry_on(library, tmp_path, monkeypatch):
    photos, clusters = library
    (photos / "2021/beach copy.jpg").unlink()
    real_move = quarantine._move_no_clobber

    def permission_denied(src: Path, dst: Path) -> None:
        if src.name == "beach.jpg" and "2022" in src.parts:
            raise PermissionError(13, "Permission denied")
        real_move(src, dst)

    monkeypatch.setattr(quarantine, "_move_no_clobber", permission_denied)
    result = move_copies(clusters, tmp_path / "quarantine", root=photos)
    assert {(p.path.relative_to(photos).as_posix(), p.reason) for p in result.problems} == {
        ("2021/beach copy.jpg", "vanished"), ("2022/whatsapp/beach.jpg", "Permission denied")}
    assert result.originals == [photos / "2021/whatsapp/beach.jpg"]

    monkeypatch.undo()
    assert undo(result.manifest).restored == (photos / "2021/whatsapp/beach.jpg",)
    assert (photos / "2022/whatsapp/beach.jpg").exists()


def test_copies_are_left_alone_when_their_keeper_is_gone_or_they_changed(library, tmp_path):
    photos, clusters = library
    (photos / "cat.jpg").unlink()
    changed = photos / "2021/whatsapp/beach.jpg"
    changed.write_bytes(b"edited since it was indexed")
    result = delete_copies(clusters)
    assert result.deleted == (photos / "2021/beach copy.jpg",)
    assert {p.path: p.reason for p in result.problems} == {
        changed: "changed since it was indexed",
        photos / "2022/whatsapp/beach.jpg": f"its keeper {photos / 'cat.jpg'} is missing",
    }
    assert changed.exists() and (photos / "2022/whatsapp/beach.jpg").exists()


def test_delete_removes_copies_and_never_keepers(library):
    photos, clusters = library
    result = delete_copies(clusters)
    assert result.problems == ()
    assert sorted(tree_digest(photos)) == ["beach.jpg", "cat.jpg", "unrelated.jpg"]
    assert len(result.deleted) == 3 and not any(p.exists() for p in result.deleted)


def test_undo_refuses_a_file_that_is_not_a_manifest(tmp_path):
    not_a_manifest = tmp_path / "notes.jsonl"
    not_a_manifest.write_text('{"hello": "world"}\n')
    with pytest.raises(LookalikeError, match="not a lookalike quarantine manifest"):
        undo(not_a_manifest)
    with pytest.raises(LookalikeError, match="cannot read"):
        undo(tmp_path / "missing.jsonl")


def test_moves_across_file_systems_copy_then_remove(tmp_path, monkeypatch):
    # os.link fails with EXDEV between file systems: the bytes are copied into a new file instead.
    src, dst = tmp_path / "a.jpg", tmp_path / "q" / "a.jpg"
    src.write_bytes(b"photo bytes")

    def cross_device(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    quarantine._move_no_clobber(src, dst)
    assert dst.read_bytes() == b"photo bytes" and not src.exists()
    src.write_bytes(b"other")
    with pytest.raises(FileExistsError):
        quarantine._move_no_clobber(src, dst)
    assert dst.read_bytes() == b"photo bytes"

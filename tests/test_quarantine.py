"""Moving copies to a quarantine folder and back: nothing lost, nothing overwritten, always undoable."""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
from pathlib import Path
from unittest.mock import ANY

import pytest

from lookalike.errors import LookalikeError
from lookalike.index import quarantine
from lookalike.index.quarantine import delete_copies, move_copies, undo
from lookalike.index.records import Cluster, Member
from tests.blocking import within


def member(path: Path, similarity: float = 0.95, exact: bool = False) -> Member:
    st = path.stat()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Member(0, str(path), 100, 100, st.st_size, st.st_mtime, similarity, exact, digest=digest)


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Other bytes of the same length under the same mtime: what ``cp -p`` of another photo can leave."""
    st = path.stat()
    assert len(data) == st.st_size
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


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
    (quarantine_dir / ".lookalike-quarantine").touch()  # last week's run made it a quarantine

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


def killed_between_link_and_unlink(monkeypatch, victim: int) -> list[Path]:
    """``_move_no_clobber`` dies, as under SIGKILL, on its ``victim``-th file right after the file took its
    new name and before its old one was removed: both names hold it. Returns the sources it was given."""
    calls: list[Path] = []

    def dies_half_way(src: Path, dst: Path, **kwargs) -> None:
        calls.append(src)
        if len(calls) == victim:
            os.link(src, dst)
            raise KeyboardInterrupt
        real_move(src, dst, **kwargs)

    real_move = quarantine._move_no_clobber
    monkeypatch.setattr(quarantine, "_move_no_clobber", dies_half_way)
    return calls


def test_a_move_killed_between_its_two_names_is_undone_without_a_problem(library, tmp_path, monkeypatch):
    # Killed after the copy got its quarantine name, before its old name went: undo used to report "a
    # file is back here" (status 3) and leave the quarantine's name of it there for good.
    photos, clusters = library
    before = tree_digest(photos)
    calls = killed_between_link_and_unlink(monkeypatch, victim=2)
    with pytest.raises(KeyboardInterrupt):
        move_copies(clusters, tmp_path / "quarantine", root=photos)
    monkeypatch.undo()
    [manifest] = (tmp_path / "quarantine").glob("manifest-*.jsonl")

    restored = undo(manifest)
    assert restored.problems == () and sorted(restored.restored) == sorted(calls)
    assert tree_digest(photos) == before
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [".lookalike-quarantine",
                                                                           manifest.name]


def test_an_undo_killed_between_its_two_names_is_finished_by_the_next_undo(library, tmp_path, monkeypatch):
    photos, clusters = library
    before = tree_digest(photos)
    result = move_copies(clusters, tmp_path / "quarantine", root=photos)
    calls = killed_between_link_and_unlink(monkeypatch, victim=1)
    with pytest.raises(KeyboardInterrupt):
        undo(result.manifest)
    monkeypatch.undo()

    restored = undo(result.manifest)
    assert restored.problems == () and sorted(restored.restored) == sorted(result.originals)
    assert calls[0] in [m.moved_to for m in result.moved]
    assert tree_digest(photos) == before
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [".lookalike-quarantine",
                                                                           result.manifest.name]


# Two undos of one manifest at once (two terminals, the CLI and the server): the other undo's steps, the
# link that puts a file back and the unlink of its quarantine name, are taken here at the moment of this
# undo's run where they raced it, once, on the first file. The slower undo must find the work done: never
# report a copy that stays in the quarantine when none does, never remove a name not of the moved file.


def the_other_undo(monkeypatch, manifest: Path, name: str, *, before: bool = False, link: bool = True,
                   unlink: bool = True, foreign: bytes | None = None) -> list[dict]:
    """``quarantine.<name>`` (``_back_already``, ``digest_file``; ``link``: ``os.link``) lets another undo
    take its steps on the first file it is called for, just ``before`` or after that call; ``foreign``: a
    stranger writes a file of its own at the file's place instead. Returns that file's manifest entry."""
    entries = {Path(e["moved_to"]): e for e in quarantine.read_moves(manifest)}
    target, real_link = (os if name == "link" else quarantine), os.link
    real = getattr(target, name)
    raced: list[dict] = []

    def steps(moved_to: Path) -> None:
        raced.append(entries[moved_to])
        original = Path(raced[0]["original"])
        if foreign is not None:
            original.write_bytes(foreign)
            return
        if link:
            real_link(moved_to, original)
        if unlink:
            os.unlink(moved_to)

    def raced_call(*args, **kwargs):
        moved_to = Path(args[1] if name == "_back_already" else args[0])
        first = not raced
        if first and before:
            steps(moved_to)
        result = real(*args, **kwargs)
        if first and not before:
            steps(moved_to)
        return result

    monkeypatch.setattr(target, name, raced_call)
    return raced


@pytest.mark.parametrize(("name", "options", "here"), [
    # the other linked it back before this one looked, and took its quarantine name as this one found it
    # back (this one's unlink: ENOENT, "put back, but its copy stays in the quarantine")
    ("_back_already", {"link": False}, True),
    # the other linked it back between this one's look and its link (EEXIST, "File exists")
    ("digest_file", {"unlink": False}, True),
    # ... and took its quarantine name too
    ("digest_file", {}, False),
    # the other put it back whole between this one's look and its reading of the quarantine's copy
    # ("file not found; left in place")
    ("digest_file", {"before": True}, False),
    # this one linked it back; the other found it back and took its quarantine name before this one did
    ("link", {"link": False}, True),
])
def test_two_undos_of_one_manifest_at_once_both_find_every_file_back(library, tmp_path, monkeypatch, name,
                                                                      options, here):
    photos, clusters = library
    before = tree_digest(photos)
    result = move_copies(clusters, tmp_path / "quarantine", root=photos)
    if name == "_back_already":  # the other's link came before this undo looked
        first = quarantine.read_moves(result.manifest)[0]
        os.link(first["moved_to"], first["original"])
    raced = the_other_undo(monkeypatch, result.manifest, name, **options)

    restored = undo(result.manifest)
    monkeypatch.undo()
    original = Path(raced[0]["original"])
    assert restored.problems == ()
    assert sorted(restored.restored) == sorted(p for p in result.originals if here or p != original)
    assert tree_digest(photos) == before
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [".lookalike-quarantine",
                                                                           result.manifest.name]
    assert undo(result.manifest) == quarantine.UndoResult((), ())  # a third undo finds nothing left to do


def test_a_stranger_s_file_where_an_undo_raced_to_is_left_and_so_is_the_quarantine_s_copy(
        library, tmp_path, monkeypatch):
    photos, clusters = library
    result = move_copies(clusters, tmp_path / "quarantine", root=photos)
    raced = the_other_undo(monkeypatch, result.manifest, "digest_file", foreign=b"someone's photo")
    restored = undo(result.manifest)
    monkeypatch.undo()
    [entry] = raced
    original, moved_to = Path(entry["original"]), Path(entry["moved_to"])
    assert [(p.path, p.reason) for p in restored.problems] == [
        (original, f"a file is back here; left {moved_to} in place")]
    assert original.read_bytes() == b"someone's photo"
    assert hashlib.sha256(moved_to.read_bytes()).hexdigest() == entry["sha256"]
    assert sorted(restored.restored) == sorted(p for p in result.originals if p != original)


def test_a_copy_whose_old_name_goes_during_its_move_stays_in_the_quarantine_and_comes_back(library, tmp_path,
                                                                                         monkeypatch):
    """The old name taken (a sync tool, a second program) between the link that gives the copy its
    quarantine name and the unlink of its old one: the move removed the quarantine's name too, its last,
    and the photo was gone from both places."""
    photos, clusters = library
    before = tree_digest(photos)
    real_link, taken = os.link, []

    def old_name_taken_meanwhile(src, dst, **kwargs) -> None:
        real_link(src, dst, **kwargs)
        if not taken:
            taken.append(Path(src))
            os.unlink(src)

    monkeypatch.setattr(os, "link", old_name_taken_meanwhile)
    result = move_copies(clusters, tmp_path / "quarantine", root=photos)
    monkeypatch.undo()
    assert result.problems == () and taken[0] in result.originals
    assert undo(result.manifest).restored == tuple(result.originals)
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


def test_undo_of_a_fifo_a_folder_or_a_big_file_is_refused_at_once_without_reading_it(tmp_path):
    # A FIFO named as the manifest (or put in the quarantine under a manifest's name, for the server's
    # undo) waited forever for a writer; /dev/zero was read until memory ran out; a video given by
    # mistake was read whole into memory before being found no manifest.
    fifo = tmp_path / "manifest-20261130T081500.jsonl"
    os.mkfifo(fifo)
    video = tmp_path / "video.mkv"
    with open(video, "wb") as f:
        f.truncate(1 << 30)  # a GiB of zeros without a newline (sparse: no disk used)

    def refusal(path: Path) -> str:
        with pytest.raises(LookalikeError) as refused:
            undo(path)
        return str(refused.value)

    assert within(10, lambda: refusal(fifo), fifo=fifo) == (f"cannot read manifest {fifo}: "
                                                            "not a regular file (FIFO)")
    tracemalloc.start()
    assert refusal(Path("/dev/zero")) == "cannot read manifest /dev/zero: not a regular file (device)"
    assert refusal(video) == f"{video} is not a lookalike quarantine manifest"
    assert tracemalloc.get_traced_memory()[1] < 1 << 20
    tracemalloc.stop()
    assert refusal(tmp_path) == f"cannot read manifest {tmp_path}: not a regular file (folder)"


def test_moves_across_file_systems_copy_then_remove(tmp_path, monkeypatch):
    # os.link fails with EXDEV between file systems: the bytes are copied into a new file instead.
    src, dst = tmp_path / "a.jpg", tmp_path / "q" / "a.jpg"
    src.write_bytes(b"photo bytes")
    dst.parent.mkdir()

    def cross_device(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    quarantine._move_no_clobber(src, dst)
    assert dst.read_bytes() == b"photo bytes" and not src.exists()
    src.write_bytes(b"other")
    with pytest.raises(FileExistsError):
        quarantine._move_no_clobber(src, dst)
    assert dst.read_bytes() == b"photo bytes"


def test_a_keeper_overwritten_with_another_photo_no_longer_vouches_for_its_copies(library, tmp_path):
    """The copy may now be the only file of its picture: neither moved nor deleted, whether the keeper
    changed size or was rewritten byte for byte under its old size and mtime."""
    photos, clusters = library
    (photos / "cat.jpg").write_bytes(b"another photo entirely")
    rewrite_in_place(photos / "beach.jpg", b"b" * len(b"beach original" * 100))
    before = tree_digest(photos)
    for act in (lambda: delete_copies(clusters), lambda: move_copies(clusters, tmp_path / "q", root=photos)):
        result = act()
        assert {p.reason for p in result.problems} == {
            f"its keeper {photos / 'beach.jpg'} changed since it was indexed",
            f"its keeper {photos / 'cat.jpg'} changed since it was indexed"}
        assert len(result.problems) == 3 and tree_digest(photos) == before
    assert not (tmp_path / "q").exists()  # nothing moved: no quarantine, no manifest


@pytest.mark.parametrize("action", ["move", "delete"])
def test_a_copy_rewritten_under_its_old_size_and_mtime_is_left_alone(library, tmp_path, action):
    photos, clusters = library
    rewritten = photos / "2021/whatsapp/beach.jpg"
    rewrite_in_place(rewritten, b"x" * len(b"beach resized"))
    if action == "move":
        result = move_copies(clusters, tmp_path / "q", root=photos)
    else:
        result = delete_copies(clusters)
    assert [(p.path, p.reason) for p in result.problems] == [(rewritten, "changed since it was indexed")]
    assert rewritten.read_bytes() == b"x" * len(b"beach resized")


def test_a_quarantine_must_be_new_empty_or_a_quarantine_already(library, tmp_path):
    """Its marker hides the folder from indexing: pointed at the photo folder (or any folder holding other
    files), nothing is moved and nothing is planted there."""
    photos, clusters = library
    before = tree_digest(photos)
    for folder in (photos, tmp_path, photos / "2021"):
        with pytest.raises(LookalikeError, match="already holds files and is not a lookalike quarantine"):
            move_copies(clusters, folder)
    for file_in_the_way in (photos / "unrelated.jpg", photos / "unrelated.jpg" / "sub"):
        with pytest.raises(LookalikeError, match=f"{photos / 'unrelated.jpg'} is a file, not a folder"):
            move_copies(clusters, file_in_the_way)
    assert tree_digest(photos) == before
    (tmp_path / "empty").mkdir()
    assert len(move_copies(clusters, tmp_path / "empty", root=photos).moved) == 3


def test_a_link_leading_nowhere_is_refused_and_nothing_is_made_where_it_points(library, tmp_path):
    """A link to a folder on a disk not plugged in: the quarantine would have been made through it, on
    the disk under the mount point, out of sight."""
    photos, clusters = library
    before = tree_digest(photos)
    link, loop = tmp_path / "quarantine", tmp_path / "loop"
    link.symlink_to(tmp_path / "usb" / "quarantine")
    loop.symlink_to(loop)
    for target, problem in [
        (link, f"{link} is a link to {tmp_path / 'usb' / 'quarantine'}, which does not exist"),
        (link / "2024", f"{link} is a link to {tmp_path / 'usb' / 'quarantine'}, which does not exist"),
        (loop, f"{loop} is a link that cannot be followed: Too many levels of symbolic links"),
    ]:
        with pytest.raises(LookalikeError) as refused:
            move_copies(clusters, target)
        assert str(refused.value) == f"cannot move copies into {target}: {problem}"
    assert not (tmp_path / "usb").exists() and tree_digest(photos) == before


def test_a_file_where_a_copy_needs_a_folder_is_that_copy_s_problem_and_the_run_ends(library, tmp_path):
    """Once a retry loop: the folder could not be made, read as a name taken, and tried again forever
    while the manifest grew."""
    photos, clusters = library
    q = tmp_path / "q"
    q.mkdir()
    (q / ".lookalike-quarantine").touch()
    (q / "2021").write_text("the user's notes")
    result = move_copies(clusters, q, root=photos)
    assert {p.path.relative_to(photos).as_posix() for p in result.problems} == {
        "2021/whatsapp/beach.jpg", "2021/beach copy.jpg"}
    assert all(p.reason.startswith("cannot make its folder in the quarantine") for p in result.problems)
    assert result.originals == [photos / "2022/whatsapp/beach.jpg"]
    assert (q / "2021").read_text() == "the user's notes"
    assert len(result.manifest.read_text().splitlines()) == 2  # the header and the one move


def test_a_name_too_long_to_number_is_shortened_to_fit(tmp_path):
    photos, q = tmp_path / "photos", tmp_path / "q"
    long_name = "é" * 125 + ".jpg"  # 254 bytes: " (1)" would pass the 255-byte limit
    (photos / "sub").mkdir(parents=True)
    (photos / "keeper.jpg").write_bytes(b"the keeper")
    (photos / "sub" / long_name).write_bytes(b"a copy")
    (q / "sub").mkdir(parents=True)
    (q / ".lookalike-quarantine").touch()
    (q / "sub" / long_name).write_bytes(b"moved last week")
    cluster = Cluster(member(photos / "keeper.jpg", 1.0), (member(photos / "sub" / long_name),))
    result = move_copies([cluster], q, root=photos)
    [moved] = result.moved
    assert moved.moved_to.name.endswith(" (1).jpg") and len(os.fsencode(moved.moved_to.name)) <= 255
    assert moved.moved_to.read_bytes() == b"a copy"
    assert (q / "sub" / long_name).read_bytes() == b"moved last week"


def test_two_runs_in_one_second_never_share_a_manifest(library, tmp_path, monkeypatch):
    """A server and the CLI moving into one quarantine: the other run takes the manifest's name between
    this run's look and its create, and this run goes on under the next name."""
    photos, clusters = library
    real_free_name, taken = quarantine._free_name, []

    def taken_meanwhile(target: Path) -> Path:
        name = real_free_name(target)
        if name.name.startswith("manifest-") and not taken:
            name.write_text('{"kind": "lookalike-quarantine", "version": 1}\n')  # the other run's
            taken.append(name)
        return name

    monkeypatch.setattr(quarantine, "_free_name", taken_meanwhile)
    result = move_copies(clusters, tmp_path / "q", root=photos)
    assert len(result.moved) == 3 and result.manifest != taken[0]
    assert taken[0].read_text() == '{"kind": "lookalike-quarantine", "version": 1}\n'


def test_a_copy_across_file_systems_interrupted_leaves_no_torn_file_at_its_name(tmp_path, monkeypatch):
    """Killed mid-copy, the bytes so far sit in a hidden partial file, never at the name undo and the
    user look at; the source is untouched."""
    src, dst = tmp_path / "a.jpg", tmp_path / "q" / "a.jpg"
    src.write_bytes(b"photo bytes" * 1000)
    dst.parent.mkdir()

    def cross_device(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    def killed(fin, fout, length=0):
        fout.write(fin.read(100))
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "link", cross_device)
    monkeypatch.setattr(quarantine.shutil, "copyfileobj", killed)
    with pytest.raises(KeyboardInterrupt):
        quarantine._move_no_clobber(src, dst)
    assert not dst.exists() and src.read_bytes() == b"photo bytes" * 1000
    assert list(dst.parent.iterdir()) == []  # and the partial file, here cleaned up, was hidden


def test_a_partial_file_left_by_a_killed_copy_is_removed_by_the_next_move_there(tmp_path, monkeypatch):
    """kill -9 leaves the hidden partial file (nothing runs to remove it); the next move into that folder
    removes it once its process is gone, and leaves a running copy's own partial file alone."""
    import subprocess

    photos, q = tmp_path / "photos", tmp_path / "q"
    src, dst = photos / "a.jpg", q / "a.jpg"
    (photos / "keeper.jpg").parent.mkdir()
    (photos / "keeper.jpg").write_bytes(b"the keeper")
    src.write_bytes(b"photo bytes")
    dst.parent.mkdir()
    (q / ".lookalike-quarantine").touch()
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now names no process
    killed = dst.parent / f"{quarantine.PARTIAL_PREFIX}{gone.pid}-0123456789ab"
    running = dst.parent / f"{quarantine.PARTIAL_PREFIX}{os.getpid()}-0123456789ab"
    killed.write_bytes(b"half a photo")
    running.write_bytes(b"being copied")

    def cross_device(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    result = move_copies([Cluster(member(photos / "keeper.jpg", 1.0), (member(src),))], q, root=photos)
    assert result.originals == [src]
    assert sorted(p.name for p in dst.parent.iterdir() if p.name.startswith(".lookalike-partial")
                  or p.suffix == ".jpg") == sorted(["a.jpg", running.name])


def test_a_partial_file_a_killed_move_left_in_the_quarantine_is_removed_by_its_undo(library, tmp_path):
    """Killed across file systems after the copy took its name, the move leaves the copy at both places
    and its partial file (another name of the copy) in the quarantine: undo removed neither, and the
    folder it could not empty stayed with the hidden file in it."""
    import subprocess

    photos, clusters = library
    result = move_copies(clusters, tmp_path / "quarantine", root=photos)
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid now names no process
    moved_to = tmp_path / "quarantine/2021/whatsapp/beach.jpg"
    os.link(moved_to, moved_to.parent / f"{quarantine.PARTIAL_PREFIX}{gone.pid}-0123456789ab")

    assert undo(result.manifest).problems == ()
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [".lookalike-quarantine",
                                                                           result.manifest.name]


@pytest.mark.parametrize("line", [
    '[1, 2]', '42', '{"op": "move", "original": null, "moved_to": "/q/a.jpg", "sha256": "0"}',
    '{"op": "failed"}', '{"op": "move", "original": "/p/a.jpg", "moved_to": "{q}/a.jpg"}',
    '{"op": "move", "original": "/p/a.jpg", "moved_to": "/etc/passwd", "sha256": "0"}',
    '{"op": "rename", "original": "/p/a.jpg", "moved_to": "{q}/a.jpg", "sha256": "0"}',
])
def test_a_damaged_or_hand_edited_manifest_is_refused_before_anything_is_put_back(library, tmp_path, line):
    photos, clusters = library
    result = move_copies(clusters, tmp_path / "q", root=photos)
    moved_away = tree_digest(photos)
    lines = result.manifest.read_text().splitlines()
    lines.insert(2, line.replace("{q}", str(tmp_path / "q")))
    result.manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(LookalikeError, match="line 3 is not a move this quarantine made"):
        undo(result.manifest)
    assert tree_digest(photos) == moved_away


def test_a_moved_quarantine_puts_back_only_files_inside_it(library, tmp_path):
    """Entries recorded under the quarantine's old folder are read in its new one, and checked there as
    ever: one that leads out of it ('..') refuses the manifest whole."""
    photos, clusters = library
    result = move_copies(clusters, tmp_path / "q", root=photos)
    moved_away = tree_digest(photos)
    lines = result.manifest.read_text().splitlines()
    keeper_by_the_old_way = tmp_path / "q" / ".." / "photos" / "beach.jpg"
    lines.insert(2, json.dumps({"op": "move", "original": str(tmp_path / "elsewhere.jpg"),
                                "moved_to": str(keeper_by_the_old_way), "sha256": "0"}))
    result.manifest.write_text("\n".join(lines) + "\n")
    (tmp_path / "q").rename(tmp_path / "renamed")
    with pytest.raises(LookalikeError, match="line 3 is not a move this quarantine made"):
        undo(tmp_path / "renamed" / result.manifest.name)
    assert tree_digest(photos) == moved_away


def test_a_photo_folder_that_cannot_be_changed_leaves_no_copy_in_the_quarantine(library, tmp_path,
                                                                                 monkeypatch):
    """On a read-only mount the copy reached the quarantine, the source stayed, and the manifest went (no
    move happened): the quarantine filled with copies nothing named. Now the copy is taken back."""
    photos, clusters = library
    before = tree_digest(photos)
    real_unlink = os.unlink

    def read_only_photos(path, *args, **kwargs):
        if Path(path).is_relative_to(photos):
            raise OSError(30, "Read-only file system")
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", read_only_photos)
    result = move_copies(clusters, tmp_path / "q", root=photos)
    assert result.moved == () and result.manifest is None
    assert {p.reason for p in result.problems} == {"Read-only file system"} and len(result.problems) == 3
    assert tree_digest(photos) == before and tree_digest(tmp_path / "q") == {".lookalike-quarantine": ANY}


def test_an_undo_from_a_quarantine_that_cannot_be_changed_still_puts_the_files_back(library, tmp_path,
                                                                                    monkeypatch):
    photos, clusters = library
    before = tree_digest(photos)
    result = move_copies(clusters, tmp_path / "q", root=photos)
    real_unlink = os.unlink

    def read_only_quarantine(path, *args, **kwargs):
        if Path(path).is_relative_to(tmp_path / "q"):
            raise OSError(30, "Read-only file system")
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", read_only_quarantine)
    restored = undo(result.manifest)
    assert sorted(restored.restored) == sorted(result.originals) and tree_digest(photos) == before
    assert {p.reason for p in restored.problems} == {
        "put back, but its copy stays in the quarantine: Read-only file system"}


def test_no_room_for_a_manifest_s_first_line_leaves_no_empty_manifest(library, tmp_path, monkeypatch):
    from lookalike.errors import NoSpace

    photos, clusters = library

    def disk_full(log, entry):
        raise NoSpace("no space left for the quarantine manifest")

    monkeypatch.setattr(quarantine, "_append", disk_full)
    with pytest.raises(NoSpace):
        move_copies(clusters, tmp_path / "q", root=photos)
    assert list((tmp_path / "q").glob("manifest-*")) == []


def test_a_new_disk_with_only_lost_and_found_and_hidden_files_is_an_empty_quarantine(library, tmp_path):
    photos, clusters = library
    disk = tmp_path / "usb"
    (disk / "lost+found").mkdir(parents=True)
    (disk / ".DS_Store").write_bytes(b"finder")
    assert len(move_copies(clusters, disk, root=photos).moved) == 3

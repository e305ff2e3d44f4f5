"""Duplicates as a library user meets them: Collection.duplicates, then move / delete / undo, on real files.

The tiny test model embeds a 4x4 colour thumbnail, so distinct photos still score 0.6-0.9 with it:
these tests pass an explicit threshold of 0.99, which its resized, cropped, recompressed and (through
the orientation check) rotated copies reach. The calibrated default is for real models; the slow test
at the end checks it with the offline EfficientNet-Lite2.
"""

from __future__ import annotations

import os
import shutil
import sqlite3  # noqa: F401  before TensorFlow, whose bundled SQLite lacks FTS5
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps

import lookalike
from lookalike.embedder.keypoints import KeypointFiles
from lookalike.index import collection as collection_module
from lookalike.index.collection import EDITING, EMBEDDING_OTHERS, MATCHING, REFRESHING, SEARCHING, Undone
from lookalike.index.duplicates import DEFAULT_THRESHOLD, PairArrays
from lookalike.index.records import Pair
from lookalike.index.review import recentre
from lookalike.index.store import WriterLock
from tests.duplicate_photos import (
    EXPECTED,
    THRESHOLD,
    duplicate_folder,
    grey_photos,
    same_layout_photos,
    tree_digest,
)
from tests.photos import DATA, blocks, hue_turned


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def named(clusters, files: dict[str, Path]) -> dict[str, set[str]]:
    name = {str(path): key for key, path in files.items()}
    return {name[c.keeper.path]: {name[m.path] for m in c.copies} for c in clusters}


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    return duplicate_folder(tmp_path / "photos")


@pytest.fixture
def collection(tmp_path, tf1_module, files):
    col = lookalike.open(tmp_path / "index", model=str(tf1_module))
    col.add([tmp_path / "photos"])
    yield col
    col.close()


def test_each_cluster_keeps_the_original_and_lists_its_copies(collection, files):
    clusters = collection.duplicates(THRESHOLD)
    assert named(clusters, files) == EXPECTED
    by_keeper = {Path(c.keeper.path).stem: c for c in clusters}
    (exact,) = by_keeper["cat"].copies
    assert exact.exact and exact.similarity == 1.0
    for name in ("espresso", "rocket", "cameraman"):
        (copy,) = by_keeper[name].copies
        assert not copy.exact and THRESHOLD <= copy.similarity <= 1.0 + 1e-6
        assert by_keeper[name].reclaimable == copy.size == files[Path(copy.path).stem].stat().st_size


def test_a_run_tells_its_progress_step_by_step_and_finds_the_same_clusters(collection, files):
    """A first run on thousands of images takes minutes: the caller hears each step (the vector
    search, the edited pictures embedded, the keypoints matched), each batch counted to its end."""
    collection.store.forget_remembered()  # a first run: edited pictures embedded, files matched
    heard: list[tuple[int, int, str]] = []
    clusters = collection.duplicates(THRESHOLD, progress=lambda done, total, step: heard.append(
        (done, total, step)))
    assert named(clusters, files) == EXPECTED
    assert {step for *_, step in heard} == {SEARCHING, EDITING, MATCHING}
    assert heard[0][2] == SEARCHING and heard[0][1] == collection.store.count()
    batches: list[list[tuple[int, int, str]]] = []
    for report in heard:  # a batch: one step, counting up to its total
        if not batches or report[2] != batches[-1][-1][2] or report[0] <= batches[-1][-1][0]:
            batches.append([])
        batches[-1].append(report)
    for batch in batches:
        assert all(0 < done <= total for done, total, _ in batch)
        assert batch[-1][0] == batch[-1][1]
    heard.clear()
    assert named(collection.duplicates(THRESHOLD), files) == EXPECTED
    assert heard == []  # the next run, not asked, tells no one


def test_a_turned_copy_is_found_by_the_orientation_check(collection, files):
    turned, original = (collection.store.get_by_path(files[name]).vector
                        for name in ["cameraman-turned", "cameraman"])
    plain = cosine(turned, original)
    assert plain < THRESHOLD  # as stored, the quarter turn does not look alike...
    (cluster,) = [c for c in collection.duplicates(THRESHOLD) if c.keeper.path == str(files["cameraman"])]
    assert cluster.copies[0].similarity > THRESHOLD  # ...turned back, it does


def test_a_turned_copy_whose_pixels_differ_is_not_a_copy(collection, files):
    """The model can find two pictures alike once one is turned; a turned copy is also the same
    picture pixel by pixel. A stored thumbnail that says otherwise keeps them apart."""
    turned = collection.store.get_by_path(files["cameraman-turned"])
    noise = np.random.default_rng(0).integers(0, 256, len(turned.traits.thumbnail), dtype=np.uint8)
    collection.store.db.conn.execute("UPDATE images SET thumbnail = ? WHERE id = ?",
                                     (noise.tobytes(), turned.id))
    assert "cameraman" not in named(collection.duplicates(THRESHOLD), files)


@pytest.mark.parametrize("stored", [None, b"\x00\xff\x10"], ids=["as schema 3 left them", "damaged"])
def test_thumbnails_missing_or_damaged_in_the_index_are_read_from_the_files(collection, files, stored):
    collection.store.db.conn.execute("UPDATE images SET thumbnail = ?", (stored,))
    assert named(collection.duplicates(THRESHOLD), files) == EXPECTED


def test_traits_an_older_lookalike_found_are_read_again_and_refreshed_by_the_next_index_run(
        collection, files, tmp_path):
    """The content box (what the keeper policy counts) is found better from release to release: an
    upgraded index must not keep the old answer for files that did not change."""
    espresso = collection.store.get_by_path(files["espresso"])
    collection.store.db.conn.execute("UPDATE images SET traits_version = NULL")  # as the upgrade leaves them
    # An older content box that took almost all of the original for a frame: kept, it would make the
    # half-size copy the picture with the most content, and the keeper.
    collection.store.db.conn.execute(
        "UPDATE images SET content_width = 1, content_height = 1, traits_version = 1 WHERE id = ?",
        (espresso.id,))
    assert collection.store.get(espresso.id).traits is None  # stale: not handed out
    assert named(collection.duplicates(THRESHOLD), files) == EXPECTED

    steps = []
    summary = collection.add([tmp_path / "photos"], progress=lambda done, total, step: steps.append(
        (done, total, step)))
    assert (summary.added, summary.updated, summary.refreshed) == (0, 0, len(files))
    assert steps[-1] == (len(files), len(files), REFRESHING)  # a step of its own on the progress bar
    refreshed = collection.store.get(espresso.id)
    # What indexing it found, from a smaller decode (no model runs): the same box, colours within a hair.
    fresh, indexed = refreshed.traits, espresso.traits
    assert (fresh.content_width, fresh.content_height, fresh.greyscale, fresh.quality) == (
        indexed.content_width, indexed.content_height, indexed.greyscale, indexed.quality)
    assert fresh.colourfulness == pytest.approx(indexed.colourfulness, abs=0.02)
    np.testing.assert_array_equal(refreshed.vector, espresso.vector)  # not embedded again
    assert collection.add([tmp_path / "photos"]).refreshed == 0
    assert named(collection.duplicates(THRESHOLD), files) == EXPECTED


def test_the_traits_refresh_leaves_a_file_that_became_unreadable_as_it_was(collection, files):
    """Between the walk and the refresh a file can be swapped for a FIFO or cut short: the refresh must
    neither hang nor fail the run, and the row keeps its (stale) traits, read again when needed."""
    rocket = collection.store.get_by_path(files["rocket"])
    collection.store.db.conn.execute("UPDATE images SET traits_version = NULL WHERE id = ?", (rocket.id,))
    files["rocket"].unlink()
    os.mkfifo(files["rocket"])
    assert collection._refresh_traits([(rocket.id, str(files["rocket"]))], commit_every=10) == 0
    assert collection.store.get(rocket.id).traits is None


def test_a_photo_kept_in_many_backups_keeps_its_edited_copy(tmp_path, tf1_module, files):
    """Backups are the picture itself, not a crowd around it: counted in its density, they took every
    edited copy's score under the threshold."""
    backups = tmp_path / "photos" / "backups"
    backups.mkdir()
    for n in range(24):
        shutil.copy2(files["espresso"], backups / f"espresso ({n}).jpg")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([tmp_path / "photos"])
        clusters = col.duplicates(THRESHOLD)
    espresso = str(files["espresso"])
    (cluster,) = [c for c in clusters if espresso in {c.keeper.path, *(m.path for m in c.copies)}]
    assert str(files["espresso-small"]) in {m.path for m in cluster.copies}
    assert sum(m.exact for m in cluster.copies) == 24  # the original and its backups: one is kept


def test_a_looser_threshold_never_chains_distinct_pictures_through_a_copy(collection, files):
    for cluster in collection.duplicates(0.8):
        keeper = collection.store.get(cluster.keeper.id).vector
        for copy in cluster.copies:  # every copy was compared with the file that stays
            vector = collection.store.get(copy.id).vector
            assert copy.exact or copy.similarity >= 0.8 - 1e-6
            assert copy.similarity >= cosine(keeper, vector) - 1e-6


def test_exact_duplicates_need_no_model(collection, files):
    reopened = lookalike.open(collection.directory)
    (cluster,) = reopened.duplicates(exact_only=True)
    assert cluster.keeper.path == str(files["cat"])
    assert [m.path for m in cluster.copies] == [str(files["cat-copy"])]
    assert reopened._embedder is None


def test_unknown_keeper_policy_and_bad_threshold_are_value_errors(collection):
    with pytest.raises(ValueError, match="biggest"):
        collection.duplicates(policy="biggest")
    with pytest.raises(ValueError, match="threshold"):
        collection.duplicates(1.5)
    assert 0 < DEFAULT_THRESHOLD < 1


def test_keeper_policy_newest_keeps_the_copies_instead(collection, files):
    assert named(collection.duplicates(THRESHOLD, policy="newest"), files) == {
        copies.pop(): {keeper} for keeper, copies in ((k, set(v)) for k, v in EXPECTED.items())
    }


def test_move_then_undo_leaves_every_file_byte_identical_and_the_index_in_step(collection, files, tmp_path):
    before, count = tree_digest(tmp_path / "photos"), collection.info().images
    clusters = collection.duplicates(THRESHOLD)

    moved = collection.move_duplicates(clusters, tmp_path / "quarantine")
    assert not moved.problems and len(moved.moved) == 4
    assert all(files[k].exists() for k in EXPECTED)
    assert not any(files[c].exists() for copies in EXPECTED.values() for c in copies)
    assert (tmp_path / "quarantine" / "espresso-small.jpg").exists()  # relative to the copies' folder
    assert collection.info().images == count - 4
    assert collection.duplicates(THRESHOLD) == []
    neighbours = collection.search(files["cat"], k=50).neighbours
    assert str(files["cat-copy"]) not in [n.image.path for n in neighbours]

    undone = collection.undo(moved.manifest)
    assert not undone.problems and len(undone.restored) == 4
    assert tree_digest(tmp_path / "photos") == before
    assert collection.info().images == count
    assert named(collection.duplicates(THRESHOLD), files) == EXPECTED


def test_an_undo_reads_its_manifest_once(collection, tmp_path, monkeypatch):
    """What is put back and what is looked for among files an earlier undo put back come from one
    reading: the manifest is not read and checked a second time."""
    from lookalike.index import quarantine

    moved = collection.move_duplicates(collection.duplicates(THRESHOLD), tmp_path / "quarantine")
    reads, read_moves = [], quarantine.read_moves
    monkeypatch.setattr(quarantine, "read_moves",
                        lambda manifest: reads.append(manifest) or read_moves(manifest))
    assert len(collection.undo(moved.manifest).restored) == 4
    assert reads == [moved.manifest]


def test_an_undo_while_another_writer_holds_the_index_puts_files_back_and_a_later_one_indexes_them(
    collection, files, tmp_path
):
    before, count = tree_digest(tmp_path / "photos"), collection.info().images
    moved = collection.move_duplicates(collection.duplicates(THRESHOLD), tmp_path / "quarantine")
    back = {m.original for m in moved.moved}
    lock = WriterLock(collection.directory)
    lock.acquire()  # what a running `lookalike index` holds
    try:
        busy = collection.undo(moved.manifest, wait=0.1)  # no error: the files are back already
        assert set(busy.restored) == set(busy.unindexed) == back and not busy.problems
        assert tree_digest(tmp_path / "photos") == before
        assert collection.info().images == count - 4
        still = collection.undo(moved.manifest)  # nothing left to put back, but they are not forgotten
        assert still.restored == () and set(still.unindexed) == back
    finally:
        lock.release()

    caught_up = collection.undo(moved.manifest)
    assert caught_up.restored == () and caught_up.unindexed == () and set(caught_up.caught_up) == back
    assert collection.info().images == count
    assert named(collection.duplicates(THRESHOLD), files) == EXPECTED
    assert collection.undo(moved.manifest) == Undone((), ())  # all done: a third time does nothing


def test_a_name_clash_in_the_quarantine_gets_a_new_name(collection, files, tmp_path):
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    (quarantine / ".lookalike-quarantine").touch()  # an earlier run's quarantine
    (quarantine / "cat.jpg").write_bytes(b"a cat moved there last week")
    result = collection.move_duplicates(collection.duplicates(THRESHOLD), quarantine)
    assert (quarantine / "cat.jpg").read_bytes() == b"a cat moved there last week"
    assert (quarantine / "cat (1).jpg").read_bytes() == files["cat"].read_bytes()
    assert str(quarantine / "cat (1).jpg") in {str(m.moved_to) for m in result.moved}


def test_delete_removes_copies_and_their_rows_and_never_a_keeper(collection, files):
    count = collection.info().images
    result = collection.delete_duplicates(collection.duplicates(THRESHOLD))
    assert sorted(p.name for p in result.deleted) == [
        "cameraman-turned.jpg", "cat.jpg", "espresso-small.jpg", "rocket-crop.jpg"]
    assert all(files[k].exists() for k in EXPECTED)
    assert collection.info().images == count - 4


@pytest.fixture
def new_photos(tmp_path, files) -> Path:
    """A second folder of "new" photos: the backup copies and one picture the archive does not have."""
    folder = tmp_path / "new"
    shutil.copytree(tmp_path / "photos" / "backup", folder)
    blocks(folder / "fresh.png", seed=42)
    return folder


def test_against_another_index_which_is_only_read(tmp_path, tf1_module, collection, files, new_photos):
    archive = collection.directory
    mine = lookalike.open(tmp_path / "new-index", model=str(tf1_module))
    mine.add([new_photos])
    untouched = tree_digest(archive)
    clusters = mine.duplicates(THRESHOLD, against=archive)
    keeper_of = {Path(m.path).name: str(Path(c.keeper.path).relative_to(tmp_path / "photos"))
                 for c in clusters for m in c.copies}
    # The archive's file is the keeper: a byte-identical one when it has it (of two, the better by
    # the default policy: the older cat.jpg); fresh.png is new, so it is in no cluster.
    assert keeper_of == {"cat.jpg": "cat.jpg", "espresso-small.jpg": "backup/espresso-small.jpg",
                         "rocket-crop.jpg": "backup/rocket-crop.jpg",
                         "cameraman-turned.jpg": "backup/cameraman-turned.jpg"}
    assert all(Path(m.path).parent == new_photos for c in clusters for m in c.copies)
    assert tree_digest(archive) == untouched


def test_against_a_folder_uses_a_throwaway_index_exact_mode_no_model(tmp_path, tf1_module, files, new_photos):
    mine = lookalike.open(tmp_path / "new-index", model=str(tf1_module))
    mine.add([new_photos])
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in EXPECTED:
        shutil.copy2(files[name], archive)
    untouched = tree_digest(archive)
    clusters = mine.duplicates(THRESHOLD, against=archive)
    assert {Path(c.keeper.path).stem: {Path(m.path).name for m in c.copies} for c in clusters} == {
        "cat": {"cat.jpg"}, "espresso": {"espresso-small.jpg"}, "rocket": {"rocket-crop.jpg"},
        "cameraman": {"cameraman-turned.jpg"},
    }
    assert tree_digest(archive) == untouched  # nothing written into the folder
    heard: list[tuple[int, int, str]] = []
    again = mine.duplicates(THRESHOLD, against=archive, progress=lambda done, total, step: heard.append(
        (done, total, step)))
    assert [c.keeper.path for c in again] == [c.keeper.path for c in clusters]
    assert heard[0][2] == EMBEDDING_OTHERS and (len(EXPECTED), len(EXPECTED), EMBEDDING_OTHERS) in heard

    exact = lookalike.open(mine.directory).duplicates(against=archive, exact_only=True)
    assert [(c.keeper.path, c.copies[0].path, c.keeper.width) for c in exact] == [
        (str(archive / "cat.jpg"), str(new_photos / "cat.jpg"), 451)]


@pytest.mark.slow
def test_the_offline_model_at_the_default_threshold_clusters_real_copies(tmp_path):
    """The calibrated default with EfficientNet-Lite2: each photo with its resized, cropped,
    recompressed, mirrored and turned copies, and nothing else."""
    folder = tmp_path / "photos"
    folder.mkdir()
    expected = {}
    for photo in sorted(DATA.glob("*.jpg")):
        with Image.open(photo) as opened:
            image = opened.convert("RGB")
        image.save(folder / photo.name, quality=95)
        w, h = image.size
        copies = {
            "small": image.resize((w // 2, h // 2), Image.Resampling.LANCZOS),
            "crop": image.crop((w // 10, h // 10, w - w // 20, h - h // 20)),
            "mirror": ImageOps.mirror(image),
            "turned": image.rotate(90, expand=True),
        }
        for name, copy in copies.items():
            copy.save(folder / f"{photo.stem}-{name}.jpg", quality=50)
        image.save(folder / f"{photo.stem}-q40.jpg", quality=40)
        expected[photo.name] = {f"{photo.stem}-{name}.jpg" for name in [*copies, "q40"]}
    col = lookalike.open(tmp_path / "index", model="efficientnet-lite2")
    col.add([folder])
    clusters = col.duplicates()
    assert {Path(c.keeper.path).name: {Path(m.path).name for m in c.copies} for c in clusters} == expected


@pytest.mark.slow
def test_random_textures_the_model_finds_near_identical_stay_apart_but_a_copy_joins(tmp_path):
    """Thirty random textures: EfficientNet-Lite2 finds them alike at cosine 0.95-0.98, so each seems to
    have thirty versions of itself, and no score says "different": every pair is verified. Their
    keypoints fit none of each other's, or two or three by chance; the one real copy (half size) fits
    its original."""
    folder = tmp_path / "textures"
    folder.mkdir()
    for seed in range(30):
        noise = np.random.default_rng(seed).normal(128, 60, (90, 120, 3)).clip(0, 255).astype(np.uint8)
        texture = Image.fromarray(noise).resize((480, 360), Image.Resampling.BICUBIC)
        texture.filter(ImageFilter.GaussianBlur(1.5)).save(folder / f"texture{seed:02d}.jpg", quality=90)
    with Image.open(folder / "texture00.jpg") as image:
        image.resize((240, 180), Image.Resampling.LANCZOS).save(folder / "texture00-half.jpg", quality=80)
    with lookalike.open(tmp_path / "index", model="efficientnet-lite2") as col:
        col.add([folder])
        clusters = col.duplicates()
    assert {Path(c.keeper.path).name: [Path(m.path).name for m in c.copies] for c in clusters} == {
        "texture00.jpg": ["texture00-half.jpg"]}


def _star_field(seed: int, width: int = 640, height: int = 480) -> Image.Image:
    """A night sky: a faint coloured cloud and 400 stars of every brightness and size, placed at random."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    x, y, radius = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height, rng.uniform(60, 140)
    cloud = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * radius**2))
    sky = cloud[..., None] * rng.uniform(0.3, 1.0, 3) * 120
    for x, y, brightness, size in zip(rng.uniform(0, width, 400), rng.uniform(0, height, 400),
                                      rng.uniform(60, 255, 400), rng.uniform(0.6, 2.2, 400), strict=True):
        around = slice(max(0, int(y - 4 * size)), int(y + 4 * size) + 1), \
            slice(max(0, int(x - 4 * size)), int(x + 4 * size) + 1)
        star = np.exp(-((xs[around] - x) ** 2 + (ys[around] - y) ** 2) / (2 * size**2)) * brightness
        sky[around] += star[..., None]
    return Image.fromarray(sky.clip(0, 255).astype(np.uint8))


@pytest.mark.slow
def test_copies_the_crowd_holds_under_the_threshold_join_when_their_keypoints_vouch(tmp_path, monkeypatch):
    """Thirty skies: EfficientNet-Lite2 finds them alike (cosine about 0.9), so each one's density
    discounts its own copies too: a copy cropped to two thirds (cosine 0.88) and one at three quarters
    of the size (0.94) score 0.57 and 0.61. Their stars fit the original's, every one where it was: the
    keypoint look joins them. The other skies, as alike to the model, fit none and stay apart."""
    folder = tmp_path / "sky"
    folder.mkdir()
    for seed in range(30):
        _star_field(seed).save(folder / f"sky{seed:02d}.jpg", quality=92)
    with Image.open(folder / "sky00.jpg") as sky:
        sky.crop((110, 80, 560, 420)).save(folder / "sky00-cropped.jpg", quality=85)
        sky.resize((480, 360), Image.Resampling.LANCZOS).save(folder / "sky00-smaller.jpg", quality=50)
    with lookalike.open(tmp_path / "index", model="efficientnet-lite2") as col:
        col.add([folder])
        clusters = {Path(c.keeper.path).name: sorted(Path(m.path).name for m in c.copies)
                    for c in col.duplicates()}
        assert clusters == {"sky00.jpg": ["sky00-cropped.jpg", "sky00-smaller.jpg"]}
        (cluster,) = col.duplicates()
        review = recentre(col, cluster.keeper.id, [m.id for m in cluster.copies])  # the browser review agrees
        assert review.below == () and review.unlike == ()
        monkeypatch.setattr(collection_module, "VOUCHED_PAIRS", 0)  # the look off: the crowd holds them
        assert col.duplicates() == []


def test_the_keypoint_look_vouches_across_two_sets_for_a_copy_only_and_never_for_a_file_gone(tmp_path,
                                                                                              tf1_module):
    """Pairs their density held under the threshold (here handed over as the search would): a half-size
    copy in the archive fits the photo's keypoints and joins at the threshold; another photo does not.
    My ids and the archive's are counted apart, though both sets number their images from 1."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    mine.mkdir()
    theirs.mkdir()
    for name in ("rocket.jpg", "cat.jpg"):
        shutil.copy2(DATA / name, mine / name)
    shutil.copy2(DATA / "espresso.jpg", theirs / "espresso.jpg")
    with Image.open(DATA / "rocket.jpg") as image:
        image.resize((image.width // 2, image.height // 2)).save(theirs / "rocket-half.jpg", quality=80)
    with lookalike.open(tmp_path / "mine-index", model=str(tf1_module)) as col, \
            lookalike.open(tmp_path / "archive", model=str(tf1_module)) as archive:
        col.add([mine])
        archive.add([theirs])
        my_id = {Path(r.path).name: r.id for r in col.store.get_many([1, 2])}
        their_id = {Path(r.path).name: r.id for r in archive.store.get_many([1, 2])}
        held = PairArrays(np.array([my_id[name] for name in ("rocket.jpg", "rocket.jpg", "cat.jpg")]),
                          np.array([their_id[name] for name in ("rocket-half.jpg", "espresso.jpg",
                                                                "espresso.jpg")]),
                          np.array([0.9, 0.9, 0.9], dtype=np.float32))
        crowded = np.full(3, 0.9)  # dense enough to hold a pair at cosine 0.9 under the threshold

        def vouched() -> list[tuple[int, int, float | None]]:
            return [(p.a, p.b, p.score) for p in col._vouched_pairs(held, crowded, archive.store, 0.64,
                                                                    KeypointFiles())]

        assert vouched() == [(my_id["rocket.jpg"], their_id["rocket-half.jpg"], 0.64)]
        (theirs / "rocket-half.jpg").unlink()  # gone since indexing: nothing to match, nothing assumed
        assert vouched() == []


def test_the_scale_second_look_compares_a_tiny_copy_with_its_original_shrunk_alike(tmp_path, tf1_module):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy2(DATA / "rocket.jpg", photos / "rocket.jpg")
    with Image.open(DATA / "rocket.jpg") as image:
        tiny = image.resize((image.width // 4, image.height // 4))
        tiny.save(photos / "rocket-tiny.jpg", quality=70)
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        rows = {row.id: row for row in col.store.get_many([1, 2], vector=True)}
        a, b = (rows[i].vector / np.linalg.norm(rows[i].vector) for i in (1, 2))
        plain = float(a @ b)
        (looked,) = col._scaled_pairs([Pair(1, 2, plain)], rows, rows, col.store)
        assert looked.similarity >= plain and looked.similarity > 0.99


def test_a_bordered_copy_is_compared_by_its_content_and_joins_its_original(tmp_path, tf1_module):
    """A wide border makes a copy less alike to its original than the threshold asks; cropped to its
    content (the frame look) and embedded again, it is the original."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy2(DATA / "rocket.jpg", photos / "rocket.jpg")
    shutil.copy2(DATA / "cat.jpg", photos / "cat.jpg")
    with Image.open(DATA / "rocket.jpg") as image:
        ImageOps.expand(image, border=image.width // 3, fill=(20, 20, 20)).save(
            photos / "rocket-bordered.jpg", quality=85)
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        rows = {Path(row.path).name: row for row in col.store.get_many([1, 2, 3], vector=True)}
        plain = cosine(rows["rocket.jpg"].vector, rows["rocket-bordered.jpg"].vector)
        assert plain < THRESHOLD
        by_id = {row.id: row for row in rows.values()}
        pair = Pair(rows["rocket.jpg"].id, rows["rocket-bordered.jpg"].id, plain)
        (looked,) = col._unframed_pairs([pair], by_id, by_id, col.store)
        assert looked.similarity > 0.99
        clusters = col.duplicates(THRESHOLD)
        assert {Path(c.keeper.path).name: [Path(m.path).name for m in c.copies] for c in clusters} == {
            "rocket.jpg": ["rocket-bordered.jpg"]}  # and the keeper is the picture without the border
        (photos / "rocket-bordered.jpg").unlink()  # gone since indexing: the look cannot crop it
        assert col._unframed_pairs([pair], by_id, by_id, col.store) == []
        assert col.duplicates(THRESHOLD) == []  # nothing assumed for a file the look could not read


def test_a_tiny_copy_is_offered_with_its_original_found_by_their_pixels(tmp_path, tf1_module):
    """A picture the model enlarges more than twice (``TINY``) sits among other tiny pictures in its
    vector's neighbours, its original out of reach; the thumbnails find it, here and across two sets."""
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy2(DATA / "rocket.jpg", photos / "rocket.jpg")
    shutil.copy2(DATA / "cat.jpg", photos / "cat.jpg")
    with Image.open(DATA / "rocket.jpg") as image:
        image.resize((image.width // 8, image.height // 8), Image.Resampling.LANCZOS).save(
            photos / "rocket-tiny.jpg", quality=70)
    for seed in range(3):
        blocks(photos / f"blocks{seed}.png", seed, size=(96, 72))  # tiny too, but copies of nothing
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        shapes = col.store.shapes()
        found = col._tiny_candidates(col.store, shapes, shapes)
        name = {row.id: Path(row.path).name for row in col.store.get_many(list(range(1, 7)))}
        pairs = {(name[a], name[b]) for a, b in zip(found.a.tolist(), found.b.tolist(), strict=True)}
        assert pairs == {("rocket-tiny.jpg", "rocket.jpg")}
        (similarity,) = found.sims.tolist()
        vectors = {name[row.id]: row.vector for row in col.store.get_many(list(name), vector=True)}
        plain = cosine(vectors["rocket.jpg"], vectors["rocket-tiny.jpg"])
        assert similarity == pytest.approx(plain, abs=1e-5)
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy2(DATA / "rocket.jpg", archive / "rocket.jpg")  # id 1 there, as cat.jpg's is here
    shutil.copy2(DATA / "cat.jpg", archive / "cat.jpg")
    with lookalike.open(tmp_path / "archive-index", model=str(tf1_module)) as other, \
            lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        other.add([archive])
        found = col._tiny_candidates(other.store, col.store.shapes(), other.store.shapes())
        theirs = {row.id: Path(row.path).name for row in other.store.get_many(found.b.tolist())}
        mine = {row.id: Path(row.path).name for row in col.store.get_many(found.a.tolist())}
        assert [(mine[a], theirs[b]) for a, b in zip(found.a.tolist(), found.b.tolist(), strict=True)] == [
            ("rocket-tiny.jpg", "rocket.jpg")]


def test_a_grey_picture_without_its_own_luminance_beside_it_has_its_original_sought_by_pixels(
        tmp_path, tf1_module):
    """The model sees colour: a flag greyed can be nearer dozens of other flags than its own, which the
    search then never reaches. A grey picture none of whose colour neighbours has its luminance has its
    original sought by the thumbnails; one whose original was found costs nothing more."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("rocket", "cat", "espresso"):
        shutil.copy2(DATA / f"{name}.jpg", photos / f"{name}.jpg")
        if name != "espresso":
            with Image.open(DATA / f"{name}.jpg") as image:
                ImageOps.grayscale(image).save(photos / f"{name}-grey.jpg", quality=85)
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        id_of = {Path(row.path).name: row.id for row in col.store.get_many(list(range(1, 6)))}
        name = {image_id: file for file, image_id in id_of.items()}
        greys = col.store.greyscale()

        def sought(*found: tuple[str, str]) -> set[tuple[str, str]]:
            beside = PairArrays.of(Pair(id_of[a], id_of[b], 0.5) for a, b in found)
            pairs = col._grey_candidates(col.store, greys, greys, beside, across=False)
            return {(name[a], name[b]) for a, b in zip(pairs.a.tolist(), pairs.b.tolist(), strict=True)}

        assert sought() == {("rocket-grey.jpg", "rocket.jpg"), ("cat-grey.jpg", "cat.jpg")}
        assert sought(("cat.jpg", "cat-grey.jpg"), ("rocket-grey.jpg", "espresso.jpg")) == {
            ("rocket-grey.jpg", "rocket.jpg")}  # the espresso has not the rocket's luminance
    archive = tmp_path / "archive"  # across two sets: my grey pictures, the archive's colour ones
    archive.mkdir()
    for name in ("cat", "rocket"):
        shutil.copy2(DATA / f"{name}.jpg", archive / f"{name}.jpg")
    with lookalike.open(tmp_path / "archive-index", model=str(tf1_module)) as other, \
            lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        other.add([archive])
        theirs = {row.id: Path(row.path).name for row in other.store.get_many([1, 2])}
        mine = {row.id: Path(row.path).name for row in col.store.get_many(list(range(1, 6)))}
        pairs = col._grey_candidates(other.store, col.store.greyscale(), other.store.greyscale(),
                                     PairArrays.concat([]), across=True)
        assert {(mine[a], theirs[b]) for a, b in zip(pairs.a.tolist(), pairs.b.tolist(), strict=True)} == {
            ("rocket-grey.jpg", "rocket.jpg"), ("cat-grey.jpg", "cat.jpg")}


def test_a_greyscale_copy_is_found_by_greying_its_original_alike(tmp_path, tf1_module):
    """The model sees colour, so a greyscale copy scores under the threshold as stored; the colour
    picture greyed and embedded again is the copy. A grey picture darker than the colour one (a
    recoloured design's grey) is not its copy, however well the two correlate."""
    photos = grey_photos(tmp_path / "photos")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        vector = {Path(r.path).name: r.vector for r in col.store.get_many([1, 2, 3, 4], vector=True)}
        assert cosine(vector["espresso.jpg"], vector["espresso-grey.jpg"]) < THRESHOLD
        assert cosine(vector["rocket.jpg"], vector["rocket-dark-grey.jpg"]) < THRESHOLD
        clusters = col.duplicates(THRESHOLD)
    assert {Path(c.keeper.path).name: [Path(m.path).name for m in c.copies] for c in clusters} == {
        "espresso.jpg": ["espresso-grey.jpg"]}
    assert clusters[0].copies[0].similarity >= THRESHOLD


def test_a_colour_original_gone_since_indexing_leaves_its_greyscale_copy_unpaired(tmp_path, tf1_module):
    photos = grey_photos(tmp_path / "photos")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        (photos / "espresso.jpg").unlink()  # the greyscale look cannot read it: nothing is assumed
        (photos / "rocket.jpg").write_bytes(b"not an image any more")
        assert col.duplicates(THRESHOLD) == []


def test_a_person_keeping_the_greyscale_copy_cannot_move_the_colour_original_for_it(tmp_path, tf1_module):
    """In the browser review a person may pick any keeper; a copy never has colours its keeper lacks,
    so the colour original stays, whatever the threshold, and is reported (``Review.unlike``)."""
    from lookalike.index.review import move_copies, recentre

    photos = grey_photos(tmp_path / "photos")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        grey, colour = (col.get_by_path(photos / name).id for name in ("espresso-grey.jpg", "espresso.jpg"))
        review = recentre(col, grey, [colour], threshold=0.05)
        assert review.below == () and review.unlike == (colour,)
        assert recentre(col, colour, [grey], threshold=0.05).unlike == ()  # the other way round: a copy
        result, _ = move_copies(col, grey, [colour], tmp_path / "quarantine", threshold=0.05)
        assert result.moved == () and "colours or pixels differ" in result.problems[0].reason
        assert (photos / "espresso.jpg").is_file()


def test_pictures_are_not_clustered_on_a_check_that_could_not_read_their_files(tmp_path, tf1_module):
    """A file gone since indexing cannot be verified: once its pairs were kept unverified, and a report
    showed a picture beside strangers the check would have told apart, for someone to act on."""
    photos = same_layout_photos(tmp_path / "photos")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        assert {Path(m.path).name for c in col.duplicates(THRESHOLD) for m in c.members} == {
            "cat.jpg", "cat-crop.jpg"}
        (photos / "cat-crop.jpg").unlink()
        (photos / "cat.jpg").rename(tmp_path / "cat.jpg")  # moved away by hand; the index still lists it
        assert col.duplicates(THRESHOLD) == []


def test_a_picture_the_model_finds_alike_but_whose_details_lie_elsewhere_is_no_copy(tmp_path, tf1_module,
                                                                                    monkeypatch):
    """Geometric verification: the tiny model sees only colour layout, so the cat photo and a picture
    with its colours but the cameraman's details score as copies; their keypoints do not fit one
    transform, so only the real crop is clustered with the photo."""
    from lookalike.index import geometry
    from lookalike.index.review import recentre

    photos = same_layout_photos(tmp_path / "photos")
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        vector = {Path(r.path).name: r.vector for r in col.store.get_many([1, 2, 3], vector=True)}
        assert cosine(vector["cat.jpg"], vector["cat-layout.jpg"]) >= THRESHOLD
        expected = {"cat.jpg": {"cat-crop.jpg"}}
        found = col.duplicates(THRESHOLD)
        assert {Path(c.keeper.path).name: {Path(m.path).name for m in c.copies} for c in found} == expected
        cat, layout = (col.get_by_path(photos / name).id for name in ("cat.jpg", "cat-layout.jpg"))
        assert recentre(col, cat, [layout], THRESHOLD).unlike == (layout,)  # the browser review agrees
        monkeypatch.setattr(geometry, "files_unlike", lambda pairs, _: [False] * len(pairs))  # geometry off:
        # it would be moved
        found = col.duplicates(THRESHOLD)
        assert {Path(m.path).name for c in found for m in c.copies} >= {"cat-layout.jpg"}


def test_keeping_one_colouring_never_moves_the_greyscale_copy_of_another(tmp_path, tf1_module):
    """The review weighs a greyscale member against pictures outside it, as clustering does: the grey
    copy of the green recolouring has the green one's luminance, so keeping the original photo does
    not make it a copy; keeping the green one does."""
    from lookalike.index.review import recentre

    photos = tmp_path / "photos"
    photos.mkdir()
    with Image.open(DATA / "espresso.jpg") as opened:
        photo = opened.convert("RGB")
    green = hue_turned(photo, 120)  # the same picture, hues turned a third
    photo.save(photos / "espresso.jpg", quality=95)
    green.save(photos / "espresso-green.jpg", quality=95)
    ImageOps.grayscale(green).convert("RGB").save(photos / "espresso-green-grey.jpg", quality=90)
    with lookalike.open(tmp_path / "index", model=str(tf1_module)) as col:
        col.add([photos])
        original, recoloured, grey = (col.get_by_path(photos / name).id for name in (
            "espresso.jpg", "espresso-green.jpg", "espresso-green-grey.jpg"))
        assert recentre(col, original, [grey], threshold=0.05).unlike == (grey,)
        assert recentre(col, recoloured, [grey], threshold=0.05).unlike == ()


def test_a_closed_collection_moves_deletes_and_puts_back_nothing(collection, tmp_path):
    """A closed index says so before any file is touched: before, the copies were moved, deleted or put
    back, and only then did forgetting or indexing them fail, leaving the index out of step with them."""
    before = tree_digest(tmp_path / "photos")
    clusters = collection.duplicates(THRESHOLD)
    moved = collection.move_duplicates(clusters[:1], tmp_path / "quarantine")
    quarantined = tree_digest(tmp_path / "quarantine")
    collection.close()
    for use in (lambda: collection.move_duplicates(clusters[1:], tmp_path / "quarantine"),
                lambda: collection.delete_duplicates(clusters[1:]),
                lambda: collection.undo(moved.manifest)):
        with pytest.raises(lookalike.CollectionError, match="was closed: open it again"):
            use()
    assert tree_digest(tmp_path / "quarantine") == quarantined
    assert tree_digest(tmp_path / "photos") != before  # the first move stands, and nothing else moved
    with lookalike.open(collection.directory) as reopened:
        assert len(reopened.move_duplicates(clusters[1:], tmp_path / "quarantine").moved) == 3
        assert len(reopened.undo(moved.manifest).restored) == 1

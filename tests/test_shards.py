"""Parquet shards and the local engine (no Ray): the unit of work, resume, loading into the index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lookalike
from lookalike.embedder.traits import TRAIT_FIELDS
from lookalike.engines import split_finished
from lookalike.engines.local import LocalEngine
from lookalike.errors import CollectionError, InvalidOption, ModelMismatchError
from lookalike.index import shards
from lookalike.index.collection import SHARDS_DIR
from lookalike.index.walk import walk
from lookalike.paths import to_bytes
from tests.blocking import within
from tests.cli import error_lines, run
from tests.photos import blocks, photo_folder

BAD_NAME = os.fsdecode(b"bad\xffname.png")  # not UTF-8: kept as exact bytes


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "photos"
    photo_folder(root, synthetic=4)
    blocks(root / BAD_NAME, 99)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def rows_of(index: Path) -> dict[str, tuple[np.ndarray, str, int, int, str]]:
    with lookalike.open(index, create=False) as col:
        return {p: (row.vector, row.digest, row.width, row.height, row.format)
                for p in col.store.file_states() if (row := col.store.get_by_path(p))}


def failures_of(index: Path) -> dict[str, str]:
    with lookalike.open(index, create=False) as col:
        return {f.path: f.reason for f in col.store.failures()}


def test_a_shard_holds_every_file_exactly_with_the_fingerprint(folder, tmp_path, tiny_embedder):
    files = list(walk([folder]))
    (spec,) = shards.plan_shards(files, shard_size=100)
    path = shards.write_shard(spec, tiny_embedder, tmp_path / "out", batch_size=4)
    assert path.name == spec.name + ".parquet" and spec.name.startswith("shard-00000-of-00001-")
    assert [p.name for p in (tmp_path / "out").iterdir()] == [path.name]  # no temporary left behind

    table = pq.read_table(path)
    assert table.schema.field("vector").type.list_size == tiny_embedder.dim
    assert str(table.schema.field("vector").type.value_type) == "float"
    shard = shards.read_shard(path)
    assert shard.fingerprint == tiny_embedder.fingerprint.as_dict()
    by_path = {row.path: row for row in shard.rows}
    assert to_bytes(str(folder / BAD_NAME)) in table.column("path").to_pylist()
    assert by_path[str(folder / "broken.jpg")].error == "truncated or corrupt image data"
    assert by_path[str(folder / "broken.jpg")].vector is None
    good = by_path[str(folder / BAD_NAME)]
    assert good.error is None and good.format == "PNG" and (good.width, good.height) == (320, 240)
    expected = tiny_embedder.embed(folder / BAD_NAME)
    np.testing.assert_allclose(good.vector, expected.vector, atol=1e-6)
    assert good.labels[0]["name"] == expected.labels[0].name
    assert good.traits == expected.traits  # what duplicates reads: found by the worker, not later
    assert by_path[str(folder / "broken.jpg")].traits is None
    assert len(shard.rows) == len(files)


def test_a_shard_from_before_traits_still_loads_and_its_traits_are_found_later(folder, tmp_path,
                                                                               tiny_embedder):
    (spec,) = shards.plan_shards(list(walk([folder])), shard_size=100)
    path = shards.write_shard(spec, tiny_embedder, tmp_path / "out")
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(list(TRAIT_FIELDS)), path)  # as format 1 wrote it
    rows = shards.read_shard(path).rows
    assert rows and all(row.traits is None for row in rows)


def test_a_shard_from_before_the_colour_grid_loads_its_traits_as_stale(folder, tmp_path, tiny_embedder):
    (spec,) = shards.plan_shards(list(walk([folder])), shard_size=100)
    path = shards.write_shard(spec, tiny_embedder, tmp_path / "out")
    table = pq.read_table(path).drop_columns(["tint"])
    version = table.schema.get_field_index("traits_version")
    pq.write_table(table.set_column(version, "traits_version", pa.array([2] * table.num_rows, pa.int32())),
                   path)  # as the release before TRAITS_VERSION 3 wrote it
    rows = shards.read_shard(path).rows
    assert rows and all(row.traits is None for row in rows)  # read again from the files when needed


def test_shard_names_come_from_the_sorted_listing(folder):
    files = list(walk([folder]))
    first = shards.plan_shards(files, shard_size=5)
    assert [s.name for s in shards.plan_shards(reversed(files), shard_size=5)] == [s.name for s in first]
    assert [s.name.split("-")[1:4] for s in first][:2] == [["00000", "of", f"{len(first):05d}"],
                                                           ["00001", "of", f"{len(first):05d}"]]
    touched = [f._replace(mtime=f.mtime + 1) if f == files[-1] else f for f in files]
    renamed = [a.name != b.name for a, b in zip(first, shards.plan_shards(touched, 5), strict=True)]
    assert renamed.count(True) == 1  # only the shard holding the changed file gets a new name


def test_the_local_engine_skips_finished_shards(folder, tmp_path, tiny_embedder):
    specs = shards.plan_shards(walk([folder]), shard_size=4)
    out = tmp_path / "out"
    shards.write_shard(specs[1], tiny_embedder, out)
    (out / f".{specs[2].name}.123.tmp").write_bytes(b"half a shard")  # a killed writer's leftover
    assert len(split_finished(specs, out)[0]) == 1
    engine = LocalEngine("unused", embedder=tiny_embedder)
    made = list(engine.run(specs, out))
    assert (engine.skipped, engine.ran) == (1, len(specs) - 1)
    assert sorted(made) == sorted(out / s.filename() for s in specs)


def test_local_engine_gives_the_plain_index(folder, tmp_path, tf1_module):
    plain, sharded = tmp_path / "plain", tmp_path / "sharded"
    assert run("index", folder, "--index", plain, "--model", tf1_module).exit_code == 3  # broken.jpg
    result = run("index", folder, "--index", sharded, "--model", tf1_module, "--engine", "local",
                 "--shard-size", "3")
    assert result.exit_code == 3, result.output
    assert "shards: 5 made by local" in result.stdout
    want, got = rows_of(plain), rows_of(sharded)
    assert sorted(got) == sorted(want) and len(got) == 13
    for path, (vector, *rest) in want.items():
        assert float(np.dot(vector, got[path][0])) > 1 - 1e-5
        assert got[path][1:] == tuple(rest)
    assert failures_of(sharded) == failures_of(plain) == {str(folder / "broken.jpg"):
                                                          "truncated or corrupt image data"}
    assert not list((sharded / SHARDS_DIR).iterdir())  # loaded shards are removed
    with lookalike.open(sharded) as col:
        assert col.search(folder / "cat.jpg", k=1).neighbours[0].image.path.endswith("cat-small.jpg")
        assert col._current_vectors().id_checksum() == col.store.id_checksum()
    with lookalike.open(plain) as a, lookalike.open(sharded) as b:
        for path in want:
            assert b.store.get_by_path(path).traits == a.store.get_by_path(path).traits
    again = run("index", folder, "--index", sharded, "--engine", "local")
    assert "added 0, updated 0, unchanged 13" in again.stdout
    assert "found again" not in again.stdout  # the workers found the traits: nothing is stale
    assert "shards: 1 made" in again.stdout  # broken.jpg is tried again, as the plain index does


def test_loading_a_shard_twice_adds_no_row(folder, tmp_path, tiny_embedder):
    (spec,) = shards.plan_shards(walk([folder]), shard_size=100)
    path = shards.write_shard(spec, tiny_embedder, tmp_path / "out")
    index = tmp_path / "index"
    with lookalike.open(index) as col:
        first = col.load_shards(str(path))  # one shard given alone: a path, not a list of its letters
        ids = {p: s.id for p, s in col.store.file_states().items()}
        second = col.load_shards([path, path])
        assert (first.added, first.failed) == (13, 1) and (second.added, second.updated) == (0, 26)
        assert {p: s.id for p, s in col.store.file_states().items()} == ids
        assert col.store.failure_count() == 1
        assert col._current_vectors().id_checksum() == col.store.id_checksum()  # FAISS: no id twice


@pytest.fixture
def a_shard(folder, tmp_path, tiny_embedder) -> Path:
    (spec,) = shards.plan_shards(walk([folder]), shard_size=100)
    return shards.write_shard(spec, tiny_embedder, tmp_path / "out")


def plant(path: Path, kind: str, shard: Path) -> None:
    """Something that is no shard file at ``path``."""
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "folder":  # holding a real shard: pyarrow read a folder as a dataset of its files
        path.mkdir()
        shutil.copy(shard, path / shard.name)
    elif kind == "device":
        path.symlink_to("/dev/zero")


@pytest.mark.parametrize("kind", ["FIFO", "folder", "device"])
def test_a_shard_path_that_is_no_regular_file_is_one_line_naming_it(a_shard, tmp_path, kind):
    """A FIFO, a device or a folder given as a shard was a vague pyarrow error (just the path), and a
    folder was read as a dataset of the shards in it."""
    planted = tmp_path / "planted.parquet"
    plant(planted, kind, a_shard)
    with lookalike.open(tmp_path / "index") as col:
        error = within(30, lambda: col.load_shards([planted]), fifo=planted if kind == "FIFO" else None)
        assert isinstance(error, CollectionError)
        assert str(error) == f"{planted}: not a regular file ({kind}), not a shard"
        assert col.info().images == 0


def test_a_missing_shard_says_so_and_an_empty_one_is_unreadable(a_shard, tmp_path):
    missing, empty = tmp_path / "missing.parquet", tmp_path / "empty.parquet"
    empty.touch()
    with lookalike.open(tmp_path / "index") as col:
        with pytest.raises(CollectionError) as caught:
            col.load_shards([missing])
        assert str(caught.value) == f"{missing}: not a readable shard (No such file or directory)"
        with pytest.raises(CollectionError, match=f"^{empty}: not a readable shard \\(.*0 bytes"):
            col.load_shards([empty])


def test_a_parquet_file_with_our_key_but_not_our_shape_is_no_shard(tmp_path):
    """A fingerprint that is no JSON object, or the columns missing: one line naming the file, not a
    JSONDecodeError or KeyError from the middle of a load. A NUL byte in the path is a bad argument."""
    table = pa.table({"path": [b"a.jpg"]})
    files = {"no JSON": b"{not json", "a list": b"[1, 2]", "no vectors": b'{"dim": 4}'}
    for name, fingerprint in files.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table.replace_schema_metadata({shards.META_FINGERPRINT: fingerprint}), path)
        with pytest.raises(CollectionError, match=f"^{path}: not a lookalike shard \\("):
            shards.read_shard(path)
    with pytest.raises(InvalidOption, match="^SHARD "):
        shards.read_shard(str(tmp_path / "a\0b.parquet"))


@pytest.mark.parametrize("name", ["a\0b.parquet", "", b""])
def test_a_shard_path_no_file_can_have_is_an_invalid_option(a_shard, tmp_path, name):
    """A NUL byte was a CollectionError carrying pyarrow's words; an empty path was the current folder,
    read as a dataset of whatever Parquet files it held. Both are a bad argument, before the lock."""
    with lookalike.open(tmp_path / "index") as col:
        with pytest.raises(InvalidOption, match="^SHARD "):
            col.load_shards([a_shard, name])
        assert col.info().images == 0


def test_a_shard_from_another_model_is_refused(folder, tmp_path, tiny_embedder, tf2_module):
    (spec,) = shards.plan_shards(walk([folder]), shard_size=100)
    path = shards.write_shard(spec, tiny_embedder, tmp_path / "out")
    index = tmp_path / "index"
    run("index", folder / "cat.jpg", "--index", index, "--model", tf2_module)
    with lookalike.open(index) as col, pytest.raises(ModelMismatchError, match="was made with"):
        col.load_shards([path])
    forged = path.rename(path.with_name("a\nDONE: 0 problems.parquet"))  # a name that fakes a line
    with lookalike.open(index) as col, pytest.raises(ModelMismatchError) as refused:
        col.load_shards([forged])
    assert "\n" not in str(refused.value)


def test_a_rerun_loads_what_a_killed_run_finished_and_embeds_only_the_rest(folder, tmp_path, tf1_module,
                                                                           tiny_embedder):
    """A killed driver leaves finished shards (and maybe a half-written one) in INDEX/shards; the next
    run loads them first, whatever shard plan it makes, and embeds only the files they lack."""
    index = tmp_path / "index"
    run("index", folder / "cat.jpg", "--index", index, "--model", tf1_module)  # some rows loaded already
    files = [f for f in walk([folder]) if not f.path.endswith("cat.jpg")]
    staging = index / SHARDS_DIR
    left = shards.plan_shards(files, shard_size=4)[:2]  # 8 of the 12 files were finished
    for spec in left:
        shards.write_shard(spec, tiny_embedder, staging)
    (staging / ".shard-00002-of-00003-0.1.tmp").write_bytes(b"half")
    touched = left[0].files[0].path  # changed after its shard was made: must be embedded again
    os.utime(touched, (1, 1))

    engine = LocalEngine(str(tf1_module))
    with lookalike.open(index) as col:
        summary = col.add([folder], engine=engine, shard_size=4)
    assert engine.resumed == 7 and engine.ran == 2  # the 4 + 1 files no shard holds (13 - 1 - 7 - 1)
    assert (summary.added, summary.unchanged, summary.failed) == (12, 1, 1)
    assert not any(staging.iterdir())
    plain = tmp_path / "plain"
    run("index", folder, "--index", plain, "--model", tf1_module)
    want, got = rows_of(plain), rows_of(index)
    assert sorted(got) == sorted(want)
    assert all(float(np.dot(want[p][0], got[p][0])) > 1 - 1e-5 for p in want)


def test_engine_options_are_usage_errors_without_the_engine(folder, tmp_path):
    index = tmp_path / "index"
    for args in (["--address", "ray://nowhere:10001"], ["--workers", "2"], ["--engine", "spark"],
                 ["--engine", "local", "--address", "ray://nowhere:10001"],
                 ["--engine", "local", "--workers", "2"]):
        result = run("index", folder, "--index", index, *args)
        assert result.exit_code == 2, (args, result.output)
        assert error_lines(result)[-1].startswith("error: ")


def test_the_core_never_imports_ray(folder, tmp_path, tf1_module):
    """``import lookalike`` and a plain ``lookalike index`` (and --engine local) run without Ray."""
    code = """
import sys
import lookalike
assert 'ray' not in sys.modules and 'pyarrow' not in sys.modules, 'import lookalike'
from tests.cli import run
folder, index, module = sys.argv[1:]
assert run('index', folder, '--index', index + '1', '--model', module).exit_code == 3
assert 'ray' not in sys.modules, 'plain index'  # (TensorFlow itself imports pyarrow when it is there)
assert run('index', folder, '--index', index + '2', '--model', module, '--engine', 'local').exit_code == 3
assert 'ray' not in sys.modules, 'local engine'
"""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code, str(folder), str(tmp_path / "index"), str(tf1_module)],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_without_the_ray_extra_the_ray_engine_says_how_to_get_it(folder, tmp_path, tf1_module, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed: importing it raises ImportError
    result = run("index", folder, "--index", tmp_path / "index", "--model", tf1_module, "--engine", "ray")
    assert result.exit_code == 1
    assert error_lines(result) == [
        "error: --engine ray needs Ray: pip install 'lookalike[ray]' (or --engine local)"]

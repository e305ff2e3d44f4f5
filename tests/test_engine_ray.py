"""``lookalike index --engine ray`` on a local Ray: the plain index's vectors, and a SIGKILLed driver resumes.

Slow (Ray starts in seconds, each worker loads TensorFlow): marked ``slow``, still run by ``make test``.
Every Ray process a test starts gets a fresh ``RAY_TMPDIR``; whatever outlives the test (a killed
driver leaves Ray's own processes behind) is found by that variable in its environment and killed by
pid - never by name, so no other Ray on the machine is touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import lookalike
from lookalike.index.collection import SHARDS_DIR
from lookalike.index.vectors import saved_generation
from tests.cli import run, run_process
from tests.photos import photo_folder

ray = pytest.importorskip("ray", reason="the ray extra: pip install -e '.[ray]'")

pytestmark = pytest.mark.slow
IMAGES = 16


def build_slow_module(target: Path) -> Path:
    """The tests' tiny TF1 module plus ~0.2 s of matrix products per batch that depend on the input, so
    a shard takes long enough for a kill to land between shards; its vectors are the tiny module's."""
    import tensorflow as tf

    from tests.modules import FEATURE_DIM, FEATURE_GRID, _encode_field, _projection, image_module_info

    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name="images")
        scale = tf.compat.v1.get_variable("scale", initializer=tf.constant(2.0))
        grid = tf.image.resize(images, [FEATURE_GRID, FEATURE_GRID], method="area")
        busy = tf.fill([384, 384], tf.reduce_mean(images) * 1e-9)
        for _ in range(48):
            busy = tf.tanh(tf.matmul(busy, busy))
        features = tf.reshape(grid, [-1, FEATURE_DIM]) * scale + tf.reduce_sum(busy) * 0.0
        weights = tf.compat.v1.get_variable("logits_w", initializer=tf.constant(_projection(1000)))
        logits = tf.matmul(features, weights)
        signatures = {
            "image_feature_vector": tf.compat.v1.saved_model.predict_signature_def(
                {"images": images}, {"default": features}),
            "image_classification": tf.compat.v1.saved_model.predict_signature_def(
                {"images": images}, {"default": logits}),
        }
        tf.compat.v1.add_to_collection("hub_module_attachments", image_module_info(64))
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(target))
            builder.add_meta_graph_and_variables(session, [], signature_def_map=signatures)
            builder.save()
    (target / "tfhub_module.pb").write_bytes(_encode_field(1, 3))
    return target


@pytest.fixture(scope="module")
def slow_module(tmp_path_factory) -> Path:
    return build_slow_module(tmp_path_factory.mktemp("modules") / "slow")


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    files = photo_folder(root, synthetic=IMAGES - 8)  # 4 photos, 4 smaller copies, 8 synthetic
    assert len(files) == IMAGES
    return root


@pytest.fixture
def ray_tmp(monkeypatch):
    """A fresh RAY_TMPDIR (short: Ray's socket paths must fit 107 bytes); afterwards, every process
    still carrying it is killed by pid and the directory removed."""
    directory = tempfile.mkdtemp(prefix="lkray-", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", directory)
    yield directory
    if ray.is_initialized():
        ray.shutdown()
    deadline = time.monotonic() + 10
    while (left := processes_with(f"RAY_TMPDIR={directory}")) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    shutil.rmtree(directory, ignore_errors=True)
    assert not processes_with(f"RAY_TMPDIR={directory}")


def processes_with(variable: str) -> list[int]:
    """Pids of this user's processes (other than this one) whose environment holds ``variable``."""
    wanted = variable.encode() + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if wanted in f.read() + b"\0":
                    found.append(int(entry))
        except OSError:
            continue
    return found


def vectors_of(index: Path) -> dict[str, np.ndarray]:
    with lookalike.open(index, create=False) as col:
        return {p: col.store.get_by_path(p).vector for p in col.store.file_states()}


def test_ray_engine_gives_the_plain_index(photos, tmp_path, slow_module, ray_tmp):
    plain, sharded = tmp_path / "plain", tmp_path / "ray"
    assert run("index", photos, "--index", plain, "--model", slow_module).exit_code == 0
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    result = run("index", photos, "--index", sharded, "--model", slow_module, "--engine", "ray",
                 "--workers", "2", "--shard-size", "3")
    assert result.exit_code == 0, result.output
    assert "added 16," in result.stdout and "shards: 6 made by ray" in result.stdout
    assert ray.is_initialized()  # a Ray the caller started is left running for it
    want, got = vectors_of(plain), vectors_of(sharded)
    assert sorted(got) == sorted(want) and len(got) == IMAGES
    assert min(float(np.dot(want[p], got[p])) for p in want) > 1 - 1e-5
    with lookalike.open(sharded) as a, lookalike.open(plain) as b:
        for query in ("cat.jpg", "blocks3.png"):
            hits = [[n.image.path for n in c.search(photos / query, k=5).neighbours] for c in (a, b)]
            assert hits[0] == hits[1]


def test_a_model_the_workers_cannot_load_is_one_line_not_rays_tracebacks(photos, tmp_path, ray_tmp):
    # The worker's own error, as the local engine would say it: Ray's loggers would print both stack
    # traces (the worker's and Ray Data's own) above it.
    missing = tmp_path / "no-such-module"
    done = run_process("index", photos, "--index", tmp_path / "index", "--engine", "ray", "--model", missing,
                       "--quiet")
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: ray engine failed: model {str(missing)!r} is not a catalog name, a URL or a "
                      "module directory"], stderr


def test_a_sigkilled_driver_resumes_without_duplicates(photos, tmp_path, slow_module, ray_tmp):
    """The driver (it started its own local Ray) is SIGKILLed once shards have landed; the re-run
    skips what was finished, and the index ends with every file once, FAISS agreeing with SQLite."""
    total = IMAGES
    index = tmp_path / "index"
    args = [sys.executable, "-m", "lookalike.cli", "index", str(photos), "--index", str(index),
            "--model", str(slow_module), "--engine", "ray", "--workers", "2", "--shard-size", "2",
            "--batch-size", "1", "--quiet"]
    driver = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    finished = 0
    deadline = time.monotonic() + 240
    while finished < 2 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        finished = count_rows(index) + len(list((index / SHARDS_DIR).glob("shard-*.parquet")))
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert driver.returncode == -signal.SIGKILL, driver.stderr.read().decode()[-2000:]
    done_before = count_rows(index) + 2 * len(list((index / SHARDS_DIR).glob("shard-*.parquet")))
    assert 0 < done_before < total, "the kill must land mid-run"

    again = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    made = int(again.stderr.split("shards: ")[1].split(" made")[0])
    # Finished shards were not made again. (One shard of slack: on a loaded machine a shard can land
    # between the last rows counted and the kill; seen once with the load average at 9.)
    assert made <= (total - done_before + 1) // 2 + 1 and made < total // 2
    with sqlite3.connect(index / "lookalike.db") as db:
        count, distinct = db.execute("SELECT count(*), count(DISTINCT path_bytes) FROM images").fetchone()
    assert count == distinct == total
    assert not list((index / SHARDS_DIR).iterdir())
    with lookalike.open(index) as col:
        assert saved_generation(index) == col.store.generation
        assert col._current_vectors().id_checksum() == col.store.id_checksum()
    plain = tmp_path / "plain"
    run("index", photos, "--index", plain, "--model", slow_module)
    want, got = vectors_of(plain), vectors_of(index)
    assert sorted(got) == sorted(want)
    assert min(float(np.dot(want[p], got[p])) for p in want) > 1 - 1e-5


def count_rows(index: Path) -> int:
    try:
        with sqlite3.connect(f"file:{index / 'lookalike.db'}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT count(*) FROM images").fetchone()[0]
    except sqlite3.OperationalError:
        return 0

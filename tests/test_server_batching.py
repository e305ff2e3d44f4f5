"""BatchingEmbedder, the server's query embedder: concurrent calls share forward passes, same answers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from lookalike.embedder import batching
from lookalike.embedder.batching import BatchingEmbedder
from lookalike.errors import ImageError
from tests.photos import DATA
from tests.serving import indexed_collection

PHOTOS = sorted(DATA.glob("*.jpg"))


@pytest.fixture
def passes(tiny_embedder, monkeypatch) -> list[int]:
    """The size of every forward pass the wrapped embedder runs."""
    sizes: list[int] = []
    real = tiny_embedder._embed_decoded

    def counted(images, top_k):
        sizes.append(len(images))
        return real(images, top_k)

    monkeypatch.setattr(tiny_embedder, "_embed_decoded", counted)
    return sizes


def embed_together(embedder, calls: list[tuple], threads: int = 8) -> list:
    """Run ``embedder.embed(*call)`` for every call at once; each result or the exception it raised."""
    start = threading.Barrier(threads)

    def one(call):
        start.wait()
        try:
            return embedder.embed(*call)
        except Exception as error:
            return error

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, calls))


def test_concurrent_calls_share_passes_and_get_their_own_answers(tiny_embedder, passes):
    batcher = BatchingEmbedder(tiny_embedder, max_batch=8, max_wait=0.5)
    calls = [(PHOTOS[i % len(PHOTOS)], 1 + i % 5) for i in range(8)]
    results = embed_together(batcher, calls)
    assert sum(passes) == 8 and max(passes) > 1
    for (photo, k), result in zip(calls, results, strict=True):
        alone = tiny_embedder.embed(photo, top_k=5)
        np.testing.assert_allclose(result.vector, alone.vector, atol=1e-5)
        assert np.isclose(np.linalg.norm(result.vector), 1.0)
        assert [label.name for label in result.labels] == [label.name for label in alone.labels[:k]]
        assert (result.width, result.height, result.format) == (alone.width, alone.height, alone.format)


def test_max_batch_caps_a_pass(tiny_embedder, passes):
    batcher = BatchingEmbedder(tiny_embedder, max_batch=3, max_wait=0.5)
    embed_together(batcher, [(PHOTOS[0],)] * 8)
    assert sum(passes) == 8 and max(passes) <= 3


def test_a_bad_image_fails_only_its_own_call(tiny_embedder, passes):
    batcher = BatchingEmbedder(tiny_embedder, max_wait=0.2)
    results = embed_together(batcher, [(b"not an image",), (PHOTOS[0],), (b"",), (PHOTOS[1],)], threads=4)
    assert isinstance(results[0], ImageError) and isinstance(results[2], ImageError)
    assert results[1].vector.shape == results[3].vector.shape == (tiny_embedder.dim,)
    assert sum(passes) == 2  # undecodable images never reach the model


def test_a_failing_pass_fails_its_callers_and_the_next_pass_works(tiny_embedder, monkeypatch):
    batcher = BatchingEmbedder(tiny_embedder, max_wait=0.2)
    real = tiny_embedder._embed_decoded
    monkeypatch.setattr(tiny_embedder, "_embed_decoded", lambda images, k: 1 / 0)
    results = embed_together(batcher, [(PHOTOS[0],)] * 3, threads=3)
    assert all(isinstance(r, ZeroDivisionError) for r in results)
    monkeypatch.setattr(tiny_embedder, "_embed_decoded", real)
    assert batcher.embed(PHOTOS[0]).labels


def test_the_worker_ends_when_idle_and_comes_back(tiny_embedder, monkeypatch):
    monkeypatch.setattr(batching, "IDLE_EXIT_S", 0.05)
    batcher = BatchingEmbedder(tiny_embedder)
    first = batcher.embed(PHOTOS[0])
    worker = batcher._worker
    assert worker is not None
    worker.join(5)
    assert not worker.is_alive() and batcher._worker is None
    np.testing.assert_array_equal(batcher.embed(PHOTOS[0]).vector, first.vector)


def test_the_rest_of_the_embedder_shows_through(tiny_embedder):
    batcher = BatchingEmbedder(tiny_embedder)
    assert (batcher.dim, batcher.input_size, batcher.fingerprint) == (
        tiny_embedder.dim, tiny_embedder.input_size, tiny_embedder.fingerprint
    )
    with pytest.raises(ValueError, match="max_batch"):
        BatchingEmbedder(tiny_embedder, max_batch=0)


def test_a_collection_opened_with_batching_searches_the_same(tmp_path, tf1_module):
    plain = indexed_collection(tmp_path, tf1_module)
    batched = indexed_collection(tmp_path / "again", tf1_module, batching=True)
    assert isinstance(batched.embedder, BatchingEmbedder)
    query = (DATA / "rocket.jpg").read_bytes()

    def names(result) -> list[str]:
        return [Path(n.image.path).name for n in result.neighbours]

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: batched.search(query, k=5), range(4)))
    assert all(names(answer) == names(plain.search(query, k=5)) for answer in answers)
    plain.close()
    batched.close()

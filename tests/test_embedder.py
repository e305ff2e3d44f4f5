"""The embedder as users meet it: paths and bytes in, normalised vectors and labels out, bad files skipped."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from lookalike.embedder import embedder as embedder_module
from lookalike.errors import ImageError
from tests.blocking import within


def test_importing_lookalike_does_not_import_tensorflow():
    code = "import sys, lookalike, lookalike.embedder, lookalike.cli; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_tensorflow_hub_imports_in_the_installed_environment():
    """tensorflow-hub 0.16.1 needs pkg_resources, gone in setuptools 82: the pin keeps it importable."""
    code = "import tensorflow_hub, setuptools; print(setuptools.__version__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(result.stdout.strip().split(".")[0]) < 82


def test_embedding_is_l2_normalised_with_image_metadata(tiny_embedder, sample_photos):
    embedding = tiny_embedder.embed(sample_photos[0])
    assert embedding.vector.dtype == np.float32
    assert abs(np.linalg.norm(embedding.vector) - 1) < 1e-5
    assert embedding.width > 0 and embedding.height > 0 and embedding.format in {"JPEG", "PNG"}
    probabilities = [label.probability for label in embedding.labels]
    assert probabilities == sorted(probabilities, reverse=True) and len(probabilities) == 5


def test_bytes_and_paths_embed_the_same(tiny_embedder, sample_photos):
    from_path = tiny_embedder.embed(sample_photos[0])
    from_bytes = tiny_embedder.embed(sample_photos[0].read_bytes())
    np.testing.assert_allclose(from_path.vector, from_bytes.vector, atol=1e-6)


def test_embed_many_keeps_order_and_skips_bad_files_with_a_reason(tiny_embedder, sample_photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("this is not a JPEG")
    sources = [sample_photos[0], broken, *sample_photos[1:]] * 3
    results = list(tiny_embedder.embed_many(sources, batch_size=4))
    assert [source for source, _ in results] == sources
    for source, result in results:
        if source == broken:
            assert isinstance(result, ImageError) and result.reason
        else:
            np.testing.assert_allclose(result.vector, tiny_embedder.embed(source).vector, atol=1e-5)


def test_batches_match_single_images(tiny_embedder, sample_photos):
    single = [tiny_embedder.embed(p).vector for p in sample_photos]
    batched = [e.vector for _, e in tiny_embedder.embed_many(sample_photos, batch_size=len(sample_photos))]
    np.testing.assert_allclose(np.stack(single), np.stack(batched), atol=1e-5)


def test_loading_a_model_before_opening_an_index_keeps_full_text_search(tmp_path, tf1_module):
    """TensorFlow ships an SQLite without FTS5; lookalike makes sure the system one is loaded first."""
    code = (
        "import sys; from lookalike.embedder import load_embedder; load_embedder(sys.argv[1]); "
        "import lookalike; print(lookalike.open(sys.argv[2]).find('x'))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(tf1_module), str(tmp_path / "index")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# --- non-regular files never block a run ------------------------------------------------------------


def test_embed_refuses_a_fifo_at_once(tiny_embedder, tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    error = within(30, lambda: tiny_embedder.embed(fifo), fifo)
    assert isinstance(error, ImageError) and error.reason == "not a regular file (FIFO)"


def test_embed_many_reports_a_fifo_in_its_place_and_goes_on(tiny_embedder, sample_photos, tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    sources = [sample_photos[0], fifo, *sample_photos[1:]]
    results = within(30, lambda: list(tiny_embedder.embed_many(sources, batch_size=2)), fifo)
    assert [source for source, _ in results] == sources
    assert isinstance(results[1][1], ImageError) and results[1][1].reason == "not a regular file (FIFO)"
    assert all(not isinstance(result, ImageError) for source, result in results if source != fifo)


# --- memory: bounded whatever batch size is asked -----------------------------------------------------


def test_the_model_batch_cap_is_a_sane_constant():
    assert 16 <= embedder_module.MAX_BATCH_SIZE <= 512


def test_a_huge_batch_size_runs_as_forward_passes_of_at_most_the_cap(
    tiny_embedder, sample_photos, monkeypatch
):
    monkeypatch.setattr(embedder_module, "MAX_BATCH_SIZE", 3)
    passes = []
    run = tiny_embedder._run

    def counting(pixels):
        passes.append(len(pixels))
        return run(pixels)

    monkeypatch.setattr(tiny_embedder, "_run", counting)
    sources = sample_photos * 4
    results = list(tiny_embedder.embed_many(sources, batch_size=1024))
    single = [tiny_embedder.embed(p).vector for p in sources]

    assert passes[: len(passes) - len(sources)] and max(passes) <= 3
    assert sum(passes[: len(passes) - len(sources)]) == len(sources)
    np.testing.assert_allclose(np.stack([e.vector for _, e in results]), np.stack(single), atol=1e-5)


def test_embed_pixels_splits_a_large_batch_into_passes_of_at_most_the_cap(tiny_embedder, monkeypatch):
    monkeypatch.setattr(embedder_module, "MAX_BATCH_SIZE", 4)
    passes = []
    run = tiny_embedder._run
    monkeypatch.setattr(tiny_embedder, "_run", lambda pixels: passes.append(len(pixels)) or run(pixels))
    size = tiny_embedder.input_size
    pixels = np.random.default_rng(0).random((10, size, size, 3), dtype=np.float32)

    features, logits = tiny_embedder.embed_pixels(pixels)

    assert passes == [4, 4, 2] and features.shape[0] == 10 and logits.shape[0] == 10
    whole, _ = run(pixels)
    np.testing.assert_allclose(features, whole, atol=1e-5)


def test_decoded_images_waiting_for_the_model_are_bounded_whatever_the_batch_size(
    tiny_embedder, sample_photos, monkeypatch
):
    monkeypatch.setattr(embedder_module, "MAX_BATCH_SIZE", 4)
    started = []
    load = embedder_module.load_image

    def counting_load(source, size, **options):
        started.append(source)
        return load(source, size, **options)

    monkeypatch.setattr(embedder_module, "load_image", counting_load)
    sources = sample_photos * 50
    stream = tiny_embedder.embed_many(sources, batch_size=1024, workers=2)

    next(stream)  # one model batch taken, the look-ahead topped up behind it
    assert len(started) <= 3 * 4  # the batch in the model plus a look-ahead of two batches
    rest = list(stream)
    assert len(rest) == len(sources) - 1 and len(started) == len(sources)


def test_the_look_ahead_is_bounded_in_bytes_for_large_inputs(tiny_embedder):
    lookahead = embedder_module.lookahead_images
    per_image = 600 * 600 * 3 * 4  # EfficientNet-B7's input, float32
    assert lookahead(1024, 600, workers=4) * per_image <= embedder_module.MAX_LOOKAHEAD_BYTES
    assert lookahead(1, 600, workers=4) >= 4  # never fewer than the decoding threads can fill
    assert lookahead(1024, 64, workers=4) == 2 * embedder_module.MAX_BATCH_SIZE

"""The embedder as users meet it: paths and bytes in, normalised vectors and labels out, bad files skipped."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from lookalike.errors import ImageError


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

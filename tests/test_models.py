"""Loading TF-Hub modules the production way: local dirs, the cache, tar.gz over HTTP, both formats."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import tarfile
import threading

import numpy as np
import pytest

from lookalike.embedder import CATALOG, ModelError, load_embedder
from lookalike.embedder.labels import imagenet_names, top_labels
from tests.modules import FEATURE_DIM, build_tf1_module


def test_catalog_knows_the_whole_efficientnet_collection():
    sizes = {name: entry.input_size for name, entry in CATALOG.items()}
    assert sizes == {
        "efficientnet-b0": 224, "efficientnet-b1": 240, "efficientnet-b2": 260, "efficientnet-b3": 300,
        "efficientnet-b4": 380, "efficientnet-b5": 456, "efficientnet-b6": 528, "efficientnet-b7": 600,
        "efficientnet-lite2": 260,
    }  # fmt: skip
    assert CATALOG["efficientnet-b2"].handle == "https://tfhub.dev/google/efficientnet/b2/classification/1"


def test_tf1_module_gives_features_and_labels_in_one_call(tiny_embedder):
    assert tiny_embedder.format == "tf1-hub"
    assert tiny_embedder.dim == FEATURE_DIM
    assert tiny_embedder.has_labels
    assert tiny_embedder.input_size == 64  # from the module's image_module_info attachment
    features, logits = tiny_embedder.embed_pixels(np.full((3, 64, 64, 3), 0.5, np.float32))
    assert features.shape == (3, FEATURE_DIM)
    assert logits.shape == (3, 1000)
    np.testing.assert_allclose(features, 1.0, rtol=1e-5)  # the module scales a grey thumbnail by 2


def test_tf2_saved_model_loads_through_the_same_path(tf2_module, sample_photos):
    embedder = load_embedder(str(tf2_module))
    assert embedder.format == "saved-model"
    assert embedder.input_size == 64  # static input shape of the signature
    embedding = embedder.embed(sample_photos[0])
    assert embedding.vector.shape == (FEATURE_DIM,)
    assert len(embedding.labels) == 5


def test_module_without_classifier_embeds_without_labels(tmp_path, sample_photos):
    module = build_tf1_module(tmp_path / "features-only", classes=None)
    embedder = load_embedder(str(module))
    assert not embedder.has_labels
    embedding = embedder.embed(sample_photos[0])
    assert embedding.labels == []
    assert embedding.vector.shape == (FEATURE_DIM,)


def test_undeclared_size_falls_back_to_260_with_a_warning(tmp_path, caplog):
    embedder = load_embedder(str(build_tf1_module(tmp_path / "no-size")))
    assert embedder.input_size == 260
    assert "declares no input size" in caplog.text


def test_b2_handle_loads_from_a_prefilled_cache_without_network(tf1_module, tmp_path):
    """How an air-gapped user brings B2 in: unpack it at $TFHUB_CACHE_DIR/<sha1 of the handle>."""
    handle = CATALOG["efficientnet-b2"].handle
    shutil.copytree(tf1_module, tmp_path / hashlib.sha1(handle.encode()).hexdigest())
    embedder = load_embedder("efficientnet-b2", cache_dir=tmp_path)
    assert embedder.handle == handle
    assert embedder.input_size == 260  # the catalog's size wins over the module's declaration
    assert embedder.fingerprint.handle == handle


def test_tfhub_cache_dir_environment_is_honoured(tf1_module, tmp_path, monkeypatch):
    handle = CATALOG["efficientnet-b0"].handle
    shutil.copytree(tf1_module, tmp_path / hashlib.sha1(handle.encode()).hexdigest())
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    assert load_embedder("efficientnet-b0").input_size == 224


@pytest.fixture
def http_server(tmp_path):
    """A static file server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_tar_gz_module_is_downloaded_unpacked_and_cached(tf1_module, http_server, tmp_path):
    root, url = http_server
    with tarfile.open(root / "tiny.tar.gz", "w:gz") as archive:
        for item in tf1_module.iterdir():
            archive.add(item, arcname=item.name)
    cache = tmp_path / "cache"
    handle = f"{url}/tiny.tar.gz"
    first = load_embedder(handle, cache_dir=cache)
    assert (cache / hashlib.sha1(handle.encode()).hexdigest() / "tfhub_module.pb").exists()
    (root / "tiny.tar.gz").unlink()  # the second load must not need the server
    second = load_embedder(handle, cache_dir=cache)
    assert first.fingerprint == second.fingerprint


def test_unreachable_handle_fails_in_one_line_naming_the_offline_model(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ModelError) as error:
        load_embedder(f"http://127.0.0.1:{port}/module.tar.gz", cache_dir=tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert "cannot download" in message and "--model efficientnet-lite2" in message


def test_unknown_model_name_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not a catalog name"):
        load_embedder("no-such-model", cache_dir=tmp_path)


def test_a_local_tar_gz_is_refused_with_how_to_unpack_it(tmp_path):
    archive = tmp_path / "module.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    with pytest.raises(ModelError, match="only over http"):
        load_embedder(str(archive), cache_dir=tmp_path)


def test_fingerprint_changes_with_the_weights(tmp_path, tf1_module):
    other = build_tf1_module(tmp_path / "other", classes=10)
    a, b = load_embedder(str(tf1_module)), load_embedder(str(other))
    assert a.fingerprint != b.fingerprint
    assert a.fingerprint == load_embedder(str(tf1_module)).fingerprint
    assert type(a.fingerprint).from_dict(a.fingerprint.as_dict()) == a.fingerprint


def test_top_labels_handle_1000_and_1001_logits():
    logits = np.zeros((1, 1000))
    logits[0, 281] = 10.0
    (labels,) = top_labels(logits, k=3)
    assert labels[0].name == imagenet_names()[281] == "tabby"
    assert labels[0].index == 281 and labels[0].probability > 0.9
    with_background = np.zeros((1, 1001))
    with_background[0, 282] = 10.0  # index 0 is background, so 282 is ImageNet 281
    (labels,) = top_labels(with_background, k=1)
    assert (labels[0].index, labels[0].name) == (281, "tabby")
    assert imagenet_names()[0] == "tench"

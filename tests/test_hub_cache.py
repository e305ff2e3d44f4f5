"""The frozen copy of a TF1 module's pruned function (lookalike/embedder/pruned_cache.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.embedder import hub
from tests.modules import build_tf1_module

PIXELS = np.random.default_rng(3).random((3, 32, 32, 3), dtype=np.float32)


def frozen_files(cache: Path) -> list[Path]:
    return sorted((cache / ".lookalike-pruned").glob("*.pb"))


@pytest.fixture
def module(tf1_module, tmp_path) -> Path:
    """A module inside the cache dir, as downloaded handles and the converted Lite2 are."""
    copy = tmp_path / "cache" / "module"
    shutil.copytree(tf1_module, copy)
    return copy


def test_second_load_uses_the_frozen_function_and_gives_the_same_outputs(module, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = hub.load(str(module), cache)
    assert len(frozen_files(cache)) == 1
    import tensorflow_hub  # here, not at the top: TensorFlow must load after lookalike (its SQLite)

    calls = []
    monkeypatch.setattr(tensorflow_hub, "load", lambda *a, **k: calls.append(a))
    second = hub.load(str(module), cache)
    assert calls == [], "a cached module must not be loaded through hub.load"
    assert second.format == "tf1-hub" and second.declared_input_size == first.declared_input_size
    (f1, l1), (f2, l2) = first.run(PIXELS), second.run(PIXELS)
    np.testing.assert_allclose(f1, f2, rtol=1e-6)
    np.testing.assert_allclose(l1, l2, rtol=1e-5)


def test_a_cached_module_loads_without_importing_tensorflow_hub(module, tmp_path):
    """tensorflow_hub's import is 0.4 s of a cold start; what a fresh process imports is the subject here."""
    cache = tmp_path / "cache"
    hub.load(str(module), cache)
    code = (
        "import sys\nfrom pathlib import Path\nfrom lookalike.embedder import hub\n"
        f"hub.load({str(module)!r}, Path({str(cache)!r}))\nprint('tensorflow_hub' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]


def test_changed_module_gets_a_new_frozen_function_and_the_stale_one_goes(module, tmp_path):
    cache = tmp_path / "cache"
    before = hub.load(str(module), cache).run(PIXELS)
    old = frozen_files(cache)
    shutil.rmtree(module)
    build_tf1_module(module, classes=10)  # other weights and other logits behind the same path
    after = hub.load(str(module), cache).run(PIXELS)
    assert after[1].shape == (3, 10) and before[1].shape == (3, 1000)
    assert len(frozen_files(cache)) == 1 and frozen_files(cache) != old


def test_corrupt_cache_file_is_ignored_and_rebuilt(module, tmp_path):
    cache = tmp_path / "cache"
    expected = hub.load(str(module), cache).run(PIXELS)
    [frozen] = frozen_files(cache)
    frozen.write_bytes(b"not a graph")
    again = hub.load(str(module), cache).run(PIXELS)
    np.testing.assert_allclose(again[0], expected[0], rtol=1e-6)
    assert frozen.stat().st_size > 100, "the slow path rewrites a usable file"


def test_unwritable_cache_only_costs_the_speed_up(module, tmp_path):
    cache = tmp_path / "cache"
    (cache / ".lookalike-pruned").write_text("a file where the folder would be")
    features, logits = hub.load(str(module), cache).run(PIXELS)
    assert features.shape == (3, 48) and logits.shape == (3, 1000)


def test_cache_can_be_turned_off(module, tmp_path, monkeypatch):
    monkeypatch.setenv(hub.PRUNED_CACHE_ENV, "0")
    hub.load(str(module), tmp_path / "cache")
    assert frozen_files(tmp_path / "cache") == []


def test_a_module_directory_outside_the_cache_is_run_as_it_is(tf1_module, tmp_path):
    features, _ = hub.load(str(tf1_module), tmp_path / "cache").run(PIXELS)
    assert features.shape == (3, 48)
    assert frozen_files(tmp_path / "cache") == []


def test_module_without_classifier_freezes_features_only(tmp_path):
    module = build_tf1_module(tmp_path / "cache" / "plain", classes=None)
    hub.load(str(module), tmp_path / "cache")
    features, logits = hub.load(str(module), tmp_path / "cache").run(PIXELS)
    assert features.shape == (3, 48) and logits is None

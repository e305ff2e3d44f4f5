"""Shared fixtures: sample photos from data/ and tiny TF-Hub modules built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def sample_photos() -> list[Path]:
    photos = sorted(p for p in DATA.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    assert photos, "data/ holds the sample photos"
    return photos


@pytest.fixture(scope="session")
def tf1_module(tmp_path_factory) -> Path:
    """A tiny legacy TF1 Hub module (1000 logits, size declared through image_module_info)."""
    from tests.modules import build_tf1_module

    return build_tf1_module(tmp_path_factory.mktemp("modules") / "tf1", declared_size=64)


@pytest.fixture(scope="session")
def tf2_module(tmp_path_factory) -> Path:
    from tests.modules import build_tf2_module

    return build_tf2_module(tmp_path_factory.mktemp("modules") / "tf2", size=64)


@pytest.fixture(scope="session")
def tiny_embedder(tf1_module):
    """The production embedder over the tiny TF1 module: fast, real TensorFlow, real preprocessing."""
    from lookalike.embedder import load_embedder

    return load_embedder(str(tf1_module))


@pytest.fixture
def icon_decodes(monkeypatch) -> list[int]:
    """Every icon picture Pillow was asked to decode; none is decoded (the attempt fails instead)."""
    from PIL import IcoImagePlugin

    asked: list[int] = []

    def frame(self, index: int):
        asked.append(index)
        raise AssertionError("Pillow was asked to decode an icon's picture")

    monkeypatch.setattr(IcoImagePlugin.IcoFile, "frame", frame)
    return asked

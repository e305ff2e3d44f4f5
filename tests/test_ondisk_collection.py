"""The large layout end to end: a Collection of real photos and their copies, embedded by the offline
model, indexed with ``index_type="ondisk"`` and answering as the default layout does.

Trained layouts need ``IVF_MIN`` (2,560) vectors; the test lowers that bound to 16 (the fewest lists
the large layout makes, one training vector each) rather than embed thousands of images: everything
else runs as in production (the duplicate search visits 8 of the 16 lists, as it would 8 of 4,096).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lookalike
from lookalike.index import vectors
from tests.duplicate_photos import EXPECTED, duplicate_folder
from tests.photos import blocks

MODEL = "efficientnet-lite2"


def first_hits(col: lookalike.Collection, files: dict[str, Path]) -> dict[str, str]:
    """Each copy's first neighbour, by name."""
    return {copy: named(files, col.search(files[copy], 3).neighbours[0].image.path)
            for copies in EXPECTED.values() for copy in copies}


def clusters(col: lookalike.Collection, files: dict[str, Path]) -> dict[str, set[str]]:
    return {named(files, c.keeper.path): {named(files, m.path) for m in c.copies} for c in col.duplicates()}


def kind(directory: Path) -> str:
    """The layout a collection saved, from its sidecar."""
    return json.loads((directory / "vectors.json").read_text())["kind"]


def named(files: dict[str, Path], path: str) -> str:
    return next(name for name, p in files.items() if str(p) == path)


def photos(found: dict[str, set[str]]) -> dict[str, set[str]]:
    """The clusters of data/'s photos (the model also groups the random block pictures together)."""
    return {keeper: copies for keeper, copies in found.items() if keeper in EXPECTED}


@pytest.mark.slow
def test_the_on_disk_layout_finds_and_clusters_real_copies_as_the_default_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(vectors, "IVF_MIN", 16)
    files = duplicate_folder(tmp_path / "photos")
    for seed in range(4, 12):  # 20 images, 19 once one is removed: above the lowered bound
        files[f"blocks{seed}"] = blocks(tmp_path / "photos" / f"blocks{seed}.png", seed)
    default = lookalike.open(tmp_path / "default", model=MODEL)
    default.add([tmp_path / "photos"])
    large = lookalike.open(tmp_path / "large", model=MODEL, index_type="ondisk")
    large.add([tmp_path / "photos"])
    assert kind(tmp_path / "large") == "ondisk"

    originals = {copy: original for original, copies in EXPECTED.items() for copy in copies}
    assert first_hits(large, files) == originals == first_hits(default, files)
    found = clusters(large, files)
    assert found == clusters(default, files) and photos(found) == EXPECTED

    files["espresso-small"].unlink()  # forgotten by a re-index with prune: a tombstone in the base
    large.add([tmp_path / "photos"], prune=True)
    assert kind(tmp_path / "large") == "ondisk"
    reopened = lookalike.open(tmp_path / "large")
    answers = [n.image.path for n in reopened.search(files["espresso"], 20).neighbours]
    assert str(files["espresso-small"]) not in answers and len(answers) == len(files) - 2
    found = clusters(reopened, files)
    assert photos(found) == {k: v for k, v in EXPECTED.items() if k != "espresso"}
    assert not any("espresso-small" in {keeper, *copies} for keeper, copies in found.items())

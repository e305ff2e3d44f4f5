"""Indexing memory does not grow with the batch size asked: real JPEGs, the offline model, a fresh process.

Before the cap, ``lookalike index --batch-size 1024`` passed 9 GB on 729 images; now every batch size
runs as forward passes of at most ``MAX_BATCH_SIZE`` with a bounded queue of decoded images.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).resolve().parent.parent / "data"

CHILD = """
import json, resource, sys
import lookalike
collection = lookalike.open(sys.argv[1], model="efficientnet-lite2")
collection.embedder
model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
summary = collection.add([sys.argv[2]], batch_size=int(sys.argv[3]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"model_kib": model, "peak_kib": peak, "added": summary.added}))
"""


def photos(folder: Path, count: int) -> Path:
    """``count`` distinct 640x480 JPEGs made from data/'s photos."""
    folder.mkdir()
    sources = sorted(DATA.glob("*.jpg"))
    rng = np.random.default_rng(0)
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as photo:
            image = np.asarray(photo.convert("RGB").resize((640, 480)), np.int16)
        noisy = np.clip(image + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(folder / f"{i:03d}.jpg", quality=85)
    return folder


def index_in_a_fresh_process(index: Path, folder: Path, batch_size: int) -> dict:
    result = subprocess.run([sys.executable, "-c", CHILD, str(index), str(folder), str(batch_size)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_huge_batch_size_costs_no_more_memory_than_the_cap(tmp_path):
    from lookalike.embedder.embedder import MAX_BATCH_SIZE

    folder = photos(tmp_path / "photos", 3 * MAX_BATCH_SIZE + 10)
    capped = index_in_a_fresh_process(tmp_path / "capped", folder, MAX_BATCH_SIZE)
    huge = index_in_a_fresh_process(tmp_path / "huge", folder, 1024)

    assert capped["added"] == huge["added"] == 3 * MAX_BATCH_SIZE + 10
    growth = lambda run: (run["peak_kib"] - run["model_kib"]) / 2**20  # noqa: E731 - GiB over the model
    # Before the cap the 1024 run made one forward pass of every image: several GiB more than this.
    assert growth(huge) < growth(capped) + 0.25, (capped, huge)
    assert growth(huge) < 1.5, huge

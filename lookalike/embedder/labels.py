"""ImageNet class names and top-k labels from logits.

The names ship with the package (first synonym of each ILSVRC-2012 synset, index 0 = tench), because the
TF1 modules carry no label file and the usual download URL is not reachable offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

IMAGENET_CLASSES = 1000


@dataclass(frozen=True)
class Label:
    name: str
    index: int
    probability: float


@cache
def imagenet_synsets() -> tuple[str, ...]:
    """All synonyms of each class ("tabby, tabby cat"), useful for text search."""
    text = resources.files(__package__).joinpath("imagenet_labels.txt").read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(names) != IMAGENET_CLASSES:
        raise RuntimeError(f"imagenet_labels.txt holds {len(names)} names, expected {IMAGENET_CLASSES}")
    return names


@cache
def imagenet_names() -> tuple[str, ...]:
    """The short display name of each class: its first synonym."""
    return tuple(synset.split(",")[0] for synset in imagenet_synsets())


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def top_labels(logits: np.ndarray, k: int = 5) -> list[list[Label]]:
    """Top-k labels with softmax probabilities for each row of a [n, classes] logits array.

    1001-logit modules put a background class at index 0: it takes part in the softmax (it is what the
    module predicts) but is never reported, and the remaining indices shift to ImageNet's 0-999.
    """
    logits = np.asarray(logits, dtype=np.float64)
    probabilities = softmax(logits)
    offset = 1 if logits.shape[-1] == IMAGENET_CLASSES + 1 else 0
    probabilities = probabilities[:, offset:]
    names = imagenet_names() if probabilities.shape[-1] == IMAGENET_CLASSES else None
    k = min(k, probabilities.shape[-1])
    best = np.argsort(-probabilities, axis=-1, kind="stable")[:, :k]
    return [
        [
            Label(names[i] if names else f"class {i}", int(i), float(row[i]))
            for i in order
        ]
        for row, order in zip(probabilities, best, strict=True)
    ]

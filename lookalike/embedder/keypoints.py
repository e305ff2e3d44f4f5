"""Local features for geometric verification: do two pictures show the same arrangement of details?

An ImageNet model puts two different drawings of one hand sign, two poses of one stamp or two
screenshots of one program close together: it sees *what* is there, not *where*. A copy - shrunk,
cropped, framed, captioned, turned, mirrored, brightened, greyed or recompressed - keeps its details
in the same places up to one similarity transform, so many of its ORB keypoints match the original's
under a single RANSAC fit. Two distinct pictures rarely do. This is the geometric verification of
the copy-detection literature, made cheap by OpenCV's ORB (binary descriptors, Hamming matching).

Everything runs on the luminance at ``SIDE`` pixels on the long side, so a quarter-size copy and its
original are compared at one scale. A mirror image is described separately when needed: ORB
descriptors are not mirror-invariant, and mirrored copies are common.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image, ImageOps

from lookalike.embedder.images import open_image
from lookalike.errors import ImageError

SIDE = 512  # long side the keypoints are found at: small copies are scaled up to it
FEATURES = 1000  # ORB keypoints kept per picture
RATIO = 0.8  # Lowe's ratio test: a match must be clearly better than the second best
REPROJECTION = 6.0  # pixels at SIDE an inlier may be off the fitted transform
CACHED_FILES = 4096  # files whose keypoints are kept in memory (about 40 KB each)
MATCH_CHUNK = 1024  # pairs matched per step: their files (at most twice this) all stay cached
MAX_SCALE = 3.0  # both are drawn at SIDE: a copy is at most a 25 % crop or a wide frame away (1.4)


@dataclass(frozen=True, eq=False)
class Keypoints:
    """ORB keypoints of one picture as drawn: positions [n, 2] and 32-byte descriptors [n, 32]."""

    points: np.ndarray
    descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


def _orb(grey: np.ndarray) -> Keypoints:
    found, descriptors = cv2.ORB_create(nfeatures=FEATURES).detectAndCompute(grey, None)
    if descriptors is None:
        return Keypoints(np.empty((0, 2), np.float32), np.empty((0, 32), np.uint8))
    return Keypoints(np.float32([k.pt for k in found]).reshape(-1, 2), descriptors)


def picture_keypoints(picture: Image.Image, mirrored: bool = False) -> Keypoints:
    """Keypoints of a decoded picture (or of its mirror image), at ``SIDE`` on the long side."""
    scale = SIDE / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    grey = picture.convert("L").resize(size, Image.Resampling.BILINEAR)
    return _orb(np.asarray(ImageOps.mirror(grey) if mirrored else grey))


def file_keypoints(path: str, mirrored: bool = False) -> Keypoints | None:
    """:func:`picture_keypoints` of an image file; None if it no longer reads as an image."""
    try:
        return picture_keypoints(open_image(path, min_size=SIDE), mirrored)
    except (ImageError, OSError):
        return None


class Match(NamedTuple):
    """How two pictures' keypoints match: ``inliers`` of the ``matches`` (ratio-tested) fit one
    rotation, scale and shift; ``keypoints_a``/``_b`` are how many each picture has."""

    inliers: int
    matches: int
    keypoints_a: int
    keypoints_b: int


def matched_keypoints(a: Keypoints, b: Keypoints) -> Match:
    """Match ``a``'s keypoints to ``b``'s (Hamming distance, Lowe's ratio test), then fit one
    rotation, scale and shift to the matches with RANSAC."""
    if len(a) < 2 or len(b) < 2:
        return Match(0, 0, len(a), len(b))
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    good = [best for best, second in (m for m in matcher.knnMatch(a.descriptors, b.descriptors, k=2)
                                      if len(m) == 2) if best.distance < RATIO * second.distance]
    closest: dict[int, cv2.DMatch] = {}  # one match per keypoint of b: several onto one point fit any
    for m in good:                        # transform that shrinks them together
        if m.trainIdx not in closest or m.distance < closest[m.trainIdx].distance:
            closest[m.trainIdx] = m
    good = list(closest.values())
    if len(good) < 3:
        return Match(0, len(good), len(a), len(b))
    source = a.points[[m.queryIdx for m in good]]
    target = b.points[[m.trainIdx for m in good]]
    cv2.setRNGSeed(0)  # RANSAC draws at random: the same pair gets the same answer every run
    fit, inlying = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC,
                                               ransacReprojThreshold=REPROJECTION)
    if fit is None or not 1 / MAX_SCALE <= float(np.hypot(*fit[:, 0])) <= MAX_SCALE:
        return Match(0, len(good), len(a), len(b))
    return Match(int(inlying.sum()), len(good), len(a), len(b))


class KeypointFiles:
    """Keypoints of image files for matching pairs of them, several files and pairs at a time.

    Keyed by path, with the most recently used ``capacity`` files kept (about 40 KB each): one clean-up
    run reads a file once however many pairs it is in, while memory stays bounded however large the
    collection. The mirror image's keypoints are found only when asked for (a pair that does not match
    as it is drawn), so most files are described once."""

    def __init__(self, capacity: int = CACHED_FILES) -> None:
        self._found: OrderedDict[tuple[str, bool], Keypoints | None] = OrderedDict()
        self._workers = min(4, os.cpu_count() or 1)
        self._capacity = max(capacity, 2 * MATCH_CHUNK)  # a chunk's files always fit

    def match(self, pairs: Sequence[tuple[str, str]], mirrored: bool = False) -> list[Match | None]:
        """:func:`matched_keypoints` for each pair of files, the second mirrored if asked; None where a
        file does not read. Decoding, ORB and matching release the GIL: threads share the work."""
        found: list[Match | None] = []
        with ThreadPoolExecutor(self._workers) as pool:
            for start in range(0, len(pairs), MATCH_CHUNK):
                chunk = [(a, b, mirrored) for a, b in pairs[start:start + MATCH_CHUNK]]
                self._describe([key for a, b, _ in chunk for key in ((a, False), (b, mirrored))], pool)
                found.extend(pool.map(self._match_one, chunk))
        return found

    def _describe(self, keys: list[tuple[str, bool]], pool: ThreadPoolExecutor) -> None:
        """Find the keypoints of the files (path, mirrored) not cached; keep these, forget the oldest."""
        keys = list(dict.fromkeys(keys))
        missing = [key for key in keys if key not in self._found]
        self._found.update(zip(missing, pool.map(_file_keypoints, missing), strict=True))
        for key in keys:
            self._found.move_to_end(key)
        while len(self._found) > self._capacity:
            self._found.popitem(last=False)

    def _match_one(self, pair: tuple[str, str, bool]) -> Match | None:
        a, b = self._found[pair[0], False], self._found[pair[1], pair[2]]
        return None if a is None or b is None else matched_keypoints(a, b)


def _file_keypoints(key: tuple[str, bool]) -> Keypoints | None:
    return file_keypoints(*key)

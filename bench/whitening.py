"""PCA whitening learned from the collection, against plain cosine and the density-corrected score.

Run by hand: ``python bench/whitening.py`` (after ``bench/calibrate.py`` has built and indexed the set).
Writes "## Whitening against the density score" in docs/benchmarks.md; ``--no-write`` prints only.

Issue 9 asked for density-adaptive scores *or* whitening learned from the collection, measured against
plain cosine, keeping what the numbers support. The copy-detection literature whitens descriptors (PCA,
each principal direction scaled to unit variance, then L2-normalised): directions along which the whole
collection varies (flags against photos) stop dominating the similarity. Here every pair of images of
a half is scored four ways: plain cosine; the product's first stage, cosine less the pair's density
(``duplicates.density`` and ``pair_scores``, exactly as shipped); cosine after whitening learned from
the half's own vectors (``WHITENING_EPS`` of the mean eigenvalue added before scaling, the first
``WHITENING_DIMS`` directions kept: the best of 4 x 3 settings on dev); and that whitened cosine less
its own density (the same ranks, the median density in place of the calibrated prior and floor, which
are cosine's). For each, the score above which 90 % (then 80 %, 70 %) of the true pairs lie, and how
many pairs of different originals, and of those how many of one hard-negative family, reach it too.
Whitening learned on dev and applied to test shows what a whitening shipped with the model would do.
The second looks are left out: these are the scores they start from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from calibrate import Split, library_state, load_split  # noqa: E402
from report import machine, today, write_section  # noqa: E402

from lookalike.index.duplicates import DENSITY_DEPTH, DENSITY_RANKS, density, pair_scores  # noqa: E402

SECTION = "## Whitening against the density score"
SHIPPED = "density score (shipped first stage)"
RECALLS = (0.9, 0.8, 0.7)
WHITENING_EPS = 0.1
WHITENING_DIMS = 256
Whitening = tuple[np.ndarray, np.ndarray]  # (mean, projection [dim, kept])


def learn_whitening(vectors: np.ndarray, eps: float = WHITENING_EPS, dims: int = WHITENING_DIMS) -> Whitening:
    """PCA whitening of these vectors: their mean, and the first ``dims`` principal directions each
    scaled by 1 / sqrt(its variance + ``eps`` x the mean variance)."""
    centred = vectors - vectors.mean(axis=0)
    variances, directions = np.linalg.eigh(centred.T @ centred / len(centred))
    kept = np.argsort(variances)[::-1][:dims]
    return vectors.mean(axis=0), directions[:, kept] / np.sqrt(variances[kept] + eps * variances.mean())


def whitened(vectors: np.ndarray, whitening: Whitening) -> np.ndarray:
    mean, projection = whitening
    out = (vectors - mean) @ projection
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def densities(similarities: np.ndarray) -> np.ndarray:
    """``duplicates.density`` of every image, from its ``DENSITY_DEPTH`` nearest (itself first)."""
    nearest = np.argsort(-similarities, axis=1)[:, :DENSITY_DEPTH]
    return density(np.take_along_axis(similarities, nearest, axis=1).astype(np.float32), nearest)


def density_scores(similarities: np.ndarray) -> np.ndarray:
    """The product's first stage: cosine less the pair's density (``pair_scores``)."""
    found = densities(similarities).astype(np.float64)
    return pair_scores(similarities, found[:, None], found[None, :])


def relative_density_scores(similarities: np.ndarray) -> np.ndarray:
    """Similarity less how much denser than the median the pair's neighbourhoods are: the density
    correction without cosine's calibrated prior and floor (for whitened similarities)."""
    order = np.sort(similarities, axis=1)[:, ::-1]
    found = order[:, 1 + DENSITY_RANKS[0]:1 + DENSITY_RANKS[1]].mean(axis=1)
    excess = found - np.median(found)
    return similarities - (excess[:, None] + excess[None, :]) / 2


def pair_counts(split: Split, scores: np.ndarray) -> list[tuple[float, int, int]]:
    """For each recall in ``RECALLS``: the score that many true pairs reach, and how many pairs of other
    originals, and of those of one hard-negative family, reach it too."""
    groups = np.array([split.group[p] for p in split.paths])
    families = np.array([split.family[p] or "" for p in split.paths])
    upper = np.triu_indices(len(groups), 1)
    values = scores[upper]
    same = (groups[:, None] == groups[None, :])[upper]
    family = ((families[:, None] == families[None, :]) & (families[:, None] != ""))[upper] & ~same
    counts = []
    for recall in RECALLS:
        threshold = float(np.quantile(values[same], 1 - recall))
        above = values >= threshold
        counts.append((threshold, int((above & ~same).sum()), int((above & family).sum())))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    halves = {name: load_split(name) for name in ("dev", "test")}
    vectors = {name: split.vectors.astype(np.float64) for name, split in halves.items()}
    shipped = learn_whitening(vectors["dev"])
    header = " | ".join(f"at recall {r}: score | other pairs | family pairs" for r in RECALLS)
    lines = [f"| half | scores | {header} |", "|---|---|" + "---:|" * 3 * len(RECALLS)]
    fewest: list[str] = []
    verdict = ""
    for name, split in halves.items():
        own = whitened(vectors[name], learn_whitening(vectors[name]))
        cosine = vectors[name] @ vectors[name].T
        rows = [("plain cosine", cosine), (SHIPPED, density_scores(cosine)),
                (f"whitened, learned on the half itself (eps {WHITENING_EPS}, {WHITENING_DIMS} dims)",
                 own @ own.T),
                ("whitened, less its relative density", relative_density_scores(own @ own.T))]
        if name == "test":
            from_dev = whitened(vectors[name], shipped)
            rows.append(("whitened, learned on dev", from_dev @ from_dev.T))
        tables = {label: pair_counts(split, scores) for label, scores in rows}
        for label, counts in tables.items():
            cells = " | ".join(f"{t:.3f} | {others:,} | {family:,}" for t, others, family in counts)
            lines.append(f"| {name} | {label} | {cells} |")
            print(lines[-1], flush=True)
        best = [min(tables, key=lambda label: tables[label][i][1]) for i in range(len(RECALLS))]
        if name == "dev":
            verdict = ("Chosen on dev, as the threshold is: the density score, the fewest pairs of other "
                       "originals at every recall; whitening is not shipped." if set(best) == {SHIPPED} else
                       "On dev, whitening leaves fewer pairs at some recall: worth a trial.")
        fewest.append(f"{name}: " + ", ".join(f"at {r}, {b}" for r, b in zip(RECALLS, best, strict=True)))
    body = "\n".join([
        __doc__.split("\n\n")[2].replace("\n", " "), "", *lines, "",
        "Fewest pairs of other originals: " + "; ".join(fewest) + ". Whitening 256 directions also needs "
        "more images than directions to learn them; the density score needs none (a small collection takes "
        "the prior). " + verdict, "",
        f"`python bench/whitening.py` on {today()}, {machine()}; {library_state()}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

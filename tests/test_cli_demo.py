"""`make demo`'s steps, in-process: copies of data/'s photos, indexed with them by the offline model; a
copy finds its original first, `find espresso` finds the espresso, and each original keeps its copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.demo import COPIES, MARKER, make_copies
from tests.cli import run
from tests.conftest import DATA


def test_copies_are_remade_the_same_and_a_foreign_folder_is_never_emptied(tmp_path):
    copies = tmp_path / "copies"
    first = {p.name: p.read_bytes() for p in make_copies(DATA, copies)}
    assert len(first) == len(COPIES) * len(list(DATA.glob("*.jpg")))
    (copies / "stray.jpg").write_bytes(b"left from an older run")
    assert {p.name: p.read_bytes() for p in make_copies(DATA, copies)} == first
    assert not (copies / "stray.jpg").exists() and (copies / MARKER).exists()
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "mine.jpg").write_bytes(b"x")
    with pytest.raises(SystemExit, match="not a demo folder"):
        make_copies(DATA, foreign)
    assert (foreign / "mine.jpg").exists()


@pytest.mark.slow
def test_the_demo_finds_originals_from_copies_and_groups_the_duplicates(tmp_path):
    copies, index = tmp_path / "demo-photos", tmp_path / "demo"
    make_copies(DATA, copies)
    originals = sorted(DATA.glob("*.jpg"))

    indexed = run("index", DATA, copies, "--index", index, "--model", "efficientnet-lite2", "--quiet")
    assert indexed.exit_code == 0, indexed.stderr
    assert indexed.stderr.startswith(f"added {len(originals) * (1 + len(COPIES))}, updated 0,")

    query = copies / "cat-screenshot.jpg"
    search = run("search", query, "--index", index, "-k", "3").stdout.splitlines()
    assert search[0] == str(query) and search[1].startswith("  labels: Egyptian cat")
    rank, score, path, *label = search[2].split()
    assert (rank, path, label[:2]) == ("1", str(DATA / "cat.jpg"), ["Egyptian", "cat"])
    assert float(score) > 0.85

    found = run("find", "espresso", "--index", index).stdout.splitlines()
    _, label, _, path = found[0].split()
    assert (label, path) == ("espresso", str(DATA / "espresso.jpg"))
    assert {Path(line.split()[-1]).stem for line in found} == {
        "espresso", *(f"espresso-{name}" for name in COPIES)}

    duplicates = run("duplicates", "--index", index)
    assert duplicates.exit_code == 0
    clusters: dict[str, set[str]] = {}
    scores = []
    for line in duplicates.stdout.splitlines():
        role, *fields, path = line.split()
        if role == "keep":
            keeper = clusters.setdefault(path, set())
        elif role == "copy":
            keeper.add(Path(path).name)
            scores.append(float(fields[0]))
    assert clusters == {str(p): {f"{p.stem}-{name}.jpg" for name in COPIES} for p in originals}
    assert min(scores) > 0.75  # clear of the threshold (0.64): the same clusters on any machine
    assert duplicates.stderr == ""

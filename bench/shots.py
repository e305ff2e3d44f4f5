"""Two shots of one scene: overlapping views that are not copies of each other.

Run by hand: ``python bench/shots.py`` (after ``bench/dupset.py`` and ``bench/unseen.py`` have built their
sets). Builds its folders in ``~/.cache/lookalike-bench/shots`` and writes "## Two shots of one scene" in
docs/benchmarks.md; ``--no-write`` prints only.

Someone takes a photo, moves the camera and takes another: the two share part of the scene, and there
every detail agrees, yet each shows what the other does not, and a clean-up that moves one loses a
picture. Here every original of the dupset's dev half and of the unseen set is cut into two such
shots: windows along its long side keeping 80 % of it (each shot sharing 75 % of itself with the
other) or 65 % (46 %), re-encoded as JPEG. A third folder is the control: the whole picture and a crop
inside it (the middle 80 % of each side), which is a copy and must still join it. Each folder is
clustered on its own at the default threshold: the product, beside the product with the containment
rule off (``CONTAINED`` 0: *before*), in one run on one index. Shots of one scene in one cluster and
clusters mixing two originals are both wrong; in the control, a whole and its crop apart is a copy
missed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dupset  # noqa: E402
from report import clustered, machine, today, write_section  # noqa: E402

import lookalike  # noqa: E402

SECTION = "## Two shots of one scene"
CACHE = dupset.CACHE.parent / "shots"
SOURCES = {"dev": dupset.CACHE / "manifest.json", "unseen": dupset.CACHE.parent / "unseen" / "manifest.json"}
FOLDERS = {"shots keeping 80 %": 0.8, "shots keeping 65 %": 0.65, "control: whole and inner crop": None}
MODES = {"before": {"CONTAINED": 0.0}, "product": {}}
SMALLEST = 100  # pixels on the short side: a smaller original's shots are too small to say much


def originals(source: str) -> list[dict]:
    items = json.loads(SOURCES[source].read_text())["items"]
    return [i for i in items if i["kind"] == "original" and (source != "dev" or i["split"] == "dev")]


def cut(image: Image.Image, keep: float | None) -> dict[str, Image.Image]:
    """Two shots along the long side keeping ``keep`` of it, or (None) the whole and its middle crop."""
    width, height = image.size
    if keep is None:
        inner = (round(width * 0.1), round(height * 0.1), round(width * 0.9), round(height * 0.9))
        return {"whole": image, "inner": image.crop(inner)}
    if width >= height:
        side = round(width * keep)
        return {"first": image.crop((0, 0, side, height)),
                "second": image.crop((width - side, 0, width, height))}
    side = round(height * keep)
    return {"first": image.crop((0, 0, width, side)),
            "second": image.crop((0, height - side, width, height))}


def build(source: str, folder: str) -> Path:
    """The folder's pictures, one sub-folder per original; made once and kept."""
    root = CACHE / source / folder.split(":")[0].replace(" ", "-").replace("%", "pc")
    if (root / "done").exists():
        return root
    for item in originals(source):
        with Image.open(item["path"]) as opened:
            image = opened.convert("RGB")
        if min(image.size) < SMALLEST:
            continue
        (root / "set" / item["group"]).mkdir(parents=True, exist_ok=True)
        for name, picture in cut(image, FOLDERS[folder]).items():
            picture.save(root / "set" / item["group"] / f"{name}.jpg", quality=85)
    (root / "done").touch()
    return root


def judge(clusters: list) -> dict[str, int]:
    """Pairs of one original's two pictures in one cluster, and clusters holding two originals."""
    together = mixed = 0
    for cluster in clusters:
        groups = [Path(m.path).parent.name for m in cluster.members]
        mixed += len(set(groups)) > 1
        together += sum(groups.count(group) == 2 for group in set(groups))
    return {"together": together, "mixed": mixed, "clusters": len(clusters)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet-lite2")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = []
    for source in SOURCES:
        for folder in FOLDERS:
            root = build(source, folder)
            scenes = sum(1 for _ in (root / "set").iterdir())
            with lookalike.open(root / f"index-{args.model}", model=args.model) as col:
                col.add([root / "set"])
                for mode, settings in MODES.items():
                    clusters, seconds = clustered(col, settings)
                    found = judge(clusters)
                    rows.append((source, folder, scenes, mode, found, seconds))
                    print(rows[-1], flush=True)
    lines = ["| originals | folder | pictures | mode | one picture's two in one cluster | mixed clusters "
             "| clusters | `duplicates()` s |", "|---|---|---:|---|---:|---:|---:|---:|"]
    for source, folder, scenes, mode, found, seconds in rows:
        lines.append(f"| {source} | {folder} | {scenes} x 2 | {mode} | {found['together']} of {scenes} "
                     f"| {found['mixed']} | {found['clusters']} | {seconds:.1f} |")
    body = "\n\n".join([
        "Every original of the dupset's dev half and of the unseen set (short side 100 px at least) as two "
        "shots of one scene, the camera moved between them: windows along the long side keeping 80 % or "
        "65 % of it (`bench/shots.py`: see its docstring). Each folder clustered on its own at the default "
        "threshold; *before*: the containment rule off (`CONTAINED` 0), in the same run on the same index. "
        "Two shots in one cluster are a picture a clean-up would move; in the control (the whole and its "
        "middle 80 % crop, a copy) they belong together.",
        "\n".join(lines),
        f"`python bench/shots.py` on {today()}, {machine()}; model {args.model}.",
    ])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)


if __name__ == "__main__":
    main()

"""How answers look on a terminal (plain aligned text) and to scripts (JSON, CSV)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

import typer


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _label_text(labels) -> str:
    return ", ".join(f"{label.name} {label.probability:.0%}" for label in labels) or "(no labels)"


def _top(image) -> tuple[str, str]:
    top = image.top_label
    return (top.name, f"{top.probability:.3f}") if top else ("", "")


def search_results(results, *, as_json: bool, as_csv: bool) -> None:
    if as_json:
        _json([
            {
                "query": query,
                "query_id": result.query_id,
                "labels": [asdict(label) for label in result.query_labels],
                "neighbours": [
                    {"rank": n.rank, "score": round(n.score, 6), **asdict(n.image)} for n in result.neighbours
                ],
            }
            for query, result in results
        ])
    elif as_csv:
        _csv(
            ["query", "rank", "score", "id", "path", "label", "probability"],
            [
                [query, n.rank, f"{n.score:.4f}", n.image.id, n.image.path, *_top(n.image)]
                for query, result in results
                for n in result.neighbours
            ],
        )
    else:
        for query, result in results:
            typer.echo(f"{query}\n  labels: {_label_text(result.query_labels)}")
            if not result.neighbours:
                typer.echo("  no neighbours")
            for n in result.neighbours:
                name, probability = _top(n.image)
                label = f"{name} ({float(probability):.0%})" if name else ""
                typer.echo(f"  {n.rank:3d}  {n.score:.3f}  {n.image.path}  {label}")


def text_hits(hits, *, as_json: bool, as_csv: bool) -> None:
    if as_json:
        _json([
            {"matched_label": h.matched_label, "probability": h.probability, **asdict(h.image)} for h in hits
        ])
    elif as_csv:
        _csv(
            ["id", "path", "matched_label", "probability"],
            [[h.image.id, h.image.path, h.matched_label or "", f"{h.probability:.4f}"] for h in hits],
        )
    else:
        for h in hits:
            match = f"{h.matched_label} ({h.probability:.0%})" if h.matched_label else "(path)"
            typer.echo(f"{h.image.id:6d}  {match:32s}  {h.image.path}")
        if not hits:
            typer.echo("no matches", err=True)


def index_info(info, *, as_json: bool) -> None:
    if as_json:
        _json(asdict(info))
        return
    rows = [
        ("index", info.directory),
        ("model", info.model or "(none yet)"),
        ("vector size", info.vector_size or "-"),
        ("images", info.images),
        ("index type", info.index_type),
        ("size on disk", f"{info.disk_bytes / 2**20:.1f} MiB"),
        ("failures", info.failures),
        ("created", info.created or "-"),
    ]
    for name, value in rows:
        typer.echo(f"{name:13s} {value}")


def failures(items, *, as_json: bool) -> None:
    if as_json:
        _json([asdict(f) for f in items])
        return
    for f in items:
        typer.echo(f"{f.failed_at}  {f.path}: {f.reason}")
    if not items:
        typer.echo("no failures", err=True)


def duplicate_clusters(clusters, *, as_json: bool, as_csv: bool) -> None:
    """Each cluster's keeper, then its copies with their similarity to that keeper, and what removal frees."""
    from lookalike.index.report import human_size

    if as_json:
        _json([
            {"cluster": n, "keeper": asdict(c.keeper), "copies": [asdict(m) for m in c.copies],
             "reclaimable": c.reclaimable}
            for n, c in enumerate(clusters, 1)
        ])
    elif as_csv:
        _csv(
            ["cluster", "role", "similarity", "exact", "id", "path", "width", "height", "size"],
            [
                [n, "copy" if i else "keep", f"{m.similarity:.4f}", int(m.exact), m.id, m.path,
                 m.width, m.height, m.size]
                for n, c in enumerate(clusters, 1)
                for i, m in enumerate(c.members)
            ],
        )
    else:
        for n, c in enumerate(clusters, 1):
            typer.echo(f"cluster {n}: {len(c.copies)} cop{'y' if len(c.copies) == 1 else 'ies'}, "
                       f"{human_size(c.reclaimable)} reclaimable")
            for i, m in enumerate(c.members):
                score = "exact" if m.exact else f"{m.similarity:.3f}"
                role, score = ("keep", "     ") if not i else ("copy", score)
                pixels = f"{m.width}x{m.height}"
                typer.echo(f"  {role}  {score}  {pixels:>11s}  {human_size(m.size):>8s}  {m.path}")
        copies = sum(len(c.copies) for c in clusters)
        typer.echo(f"{len(clusters)} clusters, {copies} copies, "
                   f"{human_size(sum(c.reclaimable for c in clusters))} reclaimable", err=not clusters)


def _problems(problems) -> None:
    for p in problems:
        typer.echo(f"error: {p.path}: {p.reason}", err=True)


def moved(result, *, err: bool) -> None:
    typer.echo(f"moved {len(result.moved)} copies; undo: lookalike undo {result.manifest}", err=err)
    _problems(result.problems)


def deleted(result, *, err: bool) -> None:
    typer.echo(f"deleted {len(result.deleted)} copies", err=err)
    _problems(result.problems)


def restored(result) -> None:
    typer.echo(f"restored {len(result.restored)} files")
    _problems(result.problems)

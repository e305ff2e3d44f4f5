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

"""How answers look on a terminal (plain aligned text) and to scripts (JSON, CSV).

File names are whatever bytes the file system holds. Text and CSV show every path through
:func:`lookalike.paths.display` (undecodable bytes as ``\\xNN``, control characters escaped), so a name
can neither break the output's encoding nor forge a line of it. JSON carries the exact name instead:
valid UTF-8 in which an undecodable byte is the escape ``\\udcNN`` (Python's surrogateescape), so
``os.fsencode(json.loads(out)[...]["path"])`` gives back the file's bytes.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from lookalike.paths import display


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return os.fsdecode(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def json_bytes(data: Any) -> bytes:
    """JSON as UTF-8; a lone surrogate (an undecodable byte of a file name) becomes its ``\\udcNN`` escape.

    ``ensure_ascii=False`` keeps names readable; the surrogates it leaves cannot be UTF-8, and
    ``backslashreplace`` writes each as the JSON escape that ``json.loads`` turns back into it. json.dumps
    escapes every backslash of the data itself, so the only bare ones are escapes.
    """
    return json.dumps(data, indent=2, ensure_ascii=False, default=_plain).encode("utf-8", "backslashreplace")


def json_out(data: Any) -> None:
    typer.echo(json_bytes(data) + b"\n", nl=False)


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


_ANSI_C = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def command(*words: Any) -> str:
    """A command line to copy and paste: each word quoted for the shell when needed, and a word that
    cannot be shown as it is (undecodable bytes, control characters) in ANSI-C quotes, ``$'\\xff'``,
    which bash and zsh read back to the very bytes."""
    return " ".join(_shell_word(os.fsdecode(word) if isinstance(word, bytes) else str(word))
                    for word in words)


def index_words(directory: Any) -> list[Any]:
    """``--index DIR`` for a command line about the index in ``directory``, or nothing for the default
    index, which a command finds without it."""
    from lookalike.index.collection import default_directory

    if Path(directory).expanduser().resolve() == default_directory().expanduser().resolve():
        return []
    return ["--index", directory]


def _shell_word(text: str) -> str:
    if display(text) == text:
        return shlex.quote(text)
    out = []
    for char in text:
        if 0xDC80 <= ord(char) <= 0xDCFF:  # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char in _ANSI_C:
            out.append(_ANSI_C[char])
        elif char in "\\'" or display(char) != char:
            out.extend(f"\\x{byte:02x}" for byte in char.encode("utf-8", "surrogatepass"))
        else:
            out.append(char)
    return "$'" + "".join(out) + "'"


def error_line(subject: Any, reason: str) -> None:
    """``error: <subject>: <reason>`` on one line of stderr."""
    typer.echo(f"error: {display(_plain(subject))}: {display(reason)}", err=True)


def input_error(source: Any, error: Exception) -> None:
    """One input of a batch failed: ``error: <input as given>: <why>``; the others go on."""
    error_line(source, getattr(error, "reason", None) or str(error))


def _label_text(labels) -> str:
    return ", ".join(f"{label.name} {label.probability:.0%}" for label in labels) or "(no labels)"


def _top(image) -> tuple[str, str]:
    top = image.top_label
    return (top.name, f"{top.probability:.3f}") if top else ("", "")


def labels(source, result) -> None:
    typer.echo(display(_plain(source)))
    for label in result:
        typer.echo(f"  {label.probability:6.1%}  {label.name}")


def add_summary(summary, directory, *, err: bool, shown: int = 20) -> None:
    """An index run's counts; on stderr the first ``shown`` files that failed, and where to see them all."""
    typer.echo(
        f"added {summary.added}, updated {summary.updated}, unchanged {summary.unchanged}, "
        f"removed {summary.removed}, failed {summary.failed} in {summary.seconds:.1f}s"
        + (f" (traits of {summary.refreshed} unchanged files found again)" if summary.refreshed else ""),
        err=err,
    )
    for path, reason in summary.failures[:shown]:
        error_line(path, reason)
    if summary.failed > shown:
        typer.echo(f"... and {summary.failed - shown} more", err=True)
    if summary.failed:
        typer.echo(f"see why: {command('lookalike', 'failures', '--index', directory)}", err=True)


def search_text(query: str, result) -> None:
    typer.echo(f"{display(query)}\n  labels: {_label_text(result.query_labels)}")
    if not result.neighbours:
        typer.echo("  no neighbours")
    for n in result.neighbours:
        name, probability = _top(n.image)
        label = f"{name} ({float(probability):.0%})" if name else ""
        typer.echo(f"  {n.rank:3d}  {n.score:.3f}  {display(n.image.path)}  {label}")


def search_results(outcomes, *, as_json: bool, as_csv: bool) -> None:
    """JSON or CSV of every query in order: a result, or in JSON a record with the query's "error".

    (Text is printed query by query as each answer comes: :func:`search_text`.)
    """
    if as_json:
        json_out([
            {"query": query, "error": getattr(outcome, "reason", None) or str(outcome)}
            if isinstance(outcome, Exception) else
            {
                "query": query,
                "query_id": outcome.query_id,
                "labels": [asdict(label) for label in outcome.query_labels],
                "neighbours": [
                    {"rank": n.rank, "score": round(n.score, 6), **asdict(n.image)}
                    for n in outcome.neighbours
                ],
            }
            for query, outcome in outcomes
        ])
    elif as_csv:
        _csv(
            ["query", "rank", "score", "id", "path", "label", "probability"],
            [
                [display(query), n.rank, f"{n.score:.4f}", n.image.id, display(n.image.path), *_top(n.image)]
                for query, outcome in outcomes if not isinstance(outcome, Exception)
                for n in outcome.neighbours
            ],
        )


def text_hits(hits, *, as_json: bool, as_csv: bool) -> None:
    if as_json:
        json_out([
            {"matched_label": h.matched_label, "probability": h.probability, **asdict(h.image)} for h in hits
        ])
    elif as_csv:
        _csv(
            ["id", "path", "matched_label", "probability"],
            [[h.image.id, display(h.image.path), h.matched_label or "", f"{h.probability:.4f}"]
             for h in hits],
        )
    else:
        for h in hits:
            match = f"{h.matched_label} ({h.probability:.0%})" if h.matched_label else "(path)"
            typer.echo(f"{h.image.id:6d}  {match:32s}  {display(h.image.path)}")
        if not hits:
            typer.echo("no matches", err=True)


def index_info(info, *, as_json: bool) -> None:
    from lookalike.index.report import human_size

    if as_json:
        json_out(asdict(info))
        return
    rows = [
        ("index", display(info.directory)),
        ("model", display(info.model) if info.model else "(none yet)"),
        ("vector size", info.vector_size or "-"),
        ("images", info.images),
        ("index type", info.index_type),
        ("size on disk", human_size(info.disk_bytes)),
        ("failures", info.failures),
        ("created", info.created or "-"),
        *([("stale traits", f"{info.stale_traits} (lookalike index finds them again)")] if info.stale_traits
          else []),
    ]
    for name, value in rows:
        typer.echo(f"{name:13s} {value}")


def failures(items, *, as_json: bool) -> None:
    if as_json:
        json_out([asdict(f) for f in items])
        return
    for f in items:
        typer.echo(f"{f.failed_at}  {display(f.path)}: {display(f.reason)}")
    if not items:
        typer.echo("no failures", err=True)


def duplicate_clusters(clusters, *, as_json: bool, as_csv: bool) -> None:
    """Each cluster's keeper, then its copies with their similarity to that keeper, and what removal frees."""
    from lookalike.index.report import human_size

    if as_json:
        json_out([
            {"cluster": n, "keeper": asdict(c.keeper), "copies": [asdict(m) for m in c.copies],
             "reclaimable": c.reclaimable}
            for n, c in enumerate(clusters, 1)
        ])
    elif as_csv:
        _csv(
            ["cluster", "role", "similarity", "exact", "id", "path", "width", "height", "size"],
            [
                [n, _role(i, m), f"{m.similarity:.4f}", int(m.exact), m.id, display(m.path),
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
                role, score = _role(i, m), "     " if not i else score
                pixels = f"{m.width}x{m.height}"
                typer.echo(f"  {role}  {score}  {pixels:>11s}  {human_size(m.size):>8s}  {display(m.path)}")
        copies = sum(len(c.copies) for c in clusters)
        typer.echo(f"{len(clusters)} clusters, {copies} copies, "
                   f"{human_size(sum(c.reclaimable for c in clusters))} reclaimable", err=not clusters)


def _role(position: int, member) -> str:
    """keep (the keeper), copy, or link: the keeper's own file under another name, never removed."""
    return "keep" if not position else "link" if member.same_file else "copy"


def _problems(problems) -> None:
    for p in problems:
        error_line(p.path, p.reason)


def moved(result, *, err: bool, index: Any = None) -> None:
    """What moved, and the undo command to paste: with ``--index`` when the copies left an ``index`` other
    than the default, which undo would otherwise not find (or put them back into the wrong one)."""
    words = ["lookalike", "undo", *(index_words(index) if index is not None else []), result.manifest]
    undo = f"; undo: {command(*words)}" if result.manifest else ""
    typer.echo(f"moved {len(result.moved)} copies{undo}", err=err)
    _problems(result.problems)


def deleted(result, *, err: bool) -> None:
    typer.echo(f"deleted {len(result.deleted)} copies", err=err)
    _problems(result.problems)


def restored(result) -> None:
    late = f"; indexed {len(result.caught_up)} put back earlier" if result.caught_up else ""
    typer.echo(f"restored {len(result.restored)} files{late}")
    _problems(result.problems)
    for path in result.unindexed:
        error_line(path, "back in place, not indexed yet: another process is writing the index; "
                         "run this undo again (or lookalike index) when it is done")

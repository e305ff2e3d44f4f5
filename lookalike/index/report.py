"""A self-contained HTML page of duplicate clusters, for a person to look at before cleaning up.

Self-contained on purpose: thumbnails are embedded as JPEG data URIs and the styles are inline, so
the file can be mailed, archived or opened offline and never makes a network request (photos are
private). Every piece of text is escaped: file names are user data.
"""

from __future__ import annotations

import base64
import datetime as dt
import errno
import html
import io
import os
import stat
import uuid
from collections.abc import Iterable
from pathlib import Path

from lookalike.arguments import check_path
from lookalike.embedder.images import open_image
from lookalike.errors import ImageError, ReportError
from lookalike.index.records import Cluster, Member
from lookalike.paths import PathLike, display

THUMBNAIL_PX = 160

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
h1 { font-size: 1.4em; margin: 0 0 .2em; }
.summary { color: #555; margin-bottom: 1.5em; }
section { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .8em; margin: 0 0 1em; }
section h2 { font-size: 1em; margin: 0 0 .6em; }
.members { display: flex; flex-wrap: wrap; gap: .8em; }
figure { margin: 0; width: %(px)dpx; padding: 6px; border: 2px solid #ddd; border-radius: 4px; }
figure.keeper { border-color: #2a8a3a; }
.thumb { width: %(px)dpx; height: %(px)dpx; display: flex; align-items: center; justify-content: center;
         background: #eee; color: #888; }
.thumb img { max-width: %(px)dpx; max-height: %(px)dpx; }
.role { font-weight: bold; }
.keeper .role { color: #2a8a3a; }
figcaption { font-size: 12px; word-break: break-all; }
.path { color: #555; }
"""


def human_size(n: int) -> str:
    size, unit = float(n), "B"
    for bigger in ("KB", "MB", "GB"):
        if size < 1000:
            break
        size, unit = size / 1000, bigger
    return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"


def thumbnail_uri(path: str | Path, px: int = THUMBNAIL_PX) -> str | None:
    """A ``data:image/jpeg;base64,...`` thumbnail no larger than ``px``, or None if unreadable."""
    try:
        image = open_image(Path(path), min_size=px)
    except ImageError:
        return None
    image.thumbnail((px, px))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(member: Member, keeper: bool, px: int) -> str:
    uri = thumbnail_uri(member.path, px)
    picture = (f'<img src="{uri}" alt="{html.escape(display(Path(member.path).name))}">' if uri
               else "no preview")
    if keeper:
        role = "keep"
    elif member.exact:
        role = "copy &middot; exact"
    else:
        role = f"copy &middot; {member.similarity:.3f}"
    return (
        f'<figure class="{"keeper" if keeper else "copy"}">'
        f'<div class="thumb">{picture}</div>'
        f'<figcaption><span class="role">{role}</span><br>'
        f"{member.width}&times;{member.height} &middot; {html.escape(human_size(member.size))}<br>"
        f'<span class="path">{html.escape(display(member.path))}</span></figcaption></figure>'
    )


def render_html(clusters: Iterable[Cluster], title: str = "lookalike: duplicates",
                px: int = THUMBNAIL_PX) -> str:
    """The report as a string: a summary line, then one section per cluster, keeper first."""
    clusters = list(clusters)
    title = display(title)  # a caller's title may hold a folder's name, undecodable bytes and all
    copies = sum(len(c.copies) for c in clusters)
    reclaimable = sum(c.reclaimable for c in clusters)
    sections = []
    for number, cluster in enumerate(clusters, 1):
        figures = [_figure(cluster.keeper, True, px)] + [_figure(m, False, px) for m in cluster.copies]
        sections.append(
            f'<section id="cluster-{number}"><h2>Cluster {number}: keep 1, '
            f"{len(cluster.copies)} cop{'y' if len(cluster.copies) == 1 else 'ies'} "
            f"({html.escape(human_size(cluster.reclaimable))})</h2>"
            f'<div class="members">{"".join(figures)}</div></section>'
        )
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE % {'px': px}}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="summary">{len(clusters)} clusters, {copies} copies, '
        f"{html.escape(human_size(reclaimable))} reclaimable &middot; {when}</p>"
        f"{''.join(sections)}</body></html>\n"
    )


def _written_through(target: Path) -> str | None:
    """What ``target`` is when the report must be written into it rather than replace it: an existing
    pipe, terminal or device (``--html /dev/stdout``, ``--html >(gzip > r.gz)``, a FIFO), by its kind;
    None for a regular file, a folder or nothing there.

    Replacing such a name (the atomic write's rename) put a regular file where the pipe or device was:
    run as root, ``--html /dev/full`` replaced the system's ``/dev/full``, and ``/dev/stdout`` would go
    the same way; a process substitution's ``/dev/fd/63`` sits in a folder no file can be made in.
    """
    try:
        mode = target.stat().st_mode  # through links: /dev/stdout leads to /proc/self/fd/1, then a pipe
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a terminal or device")


def _replaceable(target: Path) -> bool:
    """Whether the regular file at ``target`` (if any) may be replaced by the report: nothing there, an
    empty file or an HTML page. ``--html cat.jpg``, a slip of completion, replaced the photo with the
    page, and ``--html INDEX/lookalike.db`` the index's database: named by mistake, they are refused."""
    try:
        if not stat.S_ISREG(target.lstat().st_mode):
            return True  # nothing there, a pipe or device written into, or a link replaced, not followed
        with open(target, "rb") as f:
            head = f.read(64)
    except OSError:
        return True  # whether it can be written is for the checks below and the write itself
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return not start or start.startswith((b"<!doctype html", b"<html"))


def check_target(path: PathLike) -> Path:
    """The path a report will be written to (``~`` expanded); ReportError unless a report can be written
    there: not a folder, in a folder that exists and can be written, or an existing pipe, terminal or
    device that can be written; a file already there is replaced only when it is an HTML page (an earlier
    report) or empty (:func:`_replaceable`). Asked before a duplicates run, which can take minutes, rather
    than at its end. An empty name, or one holding a NUL byte, is an InvalidOption
    (:func:`~lookalike.arguments.check_path`)."""
    target = Path(check_path(path, "--html")).expanduser()
    folder = target.parent
    through = _written_through(target)
    if target.is_dir():
        problem = "it is a folder"
    elif not _replaceable(target):
        problem = ("a file that is not an HTML page is there (it would be replaced): name a new file or an "
                   "earlier report")
    elif through == "a socket":
        problem = "it is a socket"
    elif through:
        if os.access(target, os.W_OK):
            return target
        problem = f"{through} that cannot be written"
    elif not folder.exists():
        problem = f"no folder {display(folder)}"
    elif not folder.is_dir():
        problem = f"{display(folder)} is a file, not a folder"
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = f"{display(folder)} cannot be written"
    else:
        return target
    raise ReportError(f"cannot write the report to {display(target)}: {problem}")


def html_report(clusters: Iterable[Cluster], path: PathLike, title: str = "lookalike: duplicates",
                px: int = THUMBNAIL_PX) -> Path:
    """Write the report to ``path`` atomically (a reader never sees half a page) and return the path;
    a write that fails leaves no temporary file behind. The temporary file is a new one made for this
    write (``O_EXCL``, a name of its own): a fixed name could be a link someone planted in a shared
    folder, and writing through it would overwrite the file it leads to.

    An existing pipe, terminal or device at ``path`` is written into, never replaced
    (:func:`_written_through`). A place that refuses the file (``/proc``) is a ReportError; a full disk
    stays the OSError it is, which the command line reports as such."""
    target = check_target(path)
    page = render_html(clusters, title, px).encode("utf-8")
    try:
        if _written_through(target):
            with open(target, "wb") as out:
                out.write(page)
            return target
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise ReportError(f"cannot write the report to {display(target)}: {e.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(page)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target

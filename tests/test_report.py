"""The HTML report: one self-contained page, every cluster and member on it, nothing fetched."""

from __future__ import annotations

import base64
import errno
import functools
import io
import os
import re
import shutil
import socket
import stat
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from lookalike.errors import InvalidOption, ReportError
from lookalike.index.records import Cluster, Member
from lookalike.index.report import html_report


class Page(HTMLParser):
    """Collects sections, images, captions and every URL-bearing attribute of the report."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[dict] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        self.urls += [v for k, v in attrs.items() if k in ("src", "href") and v]
        if tag == "section":
            self.sections.append({"figures": [], "images": []})
        elif tag == "figure":
            self.sections[-1]["figures"].append(attrs["class"])
        elif tag == "img":
            self.sections[-1]["images"].append(attrs["src"])

    def handle_data(self, data):
        self.text.append(data)


def member(path: Path, similarity: float, exact: bool = False) -> Member:
    with Image.open(path) as image:
        width, height = image.size
    return Member(0, str(path), width, height, path.stat().st_size, path.stat().st_mtime, similarity, exact)


def test_every_cluster_and_member_is_on_the_page_with_an_embedded_thumbnail(sample_photos, tmp_path):
    cat, espresso = next(p for p in sample_photos if p.stem == "cat"), sample_photos[0]
    small = tmp_path / "cat small.jpg"
    ImageOps.exif_transpose(Image.open(cat)).convert("RGB").resize((120, 90)).save(small)
    exact = tmp_path / "<img src=x onerror=alert(1)> & co.jpg"  # file names are user data: escaped
    shutil.copy(espresso, exact)
    unreadable = tmp_path / "broken.jpg"
    unreadable.write_bytes(b"not a jpeg")
    clusters = [
        Cluster(member(cat, 1.0), (member(small, 0.934),)),
        Cluster(member(espresso, 1.0), (member(exact, 1.0, exact=True), Member(
            7, str(unreadable), 640, 480, 10, 0.0, 0.91, False))),
    ]

    written = html_report(clusters, tmp_path / "report.html")
    page = Page()
    page.feed(written.read_text(encoding="utf-8"))

    assert [s["figures"] for s in page.sections] == [["keeper", "copy"], ["keeper", "copy", "copy"]]
    assert [len(s["images"]) for s in page.sections] == [2, 2]  # the unreadable file: text, no img
    for uri in page.urls:
        assert uri.startswith("data:image/jpeg;base64,")
        thumbnail = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert max(thumbnail.size) <= 160
    assert not {"script", "link", "iframe"} & page.tags
    text = " ".join(page.text)
    for c in clusters:
        for m in c.members:
            assert m.path in text
            assert f"{m.width}×{m.height}" in text
    assert "copy · 0.934" in text and "copy · exact" in text and "no preview" in text


def test_the_page_makes_no_network_requests(sample_photos, tmp_path):
    clusters = [Cluster(member(sample_photos[0], 1.0), (member(sample_photos[1], 0.9),))]
    page_text = html_report(clusters, tmp_path / "report.html").read_text(encoding="utf-8")
    without_thumbnails = re.sub(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", "", page_text)
    assert without_thumbnails.count("<img") == 2
    for reference in ("http:", "https:", "url(", "@import", "<link", "<script"):
        assert reference not in without_thumbnails


def test_a_report_that_cannot_be_written_leaves_nothing_behind(sample_photos, tmp_path, monkeypatch):
    clusters = [Cluster(member(sample_photos[0], 1.0), (member(sample_photos[1], 0.9),))]
    (tmp_path / "report.html").write_text("<!DOCTYPE html>the previous report")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr("lookalike.index.report.os.replace", full)
    with pytest.raises(OSError, match="No space left"):
        html_report(clusters, tmp_path / "report.html")
    assert os.listdir(tmp_path) == ["report.html"]  # no .report.html.tmp, and the previous one kept
    assert (tmp_path / "report.html").read_text() == "<!DOCTYPE html>the previous report"


def test_a_place_a_report_cannot_be_written_to_is_refused_in_the_library_s_own_words(sample_photos, tmp_path):
    """A library caller passed no --html: the error names the place and the reason, not a CLI option
    (the command line turns it into a usage error about --html: test_cli_exits)."""
    clusters = [Cluster(member(sample_photos[0], 1.0), (member(sample_photos[1], 0.9),))]
    for target, problem in [(tmp_path, "it is a folder"),
                            (tmp_path / "missing" / "r.html", f"no folder {tmp_path / 'missing'}")]:
        with pytest.raises(ReportError) as refused:
            html_report(clusters, target)
        assert not isinstance(refused.value, InvalidOption)
        assert str(refused.value) == f"cannot write the report to {target}: {problem}"


def test_a_photo_or_a_database_named_for_the_report_is_refused_and_an_earlier_page_replaced(
        sample_photos, tmp_path):
    # ``--html cat.jpg`` (a slip of completion) replaced the photo with the page, and ``--html
    # INDEX/lookalike.db`` the index's database.
    clusters = [Cluster(member(sample_photos[0], 1.0), (member(sample_photos[1], 0.9),))]
    photo = Path(shutil.copy2(sample_photos[0], tmp_path / "cat.jpg"))
    before = photo.read_bytes()
    with pytest.raises(ReportError) as refused:
        html_report(clusters, photo)
    assert str(refused.value) == (f"cannot write the report to {photo}: a file that is not an HTML page is "
                                  "there (it would be replaced): name a new file or an earlier report")
    assert photo.read_bytes() == before

    for earlier in ("<!DOCTYPE html><p>last week's report", "\ufeff  <html><p>a page", ""):
        (tmp_path / "report.html").write_text(earlier, encoding="utf-8")
        html_report(clusters, tmp_path / "report.html")
        assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_link_planted_in_the_report_s_folder_is_never_written_through(sample_photos, tmp_path):
    """Someone who can write the report's folder plants links where a temporary file might go: the
    report is written into a new file of its own, and the files the links lead to are untouched."""
    clusters = [Cluster(member(sample_photos[0], 1.0), (member(sample_photos[1], 0.9),))]
    precious = tmp_path / "precious.txt"
    precious.write_text("the only copy")
    (tmp_path / ".report.html.tmp").symlink_to(precious)
    html_report(clusters, tmp_path / "report.html")
    assert precious.read_text() == "the only copy"
    assert not (tmp_path / "report.html").is_symlink()
    assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(os.listdir(tmp_path)) == [".report.html.tmp", "precious.txt", "report.html"]


def test_a_file_name_that_is_not_utf8_is_shown_as_the_product_shows_it(sample_photos, tmp_path):
    """A name with a byte that is no UTF-8 (an old camera's, a Windows share's) appears as ``\\xff``,
    as on the command line, and its picture is still embedded."""
    odd = tmp_path / os.fsdecode(b"caf\xe9 \xff.jpg")
    shutil.copy(sample_photos[1], odd)
    clusters = [Cluster(member(sample_photos[0], 1.0), (member(odd, 0.9),))]
    page = Page()
    page.feed(html_report(clusters, tmp_path / "report.html").read_text(encoding="utf-8"))
    assert any("caf\\xe9 \\xff.jpg" in text for text in page.text)
    assert len(page.sections[0]["images"]) == 2


def test_a_title_naming_a_folder_that_is_not_utf8_is_shown_as_the_product_shows_it(sample_photos, tmp_path):
    """A library caller titles the page after the folder it cleans up: a byte that is no UTF-8 in that
    name is shown as ``\\xe9``, not a UnicodeEncodeError after the whole duplicates run."""
    clusters = [Cluster(member(sample_photos[0], 1.0), (member(sample_photos[1], 0.9),))]
    title = "duplicates in " + os.fsdecode(b"caf\xe9")
    page = Page()
    page.feed(html_report(clusters, tmp_path / "report.html", title=title).read_text(encoding="utf-8"))
    assert page.text.count("duplicates in caf\\xe9") == 2  # the window's title and the heading


def read_all_from(open_reader) -> tuple[threading.Thread, list[bytes]]:
    """A thread reading what ``open_reader()`` gives until its end (the read side of a pipe)."""
    got: list[bytes] = []

    def read() -> None:
        with open_reader() as reader:
            got.append(reader.read())

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, got


def test_a_pipe_named_for_the_report_is_written_into_never_replaced(sample_photos, tmp_path):
    """``--html`` at a FIFO or a process substitution (``--html >(gzip > r.gz)``, a /dev/fd link to a
    pipe) writes the page into the pipe. The atomic write's rename put a regular file where a FIFO was
    (run as root, where the device /dev/full was), and made nothing at all where /dev/fd is."""
    clusters = [Cluster(member(sample_photos[0], 1.0), (member(sample_photos[1], 0.9),))]
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    thread, got = read_all_from(functools.partial(fifo.open, "rb"))
    assert html_report(clusters, fifo) == fifo
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # before joining: a replaced FIFO never gets its writer
    thread.join()
    assert got[0].startswith(b"<!DOCTYPE html>") and got[0].endswith(b"</html>\n")
    assert sorted(os.listdir(tmp_path)) == ["report.fifo"]

    read_end, write_end = os.pipe()
    thread, got = read_all_from(functools.partial(os.fdopen, read_end, "rb"))
    try:
        html_report(clusters, f"/proc/self/fd/{write_end}")
    finally:
        os.close(write_end)
    thread.join()
    assert got[0].startswith(b"<!DOCTYPE html>") and got[0].endswith(b"</html>\n")


def test_a_socket_or_a_place_no_file_can_be_made_is_a_report_error(sample_photos, tmp_path):
    clusters = [Cluster(member(sample_photos[0], 1.0), (member(sample_photos[1], 0.9),))]
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(tmp_path / "report.sock"))
        with pytest.raises(ReportError, match="report.sock: it is a socket$"):
            html_report(clusters, tmp_path / "report.sock")
    assert stat.S_ISSOCK(os.lstat(tmp_path / "report.sock").st_mode)
    if os.access("/proc", os.W_OK):  # root: /proc lets the check pass, and refuses the file itself
        with pytest.raises(ReportError, match=r"^cannot write the report to /proc/version: "):
            html_report(clusters, "/proc/version")

"""`lookalike duplicates` and `lookalike undo`, run in-process as typer's CliRunner runs them."""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lookalike.index.store import WriterLock
from lookalike.paths import display
from tests.cli import error_lines, run
from tests.duplicate_photos import EXPECTED, THRESHOLD, duplicate_folder, tree_digest


@pytest.fixture
def indexed(tmp_path, tf1_module):
    """The duplicate folder indexed with a copy of the tiny model (so a test can take the model away)."""
    model = Path(shutil.copytree(tf1_module, tmp_path / "model"))
    files = duplicate_folder(tmp_path / "photos")
    index = tmp_path / "index"
    result = run("index", tmp_path / "photos", "--index", index, "--model", model, "-q")
    assert result.exit_code == 0, result.stderr
    return index, files, model


def duplicates(index: Path, *args: str):
    return run("duplicates", "--index", index, "--threshold", THRESHOLD, *args)


class Report(HTMLParser):
    """An HTML report's clusters: per section, each figure's role, path and whether it has a thumbnail."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[list[dict]] = []
        self._span: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "section":
            self.sections.append([])
        elif tag == "figure":
            self.sections[-1].append({"role": attr["class"], "thumbnail": False})
        elif tag == "img":
            self.sections[-1][-1]["thumbnail"] = (attr["src"] or "").startswith("data:image/jpeg;base64,")
        elif tag == "span":
            self._span = attr.get("class")

    def handle_data(self, data: str) -> None:
        if self._span == "path":
            self.sections[-1][-1]["path"] = data

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._span = None


def test_table_names_keeper_and_copies_with_similarity_and_reclaimable_bytes(indexed):
    index, files, _ = indexed
    result = duplicates(index)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("4 clusters, 4 copies, ") and lines[-1].endswith(" reclaimable")
    cat = lines.index(next(line for line in lines if line.endswith(f"  {files['cat']}")))
    assert lines[cat - 1].startswith("cluster ") and lines[cat].lstrip().startswith("keep")
    role, score, pixels = lines[cat + 1].split()[:3]
    assert (role, score, pixels) == ("copy", "exact", "451x300")
    assert lines[cat + 1].endswith(str(files["cat-copy"]))
    turned = next(line for line in lines if line.endswith(str(files["cameraman-turned"]))).split()
    assert turned[0] == "copy" and float(turned[1]) >= THRESHOLD


def test_quiet_leaves_out_the_progress_bar_and_nothing_else(indexed):
    index, _, _ = indexed
    loud, quiet = duplicates(index), duplicates(index, "--quiet")
    assert loud.exit_code == quiet.exit_code == 0
    assert quiet.stdout == loud.stdout


def test_on_a_terminal_each_step_and_each_batch_starts_the_bar_again(monkeypatch):
    """A rate and time left carried from one step (or batch) into the next would mislead."""
    import sys

    from rich.progress import Progress

    from lookalike.cli.progress import progress_bar

    started, went_on = [], []
    reset, update = Progress.reset, Progress.update
    monkeypatch.setattr(Progress, "reset", lambda self, task, **how: started.append(
        (how["description"], how["completed"], how["total"])) or reset(self, task, **how))
    monkeypatch.setattr(Progress, "update", lambda self, task, **how: went_on.append(
        (how["description"], how["completed"], how["total"])) or update(self, task, **how))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    search, edits = "finding pairs", "embedding edited pictures"
    with progress_bar(unit="") as progress:
        for done, total, step in [(1, 10, search), (10, 10, search), (16, 40, edits), (40, 40, edits),
                                  (16, 20, edits), (20, 20, edits), (32, 99, edits)]:  # batches of their own
            progress(done, total, step=step)
    assert started == [(search, 1, 10), (edits, 16, 40), (edits, 16, 20), (edits, 32, 99)]
    assert went_on == [(search, 10, 10), (edits, 40, 40), (edits, 20, 20)]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    with progress_bar() as progress:
        assert progress is None  # a pipe or a log file gets no bar


def test_json_csv_and_an_html_report_with_every_cluster(indexed, tmp_path):
    index, files, _ = indexed
    page = tmp_path / "report.html"
    as_json = json.loads(duplicates(index, "--json", "--html", page).stdout_bytes)
    name = {str(path): key for key, path in files.items()}
    assert {name[c["keeper"]["path"]]: {name[m["path"]] for m in c["copies"]} for c in as_json} == EXPECTED
    assert all(c["reclaimable"] == sum(m["size"] for m in c["copies"]) for c in as_json)

    rows = list(csv.DictReader(io.StringIO(duplicates(index, "--csv").stdout)))
    expected_rows = [(str(n), role) for n in range(1, 5) for role in ("keep", "copy")]
    assert [(r["cluster"], r["role"]) for r in rows] == expected_rows
    assert {r["path"] for r in rows if r["exact"] == "1"} == {str(files["cat-copy"])}

    report = Report()
    report.feed(page.read_text())
    assert len(report.sections) == len(as_json)
    for section, cluster in zip(report.sections, as_json, strict=True):
        assert [(f["role"], f["path"]) for f in section] == [("keeper", cluster["keeper"]["path"])] + [
            ("copy", m["path"]) for m in cluster["copies"]]
        assert all(f["thumbnail"] for f in section)


def test_two_copies_that_are_one_file_count_its_bytes_once_in_every_output(indexed, tmp_path):
    """A hard link of a copy is another copy by name only: removing both frees the file's bytes once."""
    from lookalike.index.report import human_size

    index, files, _ = indexed
    again = tmp_path / "photos" / "backup" / "cat again.jpg"
    os.link(files["cat-copy"], again)
    assert run("index", tmp_path / "photos", "--index", index, "-q").exit_code == 0
    size, page = files["cat"].stat().st_size, tmp_path / "report.html"

    clusters = json.loads(duplicates(index, "--json", "--html", page).stdout_bytes)
    (cat,) = [c for c in clusters if c["keeper"]["path"] == str(files["cat"])]
    assert sorted(m["path"] for m in cat["copies"]) == sorted([str(files["cat-copy"]), str(again)])
    assert cat["reclaimable"] == size
    total = human_size(sum(c["reclaimable"] for c in clusters))
    number, text, report = cat["cluster"], duplicates(index).stdout.splitlines(), page.read_text()
    assert f"cluster {number}: 2 copies, {human_size(size)} reclaimable" in text
    assert text[-1] == f"4 clusters, 5 copies, {total} reclaimable"
    assert f"Cluster {number}: keep 1, 2 copies ({human_size(size)})" in report
    assert f"4 clusters, 5 copies, {total} reclaimable" in report


def test_move_to_then_undo_restores_every_byte_and_the_index(indexed, tmp_path):
    index, files, _ = indexed
    before = tree_digest(tmp_path / "photos")
    moved = duplicates(index, "--move-to", tmp_path / "quarantine")
    assert moved.exit_code == 0, moved.stderr
    summary = moved.stdout.splitlines()[-1]
    assert summary.startswith("moved 4 copies; undo: lookalike undo ")
    manifest = summary.rsplit(" ", 1)[1]
    assert json.loads(run("info", "--index", index, "--json").stdout_bytes)["images"] == len(files) - 4
    left = duplicates(index)  # nothing left to report: an empty table, the summary on stderr
    assert left.stdout == "" and left.stderr.startswith("0 clusters, 0 copies")

    undone = run("undo", manifest, "--index", index)
    assert undone.exit_code == 0, undone.stderr
    assert undone.stdout.strip() == "restored 4 files"
    assert tree_digest(tmp_path / "photos") == before
    assert json.loads(run("info", "--index", index, "--json").stdout_bytes)["images"] == len(files)


def test_the_undo_command_a_move_prints_pastes_back_into_the_index_the_copies_left(indexed, tmp_path,
                                                                                   monkeypatch):
    """It named only the manifest: from an index other than the default, pasted as shown it found no
    index (or, with a default one there, put the files back into that one)."""
    index, files, _ = indexed
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("LOOKALIKE_INDEX", raising=False)
    before = tree_digest(tmp_path / "photos")
    moved = duplicates(index, "--move-to", tmp_path / "quarantine")
    words = shlex.split(moved.stdout.splitlines()[-1].split("; undo: ")[1])
    assert words[:4] == ["lookalike", "undo", "--index", str(index)]

    undone = run(*words[1:])
    assert (undone.exit_code, undone.stdout, undone.stderr) == (0, "restored 4 files\n", "")
    assert tree_digest(tmp_path / "photos") == before
    assert json.loads(run("info", "--index", index, "--json").stdout_bytes)["images"] == len(files)
    assert not (tmp_path / "data").exists()


def test_a_quarantine_moved_and_renamed_manifests_and_all_is_still_undone(indexed, tmp_path):
    """Its manifest recorded where the files went under the quarantine's old name: they are read in the
    manifest's folder now."""
    index, files, _ = indexed
    before = tree_digest(tmp_path / "photos")
    moved = duplicates(index, "--move-to", tmp_path / "quarantine")
    manifest = Path(moved.stdout.splitlines()[-1].rsplit(" ", 1)[1])
    archived = tmp_path / "archive" / "duplicates of 2024"
    archived.parent.mkdir()
    (tmp_path / "quarantine").rename(archived)

    undone = run("undo", archived / manifest.name, "--index", index)
    assert (undone.exit_code, undone.stdout, undone.stderr) == (0, "restored 4 files\n", "")
    assert tree_digest(tmp_path / "photos") == before
    assert json.loads(run("info", "--index", index, "--json").stdout_bytes)["images"] == len(files)
    assert sorted(p.name for p in archived.iterdir()) == [".lookalike-quarantine", manifest.name]


def test_undo_while_another_writer_holds_the_index_says_the_files_are_back_and_indexes_them_next_time(
    indexed, tmp_path
):
    index, files, _ = indexed
    before = tree_digest(tmp_path / "photos")
    moved = duplicates(index, "--move-to", tmp_path / "quarantine")
    manifest = moved.stdout.splitlines()[-1].rsplit(" ", 1)[1]
    lock = WriterLock(Path(index))
    lock.acquire()  # what a running `lookalike index` holds
    try:
        busy = run("undo", manifest, "--index", index)
    finally:
        lock.release()
    assert busy.exit_code == 3 and busy.stdout == "restored 4 files\n"  # partial: back, not yet indexed
    lines = error_lines(busy)
    assert len(lines) == 4 and all("back in place, not indexed yet" in line for line in lines)
    assert tree_digest(tmp_path / "photos") == before

    again = run("undo", manifest, "--index", index)
    assert (again.exit_code, again.stderr) == (0, "")
    assert again.stdout == "restored 0 files; indexed 4 put back earlier\n"
    assert json.loads(run("info", "--index", index, "--json").stdout_bytes)["images"] == len(files)


def test_delete_refuses_without_yes_when_nobody_can_be_asked(indexed, tmp_path):
    index, files, _ = indexed
    before = tree_digest(tmp_path / "photos")
    refused = duplicates(index, "--delete")  # stdin is not a terminal here
    assert refused.exit_code == 1
    message = "error: --delete needs --yes when there is no terminal to ask on"
    assert error_lines(refused) == [message]
    assert tree_digest(tmp_path / "photos") == before

    deleted = duplicates(index, "--delete", "--yes")
    assert deleted.exit_code == 0 and deleted.stdout.splitlines()[-1] == "deleted 4 copies"
    assert all(files[k].exists() for k in EXPECTED) and not files["cat-copy"].exists()


def test_usage_mistakes_exit_2(indexed, tmp_path):
    index, _, _ = indexed
    keep = duplicates(index, "--keep", "biggest")
    assert keep.exit_code == 2 and len(error_lines(keep)) == 1 and "biggest" in keep.stderr
    both = duplicates(index, "--move-to", tmp_path / "q", "--delete", "--yes")
    assert both.exit_code == 2 and error_lines(both) == ["error: choose --move-to or --delete, not both"]
    assert duplicates(index, "--threshold", "1.5").exit_code == 2
    assert not (tmp_path / "q").exists()


def test_an_against_that_is_no_index_nor_folder_is_a_usage_error(indexed, tmp_path):
    """A missing folder given to --against exited 1, where a missing folder to index exits 2 (README's
    table: a bad argument is a usage error)."""
    index, files, _ = indexed
    (tmp_path / "nowhere").symlink_to(tmp_path / "gone")
    (tmp_path / "to-a-photo").symlink_to(files["cat"])
    for other, what in [(tmp_path / "missing", "does not exist"), (tmp_path / "nowhere", "does not exist"),
                        (tmp_path / "missing" / "deeper", "does not exist"),
                        (files["cat"], "is neither a lookalike index nor a folder"),
                        (tmp_path / "to-a-photo", "is neither a lookalike index nor a folder"),
                        (files["cat"] / "below", "does not exist"),
                        (tmp_path / "new\nline", "does not exist")]:
        for exact in ([], ["--exact"]):
            result = duplicates(index, *exact, "--against", other)
            assert result.exit_code == 2 and result.stdout == "", other
            assert error_lines(result) == [f"error: {display(other)} {what}"]
    assert not (tmp_path / "missing").exists() and not (tmp_path / "gone").exists()


def test_exact_mode_and_against_a_folder_need_no_model(indexed, tmp_path):
    index, files, model = indexed
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy2(files["cat"], archive)
    shutil.rmtree(model)  # the model is gone: only digests can be compared now
    exact = json.loads(duplicates(index, "--exact", "--json").stdout_bytes)
    assert [(c["keeper"]["path"], [m["path"] for m in c["copies"]]) for c in exact] == [
        (str(files["cat"]), [str(files["cat-copy"])])]
    against = json.loads(duplicates(index, "--exact", "--against", archive, "--json").stdout_bytes)
    assert [(c["keeper"]["path"], sorted(m["path"] for m in c["copies"])) for c in against] == [
        (str(archive / "cat.jpg"), sorted([str(files["cat"]), str(files["cat-copy"])]))]

"""Names with undecodable bytes and control characters (issue 8, findings 4 and 16) in `lookalike` output.

Text and CSV show every path readably on one line (lookalike.paths.display); JSON is valid UTF-8 and gives
back the exact name (``os.fsencode`` of it is the file's bytes). First output.py's functions on results
built here, then real files indexed with the tiny model, in-process.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from lookalike.cli import output
from lookalike.embedder.labels import Label
from lookalike.errors import ImageError
from lookalike.index.collection import AddSummary, Image, Neighbour, SearchResult, TextHit, Undone
from lookalike.index.quarantine import DeleteResult, MoveResult, Problem
from lookalike.index.records import Cluster, Member
from lookalike.index.store import Failure
from tests.cli import error_lines, run
from tests.names import HOSTILE, printable_lines
from tests.photos import blocks

NAMES = list(HOSTILE)


def image(n: int, name: str) -> Image:
    return Image(n, f"/photos/{name}", 640, 480, 1000 + n, "JPEG", [Label("tabby", 281, 0.5)])


def member(n: int, name: str, similarity: float = 1.0) -> Member:
    return Member(n, f"/photos/{name}", 640, 480, 1000 + n, 0.0, similarity, similarity == 1.0)


def captured(capsysbinary) -> tuple[str, str]:
    """stdout and stderr as strict UTF-8 (an unencodable name would have failed already)."""
    out, err = capsysbinary.readouterr()
    return out.decode("utf-8"), err.decode("utf-8")


def test_json_is_utf8_and_gives_back_the_exact_names(capsysbinary):
    hits = [TextHit(image(n, name), "tabby", 0.5) for n, name in enumerate(NAMES)]
    output.text_hits(hits, as_json=True, as_csv=False)
    out, _ = captured(capsysbinary)
    assert "\\udcff" in out and "\u00e9" in out  # the byte as an escape, readable text as it is
    paths = [record["path"] for record in json.loads(out)]
    assert paths == [f"/photos/{name}" for name in NAMES]
    assert os.fsencode(paths[0]) == b"/photos/bad\xffname.jpg"


def test_a_backslash_in_a_name_stays_a_backslash_in_json():
    name = "back\\udcff" + os.fsdecode(b"\xfe")
    assert json.loads(output.json_bytes({"path": name}).decode("utf-8")) == {"path": name}


def test_search_text_csv_and_json_show_each_name_on_its_own_line(capsysbinary):
    neighbours = [Neighbour(n + 1, 0.9, image(n, name)) for n, name in enumerate(NAMES)]
    result = SearchResult([Label("tabby", 281, 0.5)], neighbours)
    output.search_text(NAMES[1], result)
    lines = printable_lines(captured(capsysbinary)[0])
    assert lines[0] == HOSTILE[NAMES[1]] and len(lines) == 2 + len(NAMES) + 1  # + the final ""
    shown = [f"/photos/{text}" for text in HOSTILE.values()]
    assert [line.split("  ")[-2] for line in lines[2:-1]] == shown

    error = ImageError(NAMES[2], "not an image")
    output.search_results([(NAMES[0], result), (NAMES[2], error)], as_json=False, as_csv=True)
    out, _ = captured(capsysbinary)
    printable_lines(out)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["path"] for r in rows] == [f"/photos/{shown}" for shown in HOSTILE.values()]
    assert {r["query"] for r in rows} == {HOSTILE[NAMES[0]]}

    output.search_results([(NAMES[0], result), (NAMES[2], error)], as_json=True, as_csv=False)
    good, failed = json.loads(captured(capsysbinary)[0])
    assert good["query"] == NAMES[0] and [n["path"] for n in good["neighbours"]] == [
        f"/photos/{name}" for name in NAMES]
    assert failed == {"query": NAMES[2], "error": "not an image"}


def test_find_failures_duplicates_and_actions_show_names_readably(capsysbinary):
    output.text_hits([TextHit(image(n, name), None, 0.0) for n, name in enumerate(NAMES)],
                     as_json=False, as_csv=False)
    lines = printable_lines(captured(capsysbinary)[0])
    assert [line.rsplit("  ", 1)[1] for line in lines[:-1]] == [f"/photos/{s}" for s in HOSTILE.values()]

    output.failures([Failure(f"/photos/{name}", "bad\nreason", "2026-11-30") for name in NAMES],
                    as_json=False)
    lines = printable_lines(captured(capsysbinary)[0])
    assert lines[:-1] == [f"2026-11-30  /photos/{shown}: bad\\nreason" for shown in HOSTILE.values()]

    clusters = [Cluster(member(0, NAMES[0]), (member(1, NAMES[1], 0.95), member(2, NAMES[3], 1.0)))]
    output.duplicate_clusters(clusters, as_json=False, as_csv=False)
    lines = printable_lines(captured(capsysbinary)[0])
    assert [line.rsplit("  ", 1)[1] for line in lines[1:4]] == [
        f"/photos/{HOSTILE[NAMES[i]]}" for i in (0, 1, 3)]
    output.duplicate_clusters(clusters, as_json=False, as_csv=True)
    out = captured(capsysbinary)[0]
    printable_lines(out)
    assert [r["path"] for r in csv.DictReader(io.StringIO(out))] == [
        f"/photos/{HOSTILE[NAMES[i]]}" for i in (0, 1, 3)]
    output.duplicate_clusters(clusters, as_json=True, as_csv=False)
    (cluster,) = json.loads(captured(capsysbinary)[0])
    assert [cluster["keeper"]["path"], *(m["path"] for m in cluster["copies"])] == [
        f"/photos/{NAMES[i]}" for i in (0, 1, 3)]

    manifest = Path(f"/q/{NAMES[1]}/manifest.jsonl")
    problems = tuple(Problem(Path(f"/photos/{name}"), f"its keeper /photos/{name} is missing")
                     for name in NAMES)
    output.moved(MoveResult(manifest, (), problems), err=False)
    output.deleted(DeleteResult((), problems), err=False)
    output.restored(Undone((), problems))
    out, err = captured(capsysbinary)
    undo = "lookalike undo $'/q/two\\nlines.jpg/manifest.jsonl'"  # quoted to paste into a shell
    assert printable_lines(out)[0] == f"moved 0 copies; undo: {undo}"
    assert printable_lines(err)[:len(NAMES)] == [
        f"error: /photos/{shown}: its keeper /photos/{shown} is missing" for shown in HOSTILE.values()]
    assert len(printable_lines(err)) == 3 * len(NAMES) + 1


def test_index_summary_lists_failed_names_readably(capsysbinary):
    failed = [(f"/p/{name}", "empty file") for name in NAMES]
    summary = AddSummary(added=1, failed=len(NAMES), failures=failed)
    output.add_summary(summary, Path(f"/idx/{NAMES[0]}"), err=False)
    out, err = captured(capsysbinary)
    assert printable_lines(out)[0].startswith("added 1, updated 0, unchanged 0, removed 0, failed 6")
    assert printable_lines(err)[:-1] == [f"error: /p/{shown}: empty file" for shown in HOSTILE.values()] + [
        "see why: lookalike failures --index $'/idx/bad\\xffname.jpg'"]


# -- real files ----------------------------------------------------------------------------------------


@pytest.fixture
def hostile(tmp_path, tf1_module):
    """A folder of distinct pictures under hostile names, a byte-identical copy of one, an unreadable one."""
    folder = tmp_path / "photos"
    folder.mkdir()
    files = {name: blocks(folder / name, seed) for seed, name in enumerate(NAMES)}
    copy = folder / os.fsdecode(b"copy \xfe\n of.jpg")
    shutil.copy2(files[NAMES[1]], copy)
    broken = folder / os.fsdecode(b"broken\xff\x1b.jpg")
    broken.write_text("not an image")
    index = tmp_path / "index"
    result = run("index", folder, "--index", index, "--model", tf1_module)
    return index, files, copy, broken, result


def test_hostile_names_are_indexed_then_shown_readably_and_given_back_exactly(hostile):
    index, files, copy, broken, indexed = hostile
    assert indexed.exit_code == 3, indexed.stderr  # partial: the broken file failed
    assert f"added {len(files) + 1}, " in indexed.stdout
    assert error_lines(indexed)[0].startswith(f"error: {index.parent}/photos/broken\\xff\\x1b.jpg: ")
    printable_lines(indexed.stderr)

    query = files[NAMES[0]]
    text = run("search", query, "--index", index, "-k", "3")
    assert text.exit_code == 0, text.stderr
    lines = printable_lines(text.stdout)
    assert lines[0] == str(query.parent / HOSTILE[NAMES[0]]) and len(lines) == 2 + 3 + 1

    as_json = run("search", query, "--index", index, "-k", str(len(files)), "--json")
    (record,) = json.loads(as_json.stdout_bytes.decode("utf-8"))
    assert record["query"] == str(query)
    found = {n["path"] for n in record["neighbours"]}
    assert found == {str(f) for f in files.values() if f != query} | {str(copy)}
    assert all(os.path.isfile(os.fsencode(path)) for path in found)

    rows = list(csv.DictReader(io.StringIO(run("search", query, "--index", index, "--csv").stdout)))
    assert {r["path"] for r in rows} >= {str(files[NAMES[1]].parent / HOSTILE[NAMES[1]])}

    failures = run("failures", "--index", index)
    shown = f"  {broken.parent}/broken\\xff\\x1b.jpg: not an image (unrecognised format)"
    assert printable_lines(failures.stdout)[0].endswith(shown)
    (failure,) = json.loads(run("failures", "--index", index, "--json").stdout_bytes)
    assert os.fsencode(failure["path"]) == os.fsencode(broken)

    (hit,) = printable_lines(run("find", "copy", "--index", index).stdout)[:-1]
    assert hit.endswith(f"  {copy.parent}/copy \\xfe\\n of.jpg")
    (hit,) = json.loads(run("find", "copy", "--index", index, "--json").stdout_bytes)
    assert os.fsencode(hit["path"]) == os.fsencode(copy)

    dupes = run("duplicates", "--index", index, "--exact")
    lines = printable_lines(dupes.stdout)
    assert lines[0].startswith("cluster 1: 1 copy, ") and len(lines) == 4 + 1
    assert lines[1].startswith("  keep ") and lines[1].endswith(f"  {copy.parent}/copy \\xfe\\n of.jpg")
    assert lines[2].startswith("  copy  exact ") and lines[2].endswith(f"  {copy.parent}/two\\nlines.jpg")
    (cluster,) = json.loads(run("duplicates", "--index", index, "--exact", "--json").stdout_bytes)
    assert {cluster["keeper"]["path"], cluster["copies"][0]["path"]} == {str(files[NAMES[1]]), str(copy)}
    gone = Path(cluster["copies"][0]["path"])

    moved = run("duplicates", "--index", index, "--exact", "--move-to", index.parent / "q")
    assert moved.exit_code == 0, moved.stderr
    (summary,) = printable_lines(moved.stdout)[-2:-1]
    assert summary.startswith("moved 1 copies; undo: lookalike undo ") and not gone.exists()
    undone = run("undo", summary.rsplit(" ", 1)[1], "--index", index)
    assert (undone.exit_code, undone.stdout) == (0, "restored 1 files\n") and gone.exists()


def test_labels_and_errors_name_hostile_files_readably(hostile, tf1_module):
    _, files, _, broken, _ = hostile
    result = run("labels", "--model", tf1_module, "-k", "1", files[NAMES[3]], broken)
    assert result.exit_code == 3
    assert printable_lines(result.stdout)[0] == str(files[NAMES[3]].parent / HOSTILE[NAMES[3]])
    (line,) = error_lines(result)
    assert line.startswith(f"error: {broken.parent}/broken\\xff\\x1b.jpg: ")
    as_json = json.loads(run("labels", "--model", tf1_module, "--json", files[NAMES[0]], broken).stdout_bytes)
    assert [os.fsencode(r["path"]) for r in as_json] == [os.fsencode(files[NAMES[0]]), os.fsencode(broken)]


@pytest.mark.parametrize("name", NAMES + ["it's $HOME `date` \\back.jpg"])
def test_the_undo_command_shown_pastes_back_to_the_very_bytes_of_the_manifest_path(name, tmp_path):
    """The line printed after a move is meant to be pasted into a shell: bash reads each word back to the
    path's own bytes, undecodable ones and control characters included (once it printed ``\\xff`` as four
    characters, and the pasted command named a file that does not exist)."""
    import subprocess

    path = tmp_path / name / "manifest-20261204T101500.jsonl"
    line = output.command("printf", "%s\\0", path)
    printed = subprocess.run(["bash", "-c", line], capture_output=True, check=True).stdout
    assert printed == os.fsencode(path) + b"\0"
    assert line.isprintable()

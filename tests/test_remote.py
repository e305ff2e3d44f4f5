"""``search`` and ``labels --server URL``: a real uvicorn server on 127.0.0.1 answers as the local ones."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.errors import ImageError, ImageNotFound, ServerUnavailable
from lookalike.remote import Server
from lookalike.server import create_app
from tests.cli import error_lines, run
from tests.photos import DATA, blocks
from tests.serving import indexed_collection, running

TOKEN = "remote-token"


@pytest.fixture(scope="module")
def library(tmp_path_factory, tf1_module):
    collection = indexed_collection(tmp_path_factory.mktemp("remote"), tf1_module)
    yield collection
    collection.close()


@pytest.fixture(scope="module")
def url(library):
    with running(create_app(library)) as base:
        yield base


@pytest.fixture(scope="module")
def new_photos(tmp_path_factory) -> list[Path]:
    """Pictures that are not in the index: searched, not looked up."""
    folder = tmp_path_factory.mktemp("queries")
    return [blocks(folder / f"new{seed}.png", 100 + seed) for seed in range(2)] + [DATA / "cat.jpg"]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_the_library_call_returns_what_the_collection_returns(library, url, new_photos):
    server = Server(url)
    assert server.search(new_photos[0], 5) == library.search(new_photos[0], 5)
    assert server.search(new_photos[1].read_bytes(), 3, min_score=0.1) == library.search(
        new_photos[1].read_bytes(), 3, min_score=0.1
    )
    assert server.search_id(1, 4) == library.search_id(1, 4)
    [(_, labels)] = server.classify([new_photos[0]], k=3)
    assert labels == library.embedder.embed(new_photos[0], top_k=3).labels


@pytest.mark.parametrize("form", [[], ["--json"], ["--csv"]])
def test_search_prints_what_the_local_search_prints(library, url, new_photos, form):
    queries = [new_photos[0], new_photos[1], "-k", "4", *form]
    local = run("search", *queries, "--index", library.directory)
    remote = run("search", *queries, "--server", url)
    assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout) == (0, local.stdout)


def test_labels_print_what_the_local_labels_print(library, url, new_photos, tf1_module):
    """The same labels in the same order; the probabilities to float32's precision, not to its last bit:
    the server embeds the photos in other batches, and on some CPUs (seen on an AMD EPYC) a batch's size
    moves the seventh digit."""
    local = run("labels", *new_photos, "-k", "3", "--model", tf1_module)
    remote = run("labels", *new_photos, "-k", "3", "--server", url)
    assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout) == (0, local.stdout)
    local = run("labels", *new_photos, "-k", "3", "--model", tf1_module, "--json")
    remote = run("labels", *new_photos, "-k", "3", "--server", url, "--json")
    assert remote.exit_code == local.exit_code == 0
    mine, theirs = json.loads(local.stdout), json.loads(remote.stdout)
    assert _named(theirs) == _named(mine)
    assert _probabilities(theirs) == pytest.approx(_probabilities(mine), rel=1e-5)


def _named(photos: list[dict]) -> list[tuple]:
    return [(photo["path"], [(label["name"], label["index"]) for label in photo["labels"]])
            for photo in photos]


def _probabilities(photos: list[dict]) -> list[float]:
    return [label["probability"] for photo in photos for label in photo["labels"]]


def test_bad_inputs_fail_alone_with_the_local_lines(library, url, new_photos, tmp_path):
    missing, empty = tmp_path / "missing.jpg", tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    here = {"search": ["--index", library.directory], "labels": ["--model", library.embedder.handle]}
    for command, options in here.items():
        local = run(command, new_photos[0], missing, empty, text, *options)
        remote = run(command, new_photos[0], missing, empty, text, "--server", url)
        assert remote.exit_code == local.exit_code == 3
        assert error_lines(remote) == error_lines(local)
        assert len(error_lines(remote)) == 3


def test_an_unknown_id_is_one_line_and_exit_1(url):
    result = run("search", "--id", "999999", "--server", url)
    assert result.exit_code == 1
    assert error_lines(result) == [f"error: id 999999: no image with id 999999 in {url}"]
    with pytest.raises(ImageNotFound):
        Server(url).search_id(999999)


def test_a_server_that_is_down_is_one_line_and_exit_1(new_photos):
    down = closed_port_url()
    for command in (["search"], ["labels"]):
        result = run(*command, new_photos[0], env={"LOOKALIKE_SERVER": down})
        assert result.exit_code == 1
        [line] = error_lines(result)
        assert line.startswith(f"error: cannot reach the lookalike server at {down} (")
    with pytest.raises(ServerUnavailable) as caught:
        Server(down).search(new_photos[0])
    assert caught.value.url == down


def test_a_server_with_a_token_gets_it_from_lookalike_token(library, new_photos):
    with running(create_app(library, token=TOKEN)) as guarded:
        refused = run("search", new_photos[0], "--server", guarded, env={"LOOKALIKE_TOKEN": None})
        assert refused.exit_code == 1
        assert error_lines(refused) == [
            f"error: the lookalike server at {guarded} answered 401: missing or wrong bearer token"
        ]
        answered = run("search", new_photos[0], "--server", guarded, "--json", env={"LOOKALIKE_TOKEN": TOKEN})
        assert answered.exit_code == 0 and json.loads(answered.stdout)[0]["neighbours"]


def test_a_picture_the_server_cannot_decode_is_that_inputs_image_error(url):
    with pytest.raises(ImageError) as caught:
        Server(url).search(b"GIF89a but not really")
    assert caught.value.source == "<bytes>" and "not a usable image" not in caught.value.reason


def test_the_client_process_imports_neither_tensorflow_nor_faiss_nor_the_index(url, new_photos):
    """A process is the subject: what ``lookalike search --server`` loads."""
    code = (
        "import sys\n"
        "from lookalike.cli.app import app\n"
        f"app(['search', {str(new_photos[0])!r}, '--server', {url!r}], standalone_mode=False)\n"
        "heavy = {'tensorflow', 'tensorflow_hub', 'faiss', 'sqlite_utils', 'lookalike.index'}\n"
        "loaded = [m for m in sys.modules if m in heavy or m.startswith('lookalike.index.')]\n"
        "print(sorted(loaded), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert "labels:" in done.stdout

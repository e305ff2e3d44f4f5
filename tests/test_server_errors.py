"""The one table from library exceptions to HTTP statuses, and JSON that survives any file name.

A stand-in collection raises each exception from the library's tree, served on 127.0.0.1.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import httpx
import pytest

from lookalike.embedder.labels import Label
from lookalike.errors import (
    CollectionError,
    ImageError,
    ImageNotFound,
    IndexDamaged,
    IndexTooNew,
    InvalidOption,
    LookalikeError,
    ModelError,
    ModelMismatchError,
    NoSpace,
    NotAnIndex,
    QuarantineError,
    StaleFile,
    WriterBusy,
)
from lookalike.index.collection import Image
from lookalike.server import create_app
from tests.serving import running

ODD_PATH = "/photos/bad\udcffname\n\u202eevil.jpg"  # an invalid UTF-8 byte, a newline, a bidi override


class StandIn:
    """Answers ``get`` with an image under ``ODD_PATH``; raises ``error`` from everything else."""

    embedder = None

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def info(self):
        raise self.error

    def get(self, id: int) -> Image:
        return Image(id, ODD_PATH, 4, 3, 99, "JPEG", [Label("tabby", 281, 0.5)])


@contextmanager
def client(collection):
    with running(create_app(collection)) as url, httpx.Client(base_url=url) as http:
        yield http


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ImageError("/x.jpg", "truncated"), 400),
        (InvalidOption("policy", "unknown keeper criterion 'prettiest'"), 422),
        (ImageNotFound(7, "/idx"), 404),
        (QuarantineError("manifest-20261130T081500.jsonl is not a lookalike quarantine manifest"), 422),
        (StaleFile("the file of image 7 was replaced"), 410),
        (ModelMismatchError("built with another model"), 409),
        (WriterBusy("/idx is being written by pid 12"), 503),
        (NoSpace("database or disk is full"), 507),
        (NotAnIndex("no index in /idx"), 500),
        (IndexTooNew("upgrade lookalike"), 500),
        (IndexDamaged("/idx/lookalike.db", "database disk image is malformed"), 500),
        (CollectionError("cannot"), 500),
        (ModelError("no such model"), 500),
        (LookalikeError("anything else"), 500),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_library_error_has_one_status_and_a_json_body(error, status):
    with client(StandIn(error)) as http:
        response = http.get("/info")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    expected = f"not a usable image: {error.reason}" if status == 400 else str(error)
    assert response.json()["error"] == expected
    if isinstance(error, WriterBusy):
        assert response.headers["retry-after"] == str(WriterBusy.retry_after)
    else:
        assert "retry-after" not in response.headers


def test_an_unexpected_error_is_a_plain_500():
    with client(StandIn(RuntimeError("boom"))) as http:
        response = http.get("/info")
    assert response.status_code == 500


def test_a_path_with_invalid_utf8_comes_back_exactly():
    """The page and scripts get valid JSON; Python's json gives back the very name (surrogates and all)."""
    with client(StandIn()) as http:
        response = http.get("/images/3")
    assert response.status_code == 200
    body = response.content
    body.decode("utf-8")  # valid UTF-8 on the wire
    assert b"\\udcff" in body and b"\\n" in body
    assert json.loads(body)["path"] == ODD_PATH

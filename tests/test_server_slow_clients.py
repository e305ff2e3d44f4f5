"""Slow and numerous clients: a bounded number of connections, and deadlines on request heads and bodies.

20,000 connections each sending an upload a byte now and then once took every file descriptor of the
server, which then answered nothing. Raw sockets on 127.0.0.1 play those clients here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from lookalike.server import create_app
from lookalike.server.connections import HeadDeadlineProtocol
from tests.serving import indexed_collection, running


@pytest.fixture(scope="module")
def library(tmp_path_factory, tf1_module):
    collection = indexed_collection(tmp_path_factory.mktemp("slow"), tf1_module)
    yield collection
    collection.close()


@contextmanager
def slow_upload(url: str, path: str = "/search", extra: str = "") -> Iterator[socket.socket]:
    """A connection that has sent an upload's head and the start of its body, and then nothing more."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 100000\r\n{extra}"
                "Content-Type: multipart/form-data; boundary=b\r\n\r\n")
        part = '--b\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        sock.sendall(head.encode() + part.encode() + b"\xff\xd8")
        yield sock


def answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_body_still_arriving_after_the_deadline_gets_408_and_its_connection_closed(library):
    with running(create_app(library, body_timeout=0.5)) as url, slow_upload(url) as sock:
        response = answer(sock)  # returns only once the server closed the connection
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower()
    assert body == b'{"error":"request body not received within 0.5 s"}'


@pytest.mark.parametrize(("path", "extra", "status"), [
    ("/health", "", 405), ("/nowhere", "", 404), ("/search", "Origin: http://evil.example\r\n", 403),
], ids=["wrong-method", "unknown-path", "cross-site"])
def test_an_answer_given_before_the_body_is_in_closes_the_connection(library, path, extra, status):
    """Nothing reads that body, so no deadline would ever end it: the client could drip it for ever."""
    with running(create_app(library, body_timeout=0.5)) as url, slow_upload(url, path, extra) as sock:
        response = answer(sock)
    head = response.partition(b"\r\n\r\n")[0]
    assert head.startswith(f"HTTP/1.1 {status} ".encode()) and b"connection: close" in head.lower()


def test_a_client_that_sends_its_body_at_once_reads_its_answer_on_a_connection_kept_open(library):
    """Closing on a client still writing can reach it as a reset instead of the answer."""
    with running(create_app(library, body_timeout=5)) as url, httpx.Client(base_url=url) as http:
        for path, headers in (("/nowhere", {}), ("/search", {"Origin": "http://evil.example"})):
            response = http.post(path, content=b"x" * 200_000, headers=headers)
            assert response.status_code in (403, 404) and "connection" not in response.headers


def test_beyond_the_connections_allowed_a_request_gets_503_at_once(library):
    with running(create_app(library), max_connections=2) as url, httpx.Client(base_url=url) as http:
        with slow_upload(url), slow_upload(url):
            # The kernel completes a handshake before the server's event loop takes the connection and
            # counts it: on a busy machine (a fresh-clone CI run) the third request once got there first
            time.sleep(0.5)
            refused = http.get("/health")  # a third connection
            assert refused.status_code == 503
        deadline = time.monotonic() + 10
        while http.get("/health").status_code != 200:  # the two slow ones are gone: served again
            assert time.monotonic() < deadline, "still refused after the slow clients left"
            time.sleep(0.05)


@contextmanager
def headless(url: str, dribble: bytes = b"") -> Iterator[socket.socket]:
    """A connection that sends nothing but ``dribble``: a request head's first bytes, never its end."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(dribble)
        yield sock


def test_connections_without_a_request_head_give_their_slots_back(library, monkeypatch):
    """Sockets that open and send nothing, or a head's first bytes and no more (slowloris), once held
    every slot for as long as they liked: real clients got 503 for good. Each now has the head deadline
    (a second here) and is closed after it, and a real client is served again."""
    monkeypatch.setattr(HeadDeadlineProtocol, "head_timeout", 1.0)
    with (running(create_app(library), max_connections=2) as url, httpx.Client(base_url=url) as http,
          headless(url) as silent, headless(url, b"GET /health HTTP/1.1\r\nHost: x") as slow):
        assert http.get("/health").status_code == 503  # a third connection, while both are open
        assert answer(silent) == b"" and answer(slow) == b""  # closed by the server, not the 10 s timeout
        assert http.get("/health").status_code == 200


def test_a_kept_alive_connection_serves_request_after_request_past_the_head_deadline(library, monkeypatch):
    """The deadline is per request head, from when the server waits for it: a client sending requests on
    one connection for longer than the deadline in all is never cut off."""
    monkeypatch.setattr(HeadDeadlineProtocol, "head_timeout", 1.0)
    with running(create_app(library)) as url, httpx.Client(base_url=url) as http:
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            assert http.get("/health").status_code == 200
            time.sleep(0.3)


def test_a_pipelined_request_longer_than_the_head_deadline_is_answered(library, monkeypatch):
    """Two requests sent at once: the second is taken up as the first is answered, and an answer slower
    than the head deadline is still sent whole, not cut off as if no head had come."""
    monkeypatch.setattr(HeadDeadlineProtocol, "head_timeout", 0.3)
    app = create_app(library)

    @app.get("/slow-answer")
    def slow_answer() -> dict:
        time.sleep(1.0)
        return {"slow": True}

    with running(app) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            heads = "".join(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{close}\r\n"
                            for path, close in (("/health", ""), ("/slow-answer", "Connection: close\r\n")))
            sock.sendall(heads.encode())
            received = answer(sock)
    assert received.count(b"HTTP/1.1 200") == 2 and b'{"slow":true}' in received

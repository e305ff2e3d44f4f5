"""Slow and numerous clients: a bounded number of connections, and a deadline on request bodies.

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
from tests.serving import indexed_collection, running


@pytest.fixture(scope="module")
def library(tmp_path_factory, tf1_module):
    collection = indexed_collection(tmp_path_factory.mktemp("slow"), tf1_module)
    yield collection
    collection.close()


@contextmanager
def slow_upload(url: str) -> Iterator[socket.socket]:
    """A connection that has sent an upload's head and the start of its body, and then nothing more."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = (f"POST /search HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 100000\r\n"
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


def test_beyond_the_connections_allowed_a_request_gets_503_at_once(library):
    with running(create_app(library), max_connections=2) as url, httpx.Client(base_url=url) as http:
        with slow_upload(url), slow_upload(url):
            refused = http.get("/health")  # a third connection
            assert refused.status_code == 503
        deadline = time.monotonic() + 10
        while http.get("/health").status_code != 200:  # the two slow ones are gone: served again
            assert time.monotonic() < deadline, "still refused after the slow clients left"
            time.sleep(0.05)

"""A real uvicorn server in a background thread, on 127.0.0.1 and a free port, for the service tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

import lookalike
from lookalike.index.collection import Collection
from lookalike.server.app import MAX_CONNECTIONS, uvicorn_options
from tests.photos import photo_folder

STARTUP_S = 60.0


def indexed_collection(root: Path, module: Path, **options) -> Collection:
    """data/'s photos, half-size copies and block pictures, indexed with the tiny test module."""
    photo_folder(root / "photos")
    collection = lookalike.open(root / "index", model=str(module))
    collection.add([root / "photos"])
    collection.close()
    from lookalike.index.collection import open_collection

    return open_collection(root / "index", create=False, **options)


@contextmanager
def running(app, max_connections: int = MAX_CONNECTIONS) -> Iterator[str]:
    """Serve ``app`` as ``lookalike serve`` does until the block ends; yields the base URL (the lifespan
    has run: the model is warm)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", **uvicorn_options(max_connections))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()

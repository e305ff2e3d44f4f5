"""Memory bounds of the service: the pixel cap on uploads, and the gate on decodes at once.

The full measurement (8 parallel 100 MP uploads against `lookalike serve`) is bench/serve_memory.py;
these tests pin the mechanisms: a cheap header check refuses big pictures before any decode, and no
more than ``decodes`` run at once, the rest queued up to a bound and refused beyond it with a 503.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from lookalike.server import create_app
from lookalike.server import files as server_files
from lookalike.server.files import Busy, Gate, declared_pixels
from tests.icons import bitmap_declaring, icon_holding
from tests.serving import indexed_collection, running
from tests.test_server import png_declaring, upload


@pytest.fixture(scope="module")
def library(tmp_path_factory, tf1_module):
    collection = indexed_collection(tmp_path_factory.mktemp("memory"), tf1_module)
    yield collection
    collection.close()


def test_the_header_tells_the_size_without_decoding(icon_decodes):
    assert declared_pixels(png_declaring(9990, 9990)) == (9990, 9990)
    assert declared_pixels(icon_holding(png_declaring(9990, 9990))) == (9990, 9990)
    assert declared_pixels(icon_holding(bitmap_declaring(9990, 9990))) == (9990, 9990)
    assert declared_pixels(b"not an image") is None
    assert icon_decodes == []  # Pillow would decode an icon's picture only to open it


@pytest.mark.parametrize("endpoint", ["/search", "/classify", "/images"])
def test_an_icon_over_the_pixel_cap_is_413_before_pillow_decodes_it(library, tmp_path, endpoint,
                                                                    icon_decodes):
    """A 560 KB icon holding a 12000 x 12000 PNG cost 576 MB a request, outside the decode gate."""
    app = create_app(library, upload_dir=tmp_path, max_upload_pixels=1_000_000)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        response = http.post(endpoint, files=upload(icon_holding(png_declaring(2000, 1000)), "bomb.ico"))
        assert response.status_code == 413, response.text
        assert "too many pixels for an upload (2000 x 1000 > 1,000,000" in response.json()["error"]
    assert icon_decodes == [] and not list(tmp_path.iterdir())


@pytest.mark.parametrize("endpoint", ["/search", "/classify", "/images"])
def test_uploads_over_the_pixel_cap_are_413_before_decoding(library, tmp_path, endpoint, monkeypatch):
    decoded = []
    monkeypatch.setattr(server_files, "open_image", lambda *a, **k: decoded.append(a))
    app = create_app(library, upload_dir=tmp_path, max_upload_pixels=1_000_000)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        started = time.monotonic()
        response = http.post(endpoint, files=upload(png_declaring(1001, 1000)))
        assert response.status_code == 413, response.text
        assert "too many pixels for an upload (1001 x 1000 > 1,000,000" in response.json()["error"]
        assert "--max-upload-megapixels" in response.json()["error"]
        assert time.monotonic() - started < 2 and not decoded
        # at the cap it is no longer refused for its size (it is an empty picture: 400, not 413)
        assert http.post(endpoint, files=upload(png_declaring(1000, 1000))).status_code != 413
    assert not list(tmp_path.iterdir())


def test_the_gate_runs_at_most_n_and_queues_the_rest():
    gate = Gate(running=2, waiting=8, wait=10)
    now, most = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal now, most
        with gate.decoding():
            with lock:
                now += 1
                most = max(most, now)
            time.sleep(0.05)
            with lock:
                now -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 2


def test_beyond_the_queue_requests_are_refused_at_once():
    gate = Gate(running=1, waiting=1, wait=10)
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        with gate.decoding():
            entered.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait()
    queued = threading.Thread(target=lambda: gate.decoding().__enter__())
    queued.start()
    time.sleep(0.1)  # now one runs and one waits
    started = time.monotonic()
    with pytest.raises(Busy) as refused, gate.decoding():
        pass
    assert time.monotonic() - started < 0.5 and refused.value.retry_after > 0
    release.set()
    holder.join()
    queued.join()


def test_waiting_too_long_is_busy():
    gate = Gate(running=1, waiting=4, wait=0.1)
    with gate.decoding(), pytest.raises(Busy), gate.decoding():
        pass


def test_memory_is_given_back_after_a_large_decode(monkeypatch):
    trims = []
    monkeypatch.setattr(server_files, "release_memory", lambda: trims.append(1))
    gate = Gate(running=2)
    with gate.decoding(1000):
        pass
    assert trims == []  # small: not worth a trim
    with gate.decoding(100 * 2**20), gate.decoding(1000):
        assert trims == []  # not while another decode runs
    assert trims == [1]


def test_release_memory_runs_here():
    server_files.release_memory()  # glibc malloc_trim through ctypes; a no-op where there is none

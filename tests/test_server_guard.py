"""The service's Host and Origin rules (DNS rebinding, cross-site writes) and `serve`'s start-up rules.

Against a real uvicorn server on 127.0.0.1; the Host and Origin headers are forged the way a rebinding
or cross-site page would make a browser send them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import lookalike
from lookalike.cli.app import app as cli
from lookalike.server import create_app
from lookalike.server.app import MAX_CONNECTIONS, uvicorn_options
from lookalike.server.connections import HeadDeadlineProtocol
from tests.photos import DATA
from tests.serving import indexed_collection, running


def upload(name: str = "cat.jpg") -> dict:
    return {"file": (name, (DATA / name).read_bytes(), "image/jpeg")}


@pytest.fixture(scope="module")
def served(tmp_path_factory, tf1_module):
    root = tmp_path_factory.mktemp("guard")
    collection = indexed_collection(root, tf1_module)
    app = create_app(collection, upload_dir=root / "uploads", allowed_hosts=["photos.lan", "nas:9000"])
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http, url.rsplit(":", 1)[1], root / "uploads"
    collection.close()


def assert_error(response: httpx.Response, status: int, text: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert text in response.json()["error"]


# -- Host ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "photos.lan",
                                  "photos.lan:443", "nas:9000"])
def test_the_loopback_names_and_allowed_hosts_are_answered(served, host):
    http, port, _ = served
    assert http.get("/info", headers={"Host": host.format(port=port)}).status_code == 200


@pytest.mark.parametrize(
    "host",
    ["evil.example:{port}", "evil.example", "127.0.0.1.evil.example:{port}", "localhost:1", "127.0.0.1",
     "nas:9001", "nas", "", "user@127.0.0.1:{port}", "127.0.0.1:{port}/x", "[::1]:1"],
)
def test_any_other_host_is_refused_before_anything_is_read(served, host):
    """DNS rebinding: a page at evil.example whose name now resolves to 127.0.0.1 sends its own name."""
    http, port, _ = served
    for path in ("/images/1/file", "/info", "/", "/health"):
        assert_error(http.get(path, headers={"Host": host.format(port=port)}), 421, "--allowed-host")


def test_a_refused_host_cannot_write(served):
    http, port, folder = served
    before = set(folder.iterdir()) if folder.exists() else set()
    response = http.post("/images", files=upload(), headers={"Host": f"evil.example:{port}"})
    assert_error(response, 421)
    assert (set(folder.iterdir()) if folder.exists() else set()) == before


# -- Origin ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://evil.example:{port}"},
        {"Origin": "http://localhost:3000"},  # another local site is another origin
        {"Origin": "null"},  # sandboxed frames, file: pages
        {"Origin": "http://user@127.0.0.1:{port}"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Referer": "http://evil.example/page.html"},
    ],
    ids=["foreign", "foreign-same-port", "other-port", "null", "userinfo", "fetch-cross-site",
         "fetch-same-site", "referer"],
)
def test_cross_site_writes_are_refused(served, headers):
    http, port, folder = served
    before = set(folder.iterdir()) if folder.exists() else set()
    forged = {name: value.format(port=port) for name, value in headers.items()}
    assert_error(http.post("/images", files=upload(), headers=forged), 403, "cross-site")
    assert_error(http.post("/search", files=upload(), headers=forged), 403, "cross-site")
    assert (set(folder.iterdir()) if folder.exists() else set()) == before


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Origin": "http://localhost:3000"},
     {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
     {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"},
     {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}],
    ids=["script-foreign", "script-other-port", "fetch", "img-other-port", "frame"],
)
def test_another_site_s_page_cannot_make_the_server_read_for_it(served, headers):
    """It could not read the answer, but it could make the server search the whole index as often as
    it liked (GET /duplicates), or time how long a photo takes to come."""
    http, _, _ = served
    for path in ("/duplicates", "/info", "/images/1/file", "/"):
        assert_error(http.get(path, headers=headers), 403, "cross-site")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
     {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"},
     {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
      "Referer": "http://evil.example/links.html"},
     {"Origin": "http://127.0.0.1:{port}"}],
    ids=["no-browser", "the-page", "typed", "a-link-followed", "own-origin"],
)
def test_reads_by_the_page_by_scripts_and_by_links_followed_are_answered(served, headers):
    http, port, _ = served
    forged = {name: value.format(port=port) for name, value in headers.items()}
    assert http.get("/info", headers=forged).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Origin": "http://127.0.0.1:{port}"}, {"Origin": "http://localhost:{port}"},
     {"Origin": "https://photos.lan"}, {"Sec-Fetch-Site": "same-origin", "Referer": "http://127.0.0.1:{port}/"},
     {"Sec-Fetch-Site": "none"}],
    ids=["no-browser", "own-origin", "localhost", "allowed-name", "same-origin", "typed"],
)
def test_writes_from_the_page_and_from_scripts_are_accepted(served, headers):
    http, port, _ = served
    forged = {name: value.format(port=port) for name, value in headers.items()}
    response = http.post("/search", files=upload(), headers=forged)
    assert response.status_code == 200, response.text


def test_a_malformed_allowed_host_is_refused(tf1_module, tmp_path):
    with pytest.raises(ValueError, match="not a host name"):
        create_app(lookalike.open(tmp_path / "i", model=str(tf1_module)), allowed_hosts=["http://x/"])


# -- framing and embedding -------------------------------------------------------------------------


def assert_not_embeddable(response: httpx.Response) -> None:
    """No page of another origin may frame this answer, embed it as an image, or sniff its type."""
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cross-origin-resource-policy"] == "same-origin"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/health", "/openapi.json", "/info",
                                  "/images/1", "/images/1/file", "/images/1/thumbnail", "/images/999999"])
def test_no_other_page_may_frame_the_page_or_embed_a_photo(served, path):
    """Clickjacking: framed invisibly by another page, the page's own requests would pass the Origin
    check, so a click there could move files; a photo embedded as <img> elsewhere tells its size."""
    http, _, _ = served
    response = http.get(path)
    assert response.status_code in (200, 404), response.text
    assert_not_embeddable(response)


def test_the_page_keeps_its_own_policy_and_refusals_carry_the_headers_too(served):
    http, port, _ = served
    page = http.get("/")
    assert page.headers.get_list("content-security-policy") == [page.headers["content-security-policy"]]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert_not_embeddable(page)
    assert_not_embeddable(http.get("/info", headers={"Host": f"evil.example:{port}"}))  # 421
    assert_not_embeddable(http.post("/search", files=upload(), headers={"Origin": "http://evil.example"}))


# -- serve: token off loopback, --model ------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "photos.lan"])
def test_serve_refuses_to_expose_an_index_without_a_token(tmp_path, tf1_module, host, monkeypatch):
    indexed_collection(tmp_path, tf1_module).close()
    monkeypatch.delenv("LOOKALIKE_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--index", str(tmp_path / "index"), "--host", host])
    assert result.exit_code == 2
    assert "--token" in result.output and "Traceback" not in result.output


def test_serve_accepts_any_loopback_address_without_a_token(tmp_path, tf1_module, monkeypatch):
    import uvicorn

    indexed_collection(tmp_path, tf1_module).close()
    monkeypatch.delenv("LOOKALIKE_TOKEN", raising=False)
    bound = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **options: bound.append(host))
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        result = CliRunner().invoke(cli, ["serve", "--index", str(tmp_path / "index"), "--host", host])
        assert result.exit_code == 0, result.output
    assert bound == ["127.0.0.1", "127.0.0.2", "localhost", "::1"]


def test_serve_bounds_connections_and_idle_time(tmp_path, tf1_module, monkeypatch):
    """Slow clients once held 20,000 connections, every file descriptor the server had."""
    import uvicorn

    indexed_collection(tmp_path, tf1_module).close()
    settings = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **options: settings.append(options))
    for extra in ([], ["--max-connections", "7"]):
        result = CliRunner().invoke(cli, ["serve", "--index", str(tmp_path / "index"), *extra])
        assert result.exit_code == 0, result.output
    assert settings == [uvicorn_options(MAX_CONNECTIONS), uvicorn_options(7)]
    assert settings[1] == {"limit_concurrency": 8, "timeout_keep_alive": 5,  # uvicorn counts its own too
                           "http": HeadDeadlineProtocol}


@pytest.mark.slow
def test_serve_starts_on_an_index_without_a_model_yet(tmp_path, tf1_module):
    """An index of an empty folder has no model; `serve --model` (or LOOKALIKE_MODEL) names it."""
    empty = tmp_path / "empty"
    empty.mkdir()
    index = tmp_path / "index"
    with lookalike.open(index, model=str(tf1_module)) as collection:
        collection.add([empty])
        assert collection.fingerprint is None
    uploads = tmp_path / "uploads"
    command = [sys.executable, "-m", "lookalike.cli", "serve", "--index", str(index), "--port", "0",
               "--upload-dir", str(uploads)]
    env = {**os.environ, "LOOKALIKE_MODEL": str(tf1_module)}
    env.pop("LOOKALIKE_TOKEN", None)
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "Uvicorn running on" in line:
                url = line.split("running on ")[1].split()[0]
                break
        assert url, "".join(seen)
        assert httpx.get(f"{url}/info").json()["images"] == 0
        added = httpx.post(f"{url}/images", files=upload(), timeout=60)
        assert added.status_code == 201, added.text
        assert Path(added.json()["path"]).parent == uploads
    finally:
        process.terminate()
        process.wait(30)

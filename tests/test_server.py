"""The HTTP service over a real uvicorn server on 127.0.0.1, hit with httpx: every endpoint and its errors."""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from lookalike.server import create_app
from tests.photos import DATA, blocks
from tests.serving import indexed_collection, running

TOKEN = "s3cret-token"


def png_declaring(width: int, height: int) -> bytes:
    """A ~100-byte PNG whose header claims ``width x height`` pixels: a decompression bomb's calling card."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(
        b"IEND", b""
    )


def upload(data: bytes, name: str = "query.jpg") -> dict:
    return {"file": (name, data, "application/octet-stream")}


@pytest.fixture(scope="module")
def library(tmp_path_factory, tf1_module):
    collection = indexed_collection(tmp_path_factory.mktemp("served"), tf1_module, batching=True)
    yield collection
    collection.close()


@pytest.fixture(scope="module")
def client(library):
    with running(create_app(library, max_upload_bytes=200_000)) as url, httpx.Client(base_url=url) as http:
        yield http


@pytest.fixture(scope="module")
def ids(client, library) -> dict[str, int]:
    """Photo name (cat, cat-small, blocks0, ...) -> its id in the served index."""
    hits = client.get("/find", params={"q": "photos", "limit": 100}).json()
    return {Path(hit["image"]["path"]).stem: hit["image"]["id"] for hit in hits}


def assert_error(response: httpx.Response, status: int, text: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert text in response.json()["error"]


# -- the service -----------------------------------------------------------------------------------


def test_health_and_info(client, library):
    assert client.get("/health").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["images"] == 14 and info["vector_size"] == 48
    assert info["directory"] == str(library.directory)


def test_search_by_upload_finds_the_same_picture_first(client, ids):
    cat = (DATA / "cat.jpg").read_bytes()
    result = client.post("/search", files=upload(cat), params={"k": 3}).json()
    first = result["neighbours"][0]
    assert first["image"]["id"] == ids["cat"] and first["score"] > 0.999
    assert [n["rank"] for n in result["neighbours"]] == [1, 2, 3]
    assert result["query_id"] is None and len(result["query_labels"]) == 5


def test_search_filters_reach_the_library(client, ids):
    cat = (DATA / "cat.jpg").read_bytes()
    close = client.post("/search", files=upload(cat), params={"k": 20, "min_score": 0.99}).json()
    assert {n["image"]["id"] for n in close["neighbours"]} == {ids["cat"], ids["cat-small"]}
    label = close["neighbours"][0]["image"]["labels"][2]["name"]
    labelled = client.post("/search", files=upload(cat), params={"k": 20, "label": label}).json()
    assert labelled["neighbours"]
    assert all(label in [la["name"] for la in n["image"]["labels"]] for n in labelled["neighbours"])


def test_search_by_id_leaves_the_image_out(client, ids):
    result = client.get(f"/images/{ids['rocket']}/similar", params={"k": 50}).json()
    assert result["query_id"] == ids["rocket"]
    assert result["neighbours"][0]["image"]["id"] == ids["rocket-small"]
    assert ids["rocket"] not in [n["image"]["id"] for n in result["neighbours"]]
    assert len(result["neighbours"]) == 13


def test_classify_gives_labels_only(client):
    espresso = (DATA / "espresso.jpg").read_bytes()
    answer = client.post("/classify", files=upload(espresso), params={"k": 3}).json()
    assert set(answer) == {"labels", "width", "height", "format"}
    assert len(answer["labels"]) == 3 and answer["format"] == "JPEG"
    probabilities = [label["probability"] for label in answer["labels"]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_image_metadata_and_text_search(client, ids):
    image = client.get(f"/images/{ids['cat']}").json()
    assert (image["width"], image["height"], image["format"]) == (451, 300, "JPEG")
    assert Path(image["path"]).name == "cat.jpg"
    hits = client.get("/find", params={"q": "cat"}).json()
    assert {Path(h["image"]["path"]).name for h in hits} >= {"cat.jpg", "cat-small.jpg"}


def test_thumbnail_fits_the_size_asked(client, ids):
    response = client.get(f"/images/{ids['cat']}/thumbnail", params={"size": 120})
    assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 120 and thumb.size[0] > thumb.size[1]
    default = client.get(f"/images/{ids['cat']}/thumbnail")
    with Image.open(io.BytesIO(default.content)) as thumb:
        assert max(thumb.size) == 256


def test_thumbnail_follows_a_file_changed_in_place(client, library, ids):
    path = Path(client.get(f"/images/{ids['blocks5']}").json()["path"])
    before = client.get(f"/images/{ids['blocks5']}/thumbnail", params={"size": 64}).content
    assert client.get(f"/images/{ids['blocks5']}/thumbnail", params={"size": 64}).content == before
    blocks(path, seed=99)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert_error(client.get(f"/images/{ids['blocks5']}/thumbnail", params={"size": 64}), 410)  # not indexed
    library.add([path])  # re-indexed: the same id, a fresh thumbnail
    assert client.get(f"/images/{ids['blocks5']}/thumbnail", params={"size": 64}).content != before


def test_file_by_id_is_the_indexed_file(client, ids):
    response = client.get(f"/images/{ids['rocket']}/file")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content == (DATA / "rocket.jpg").read_bytes()


def test_the_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert not re.search(r"https?://|//cdn", text)  # nothing loads from anywhere else


def test_openapi_schema_lists_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/images/{image_id}/similar", "/classify", "/images/{image_id}",
            "/images/{image_id}/thumbnail", "/images/{image_id}/file", "/find", "/duplicates", "/images",
            "/info", "/health"} <= set(paths)


def test_duplicate_clusters_keep_the_original_and_list_its_copy(client, ids):
    clusters = client.get("/duplicates", params={"threshold": 0.99}).json()
    pairs = {(c["keeper"]["id"], tuple(copy["id"] for copy in c["copies"])) for c in clusters}
    photos = ("cameraman", "cat", "espresso", "rocket")
    assert pairs == {(ids[name], (ids[f"{name}-small"],)) for name in photos}
    copy = clusters[0]["copies"][0]
    assert copy["similarity"] >= 0.99 and copy["exact"] is False
    assert client.get("/duplicates", params={"exact_only": True}).json() == []  # no byte-identical files


def test_duplicates_refuse_a_bad_threshold_or_policy(client):
    assert_error(client.get("/duplicates", params={"threshold": 0}), 422, "threshold")
    assert_error(client.get("/duplicates", params={"policy": "prettiest"}), 422, "prettiest")


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/images/{}", "/images/{}/similar", "/images/{}/thumbnail", "/images/{}/file"],
    ids=["metadata", "similar", "thumbnail", "file"],
)
def test_unknown_ids_are_404(client, path):
    assert_error(client.get(path.format(987654)), 404, "no image with id 987654")


def test_a_file_gone_from_disk_is_410_not_500(client, ids, library):
    path = Path(client.get(f"/images/{ids['blocks4']}").json()["path"])
    path.unlink()
    assert_error(client.get(f"/images/{ids['blocks4']}/file"), 410)
    assert_error(client.get(f"/images/{ids['blocks4']}/thumbnail"), 410)


@pytest.mark.parametrize("endpoint", ["/search", "/classify"])
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"just some text, not a picture", "not an image"),
        ((DATA / "cat.jpg").read_bytes()[:6000], "truncated"),
    ],
    ids=["empty", "not-an-image", "truncated"],
)
def test_bad_uploads_are_400_with_a_json_error(client, endpoint, data, reason):
    assert_error(client.post(endpoint, files=upload(data)), 400, reason)


@pytest.mark.parametrize("endpoint", ["/search", "/classify"])
def test_pixel_bombs_are_413_before_decoding(client, endpoint):
    assert_error(client.post(endpoint, files=upload(png_declaring(30000, 30000))), 413, "too many pixels")


def test_too_big_uploads_are_413(client):
    big = os.urandom(250_000)  # over the 200,000-byte limit, within the multipart slack
    assert_error(client.post("/search", files=upload(big)), 413, "larger than 200,000 bytes")
    huge = os.urandom(3_000_000)  # over limit + slack: refused while the body is read
    assert_error(client.post("/classify", files=upload(huge)), 413, "body larger than")
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n'
    chunks = iter([head] + [b"x" * 100_000] * 5)  # sent chunked: no Content-Length to refuse it by
    multipart = {"content-type": "multipart/form-data; boundary=b"}
    assert_error(client.post("/search", content=chunks, headers=multipart), 413, "body larger than")


def test_malformed_requests_are_422_with_a_json_error(client, ids):
    assert_error(client.post("/search", data={"nofile": "x"}), 422, "file")
    assert_error(client.get(f"/images/{ids['cat']}/similar", params={"k": 0}), 422, "k")
    assert_error(client.get("/images/not-a-number"), 422)


def test_a_text_without_a_word_is_422_not_an_empty_answer(client, ids):
    """``/find?q=%20`` passed the length check and answered [] as if searched (the library's
    InvalidOption now, so the command line and the service refuse the same texts)."""
    for q in (" ", "*", "\n_"):
        assert_error(client.get("/find", params={"q": q}), 422, "holds no word to match")
    assert_error(client.get(f"/images/{ids['cat']}/similar", params={"label": " "}), 422, "holds no word")
    cat = (DATA / "cat.jpg").read_bytes()
    assert_error(client.post("/search", params={"label": "?!"}, files=upload(cat)), 422, "holds no word")
    assert client.get("/find", params={"q": "\u732b"}).json() == []  # a word, of another script


def test_adding_is_off_unless_an_upload_folder_is_configured(client):
    assert_error(client.post("/images", files=upload((DATA / "cat.jpg").read_bytes())), 403, "--upload-dir")


# -- token -----------------------------------------------------------------------------------------


def test_with_a_token_every_api_request_needs_it(library):
    with running(create_app(library, token=TOKEN)) as url, httpx.Client(base_url=url) as http:
        for bad in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            response = http.get("/info", headers=bad)
            assert_error(response, 401, "token")
            assert response.headers["www-authenticate"] == "Bearer"
            assert_error(http.post("/search", files=upload(b"x"), headers=bad), 401)
            assert_error(http.get("/images/1/thumbnail", headers=bad), 401)
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert http.get("/info", headers=good).json()["images"] >= 13
        cat = (DATA / "cat.jpg").read_bytes()
        assert http.post("/search", files=upload(cat), headers=good).json()["neighbours"]
        assert http.get("/health").status_code == 200  # liveness and the page carry no data
        assert http.get("/").status_code == 200
        schema = http.get("/openapi.json").json()
        assert "HTTPBearer" in schema["components"]["securitySchemes"]


# -- adding by upload ------------------------------------------------------------------------------


@pytest.fixture
def uploading(tmp_path, tf1_module):
    collection = indexed_collection(tmp_path, tf1_module)
    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"already here")
    with running(create_app(collection, upload_dir=folder)) as url, httpx.Client(base_url=url) as http:
        yield http, folder
    collection.close()


def test_uploads_are_saved_under_fresh_names_and_indexed(uploading):
    http, folder = uploading
    cat = (DATA / "cat.jpg").read_bytes()
    first = http.post("/images", files=upload(cat, "cat.jpg"))
    second = http.post("/images", files=upload(cat, "../../cat.jpg"))
    assert first.status_code == second.status_code == 201
    paths = {Path(first.json()["path"]), Path(second.json()["path"])}
    assert len(paths) == 2 and all(p.parent == folder and p.suffix == ".jpg" for p in paths)
    assert all(p.read_bytes() == cat for p in paths)
    assert (folder / "cat.jpg").read_bytes() == b"already here"  # never overwritten
    assert http.get("/info").json()["images"] == 16
    similar = http.get(f"/images/{first.json()['id']}/similar", params={"k": 1}).json()
    assert similar["neighbours"][0]["score"] > 0.999  # its twin, or the indexed original


def test_a_png_upload_keeps_its_real_format_whatever_its_name(uploading):
    http, folder = uploading
    png = (Path(blocks(folder.parent / "b.png", seed=7))).read_bytes()
    added = http.post("/images", files=upload(png, "holiday.jpg")).json()
    assert added["format"] == "PNG" and Path(added["path"]).name.startswith("holiday-")
    assert Path(added["path"]).suffix == ".png"


def test_a_bad_upload_is_not_saved(uploading):
    http, folder = uploading
    before = set(folder.iterdir())
    assert_error(http.post("/images", files=upload(b"not an image")), 400, "not an image")
    assert_error(http.post("/images", files=upload(png_declaring(30000, 30000))), 413, "too many pixels")
    assert set(folder.iterdir()) == before


# -- concurrency -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_searches_keep_answering_while_another_process_indexes(tmp_path, tf1_module):
    collection = indexed_collection(tmp_path, tf1_module, batching=True)
    more = tmp_path / "more"
    more.mkdir()
    for seed in range(100, 140):
        blocks(more / f"new{seed}.png", seed)
    shutil.copy(DATA / "espresso.jpg", more / "espresso-again.jpg")
    cat = (DATA / "cat.jpg").read_bytes()
    writer = [sys.executable, "-m", "lookalike.cli", "index", str(more), "--index", str(collection.directory),
              "--model", str(tf1_module), "--commit-every", "2", "--quiet"]
    with running(create_app(collection)) as url, httpx.Client(base_url=url, timeout=60) as http:
        process = subprocess.Popen(writer, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def search(i: int) -> int:
            response = http.post("/search", files=upload(cat), params={"k": 5}) if i % 2 else http.get(
                "/images/1/similar", params={"k": 5}
            )
            return response.status_code

        statuses = []
        with ThreadPoolExecutor(8) as pool:
            while process.poll() is None:
                statuses += pool.map(search, range(16))
        assert process.returncode == 0, process.stderr.read().decode()
        assert statuses and set(statuses) == {200}
        assert http.get("/info").json()["images"] == 14 + 41
        espresso = http.post("/search", files=upload((DATA / "espresso.jpg").read_bytes()), params={"k": 3})
        assert "espresso-again.jpg" in [Path(n["image"]["path"]).name for n in espresso.json()["neighbours"]]
    collection.close()


@pytest.mark.slow
def test_the_serve_command_binds_loopback_and_serves(tmp_path, tf1_module):
    indexed_collection(tmp_path, tf1_module).close()
    index = str(tmp_path / "index")
    command = [sys.executable, "-m", "lookalike.cli", "serve", "--index", index, "--port", "0",
               "--quarantine", str(tmp_path / "quarantine")]
    env = {**os.environ, "LOOKALIKE_TOKEN": TOKEN}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in process.stderr:
            if "Uvicorn running on" in line:
                url = line.split("running on ")[1].split()[0]
                break
        assert url and url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/info").status_code == 401
        info = httpx.get(f"{url}/info", headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert info["images"] == 14
        quarantine = httpx.get(f"{url}/quarantine", headers={"Authorization": f"Bearer {TOKEN}"})
        assert quarantine.json() == {"enabled": True}
    finally:
        process.terminate()
        process.wait(30)

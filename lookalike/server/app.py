"""The HTTP API and the web page over one open :class:`~lookalike.index.collection.Collection`.

Each endpoint is one library call and a translation of its answer or error into HTTP: the library's
result dataclasses are the response models (so the OpenAPI schema is the library's), the library's
exceptions become statuses through one table (:data:`STATUSES`), and every error body is
``{"error": "..."}``. Endpoints are plain ``def``s: Starlette runs them in its thread pool, which is
what lets concurrent searches share a model batch. The server calls only ``Collection`` methods, and
for reviewing duplicates :mod:`lookalike.index.review` (a cluster around a keeper a person chose).

Around them: :class:`HostGuard` (Host and Origin checks against DNS rebinding and cross-site
writes), :class:`NotEmbeddable` (no other site may frame the page or embed a photo),
:class:`BodyLimit` (upload bytes), and a :class:`~lookalike.server.files.Gate` bounding how
many pictures are decoded at once, with a separate pixel cap on uploads.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import stat
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from PIL import Image as PILImage
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike import __version__
from lookalike.embedder.labels import Label
from lookalike.errors import (
    ImageError,
    ImageNotFound,
    InvalidOption,
    LookalikeError,
    ModelMismatchError,
    NoSpace,
    QuarantineError,
    StaleFile,
    WriterBusy,
)
from lookalike.index.collection import Collection, Image, IndexInfo, SearchResult, TextHit, Undone
from lookalike.index.duplicates import DEFAULT_POLICY
from lookalike.index.quarantine import MoveResult, check_quarantine
from lookalike.index.records import Cluster
from lookalike.index.review import MAX_MEMBERS, Review, move_copies, recentre
from lookalike.server.connections import HeadDeadlineProtocol
from lookalike.server.files import Busy, Gate, Thumbnails, declared_pixels, save_upload, tune_malloc

STATIC = Path(__file__).resolve().parent / "static"
MULTIPART_SLACK = 64 * 1024
"""Bytes a request body may exceed the upload limit by: multipart boundaries and part headers."""
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'"
)
"""The page loads nothing from anywhere else, shows thumbnails as blob: URLs fetched with the token, and
is shown in no frame."""
NOT_EMBEDDABLE = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
"""Headers on every answer (unless it sets its own): see :class:`NotEmbeddable`."""
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""Host names always accepted (with the port the server listens on), besides ``allowed_hosts``."""
STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})
MAX_UPLOAD_PIXELS = 40_000_000
"""Default pixel cap on uploads (40 MP), well under the indexer's 100 MP guard: memory, not safety."""
DECODES = 2
"""Pictures decoded (and embedded) at once; each can take several times its pixel count in bytes."""
MANIFEST_NAME = r"manifest-[0-9]{8}T[0-9]{6}(?: \([0-9]{1,9}\))?\.jsonl"
"""A manifest the quarantine module names (``manifest-<time>.jsonl``, ``... (1).jsonl``): a name only,
so a client can never point the server at a path of its choosing."""
BODY_TIMEOUT_S = 60.0
"""Longest a request body may take to arrive (20 MB at 2.7 Mbit/s); slower clients get a 408."""
MAX_CONNECTIONS = 100
"""Connections served at once by ``lookalike serve``; a request on one more is answered 503 at once."""
KEEP_ALIVE_S = 5
"""An idle kept-alive connection is closed after this many seconds."""
CLOSE = {"Connection": "close"}
UNDO_WAIT_S = 30.0
"""How long an undo waits for another writer to index the files it put back (they are back already,
and are answered as ``unindexed`` after that)."""

STATUSES: tuple[tuple[type[Exception], int], ...] = (
    (ImageError, 400),
    (InvalidOption, 422),
    (ImageNotFound, 404),
    (QuarantineError, 422),
    (StaleFile, 410),
    (ModelMismatchError, 409),
    (WriterBusy, 503),
    (Busy, 503),
    (NoSpace, 507),
    (LookalikeError, 500),
)
"""Every expected failure's HTTP status, first match wins; ``retry_after`` becomes a Retry-After."""

ImageId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="An indexed image's id.")]
K = Annotated[int, Query(ge=1, le=1000, description="How many neighbours.")]
MinScore = Annotated[float | None, Query(ge=-1.0, le=1.0, description="Drop neighbours below this cosine.")]
LabelFilter = Annotated[
    str | None, Query(min_length=1, max_length=200, description="Keep neighbours whose labels match.")
]
Upload = Annotated[UploadFile, File(description="An image file (JPEG, PNG, WebP, HEIC, ...).")]


class SafeJSONResponse(JSONResponse):
    """JSON that never fails on a file name holding invalid UTF-8.

    Python keeps such bytes as lone surrogates, which UTF-8 cannot encode. They are written as JSON
    escapes (``\\udcff``), which is valid JSON and decodes back (in Python) to the exact name.
    """

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", errors="backslashreplace")


@dataclass(frozen=True)
class ErrorBody:
    error: str


@dataclass(frozen=True)
class Health:
    status: str


@dataclass(frozen=True)
class Classification:
    """An uploaded image's labels, and its size and format as decoded."""

    labels: list[Label]
    width: int
    height: int
    format: str


@dataclass(frozen=True)
class QuarantineInfo:
    """Whether moving duplicates is on (``lookalike serve --quarantine DIR``); the folder is not shown."""

    enabled: bool


class MoveRequest(BaseModel):
    """Move these copies of ``keeper`` to the quarantine; each must reach ``threshold`` against it.

    Strict: ``true`` is no image id and ``"0.5"`` no threshold (a request that moves files takes them
    only as they are meant)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    keeper: int = Field(ge=1, le=2**63 - 1, description="The image that stays.")
    copies: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        min_length=1, max_length=MAX_MEMBERS, description="The copies to move (never the keeper).")
    threshold: float | None = Field(
        None, gt=0, le=1, description="Cosine each copy needs to the keeper [calibrated].")


class UndoRequest(BaseModel):
    """Put back what one move put in the quarantine, named by the manifest the move answered with."""

    model_config = ConfigDict(extra="forbid", strict=True)
    manifest: str = Field(pattern=f"^{MANIFEST_NAME}$", max_length=100, description=(
        "A manifest name from POST /duplicates/move, e.g. manifest-20261130T081500.jsonl."))


@dataclass(frozen=True)
class LeftAlone:
    """A file that was not moved or restored, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class MovedCopy:
    id: int | None
    original: str
    moved_to: str


@dataclass(frozen=True)
class MoveReport:
    """What a move did: ``manifest`` is the name ``POST /duplicates/undo`` (and ``lookalike undo``) takes;
    null when nothing moved."""

    manifest: str | None
    moved: list[MovedCopy]
    problems: list[LeftAlone]

    @classmethod
    def of(cls, result: MoveResult, review: Review) -> MoveReport:
        ids = {copy.path: copy.id for copy in review.cluster.copies}
        moved = [MovedCopy(ids.get(str(m.original)), str(m.original), str(m.moved_to)) for m in result.moved]
        problems = [LeftAlone(str(p.path), p.reason) for p in result.problems]
        return cls(result.manifest.name if result.manifest else None, moved, problems)


@dataclass(frozen=True)
class UndoReport:
    """Files put back (and indexed again, under new ids) and those left in the quarantine.

    ``unindexed``: files back in place that are not indexed yet, because another writer held the index
    (a running ``lookalike index``); the same undo again indexes them, and lists them in ``caught_up``."""

    restored: list[str]
    problems: list[LeftAlone]
    unindexed: list[str]
    caught_up: list[str]

    @classmethod
    def of(cls, result: Undone) -> UndoReport:
        problems = [LeftAlone(str(p.path), p.reason) for p in result.problems]
        return cls([str(p) for p in result.restored], problems, [str(p) for p in result.unindexed],
                   [str(p) for p in result.caught_up])


ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 410, 413, 422, 503)}


def create_app(
    collection: Collection,
    *,
    token: str | None = None,
    upload_dir: str | Path | None = None,
    max_upload_bytes: int = 20 * 2**20,
    max_upload_pixels: int = MAX_UPLOAD_PIXELS,
    allowed_hosts: Iterable[str] = (),
    decodes: int = DECODES,
    quarantine: str | Path | None = None,
    body_timeout: float = BODY_TIMEOUT_S,
) -> FastAPI:
    """The app serving ``collection``; the caller keeps it open for the app's lifetime and closes it.

    ``token``: every API request must send ``Authorization: Bearer <token>`` (the page and ``/health``
    carry no data and stay open). ``upload_dir``: where ``POST /images`` saves uploads before indexing
    them; without it that endpoint answers 403. ``max_upload_bytes``: larger uploads get a 413, counted
    while the body is read; ``max_upload_pixels``: uploads declaring more pixels get a 413 before they
    are decoded. ``allowed_hosts``: Host names accepted besides the loopback names and the address the
    server listens on (``name`` for any port, ``name:port`` for one). ``decodes``: pictures decoded at
    once; more requests queue, and beyond the queue get a 503. ``quarantine``: where
    ``POST /duplicates/move`` moves copies (manifests and all, as ``duplicates --move-to``), refused
    here (QuarantineError) when copies cannot move into it; without it moving and undoing answer 403.
    ``body_timeout``: a request body still arriving after this many seconds gets a 408. Serve it with
    :func:`uvicorn_options`, which bounds connections.
    """

    @asynccontextmanager
    async def warm_model(_: FastAPI) -> AsyncIterator[None]:
        tune_malloc()  # decoded pictures' memory goes back to the system when they are freed
        await anyio.to_thread.run_sync(lambda: collection.embedder)  # load once, before the first request
        yield

    app = FastAPI(
        title="lookalike",
        version=__version__,
        summary="Reverse image search, labels and duplicates over one lookalike index.",
        docs_url=None,  # Swagger UI loads from a CDN; the schema is at /openapi.json
        redoc_url=None,
        lifespan=warm_model,
        default_response_class=SafeJSONResponse,
    )
    allowed_hosts = tuple(allowed_hosts)
    parse_allowed_hosts(allowed_hosts)  # a bad name fails here, not at the first request
    app.add_middleware(HostGuard, allowed_hosts=allowed_hosts)
    app.add_middleware(BodyLimit, limit=max_upload_bytes + MULTIPART_SLACK, timeout=body_timeout)
    app.add_middleware(NotEmbeddable)  # added last: runs first, so even a refusal carries its headers
    _add_error_handlers(app)
    api = APIRouter(dependencies=[Depends(_bearer_check(token))] if token else [], responses=ERRORS)
    limits = _Limits(max_upload_bytes, max_upload_pixels, Gate(running=decodes))
    _add_routes(api, collection, Path(upload_dir).absolute() if upload_dir else None, limits)
    quarantine = check_quarantine(quarantine) if quarantine else None  # links resolved, and refused now
    _add_review_routes(api, collection, quarantine)
    app.include_router(api)

    @app.get("/health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness, without the token: the process is up and the model is loaded."""
        return Health("ok")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def uvicorn_options(max_connections: int = MAX_CONNECTIONS) -> dict[str, Any]:
    """uvicorn's settings for serving the app: at most ``max_connections`` connections at once, a request
    on one more answered 503 at once (20,000 connections each sending an upload slowly once took every
    file descriptor the server had, and nothing was answered), idle ones closed after KEEP_ALIVE_S, and
    one without a whole request head after HEAD_TIMEOUT_S (:mod:`lookalike.server.connections`)."""
    # uvicorn refuses a request once the open connections, its own included, reach limit_concurrency
    return {"limit_concurrency": max_connections + 1, "timeout_keep_alive": KEEP_ALIVE_S,
            "http": HeadDeadlineProtocol}


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?")


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``name[:port]`` (IPv6 in brackets) -> (lower-case name, port), or None when it is not one."""
    match = _HOST.fullmatch(value.strip())
    if match is None:
        return None
    return match[1].lower(), int(match[2]) if match[2] else None


def parse_allowed_hosts(entries: Iterable[str]) -> tuple[set[str], set[tuple[str, int]]]:
    """``NAME`` (any port) and ``NAME:PORT`` entries; ValueError for anything that is not a host name."""
    any_port: set[str] = set()
    with_port: set[tuple[str, int]] = set()
    for entry in entries:
        parsed = _split_host(entry)
        if parsed is None:
            raise ValueError(f"not a host name: {entry!r} (give NAME or NAME:PORT)")
        name, port = parsed
        if port is None:
            any_port.add(name)
        else:
            with_port.add((name, port))
    return any_port, with_port


class HostGuard:
    """Answers only requests addressed to this server, and writes only from its own pages.

    *Host* (DNS rebinding: a web page whose name re-resolves to 127.0.0.1 reaches a local server with
    its own name in Host): accepted are the loopback names and the address the connection came in on,
    each with the port the server listens on, plus ``allowed_hosts``. Anything else is a 421.

    *Origin* (cross-site request forgery, which a token-less local server cannot tell from its page):
    a POST, PUT, DELETE or PATCH whose Origin is not an accepted host is a 403; without Origin, a
    ``Sec-Fetch-Site`` other than same-origin/none, or a Referer from another host, is refused too.
    Clients that send none of these (curl, scripts) are not browsers and carry no one else's authority.

    *Reads* another site's page makes (its script's fetch, an ``<img>``, a frame) are refused as well
    (:meth:`_foreign_read`): such a page cannot read the answers, but it could make the server work
    (``GET /duplicates`` searches the whole index) as often as it likes, or time them. Following a link
    here from another site (a top-level navigation) is the user's own act, and is answered.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.any_port, self.with_port = parse_allowed_hosts(allowed_hosts)

    def accepts(self, name: str, port: int | None, scope: Scope) -> bool:
        """Whether ``name:port`` (port None: the scheme's default) names this server."""
        default = 443 if scope.get("scheme") in ("https", "wss") else 80
        port = port or default
        if name in self.any_port or (name, port) in self.with_port:
            return True
        bound_host, bound_port = scope.get("server") or (None, None)
        local = set(LOOPBACK_NAMES)
        if bound_host:
            local.add(f"[{bound_host}]" if ":" in bound_host else bound_host.lower())
        return name in local and (bound_port is None or port == bound_port)

    def _from_here(self, url: str, scope: Scope) -> bool:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
            return False
        parsed = _split_host(parts.netloc)
        if parsed is None:
            return False
        name, port = parsed
        return self.accepts(name, port or (443 if parts.scheme == "https" else 80), scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        parsed = _split_host(host)
        if parsed is None or not self.accepts(*parsed, scope):
            message = (
                f"this server does not answer to host {host!r}; to allow a name, start it with "
                "--allowed-host NAME"
            )
            await SafeJSONResponse({"error": message}, status_code=421)(scope, receive, send)
            return
        if scope.get("method", "GET") in STATE_CHANGING:
            refused = self._foreign_origin(headers, scope)
        else:
            refused = self._foreign_read(headers, scope)
        if refused:
            await SafeJSONResponse({"error": refused}, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _foreign_read(self, headers: Headers, scope: Scope) -> str | None:
        """Why a read comes from another site's page, or None: a foreign Origin (browsers send one with
        a script's cross-origin fetch, never with a navigation), or a ``Sec-Fetch-Site`` from another
        site on anything but a top-level navigation (another port on localhost is another site's page
        too: ``same-site``)."""
        origin = headers.get("origin")
        if origin is not None and not self._from_here(origin, scope):
            return f"cross-site request refused: origin {origin!r} is not this server"
        site = headers.get("sec-fetch-site")
        if site is None or site in ("same-origin", "none"):
            return None
        navigation = headers.get("sec-fetch-mode") == "navigate" and headers.get("sec-fetch-dest") in (
            None, "document")
        return None if navigation else f"cross-site request refused: Sec-Fetch-Site is {site!r}"

    def _foreign_origin(self, headers: Headers, scope: Scope) -> str | None:
        """Why a state-changing request comes from another site, or None when it does not."""
        origin = headers.get("origin")
        if origin is not None:
            if not self._from_here(origin, scope):
                return f"cross-site request refused: origin {origin!r} is not this server"
            return None
        site = headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return f"cross-site request refused: Sec-Fetch-Site is {site!r}"
        referer = headers.get("referer")
        if referer is not None and not self._from_here(referer, scope):
            return "cross-site request refused: the referring page is not on this server"
        return None


class NotEmbeddable:
    """Every answer says it is for this server's own pages only (:data:`NOT_EMBEDDABLE`).

    Framed by another page (clickjacking), the page's own requests would be same-origin and pass the
    Origin check: a click made through an invisible frame could move files. So no page may frame it
    (``X-Frame-Options``, CSP ``frame-ancestors``), no other origin may embed a photo or thumbnail as an
    ``<img>`` and read its size (``Cross-Origin-Resource-Policy``), and no answer is sniffed into
    another type than the one it declares.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in NOT_EMBEDDABLE.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, marked)


class BodyLimit:
    """413 for request bodies over ``limit`` bytes: at once from Content-Length, else counted as they
    arrive; 408 for a body still arriving ``timeout`` seconds after the request came in.

    A client sending its body a byte now and then would otherwise hold its connection (and one of the
    server's ``--max-connections``) as long as it likes: the 408 closes the connection. An answer given
    before the body is in (a refusal, a 404 that never reads it) waits for the rest of it within the
    same deadline, so a client still sending reads the answer, not a reset; one still sending at the
    deadline has its connection closed too. Starlette's own limiter answers in plain text; this one
    keeps the JSON error of every other answer.
    """

    def __init__(self, app: ASGIApp, limit: int, timeout: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout
        self.too_large = f"request body larger than {limit:,} bytes"
        self.too_slow = f"request body not received within {timeout:g} s"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await JSONResponse({"error": self.too_large}, status_code=413)(scope, receive, send)
            return
        received = 0
        arriving = declared not in ("", "0") or "transfer-encoding" in headers
        deadline = anyio.current_time() + self.timeout

        async def counted() -> Message:
            nonlocal received, arriving
            if not arriving:  # the body is in: what is left to wait for is the client leaving
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()):
                message = await receive()
                arriving = message["type"] == "http.request" and message.get("more_body", False)
                received += len(message.get("body", b""))
                if received > self.limit:  # raised inside the endpoint's body parsing: FastAPI passes it on
                    raise HTTPException(413, self.too_large)
                return message
            raise HTTPException(408, self.too_slow, headers=CLOSE)

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start" and arriving:
                try:
                    while arriving:
                        await counted()
                except HTTPException as refused:  # past the limit, uvicorn discards the rest as ever
                    if refused.status_code == 408:  # still arriving at the deadline
                        MutableHeaders(scope=message).update(CLOSE)
            await send(message)

        await self.app(scope, counted, answer)


def _bearer_check(token: str):
    """A dependency refusing requests without ``Authorization: Bearer <token>`` (constant-time compare)."""
    expected = token.encode()
    scheme = HTTPBearer(auto_error=False, description="The token given to `lookalike serve --token`.")

    def check(credentials: HTTPAuthorizationCredentials | None = Depends(scheme)) -> None:  # noqa: B008
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    return check


def _add_error_handlers(app: FastAPI) -> None:
    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return SafeJSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return error(422, problems or "invalid request")

    async def expected(_: Request, exc: Exception) -> JSONResponse:
        status = next(code for kind, code in STATUSES if isinstance(exc, kind))
        message = f"not a usable image: {exc.reason}" if isinstance(exc, ImageError) else str(exc)
        retry = getattr(exc, "retry_after", None)
        return error(status, message, {"Retry-After": str(retry)} if retry is not None else None)

    app.add_exception_handler(LookalikeError, expected)
    app.add_exception_handler(Busy, expected)


@dataclass(frozen=True)
class _Limits:
    upload_bytes: int
    upload_pixels: int
    gate: Gate


def _read_upload(upload: UploadFile, limits: _Limits) -> tuple[bytes, int]:
    """The upload's bytes and its declared pixel count (0 if unknown): 413 over either limit."""
    data = upload.file.read(limits.upload_bytes + 1)
    if len(data) > limits.upload_bytes:
        raise HTTPException(413, f"upload larger than {limits.upload_bytes:,} bytes")
    size = declared_pixels(data)
    pixels = size[0] * size[1] if size else 0
    if pixels > limits.upload_pixels:
        shown = f"{size[0]} x {size[1]}" if size[1] > 1 else f"{pixels:,}"
        raise HTTPException(
            413, f"too many pixels for an upload ({shown} > {limits.upload_pixels:,}; "
            "see --max-upload-megapixels)"
        )
    return data, pixels


def _chunks(stream: BinaryIO, size: int, chunk: int = 256 * 1024) -> Iterator[bytes]:
    """At most ``size`` bytes of ``stream`` (its size when opened), closing it at the end."""
    try:
        left = size
        while left > 0:
            data = stream.read(min(chunk, left))
            if not data:
                break
            left -= len(data)
            yield data
    finally:
        stream.close()


def _add_routes(api: APIRouter, collection: Collection, upload_dir: Path | None, limits: _Limits) -> None:
    thumbnails = Thumbnails()
    gate = limits.gate

    @api.get("/info", response_model=IndexInfo, tags=["service"])
    def info() -> IndexInfo:
        """What the index holds: model, vector size, image count, index type, size on disk."""
        return collection.info()

    @api.post("/search", response_model=SearchResult, tags=["search"])
    def search_upload(
        file: Upload, k: K = 10, min_score: MinScore = None, label: LabelFilter = None
    ) -> SearchResult:
        """Reverse image search: the indexed images nearest to an uploaded one, with its labels."""
        data, pixels = _read_upload(file, limits)
        with gate.decoding(pixels * 4):
            return collection.search(data, k, min_score=min_score, label=label)

    @api.get("/images/{image_id}/similar", response_model=SearchResult, tags=["search"])
    def search_id(
        image_id: ImageId, k: K = 10, min_score: MinScore = None, label: LabelFilter = None
    ) -> SearchResult:
        """The images nearest to an indexed one (itself left out)."""
        return collection.search_id(image_id, k, min_score=min_score, label=label)

    @api.post("/classify", response_model=Classification, tags=["search"])
    def classify(
        file: Upload, k: Annotated[int, Query(ge=1, le=1000, description="How many labels.")] = 5
    ) -> Classification:
        """ImageNet labels for an uploaded image; nothing is searched or stored."""
        data, pixels = _read_upload(file, limits)
        with gate.decoding(pixels * 4):
            embedding = collection.embedder.embed(data, top_k=k)
        return Classification(embedding.labels, embedding.width, embedding.height, embedding.format)

    @api.get("/find", response_model=list[TextHit], tags=["search"])
    def find(
        q: Annotated[str, Query(min_length=1, max_length=200, description="Words, e.g. 'tabby'.")],
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> list[TextHit]:
        """Images whose predicted labels (or paths) match the words, surest first."""
        return collection.find(q, limit)

    @api.get("/images/{image_id}", response_model=Image, tags=["images"])
    def image(image_id: ImageId) -> Image:
        """An indexed image's path, size, format and labels."""
        return collection.get(image_id)

    @api.get(
        "/images/{image_id}/thumbnail",
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}},
        tags=["images"],
    )
    def thumbnail(
        image_id: ImageId, size: Annotated[int, Query(ge=16, le=1024, description="Longest side.")] = 256
    ) -> Response:
        """A JPEG of the image fitted in size x size, made on first request and cached.

        Made only from a regular file that is still the one indexed (else 410)."""
        stream, found = collection.open_indexed_file(image_id)
        with stream:
            try:
                with gate.decoding(found.width * found.height * 4):
                    jpeg = thumbnails.get(stream, size)
            except ImageError as error:
                raise StaleFile(f"the file of image {image_id} no longer decodes: {error.reason}") from None
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    @api.get(
        "/images/{image_id}/file",
        response_class=Response,
        responses={200: {"content": {"image/*": {}}}},
        tags=["images"],
    )
    def image_file(image_id: ImageId) -> Response:
        """The indexed file itself, as stored; chosen by id only (clients never name server paths).

        Served only while the path still reaches the regular file that was indexed: a file gone,
        replaced or swapped for a symlink is a 410."""
        stream, found = collection.open_indexed_file(image_id)
        try:
            size = os.fstat(stream.fileno()).st_size
        except BaseException:
            stream.close()
            raise
        return StreamingResponse(
            _chunks(stream, size),
            media_type=PILImage.MIME.get(found.format.upper(), "application/octet-stream"),
            headers={"Content-Length": str(size)},
            background=BackgroundTask(stream.close),
        )

    @api.get("/duplicates", response_model=list[Cluster], tags=["duplicates"])
    def duplicates(
        threshold: Annotated[
            float | None, Query(gt=0, le=1, description="Cosine a copy needs to its keeper [calibrated].")
        ] = None,
        policy: Annotated[
            str, Query(max_length=200, description="Which file to keep: criteria in order.")
        ] = str(DEFAULT_POLICY),
        exact_only: Annotated[bool, Query(description="Byte-identical files only (no model).")] = False,
    ) -> list[Cluster]:
        """Duplicate clusters: a keeper each and its copies, with their similarity to it."""
        return collection.duplicates(threshold, policy=policy, exact_only=exact_only)

    @api.post(
        "/images",
        response_model=Image,
        status_code=201,
        responses={403: {"model": ErrorBody}, 409: {"model": ErrorBody}},
        tags=["images"],
    )
    def add_image(file: Upload) -> Image:
        """Save an uploaded image in the server's upload folder under a new name and index it.

        Never waits for another writer (e.g. a running ``lookalike index``): then a 503 with
        Retry-After, and nothing is saved."""
        if upload_dir is None:
            raise HTTPException(403, "adding images is off: start the server with --upload-dir")
        data, pixels = _read_upload(file, limits)
        with gate.decoding(pixels * 4):
            path = save_upload(upload_dir, data, file.filename)
            try:
                summary = collection.add([path], wait=0)
                added = collection.get_by_path(path)
            except BaseException:
                path.unlink(missing_ok=True)
                raise
        if summary.failed or added is None:
            path.unlink(missing_ok=True)
            reason = summary.failures[0][1] if summary.failures else "not indexed"
            raise HTTPException(400, f"not a usable image: {reason}")
        return added


def _add_review_routes(api: APIRouter, collection: Collection, quarantine: Path | None) -> None:
    """Reviewing a duplicate cluster: another keeper, the picked copies moved, the last move undone."""

    def manifest_path(name: str) -> Path:
        if quarantine is None:
            raise HTTPException(403, "moving duplicates is off: start the server with --quarantine DIR")
        path = quarantine / name  # the name matched MANIFEST_NAME: no separator, no '..'
        try:
            regular = stat.S_ISREG(path.lstat().st_mode)
        except FileNotFoundError:
            regular = False
        if not regular:
            raise HTTPException(404, f"no manifest {name!r} in the quarantine")
        return path

    @api.get("/quarantine", response_model=QuarantineInfo, tags=["duplicates"])
    def quarantine_info() -> QuarantineInfo:
        """Whether this server moves duplicates (started with ``--quarantine``)."""
        return QuarantineInfo(quarantine is not None)

    @api.get("/duplicates/cluster", response_model=Review, tags=["duplicates"])
    def cluster(
        keeper: Annotated[int, Query(ge=1, le=2**63 - 1, description="The image to keep.")],
        member: Annotated[
            list[Annotated[int, Query(ge=1, le=2**63 - 1)]],
            Query(min_length=1, max_length=MAX_MEMBERS, description="The other images of the cluster."),
        ],
        threshold: Annotated[
            float | None, Query(gt=0, le=1, description="Cosine a copy needs to the keeper [calibrated].")
        ] = None,
    ) -> Review:
        """A cluster around another keeper: each member's similarity to it, from the stored vectors, and
        which members fall below the threshold (they are not its copies and are never moved for it)."""
        return recentre(collection, keeper, member, threshold)

    @api.post(
        "/duplicates/move",
        response_model=MoveReport,
        responses={403: {"model": ErrorBody}},
        tags=["duplicates"],
    )
    def move(request: MoveRequest) -> MoveReport:
        """Move the picked copies of a keeper to the server's quarantine, as ``duplicates --move-to`` does.

        Never the keeper (422); a copy under the threshold against this keeper, the keeper's own file
        under another name, or one changed since indexing is left alone and listed in ``problems``.
        The manifest is written ahead of each move; moved files leave the index. Never waits for another
        writer: a 503 with Retry-After, nothing moved."""
        if quarantine is None:
            raise HTTPException(403, "moving duplicates is off: start the server with --quarantine DIR")
        result, review = move_copies(collection, request.keeper, request.copies, quarantine,
                                     request.threshold)
        return MoveReport.of(result, review)

    @api.post(
        "/duplicates/undo",
        response_model=UndoReport,
        responses={403: {"model": ErrorBody}},
        tags=["duplicates"],
    )
    def undo(request: UndoRequest) -> UndoReport:
        """Put back, byte-identical, what one move put in the quarantine, and index it again (new ids).

        A file that changed in the quarantine, or whose old place is taken, stays there and is listed.
        When another writer holds the index for longer than the wait, the files are back all the same
        and are listed in ``unindexed``: the same undo later indexes them."""
        return UndoReport.of(collection.undo(manifest_path(request.manifest), wait=UNDO_WAIT_S))

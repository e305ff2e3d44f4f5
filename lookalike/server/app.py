"""The HTTP API and the web page over one open :class:`~lookalike.index.collection.Collection`.

Each endpoint is one library call and a translation of its answer or error into HTTP: the library's
result dataclasses are the response models (so the OpenAPI schema is the library's), ImageError is a
400, an unknown id a 404, and every error body is ``{"error": "..."}``. Endpoints are plain ``def``s:
Starlette runs them in its thread pool, which is what lets concurrent searches share a model batch.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from PIL import Image as PILImage
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike import __version__
from lookalike.embedder.labels import Label
from lookalike.errors import CollectionError, ImageError, LookalikeError, ModelMismatchError
from lookalike.index.collection import Collection, Image, IndexInfo, SearchResult, TextHit
from lookalike.index.duplicates import DEFAULT_POLICY, Cluster
from lookalike.server.files import Thumbnails, save_upload

STATIC = Path(__file__).resolve().parent / "static"
MULTIPART_SLACK = 64 * 1024
"""Bytes a request body may exceed the upload limit by: multipart boundaries and part headers."""
ADD_WAIT_S = 10.0
"""How long an upload waits for another writer (e.g. a running ``lookalike index``) to finish."""
PAGE_POLICY = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'"
"""The page loads nothing from anywhere else, and shows thumbnails as blob: URLs fetched with the token."""

ImageId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="An indexed image's id.")]
K = Annotated[int, Query(ge=1, le=1000, description="How many neighbours.")]
MinScore = Annotated[float | None, Query(ge=-1.0, le=1.0, description="Drop neighbours below this cosine.")]
LabelFilter = Annotated[
    str | None, Query(min_length=1, max_length=200, description="Keep neighbours whose labels match.")
]
Upload = Annotated[UploadFile, File(description="An image file (JPEG, PNG, WebP, HEIC, ...).")]


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


ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 404, 413, 422)}


def create_app(
    collection: Collection,
    *,
    token: str | None = None,
    upload_dir: str | Path | None = None,
    max_upload_bytes: int = 20 * 2**20,
) -> FastAPI:
    """The app serving ``collection``; the caller keeps it open for the app's lifetime and closes it.

    ``token``: every API request must send ``Authorization: Bearer <token>`` (the page and ``/health``
    carry no data and stay open). ``upload_dir``: where ``POST /images`` saves uploads before indexing
    them; without it that endpoint answers 403. ``max_upload_bytes``: larger uploads get a 413, counted
    while the body is read.
    """

    @asynccontextmanager
    async def warm_model(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(lambda: collection.embedder)  # load once, before the first request
        yield

    app = FastAPI(
        title="lookalike",
        version=__version__,
        summary="Reverse image search, labels and duplicates over one lookalike index.",
        docs_url=None,  # Swagger UI loads from a CDN; the schema is at /openapi.json
        redoc_url=None,
        lifespan=warm_model,
    )
    app.add_middleware(BodyLimit, limit=max_upload_bytes + MULTIPART_SLACK)
    _add_error_handlers(app)
    api = APIRouter(dependencies=[Depends(_bearer_check(token))] if token else [], responses=ERRORS)
    _add_routes(api, collection, Path(upload_dir).absolute() if upload_dir else None, max_upload_bytes)
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


class BodyLimit:
    """413 for request bodies over ``limit``: at once from Content-Length, else counted as they arrive.

    Starlette's own limiter answers in plain text; this one keeps the JSON error of every other answer.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.message = f"request body larger than {limit:,} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await JSONResponse({"error": self.message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:  # raised inside the endpoint's body parsing: FastAPI passes it on
                raise HTTPException(413, self.message)
            return message

        await self.app(scope, counted, send)


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
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        return error(422, problems or "invalid request")

    @app.exception_handler(ImageError)
    async def bad_image(_: Request, exc: ImageError) -> JSONResponse:
        return error(400, f"not a usable image: {exc.reason}")

    @app.exception_handler(LookalikeError)
    async def failed(_: Request, exc: LookalikeError) -> JSONResponse:
        return error(500, str(exc))


@contextmanager
def _known_id(image_id: int) -> Iterator[None]:
    """The collection's "no image with id" (any CollectionError but a model mismatch) as a 404."""
    try:
        yield
    except ModelMismatchError:
        raise
    except CollectionError:
        raise HTTPException(404, f"no image with id {image_id}") from None


def _read_upload(upload: UploadFile, limit: int) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"upload larger than {limit:,} bytes")
    return data


def _add_routes(api: APIRouter, collection: Collection, upload_dir: Path | None, max_upload: int) -> None:
    thumbnails = Thumbnails()

    @api.get("/info", response_model=IndexInfo, tags=["service"])
    def info() -> IndexInfo:
        """What the index holds: model, vector size, image count, index type, size on disk."""
        return collection.info()

    @api.post("/search", response_model=SearchResult, tags=["search"])
    def search_upload(
        file: Upload, k: K = 10, min_score: MinScore = None, label: LabelFilter = None
    ) -> SearchResult:
        """Reverse image search: the indexed images nearest to an uploaded one, with its labels."""
        data = _read_upload(file, max_upload)
        return collection.search(data, k, min_score=min_score, label=label)

    @api.get("/images/{image_id}/similar", response_model=SearchResult, tags=["search"])
    def search_id(
        image_id: ImageId, k: K = 10, min_score: MinScore = None, label: LabelFilter = None
    ) -> SearchResult:
        """The images nearest to an indexed one (itself left out)."""
        with _known_id(image_id):
            return collection.search_id(image_id, k, min_score=min_score, label=label)

    @api.post("/classify", response_model=Classification, tags=["search"])
    def classify(
        file: Upload, k: Annotated[int, Query(ge=1, le=1000, description="How many labels.")] = 5
    ) -> Classification:
        """ImageNet labels for an uploaded image; nothing is searched or stored."""
        embedding = collection.embedder.embed(_read_upload(file, max_upload), top_k=k)
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
        with _known_id(image_id):
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
        """A JPEG of the image fitted in size x size, made on first request and cached."""
        with _known_id(image_id):
            path = collection.get(image_id).path
        try:
            jpeg = thumbnails.get(path, size)
        except ImageError as error:
            message = f"the file of image {image_id} is gone or unreadable: {error.reason}"
            raise HTTPException(404, message) from None
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

    @api.get(
        "/images/{image_id}/file",
        response_class=FileResponse,
        responses={200: {"content": {"image/*": {}}}},
        tags=["images"],
    )
    def image_file(image_id: ImageId) -> FileResponse:
        """The indexed file itself, as stored; chosen by id only (clients never name server paths)."""
        with _known_id(image_id):
            found = collection.get(image_id)
        if not Path(found.path).is_file():
            raise HTTPException(404, f"the file of image {image_id} is gone")
        return FileResponse(found.path, media_type=PILImage.MIME.get(found.format.upper()))

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
        try:
            return collection.duplicates(threshold, policy=policy, exact_only=exact_only)
        except ValueError as error:  # an unknown keeper criterion
            raise HTTPException(422, str(error)) from None

    @api.post(
        "/images",
        response_model=Image,
        status_code=201,
        responses={403: {"model": ErrorBody}, 409: {"model": ErrorBody}},
        tags=["images"],
    )
    def add_image(file: Upload) -> Image:
        """Save an uploaded image in the server's upload folder under a new name and index it."""
        if upload_dir is None:
            raise HTTPException(403, "adding images is off: start the server with --upload-dir")
        path = save_upload(upload_dir, _read_upload(file, max_upload), file.filename)
        try:
            summary = collection.add([path], wait=ADD_WAIT_S)
        except CollectionError as error:
            path.unlink()
            if isinstance(error, ModelMismatchError):
                raise
            raise HTTPException(409, str(error)) from None
        row = collection.store.get_by_path(path, vector=False)
        if summary.failed or row is None:
            path.unlink()
            reason = summary.failures[0][1] if summary.failures else "not indexed"
            raise HTTPException(400, f"not a usable image: {reason}")
        return Image.from_row(row)

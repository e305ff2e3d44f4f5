"""A client of a running ``lookalike serve``: what ``Collection.search`` and ``lookalike.classify`` answer.

Why: a one-off ``lookalike search NEW.jpg`` spends seconds loading TensorFlow and the model before a search
of a few milliseconds; a server has them loaded. This client imports neither TensorFlow nor FAISS nor the
index (only the standard library's HTTP client and the result dataclasses), sends the picture's bytes to
``POST /search`` or ``POST /classify``, and returns the same types the local calls return, so the CLI prints
both alike. The server answers with its own index and model.

The query is always the picture's content: an image that is also indexed on the server is embedded again and
comes back as its own nearest neighbour, where a local search would use its stored vector and leave it out.

Failures map onto :mod:`lookalike.errors`: a refused or unreadable picture is the ImageError a local
decode would give (the batch goes on), an unknown id is ImageNotFound, a server that cannot be reached or
answers 502-504 is :class:`~lookalike.errors.ServerUnavailable`, any other error status a LookalikeError
with the server's one-line message.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from lookalike.embedder.images import read_bytes
from lookalike.embedder.labels import Label
from lookalike.errors import ImageError, ImageNotFound, InvalidOption, LookalikeError, ServerUnavailable
from lookalike.results import Image, Neighbour, SearchResult

TIMEOUT_S = 120.0
"""Per request: a query is well under a second on a warm server, but a queue of large uploads is not."""
IMAGE_ERROR_PREFIX = "not a usable image: "
"""How the server words a 400 for a picture it cannot decode (lookalike.server.app); then the reason."""
UNAVAILABLE = frozenset({502, 503, 504})

Source = str | Path | bytes


class Server:
    """``lookalike serve`` at ``url`` (``http://127.0.0.1:8000``); ``token`` if it was started with one."""

    def __init__(self, url: str, token: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def search(
        self, image: Source, k: int = 10, *, min_score: float | None = None, label: str | None = None
    ) -> SearchResult:
        """The indexed images nearest to a picture (a path or encoded bytes), with the picture's labels."""
        data, name = _content(image)
        answer = self._post("/search", _query(k=k, min_score=min_score, label=label), data, name)
        return _search_result(answer)

    def search_id(
        self, id: int, k: int = 10, *, min_score: float | None = None, label: str | None = None
    ) -> SearchResult:
        """The images nearest to an indexed one (itself left out)."""
        query = _query(k=k, min_score=min_score, label=label)
        try:
            return _search_result(self._request(f"/images/{id}/similar?{query}"))
        except _NotFound:
            raise ImageNotFound(id, self.url) from None

    def classify(
        self, images: Iterable[Source], k: int = 5
    ) -> Iterator[tuple[Source, list[Label] | ImageError]]:
        """Top-k labels of each picture, as :func:`lookalike.classify` yields them."""
        for source in images:
            try:
                data, name = _content(source)
                answer = self._post("/classify", _query(k=k), data, name)
            except ImageError as error:
                yield source, error
                continue
            yield source, [Label(**label) for label in answer["labels"]]

    def _post(self, path: str, query: str, data: bytes, name: str) -> Any:
        boundary = uuid.uuid4().hex
        body = b"".join([
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="query"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n", data, f"\r\n--{boundary}--\r\n".encode(),
        ])
        try:
            return self._request(f"{path}?{query}", body, f"multipart/form-data; boundary={boundary}")
        except _BadImage as error:
            raise ImageError(name, str(error)) from None

    def _request(self, path: str, body: bytes | None = None, content_type: str | None = None) -> Any:
        method = "GET" if body is None else "POST"
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise self._failure(error.code, _message(error)) from None
        except OSError as error:  # URLError, a refused connection, a timeout
            reason = getattr(error, "reason", None) or error
            raise ServerUnavailable(
                self.url, f"cannot reach the lookalike server at {self.url} ({reason}): start it with "
                "'lookalike serve', or leave out --server (and LOOKALIKE_SERVER)"
            ) from None
        except ValueError:
            raise LookalikeError(f"{self.url} did not answer as a lookalike server does (not JSON)") from None

    def _failure(self, status: int, message: str) -> LookalikeError:
        if status == 400 and message.startswith(IMAGE_ERROR_PREFIX):
            return _BadImage(message.removeprefix(IMAGE_ERROR_PREFIX))
        if status == 404:
            return _NotFound(f"the lookalike server at {self.url} answered 404: {message}")
        if status == 422:
            return InvalidOption("--server", f"the server refused the request: {message}")
        if status in UNAVAILABLE:
            return ServerUnavailable(self.url, f"the lookalike server at {self.url} is busy: {message}")
        return LookalikeError(f"the lookalike server at {self.url} answered {status}: {message}")


class _BadImage(LookalikeError):
    """The server could not decode the picture (400); becomes the ImageError of the input that was sent."""


class _NotFound(LookalikeError):
    """A 404; for ``search_id`` the ImageNotFound of that id."""


def _content(source: Source) -> tuple[bytes, str]:
    """The picture's bytes and the name its errors are reported under, as a local decode names them."""
    if isinstance(source, bytes):
        if not source:
            raise ImageError("<bytes>", "empty file")
        return source, "<bytes>"
    return read_bytes(source), os.fspath(source)


def _query(**parameters: object) -> str:
    return urllib.parse.urlencode({name: value for name, value in parameters.items() if value is not None})


def _message(error: urllib.error.HTTPError) -> str:
    """The server's ``{"error": ...}``, else the HTTP reason (a proxy's page, another program on the port)."""
    try:
        return str(json.loads(error.read())["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return str(error.reason)


def _search_result(answer: dict[str, Any]) -> SearchResult:
    return SearchResult(
        [Label(**label) for label in answer["query_labels"]],
        [Neighbour(n["rank"], n["score"], _image(n["image"])) for n in answer["neighbours"]],
        answer.get("query_id"),
    )


def _image(data: dict[str, Any]) -> Image:
    return Image(**{**data, "labels": [Label(**label) for label in data["labels"]]})

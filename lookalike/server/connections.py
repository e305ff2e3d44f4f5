"""A connection must send its request head in time, or give its slot back.

uvicorn bounds connections (``limit_concurrency``) and closes an idle kept-alive one, but it has no
deadline for the request head: a connection that opens and sends nothing, or sends a head a byte every
few seconds (slowloris; every byte cancels the keep-alive timer), held its slot for as long as the client
liked, and ``MAX_CONNECTIONS`` such sockets kept every real client out (503) for good. Here the head of
each request (the first on a connection, and each after a response) has ``HEAD_TIMEOUT_S`` from the moment
the server waits for it; a connection still without one is closed. A body has its own deadline
(``BodyLimit`` in app.py)."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_S = 10.0
"""How long a connection may take to send a whole request head: a head is a few hundred bytes, sent at
once by every client there is."""


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request head (named explicitly, so an installed
    httptools, which uvicorn would otherwise prefer, cannot drop the deadline)."""

    head_timeout = HEAD_TIMEOUT_S
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_late, self.cycle)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self, cycle_when_waiting: object) -> None:
        """Close the connection unless a request came since the wait began (a new request cycle) or one is
        still being answered (a pipelined request, taken up as the one before it was answered)."""
        self._head_timer = None
        answering = self.cycle is not None and not self.cycle.response_complete
        if self.cycle is cycle_when_waiting and not answering and not self.transport.is_closing():
            self.transport.close()

"""Slow and idle clients: uvicorn's HTTP/1.1 protocol with a request-head deadline and a socket cap.

uvicorn only times out a connection *between* requests (``timeout_keep_alive``): a client that
sends half a request head and then nothing (slowloris) keeps its socket, and a few thousand such
clients use up the process's file descriptors. :class:`GuardedH11Protocol` adds:

- a header timeout: the request line and headers must be complete ``header_timeout`` seconds
  (default 10) after the connection opens or the next request starts; otherwise the client gets a
  bare 408 and the socket is closed;
- a connection cap: beyond ``max_connections`` open sockets (default 512) a new connection gets a
  bare 503 and is closed at once, so the server keeps descriptors for the clients it is serving.

The request *body* is capped and has its own deadline in the app (``max_request_bytes`` and
``body_timeout``): :class:`BodySizeLimit`, an ASGI middleware, answers 413 and 408. And idle
keep-alive connections close after uvicorn's ``timeout_keep_alive`` (5 s). :func:`cvkit.serving._server.serve` and
:class:`~cvkit.serving._server.ThreadedServer` use this protocol.

Example:
    >>> import uvicorn
    >>> config = uvicorn.Config(None, http=guarded_protocol(header_timeout=5, max_connections=100))
    >>> config.http.keywords
    {'header_timeout': 5, 'max_connections': 100}
"""
from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from cvkit._validation import Interval, check_param

__all__ = ["GuardedH11Protocol", "guarded_protocol", "BodySizeLimit", "DEFAULT_HEADER_TIMEOUT",
           "DEFAULT_MAX_CONNECTIONS", "DEFAULT_BODY_TIMEOUT"]

#: Seconds a client has to send a complete request line and headers.
DEFAULT_HEADER_TIMEOUT = 10.0

#: Most open connections per server process; more are answered 503 and closed.
DEFAULT_MAX_CONNECTIONS = 512

#: Seconds a request body may take to arrive once its headers are in (408 after): 10 MB in 30 s
#: needs under 3 Mbit/s.
DEFAULT_BODY_TIMEOUT = 30.0



def _bare_answer(status: bytes, text: bytes, *headers: bytes) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection (written without h11's state machine)."""
    lines = [b"HTTP/1.1 " + status, b"content-type: text/plain", b"connection: close", *headers,
             b"content-length: %d" % (len(text) + 2)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + text + b"\r\n"


_TIMEOUT_ANSWER = _bare_answer(b"408 Request Timeout", b"request headers not received in time")
_BUSY_ANSWER = _bare_answer(b"503 Service Unavailable", b"too many connections; retry soon",
                            b"retry-after: 1")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for request heads and a cap on open connections."""

    def __init__(self, *args: Any, header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.logger.warning("refused a connection: %d open (max_connections)", len(self.connections) - 1)
            transport.write(_BUSY_ANSWER)
            transport.close()
            return
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _watch_head(self) -> None:
        """Arm the deadline while a request head is awaited or half-read; disarm once it is in.

        An idle keep-alive connection (no byte of a next request yet) is left to uvicorn's own
        keep-alive timer, so the deadline starts with the first byte of the next request.
        """
        if self.transport.is_closing():
            self._cancel_head_timer()
        elif self.conn.their_state is h11.IDLE:
            if self._head_timer is None and (self.cycle is None or self.conn.trailing_data[0]):
                self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)
        else:
            self._cancel_head_timer()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info("closed a connection whose request headers took over %gs", self.header_timeout)
            self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()


def guarded_protocol(header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                     max_connections: int = DEFAULT_MAX_CONNECTIONS) -> Callable[..., GuardedH11Protocol]:
    """The ``http=`` value for ``uvicorn.Config``/``uvicorn.run``: :class:`GuardedH11Protocol` with
    these limits (a picklable partial, so it reaches every worker process)."""
    check_param("header_timeout", header_timeout, [Interval(float, 0, None, closed="neither")])
    check_param("max_connections", max_connections, [Interval(int, 1, None)])
    return functools.partial(GuardedH11Protocol, header_timeout=header_timeout,
                             max_connections=max_connections)


# ---------------------------------------------------------------------- request size limit
class BodySizeLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413 before the app sees them.

    A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted as it
    arrives. The body is drained (not stored) up to 8x the limit so the client reads the 413 cleanly.
    A body that has not fully arrived ``timeout`` seconds after the headers is answered with 408
    (a slow client cannot hold a request open for ever).
    """

    def __init__(self, app: Callable, max_bytes: int, timeout: float = DEFAULT_BODY_TIMEOUT):
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[dict]],
                       send: Callable[[dict], Awaitable[None]]) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout):
                chunks = await self._read(scope, receive, send)
        except TimeoutError:
            await _send_json(send, 408, {"detail": f"request body not received within "
                                                   f"{self.timeout:g} s"})
            return
        if chunks is None:
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, scope: dict, receive: Callable, send: Callable) -> list[bytes] | None:
        """The body's chunks, or None once a refusal has been sent (or the client left)."""
        declared = None
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, {"detail": "invalid Content-Length header"})
                    return None
        if declared is not None and declared > self.max_bytes:
            await self._drain(receive, declared)
            await self._too_large(send, declared)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                chunks.clear()
                if message.get("more_body", False):
                    size = await self._drain(receive, None, size)
                await self._too_large(send, size)
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                return chunks

    async def _drain(self, receive: Callable, declared: int | None, seen: int = 0) -> int:
        cap = 8 * self.max_bytes
        if declared is not None and declared > cap:
            return seen  # do not read an absurd body; the connection will be closed
        while seen <= cap:
            message = await receive()
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return seen

    async def _too_large(self, send: Callable, size: int) -> None:
        mb = self.max_bytes / (1024 * 1024)
        await _send_json(send, 413, {"detail": f"request body too large: {size} bytes; the limit is "
                                               f"{self.max_bytes} bytes ({mb:g} MB)"})


async def _send_json(send: Callable, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

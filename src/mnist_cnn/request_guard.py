"""Request limits applied before any parsing (`RequestGuard`, pure ASGI middleware): a byte cap
on the body, a deadline for the body to arrive and a bound on requests in flight, with the JSON
error response they send.

A refusal must reach the client. A server that answers 413 and closes while the client is
still sending makes the client see a connection reset instead (curl with `Expect:` off,
Python's urllib and browsers send the whole body before reading). So an over-cap body is read
and thrown away, up to a bound, before the 413 goes out with `Connection: close`; a client that
sent `Expect: 100-continue` gets its 413 at once and sends nothing.
"""

from __future__ import annotations

import asyncio
import time

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A 12-megapixel phone JPEG is 3-8 MB and a PNG screenshot of a 4K screen up to ~15 MB; 20 MB
# takes both with room for multipart or base64 overhead (base64 adds a third, so a base64
# JSON upload holds up to a 15 MB picture).
DEFAULT_MAX_BODY_BYTES = 20_000_000
# Time for the whole body to arrive, from the first byte wanted: 20 MB at 8 Mbit/s (a slow
# mobile uplink) takes 20 s. A body that has not arrived by then (a Content-Length larger than
# what is sent, a client stalled) gets 408 instead of holding a slot for ever.
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0
# An over-cap body is read and discarded up to this many bytes so that the client can finish
# sending and read its 413 (a 50 MB video picked by mistake included); past it the connection
# is closed: a client sending more than that is not a user with a big photo.
DRAIN_MAX_BYTES = 128 * 1024 * 1024
DEFAULT_MAX_IN_FLIGHT = 64  # /predict requests admitted at once; more get 503 at once
RETRY_AFTER_SECONDS = 1


def error_response(
    status: int, detail: str, *, retry: bool = False, close: bool = False
) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if retry else {}
    if close:
        headers["Connection"] = "close"
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class _BodyTimeout(Exception):
    pass


class _Disconnected(Exception):
    pass


def _expects_continue(expect: bytes | None) -> bool:
    """Whether the client waits for "100 Continue" before it sends the body."""
    return expect is not None and expect.strip().lower() == b"100-continue"


class RequestGuard:
    """Pure ASGI middleware for the model's paths: byte cap, body deadline and in-flight bound,
    before any parsing.

    The body is read here (counting bytes, so chunked uploads are capped too) and replayed to
    the app; a request past the cap, too slow, or over the in-flight bound never reaches it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: frozenset[str],
        max_body_bytes: int,
        max_in_flight: int,
        body_timeout: float = DEFAULT_BODY_TIMEOUT_SECONDS,
    ) -> None:
        self.app = app
        self.paths = paths
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.body_timeout = body_timeout
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and not length.strip().isdigit():
            await error_response(400, "invalid Content-Length header", close=True)(
                scope, receive, send
            )
            return
        if self.in_flight >= self.max_in_flight:
            # The body is read and dropped first, as for a 413: a client still sending a
            # large body when the server closes gets a reset instead of the 503 (10 of 10
            # uploads of 1 MB or more did). A client that waits for 100-continue sends none.
            if not _expects_continue(headers.get(b"expect")):
                try:
                    await self._drain(receive, time.monotonic() + self.body_timeout)
                except _Disconnected:
                    return
            busy = f"server busy ({self.max_in_flight} requests in flight); retry shortly"
            await error_response(503, busy, retry=True, close=True)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self._guarded(scope, receive, send, length, headers.get(b"expect"))
        finally:
            self.in_flight -= 1

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, length: bytes | None, expect: bytes | None
    ) -> None:
        too_large = error_response(
            413, f"request body over {self.max_body_bytes} bytes", close=True
        )
        deadline = time.monotonic() + self.body_timeout
        try:
            if length is not None and int(length) > self.max_body_bytes:
                if not _expects_continue(expect):
                    await self._drain(receive, deadline)
                await too_large(scope, receive, send)
                return
            body = bytearray()
            more = True
            while more:
                chunk, more = await self._next_chunk(receive, deadline)
                body += chunk
                if len(body) > self.max_body_bytes:
                    await self._drain(receive, deadline, already=len(body), more=more)
                    await too_large(scope, receive, send)
                    return
        except _BodyTimeout:
            slow = f"request body not received within {self.body_timeout:g} s"
            await error_response(408, slow, close=True)(scope, receive, send)
            return
        except _Disconnected:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _next_chunk(receive: Receive, deadline: float) -> tuple[bytes, bool]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _BodyTimeout
        try:  # a timeout scope, not wait_for: no extra task per chunk on every request
            async with asyncio.timeout(remaining):
                message = await receive()
        except TimeoutError:
            raise _BodyTimeout from None
        if message["type"] == "http.disconnect":
            raise _Disconnected
        return message.get("body", b""), message.get("more_body", False)

    async def _drain(
        self, receive: Receive, deadline: float, already: int = 0, more: bool = True
    ) -> None:
        """Read and discard the rest of the body, up to DRAIN_MAX_BYTES in all; a body still
        arriving at the deadline or past the bound is left unread (the response closes)."""
        received = already
        try:
            while more and received <= DRAIN_MAX_BYTES:
                chunk, more = await self._next_chunk(receive, deadline)
                received += len(chunk)
        except _BodyTimeout:
            return

"""Request limits applied before any parsing: a byte cap on the body and a bound on requests
in flight (`RequestGuard`, pure ASGI middleware), and the JSON error response they send."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 2_000_000
DEFAULT_MAX_IN_FLIGHT = 64  # /predict requests admitted at once; more get 503 at once
RETRY_AFTER_SECONDS = 1


def error_response(status: int, detail: str, *, retry: bool = False) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if retry else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


class RequestGuard:
    """Pure ASGI middleware for the model's paths: byte cap and in-flight bound, before any parsing.

    The body is read here (counting bytes, so chunked uploads are capped too) and replayed to
    the app; a request past the cap or over the in-flight bound never reaches the app.
    """

    def __init__(
        self, app: ASGIApp, *, paths: frozenset[str], max_body_bytes: int, max_in_flight: int
    ) -> None:
        self.app = app
        self.paths = paths
        self.max_body_bytes = max_body_bytes
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        too_large = f"request body over {self.max_body_bytes} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and not length.strip().isdigit():
            await error_response(400, "invalid Content-Length header")(scope, receive, send)
            return
        if length is not None and int(length) > self.max_body_bytes:
            await error_response(413, too_large)(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            busy = f"server busy ({self.max_in_flight} requests in flight); retry shortly"
            await error_response(503, busy, retry=True)(scope, receive, send)
            return
        self.in_flight += 1
        try:
            body = bytearray()
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body += message.get("body", b"")
                if len(body) > self.max_body_bytes:
                    await error_response(413, too_large)(scope, receive, send)
                    return
                if not message.get("more_body", False):
                    break
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}

            await self.app(scope, replay, send)
        finally:
            self.in_flight -= 1

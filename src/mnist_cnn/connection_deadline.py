"""A deadline and a size bound for each request head: connections that open and send nothing,
trickle a request's first lines (slowloris) or send endless headers are closed instead of
held for ever.

uvicorn closes an idle keep-alive connection after a response (`timeout_keep_alive`), but a
connection that has sent no complete request head yet has no timer at all: 100 such stayed
open for as long as their clients liked (benchmarks/README.md, "Hostile but valid-looking
input"), each holding a file descriptor. The app cannot see them (ASGI starts with a whole
head), so the deadline lives in uvicorn's HTTP protocol: `HeadDeadlineProtocol` is the one
uvicorn would pick (httptools where installed, else h11) with the timer added.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.auto import AutoHTTPProtocol

# Seconds a connection may take, from opening or from the first byte of its next request, to
# deliver that request's whole head (request line and headers, a few hundred bytes): generous
# for any link a person uses, short enough that abandoned sockets do not pile up.
HEAD_TIMEOUT_SECONDS = 10.0
# Bytes a request head may take. httptools sets no bound: one 50 MB header was accepted, and
# eight 40 MB ones at once took a worker from 162 to 527 MB. 64 KiB is eight times h11's own
# bound (16 KiB) and far above any browser's request head (a few KB with cookies).
MAX_HEAD_BYTES = 64 * 1024
_TOO_LARGE_TEXT = f"request head over {MAX_HEAD_BYTES} bytes\n".encode()
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\n"
    + f"connection: close\r\ncontent-length: {len(_TOO_LARGE_TEXT)}\r\n\r\n".encode()
    + _TOO_LARGE_TEXT
)


class HeadDeadlineProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol; a connection with no request in progress whose next request
    head is not complete `head_timeout` seconds after the connection opened (or after that
    request's first byte), or has taken more than MAX_HEAD_BYTES, is closed (the latter with
    a 431). A request whose head arrived is never cut by this: its body has the app's own
    deadline and byte cap (request_guard.py)."""

    head_timeout = HEAD_TIMEOUT_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # bytes received since the last request head was complete
        self._arm()

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._cycle_when_armed = self.cycle
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_overdue)

    def _head_overdue(self) -> None:
        self._head_timer = None
        no_new_head = self.cycle is self._cycle_when_armed
        if no_new_head and self._between_requests() and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        waiting, before = self._between_requests(), self.cycle
        if waiting and self._head_timer is None:
            self._arm()  # the first bytes of a next request: its head must follow in time
        super().data_received(data)
        if not waiting:  # a request's body, or bytes sent while its answer is on its way
            return
        if self.cycle is not before:  # a head was completed in these bytes
            self._head_bytes = 0
            return
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self.transport.write(HEAD_TOO_LARGE)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

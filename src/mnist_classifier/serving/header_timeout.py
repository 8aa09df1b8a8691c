"""uvicorn's HTTP protocol with a deadline on each request's headers (limits.header_timeout_s).

uvicorn times out an idle keep-alive connection and our app times out a slow body (upload_timeout_s), but
nothing bounds the headers: a client that opens a connection and sends one header byte every few seconds
(slowloris) holds a socket for ever, and a few thousand of them use up the server's file descriptors. The
clock starts when a connection opens and again when a response is finished; the headers must be complete
before it runs out, or the client gets 408 and the connection is closed, as nginx does (client_header_timeout).
"""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class for uvicorn.Config(http=...), which builds one per connection, with this deadline."""
    return type(HeaderTimeoutProtocol.__name__, (HeaderTimeoutProtocol,), {"header_timeout_s": seconds})


class HeaderTimeoutProtocol(HttpToolsProtocol):
    header_timeout_s: ClassVar[float] = 10.0
    header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._stop_header_clock()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        next_request_waiting = bool(self.pipeline)  # its headers are in already
        super().on_response_complete()
        if not next_request_waiting and not self.transport.is_closing():
            self._start_header_clock()

    def _start_header_clock(self) -> None:
        self._stop_header_clock()
        self.header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _stop_header_clock(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _headers_too_slow(self) -> None:
        self.header_deadline = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return
        message = (
            f"the request's headers did not arrive within {self.header_timeout_s:g} s "
            "(limits.header_timeout_s); send the whole request at once"
        )
        body = json.dumps({"error": message}).encode()
        head = f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        self.transport.write(head.encode() + b"connection: close\r\n\r\n" + body)
        self.transport.close()

"""uvicorn's HTTP protocol with deadlines on slow clients: their headers (limits.header_timeout_s) and
their reading of our replies (limits.reply_timeout_s).

uvicorn times out an idle keep-alive connection and our app times out a slow body (upload_timeout_s), but
nothing else: a client that sends one header line every few seconds (slowloris), or that pipelines
thousands of requests and never reads the replies (the server's write then waits on it), holds a socket for
ever, and a few thousand of them use up the server's file descriptors.
- Headers: the clock starts when a connection opens and again when a reply is finished; the headers must be
  complete before it runs out, or the client gets 408 and the connection is closed, as nginx does
  (client_header_timeout).
- Replies: when the client stops taking a reply (the socket's buffers are full and uvicorn pauses writing),
  it must take more within reply_timeout_s, or the connection is dropped (nginx's send_timeout).
"""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def with_deadlines(header_timeout_s: float, reply_timeout_s: float) -> type[SlowClientProtocol]:
    """The protocol class for uvicorn.Config(http=...), which builds one per connection, with these deadlines."""
    deadlines = {"header_timeout_s": header_timeout_s, "reply_timeout_s": reply_timeout_s}
    return type(SlowClientProtocol.__name__, (SlowClientProtocol,), deadlines)


class SlowClientProtocol(HttpToolsProtocol):
    header_timeout_s: ClassVar[float] = 10.0
    reply_timeout_s: ClassVar[float] = 10.0
    header_deadline: asyncio.TimerHandle | None = None
    reply_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self.header_deadline = _stopped(self.header_deadline)
        self.reply_deadline = _stopped(self.reply_deadline)
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self.header_deadline = _stopped(self.header_deadline)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        next_request_waiting = bool(self.pipeline)  # its headers are in already
        super().on_response_complete()
        if not next_request_waiting and not self.transport.is_closing():
            self._start_header_clock()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.reply_deadline is None:
            self.reply_deadline = self.loop.call_later(self.reply_timeout_s, self._reply_not_taken)

    def resume_writing(self) -> None:
        self.reply_deadline = _stopped(self.reply_deadline)
        super().resume_writing()

    def _reply_not_taken(self) -> None:
        self.reply_deadline = None
        self.transport.abort()  # closing would wait to send what the client does not take

    def _start_header_clock(self) -> None:
        _stopped(self.header_deadline)
        self.header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _headers_too_slow(self) -> None:
        self.header_deadline = None  # the clock never runs while a request is in progress: see above
        if self.transport.is_closing():
            return
        message = (
            f"the request's headers did not arrive within {self.header_timeout_s:g} s "
            "(limits.header_timeout_s); send the whole request at once"
        )
        body = json.dumps({"error": message}).encode()
        head = f"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        self.transport.write(head.encode() + b"connection: close\r\n\r\n" + body)
        self.transport.close()


def _stopped(deadline: asyncio.TimerHandle | None) -> asyncio.TimerHandle | None:
    """Cancels a deadline that is set; returns the None to store in its place."""
    if deadline is not None:
        deadline.cancel()
    return None

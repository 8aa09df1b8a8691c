"""Uploads bounded before they are read: an announced Content-Length over the limit is refused at once; a
body without one (chunked) is read chunk by chunk and cut off at the limit; a sender slower than the
deadline is cut off too. Nothing larger than the limit is ever held in memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

RETRY_AFTER = {"Retry-After": "1"}


@dataclass
class Refused(Exception):
    """An HTTP answer other than 200: its status, the message for the client, extra headers."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


async def read_body(request: Request, limit: int, timeout_s: float) -> bytearray:
    announced = request.headers.get("content-length")
    if announced is not None:
        if not announced.isdigit():
            raise Refused(400, f"Content-Length must be a number of bytes, got {announced!r}")
        if int(announced) > limit:
            raise Refused(
                413, f"the upload is {int(announced):,} bytes, over the limit of {limit:,} (limits.max_upload_bytes)"
            )
    body = bytearray()
    chunks = request.stream().__aiter__()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), deadline - loop.time())
        except StopAsyncIteration:
            break
        except ClientDisconnect:  # nobody is left to answer; a 400 keeps it out of the server's error log
            raise Refused(400, "the client closed the connection before the upload ended") from None
        except asyncio.TimeoutError:
            message = f"the upload took longer than {timeout_s:g} s (upload_timeout_s); send it faster"
            raise Refused(408, message) from None
        if len(body) + len(chunk) > limit:
            raise Refused(413, f"the upload is over the limit of {limit:,} bytes (limits.max_upload_bytes)")
        body += chunk
    return body  # the bytearray itself: a raw picture is decoded from it without another copy


async def pictures_in(request: Request, body: bytearray, max_pictures: int) -> list[tuple[str, bytes | bytearray]]:
    """(name, bytes) per picture: each file field of a multipart form, or the raw body as one picture."""
    media_type, _ = parse_options_header(request.headers.get("content-type"))  # as Starlette reads it: any case
    if media_type != b"multipart/form-data":
        return [("body", body)] if body else []

    async def replay() -> dict[str, object]:  # the form is parsed from the body already read (and bounded)
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=max_pictures, max_fields=max_pictures)
    except Exception as err:  # python-multipart's and Starlette's parse errors
        raise Refused(400, f"the multipart form cannot be read ({err})") from err
    pictures: list[tuple[str, bytes | bytearray]] = []
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            pictures.append((value.filename or name, await value.read()))
    await form.close()
    return pictures

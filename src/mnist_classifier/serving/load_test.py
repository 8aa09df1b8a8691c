"""A bounded load test of a running server (127.0.0.1): `clients` keep-alive connections each send one
picture per request to POST /predict, back to back, until `requests` have been answered or `max_s` has
passed; one more connection asks GET /health every `health_every_s`. The benchmark adds its rows from it,
and the tests run it at a small scale.

The client is plain asyncio streams rather than an HTTP library: on two cores the client shares the CPU
with the server, and a request costs it a few microseconds this way instead of a millisecond.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    predictions_per_s: float
    p50_ms: float
    p95_ms: float
    health_p95_ms: float
    health_requests: int
    server_rss_mb: list[float] = field(default_factory=list)  # sampled during the run, when a pid is given
    first_error: str = ""


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return status, await reader.readexactly(length)


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def _percentile_ms(seconds: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(seconds) * 1000, q)), 1) if seconds else float("nan")


def _result(
    latencies: list[float], health: list[float], errors: list[str], rss: list[float], seconds: float
) -> LoadResult:
    return LoadResult(
        requests=len(latencies),
        errors=len(errors),
        seconds=round(seconds, 2),
        predictions_per_s=round(len(latencies) / seconds, 1),
        p50_ms=_percentile_ms(latencies, 50),
        p95_ms=_percentile_ms(latencies, 95),
        health_p95_ms=_percentile_ms(health, 95),
        health_requests=len(health),
        server_rss_mb=rss,
        first_error=errors[0] if errors else "",
    )


async def _load(
    url: str, picture: bytes, clients: int, requests: int, max_s: float, health_every_s: float, pid: int | None
) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = f"Host: {host}:{port}\r\nConnection: keep-alive\r\n"
    predict = (
        f"POST /predict HTTP/1.1\r\n{head}Content-Type: image/png\r\nContent-Length: {len(picture)}\r\n\r\n"
    ).encode()
    predict += picture
    health = f"GET /health HTTP/1.1\r\n{head}\r\n".encode()
    latencies: list[float] = []
    health_latencies: list[float] = []
    rss: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    deadline = start + max_s
    sent = 0

    async def client() -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while sent < requests and time.perf_counter() < deadline:
                sent += 1
                began = time.perf_counter()
                status, body = await _exchange(reader, writer, predict)
                latencies.append(time.perf_counter() - began)
                if status != 200 or json.loads(body)["predictions"][0]["status"] != "ok":
                    errors.append(f"{status} {body[:200]!r}")
        finally:
            writer.close()

    async def monitor(workers: asyncio.Future[list[None]]) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while not workers.done():
                began = time.perf_counter()
                status, _ = await _exchange(reader, writer, health)
                health_latencies.append(time.perf_counter() - began)
                if status != 200:
                    errors.append(f"/health {status}")
                if pid is not None:
                    rss.append(round(_rss_mb(pid), 1))
                await asyncio.sleep(health_every_s)
        finally:
            writer.close()

    workers = asyncio.gather(*(client() for _ in range(clients)))
    watcher = asyncio.create_task(monitor(workers))
    try:
        await workers
    except (OSError, asyncio.IncompleteReadError, ValueError) as err:
        errors.append(f"{type(err).__name__}: {err}")
    await watcher
    return _result(latencies, health_latencies, errors, rss, time.perf_counter() - start)


def run_load(
    url: str,
    picture: bytes,
    clients: int = 32,
    requests: int = 10_000,
    max_s: float = 120.0,
    health_every_s: float = 0.05,
    pid: int | None = None,
) -> LoadResult:
    """Load `url` (a server on this machine: its RSS is read from /proc when `pid` is given)."""
    if urlsplit(url).hostname not in ("127.0.0.1", "localhost") or (
        pid is not None and not Path(f"/proc/{pid}").exists()
    ):
        raise ValueError(f"run_load loads a server on this machine only (127.0.0.1, with its pid), got {url}")
    return asyncio.run(_load(url, picture, clients, requests, max_s, health_every_s, pid))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(
    command: list[str], url: str, ready_within_s: float = 120, **popen: Any
) -> Iterator[subprocess.Popen[str]]:
    """`command` (a serve.py) started in a subprocess; yields it once `url`/health says ready, and stops
    it (SIGTERM) at the end."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
    deadline = time.monotonic() + ready_within_s
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}: {process.communicate()[0][-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not ready within {ready_within_s:g} s")
            try:
                with urllib.request.urlopen(url + "health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)

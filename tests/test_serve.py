"""serve.py as users and programs meet it: the JSON API, /health, upload limits (announced, chunked, slow),
the in-flight limit, a small load test, an ONNX model served without torch, a clean shutdown, and digits
drawn on the page in a real (headless) Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import onnx
import pytest
import uvicorn
from browser import CHROMEDRIVER, CHROMIUM, chrome
from conftest import REPO, needs_tool
from drawn_digits import STROKES, render
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from starlette.requests import Request

from mnist_classifier.data.pictures import read_digit
from mnist_classifier.errors import ConfigValueError
from mnist_classifier.models.onnx_model import INPUT_NAME, OUTPUT_NAMES, OnnxModel
from mnist_classifier.serving.app import Limits, create_app
from mnist_classifier.serving.decoders import default_processes
from mnist_classifier.serving.load_test import free_port, run_load, running_server
from mnist_classifier.serving.server import serve as serve_task
from mnist_classifier.serving.uploads import Refused, read_body

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement

CANVAS = 280
UPLOAD_LIMIT, IN_FLIGHT, UPLOAD_TIMEOUT, HEADER_TIMEOUT, REPLY_TIMEOUT = 1_000_000, 4, 1, 2, 2
# serve.py as `python serve.py ...`, reporting at exit which of torch and Lightning it had imported
REPORT_IMPORTS = (
    "import atexit, runpy, sys; "
    "atexit.register(lambda: print('imported:', [m for m in ('torch', 'lightning') if m in sys.modules], flush=True)); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def tiny_onnx(path: Path) -> Path:
    """A model with export.py's contract (pixels in, probabilities and logits out), built without torch."""
    weights = np.random.default_rng(0).normal(0, 0.1, (784, 10)).astype(np.float32)
    helper = onnx.helper
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", [INPUT_NAME], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], [OUTPUT_NAMES[1]]),
            helper.make_node("Softmax", [OUTPUT_NAMES[1]], [OUTPUT_NAMES[0]], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, [None, 1, 28, 28])],
        [helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [None, 10]) for name in OUTPUT_NAMES],
        [onnx.numpy_helper.from_array(weights, "weights")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


def serve(*args: str, run_dir: Path, **popen: Any) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`python serve.py ...` in a subprocess, as a user starts it; yields its URL once /health says ready."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PROJECT_ROOT": str(REPO)}
    command = [sys.executable, "-c", REPORT_IMPORTS, str(REPO / "serve.py"), *args, f"port={port}",
               f"hydra.run.dir={run_dir}"]  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    with running_server(command, url, cwd=REPO, env=env, **popen) as process:
        yield url, process


@pytest.fixture(scope="module")
def onnx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    folder = tmp_path_factory.mktemp("serve")
    limits = [f"limits.max_upload_bytes={UPLOAD_LIMIT}", f"limits.max_in_flight={IN_FLIGHT}",
              f"limits.upload_timeout_s={UPLOAD_TIMEOUT}", f"limits.header_timeout_s={HEADER_TIMEOUT}",
              f"limits.reply_timeout_s={REPLY_TIMEOUT}"]  # fmt: skip
    yield from serve(f"model_path={tiny_onnx(folder / 'tiny.onnx')}", *limits, run_dir=folder / "run")


@pytest.fixture
def url(onnx_server: tuple[str, subprocess.Popen[str]]) -> str:
    return onnx_server[0]


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def connect(url: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/"))), timeout=10)
    return sock


def upload_head(headers: str) -> bytes:
    return f"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\n{headers}\r\n".encode()


def status_of(sock: socket.socket) -> tuple[int, str]:
    """The status and the whole answer read from a raw connection (the server closes it after refusing)."""
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    return int(answer.split(b" ", 2)[1]), answer.decode("latin-1")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_page_is_self_contained(url: str) -> None:
    page = httpx.get(url).text
    assert '<canvas id="pad"' in page and 'id="clear"' in page and 'id="bars"' in page
    assert "http://" not in page and "https://" not in page, "works offline: no assets from the internet"


def test_one_picture_as_the_body(url: str) -> None:
    answer = httpx.post(url + "predict", content=png(render(4)), headers={"Content-Type": "image/png"})
    assert answer.status_code == 200
    (row,) = answer.json()["predictions"]
    assert row["status"] == "ok" and len(row["probabilities"]) == 10 and abs(sum(row["probabilities"]) - 1) < 1e-3
    assert row["digit"] == max(range(10), key=lambda d: row["probabilities"][d])
    seen = httpx.post(url + "predict?image=true", content=png(render(4))).json()["predictions"][0]["image"]
    assert seen.startswith("data:image/png;base64,"), "the page shows the 28x28 picture the model saw"


def test_many_pictures_as_a_form_each_with_its_status(url: str) -> None:
    files = [
        ("a", ("four.png", png(render(4)), "image/png")),
        ("b", ("junk.png", b"not a picture", "image/png")),
        ("c", ("blank.png", png(Image.new("L", (280, 280), 255)), "image/png")),
        ("d", ("bomb.png", png(Image.new("L", (5000, 5000), 255)), "image/png")),
        (
            "e",
            (
                "gray16.png",
                png(Image.fromarray((np.asarray(render(7), np.uint16) * 200 + 8000).astype(np.uint16))),
                "image/png",
            ),
        ),
    ]
    answer = httpx.post(url + "predict", files=files)
    assert answer.status_code == 200
    rows = answer.json()["predictions"]
    assert [row["name"] for row in rows] == ["four.png", "junk.png", "blank.png", "bomb.png", "gray16.png"]
    statuses = [row["status"] for row in rows]
    # the status texts of predict.py's predictions.csv
    assert statuses[:3] == ["ok", "not an image (PNG, JPEG, BMP, GIF, TIFF or WebP)", "blank image: no ink found"]
    assert statuses[3].startswith("image too large: 5000x5000 pixels") and statuses[4] == "ok", "16-bit keeps its ink"
    assert statuses[3].endswith("(limits.max_pixels)"), "the key that sets serve.py's limit"
    assert rows[1]["digit"] is None and rows[1]["probabilities"] is None


@pytest.mark.parametrize("form_type", ["multipart/form-data", "Multipart/Form-Data"])  # media types have no case
def test_requests_without_a_picture_are_refused(form_type: str, url: str) -> None:
    assert httpx.post(url + "predict", content=b"").status_code == 400
    form = b'--x\r\nContent-Disposition: form-data; name="note"\r\n\r\nno file here\r\n--x--\r\n'
    text_only = httpx.post(url + "predict", content=form, headers={"Content-Type": f"{form_type}; boundary=x"})
    assert text_only.status_code == 400 and "no picture" in text_only.json()["error"]


def test_an_announced_upload_over_the_limit_is_refused_before_it_is_read(url: str) -> None:
    with connect(url) as sock:
        began = time.monotonic()
        sock.sendall(upload_head("Content-Length: 200000000\r\n"))  # and not one byte of it
        status, answer = status_of(sock)
    assert status == 413 and "over the limit" in answer and time.monotonic() - began < 5
    assert "(limits.max_upload_bytes)" in answer


def test_a_chunked_upload_is_cut_off_at_the_limit(url: str) -> None:
    chunk = b"x" * 65536
    sent = 0
    with connect(url) as sock:
        sock.sendall(upload_head("Transfer-Encoding: chunked\r\n"))
        while sent < 50 * UPLOAD_LIMIT and not select.select([sock], [], [], 0)[0]:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        status, _ = status_of(sock)
    assert status == 413 and sent < 20 * UPLOAD_LIMIT, "refused at the limit (and socket buffers), not at the end"


def test_a_slow_sender_times_out(url: str) -> None:
    with connect(url) as sock:
        sock.sendall(upload_head("Content-Length: 1000\r\n") + b"x" * 10)
        began = time.monotonic()
        status, answer = status_of(sock)
    assert status == 408 and "upload_timeout_s" in answer
    assert UPLOAD_TIMEOUT - 0.2 < time.monotonic() - began < UPLOAD_TIMEOUT + 5


def trickle_headers(sock: socket.socket, head: bytes) -> tuple[int, str, float]:
    """Sends `head`, then one header line every 0.25 s until the server answers; the status, answer and seconds."""
    began = time.monotonic()
    sock.sendall(head)
    for line in itertools.count():
        if select.select([sock], [], [], 0.25)[0] or time.monotonic() - began > HEADER_TIMEOUT + 10:
            break
        with contextlib.suppress(OSError):
            sock.sendall(b"X-Slow-%d: 1\r\n" % line)
    status, answer = status_of(sock)
    return status, answer, time.monotonic() - began


def test_headers_sent_slowly_time_out(url: str) -> None:
    """Slowloris: uvicorn bounds a keep-alive pause and our app the body, but nothing bounded the headers: a
    client sending a header line every 0.25 s held its connection for as long as it went on."""
    with connect(url) as sock:
        status, answer, seconds = trickle_headers(sock, b"POST /predict HTTP/1.1\r\nHost: test\r\n")
        assert sock.recv(1) == b"", "the server closed the connection"
    assert status == 408 and "limits.header_timeout_s" in answer
    assert HEADER_TIMEOUT - 0.2 < seconds < HEADER_TIMEOUT + 5


def test_the_header_clock_restarts_after_each_response_on_a_kept_alive_connection(url: str) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n"
    with connect(url) as sock:
        for _ in range(2):  # a connection kept alive, used at an ordinary pace for longer than the limit
            time.sleep(HEADER_TIMEOUT * 0.6)
            sock.sendall(request)
            assert status_of(sock)[0] == 200
        status, _, seconds = trickle_headers(sock, b"GET /health HTTP/1.1\r\n")
    assert status == 408 and HEADER_TIMEOUT - 0.2 < seconds < HEADER_TIMEOUT + 5


def test_many_silent_or_slow_connections_are_all_closed_and_the_server_answers_meanwhile(url: str) -> None:
    idle = [connect(url) for _ in range(100)]
    try:
        for sock in idle[::2]:
            sock.sendall(b"POST /predict HTTP/1.1\r\n")
        assert httpx.get(url + "health").status_code == 200
        time.sleep(HEADER_TIMEOUT + 0.5)
        for sock in idle:
            sock.settimeout(5)
            answer = b""
            while data := sock.recv(65536):  # until the server closes the connection
                answer += data
            assert answer.startswith(b"HTTP/1.1 408 ")
    finally:
        for sock in idle:
            sock.close()


def test_a_client_that_stops_reading_the_replies_is_disconnected(url: str) -> None:
    """3,000 requests sent at once and no reply read: the server's write waited on the client, its reply never
    finished, so neither the header clock nor uvicorn's keep-alive applied, and the connection stayed for as
    long as the client liked (60 s in a review)."""
    requests = 3000
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/"))))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n" * requests)
        time.sleep(REPLY_TIMEOUT + 2)
        sock.settimeout(10)
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(1 << 20):
                answer += data
    assert 0 < answer.count(b"HTTP/1.1 200") < requests, "served at first, then cut off, not served to the end"


def test_a_client_that_hangs_up_mid_upload_is_a_refusal_not_a_server_error() -> None:
    """Starlette raises ClientDisconnect from the body stream: uvicorn logged "Exception in ASGI
    application" with a traceback, and sent a 500, for every aborted upload."""
    sent: list[dict[str, Any]] = [{"type": "http.request", "body": b"x" * 10, "more_body": True}]
    messages = iter([*sent, {"type": "http.disconnect"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": [(b"content-length", b"1000")]}
    with pytest.raises(Refused) as refused:
        asyncio.run(read_body(Request(scope, receive), limit=10_000, timeout_s=5))
    assert refused.value.status == 400 and "closed the connection" in refused.value.message


def test_uploads_beyond_the_in_flight_limit_get_503_with_retry_after(url: str) -> None:
    slow = [connect(url) for _ in range(IN_FLIGHT)]
    try:
        for sock in slow:
            sock.sendall(upload_head("Content-Length: 1000\r\n") + b"x" * 10)
        time.sleep(0.3)
        busy = httpx.post(url + "predict", content=png(render(4)))
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1" and "max_in_flight" in busy.text
        assert httpx.get(url + "health").status_code == 200, "health is not an upload"
    finally:
        for sock in slow:
            sock.close()
    time.sleep(UPLOAD_TIMEOUT + 0.5)
    assert httpx.post(url + "predict", content=png(render(4))).status_code == 200, "free again"


def test_three_concurrent_200_mb_uploads_do_not_grow_memory(onnx_server: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = onnx_server
    before = rss_mb(process.pid)

    def announced() -> None:
        with connect(url) as sock:
            sock.sendall(upload_head("Content-Length: 200000000\r\n"))
            with contextlib.suppress(OSError):
                sock.sendall(b"x" * 200_000_000)
            assert status_of(sock)[0] == 413

    def chunked() -> None:
        block = b"%x\r\n%s\r\n" % (1 << 20, b"x" * (1 << 20))
        with connect(url) as sock, contextlib.suppress(OSError):
            sock.sendall(upload_head("Transfer-Encoding: chunked\r\n"))
            for _ in range(200):
                sock.sendall(block)

    threads = [threading.Thread(target=send) for send in (announced, chunked) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert rss_mb(process.pid) - before < 50


def test_a_small_load_test_answers_every_request(onnx_server: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = onnx_server
    result = run_load(url, png(render(3, size=28)), clients=IN_FLIGHT, requests=300, max_s=60, pid=process.pid)
    assert result.errors == 0, result.first_error
    assert result.requests == 300 and result.health_requests > 0 and result.server_rss_mb


def decoding_processes(server_pid: int) -> list[int]:
    """The server's picture-decoding processes (multiprocessing's spawned children)."""
    found = []
    with contextlib.suppress(OSError):  # the server has exited
        for pid in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split():
            with contextlib.suppress(OSError):  # this child has exited
                if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text():
                    found.append(int(pid))
    return found


def test_pictures_are_decoded_in_processes_that_are_replaced_when_they_die(
    onnx_server: tuple[str, subprocess.Popen[str]],
) -> None:
    url, process = onnx_server
    decoders = decoding_processes(process.pid)
    assert len(decoders) == default_processes()  # decode_processes=null: one fewer than the CPUs, at least 1
    decoder = decoders[0]
    assert "libtorch" not in Path(f"/proc/{decoder}/maps").read_text()  # serving ONNX: no torch there either
    os.kill(decoder, signal.SIGKILL)
    statuses = []
    for _ in range(20):
        answer = httpx.post(url + "predict", content=png(render(7)), timeout=30)
        statuses.append(answer.status_code)
        if answer.status_code == 200:
            break
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1", answer.text
        assert "decoding process died" in answer.json()["error"]
    assert statuses[-1] == 200 and len(statuses) <= 2, statuses  # the request that met the dead one, at most
    assert answer.json()["predictions"][0]["status"] == "ok"
    assert decoder not in decoding_processes(process.pid)


def large_request(url: str, pictures: int, answers: dict[str, object], size: int = 1000) -> threading.Thread:
    """A thread posting `pictures` size x size drawings in one form (1000x1000: 12-100 ms of decoding each,
    by the CPU); its status and the time it was answered land in `answers`."""
    large = png(render(8, size=size))
    files = [(f"p{i}", (f"p{i}.png", large, "image/png")) for i in range(pictures)]

    def send() -> None:
        answer = httpx.post(url + "predict", files=files, timeout=120)
        answers.update(status=answer.status_code, at=time.monotonic(), body=answer.text[:300])

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_a_large_request_does_not_hold_up_a_small_one(tmp_path: Path) -> None:
    """Each request has at most one picture per decoding process waiting, so a small request sent while 64
    large pictures are being decoded by the one process is answered before them. The small one is sent
    once three of them are decoded, as this CPU decodes them: about 60 pictures' time is left to answer it
    (2.4 s on a fast CPU; with a fixed 0.3 CPU-seconds, a fast CPU had only 70 ms left and lost the race)."""
    large, pictures = 2000, 64  # 4 Mpixels each (max_pixels), as many as one request may hold (max_pictures)
    start = time.perf_counter()
    read_digit(io.BytesIO(png(render(8, size=large))), "mnist", 4_000_000)
    one_picture = time.perf_counter() - start
    for url, process in serve(f"model_path={tiny_onnx(tmp_path / 'tiny.onnx')}", "decode_processes=1",
                              run_dir=tmp_path / "run"):  # fmt: skip
        (decoder,) = decoding_processes(process.pid)
        idle = cpu_seconds(decoder)
        answers: dict[str, object] = {}
        thread = large_request(url, pictures, answers, size=large)
        deadline = time.monotonic() + 60
        while cpu_seconds(decoder) < idle + 3 * one_picture:  # three decoded, the rest are waiting
            assert time.monotonic() < deadline and thread.is_alive(), answers
            time.sleep(0.01)
        small = httpx.post(url + "predict", content=png(render(2)), timeout=120)
        small_at = time.monotonic()
        thread.join(120)
        assert small.status_code == 200 and answers["status"] == 200, answers
        assert small_at < answers["at"], "the small request waited for the large one"  # type: ignore[operator]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_group_finishes_the_requests_in_flight(signum: int, tmp_path: Path) -> None:
    """Ctrl-C in a terminal (SIGINT) and systemd's stop (SIGTERM) reach the whole process group: the decoding
    processes ignore them, the server finishes the request in flight, stops them and exits 0."""
    for url, process in serve(f"model_path={tiny_onnx(tmp_path / 'tiny.onnx')}", "decode_processes=2",
                              run_dir=tmp_path / "run", start_new_session=True):  # fmt: skip
        decoders = decoding_processes(process.pid)
        assert len(decoders) == 2
        answers: dict[str, object] = {}
        thread = large_request(url, 16, answers)
        time.sleep(0.3)
        os.killpg(process.pid, signum)
        output = process.communicate(timeout=120)[0]
        thread.join(120)
        assert answers["status"] == 200, answers
        assert process.returncode == 0, output
        assert "Traceback" not in output and "KeyboardInterrupt" not in output and "Run it again" not in output
        assert not any(Path(f"/proc/{pid}").exists() for pid in decoders)


def test_ctrl_c_while_the_decoding_processes_start_exits_cleanly(tmp_path: Path) -> None:
    """Ctrl-C during start-up, while the decoding processes import: no traceback from them, exit 0."""
    command = [sys.executable, str(REPO / "serve.py"), f"model_path={tiny_onnx(tmp_path / 'tiny.onnx')}",
               "decode_processes=2", f"port={free_port()}", f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PROJECT_ROOT": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(decoding_processes(process.pid)) < 2:
            assert process.poll() is None and time.monotonic() < deadline, "no decoding processes started"
            time.sleep(0.01)
        time.sleep(0.05)  # both started: the server's own handlers are back
        os.killpg(process.pid, signal.SIGINT)
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output


def test_health_is_503_until_the_model_is_loaded_and_warmed_up(tmp_path: Path) -> None:
    release, calls = threading.Event(), []
    failures: list[Exception] = []

    class Recorder(OnnxModel):
        def probabilities(self, pixels: np.ndarray) -> np.ndarray:
            calls.append(len(pixels))
            return super().probabilities(pixels)

    def load() -> OnnxModel:
        release.wait(30)
        return Recorder(tiny_onnx(tmp_path / "tiny.onnx"))

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(load, Limits(), failures.append), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run)
    thread.start()
    url = f"http://127.0.0.1:{port}/"
    try:
        while not server.started:
            time.sleep(0.02)
        loading = httpx.get(url + "health")
        assert loading.status_code == 503 and loading.headers["Retry-After"] == "1"
        assert httpx.post(url + "predict", content=png(render(4))).status_code == 503
        release.set()
        deadline = time.monotonic() + 30
        while httpx.get(url + "health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert calls == [1] and not failures, "the warm-up prediction ran before /health said ready"
        assert httpx.post(url + "predict", content=png(render(4))).json()["predictions"][0]["status"] == "ok"
    finally:
        release.set()
        server.should_exit = True
        thread.join(30)


def test_an_onnx_model_is_served_without_torch_and_stops_cleanly(tmp_path: Path) -> None:
    began = time.monotonic()
    for url, process in serve(f"model_path={tiny_onnx(tmp_path / 'tiny.onnx')}", run_dir=tmp_path / "run"):
        ready_s = time.monotonic() - began
        assert httpx.post(url + "predict", content=png(render(2))).status_code == 200
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
        assert process.returncode == 0, output
    assert "imported: []" in output, "neither torch nor Lightning"
    assert "Run it again" not in output and "Interrupted" not in output and "Traceback" not in output
    assert ready_s < 10, f"ready in {ready_s:.1f} s"  # about 2 s on 2 idle cores; the test machine is shared


@pytest.mark.parametrize(
    ("override", "key"), [("porrt=8000", "'porrt'"), ("limits.max_batch=${nowhere}", "limits.max_batch")]
)
def test_a_config_hydra_cannot_compose_is_one_paragraph_and_exit_2(override: str, key: str, tmp_path: Path) -> None:
    command = [sys.executable, str(REPO / "serve.py"), "model_path=model.onnx", override,
               f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    env = {**os.environ, "PROJECT_ROOT": str(REPO)}
    result = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and key in result.stderr, result.stderr  # one paragraph, naming the key
    assert "Traceback" not in result.stderr


def test_an_unloadable_model_stops_the_server_with_its_message(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    env = {**os.environ, "PROJECT_ROOT": str(REPO)}
    command = [sys.executable, str(REPO / "serve.py"), f"model_path={tmp_path / 'junk.onnx'}", f"port={free_port()}",
               f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    result = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "cannot be read as an ONNX model" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "192.0.2.1", "999.1.1.1"])  # in use; not of this machine; no address
def test_a_port_in_use_or_a_foreign_address_is_one_paragraph_and_exit_2(host: str, tmp_path: Path) -> None:
    """Was uvicorn's own error line after 'Serving on ...', and exit 3 (in no table of ours)."""
    (tmp_path / "model.onnx").write_bytes(b"never loaded: the socket comes first")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, str(REPO / "serve.py"), f"model_path={tmp_path / 'model.onnx'}", f"port={port}",
                   f"host={host}", f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
        env = {**os.environ, "PROJECT_ROOT": str(REPO)}
        result = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"Error: serve.py cannot listen on {host}:{port} (")
    assert result.stderr.count("\n") == 1 and "Serving on" not in result.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "serve.py needs exactly one model"),
        ({"limits": {"max_batch": 0}}, "limits.max_batch must be a whole number >= 1"),
        ({"limits": {"upload_timeout_s": -1}}, "limits.upload_timeout_s must be a number of seconds > 0"),
        ({"limits": {"header_timeout_s": 0}}, "limits.header_timeout_s must be a number of seconds > 0"),
        ({"limits": {"reply_timeout_s": "x"}}, "limits.reply_timeout_s must be a number of seconds > 0"),
        ({"limits": {"batch_window_s": float("nan")}}, "limits.batch_window_s must be a number of seconds > 0"),
        ({"limits": {"upload_timeout_s": float("inf")}}, "limits.upload_timeout_s must be a number of seconds > 0"),
        ({"limits": {"max_uploads": 3}}, "limits.max_uploads is not a limit"),
        ({"port": 70000}, "port must be a whole number from 1 to 65535"),
        ({"decode_processes": -1}, "decode_processes must be a whole number >= 0, or null for one fewer than"),
    ],
)
def test_bad_values_are_refused_before_the_port_opens(values: dict, message: str) -> None:
    cfg = OmegaConf.merge(OmegaConf.load(REPO / "configs" / "serve.yaml"), {"model_path": "m.onnx"}, values)
    if not values:
        cfg.model_path = None
    assert isinstance(cfg, DictConfig)
    with pytest.raises(ConfigValueError, match=re.escape(message)):
        serve_task(cfg)


def draw(driver: WebDriver, canvas: WebElement, digit: int) -> None:
    """The digit's strokes as real pointer events: press, move in small steps, release."""
    from selenium.webdriver.common.action_chains import ActionChains

    for stroke in STROKES[digit]:
        points = [(round((x - 0.5) * CANVAS), round((y - 0.5) * CANVAS)) for x, y in stroke]
        actions = ActionChains(driver, duration=5)
        actions.move_to_element_with_offset(canvas, *points[0]).click_and_hold()
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            steps = max(1, round(max(abs(x1 - x0), abs(y1 - y0)) / 8))
            for step in range(1, steps + 1):
                dx = round(x0 + (x1 - x0) * step / steps) - round(x0 + (x1 - x0) * (step - 1) / steps)
                dy = round(y0 + (y1 - y0) * step / steps) - round(y0 + (y1 - y0) * (step - 1) / steps)
                actions.move_by_offset(dx, dy)
        actions.release().perform()


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.xdist_group("default_cnn")
def test_digits_drawn_in_a_real_browser_are_recognised(default_cnn_checkpoint: Path, tmp_path: Path) -> None:
    needs_tool(CHROMIUM, "Chromium")
    needs_tool(CHROMEDRIVER, "ChromeDriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for url, _ in serve(f"ckpt_path={default_cnn_checkpoint}", run_dir=tmp_path / "run"):
        driver = chrome()
        try:
            driver.get(url)
            canvas, prediction = driver.find_element(By.ID, "pad"), driver.find_element(By.ID, "prediction")
            read: dict[int, str] = {}
            for digit in (2, 3, 4, 7, 8):
                driver.find_element(By.ID, "clear").click()
                draw(driver, canvas, digit)
                # the page asks again after the pen lifts; the answer to that last request is the one to read
                time.sleep(0.5)
                WebDriverWait(driver, 20).until(lambda d: d.execute_script("return !pending && !dirty"))
                read[digit] = prediction.text
                driver.save_screenshot(str(tmp_path / f"demo_{digit}.png"))
            bars = [float(b.text.rstrip("%")) for b in driver.find_elements(By.CSS_SELECTOR, ".bar .pct")]
        finally:
            driver.quit()
    assert len(bars) == 10 and abs(sum(bars) - 100) < 1
    assert (tmp_path / "demo_8.png").stat().st_size > 10_000, "a screenshot of the page"
    correct = [digit for digit, text in read.items() if text == str(digit)]
    assert len(correct) >= 4, f"read {read}"

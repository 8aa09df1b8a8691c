"""The HTTP service: GET / the draw-a-digit page, POST /predict one or many pictures -> JSON, GET /health.

Starlette run by uvicorn, with a small batching queue (batcher.py) rather than LitServe: the upload
limits need the request stream itself (uploads.py), the ONNX path must import no torch, and one model
batching on a thread, with pictures decoded in worker processes (decoders.py), suits two cores better than
a whole server (and a model) per worker process.

As the server starts, the decoding processes start and the model loads on a thread: /health says 503
until the processes have started, the model is loaded and a warm-up prediction has run, then 200. The
model runs on the batch thread; the event loop only moves bytes, so the page and /health stay quick under
load.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files

import numpy as np
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mnist_classifier.data.pictures import OK, Digit
from mnist_classifier.digits import NUM_CLASSES
from mnist_classifier.predictor import Predictor
from mnist_classifier.serving.batcher import MicroBatcher
from mnist_classifier.serving.decoders import PictureDecoders
from mnist_classifier.serving.uploads import RETRY_AFTER, Refused, pictures_in, read_body

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 5_000_000
    max_pixels: int = 4_000_000
    max_pictures: int = 64
    max_in_flight: int = 64
    upload_timeout_s: float = 10.0
    header_timeout_s: float = 10.0
    reply_timeout_s: float = 10.0
    max_batch: int = 64
    batch_window_s: float = 0.002


def png_data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _answer(name: str, digit: Digit, probabilities: np.ndarray | None, image: bool) -> dict[str, object]:
    """One picture's row: the fields and status texts of predict.py's predictions.json."""
    row: dict[str, object] = {"name": name, "status": digit.status, "digit": None, "probabilities": None}
    if digit.status == OK and probabilities is not None:
        row["digit"] = int(np.argmax(probabilities))
        row["probabilities"] = [round(float(p), 6) for p in probabilities]
        if image:
            row["image"] = png_data_url(digit.pixels)
    return row


class DigitService:
    """The model (loaded on a thread), its batcher, the picture decoders and the count of uploads in flight."""

    def __init__(
        self,
        load: Callable[[], Predictor],
        limits: Limits,
        on_load_error: Callable[[Exception], None],
        decoders: PictureDecoders,
    ) -> None:
        self.load, self.limits, self.on_load_error, self.decoders = load, limits, on_load_error, decoders
        self.batcher: MicroBatcher | None = None
        self.ready = threading.Event()
        self.in_flight = 0

    def start_loading(self) -> None:
        threading.Thread(target=self._load, name="model-load", daemon=True).start()

    def _load(self) -> None:
        try:
            predictor = self.load()
            predictor.probabilities(np.zeros((1, 1, 28, 28), np.float32))  # warm-up: the first call is the slow one
            self.decoders.wait_started()
        except Exception as err:
            self.on_load_error(err)
            return
        self.batcher = MicroBatcher(predictor, self.limits.max_batch, self.limits.batch_window_s)
        self.batcher.start()
        self.ready.set()
        log.info("model loaded and warmed up")

    def stop(self) -> None:
        if self.batcher is not None:
            self.batcher.stop()
        self.decoders.stop()

    async def predict(self, request: Request) -> JSONResponse:
        if not self.ready.is_set() or self.batcher is None:
            return JSONResponse({"error": "the model is still loading"}, 503, RETRY_AFTER)
        if self.in_flight >= self.limits.max_in_flight:
            message = f"busy: {self.limits.max_in_flight} uploads in flight (max_in_flight); try again shortly"
            return JSONResponse({"error": message}, 503, RETRY_AFTER)
        self.in_flight += 1
        try:
            limits = self.limits
            body = await read_body(request, limits.max_upload_bytes, limits.upload_timeout_s)
            pictures = await pictures_in(request, body, limits.max_pictures)
            if not pictures:
                raise Refused(400, "no picture: send one as the request body, or many as multipart file fields")
            if len(pictures) > limits.max_pictures:
                too_many = f"{len(pictures)} pictures, over the limit of {limits.max_pictures} (limits.max_pictures)"
                raise Refused(413, too_many)
            preprocess = "none" if request.query_params.get("preprocess") == "none" else "mnist"
            digits = await self.decoders.decode([data for _, data in pictures], preprocess)
            usable = [i for i, digit in enumerate(digits) if digit.status == OK]
            found = np.zeros((0, NUM_CLASSES), np.float32)
            if usable:
                found = await self.batcher.probabilities(np.stack([digits[i].pixels for i in usable]))
            probabilities = dict(zip(usable, found, strict=True))
            image = request.query_params.get("image") == "true"
            rows = [_answer(name, digits[i], probabilities.get(i), image) for i, (name, _) in enumerate(pictures)]
            return JSONResponse({"predictions": rows})
        except Refused as refused:
            return JSONResponse({"error": refused.message}, refused.status, refused.headers or None)
        finally:
            self.in_flight -= 1


def create_app(
    load: Callable[[], Predictor],
    limits: Limits,
    on_load_error: Callable[[Exception], None],
    decoders: PictureDecoders | None = None,
) -> Starlette:
    """`decoders`: the processes that decode pictures (serving/decoders.py); None: on threads."""
    decoders = decoders or PictureDecoders(0, limits.max_pixels)
    service = DigitService(load, limits, on_load_error, decoders)
    page = files("mnist_classifier.serving").joinpath("page.html").read_text()

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def health(request: Request) -> Response:
        if service.ready.is_set():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "loading"}, 503, RETRY_AFTER)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # before the port opens, inside uvicorn's signal handling: the decoding processes start (their
        # imports running while the model loads), then the model loads on a thread
        service.decoders.start()
        service.start_loading()
        yield
        service.stop()  # uvicorn has finished the requests in flight

    routes = [Route("/", index), Route("/predict", service.predict, methods=["POST"]), Route("/health", health)]
    return Starlette(routes=routes, lifespan=lifespan)

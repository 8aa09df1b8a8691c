"""The draw-a-digit page: GET / serves the page, POST /predict takes the canvas as a PNG and answers with
the probabilities of the ten digits and the 28x28 image the model saw.

Starlette and a hand-written page with a canvas, rather than Gradio: a few hundred kB of dependencies
instead of hundreds of MB, nothing fetched from the internet, and plain HTTP that tests can call. The
picture goes through the same decoder and MNIST-style preprocessing as predict.py, and the model comes
from the same safe checkpoint loader.
"""

from __future__ import annotations

import base64
import io
from importlib.resources import files

import numpy as np
import torch
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from mnist_classifier.data.mnist_style import ImageRejected
from mnist_classifier.data.user_images import decode_bytes, prepare_digit
from mnist_classifier.models.classifier import MNISTClassifier

MAX_UPLOAD_BYTES = 5_000_000
MAX_PIXELS = 4_000_000


def png_data_url(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255).astype(np.uint8)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def create_app(model: MNISTClassifier) -> Starlette:
    page = files("mnist_classifier.demo").joinpath("page.html").read_text()

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    async def predict(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_UPLOAD_BYTES:
            return JSONResponse({"error": f"the picture is over {MAX_UPLOAD_BYTES:,} bytes"}, status_code=413)
        try:
            digit = prepare_digit(decode_bytes(body, MAX_PIXELS), "mnist")
        except ImageRejected as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        if digit.status != "ok":
            blank = digit.status.startswith("blank image")  # an empty pad: nothing to say yet
            return JSONResponse({"error": digit.status, "blank": blank}, status_code=200 if blank else 400)
        with torch.no_grad():
            probabilities = model.pixel_probabilities(torch.from_numpy(digit.pixels)[None, None])[0].tolist()
        return JSONResponse(
            {
                "prediction": int(np.argmax(probabilities)),
                "probabilities": [round(p, 5) for p in probabilities],
                "image": png_data_url(digit.pixels),
            }
        )

    return Starlette(routes=[Route("/", index), Route("/predict", predict, methods=["POST"])])

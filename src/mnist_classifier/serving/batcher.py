"""Pictures from concurrent requests gathered into one model call, on a worker thread, off the event loop.

The worker takes the first waiting request, then whatever else arrives within `window_s` (up to
`max_batch` pictures), and runs the model once for all of them: under load the batches fill up and each
call's overhead is shared; a lone request waits at most the window.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from mnist_classifier.predictor import Predictor


@dataclass
class _Request:
    pixels: np.ndarray  # (k, 28, 28)
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[np.ndarray], result: np.ndarray | BaseException) -> None:
    if future.done():  # the client went away
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class MicroBatcher:
    def __init__(self, predictor: Predictor, max_batch: int, window_s: float) -> None:
        self.predictor, self.max_batch, self.window_s = predictor, max_batch, window_s
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="model-batches", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """After the requests already queued are answered."""
        self._queue.put(None)
        self._thread.join()

    async def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """(k, 28, 28) pictures -> (k, 10) class probabilities, computed in a batch with other requests'."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        self._queue.put(_Request(pixels, future, loop))
        return await future

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        batch, size = [first], len(first.pixels)
        deadline = time.monotonic() + self.window_s
        while size < self.max_batch:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
            size += len(item.pixels)
        return batch, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch, stopping = self._gather(first)
            pixels = np.concatenate([item.pixels for item in batch])[:, None]
            try:
                answer: np.ndarray | BaseException = self.predictor.probabilities(pixels)
            except Exception as err:  # one failed call fails its requests, not the server
                answer = err
            offset = 0
            for item in batch:
                part = answer if isinstance(answer, BaseException) else answer[offset : offset + len(item.pixels)]
                offset += len(item.pixels)
                item.loop.call_soon_threadsafe(_settle, item.future, part)

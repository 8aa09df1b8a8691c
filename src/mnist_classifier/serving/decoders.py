"""Pictures decoded and preprocessed in worker processes, off the server's GIL.

Decoding a PNG and MNIST-style preprocessing (data/pictures.py) are many small numpy and Pillow calls that
hold the GIL: on threads of the server process they ran one at a time with the event loop and the model, and
the server used about one of two cores. In processes they run beside it (32 clients sending 28x28 drawings to
an ONNX model, 2-core AVX2 EPYC: about 350 predictions/s on threads, 640/s with one decoding process, 600/s
with two). A process that dies (killed, out of memory) fails the requests it held with 503 and is replaced.
`decode_processes=0` decodes on the server's threads, as before.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from starlette.concurrency import run_in_threadpool

from mnist_classifier.data.pictures import Digit, read_digits
from mnist_classifier.serving.uploads import RETRY_AFTER, Refused


def default_processes() -> int:
    """One fewer than the CPUs this process may use (the other runs the server and the model), at least one."""
    return max(1, len(os.sched_getaffinity(0)) - 1) if hasattr(os, "sched_getaffinity") else 1


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the server shuts its decoders down itself, after the requests
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PictureDecoders:
    def __init__(self, processes: int, max_pixels: int) -> None:
        self.processes, self.max_pixels = processes, max_pixels
        self._pool: ProcessPoolExecutor | None = None
        self._warm_ups: list[Future[list[Digit]]] = []

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn: the server has threads (and maybe torch) by now, which a forked child must not inherit
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.processes, mp_context=context, initializer=_ignore_interrupts)

    def start(self) -> None:
        """Start the processes, each decoding an empty request (imports, Pillow's plugins) so that the first
        requests do not wait for them; returns at once, `wait_started` waits (/health says ready after)."""
        if self.processes:
            self._pool = self._new_pool()
            # one job each: a pool starts another process for a job that finds none idle
            self._warm_ups = [
                self._pool.submit(read_digits, [], "mnist", self.max_pixels) for _ in range(self.processes)
            ]

    def wait_started(self) -> None:
        for job in self._warm_ups:
            job.result()

    async def decode(self, pictures: Sequence[bytes | bytearray], preprocess: str) -> list[Digit]:
        pool = self._pool
        if pool is None:
            return await run_in_threadpool(read_digits, pictures, preprocess, self.max_pixels)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, read_digits, pictures, preprocess, self.max_pixels
            )
        except BrokenProcessPool as err:
            if self._pool is pool:  # the first of its requests to hear of it replaces it
                pool.shutdown(wait=False)
                self._pool = self._new_pool()
            message = "a picture-decoding process died (killed, or out of memory); try again"
            raise Refused(503, message, RETRY_AFTER) from err

    def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

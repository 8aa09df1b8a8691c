"""Pictures decoded and preprocessed in worker processes, off the server's GIL.

Decoding a PNG and MNIST-style preprocessing (data/pictures.py) are many small numpy and Pillow calls that
hold the GIL: on threads of the server process they ran one at a time with the event loop and the model, and
the server used about one of two cores. In processes they run beside it (32 clients sending 28x28 drawings to
an ONNX model, 2-core AVX2 EPYC: about 350 predictions/s on threads, 640/s with one decoding process, 600/s
with two). `decode_processes=0` decodes on the server's threads, as before.

- Fair: a request has at most one picture per process waiting at a time, so a request of 64 large pictures
  does not hold the queue while a small one waits behind it.
- Signals: the processes start with SIGINT and SIGTERM ignored (inherited, and Python leaves an ignored
  SIGINT alone), so a Ctrl-C or a SIGTERM sent to the whole process group (a terminal, systemd) reaches only
  the server, which finishes the requests in flight before it stops them.
- A process that dies (killed, out of memory) breaks the whole pool: the requests waiting on it get 503 with
  Retry-After, and a new pool starts at once.
- Each process imports serve.py again (multiprocessing's spawn does), which costs its start-up about half a
  second, while the server opens its port and loads the model.
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
from mnist_classifier.runtime.interrupts import interrupt_handlers
from mnist_classifier.serving.uploads import RETRY_AFTER, Refused

MAX_DEFAULT_PROCESSES = 4


def default_processes() -> int:
    """One fewer than the CPUs this process may use (the other runs the server and the model), at least one,
    and at most MAX_DEFAULT_PROCESSES (the CPU count ignores a container's CPU limit)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    return min(MAX_DEFAULT_PROCESSES, max(1, cpus - 1))


class PictureDecoders:
    def __init__(self, processes: int, max_pixels: int) -> None:
        self.processes, self.max_pixels = processes, max_pixels
        self._pool: ProcessPoolExecutor | None = None
        self._warm_ups: list[Future[list[Digit]]] = []
        self._stopping = False

    def _start_pool(self) -> None:
        # spawn: the server has threads (and maybe torch) by now, which a forked child must not inherit
        self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"))
        # started with SIGINT/SIGTERM ignored, which they inherit (a signal in these milliseconds is lost)
        with interrupt_handlers(signal.SIG_IGN):
            # one job each, all at once: a pool starts another process for a job that finds none idle
            self._warm_ups = [
                self._pool.submit(read_digits, [], "mnist", self.max_pixels) for _ in range(self.processes)
            ]

    def start(self) -> None:
        """Start the processes (their imports run meanwhile); `wait_started` waits for them. Call it from the
        main thread (the event loop's), so that they start with the interrupts ignored."""
        if self.processes:
            self._start_pool()

    def wait_started(self) -> None:
        for job in self._warm_ups:
            job.result()

    async def decode(self, pictures: Sequence[bytes | bytearray], preprocess: str) -> list[Digit]:
        pool = self._pool
        if pool is None:
            return await run_in_threadpool(read_digits, pictures, preprocess, self.max_pixels)
        loop = asyncio.get_running_loop()
        digits: list[Digit] = []
        try:
            for first in range(0, len(pictures), self.processes):
                jobs = [
                    loop.run_in_executor(pool, read_digits, [data], preprocess, self.max_pixels)
                    for data in pictures[first : first + self.processes]
                ]
                digits += [digit for (digit,) in await asyncio.gather(*jobs)]
        except BrokenProcessPool as err:
            if self._pool is pool and not self._stopping:  # the first of its requests to hear of it
                pool.shutdown(wait=False)
                self._start_pool()
            message = "a picture-decoding process died (killed, or out of memory); try again"
            raise Refused(503, message, RETRY_AFTER) from err
        return digits

    def stop(self) -> None:
        self._stopping = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)

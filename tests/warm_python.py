"""train.py & co. as real processes, without paying for their imports on every run.

Most tests start a script as a user would, and on a 2-core CPU each such process spends about 6 s importing
torch, Lightning and Hydra before it does anything the test looks at. A warm Python imports them once per
test worker; each run is then a fork of it that runs the script with runpy, as `python script.py` does: its
own pid, cwd, argv, stdout/stderr files and exit code, and a fresh Hydra. What a fork cannot give is a
first import, so the runs that change a variable some library reads when it is imported (OMP_NUM_THREADS)
and the tests that look at import-time behaviour (`fresh=True`: warnings printed
while importing, what a script imports) start a new interpreter instead.

Run as a script, this file is the warm Python: it reads one JSON request a line on stdin, answers the
child's pid, then its exit code, on stdout.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# variables that torch, its thread pools and kernels, Python itself or matplotlib read when they are imported
# or start: a run that changes one of them needs a new interpreter (others, e.g. PL_GLOBAL_SEED set by an
# in-process test's seed_everything, are simply set in the fork)
IMPORT_TIME_VARIABLES = ("OMP_", "GOMP_", "KMP_", "MKL_", "OPENBLAS_", "ATEN_", "ONEDNN_", "DNNL_", "TORCH",
                         "PYTORCH_", "CUDA_", "NVIDIA_", "TRITON_", "LD_", "PYTHON", "MPL", "NUMPY_", "NPY_",
                         "TQDM_", "POSSIBLE_USER_WARNINGS", "TMPDIR", "LANG", "LC_", "TZ", "HOME", "XDG_")  # fmt: skip

# what train.py, eval.py, predict.py and export.py import before they start working (the slow part)
PRELOADED = ("torch", "torchvision", "lightning.pytorch", "hydra", "mnist_classifier.tasks.train")


def can_fork(warm_env: dict[str, str], env: dict[str, str]) -> bool:
    """Whether a fork of a warm Python started with `warm_env` gives what a new interpreter with `env` would:
    no import-time variable differs."""
    changed = {name for name in env.keys() | warm_env.keys() if env.get(name) != warm_env.get(name)}
    return not any(name.startswith(IMPORT_TIME_VARIABLES) for name in changed)


def _exit_code(code: object) -> int:
    """SystemExit's code as the interpreter turns it into an exit status."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _fresh_random_state() -> None:
    """A new interpreter starts numpy's and torch's global generators from fresh entropy; a fork would share
    the warm Python's, and two runs that forget to seed would agree by accident. (Python's `random` is
    reseeded by the fork itself; the hash seed stays the warm Python's.)"""
    import numpy as np
    import torch

    np.random.seed(int.from_bytes(os.urandom(4), "little"))
    torch.seed()


def _run_child(request: dict[str, Any], protocol_fds: tuple[int, ...]) -> None:
    """In the fork: become `python script args...` with its output in the files asked for; never returns."""
    import atexit
    import io
    import runpy
    import threading
    import traceback

    code = 1
    try:
        for fd in protocol_fds:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", write_through=True)
        sys.stderr = io.TextIOWrapper(
            io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True
        )
        _fresh_random_state()
        sys.argv = list(request["argv"])
        sys.path[0] = str(Path(sys.argv[0]).resolve().parent)
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
            code = 0
        except SystemExit as stop:
            code = _exit_code(stop.code)
        except BaseException as error:  # as the interpreter reports it: the script's frames, not this file's
            frames = error.__traceback__
            while frames is not None and frames.tb_frame.f_code.co_filename in (__file__, "<frozen runpy>"):
                frames = frames.tb_next
            traceback.print_exception(type(error), error, frames)
            code = -signal.SIGINT if isinstance(error, KeyboardInterrupt) else 1
        threading._shutdown()  # type: ignore[attr-defined]  # as the interpreter's exit: threads end, atexit runs
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        if code == -signal.SIGINT:  # an uncaught Ctrl-C ends Python by SIGINT, as the shell expects
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        os._exit(code)


def _serve() -> None:
    """The warm Python's loop: import once, then fork one child per request and report how it ended."""
    import importlib

    for module in PRELOADED:
        importlib.import_module(module)
    requests, answers = os.fdopen(os.dup(0), "r"), os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    print("ready", file=answers, flush=True)
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request, (requests.fileno(), answers.fileno()))
        print(json.dumps({"pid": pid}), file=answers, flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), file=answers, flush=True)


class WarmPython:
    """One warm Python for this test process, started on first use with the environment of that run."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.log = tempfile.NamedTemporaryFile(prefix="warm_python_", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, __file__], cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True,
        )  # fmt: skip
        self._expect("ready", timeout=None)

    def _read(self, deadline: float | None) -> str | None:
        """The next answer line, or None at the deadline."""
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(None if deadline is None else max(0.0, deadline - time.monotonic())):
                return None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the warm Python ended (exit {self.process.wait()}): {Path(self.log.name).read_text()}")
        return line

    def _expect(self, expected: str, timeout: float | None) -> None:
        line = self._read(None if timeout is None else time.monotonic() + timeout)
        if line is None or line.strip() != expected:
            raise RuntimeError(f"the warm Python said {line!r}, not {expected!r}: {Path(self.log.name).read_text()}")

    def run(
        self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float | None
    ) -> subprocess.CompletedProcess:
        """`python *argv` in `cwd`, as subprocess.run(..., capture_output=True, text=True) gives it back; `env`
        passes `can_fork`."""
        try:
            result, timed_out = self._run(argv, cwd, env, timeout)
        except BaseException:  # an answer may still be on its way, for a request nobody waits for now
            self.process.kill()
            self.process.wait()
            raise
        if timed_out:  # as subprocess.run says it: bytes, even with text=True
            output, errors = (text.encode() or None for text in (result.stdout, result.stderr))
            raise subprocess.TimeoutExpired(result.args, timeout or 0.0, output=output, stderr=errors)
        return result

    def _run(
        self, argv: list[str], cwd: Path, env: dict[str, str], timeout: float | None
    ) -> tuple[subprocess.CompletedProcess, bool]:
        """One exchange with the warm Python: the run, and whether it was killed at its timeout."""
        assert self.process.stdin is not None
        with tempfile.TemporaryDirectory(prefix="warm_run_") as folder:
            stdout, stderr = Path(folder, "stdout"), Path(folder, "stderr")
            request = {"argv": argv, "cwd": str(cwd), "env": env, "stdout": str(stdout), "stderr": str(stderr)}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            pid = json.loads(self._read(None) or "{}")["pid"]
            deadline = None if timeout is None else time.monotonic() + timeout
            answer = self._read(deadline)
            timed_out = answer is None
            if timed_out:
                with contextlib.suppress(ProcessLookupError):  # it ended at the deadline
                    os.kill(pid, signal.SIGKILL)
                answer = self._read(None)
            returncode = json.loads(answer or "{}")["returncode"]
            out, err = (path.read_text(encoding="utf-8", errors="backslashreplace") for path in (stdout, stderr))
        return subprocess.CompletedProcess([sys.executable, *argv], returncode, out, err), timed_out


if __name__ == "__main__":
    _serve()

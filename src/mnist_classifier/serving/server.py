"""serve.py's task: check the config, open the port, load the model behind it, serve until SIGTERM/Ctrl-C.

On SIGTERM or Ctrl-C uvicorn stops accepting, finishes the requests in flight, and the process exits 0: a
server has nothing to resume. A model that cannot be loaded stops the server with its message (exit 2).
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn
from omegaconf import DictConfig

from mnist_classifier.errors import ConfigValueError, InputError
from mnist_classifier.predictor import Predictor, check_one_model, load_predictor
from mnist_classifier.runtime.interrupts import interrupt_handlers
from mnist_classifier.runtime.run_checks import check_common, check_integer
from mnist_classifier.serving.app import Limits, create_app
from mnist_classifier.serving.decoders import PictureDecoders, default_processes
from mnist_classifier.serving.slow_clients import with_deadlines
from mnist_classifier.utils.numbers import is_number

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's own version raises the signal again after its graceful shutdown, so the process would
        die of it (130/143) after finishing its work; this one lets it end normally."""
        with interrupt_handlers(self.handle_exit):
            yield


def _listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything starts: a port in use or an address not of this machine is
    the one-paragraph error and exit 2 (uvicorn printed its own line and exited 3, after 'Serving on')."""
    sock: socket.socket | None = None
    try:  # a name (localhost) binds the first address it resolves to, IPv4 or IPv6
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own: a restart need not wait
        sock.bind(address)
    except OSError as err:
        if sock is not None:
            sock.close()
        raise InputError(
            f"serve.py cannot listen on {host}:{port} ({err.strerror or err}). Stop whatever holds that port or "
            f"pick another (port=8001), and use an address of this machine (host=127.0.0.1, or 0.0.0.0 for all)."
        ) from err
    return sock


def _limits(cfg: DictConfig) -> Limits:
    values = dict(cfg.get("limits") or {})
    unknown = sorted(set(values) - set(Limits.__dataclass_fields__))
    if unknown:
        raise ConfigValueError(
            f"limits.{unknown[0]} is not a limit; the limits are {', '.join(Limits.__dataclass_fields__)}."
        )
    for name, value in values.items():
        if name.startswith("max_"):
            check_integer(value, f"limits.{name}", 1)
        elif not is_number(value) or not 0 < value < math.inf:
            # NaN compares false to everything: it passed `value <= 0`, and every request then waited forever
            raise ConfigValueError(f"limits.{name} must be a number of seconds > 0 (and finite); got {value!r}.")
    return Limits(**values)


def serve(cfg: DictConfig) -> dict[str, Any]:
    check_common(cfg)
    check_integer(cfg.get("port"), "port", 1, 65535)
    check_one_model(cfg.get("ckpt_path"), cfg.get("model_path"), "serve.py")
    limits = _limits(cfg)
    check_integer(cfg.get("decode_processes"), "decode_processes", 0, null_means="one fewer than the CPUs")
    decode_processes = default_processes() if cfg.get("decode_processes") is None else cfg.decode_processes
    port = cfg.port
    threads = cfg.get("num_threads")

    def load() -> Predictor:
        return load_predictor(cfg.get("ckpt_path"), cfg.get("model_path"), "serve.py", threads, sleep_when_idle=True)

    load_error: list[Exception] = []

    def on_load_error(err: Exception) -> None:
        load_error.append(err)
        server.should_exit = True

    decoders = PictureDecoders(decode_processes, limits.max_pixels)  # started by the app, stopped here too
    config = uvicorn.Config(
        create_app(load, limits, on_load_error, decoders),
        host=cfg.host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=cfg.get("shutdown_timeout_s"),
        timeout_keep_alive=5,
        http=with_deadlines(limits.header_timeout_s, limits.reply_timeout_s),
    )
    server = _Server(config)
    sock = _listening_socket(cfg.host, port)
    decoding = f"{decode_processes} process(es)" if decode_processes else "the server's threads"
    print(f"Serving on http://{cfg.host}:{port}/  (/health, POST /predict; Ctrl-C to stop)", flush=True)
    setting = "null" if cfg.get("decode_processes") is None else cfg.decode_processes
    print(f"Pictures are decoded in {decoding} (decode_processes={setting})", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        decoders.stop()
        sock.close()
    if load_error:
        raise load_error[0]
    log.info("stopped")
    return {"url": f"http://{cfg.host}:{port}/"}

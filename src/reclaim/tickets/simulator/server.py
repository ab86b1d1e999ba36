"""Run the simulator on a real port: in the foreground (CLI) or in a thread (tests, benchmarks)."""

from __future__ import annotations

__all__ = ["RunningSimulator", "run_in_thread", "serve"]

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from reclaim.tickets.simulator.app import SimulatorApp


def _config(app: SimulatorApp, log_level: str) -> uvicorn.Config:
    # Access logs at 100 requests/s would drown everything else; the limit counters say enough.
    return uvicorn.Config(
        app.asgi, log_level=log_level, access_log=False, lifespan="off", interface="asgi3"
    )


def serve(
    app: SimulatorApp, host: str = "127.0.0.1", port: int = 8080, log_level: str = "warning"
) -> None:
    """Serve until interrupted."""
    config = _config(app, log_level)
    config.host, config.port = host, port
    try:
        uvicorn.Server(config).run()
    finally:
        app.hub.close()


@dataclass
class RunningSimulator:
    app: SimulatorApp
    url: str


@contextlib.contextmanager
def run_in_thread(
    app: SimulatorApp | None = None, log_level: str = "critical"
) -> Iterator[RunningSimulator]:
    """The simulator on a free port of 127.0.0.1 for the duration of the ``with`` block."""
    app = app or SimulatorApp()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(_config(app, log_level))
    # uvicorn (>= 0.29) leaves signal handling alone outside the main thread.

    def run() -> None:
        asyncio.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=run, name="jira-simulator", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the Jira simulator did not start")
        threading.Event().wait(0.01)
    url = f"http://127.0.0.1:{port}"
    app.base_url = url
    try:
        yield RunningSimulator(app, url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.hub.close()

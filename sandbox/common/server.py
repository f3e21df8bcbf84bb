"""Serving emulators on loopback: in a background thread (tests, demo) or in a child process (benchmarks).

Uvicorn runs each emulator's Starlette app on a socket bound to 127.0.0.1 before the server starts, so the
port is known at once (port 0 picks a free one) and the emulator can put its own URL into the bodies that
need it (Salesforce `instance_url`, Dataverse `@odata.nextLink`).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import uvicorn

from sandbox.common.emulator import Emulator


def bind_loopback(port: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    sock.bind(("127.0.0.1", port))
    sock.listen(256)
    sock.set_inheritable(True)
    return sock


class EmulatorServer:
    """Runs one emulator with uvicorn in a daemon thread. Use as a context manager or start()/stop()."""

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        self.emulator = emulator
        self.socket = bind_loopback(port)
        self.port: int = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        emulator.base_url = self.url
        config = uvicorn.Config(
            emulator.app(), log_level="warning", access_log=False, lifespan="off",
            timeout_keep_alive=30, loop="asyncio", http="httptools",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> EmulatorServer:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self.socket])),
            name=f"{self.emulator.name}-emulator", daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {self.emulator.name} emulator did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.socket.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

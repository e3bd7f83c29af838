"""A real Recobra service on a loopback port, for end-to-end tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Self

import uvicorn

from assist.app import create_app
from assist.settings import Settings


class RunningService:
    def __init__(self, settings: Settings) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.app = create_app(settings)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    ws_max_size=16 * 1024 * 1024))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self.server.serve(),), daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 180
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("service did not start")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        """Stop as SIGTERM stops `recobra serve`: end every call and deliver its last events, then the server."""
        if self.thread.is_alive():
            drained = asyncio.run_coroutine_threadsafe(self.app.state.registry.drain("service stopped"), self.loop)
            drained.result(60)
        self.server.should_exit = True
        self.thread.join(30)

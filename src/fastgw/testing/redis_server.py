"""A real ``redis-server`` for tests, on a free 127.0.0.1 port.

Nothing is persisted (``--save "" --appendonly no``) and its files live in a
temporary directory. ``stop()`` and ``start()`` take it down and bring it back
on the same port, to simulate an outage and the recovery after it (an empty
Redis, as after a real restart without persistence).

Debian ships the server as ``redis-server`` (``apt-get install redis-server``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time

from fastgw.testing import free_port


class RedisServer:
    """``with RedisServer() as redis: ...``; ``redis.url`` for clients."""

    def __init__(self, port: int | None = None, executable: str = "redis-server",
                 args: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.executable = executable
        self.args = args  # more of redis-server's options (--cluster-enabled yes...)
        self.dir = tempfile.TemporaryDirectory(prefix="fastgw-redis-")
        self.log_path = os.path.join(self.dir.name, "redis.log")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        path = shutil.which(self.executable)
        if path is None:
            raise RuntimeError(f"{self.executable} not found: apt-get install redis-server")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", self.dir.name, "--daemonize", "no",
                 *self.args],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n"
                                   + self.logs())
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"redis-server did not answer PING in {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL); the port is free afterwards."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ping(self) -> bool:
        """True when the server answers PING on its port."""
        with contextlib.suppress(OSError), \
                socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
        return False

    def client(self):
        """A synchronous redis-py client, for tests to look inside."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def logs(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.dir.cleanup()

"""file-log: one JSON line per request, appended to a file in the log phase.

The file is opened once per config version (lazily, by the first request)
with ``O_APPEND`` and written with one unbuffered ``write(2)`` per line, as
Kong does: nothing waits in a buffer, and lines from several workers (or
several plugin instances) never interleave, because the kernel moves the end
of file and writes each line in one piece. A write to a local disk costs a
copy into the page cache; a blocking disk blocks, as it does in Kong.

With ``reopen`` the file is opened and closed around every line, so a log
rotated away is followed at once (at the price of two more system calls).
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from typing import Any

from fastgw.plugins.base import Plugin
from fastgw.plugins.context import RequestContext
from fastgw.plugins.log_serializer import LogSerializer
from fastgw.plugins.state import ConfigState

log = logging.getLogger("fastgw.plugins.file_log")

_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
_FILE_MODE = 0o644  # Kong's S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH
# A broken file (full disk, missing directory) fails every request; one
# error line per this many seconds says so without flooding the log.
ERROR_LOG_INTERVAL = 10.0


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    # A regular file takes a short write only when the disk fills up; the
    # next write then raises ENOSPC, which the caller reports.
    while written < len(data):
        written += os.write(fd, memoryview(data)[written:])


class LogFile:
    """One path's append-only descriptor, shared by the file-log instances
    of one config version; closed when the config version is dropped."""

    __slots__ = ("__weakref__", "_close", "_last_error_at", "_suppressed", "fd", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1
        self._close: weakref.finalize | None = None
        self._last_error_at = float("-inf")
        self._suppressed = 0

    def write(self, line: bytes) -> bool:
        if self.fd < 0 and not self._open():
            return False
        try:
            _write_all(self.fd, line)
        except OSError as exc:
            self._report("failed to write to", exc)
            self.close()  # reopened by the next line, e.g. once space is freed
            return False
        return True

    def write_reopened(self, line: bytes) -> bool:
        """Write through a descriptor of its own, closed right after."""
        try:
            fd = os.open(self.path, _OPEN_FLAGS, _FILE_MODE)
        except OSError as exc:
            self._report("failed to open", exc)
            return False
        try:
            _write_all(fd, line)
        except OSError as exc:
            self._report("failed to write to", exc)
            return False
        finally:
            os.close(fd)
        return True

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None
            self.fd = -1

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, _OPEN_FLAGS, _FILE_MODE)
        except OSError as exc:
            self._report("failed to open", exc)
            return False
        self.fd = fd
        self._close = weakref.finalize(self, os.close, fd)
        return True

    def _report(self, what: str, exc: OSError) -> None:
        now = time.monotonic()
        if now - self._last_error_at < ERROR_LOG_INTERVAL:
            self._suppressed += 1
            return
        log.error("[file-log] %s the file %s: %s (%d failures since the last report)",
                  what, self.path, exc.strerror or exc, self._suppressed)
        self._last_error_at = now
        self._suppressed = 0


class FileLogHandler(Plugin):
    name = "file-log"
    PRIORITY = 9
    VERSION = "0.1.0"

    __slots__ = ("file", "reopen", "serializer")

    def __init__(self, config: dict[str, Any], state: ConfigState, scope: Any = None) -> None:
        super().__init__(config, state, scope)
        self.serializer = LogSerializer(config["custom_fields"])
        self.reopen: bool = config["reopen"]
        files: dict[str, LogFile] = state.shared.setdefault("file-log", {})
        path = config["path"]
        file = files.get(path)
        if file is None:
            file = files[path] = LogFile(path)
        self.file = file

    def log(self, ctx: RequestContext) -> None:
        line = self.serializer.line(ctx)
        if self.reopen:
            self.file.write_reopened(line)
        else:
            self.file.write(line)


HANDLER = FileLogHandler

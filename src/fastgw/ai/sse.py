"""Incremental parsers for streamed LLM answers.

``SSEParser`` follows the WHATWG event-stream rules: lines end with CRLF, LF
or a lone CR; ``:`` starts a comment; ``data`` lines of one event are joined
with ``\\n``; a blank line dispatches. Bytes may arrive split anywhere, even
between the CR and LF of one line break, or inside a UTF-8 sequence: lines are
decoded only once complete. ``NDJSONSplitter`` cuts Ollama's
newline-delimited JSON the same way.

# PERF: line ends are found with ``bytes.find`` (C speed), never a regex.
"""

from __future__ import annotations

from typing import NamedTuple

_LF = 0x0A
_COLON = 0x3A
_UTF8_BOM = b"\xef\xbb\xbf"


class SSEEvent(NamedTuple):
    event: str  # "message" when the stream named none, as in the spec
    data: str
    id: str | None = None


class SSEParser:
    __slots__ = ("_buffer", "_event", "_data", "_last_id", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []
        self._last_id: str | None = None
        # A chunk that ended on CR: an LF opening the next chunk is the same line break.
        self._skip_lf = False
        self._started = False

    @property
    def pending(self) -> bool:
        """True while an event or a line is incomplete (bytes a clean end would not leave)."""
        return bool(self._buffer or self._data or self._event is not None)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not self._started:
            if len(self._buffer) + len(chunk) < len(_UTF8_BOM) and _UTF8_BOM.startswith(
                self._buffer + chunk
            ):
                self._buffer += chunk  # too short yet to tell a BOM from data
                return []
            chunk = self._buffer + chunk
            self._buffer = b""
            self._started = True
            if chunk.startswith(_UTF8_BOM):
                chunk = chunk[len(_UTF8_BOM) :]
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == _LF:
                chunk = chunk[1:]
        buf = self._buffer + chunk if self._buffer else chunk
        events: list[SSEEvent] = []
        start = 0
        size = len(buf)
        while start < size:
            lf = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, size if lf == -1 else lf)
            if cr != -1:
                end = cr
                next_start = cr + 1
                if next_start == size:
                    self._skip_lf = True
                elif buf[next_start] == _LF:
                    next_start += 1
            elif lf != -1:
                end = lf
                next_start = lf + 1
            else:
                break
            self._line(buf[start:end], events)
            start = next_start
        self._buffer = buf[start:]
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(
                    SSEEvent(self._event or "message", "\n".join(self._data), self._last_id)
                )
            # Per the spec, a blank line with no data resets the event name and dispatches nothing.
            self._data = []
            self._event = None
            return
        if line[0] == _COLON:
            return
        colon = line.find(b":")
        if colon == -1:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\x00" not in value:
            self._last_id = value.decode("utf-8", "replace")
        # "retry" and unknown fields are ignored: a proxy does not reconnect.


class NDJSONSplitter:
    """Splits newline-delimited JSON (Ollama's streaming format) into complete lines."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    @property
    def pending(self) -> bool:
        return bool(self._buffer.strip())

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buffer + chunk if self._buffer else chunk
        lines = buf.split(b"\n")
        self._buffer = lines.pop()
        return [line for line in (raw.strip() for raw in lines) if line]

    def flush(self) -> list[bytes]:
        """The last line, if the stream ended without a final newline."""
        line = self._buffer.strip()
        self._buffer = b""
        return [line] if line else []


def encode_sse(data: bytes, event: str | None = None) -> bytes:
    """One SSE event; ``data`` must not contain line breaks (compact JSON never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"

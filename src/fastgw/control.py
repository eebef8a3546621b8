"""The control channel between the supervisor and each worker.

Each message is a 4-byte big-endian length followed by an orjson document.
The supervisor sends requests (``{"op": ...}``), the worker answers each one
in order. Only the slow path uses it: config swaps, stats, drain.
"""

from __future__ import annotations

import asyncio
import struct

import orjson

HEADER = struct.Struct(">I")
# A whole declarative config travels in one message; 64 MiB is far above any
# real config and still bounds a corrupt length prefix.
MAX_MESSAGE = 64 * 1024 * 1024


class ChannelClosed(Exception):
    pass


async def read_message(reader: asyncio.StreamReader) -> dict:
    try:
        head = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(head)
        if size > MAX_MESSAGE:
            raise ChannelClosed(f"control message of {size} bytes refused")
        body = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise ChannelClosed(str(exc)) from exc
    return orjson.loads(body)


def encode_message(message: dict) -> bytes:
    body = orjson.dumps(message)
    return HEADER.pack(len(body)) + body


async def write_message(writer: asyncio.StreamWriter, message: dict) -> None:
    writer.write(encode_message(message))
    await writer.drain()

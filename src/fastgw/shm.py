"""Shared memory for one gateway node: the supervisor creates named segments
before starting workers and passes their names in the environment; every
worker maps the same memory (the workers are not forked, so anonymous
mappings would not be shared).

A segment is zero-filled at creation, which every user here treats as
"empty"; the supervisor unlinks the segments when it exits.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from multiprocessing import resource_tracker, shared_memory

from fastgw._core.ratelimit import SharedCounterTable

# Slots of the node's rate-limiting table: one per (limit key, period) in use.
RATELIMIT_SLOTS = 65536

# name -> size in bytes of the segments a node has.
SEGMENTS = {"ratelimit": SharedCounterTable.nbytes(RATELIMIT_SLOTS)}

ENV_PREFIX = "FASTGW_SHM_"

_opened: dict[str, shared_memory.SharedMemory] = {}
# Called before the opened segments close: each lets go of the views it made
# of a segment (a mapping with views cannot close: BufferError at exit).
_releases: list[Callable[[], None]] = []


def create_segments() -> dict[str, shared_memory.SharedMemory]:
    """Supervisor side: create every segment; returns them (to unlink later)."""
    made = {}
    for name, size in SEGMENTS.items():
        made[name] = shared_memory.SharedMemory(create=True, size=size)
    return made


def environment(segments: dict[str, shared_memory.SharedMemory]) -> dict[str, str]:
    return {ENV_PREFIX + name.upper(): seg.name for name, seg in segments.items()}


def release(segments: dict[str, shared_memory.SharedMemory]) -> None:
    for seg in segments.values():
        seg.close()
        try:
            seg.unlink()
        except FileNotFoundError:
            pass


def on_close(release: Callable[[], None]) -> None:
    """Worker side: ``release`` lets go of a view of a segment; it runs at
    exit, before the segments close (users first, then the mapping)."""
    _releases.append(release)


def close_opened() -> None:
    """Release every view, then close the segments this process opened."""
    while _releases:
        _releases.pop()()
    while _opened:
        _, seg = _opened.popitem()
        seg.close()


def segment(name: str) -> shared_memory.SharedMemory | None:
    """Worker side: the node's segment ``name``, or None when this process was
    not started by a supervisor (tests, tools): callers fall back to memory
    of their own."""
    seg = _opened.get(name)
    if seg is not None:
        return seg
    shm_name = os.environ.get(ENV_PREFIX + name.upper())
    if not shm_name:
        return None
    seg = shared_memory.SharedMemory(name=shm_name)
    # NOTE: Python's resource tracker would unlink a segment this process
    # merely opened when it exits; the supervisor owns it.
    try:
        resource_tracker.unregister(seg._name, "shared_memory")  # type: ignore[attr-defined]
    except Exception:
        pass
    if not _opened:
        # atexit runs before module globals are torn down, so views are
        # still reachable and released in order.
        atexit.register(close_opened)
    _opened[name] = seg
    return seg

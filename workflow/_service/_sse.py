"""``GET /api/runs/{id}/events``: a run's events as server-sent events, replay first.

A subscriber registers before reading the log, so every event is either in the log, in the
run's not-yet-logged tail it was handed, or delivered to it live; ``seq`` removes the overlap.
Live delivery never waits for the client: its queue is bounded and a client that falls behind
is cut off (its stream ends; it reconnects with ``Last-Event-ID`` and replays from the log).
A run executing on another server (shared PostgreSQL) is followed by polling the log.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio

from ._runs import TERMINAL, RunManager

__all__ = ("event_stream",)

KEEPALIVE = 15.0
POLL = 0.5
BATCH = 512


def _frame(seq: int, body: str) -> bytes:
    return f"id: {seq}\ndata: {body}\n\n".encode()


def _ends(body: str) -> bool:
    if not body.startswith('{"type":"RunFinished"'):
        return False
    return json.loads(body).get("status") in TERMINAL


def _batch(rows: list[tuple[int, str]], last: int) -> tuple[bytes, int, bool]:
    """Frames for ``rows`` after ``last``, as one chunk (one socket write for many events)."""
    frames = []
    for seq, body in rows:
        if seq > last:
            last = seq
            frames.append(_frame(seq, body))
            if _ends(body):
                return b"".join(frames), last, True
    return b"".join(frames), last, False


async def event_stream(manager: RunManager, run_id: str, after: int) -> AsyncIterator[bytes]:
    """Yield SSE frames of run ``run_id`` with ``seq > after`` until the run ends."""
    sub, recent, _ = manager.subscribe(run_id)
    last = after
    try:
        yield b"retry: 1000\n\n"
        chunk, last, ended = _batch([*await manager.events.read(run_id, after), *recent], last)
        if chunk:
            yield chunk
        if ended:
            return
        idle = 0.0
        while not manager.closing.is_set():
            rows: list[tuple[int, str]] = []
            with anyio.move_on_after(POLL):
                try:
                    rows.append(await sub.receive.receive())
                except anyio.EndOfStream:
                    if sub.cut_off:
                        return  # fell behind: the client reconnects with Last-Event-ID
                    # the run ended and its events are logged: send what is left, then stop
                    chunk, last, _ = _batch(await manager.events.read(run_id, last), last)
                    if chunk:
                        yield chunk
                    return
            if rows:
                idle = 0.0
                while len(rows) < BATCH:  # whatever else is already queued goes in one write
                    try:
                        rows.append(sub.receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                chunk, last, ended = _batch(rows, last)
                if chunk:
                    yield chunk
                if ended:
                    return
                continue
            if run_id not in manager.handles:  # not executing here: follow the log
                chunk, last, ended = _batch(await manager.events.read(run_id, last), last)
                if chunk:
                    yield chunk
                if ended:
                    return
            idle += POLL
            if idle >= KEEPALIVE:
                idle = 0.0
                yield b": keepalive\n\n"
    finally:
        manager.unsubscribe(sub)

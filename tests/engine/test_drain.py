"""Drain: the outcomes queued to journal and deliver, and the activity run inline next."""

from __future__ import annotations

from durable._engine._drain import Drain


async def attempts() -> tuple[bytes, None]:
    return b"", None


def test_whoever_posts_while_nobody_drains_drains() -> None:
    drain = Drain()
    assert not drain.busy()
    assert drain.post(b"1")  # nobody drains: the caller must
    drain.draining = True
    assert not drain.post(b"2")  # the drain under way takes it too
    assert drain.take() == [(b"1", None), (b"2", None)]
    assert drain.busy()  # (still draining)
    drain.draining = False
    assert not drain.busy()


def test_one_activity_runs_inline_and_only_while_an_activity_task_drains() -> None:
    drain = Drain()
    first, second = attempts(), attempts()
    assert drain.run_inline(0, first) is None  # no activity task drains
    drain.inline_open = True
    queued = drain.run_inline(0, first)
    assert queued is not None
    assert drain.run_inline(1, second) is None  # one at a time: the next gets a task
    assert drain.take_inline() is queued
    assert drain.take_inline() is None
    drain.run_inline(1, second)
    drain.cancel_inline()
    assert drain.inline is not None
    assert drain.inline.cancelled
    first.close()

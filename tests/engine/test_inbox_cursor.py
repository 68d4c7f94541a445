"""InboxCursor: how far a run took its inbox, one read at a time, what messages become."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from durable._encoding import decode as decode_at
from durable._engine import _records as records
from durable._engine._inbox_cursor import InboxCursor, record_of

pytestmark = pytest.mark.anyio

Message = tuple[int, dict[str, Any] | str]


def decode(payload: bytes) -> Any:
    return decode_at(payload, path="w", offset=-1)


def event(name: str) -> dict[str, Any]:
    return {"k": records.EVENT, "n": name, "p": None}


class Inbox:
    """An inbox whose reads wait until the test lets them go."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.reads: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def read(self, first: int) -> list[Message]:
        self.reads.append(first)
        await self.gate.wait()
        return [message for message in self.messages if message[0] >= first - 1]


def cursor_of(inbox: Inbox | None, taken: int = 0) -> InboxCursor:
    return InboxCursor(
        inbox.read if inbox is not None else None,
        workflow_id="w",
        taken=taken,
        delivered=taken,
        record_limit=10_000,
        now=lambda: 5.0,
    )


async def test_a_pull_journals_new_messages_in_order_and_reads_again_when_asked() -> None:
    inbox = Inbox()
    inbox.messages = [(0, event("a")), (1, event("b"))]
    cursor = cursor_of(inbox, taken=1)
    posted: list[dict[str, Any]] = []
    assert cursor.begin_pull()
    inbox.gate.clear()
    pulling = asyncio.ensure_future(
        cursor.pull(lambda payload: posted.append(decode(payload)), lambda: False)
    )
    await asyncio.sleep(0)
    assert not cursor.begin_pull()  # one read at a time: this one reads once more
    inbox.messages.append((2, event("c")))
    inbox.gate.set()
    await pulling
    assert [record["n"] for record in posted] == ["b", "c"]  # (0 was taken before: skipped)
    assert [record["q"] for record in posted] == [1, 2]
    assert inbox.reads == [1, 3]  # (the second read, asked for meanwhile, finds nothing new)
    assert cursor.next == 3
    assert not cursor.pulling


async def test_nothing_is_taken_once_the_workflow_ended() -> None:
    inbox = Inbox()
    inbox.messages = [(0, event("a"))]
    cursor = cursor_of(inbox)
    assert cursor.begin_pull()
    posted: list[bytes] = []
    await cursor.pull(posted.append, lambda: True)
    assert posted == []
    assert cursor.next == 0  # (left in the inbox)


async def test_take_all_reads_once_unless_a_pull_runs_or_there_is_no_inbox() -> None:
    inbox = Inbox()
    inbox.messages = [(0, event("a"))]
    cursor = cursor_of(inbox)
    assert cursor.begin_pull()
    assert await cursor.take_all() is None
    cursor.pulling = False
    taken = await cursor.take_all()
    assert taken is not None
    assert [decode(payload)["n"] for payload in taken] == ["a"]
    assert await cursor_of(None).take_all() is None
    assert not cursor_of(None).begin_pull()


def test_what_cannot_be_delivered_becomes_a_skip() -> None:
    payload, problem = record_of(3, "it cannot be read: junk", 1.0, 10_000)
    assert problem == "it cannot be read: junk"
    assert decode(payload)["k"] == records.SKIP
    assert decode(payload)["q"] == 3
    big = {"k": records.EVENT, "n": "big", "p": "x" * 2000}
    payload, problem = record_of(4, big, 1.0, 1000)
    assert problem is not None
    assert "1000-byte record limit" in problem
    payload, problem = record_of(5, {"k": records.CANCEL, "m": "stop"}, 1.0, 1000)
    assert problem is None
    assert decode(payload) == {"k": records.CANCEL, "q": 5, "m": "stop", "t": 1.0}

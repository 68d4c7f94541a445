"""Readers that read a record or two of a journal or inbox go through the schema too.

recover() (the start and the tail), the queue's "has it ended?" (the tail) and a sender's
duplicate check (the inbox's messages) read records without a replay; the schema's
read_record / read_message decide for them what is malformed, as for every other reader.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import durable
from durable import JournalDirectory, Runtime
from durable._encoding import encode
from durable._engine import _records as records
from durable._engine._set_aside import last_standing
from durable._queue_state import journal_ended
from durable._storage._frames import StoredRecord
from tests.conftest import journal_bytes

T = 1_700_000_000.0


def stored(*built: Any) -> list[StoredRecord]:
    return [StoredRecord(8 + 100 * index, encode(record)) for index, record in enumerate(built)]


START = records.start("schema-readers", "w", [2], T, 7)
ENDED = records.end_result(4, T)
LINK = records.link("restart", "w-2", T, by=None, reason=None)


def test_the_last_record_standing_is_validated_past_the_links() -> None:
    assert last_standing(stored(START, ENDED, LINK), path="w") == ENDED
    assert last_standing(stored(START), path="w") == START
    assert last_standing([], path="w") is None
    with pytest.raises(durable.JournalCorrupted, match=r"record 1 \('end'\) is malformed"):
        last_standing(stored(START, {"k": "end", "r": 4}), path="w")  # (no time 't')
    with pytest.raises(durable.JournalCorrupted, match="malformed"):
        last_standing(stored(START, ENDED, {**LINK, "how": "copy"}), path="w")


def test_a_journal_whose_end_is_malformed_is_not_known_to_have_ended() -> None:
    assert journal_ended(stored(START, ENDED, LINK))
    assert not journal_ended(stored(START, records.end_continued([3], 0, [], T)))
    assert not journal_ended(stored(START, {"k": "end", "r": 4}))


@pytest.mark.parametrize("how", [["fork"], {"fork": 1}, None, 3])
def test_a_link_or_origin_whose_how_is_no_text_is_malformed_not_a_type_error(how: Any) -> None:
    # (`how in LINK_KINDS` hashed a list or map from the file: TypeError out of recover())
    with pytest.raises(durable.JournalCorrupted, match="'how'"):
        last_standing(stored(START, ENDED, {**LINK, "how": how}), path="w")
    assert not journal_ended(stored(START, ENDED, {**LINK, "how": how}))
    origin = {"id": "v", "how": how, "t": T}
    with pytest.raises(durable.JournalCorrupted, match="'how'"):
        records.read_record(stored({**START, "from": origin})[0], path="w", index=0)


@durable.workflow(name="schema-readers")
async def doubled(n: int) -> int:
    return n * 2


async def test_recover_skips_a_journal_whose_start_record_is_malformed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="durable")
    # (its workflow name is no text: before, recover() looked up "3" and raised UnknownWorkflow)
    (tmp_path / "bad.journal").write_bytes(journal_bytes(encode({**START, "wf": 3})))
    (tmp_path / "good.journal").write_bytes(journal_bytes(encode({**START, "id": "good"})))
    async with Runtime(tmp_path, workflows=[doubled]) as runtime:
        handles = await runtime.recover()
        assert [handle.id for handle in handles] == ["good"]
        assert await handles[0].result() == 4
    [logged] = [r.getMessage() for r in caplog.records if "bad skipped" in r.getMessage()]
    assert "its 'wf' is missing or not str" in logged


async def test_recover_skips_an_ended_journal_with_a_hostile_link_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="durable")
    hostile = {**LINK, "how": ["fork"]}
    (tmp_path / "ended.journal").write_bytes(
        journal_bytes(encode({**START, "id": "ended"}), encode(ENDED), encode(hostile))
    )
    (tmp_path / "good.journal").write_bytes(journal_bytes(encode({**START, "id": "good"})))
    async with Runtime(tmp_path, workflows=[doubled]) as runtime:
        handles = await runtime.recover()
        assert [handle.id for handle in handles] == ["good"]
        assert await handles[0].result() == 4
    assert any("ended skipped" in r.getMessage() for r in caplog.records)


async def test_a_duplicate_check_passes_over_a_malformed_message(tmp_path: Path) -> None:
    (tmp_path / "w.journal").write_bytes(journal_bytes(encode({**START, "id": "w"})))
    async with JournalDirectory(tmp_path) as store:
        # (its id is the one sent below, but it is no event: the run skips it)
        await store.post("w", encode({"k": "event", "id": "one", "t": T}))
    async with Runtime(tmp_path) as runtime:
        assert await runtime.send_event("w", "item", 1, event_id="one")
        assert not await runtime.send_event("w", "item", 1, event_id="one")


pytestmark = pytest.mark.anyio

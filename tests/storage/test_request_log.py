"""A queue's request log: records, readers beside a writer, torn tails, damage, compaction."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable import JournalCorrupted, UnsafeJournalFile, UnsupportedJournalFormat
from durable._storage import _request_log
from durable._storage._frames import encode_frame
from durable._storage._request_codec import Request
from durable._storage._request_log import (
    ADMIT,
    FINISH,
    HEADER,
    LOG,
    NEW,
    WITHDRAW,
    RequestLog,
    base_record,
    enqueue_record,
    id_record,
)


@contextlib.contextmanager
def nothing() -> Iterator[None]:
    yield


class Opened:
    """Request logs on one directory, each with its own descriptor (as two processes)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(exist_ok=True)
        self.directory = directory
        self.fds: list[int] = []
        self.logs: list[RequestLog] = []

    def log(self) -> RequestLog:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        self.fds.append(fd)
        log = RequestLog(fd, self.directory, nothing)
        self.logs.append(log)
        return log

    def close(self) -> None:
        for log in self.logs:
            log.close()
        for fd in self.fds:
            os.close(fd)


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[Opened]:
    logs = Opened(tmp_path / "queue")
    yield logs
    logs.close()


def request(name: str, priority: int = 5, key: str | None = None) -> Request:
    return Request(name, priority, 0, 1.0, 2.0, key, None, b"payload " + name.encode())


def test_requests_wait_are_admitted_and_finish(opened: Opened) -> None:
    writer, reader = opened.log(), opened.log()
    first = writer.enqueue(request("a"))
    second = writer.enqueue(request("b", key="customer-1"))
    assert first is not None
    assert second is not None
    assert (first.seq, second.seq) == (0, 1)
    assert writer.enqueue(request("a")) is None, "an id already waiting"
    assert writer.admit("a")
    assert not writer.admit("a"), "claimed once"
    assert writer.enqueue(request("a")) is None, "an id admitted"
    reader.refresh()
    assert set(reader.waiting) == {"b"}
    assert set(reader.admitted) == {"a"}
    assert reader.waiting["b"] == second, "the request as stored, key and payload"
    assert reader.withdraw("b")
    assert reader.finish("a")
    writer.refresh()
    assert (writer.waiting, writer.admitted) == ({}, {})
    assert writer.enqueue(request("c")).seq == 2  # type: ignore[union-attr]


def test_a_new_log_counts_on_from_the_old_layout(opened: Opened) -> None:
    fd = os.open(opened.directory, os.O_RDONLY | os.O_DIRECTORY)
    opened.fds.append(fd)
    log = RequestLog(fd, opened.directory, nothing, first_seq=lambda: 41)
    opened.logs.append(log)
    assert log.enqueue(request("a")).seq == 41  # type: ignore[union-attr]


def test_a_reader_leaves_out_a_frame_being_written_and_a_writer_cuts_a_dead_ones(
    opened: Opened,
) -> None:
    writer = opened.log()
    writer.enqueue(request("a"))
    path = opened.directory / LOG
    frame = encode_frame(enqueue_record(request("torn")))
    with path.open("ab") as file:
        file.write(frame[: len(frame) // 2])
    reader = opened.log()
    reader.refresh()
    assert set(reader.waiting) == {"a"}, "the torn frame is left out"
    with path.open("ab") as file:  # (the writer finishes it)
        file.write(frame[len(frame) // 2 :])
    reader.refresh()
    assert set(reader.waiting) == {"a", "torn"}
    with path.open("ab") as file:  # a writer that dies mid-frame
        file.write(frame[:7])
    other = opened.log()
    assert other.enqueue(request("b")) is not None
    reader.refresh()
    assert set(reader.waiting) == {"a", "torn", "b"}, "cut off, then appended after"
    assert path.stat().st_size == len(HEADER) + sum(
        len(encode_frame(payload))
        for payload in (
            _request_log.base_record(0),
            *(enqueue_record(r) for r in other.waiting.values()),
        )
    )


def test_damage_before_valid_frames_is_read_past_and_rewritten(
    opened: Opened, caplog: pytest.LogCaptureFixture
) -> None:
    writer = opened.log()
    for name in "abc":
        writer.enqueue(request(name))
    path = opened.directory / LOG
    data = bytearray(path.read_bytes())
    second = data.index(b"payload b")
    data[second] ^= 0xFF  # (request b's frame no longer checks out)
    path.write_bytes(bytes(data))
    reader = opened.log()
    reader.refresh()
    assert set(reader.waiting) == {"a", "c"}, "b is lost, c kept"
    with caplog.at_level(logging.WARNING, logger="durable.storage"):
        assert opened.log().enqueue(request("d")) is not None
    assert any("damaged at byte" in r.getMessage() for r in caplog.records)
    reader.refresh()
    assert set(reader.waiting) == {"a", "c", "d"}
    assert b"payload b" not in path.read_bytes(), "rewritten without the damage"


def test_a_file_that_is_not_a_log_is_refused(opened: Opened, tmp_path: Path) -> None:
    path = opened.directory / LOG
    path.write_bytes(b"GIF89a" + bytes(40))
    with pytest.raises(JournalCorrupted, match="not a request log"):
        opened.log().refresh()
    newer = HEADER[:4] + (9).to_bytes(4, "little") + b"records of a newer durable"
    path.write_bytes(newer)
    log = opened.log()
    with pytest.raises(UnsupportedJournalFormat, match="version 9"):
        log.refresh()
    with pytest.raises(UnsupportedJournalFormat):  # (again: never taken for an empty log)
        log.enqueue(request("z"))
    assert path.read_bytes() == newer, "left untouched"
    path.unlink()
    secret = tmp_path / "secret"
    secret.write_bytes(HEADER + encode_frame(enqueue_record(request("x"))))
    path.symlink_to(secret)
    with pytest.raises(UnsafeJournalFile):
        opened.log().refresh()
    with pytest.raises(UnsafeJournalFile):
        opened.log().enqueue(request("y"))
    assert secret.read_bytes() == HEADER + encode_frame(enqueue_record(request("x")))


def test_compaction_keeps_the_live_records_and_readers_follow_it(
    opened: Opened, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_request_log, "COMPACT_AFTER", 50)
    writer, reader = opened.log(), opened.log()
    writer.enqueue(request("w0"))
    reader.refresh()
    path = opened.directory / LOG
    first = path.stat().st_ino
    for index in range(200):
        if index:
            writer.enqueue(request(f"w{index}", priority=index % 3))
        writer.admit(f"w{index}")
        if index % 10:
            writer.finish(f"w{index}")
    writer.enqueue(request("last"))
    assert path.stat().st_ino != first, "compacted"
    assert path.stat().st_size < 100 * 40
    reader.refresh()
    assert set(reader.admitted) == {f"w{index}" for index in range(0, 200, 10)}
    assert set(reader.waiting) == {"last"}
    assert reader.waiting["last"].seq == 200, "numbering goes on"
    assert reader.admitted["w10"] == writer.admitted["w10"]
    writer.compact()  # (by hand: the same state)
    fresh = opened.log()
    fresh.refresh()
    assert (fresh.waiting, fresh.admitted) == (reader.waiting, reader.admitted)


def test_a_compaction_that_died_before_its_rename_changes_nothing(opened: Opened) -> None:
    writer = opened.log()
    writer.enqueue(request("a"))
    (opened.directory / NEW).write_bytes(HEADER + b"half a compaction")
    reader = opened.log()
    reader.refresh()
    assert set(reader.waiting) == {"a"}
    writer.compact()
    assert not (opened.directory / NEW).exists()
    reader.refresh()
    assert set(reader.waiting) == {"a"}


def test_a_link_at_the_compactions_name_is_not_followed(opened: Opened, tmp_path: Path) -> None:
    writer = opened.log()
    writer.enqueue(request("a"))
    outside = tmp_path / "outside"
    outside.write_bytes(b"keep")
    (opened.directory / NEW).symlink_to(outside)
    writer.compact()
    assert outside.read_bytes() == b"keep"
    assert not (opened.directory / NEW).exists()
    assert set(opened.log().waiting) | set(writer.waiting) == {"a"}


def test_a_record_whose_id_names_no_journal_is_left_out(opened: Opened) -> None:
    writer = opened.log()
    writer.enqueue(request("a"))
    with (opened.directory / LOG).open("ab") as file:
        file.write(encode_frame(enqueue_record(request("../escape"))))
        file.write(encode_frame(b"\x09unknown kind"))
    reader = opened.log()
    reader.refresh()
    assert set(reader.waiting) == {"a"}
    assert "../escape" in reader.unreadable


def test_a_forged_seq_at_the_top_of_its_range_does_not_stop_the_queue(opened: Opened) -> None:
    writer = opened.log()
    writer.enqueue(request("a"))
    forged = Request("top", 5, 2**64 - 1, 1.0, 2.0, None, None, b"x")
    with (opened.directory / LOG).open("ab") as file:
        file.write(encode_frame(enqueue_record(forged)))
        file.write(encode_frame(base_record(2**64 - 1)))
    stored = writer.enqueue(request("b"))  # (numbered after them: past a u64)
    assert stored is not None
    assert stored.seq == 1
    assert "out of range" in writer.unreadable["top"]
    writer.compact()
    reader = opened.log()
    reader.refresh()
    assert set(reader.waiting) == {"a", "b"}


def test_a_log_cut_at_every_length_keeps_its_whole_records_and_takes_appends(
    opened: Opened, tmp_path: Path
) -> None:
    # A crash may leave the log cut anywhere past what was synced: read at every length,
    # then written to, it holds exactly the records whole before the cut, and the new one.
    writer = opened.log()
    for name in ("a", "b", "c"):
        writer.enqueue(request(name))
    writer.admit("a")
    writer.finish("a")
    writer.withdraw("b")
    writer.admit("c")
    writer.enqueue(request("d"))
    whole = (opened.directory / LOG).read_bytes()
    states: dict[int, tuple[set[str], set[str]]] = {}
    cut = Opened(tmp_path / "cut")
    try:
        for length in range(len(whole) + 1):
            (cut.directory / LOG).write_bytes(whole[:length])
            reader = cut.log()
            reader.refresh()
            state = (set(reader.waiting), set(reader.admitted))
            assert reader.next_seq <= 4
            if length >= len(HEADER):
                states.setdefault(reader.version[1], state)
                assert states[reader.version[1]] == state  # (nothing of a torn frame)
            appended = cut.log().enqueue(request("e"))
            assert appended is not None
            again = cut.log()
            again.refresh()
            assert set(again.waiting) == state[0] | {"e"}
            assert set(again.admitted) == state[1]
            assert again.waiting["e"].seq >= max(
                (r.seq + 1 for r in again.waiting.values() if r.workflow_id != "e"), default=0
            )
            (cut.directory / LOG).unlink()
            cut.close()
            cut.logs.clear()
            cut.fds.clear()
    finally:
        cut.close()
    assert states[len(whole)] == ({"d"}, {"c"})
    assert len(states) == 10  # (the header, the base and 8 frames: each read once whole)


def test_forged_records_never_serve_a_request_twice_nor_drop_one(opened: Opened) -> None:
    writer = opened.log()
    first = writer.enqueue(request("a"))
    writer.enqueue(request("b"))
    with (opened.directory / LOG).open("ab") as file:
        for payload in (
            enqueue_record(request("a", priority=0)),  # (its id again: the first stays)
            id_record(ADMIT, "ghost"),  # (never enqueued)
            id_record(FINISH, "b"),  # (waiting, not admitted: no finish of it)
            id_record(WITHDRAW, "ghost"),
            b"\x02",  # (an admit of the empty id)
            b"\x01\xff",  # (an enqueue too short for its id's length)
            b"\x05\x01\x02",  # (a base of the wrong size)
        ):
            file.write(encode_frame(payload))
    reader = opened.log()
    reader.refresh()
    assert reader.waiting == {"a": first, "b": reader.waiting["b"]}
    assert reader.admitted == {}
    assert writer.admit("a")
    assert not reader.admit("a")  # (once)
    writer.enqueue(request("a"))  # (admitted: refused)
    reader.refresh()
    assert set(reader.admitted) == {"a"}
    assert set(reader.waiting) == {"b"}


def test_a_frame_embedded_in_a_torn_requests_payload_is_never_read_as_a_record(
    opened: Opened,
) -> None:
    # A sender's payload may hold the bytes of a whole frame (an enqueue of another id, an
    # admit). Its enqueue torn by a crash (or seen by a reader mid-write) ends past the end
    # of the file: the bytes after its start are its own payload, not frames to read past to.
    writer = opened.log()
    writer.enqueue(request("a"))
    planted = encode_frame(enqueue_record(request("forged"))) + encode_frame(id_record(ADMIT, "a"))
    hostile = Request("big", 5, 1, 1.0, 2.0, None, None, b"x" * 100 + planted + b"y" * 100)
    frame = encode_frame(enqueue_record(hostile))
    path = opened.directory / LOG
    with path.open("ab") as file:  # (its writer killed after the planted bytes)
        file.write(frame[: frame.index(planted) + len(planted) + 10])
    reader = opened.log()
    reader.refresh()
    assert (set(reader.waiting), set(reader.admitted)) == ({"a"}, set())
    with path.open("ab") as file:  # (or it was only being written: now whole)
        file.write(frame[frame.index(planted) + len(planted) + 10 :])
    reader.refresh()
    assert (set(reader.waiting), set(reader.admitted)) == ({"a", "big"}, set())
    path.write_bytes(path.read_bytes()[: -len(frame) + 200])  # (torn again, for a writer)
    other = opened.log()
    assert other.enqueue(request("c")) is not None  # (cuts the torn frame off)
    again = opened.log()
    again.refresh()
    assert (set(again.waiting), set(again.admitted)) == ({"a", "c"}, set())


def test_a_damaged_frame_whose_length_holds_is_skipped_whole(opened: Opened) -> None:
    # Damage inside a frame's payload (its length intact: a valid frame starts where it
    # says it ends) is read past to that frame, never to the frames a sender's payload holds.
    writer = opened.log()
    writer.enqueue(request("a"))
    planted = encode_frame(enqueue_record(request("forged")))
    hostile = Request("big", 5, 1, 1.0, 2.0, None, None, b"x" * 100 + planted + b"y" * 100)
    path = opened.directory / LOG
    with path.open("ab") as file:
        file.write(encode_frame(enqueue_record(hostile)))
    for name in ("c", "d"):
        writer.enqueue(request(name))
    data = bytearray(path.read_bytes())
    data[data.index(b"x" * 100) + 50] ^= 0xFF  # (its checksum no longer holds)
    path.write_bytes(bytes(data))
    reader = opened.log()
    reader.refresh()
    assert set(reader.waiting) == {"a", "c", "d"}
    last = data[: data.index(b"y" * 100) + 100 + 4]  # (it the last frame: nothing after)
    path.write_bytes(bytes(last))
    reader = opened.log()
    reader.refresh()
    assert set(reader.waiting) == {"a"}
    assert opened.log().enqueue(request("e")) is not None  # (rewritten without it)
    reader = opened.log()
    reader.refresh()
    assert set(reader.waiting) == {"a", "e"}
    assert b"forged" not in path.read_bytes()

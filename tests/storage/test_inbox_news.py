"""The directory's inbox news: what senders announce, what pollers read, what they distrust.

The news only saves pollers from looking at every inbox; when it cannot be trusted the
answer is None (look at every inbox), never a silent "nothing new".
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable._storage import _inbox_news as news
from durable._storage._directory import _is_journal_name


@pytest.fixture
def directory_fd(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY)
    yield fd
    os.close(fd)


def test_announced_names_are_read_once_in_order(directory_fd: int) -> None:
    assert news.read_news(directory_fd, None, _is_journal_name) == (None, 0)  # first: everything
    assert news.read_news(directory_fd, 0, _is_journal_name) == ([], 0)  # (no file yet)
    news.announce(directory_fd, "order-1")
    news.announce(directory_fd, "order-2")
    names, cursor = news.read_news(directory_fd, 0, _is_journal_name)
    assert names == ["order-1", "order-2"]
    assert news.read_news(directory_fd, cursor, _is_journal_name) == ([], cursor)
    news.announce(directory_fd, "order-1")
    assert news.read_news(directory_fd, cursor, _is_journal_name)[0] == ["order-1"]


def test_a_line_still_being_written_waits_for_the_next_poll(
    tmp_path: Path, directory_fd: int
) -> None:
    (tmp_path / news.NEWS_FILE).write_bytes(b"a\nhalf")
    names, cursor = news.read_news(directory_fd, 0, _is_journal_name)
    assert (names, cursor) == (["a"], 2)
    with (tmp_path / news.NEWS_FILE).open("ab") as file:
        file.write(b"-done\n")
    assert news.read_news(directory_fd, cursor, _is_journal_name)[0] == ["half-done"]


def test_hostile_lines_are_skipped_not_followed(tmp_path: Path, directory_fd: int) -> None:
    (tmp_path / news.NEWS_FILE).write_bytes(
        b"../../etc/passwd\n.hidden\n\xff\xfe\n" + b"x" * 300 + b"\nfine\n\n"
    )
    assert news.read_news(directory_fd, 0, _is_journal_name)[0] == ["fine"]


def test_news_that_shrank_or_is_a_link_means_look_at_everything(
    tmp_path: Path, directory_fd: int
) -> None:
    news.announce(directory_fd, "a")
    _, cursor = news.read_news(directory_fd, 0, _is_journal_name)
    (tmp_path / news.NEWS_FILE).write_bytes(b"")  # (someone compacted it)
    assert news.read_news(directory_fd, cursor, _is_journal_name) == (None, 0)
    (tmp_path / news.NEWS_FILE).unlink()
    target = tmp_path / "elsewhere"
    target.write_bytes(b"a\n")
    (tmp_path / news.NEWS_FILE).symlink_to(target)
    assert news.read_news(directory_fd, 0, _is_journal_name) == (None, 0)
    news.announce(directory_fd, "b")  # never written through the link
    assert target.read_bytes() == b"a\n"


def test_too_much_news_at_once_means_look_at_everything_and_long_news_is_emptied(
    tmp_path: Path, directory_fd: int
) -> None:
    line = b"w" * 99 + b"\n"
    (tmp_path / news.NEWS_FILE).write_bytes(line * (news.NEWS_READ_LIMIT // 100 + 1))
    names, cursor = news.read_news(directory_fd, 0, _is_journal_name)
    assert names is None
    assert cursor == 0  # (over COMPACT_AT: emptied, and the caller looks at everything)
    assert (tmp_path / news.NEWS_FILE).stat().st_size == 0
    news.announce(directory_fd, "after")
    assert news.read_news(directory_fd, cursor, _is_journal_name)[0] == ["after"]

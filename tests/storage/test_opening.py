"""Nothing outside the journal directory is opened: planted links, special files, open dirs.

Every planted link points at a file inside tmp_path (a stand-in for ~/.bashrc), and each test
asserts that file was neither written nor created.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from durable import (
    JournalDirectory,
    JournalError,
    JournalNotFound,
    UnsafeJournalDirectory,
    UnsafeJournalFile,
)
from durable._catalog import Catalog

pytestmark = pytest.mark.anyio

VICTIM_TEXT = b"precious, outside the directory\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the journal directory that a planted link points to."""
    path = tmp_path / "outside" / "precious.txt"
    path.parent.mkdir()
    path.write_bytes(VICTIM_TEXT)
    return path


def untouched(victim: Path) -> bool:
    return victim.read_bytes() == VICTIM_TEXT


async def started(store: JournalDirectory, name: str, *payloads: bytes) -> None:
    journal = await store.open(name)
    for payload in payloads:
        await journal.append(payload)
    await journal.close()


@pytest.mark.parametrize("prepared", [False, True], ids=["first-open", "create_if_new"])
async def test_a_link_at_a_journal_is_refused_not_followed(
    journal_dir: Path, victim: Path, prepared: bool
) -> None:
    journal_dir.mkdir(mode=0o700)
    (journal_dir / "wf.journal").symlink_to(victim)
    async with JournalDirectory(journal_dir) as store:
        if prepared:  # (the directory is set up: a new journal opens on the caller's thread)
            await started(store, "other", b"x")
        with pytest.raises(UnsafeJournalFile, match="is a symbolic link") as caught:
            await store.open("wf")
        assert caught.value.path == journal_dir / "wf.journal"
        assert caught.value.found == "a symbolic link"
        assert "remove it" in str(caught.value)
        with pytest.raises(UnsafeJournalFile):
            await store.read("wf")
    assert untouched(victim)


async def test_a_dangling_link_at_a_journal_creates_nothing(
    journal_dir: Path, tmp_path: Path
) -> None:
    journal_dir.mkdir(mode=0o700)
    target = tmp_path / "outside-new.txt"
    (journal_dir / "wf.journal").symlink_to(target)
    async with JournalDirectory(journal_dir) as store:
        await started(store, "other")
        with pytest.raises(UnsafeJournalFile):
            await store.open("wf")
    assert not target.exists()


async def test_a_link_at_an_inbox_is_refused_for_sending_and_reading(
    journal_dir: Path, victim: Path, tmp_path: Path
) -> None:
    journal_dir.mkdir(mode=0o700)
    dangling = tmp_path / "outside-inbox"
    (journal_dir / "a.inbox").symlink_to(victim)
    (journal_dir / "b.inbox").symlink_to(dangling)
    async with JournalDirectory(journal_dir) as store:
        for name in ("a", "b"):
            await started(store, name, b"start")
            with pytest.raises(UnsafeJournalFile, match=f"{name}.inbox is a symbolic link"):
                await store.post(name, b"event")
        with pytest.raises(UnsafeJournalFile):
            await store.inbox("a")
        assert store.may_have_mail("a")  # (a link's own size: reading then reports it)
    assert untouched(victim)
    assert not dangling.exists()


async def test_a_link_at_the_next_generation_is_refused_and_the_old_one_kept(
    journal_dir: Path, victim: Path
) -> None:
    journal_dir.mkdir(mode=0o700)
    (journal_dir / "wf.journal.next").symlink_to(victim)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("wf")
        await journal.append(b"first generation")
        with pytest.raises(UnsafeJournalFile, match=r"wf\.journal\.next is a symbolic link"):
            await store.rotate(journal, b"second generation")
        await journal.close()
        assert [r.payload for r in await store.read("wf")] == [b"first generation"]
    assert untouched(victim)
    assert (journal_dir / "wf.journal.next").is_symlink()  # (reported, not silently removed)


async def test_links_at_the_kept_generation_names_are_replaced_not_followed(
    journal_dir: Path, victim: Path
) -> None:
    journal_dir.mkdir(mode=0o700)
    (journal_dir / "wf.journal.prev").symlink_to(victim)
    (journal_dir / "wf.journal.prev.tmp").symlink_to(victim)
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("wf")
        await journal.append(b"one")
        rotated = await store.rotate(journal, b"two")
        await rotated.close()
        assert [r.payload for r in await store.read("wf")] == [b"two"]
    assert untouched(victim)
    kept = journal_dir / "wf.journal.prev"
    assert not kept.is_symlink()
    assert stat.S_ISREG(kept.lstat().st_mode)
    assert not (journal_dir / "wf.journal.prev.tmp").exists()


async def test_a_leftover_next_generation_from_a_crash_is_replaced(journal_dir: Path) -> None:
    journal_dir.mkdir(mode=0o700)
    (journal_dir / "wf.journal.next").write_bytes(b"half a generation a crash left")
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("wf")
        await journal.append(b"one")
        await (await store.rotate(journal, b"two")).close()
        assert [r.payload for r in await store.read("wf")] == [b"two"]
    assert not (journal_dir / "wf.journal.next").exists()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
async def test_a_special_file_at_a_journal_or_inbox_is_refused_without_hanging(
    journal_dir: Path, kind: str
) -> None:
    journal_dir.mkdir(mode=0o700)
    make = os.mkfifo if kind == "fifo" else os.mkdir
    for name in ("wf.journal", "ok.inbox", "wf.journal.next"):
        make(journal_dir / name)
    found = "a fifo" if kind == "fifo" else "a directory"
    async with JournalDirectory(journal_dir) as store:
        async with asyncio.timeout(10):  # (a fifo opened for reading would block for ever)
            with pytest.raises(UnsafeJournalFile, match=f"wf.journal is {found}"):
                await store.open("wf")
            with pytest.raises(UnsafeJournalFile, match=f"wf.journal is {found}"):
                await store.read("wf")
            listed = await store.read_many(["wf"])
            assert isinstance(listed["wf"], UnsafeJournalFile)
            await started(store, "ok", b"start")
            with pytest.raises(UnsafeJournalFile, match=f"ok.inbox is {found}"):
                await store.post("ok", b"event")
            with pytest.raises(UnsafeJournalFile, match=f"ok.inbox is {found}"):
                await store.inbox("ok")
            (journal_dir / "wf.journal.next").rename(journal_dir / "moved")
            (journal_dir / "wf.journal").rename(journal_dir / "moved2")
            journal = await store.open("wf")
            await journal.append(b"one")
            (journal_dir / "moved").rename(journal_dir / "wf.journal.next")
            with pytest.raises(UnsafeJournalFile, match=f"wf.journal.next is {found}"):
                await store.rotate(journal, b"two")
            await journal.close()


async def test_a_listing_marks_a_linked_journal_unreadable_and_lists_the_rest(
    journal_dir: Path, victim: Path
) -> None:
    journal_dir.mkdir(mode=0o700)
    victim.write_bytes(b"")  # (an empty file would read as a new journal, if followed)
    async with JournalDirectory(journal_dir) as store:
        await started(store, "fine", b"\x81\xa1k\xa5start")
    (journal_dir / "planted.journal").symlink_to(victim)
    async with JournalDirectory(journal_dir) as reader:
        found = await reader.read_many(["fine", "planted"])
        assert isinstance(found["planted"], UnsafeJournalFile)
        assert not isinstance(found["fine"], JournalError)
    async with Catalog(journal_dir) as catalog:
        listing = await catalog.listing()
        assert "symbolic link" in listing.unreadable["planted"]
        versions = catalog._versions(["planted"])["planted"]
        assert versions[1] == (journal_dir / "planted.journal").lstat().st_ino  # (the link's)
    assert victim.read_bytes() == b""


async def test_reading_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    async with JournalDirectory(tmp_path / "none") as store:
        with pytest.raises(JournalNotFound):
            await store.read("wf")
        assert isinstance((await store.read_many(["wf"]))["wf"], JournalNotFound)
        assert await store.inbox("wf") == []
        assert await store.inbox_sizes(["wf"]) == {"wf": -1}
        assert await store.list() == []
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777, 0o1777])
async def test_a_directory_others_can_write_is_refused(journal_dir: Path, mode: int) -> None:
    journal_dir.mkdir()
    journal_dir.chmod(mode)
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(UnsafeJournalDirectory, match="chmod go-w") as caught:
            await store.open("wf")
        assert caught.value.mode & 0o7777 == mode
        with pytest.raises(UnsafeJournalDirectory):
            await store.post("wf", b"event")
    assert list(journal_dir.iterdir()) == []


async def test_a_directory_owned_by_another_user_is_refused(journal_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can give a directory to another user")
    journal_dir.mkdir(mode=0o700)
    os.chown(journal_dir, 65534, 65534)  # nobody
    async with JournalDirectory(journal_dir) as store:
        with pytest.raises(UnsafeJournalDirectory, match="owned by uid 65534") as caught:
            await store.open("wf")
        assert caught.value.owner == 65534
    assert list(journal_dir.iterdir()) == []


async def test_readers_may_inspect_a_directory_they_would_not_write_in(journal_dir: Path) -> None:
    async with JournalDirectory(journal_dir) as store:
        await started(store, "wf", b"one")
    journal_dir.chmod(0o775)  # (an operator's shared, group-writable directory)
    async with JournalDirectory(journal_dir) as reader:
        assert [r.payload for r in await reader.read("wf")] == [b"one"]
        assert await reader.list() == ["wf"]

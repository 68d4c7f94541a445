"""A full disk is a JournalWriteError naming the file, and leaves nothing half-made.

Fast cases inject ENOSPC into the storage modules' writes; one case fills a real, loop-mounted
ext4 file system (skipped where mounting is not permitted).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import durable
import durable._storage._directory as directory_module
import durable._storage._group_commit as group_commit
import durable._storage._inbox as inbox_module
import durable._storage._journal_file as journal_file_module
from durable import JournalDirectory, JournalWriteError

pytestmark = pytest.mark.anyio


def full_disk_after(limit: int) -> Callable[[int, bytes], None]:
    """A write_all that writes at most `limit` more bytes in all, then fails with ENOSPC."""
    real = group_commit.write_all
    left = [limit]

    def write_all(fd: int, data: bytes) -> None:
        if len(data) > left[0]:
            if left[0]:
                os.write(fd, data[: left[0]])
            left[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        left[0] -= len(data)
        real(fd, data)

    return write_all


async def test_a_full_disk_while_rotating_is_a_write_error_and_leaves_no_next_file(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with JournalDirectory(journal_dir) as store:
        journal = await store.open("wf")
        await journal.append(b"end of the first generation")
        for written in (0, 10):  # (nothing written, or a part)
            monkeypatch.setattr(directory_module, "write_all", full_disk_after(written))
            with pytest.raises(JournalWriteError, match="No space left on device") as caught:
                await store.rotate(journal, b"next generation " * 100)
            assert caught.value.errno == errno.ENOSPC
            assert caught.value.path == journal_dir / "wf.journal"
            assert "writing the next generation wf.journal.next" in str(caught.value)
            assert sorted(path.name for path in journal_dir.iterdir()) == ["wf.journal"]
        monkeypatch.undo()
        await journal.append(b"the old handle still appends")  # (rotation never began)
        await journal.close()
        reopened = await store.open("wf")
        assert [r.payload for r in reopened.records] == [
            b"end of the first generation",
            b"the old handle still appends",
        ]
        rotated = await store.rotate(reopened, b"next generation")
        await rotated.close()
        assert [r.payload for r in await store.read("wf")] == [b"next generation"]


async def test_a_full_disk_while_posting_cuts_the_message_off_again(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with JournalDirectory(journal_dir) as store:
        await (await store.open("wf")).close()
        assert await store.post("wf", b"first") == 0
        size = (journal_dir / "wf.inbox").stat().st_size
        monkeypatch.setattr(inbox_module, "write_all", full_disk_after(5))
        with pytest.raises(JournalWriteError, match="appending a message to the inbox") as caught:
            await store.post("wf", b"second, which does not fit")
        assert caught.value.path == journal_dir / "wf.inbox"
        assert (journal_dir / "wf.inbox").stat().st_size == size
        monkeypatch.undo()
        assert [r.payload for r in await store.inbox("wf")] == [b"first"]
        assert await store.post("wf", b"second") == 1


async def test_a_full_disk_while_creating_a_journal_is_a_write_error(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    async with JournalDirectory(journal_dir) as store:
        await (await store.open("warm")).close()  # (the next open creates on this thread)
        monkeypatch.setattr(journal_file_module, "write_all", no_space)
        with pytest.raises(JournalWriteError, match="new journal's header") as caught:
            await store.open("wf")
        assert caught.value.path == journal_dir / "wf.journal"
        monkeypatch.undo()
        journal = await store.open("wf")  # (an empty file is a new journal)
        assert journal.records == []
        await journal.close()


@durable.workflow(name="renews-big")
async def renews_big(generation: int, blob: bytes) -> int:
    if generation == 0:
        durable.continue_as_new(1, blob)
    return len(blob)


async def test_continue_as_new_on_a_full_disk_reaches_the_caller_and_resumes_later(
    journal_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directory_module, "write_all", full_disk_after(0))
    async with durable.Runtime(journal_dir) as runtime:
        with pytest.raises(JournalWriteError, match="No space left"):
            await runtime.run(renews_big, 0, b"b" * 1000, id="wf")
    assert sorted(path.name for path in journal_dir.iterdir()) == ["wf.journal"]
    monkeypatch.undo()
    async with durable.Runtime(journal_dir) as runtime:
        assert await runtime.run(renews_big, 0, b"b" * 1000, id="wf") == 1000


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 8 MiB ext4 file system, loop-mounted in tmp_path (skipped when not permitted)."""
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        pytest.skip("a real full disk needs root and mkfs.ext4 (to loop-mount a small ext4)")
    image, mount_point = tmp_path / "disk.img", tmp_path / "disk"
    with image.open("wb") as file:
        file.truncate(8 << 20)
    mount_point.mkdir()
    made = subprocess.run(
        ["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {made.stderr.strip()}")
    mounted = subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"loop mounts are not permitted here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def fill(path: Path) -> None:
    """Write `path` until the file system is full."""
    with path.open("wb", buffering=0) as file:
        chunk = b"\xff" * (64 << 10)
        while True:
            try:
                file.write(chunk)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
        os.fsync(file.fileno())


async def test_a_real_full_disk_while_rotating(small_filesystem: Path) -> None:
    directory = small_filesystem / "journals"
    async with JournalDirectory(directory) as store:
        journal = await store.open("wf")
        await journal.append(b"end of the first generation")
        fill(small_filesystem / "filler")
        with pytest.raises(JournalWriteError, match="No space left on device") as caught:
            await store.rotate(journal, os.urandom(1 << 20))
        assert caught.value.errno == errno.ENOSPC
        assert sorted(path.name for path in directory.iterdir()) == ["wf.journal"]
        await journal.close()
        (small_filesystem / "filler").unlink()
        reopened = await store.open("wf")
        assert [r.payload for r in reopened.records] == [b"end of the first generation"]
        await (await store.rotate(reopened, b"next")).close()
        assert [r.payload for r in await store.read("wf")] == [b"next"]

"""Missing permissions are durable errors naming the path and the permission.

Root passes every permission check, so each case runs in a child process that drops to
`nobody` first (skipped when the suite does not run as root). The child starts as root,
imports what it needs, moves into tmp_path (0711, so `nobody` may search it but not list or
write it) and only then gives up root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import durable

pytestmark = pytest.mark.anyio

NOBODY = 65534

if os.geteuid() != 0:
    pytest.skip(
        "permission tests drop privileges to nobody, which needs root (as a user, permission "
        "bits would stop this test's own setup)",
        allow_module_level=True,
    )

CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys
    import anyio._backends._asyncio, concurrent.futures.thread  # (imported while root:
    import durable                                               # the stdlib is under /root)
    from durable._storage._directory import JournalDirectory

    @durable.activity(name="side-effect")
    async def side_effect(n: int) -> int:
        print("SIDE EFFECT", flush=True)
        return n * 2

    @durable.workflow(name="doubler")
    async def doubler(n: int) -> int:
        return await side_effect(n)

    @durable.workflow(name="renewer")
    async def renewer(n: int) -> int:
        if n < 1:
            durable.continue_as_new(n + 1)
        return n

    async def main(action):
        if action == "run":
            async with durable.Runtime(directory) as runtime:
                return await runtime.run(doubler, 21, id="wf")
        if action == "renew":
            async with durable.Runtime(directory) as runtime:
                return await runtime.run(renewer, 0, id="wf")
        if action == "post":
            async with JournalDirectory(directory) as store:
                return await store.post("wf", b"event")
        if action == "read":
            async with JournalDirectory(directory) as store:
                return len(await store.read("wf"))

    action, directory = sys.argv[1], sys.argv[2]
    os.chdir(sys.argv[3])
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
    try:
        result = asyncio.run(main(action))
    except Exception as error:
        found = {"type": type(error).__name__, "message": str(error)}
        found["path"] = str(getattr(error, "path", ""))
        found["permission"] = getattr(error, "permission", None)
        found["is_permission_error"] = isinstance(error, PermissionError)
        print(json.dumps(found))
    else:
        print(json.dumps({"result": result}))
    """
)


@durable.activity(name="side-effect")
async def side_effect(n: int) -> int:
    return n * 2


@durable.workflow(name="doubler")
async def doubler(n: int) -> int:
    return await side_effect(n)


@durable.workflow(name="renewer")
async def renewer(n: int) -> int:
    if n < 1:
        durable.continue_as_new(n + 1)
    return n


def as_nobody(
    tmp_path: Path, action: str, directory: str = "journals"
) -> tuple[dict[str, Any], str]:
    """Run CHILD's `action` as nobody in tmp_path; its JSON line and everything it printed."""
    tmp_path.chmod(0o711)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, action, directory, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), done.stdout


def give_to_nobody(*paths: Path, mode: int | None = None) -> None:
    for path in paths:
        os.chown(path, NOBODY, NOBODY)
        if mode is not None:
            path.chmod(mode)


@pytest.fixture
def journals(tmp_path: Path) -> Path:
    directory = tmp_path / "journals"
    directory.mkdir(mode=0o700)  # (root's while the test sets it up: then given to nobody)
    return directory


async def test_a_finished_workflow_with_a_read_only_journal_returns_its_result(
    tmp_path: Path, journals: Path
) -> None:
    async with durable.Runtime(journals) as runtime:
        assert await runtime.run(doubler, 21, id="wf") == 42
    journal = journals / "wf.journal"
    give_to_nobody(journals, journal)
    journal.chmod(0o400)
    before = journal.read_bytes()
    found, printed = as_nobody(tmp_path, "run")
    assert found == {"result": 42}
    assert "SIDE EFFECT" not in printed
    assert journal.read_bytes() == before


async def test_an_unfinished_workflow_with_a_read_only_journal_stops_before_its_step(
    tmp_path: Path, journals: Path
) -> None:
    async with durable.Runtime(journals) as runtime:
        await runtime.run(doubler, 21, id="wf")
    journal = journals / "wf.journal"
    async with durable.JournalDirectory(journals) as store:
        second = (await store.read("wf"))[1].offset
    journal.write_bytes(journal.read_bytes()[:second])  # (its start record only: a step to run)
    give_to_nobody(journals, journal)
    journal.chmod(0o400)
    before = journal.read_bytes()
    found, printed = as_nobody(tmp_path, "run")
    assert found["type"] == "JournalPermissionDenied", found
    assert found["is_permission_error"]
    assert found["path"] == "journals/wf.journal"
    assert found["permission"] == "write"
    assert "SIDE EFFECT" not in printed
    assert journal.read_bytes() == before


async def test_a_journal_that_cannot_be_read_names_the_file_and_the_permission(
    tmp_path: Path, journals: Path
) -> None:
    async with durable.Runtime(journals) as runtime:
        await runtime.run(doubler, 21, id="wf")
    journal = journals / "wf.journal"
    give_to_nobody(journals, journal)
    journal.chmod(0o200)
    for action in ("run", "read"):
        found, _ = as_nobody(tmp_path, action)
        assert found["type"] == "JournalPermissionDenied", found
        assert found["path"] == "journals/wf.journal"
        assert found["permission"] in ("read", "read and write")
        assert "uid 65534" in found["message"]
        assert "mode 0200" in found["message"]


async def test_a_directory_without_write_permission_names_the_directory(
    tmp_path: Path, journals: Path
) -> None:
    give_to_nobody(journals, mode=0o500)
    found, printed = as_nobody(tmp_path, "run")
    assert found["type"] == "JournalPermissionDenied", found
    assert found["path"] == "journals"
    assert found["permission"] == "write and search (w and x)"
    assert "to create wf.journal in it" in found["message"]
    assert "SIDE EFFECT" not in printed
    assert list(journals.iterdir()) == []


async def test_a_parent_without_write_permission_names_the_parent(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir(mode=0o755)  # (root's: nobody may not create in it)
    found, _ = as_nobody(tmp_path, "run", "shared/journals")
    assert found["type"] == "JournalPermissionDenied", found
    assert found["path"] == "shared"
    assert "to create the journal directory journals in it" in found["message"]
    assert not (tmp_path / "shared" / "journals").exists()


async def test_an_inbox_without_write_permission_names_the_inbox(
    tmp_path: Path, journals: Path
) -> None:
    inbox = journals / "wf.inbox"
    inbox.write_bytes(b"")
    give_to_nobody(journals, inbox)
    inbox.chmod(0o400)
    found, _ = as_nobody(tmp_path, "post")
    assert found["type"] == "JournalPermissionDenied", found
    assert found["path"] == "journals/wf.inbox"
    assert inbox.read_bytes() == b""


async def test_continue_as_new_in_a_read_only_directory_keeps_the_old_generation(
    tmp_path: Path, journals: Path
) -> None:
    async with durable.JournalDirectory(journals) as store:
        journal = await store.open("wf")
        await journal.close()
    give_to_nobody(journals / "wf.journal")
    give_to_nobody(journals, mode=0o500)  # (the journal is writable; its next one is not)
    found, _ = as_nobody(tmp_path, "renew")
    assert found["type"] == "JournalPermissionDenied", found
    assert found["path"] == "journals"
    assert "wf.journal.next" in found["message"]
    assert sorted(path.name for path in journals.iterdir()) == ["wf.journal"]
    os.chown(journals, 0, 0)
    journals.chmod(0o700)
    async with durable.Runtime(journals) as runtime:  # (resumes: renews, then finishes)
        assert await runtime.run(renewer, 0, id="wf") == 1

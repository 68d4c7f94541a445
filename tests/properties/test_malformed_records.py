"""Checksum-valid journals of malformed records reach every reader as durable errors only.

A healthy journal of every record kind (one the workflow below replays to its end) is
mutated: keys dropped, values swapped for others of any type (huge ints, NaN, inf, signaling
NaN Decimals, datetimes, sets, bytes...), kinds changed, records replaced. It is written
through the storage API (so the frame format is storage's business) next to an intact
journal, then read by every reader: replay (recover and run), describe, the catalog's
listing, history and inbox, `durable list` and `durable show`, and the web UI's API.

Each may succeed or raise a DurableError; a listing must mark the journal unreadable (or
list it) and still list the intact one; when the schema refuses the journal, replay must
say JournalCorrupted (or UnsupportedJournalFormat) naming its file. Never another exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

import durable
from durable import JournalDirectory, PostgresStore, Runtime
from durable._catalog import Catalog
from durable._cli import main
from durable._encoding import encode
from durable._engine import _records as records
from durable._engine._replay import digest_of
from durable._ui import create_app

T = 1_700_000_000.0
ID, HEALTHY = "fuzzed-1", "healthy"
TOKEN = "fuzz-token"
ERROR: records.ErrorInfo = {"type": "ValueError", "msg": "flaky", "tb": "Traceback..."}


@durable.activity(name="step")
async def step(index: int) -> int:
    return index * 10


@durable.workflow(name="fuzzed")
async def fuzzed(count: int) -> list[Any]:
    durable.set_status({"at": "start"})
    taken = durable.patched("p1")
    results: list[Any] = [await step(index) for index in range(1, count + 1)]
    await asyncio.sleep(0.001)
    results.append(await durable.wait_for_event("go"))
    return [taken, *results]


def digest(index: int) -> str:
    return digest_of(encode([[index], {}]))


def healthy_journal() -> list[Any]:
    """What fuzzed(2) journals: every kind of record (but a cancel), ending in its result."""
    return [
        records.start("fuzzed", ID, [2], T, 7),
        records.status(0, {"at": "start"}, T),
        records.patch("p1", 1),
        records.scheduled(1, "step", digest(1), 1, now=T),
        records.done(1, "step", digest(1), 1, now=T + 1, result=10, began=T),
        records.retry(2, "step", digest(2), 1, error=ERROR, retry_at=T + 2, began=T, now=T + 1),
        records.done(2, "step", digest(2), 2, now=T + 2, result=20, began=T + 2),
        records.timer(3, T + 3),
        records.fired(3, T + 3),
        records.wait(4, "go"),
        records.event(0, "go", {"payload": (1, 2)}, T + 4, event_id="e-1"),
        records.cancel(1, "not now", T + 5),
        records.end_result([True, 10, 20, {"payload": (1, 2)}], T + 6),
    ]


# Values of every type a journal can hold, with the edges that broke readers before.
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([0, -1, 2**63 - 1, 2**64 - 1, -(2**63), 10**18]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300, -1e300, 1e20]),
    st.text(max_size=6),
    st.binary(max_size=6),
    st.sampled_from([Decimal("sNaN"), Decimal("NaN"), Decimal("-Infinity"), Decimal("1e999999")]),
    st.datetimes(timezones=st.just(UTC)),
    st.sampled_from(["start", "sched", "retry", "done", "timer", "fired", "wait", "event"]),
    st.sampled_from(["cancel", "status", "patch", "end", "skip", "child", "in-doubt"]),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["k", "type", "msg", "id", "kind", "a"]), inner, max_size=3
        ),
        st.frozensets(st.integers(-(2**63), 2**63 - 1), max_size=2),
        st.tuples(inner, inner),
    ),
    max_leaves=6,
)
KEYS = ["k", "v", "wf", "id", "args", "t", "seed", "gen", "q", "parent", "carry", "s", "a"]
KEYS += ["d", "n", "e", "at", "b", "r", "x", "p", "m", "c", "cont", "reason"]
mutation = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(KEYS)),
    st.tuples(st.just("set"), st.sampled_from(KEYS), values),
    st.tuples(st.just("error"), st.sampled_from(["type", "msg", "tb", "kind", "id"]), values),
    st.tuples(st.just("replace"), values),
    st.tuples(st.just("remove")),
    st.tuples(st.just("duplicate")),
)


@st.composite
def malformed_journals(draw: st.DrawFn) -> list[Any]:
    journal = healthy_journal()
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(journal) - 1))
        change = draw(mutation)
        record = journal[index] if isinstance(journal[index], dict) else {}
        if change[0] == "drop":
            journal[index] = {k: v for k, v in record.items() if k != change[1]}
        elif change[0] == "set":
            journal[index] = {**record, change[1]: change[2]}
        elif change[0] == "error":
            journal[index] = {**record, "e": {**ERROR, change[1]: change[2]}}
        elif change[0] == "replace":
            journal[index] = change[1]
        elif change[0] == "remove" and len(journal) > 1:
            del journal[index]
        else:
            journal.insert(index, journal[index])
    return journal


async def write_journals(directory: Path, journal: list[Any]) -> None:
    """The fuzzed journal and an intact one, written through the storage API."""
    async with JournalDirectory(directory) as store:
        for name, content in ((ID, journal), (HEALTHY, healthy_journal())):
            handle = await store.open(name)
            for record in content:
                await handle.append(encode(record))
            await handle.close()


def schema_refuses(error: BaseException | None) -> bool:
    return isinstance(error, durable.JournalCorrupted | durable.UnsupportedJournalFormat)


async def schema_verdict(directory: Path) -> BaseException | None:
    """What the schema says of the fuzzed journal, read as the readers read it."""
    async with JournalDirectory(directory) as store:
        stored = await store.read(ID)
    try:
        records.read_journal(stored, path=store.location(ID))
    except durable.DurableError as error:
        return error
    return None


async def settle(handle: durable.WorkflowHandle[Any]) -> BaseException | None:
    """The run's error, if it ended within a moment (a run waiting for an event may wait)."""
    task = asyncio.ensure_future(handle.result())
    done, _ = await asyncio.wait([task], timeout=0.3)
    if not done:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        return None
    return task.exception()


async def replay_readers(directory: Path, verdict: BaseException | None) -> None:
    async with Runtime(directory) as runtime:
        try:
            for handle in await runtime.recover():
                error = await settle(handle)
                assert error is None or isinstance(error, durable.DurableError), repr(error)
        except durable.DurableError:
            pass
        with contextlib.suppress(durable.DurableError):
            await runtime.describe(ID)
    async with Runtime(directory) as runtime:
        try:
            error = await settle(await runtime.start(fuzzed, 2, id=ID))
        except durable.DurableError as refused:
            error = refused
        assert error is None or isinstance(error, durable.DurableError), repr(error)
        if schema_refuses(verdict):  # (recover may have appended, never mended, records)
            assert schema_refuses(error), repr(error)
            assert str(directory / f"{ID}.journal") in str(error)


async def catalog_readers(directory: Path) -> None:
    async with Catalog(directory) as catalog:
        listing = await catalog.listing()
        listed = {described.workflow_id for described in listing.workflows}
        assert HEALTHY in listed, listing.unreadable
        assert (ID in listed) != (ID in listing.unreadable)
        for read in (catalog.details, catalog.history, catalog.inbox, catalog.describe):
            with contextlib.suppress(durable.DurableError):
                await read(ID)


def cli_and_ui_readers(directory: Path) -> None:
    for args in (["list"], ["list", "--json"], ["show", ID], ["events", ID]):
        result = CliRunner().invoke(main, [*args, "--dir", str(directory)])
        assert result.exit_code in (0, 1), (args, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            result.exc_info,
        )
    app = create_app(directory, token=TOKEN)
    headers = {"X-Durable-Token": TOKEN}
    with TestClient(app, base_url="http://127.0.0.1", headers=headers) as client:
        answer = client.get("/api/workflows")
        assert answer.status_code == 200, answer.text
        ids = {row["id"] for row in answer.json()["workflows"]}
        assert HEALTHY in ids
        assert ID in ids or ID in answer.json()["unreadable"]
        page = client.get(f"/api/workflows/{ID}")  # (a server error would raise here)
        assert page.status_code in (200, 404, 422), page.text  # (422: unreadable, says why)


_counter = itertools.count()


def fresh(tmp_path: Path) -> Path:
    return tmp_path / f"case-{next(_counter)}"


def test_the_healthy_journal_replays_to_its_recorded_end(tmp_path: Path) -> None:
    async def check() -> None:
        await write_journals(tmp_path, healthy_journal())
        async with Runtime(tmp_path) as runtime:
            assert await runtime.run(fuzzed, 2, id=ID) == [True, 10, 20, {"payload": (1, 2)}]

    asyncio.run(check())
    cli_and_ui_readers(tmp_path)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(journal=malformed_journals())
def test_engine_readers_give_only_durable_errors(tmp_path: Path, journal: list[Any]) -> None:
    directory = fresh(tmp_path)

    async def check() -> None:
        await write_journals(directory, journal)
        verdict = await schema_verdict(directory)
        await catalog_readers(directory)
        await replay_readers(directory, verdict)
        await catalog_readers(directory)

    asyncio.run(check())


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(journal=malformed_journals())
def test_cli_and_ui_list_every_other_workflow(tmp_path: Path, journal: list[Any]) -> None:
    directory = fresh(tmp_path)
    asyncio.run(write_journals(directory, journal))
    cli_and_ui_readers(directory)


def test_a_malformed_journal_is_one_unreadable_row_and_a_clear_refusal(tmp_path: Path) -> None:
    journal = healthy_journal()
    journal[4] = {**journal[4], "t": Decimal("sNaN")}
    asyncio.run(write_journals(tmp_path, journal))
    result = CliRunner().invoke(main, ["list", "--dir", str(tmp_path)])
    assert result.exit_code == 0
    assert HEALTHY in result.output
    assert f"unreadable {ID}" in result.output
    assert "record 4 ('done') is malformed" in result.output
    result = CliRunner().invoke(main, ["show", ID, "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "record 4 ('done') is malformed" in result.output

    async def replay() -> None:
        async with Runtime(tmp_path) as runtime:
            with pytest.raises(durable.JournalCorrupted, match=r"record 4 \('done'\)") as raised:
                await runtime.run(fuzzed, 2, id=ID)
        assert str(tmp_path / f"{ID}.journal") in str(raised.value)

    asyncio.run(replay())


@pytest.mark.anyio
async def test_a_malformed_record_on_postgresql_is_refused_alike(postgres_dsn: str) -> None:
    journal = healthy_journal()
    journal[6] = {**journal[6], "s": 2**64 - 1, "t": datetime(2020, 1, 1, tzinfo=UTC)}
    async with PostgresStore(postgres_dsn) as store:
        for name, content in ((ID, journal), (HEALTHY, healthy_journal())):
            handle = await store.open(name)
            for record in content:
                handle.write(encode(record))
            await handle.close()
    async with Catalog(postgres_dsn) as catalog:
        listing = await catalog.listing()
    assert [described.workflow_id for described in listing.workflows] == [HEALTHY]
    assert "record 6 ('done') is malformed" in listing.unreadable[ID]
    async with Runtime(store=PostgresStore(postgres_dsn)) as runtime:
        with pytest.raises(durable.JournalCorrupted, match=r"record 6 \('done'\)"):
            await runtime.run(fuzzed, 2, id=ID)


def test_a_timer_armed_for_ever_is_described_and_shown(tmp_path: Path) -> None:
    journal = healthy_journal()[:8]
    journal[7] = records.timer(3, float("inf"))  # (asyncio.sleep(inf) journals this)
    asyncio.run(write_journals(tmp_path, journal))
    result = CliRunner().invoke(main, ["show", ID, "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "9999-12-3" in result.output

    async def described() -> durable.WorkflowDescription:
        async with Runtime(tmp_path) as runtime:
            return await runtime.describe(ID)

    wake_at = asyncio.run(described()).wake_at
    assert wake_at is not None
    assert wake_at.year == 9999

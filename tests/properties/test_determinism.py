"""Random workflows of gather / wait / wait_for / timeout / shield / tasks / cancellation /
as_completed / loops over asyncio.wait's sets / TaskGroup / Event, Lock, Semaphore and Queue
between tasks / nested child workflows / failing and retried activities / sleeps / events
sent to themselves replay identically.

Each generated program runs once; then, for every record boundary of its journal (a kill
at that point), a copy truncated there is resumed. Every decision the code made while the
truncated journal was replayed must equal the first run's, the resumed run must finish,
and no activity whose outcome survived the truncation may run again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import durable
from durable import JournalDirectory, RetryPolicy, Runtime
from durable._encoding import decode
from durable._engine._workflow_run import current_run

pytestmark = [pytest.mark.slow]

# A program is a nested list: a leaf ["act" | "fail" | "flaky", label, ms], ["sleep", ms],
# ["now"], ["signal", event] (an activity sends the event to its own workflow),
# ["event", event, ms] (wait for it, with a timeout); or a composition
# ["gather" | "gather_exc" | "race" | "first_exc", [ops]],
# ["wait_for" | "timeout" | "shield" | "cancel", op, ms], ["task", op, op], ["try", op],
# ["as_completed" | "wait_set" | "task_group", [ops]], ["event_sync" | "lock" | "semaphore" |
# "queue", op, op] (two tasks that meet through one), ["child", op] (a child workflow).
milliseconds = st.integers(0, 20)
leaf = st.one_of(
    st.tuples(st.sampled_from(["act", "fail", "flaky"]), st.integers(0, 99), milliseconds).map(
        list
    ),
    st.tuples(st.just("sleep"), milliseconds).map(list),
    st.just(["now"]),
    st.tuples(st.just("signal"), st.integers(0, 2)).map(list),
    st.tuples(st.just("event"), st.integers(0, 2), milliseconds).map(list),
)


def extend(children: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[Any]]:
    many = st.lists(children, min_size=1, max_size=3)
    return st.one_of(
        st.tuples(st.sampled_from(["gather", "gather_exc", "race", "first_exc"]), many).map(list),
        st.tuples(
            st.sampled_from(["wait_for", "timeout", "shield", "cancel"]), children, milliseconds
        ).map(list),
        st.tuples(st.just("task"), children, children).map(list),
        st.tuples(st.just("try"), children).map(list),
        st.tuples(st.sampled_from(["as_completed", "wait_set", "task_group"]), many).map(list),
        st.tuples(
            st.sampled_from(["event_sync", "lock", "semaphore", "queue"]), children, children
        ).map(list),
        st.tuples(st.just("child"), children).map(list),
    )


programs = st.lists(st.recursive(leaf, extend, max_leaves=7), min_size=1, max_size=3)

executions: Counter[tuple[str, int]] = Counter()  # (workflow, step) -> runs, per resume


def executed() -> None:
    info = durable.activity_info()
    executions[info.workflow_id, info.step] += 1


@durable.activity
async def act(label: int, ms: int) -> int:
    executed()
    await asyncio.sleep(ms / 1000)
    return label


@durable.activity(retry=RetryPolicy(maximum_attempts=1))
async def fail(label: int, ms: int) -> int:
    executed()
    await asyncio.sleep(ms / 1000)
    raise ValueError(f"fail {label}")


@durable.activity(retry=RetryPolicy(initial_interval=0.002, maximum_attempts=3))
async def flaky(label: int, ms: int) -> int:
    info = durable.activity_info()
    executed()
    await asyncio.sleep(ms / 1000)
    if info.attempt == 1:
        raise ConnectionError("the first attempt fails")
    return label


class Sender:
    """The runtime the "signal" activity sends through (set per run)."""

    runtime: Runtime | None = None


@durable.activity
async def signal(event: int) -> None:
    info = durable.activity_info()
    executed()
    assert Sender.runtime is not None
    await Sender.runtime.send_event(
        info.workflow_id, f"e{event}", info.step, event_id=info.idempotency_key
    )


class Boom(Exception):
    """A failed activity, turned into the workflow's own exception."""


def note(trace: list[list[Any]], *entry: Any) -> None:
    run = current_run()
    assert run is not None
    trace.append([run.delivered, *entry])


def shown(result: object) -> object:
    return type(result).__name__ if isinstance(result, BaseException) else result


async def interpret(op: list[Any], trace: list[list[Any]]) -> Any:
    kind = op[0]
    if kind in ("act", "flaky"):
        result = await (act if kind == "act" else flaky)(op[1], op[2])
        note(trace, kind, result)
        return result
    if kind == "fail":
        try:
            await fail(op[1], op[2])
        except durable.ActivityError as error:
            note(trace, "failed", error.message)
            raise Boom(error.message) from None
        return None
    if kind == "now":
        note(trace, "now", durable.now().timestamp(), asyncio.get_running_loop().time())
        return None
    if kind == "signal":
        await signal(op[1])
        note(trace, "signalled", op[1])
        return None
    if kind == "event":
        try:
            got = await durable.wait_for_event(f"e{op[1]}", timeout=op[2] / 1000)
        except durable.EventTimeout:
            got = "timed out"
        note(trace, "event", op[1], got)
        return got
    if kind == "sleep":
        await asyncio.sleep(op[1] / 1000)
        note(trace, "slept", op[1])
        return None
    if kind in ("gather", "gather_exc"):
        results = await asyncio.gather(
            *(interpret(child, trace) for child in op[1]), return_exceptions=kind == "gather_exc"
        )
        note(trace, kind, [shown(result) for result in results])
        return [shown(result) for result in results]
    if kind in ("race", "first_exc"):
        tasks = [asyncio.create_task(interpret(child, trace)) for child in op[1]]
        when = asyncio.FIRST_COMPLETED if kind == "race" else asyncio.FIRST_EXCEPTION
        done, pending = await asyncio.wait(tasks, return_when=when)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if not task.cancelled():
                task.exception()
        note(trace, kind, sorted(tasks.index(task) for task in done))
        return None
    if kind == "wait_for":
        waited: Any
        try:
            waited = await asyncio.wait_for(interpret(op[1], trace), op[2] / 1000)
        except TimeoutError:
            waited = "timed out"
        note(trace, "wait_for", waited)
        return waited
    if kind == "timeout":
        outcome = "in time"
        try:
            async with asyncio.timeout(op[2] / 1000):
                await interpret(op[1], trace)
        except TimeoutError:
            outcome = "timed out"
        note(trace, "timeout", outcome)
        return outcome
    if kind == "shield":
        inner = asyncio.ensure_future(interpret(op[1], trace))
        try:
            result = await asyncio.wait_for(asyncio.shield(inner), op[2] / 1000)
            note(trace, "shield in time", result)
        except TimeoutError:
            note(trace, "shield timed out")
            result = await inner
            note(trace, "shield later", result)
        return result
    if kind == "cancel":
        task = asyncio.create_task(interpret(op[1], trace))
        await asyncio.sleep(op[2] / 1000)
        task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
        note(trace, "cancel", shown(results[0]))
        return None
    if kind == "try":
        try:
            result = await interpret(op[1], trace)
        except Boom as error:
            note(trace, "caught", str(error))
            return None
        note(trace, "try ok")
        return result
    if kind in ("as_completed", "wait_set", "task_group"):
        return await compose(kind, op[1], trace)
    if kind in ("event_sync", "lock", "semaphore", "queue"):
        return await meet(kind, op[1], op[2], trace)
    if kind == "child":
        child_trace = await durable.run_child(generated_child, op[1])
        note(trace, "child", child_trace)
        return None
    assert kind == "task"
    task = asyncio.create_task(interpret(op[1], trace))
    try:
        other = await interpret(op[2], trace)
    finally:
        try:
            first = await task
        except Boom:
            first = "boom"
    note(trace, "task", first, other)
    return [first, other]


def awaitable(op: list[Any], trace: list[list[Any]]) -> Any:
    """An activity called directly (a coroutine: as_completed sets them), or a task."""
    if op[0] == "act":
        return act(op[1], op[2])
    return asyncio.create_task(interpret(op, trace))


async def outcome(awaited: Any) -> Any:
    try:
        return shown(await awaited)
    except Boom as error:
        return f"boom {error}"


async def compose(kind: str, ops: list[list[Any]], trace: list[list[Any]]) -> Any:
    if kind == "as_completed":
        results = []
        for next_done in asyncio.as_completed([awaitable(child, trace) for child in ops]):
            results.append(await outcome(next_done))
        note(trace, kind, results)
        return results
    if kind == "task_group":
        grouped: list[asyncio.Task[Any]] = []
        failed: list[str] = []
        try:
            async with asyncio.TaskGroup() as group:
                grouped.extend(group.create_task(interpret(child, trace)) for child in ops)
        except* Boom as errors:
            failed = sorted(str(error) for error in errors.exceptions)
        results = failed or [shown(task.result()) for task in grouped]
        note(trace, kind, results)
        return results
    tasks = [asyncio.create_task(interpret(child, trace)) for child in ops]
    done, _ = await asyncio.wait(tasks)  # then activities called in the done set's order
    results = [await act(tasks.index(task), 0) for task in done if not task.exception()]
    note(trace, kind, results)
    return results


async def meet(kind: str, first: list[Any], second: list[Any], trace: list[list[Any]]) -> Any:
    """Two tasks that meet through an Event, a Lock, a Semaphore or a Queue."""
    event, lock, semaphore = asyncio.Event(), asyncio.Lock(), asyncio.Semaphore(1)
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def one() -> Any:
        if kind == "lock":
            async with lock:
                return await outcome(interpret(first, trace))
        if kind == "semaphore":
            async with semaphore:
                return await outcome(interpret(first, trace))
        result = await outcome(interpret(first, trace))
        event.set()
        await queue.put(result)
        return result

    async def other() -> Any:
        if kind == "lock":
            async with lock:
                return await outcome(interpret(second, trace))
        if kind == "semaphore":
            async with semaphore:
                return await outcome(interpret(second, trace))
        if kind == "event_sync":
            await event.wait()
            note(trace, "event set")
        else:
            note(trace, "queue got", await queue.get())
        return await outcome(interpret(second, trace))

    results = await asyncio.gather(one(), other())
    note(trace, kind, results)
    return results


@durable.workflow(name="generated_child")
async def generated_child(op: list[Any]) -> list[list[Any]]:
    trace: list[list[Any]] = []
    note(trace, "child result", await outcome(interpret(op, trace)))
    return trace


@durable.workflow(name="generated")
async def generated(program: list[Any]) -> list[list[Any]]:
    trace: list[list[Any]] = []
    for op in program:
        try:
            await interpret(op, trace)
        except Boom as error:
            note(trace, "top caught", str(error))
    note(trace, "random", durable.random())
    return trace


async def record_boundaries(path: Path) -> list[tuple[int, int, set[int]]]:
    """After each record: (end offset, outcomes delivered so far, activity steps done)."""
    async with JournalDirectory(path.parent) as store:
        stored = await store.read(path.stem)
    ends = [record.offset for record in stored[1:]] + [path.stat().st_size]
    boundaries, delivered, done = [], 0, set()
    for record, end in zip(stored, ends, strict=True):
        decoded = decode(record.payload, path=path, offset=record.offset)
        if decoded["k"] in ("done", "fired", "event", "cancel"):
            delivered += 1
        if decoded["k"] == "done":
            done.add(decoded["s"])
        boundaries.append((end, delivered, set(done)))
    return boundaries


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(program=programs)
def test_replay_after_a_kill_at_every_boundary_makes_the_same_decisions(
    tmp_path_factory: pytest.TempPathFactory, program: list[Any]
) -> None:
    asyncio.run(check_program(tmp_path_factory.mktemp("replay"), program))


async def check_program(root: Path, program: list[Any]) -> None:
    async with Runtime(root / "first") as runtime:
        Sender.runtime = runtime
        first = await runtime.run(generated, program, id="p")
    journal = root / "first" / "p.journal"
    data = journal.read_bytes()
    inbox = root / "first" / "p.inbox"  # the outside world: what was sent stays sent
    for index, (end, delivered, done) in enumerate(await record_boundaries(journal)):
        resumed_dir = root / f"cut-{index}"
        resumed_dir.mkdir(mode=0o700)
        (resumed_dir / "p.journal").write_bytes(data[:end])
        (resumed_dir / "p.journal").chmod(0o600)
        if inbox.exists():
            (resumed_dir / "p.inbox").write_bytes(inbox.read_bytes())
        executions.clear()
        async with Runtime(resumed_dir) as runtime:
            Sender.runtime = runtime
            resumed = await runtime.run(generated, program, id="p")
        replayed = [entry for entry in first if entry[0] <= delivered]
        assert [entry for entry in resumed if entry[0] <= delivered] == replayed, (
            f"decisions diverged after a kill at record {index}"
        )
        rerun = {step for step in done if executions["p", step]}
        assert not rerun, f"steps {rerun} ran again although their outcome was journaled"

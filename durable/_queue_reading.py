"""A queue's state read for people: each waiting request's place and why it waits; the load.

Reads the queue's files without taking any lock (the running count comes from the kernel's
lock table, as `durable list` tells held journals), so it is safe while runtimes serve the
queue. Used by Runtime.describe for a queued workflow and by the Catalog (`durable list`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._encoding import decode
from ._engine._describe import WorkflowDescription, WorkflowState
from ._engine._log_fields import durable_logger
from ._engine._records import moment
from ._errors import DurableError, JournalError
from ._queues import limits_of
from ._storage._postgres import PostgresStore
from ._storage._postgres_queues import PostgresQueues, slot_prefix
from ._storage._queue_files import (
    DAMAGED,
    QUEUES,
    DamagedRequest,
    QueueFiles,
    Request,
    queue_names,
)

logger = durable_logger()


@dataclass(frozen=True)
class QueueLoad:
    """A queue's load now.

    Attributes:
        name: the queue.
        running: its workflows holding a slot now, in every process (-1: cannot tell, off
            Linux; None: the queue has no concurrency limit, so nothing holds slots).
        admitted: its workflows started and not ended (running, sleeping, or waiting to be
            resumed after a crash).
        waiting: its requests not started yet.
        concurrency, concurrency_per_key: its limits as last declared (None: none).
        rate: (starts, period in seconds) as last declared, or None.
        recent_starts: starts within the last rate period (0 without a rate limit).
        damaged: requests set aside (`<id>.damaged` in waiting/ or admitted/): torn, or
            not request files at all; `durable list` names each among the unreadable.
    """

    name: str
    running: int | None
    admitted: int
    waiting: int
    concurrency: int | None
    concurrency_per_key: int | None
    rate: tuple[int, float] | None
    recent_starts: int
    damaged: int = 0


def workflow_name_of(request: Request) -> str:
    """The workflow a request starts (its payload is {"wf": name, "args": [...]})."""
    try:
        payload = decode(request.payload, path=request.workflow_id, offset=0)
    except DurableError:
        return "?"
    return str(payload.get("wf", "?")) if isinstance(payload, dict) else "?"


def arguments_of(request: Request) -> list[Any]:
    """The workflow arguments a request carries, as plain values (empty if unreadable)."""
    try:
        payload = decode(request.payload, path=request.workflow_id, offset=0)
    except DurableError:
        return []
    arguments = payload.get("args", []) if isinstance(payload, dict) else []
    return list(arguments) if isinstance(arguments, list) else []


def find_waiting(
    directory: Path, workflow_id: str, now: float
) -> tuple[WorkflowDescription, list[Any]] | None:
    """A request waiting in any queue of the directory: described, and its arguments.

    Blocking (a few file reads per queue). None: no queue holds it waiting.
    """
    for name in queue_names(directory):
        try:
            files = QueueFiles(directory, name, create=False)
        except OSError:
            continue  # (half made, or not ours)
        try:
            described = describe_queued(files, workflow_id, now)
            if described is None:
                continue
            request = files.read(workflow_id)
        except (DamagedRequest, OSError, JournalError):
            continue
        finally:
            files.close()
        return described, [] if request is None else arguments_of(request)
    return None


def waiting_requests(files: QueueFiles, damaged: dict[str, str] | None = None) -> list[Request]:
    """Every readable waiting request, in the order they start: priority, then enqueue order.

    `damaged` gets each unreadable one not set aside yet (its path: what is wrong).
    """
    found = []
    for name in files.waiting():
        if name.endswith(DAMAGED):
            continue
        try:
            request = files.read(name)
        except DamagedRequest as error:
            if damaged is not None:
                damaged[f"{QUEUES}/{files.name}/waiting/{name}"] = (
                    f"a queued request that cannot be read: {error}"
                )
            continue
        if request is not None:
            found.append(request)
    found.sort(key=lambda request: (request.priority, request.seq))
    return found


def load_of(files: QueueFiles, now: float) -> QueueLoad:
    """The queue's load now."""
    limits = limits_of(files.read_config())
    rate = limits.get("rate")
    rate_pair = (
        (int(rate[0]), float(rate[1])) if isinstance(rate, list) and len(rate) == 2 else None
    )
    recent = 0
    if rate_pair is not None:
        _, times = files._ring(rate_pair[0])
        recent = sum(1 for at in times if now - at < rate_pair[1])
    concurrency = limits.get("concurrency")
    admitted, waiting = files.admitted(), files.waiting()
    damaged = sum(1 for name in [*admitted, *waiting] if name.endswith(DAMAGED))
    return QueueLoad(
        name=files.name,
        running=files.running() if concurrency else None,
        admitted=sum(1 for name in admitted if not name.endswith(DAMAGED)),
        waiting=sum(1 for name in waiting if not name.endswith(DAMAGED)),
        concurrency=concurrency if isinstance(concurrency, int) else None,
        concurrency_per_key=limits.get("concurrency_per_key"),
        rate=rate_pair,
        recent_starts=recent,
        damaged=damaged,
    )


def damaged_requests(files: QueueFiles) -> dict[str, str]:
    """The queue's requests set aside, by path in the journal directory: what is wrong.

    (For `durable list`'s unreadable: a person repairs or removes each.)
    """
    found: dict[str, str] = {}
    for where, names in (("waiting", files.waiting()), ("admitted", files.admitted())):
        for name in sorted(names):
            if not name.endswith(DAMAGED):
                continue
            try:
                files.read(name, admitted=where == "admitted")
                why = "it cannot be started (its name is no workflow id, say)"
            except DamagedRequest as error:
                why = str(error)
            except OSError as error:
                why = error.strerror or str(error)
            found[f"{QUEUES}/{files.name}/{where}/{name}"] = f"a queued request set aside: {why}"
    return found


def describe_orphans(files: QueueFiles, described: set[str]) -> list[WorkflowDescription]:
    """The queue's admitted requests whose journal holds no record (not in `described`).

    Their runtime is starting them, or died first (serve() or recover() then starts them).
    """
    found = []
    for name in sorted(files.admitted()):
        if name in described or name.endswith(DAMAGED):
            continue
        try:
            request = files.read(name, admitted=True)
        except (DamagedRequest, OSError):
            continue  # (set aside at the next look of a runtime serving the queue)
        if request is not None:
            found.append(describe_admitted(request, files.name))
    return found


def describe_admitted(request: Request, queue: str) -> WorkflowDescription:
    """An admitted request whose journal holds no record yet: its runner is starting it.

    (Or its runner died first: serve() or recover() then starts it from the request.)
    """
    enqueued = moment(request.enqueued)
    workflow_name = workflow_name_of(request)
    return WorkflowDescription(
        workflow_id=request.workflow_id,
        workflow_name=workflow_name,
        state=WorkflowState.RUNNING,
        status={"queue": queue, "priority": request.priority},
        generation=0,
        steps=0,
        current=f"starting: admitted by queue {queue!r}, its journal not begun yet (if its "
        f"runtime died: serve() or recover() of a runtime that knows {workflow_name!r} "
        "starts it)",
        attempt=None,
        waiting_for=None,
        wake_at=None,
        started=enqueued,
        updated=enqueued,
        ended=None,
        error=None,
        parent=None,
        unread_events=0,
    )


def why_waiting(request: Request, load: QueueLoad, now: float) -> str:
    """Why a request has not started, in words: delay, rate, concurrency, or no runtime."""
    if request.not_before > now:
        return f"delay (until {moment(request.not_before).isoformat(timespec='seconds')})"
    if load.rate is not None and load.recent_starts >= load.rate[0]:
        return f"rate ({load.rate[0]} starts per {load.rate[1]:g} s reached)"
    if load.concurrency is not None and (load.running or 0) >= load.concurrency:
        return f"concurrency ({load.running} of {load.concurrency} running)"
    if request.key is not None and load.concurrency_per_key is not None:
        return f"its turn, or key {request.key!r} (at most {load.concurrency_per_key} at once)"
    return f"a runtime that serves this queue and knows workflow {workflow_name_of(request)!r}"


def describe_queued(
    files: QueueFiles, workflow_id: str, now: float, ordered: list[Request] | None = None
) -> WorkflowDescription | None:
    """A waiting request as a workflow description (state "queued"); None if not waiting.

    `current` says its place ("3rd of 12") and why it waits.
    """
    try:
        request = files.read(workflow_id)
    except DamagedRequest:
        return None
    if request is None:
        return None
    ordered = waiting_requests(files) if ordered is None else ordered
    place = 1 + sum(
        1 for other in ordered if (other.priority, other.seq) < (request.priority, request.seq)
    )
    return describe_request(request, place, len(ordered), load_of(files, now), now)


def describe_waiting(
    files: QueueFiles, now: float, damaged: dict[str, str] | None = None
) -> list[WorkflowDescription]:
    """Every waiting request of the queue, described (for `durable list`; see waiting_requests)."""
    ordered = waiting_requests(files, damaged)
    load = load_of(files, now)
    return [
        describe_request(request, place, len(ordered), load, now)
        for place, request in enumerate(ordered, 1)
    ]


def describe_request(
    request: Request, place: int, total: int, load: QueueLoad, now: float
) -> WorkflowDescription:
    """A waiting request, `place` of `total` in its queue, as a workflow description."""
    enqueued = moment(request.enqueued)
    status: dict[str, Any] = {
        "queue": load.name,
        "position": place,
        "waiting": total,
        "priority": request.priority,
    }
    if request.key is not None:
        status["key"] = request.key
    return WorkflowDescription(
        workflow_id=request.workflow_id,
        workflow_name=workflow_name_of(request),
        state=WorkflowState.QUEUED,
        status=status,
        generation=0,
        steps=0,
        current=(
            f"queued in {load.name!r}, {place} of {total}, waiting for "
            f"{why_waiting(request, load, now)}"
        ),
        attempt=None,
        waiting_for=None,
        wake_at=moment(request.not_before) if request.not_before > now else None,
        started=enqueued,
        updated=enqueued,
        ended=None,
        error=None,
        parent=None,
        unread_events=0,
    )


async def postgres_queued(
    store: PostgresStore, now: float
) -> tuple[list[QueueLoad], list[WorkflowDescription]]:
    """Every PostgreSQL queue's load and waiting requests, described (for `durable list`).

    A queue's limits are those a runtime last declared (durable_queue_config); running is
    counted from the slots' advisory locks of every session on the database.
    """
    tables = PostgresQueues(store, lambda: None)  # (reads only: no connection of its own)
    loads: list[QueueLoad] = []
    found: list[WorkflowDescription] = []
    for name, config in (await tables.configs()).items():
        limits = limits_of(config or None)
        rate = limits.get("rate")
        rate_pair = (
            (int(rate[0]), float(rate[1])) if isinstance(rate, list) and len(rate) == 2 else None
        )
        concurrency = limits.get("concurrency")
        concurrency = concurrency if isinstance(concurrency, int) else None
        ordered = await tables.waiting(name)
        admitted, recent = await tables.counts(name, rate_pair[1] if rate_pair else None)
        running = None
        if concurrency is not None:
            running = await tables.running(slot_prefix(name), concurrency)
        load = QueueLoad(
            name=name,
            running=running,
            admitted=admitted,
            waiting=len(ordered),
            concurrency=concurrency,
            concurrency_per_key=limits.get("concurrency_per_key"),
            rate=rate_pair,
            recent_starts=recent,
        )
        loads.append(load)
        found += [
            describe_request(row.as_request(), place, len(ordered), load, now)
            for place, row in enumerate(ordered, 1)
        ]
    return loads, found

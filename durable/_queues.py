"""durable.Queue and durable.Rate: flow control declared in code, validated in one place.

A Queue is plain data: its name and limits. Runtimes that declare it (Runtime(queues=[...]))
serve it and hold its limits together through the queue's state in their store
(`_storage/_queue_files.py`); `Runtime.enqueue` adds work to it. Every option, and every
enqueue option, is checked here (`InvalidQueue`), before anything is written.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, final

from ._durations import Duration, to_seconds
from ._errors import InvalidDuration, InvalidQueue

PRIORITY_FIRST = 1  # runs before every other priority
PRIORITY_LAST = 9
DEFAULT_PRIORITY = 5
MAX_KEY_LENGTH = 1024
MAX_RATE_LIMIT = 100_000  # a Rate's starts per period (the file store keeps a ring of them)
_NAME = re.compile(r"[A-Za-z0-9_\-:@=+][A-Za-z0-9._\-:@=+]{0,99}")


def check_name(name: object) -> str:
    """A queue's or a Limit's name: it names a directory of the store (InvalidQueue)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidQueue(
            queue=str(name),
            option="name",
            value=name,
            expected="1-100 letters, digits and . _ - : @ = +, not starting with '.'",
        )
    return name


def _count(queue: str, option: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidQueue(queue=queue, option=option, value=value, expected="an int >= 1")
    return value


@final
class Rate:
    """At most `limit` starts per `per` (a sliding window over the last `limit` starts).

    `Rate(10, per="1 s")`; `per` is seconds, a timedelta or a string like "1 min".
    """

    __slots__ = ("limit", "period")

    def __init__(self, limit: int, *, per: Duration) -> None:
        self.limit = _count("?", "rate limit", limit)
        if limit > MAX_RATE_LIMIT:  # (its ring of start times is read at every start)
            raise InvalidQueue(
                queue="(a Rate)",
                option="rate limit",
                value=limit,
                expected=f"at most {MAX_RATE_LIMIT:,} starts per period: give a shorter "
                'period (Rate(1000, per="10 ms") rather than Rate(100_000, per="1 s"))',
            )
        try:
            period = to_seconds(per, what="rate period")
        except InvalidDuration as error:
            raise InvalidQueue(
                queue="(a Rate)", option="per", value=per, expected='a duration such as "1 s"'
            ) from error
        if not period > 0 or math.isinf(period):
            raise InvalidQueue(
                queue="(a Rate)", option="per", value=per, expected="a finite duration > 0"
            )
        self.period = period

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rate) and (self.limit, self.period) == (other.limit, other.period)

    def __hash__(self) -> int:
        return hash((self.limit, self.period))

    def __repr__(self) -> str:
        return f"Rate({self.limit}, per={self.period:g})"


@final
class Queue:
    """A named queue of workflows, with limits that hold across every runtime on the store.

    Declare it in code and pass it to every runtime that serves it (Runtime(queues=[q])):
    those runtimes take its requests in order (priority, then first come first served) as
    its limits allow. Enqueue with `runtime.enqueue(q, workflow, *args, ...)`, or
    `durable.enqueue(...)` on the default runtime, from any process on the store.

    Args:
        name: its name on the store (1-100 letters, digits and . _ - : @ = +).
        concurrency: at most this many of its workflows run at once, across every runtime
            and process on the store (default None: no limit). A workflow counts from its
            start until it ends, sleeping or not.
        concurrency_per_key: at most this many at once per partition key (`key=` at
            enqueue; work without a key is limited by `concurrency` only). Default None.
        rate: at most `rate.limit` starts per `rate.period` (default None: no limit).
            Resuming a workflow after a restart is not a start.

    Raises:
        InvalidQueue: a limit below 1, a name that cannot name a directory.
    """

    __slots__ = ("concurrency", "concurrency_per_key", "name", "rate")

    def __init__(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        concurrency_per_key: int | None = None,
        rate: Rate | None = None,
    ) -> None:
        self.name = check_name(name)
        self.concurrency = None if concurrency is None else _count(name, "concurrency", concurrency)
        self.concurrency_per_key = (
            None
            if concurrency_per_key is None
            else _count(name, "concurrency_per_key", concurrency_per_key)
        )
        if rate is not None and not isinstance(rate, Rate):
            raise InvalidQueue(
                queue=name, option="rate", value=rate, expected='durable.Rate(n, per="1 s")'
            )
        self.rate = rate

    def config(self) -> bytes:
        """Its limits, as the queue's config file holds them (JSON, for readers)."""
        rate = None if self.rate is None else [self.rate.limit, self.rate.period]
        return json.dumps(
            {
                "concurrency": self.concurrency,
                "concurrency_per_key": self.concurrency_per_key,
                "rate": rate,
            },
            sort_keys=True,
        ).encode()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Queue)
            and self.config() == other.config()
            and (self.name == other.name)
        )

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        limits = [
            f"{option}={value!r}"
            for option, value in (
                ("concurrency", self.concurrency),
                ("concurrency_per_key", self.concurrency_per_key),
                ("rate", self.rate),
            )
            if value is not None
        ]
        return f"Queue({', '.join([repr(self.name), *limits])})"


def limits_of(config: bytes | None) -> dict[str, Any]:
    """A config file's limits (empty if none or unreadable)."""
    if not config:
        return {}
    try:
        value = json.loads(config)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def check_enqueue(
    queue: Queue, *, priority: int, key: str | None, dedup_id: str | None, delay: float
) -> None:
    """Refuse enqueue options that cannot be right (InvalidQueue); nothing is written yet."""
    name = queue.name
    if (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not PRIORITY_FIRST <= priority <= PRIORITY_LAST
    ):
        raise InvalidQueue(
            queue=name,
            option="priority",
            value=priority,
            expected=f"an int from {PRIORITY_FIRST} (runs first) to {PRIORITY_LAST} (last); "
            f"default {DEFAULT_PRIORITY}",
        )
    for option, text in (("key", key), ("dedup_id", dedup_id)):
        if text is not None and (
            not isinstance(text, str) or not text or len(text.encode()) > MAX_KEY_LENGTH
        ):
            raise InvalidQueue(
                queue=name,
                option=option,
                value=text,
                expected=f"None or a non-empty str of at most {MAX_KEY_LENGTH} bytes",
            )
    if key is not None and queue.concurrency_per_key is None:
        raise InvalidQueue(
            queue=name,
            option="key",
            value=key,
            expected="None for a queue without concurrency_per_key (declare "
            "Queue(..., concurrency_per_key=N) to limit work per key)",
        )
    if not delay >= 0 or math.isinf(delay):
        raise InvalidQueue(
            queue=name, option="delay", value=delay, expected="a finite duration >= 0"
        )


def delay_seconds(queue: Queue, delay: Duration | None) -> float:
    """An enqueue's delay in seconds (InvalidQueue if it is not a duration)."""
    if delay is None:
        return 0.0
    try:
        return to_seconds(delay, what="delay")
    except InvalidDuration as error:
        raise InvalidQueue(
            queue=queue.name, option="delay", value=delay, expected='a duration such as "10 s"'
        ) from error

"""The journal's record kinds: small msgpack maps with short keys, one per event.

Engine format version 2 (the "v" of the start record; the storage frame format is separate):

    start  {k, v, wf: workflow name, id, args: [...], t: start time, seed
            [, gen: generation (continue-as-new), q: first inbox message, parent: id]}
    sched  {k, s: step, a: activity name, d: argument digest, n: attempt, t [, id: child]}
    retry  {k, s, a, d, n: failed attempt, e: error, at: when the next attempt starts,
            b: when the failed attempt began, t}
    done   {k, s, a, d, n: attempt, r: result, b: when it began, t}
           | {k, s, a, d, e: error, n, b, t}                                       outcome
    timer  {k, s, at: absolute fire time (epoch seconds) [, x: 1 once the code let go of it]}
    fired  {k, s, t}
    wait   {k, s, n: event name [, x: 1]}          the code waits for an event (x: no more)
    event  {k, q: inbox position, n: name, p: payload, t [, id: event id]}   delivered
    cancel {k, q: inbox position, m: reason, t}                      delivered: cancels
    status {k, s, v: value, t}                                     set_status(), published
    patch  {k, id: patch id, s: the step it was taken before}          patched() said yes
    end    {k, r: result, t} | {k, e: error, t [, c: 1 if cancelled]} | {k, cont: args, t}

A "sched" is written only when it matters: before an at_most_once attempt (synced), or once
an attempt is still running a loop iteration after it started. The first record of a step
names it (activity and digest), so most steps cost one record. Version 1 journals (always a
"sched" first; "retry" and "done" without `a`/`d`) are read as before.

`s` is the step: the position of a command (activity call, child workflow, timer, event
wait, status) in the order the workflow code asked for them. A child workflow is an activity
step named "child:<workflow name>". Events and cancellations come from the inbox, in the
order the runner took them; `q` says how far it has read. Errors are {type, msg, tb[, kind]}.
Times are epoch seconds.
Only `done`, `fired`, `event` and `cancel` are delivered to the workflow; the others are
bookkeeping that replay checks (`sched`, `timer`, `wait`, `status`) or resumes from (`retry`,
`patch`). Readers ignore unknown keys, so later
versions may add keys; a start record with a newer `v` is refused.
"""

from __future__ import annotations

import traceback
from typing import Any

FORMAT_VERSION = 2

START = "start"
SCHEDULED = "sched"
RETRY = "retry"
DONE = "done"
TIMER = "timer"
FIRED = "fired"
WAIT = "wait"
EVENT = "event"
CANCEL = "cancel"
STATUS = "status"
PATCH = "patch"
END = "end"

DELIVERED = frozenset({DONE, FIRED, EVENT, CANCEL})
FROM_INBOX = frozenset({EVENT, CANCEL})  # delivered, but not the outcome of a step
KNOWN = frozenset(
    {START, SCHEDULED, RETRY, DONE, TIMER, FIRED, WAIT, EVENT, CANCEL, STATUS, PATCH, END}
)
CHILD_PREFIX = "child:"


def describe_error(error: BaseException, *, kind: str | None = None) -> dict[str, Any]:
    """An exception as a record field: its type's name, message and traceback text."""
    klass = type(error)
    module = klass.__module__
    name = klass.__qualname__ if module == "builtins" else f"{module}.{klass.__qualname__}"
    described: dict[str, Any] = {
        "type": name,
        "msg": str(error),
        "tb": "".join(traceback.format_exception(error)),
    }
    if kind is not None:
        described["kind"] = kind
    return described

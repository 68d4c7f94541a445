"""The API's answers, bounded: a listing's rows and a workflow's page, with long values cut.

A journal holds values as large as its records (64 MiB) and as many as its steps; an answer
must not. Each value (arguments, a result, a status, a payload, an error's message or
traceback) longer than its limit comes as the start of its JSON text (of the text itself, for
messages, tracebacks and names), and the object holding it names it in its "truncated" map:
field -> the value's ref, its path in the workflow's answer, which
GET /api/workflows/{id}/values/{ref} streams in full. One answer spends at most
ANSWER_BUDGET characters on values; past that, each comes as its first SMALL characters
(still fetchable whole). A value nested deeper than 64 levels comes cut too, at any length:
the values endpoint writes JSON iteratively, the answers' recursive encoders could not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

from .._catalog import Details, InboxMessage, Runner
from .._engine._describe import WorkflowDescription
from .._engine._history import Attempt, Link, Message, Step
from .._errors import DurableError
from .._excerpts import Excerpts
from .._json_ready import plain_description, to_plain
from .._streams import StreamSnapshot
from ._values import preview

VALUE_LIMIT = 4_000  # characters of one value (or error message, or traceback) in a page
ROW_LIMIT = 200  # characters of a listing row's status or error
NAME_LIMIT = 200  # characters of a name, an id or other short text from a journal
SITE_LIMIT = 500  # characters of a call site's file path (its end shown)
REASON_LIMIT = 1_000  # characters of why a journal is unreadable, in a listing
ANSWER_BUDGET = 1_000_000  # characters of values in one answer, all together
SMALL = 100  # characters of a value's preview once the budget is spent
ATTEMPT_LIMIT = 20  # a step's attempts in an answer (the last ones)
PAGE_LIMIT = 500  # steps, workflows, messages or pending events in one answer
T = TypeVar("T")


class ValueNotFound(DurableError, LookupError):
    """A value ref names nothing in the workflow's answer (GET .../values/{ref})."""

    def __init__(self, *, workflow_id: str, ref: str) -> None:
        self.workflow_id = workflow_id
        self.ref = ref
        super().__init__(
            f"workflow {workflow_id!r} has no value {ref!r}: use the ref its answer's "
            '"truncated" map gives (such as result, steps/3/result, inbox/0/payload)'
        )


class Bounds:
    """Cuts one answer's values to their limits, keeping count of the budget."""

    def __init__(self, budget: int = ANSWER_BUDGET) -> None:
        self.left = budget

    def value(self, value: Any, limit: int, cut: dict[str, str], field: str, ref: str) -> Any:
        """The value as plain data, or the start of its JSON text (noted in `cut`)."""
        text, whole = preview(value, min(limit, max(self.left, SMALL)))
        self.left -= len(text)
        if whole:
            return to_plain(value)
        cut[field] = ref
        return text

    def text(self, text: Any, limit: int, cut: dict[str, str], field: str, ref: str) -> Any:
        """A text (message, traceback, name), its start if long (noted in `cut`)."""
        if not isinstance(text, str):  # (not text: a damaged record; shown as a value)
            return self.value(text, limit, cut, field, ref)
        if len(text) <= limit:
            return text
        cut[field] = ref
        return text[:limit]

    def error(self, error: Any, cut: dict[str, str], field: str, ref: str) -> Any:
        """An error {type, msg, tb}, each part cut to its limit (the whole one noted in `cut`)."""
        if not isinstance(error, dict) or not all(isinstance(part, str) for part in error.values()):
            return self.value(error, VALUE_LIMIT, cut, field, ref)
        parts: dict[str, str] = {}
        shown: dict[str, Any] = {}
        for key, part in error.items():
            limit = min(NAME_LIMIT if key == "type" else VALUE_LIMIT, max(self.left, SMALL))
            shown[key] = self.text(part, limit, parts, key, ref)
            self.left -= len(shown[key])
        if parts:
            cut[field] = ref
            shown["truncated"] = parts  # (which of its parts: type, msg, tb)
        return shown


def listing_row(described: WorkflowDescription, runner: Runner, bounds: Bounds) -> dict[str, Any]:
    """A workflow in a listing (and at the top of its page): the description, cut short."""
    row = plain_description(dataclasses.replace(described, status=None, error=None), runner)
    cut: dict[str, str] = {}
    row["status"] = bounds.value(described.status, ROW_LIMIT, cut, "status", "workflow/status")
    row["error"] = bounds.text(described.error, ROW_LIMIT, cut, "error", "workflow/error")
    for field in ("workflow", "current", "waiting_for", "parent"):
        row[field] = bounds.text(row[field], NAME_LIMIT, cut, field, f"workflow/{field}")
    if cut:
        row["truncated"] = cut
    return row


def workflow_answer(details: Details, first: int, limit: int) -> dict[str, Any]:
    """GET /api/workflows/{id}: a page of steps, the last messages, the first pending ones."""
    bounds = Bounds()
    history, described = details.history, details.description
    cut: dict[str, str] = {}
    answer: dict[str, Any] = {"workflow": listing_row(described, details.runner, bounds)}
    answer["arguments"] = bounds.value(
        history.arguments, VALUE_LIMIT, cut, "arguments", "arguments"
    )
    answer["result"] = bounds.value(history.result, VALUE_LIMIT, cut, "result", "result")
    answer["error"] = bounds.error(history.error, cut, "error", "error")
    pending = [message for message in details.inbox if not message.received]
    excerpts = Excerpts()  # (each source file read once for the page)
    messages = history.messages[-PAGE_LIMIT:]
    skipped = len(history.messages) - len(messages)
    answer |= {
        "started": _small(history.started),
        "ended": _small(history.ended),
        "outcome": _small(history.outcome),
        "generation": _small(history.generation),
        "parent": bounds.text(history.parent, NAME_LIMIT, cut, "parent", "workflow/parent"),
        "total_steps": len(history.steps),
        "from": first,
        "steps": [_step(step, bounds, excerpts) for step in history.steps[first : first + limit]],
        "messages": [
            _message(message, skipped + index, bounds) for index, message in enumerate(messages)
        ],
        "total_messages": len(history.messages),
        "inbox": [_pending(message, bounds) for message in pending[:PAGE_LIMIT]],  # (oldest first)
        "total_inbox": len(pending),
        "links": [_link(link, bounds, cut) for link in history.links[-PAGE_LIMIT:]],
    }
    if cut:
        answer["truncated"] = cut
    return answer


def _small(value: Any) -> Any:
    """A field that is a number or a short text in any sound journal (cut if not)."""
    if value is None or isinstance(value, bool | int | float):
        return to_plain(value)
    text, _ = preview(value, NAME_LIMIT)
    return value if isinstance(value, str) and len(value) <= NAME_LIMIT else text


def _step(step: Step, bounds: Bounds, excerpts: Excerpts) -> dict[str, Any]:
    ref = f"steps/{step.step}"
    cut: dict[str, str] = {}
    shown: dict[str, Any] = {
        "step": _small(step.step),
        "kind": _small(step.kind),
        "name": bounds.text(step.name, NAME_LIMIT, cut, "name", f"{ref}/name"),
        "began": _small(step.began),
        "ended": _small(step.ended),
        "state": _small(step.state),
        "attempts": [_attempt(attempt, ref, bounds) for attempt in step.attempts[-ATTEMPT_LIMIT:]],
        "total_attempts": len(step.attempts),
        "result": bounds.value(step.result, VALUE_LIMIT, cut, "result", f"{ref}/result"),
        "error": bounds.error(step.error, cut, "error", f"{ref}/error"),
        "fire_at": _small(step.fire_at),
        "timeout_at": _small(step.timeout_at),
        "child_id": bounds.text(step.child_id, NAME_LIMIT, cut, "child_id", f"{ref}/child_id"),
    }
    if step.site:
        shown["site"] = _site(step.site, excerpts)
    if cut:
        shown["truncated"] = cut
    return shown


def _site(site: dict[str, Any], excerpts: Excerpts) -> dict[str, Any]:
    """Where the code asked for the step, with the lines around it if the source is here."""
    file, line, function = site["file"], site["line"], site["function"]
    return {
        "file": file if len(file) <= SITE_LIMIT else "..." + file[-SITE_LIMIT:],
        "line": line,
        "function": function[:NAME_LIMIT],
        "excerpt": [[number, text] for number, text in excerpts.around(file, line)],
    }


def _attempt(attempt: Attempt, step_ref: str, bounds: Bounds) -> dict[str, Any]:
    cut: dict[str, str] = {}
    ref = f"{step_ref}/attempts/{attempt.number}/error"
    shown = {
        "number": _small(attempt.number),
        "began": _small(attempt.began),
        "ended": _small(attempt.ended),
        "error": bounds.error(attempt.error, cut, "error", ref),
        "retry_at": _small(attempt.retry_at),
    }
    if cut:
        shown["truncated"] = cut
    return shown


def _message(message: Message, index: int, bounds: Bounds) -> dict[str, Any]:
    ref = f"messages/{index}"
    cut: dict[str, str] = {}
    shown = {
        "position": _small(message.position),
        "kind": _small(message.kind),
        "name": bounds.text(message.name, NAME_LIMIT, cut, "name", f"{ref}/name"),
        "payload": bounds.value(message.payload, VALUE_LIMIT, cut, "payload", f"{ref}/payload"),
        "at": _small(message.at),
        "event_id": bounds.text(message.event_id, NAME_LIMIT, cut, "event_id", f"{ref}/event_id"),
    }
    if cut:
        shown["truncated"] = cut
    return shown


def _pending(message: InboxMessage, bounds: Bounds) -> dict[str, Any]:
    ref = f"inbox/{message.position}"
    cut: dict[str, str] = {}
    shown = {
        "position": message.position,
        "kind": _small(message.kind),
        "name": bounds.text(message.name, NAME_LIMIT, cut, "name", f"{ref}/name"),
        "payload": bounds.value(message.payload, VALUE_LIMIT, cut, "payload", f"{ref}/payload"),
        "sent": _small(message.sent),
        "message_id": bounds.text(
            message.message_id, NAME_LIMIT, cut, "message_id", f"{ref}/message_id"
        ),
        "received": message.received,
    }
    if cut:
        shown["truncated"] = cut
    return shown


def value_of(details: Details, workflow_id: str, ref: str) -> Any:  # noqa: PLR0911 (one a ref)
    """The value a ref names, whole (ValueNotFound if it names none)."""
    history, described = details.history, details.description
    match ref.split("/"):
        case ["arguments" | "result" | "error" as field]:
            return getattr(history, field)
        case ["workflow", "status" | "error" | "current" | "waiting_for" | "parent" as field]:
            return getattr(described, field)
        case ["workflow", "workflow"]:
            return described.workflow_name
        case ["steps", number, "name" | "result" | "error" | "child_id" as field]:
            return getattr(_step_numbered(history.steps, number, workflow_id, ref), field)
        case ["steps", number, "attempts", attempt, "error"]:
            step = _step_numbered(history.steps, number, workflow_id, ref)
            for candidate in step.attempts:
                if str(candidate.number) == attempt:
                    return candidate.error
        case ["messages", index, "name" | "payload" | "event_id" as field]:
            return getattr(_at(history.messages, index, workflow_id, ref), field)
        case ["inbox", position, "name" | "payload" | "message_id" as field]:
            return getattr(_at(details.inbox, position, workflow_id, ref), field)
    raise ValueNotFound(workflow_id=workflow_id, ref=ref)


def _step_numbered(steps: list[Step], number: str, workflow_id: str, ref: str) -> Step:
    for step in steps:
        if str(step.step) == number:
            return step
    raise ValueNotFound(workflow_id=workflow_id, ref=ref)


def _at(items: Sequence[T], index: str, workflow_id: str, ref: str) -> T:
    if not index.isdecimal() or int(index) >= len(items):
        raise ValueNotFound(workflow_id=workflow_id, ref=ref)
    return items[int(index)]


def _link(link: Link, bounds: Bounds, cut: dict[str, str]) -> dict[str, Any]:
    """An operator's link (resumed, forked from/to, restarted from/as), its texts bounded."""
    return {
        "kind": _small(link.kind),
        "workflow_id": bounds.text(link.workflow_id, NAME_LIMIT, cut, "link", "links"),
        "at": _small(link.at),
        "by": bounds.text(link.by, NAME_LIMIT, cut, "link", "links"),
        "reason": bounds.text(link.reason, NAME_LIMIT, cut, "link", "links"),
        "step": _small(link.step),
        "override": _small(link.override),
    }


def stream_answer(snapshot: StreamSnapshot, name: str | None, offset: int) -> dict[str, Any]:
    """A workflow's streams now: counts, and a page of one stream's values, each cut short.

    A long value comes as the start of its JSON text, with "truncated": true (a stream's
    values are not addressable by the values endpoint).
    """
    bounds = Bounds()
    items = []
    for item in snapshot.items:
        cut: dict[str, str] = {}
        shown = bounds.value(item.value, VALUE_LIMIT, cut, "value", "")
        answer: dict[str, Any] = {
            "offset": item.offset,
            "value": shown,
            "at": item.at.timestamp(),
            "step": item.step,
            "attempt": item.attempt,
            "restarted": item.restarted,
        }
        if cut:
            answer["truncated"] = True
        items.append(answer)
    return {
        "streams": {stream[:NAME_LIMIT]: count for stream, count in snapshot.counts.items()},
        "name": name,
        "offset": offset,
        "items": items,
        "ended": snapshot.ended,
    }

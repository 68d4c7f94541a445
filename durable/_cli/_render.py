"""How the CLI shows listings, histories and inboxes in a terminal (rich tables).

Presentation only: the data comes from the read-only catalog. Times are shown in local time,
values as compact JSON cut to fit a column; `--json` gives scripts the whole values.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import click
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .._catalog import InboxMessage, Listing, Runner
from .._engine._describe import WorkflowDescription, WorkflowState
from .._engine._history import Attempt, History, Link, Step
from .._engine._records import moment as record_moment
from .._excerpts import Excerpts
from .._json_ready import to_plain
from .._queue_reading import QueueLoad

STATE_STYLES = {
    WorkflowState.QUEUED: "white",
    WorkflowState.RUNNING: "cyan",
    WorkflowState.SLEEPING: "blue",
    WorkflowState.WAITING: "magenta",
    WorkflowState.COMPLETED: "green",
    WorkflowState.FAILED: "bold red",
    WorkflowState.CANCELLED: "yellow",
}
STATE_COLORS = {
    "running": "cyan",
    "sleeping": "blue",
    "waiting for event": "magenta",
    "completed": "green",
    "failed": "red",
    "cancelled": "yellow",
}
STEP_STYLES = {
    "completed": "green",
    "failed": "bold red",
    "running": "cyan",
    "sleeping": "blue",
    "waiting": "magenta",
    "fired": "green",
    "received": "green",
    "timed out": "yellow",
    "abandoned": "dim",
    "published": "dim",
}


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: str) -> str:
    """Journal text as it may reach a terminal: control characters shown, not obeyed.

    Names, messages and payloads are anyone's text; an escape sequence in an error message
    must not retitle the terminal or erase lines. Newlines and tabs stay.
    """
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def _add_row(table: Table, *cells: str | Text) -> None:
    """A row whose text is shown as it is: never read as rich markup ("[link=...]")."""
    table.add_row(*(Text(safe(cell)) if isinstance(cell, str) else cell for cell in cells))


def when(moment: datetime | float | None, *, short: bool = False) -> str:
    """A moment in local time, to the second ("" if there is none).

    `short` leaves out the date of today's moments.
    """
    if moment is None:
        return ""
    if not isinstance(moment, datetime):
        moment = record_moment(moment)  # (clamped: a timer may be armed for ever, at inf)
    local = moment.astimezone()
    if short and local.date() == datetime.now().astimezone().date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    """A span for people: 180 ms, 4.2 s, 3 min 5 s, 2 h 0 min, 3 d 4 h."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def compact(value: Any, width: int = 60) -> str:
    """A value as one line of JSON, cut to `width` characters."""
    text = json.dumps(to_plain(value), ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= width else text[: width - 1] + "…"


def listing_lines(listing: Listing, *, width: int, color: bool) -> Iterator[str]:
    """The workflows of a directory as aligned text, one line each, cut to `width`.

    Plain text, not a rich table: rich lays out 10,000 rows in seconds; this takes
    milliseconds. NOW comes last, so it is what a narrow terminal cuts.
    """
    header = ("ID", "WORKFLOW", "STATE", "STEPS", "STARTED", "UPDATED", "NOW")
    rows = [
        (
            described.workflow_id,
            safe(described.workflow_name),
            str(described.state),
            str(described.steps),
            when(described.started, short=True),
            when(described.updated, short=True),
            safe(_now_column(described, listing.runner(described.workflow_id))).replace("\n", " "),
        )
        for described in listing.workflows
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(6)]
    for index, row in enumerate([header, *rows]):
        cells = [
            row[column].rjust(widths[column]) if column == 3 else row[column].ljust(widths[column])
            for column in range(6)
        ]
        line = "  ".join([*cells, row[6]])
        if len(line) > width:
            line = line[: width - 1] + "…"
        if color and index:
            state = row[2]
            start = sum(widths[:2]) + 4
            styled = click.style(state, fg=STATE_COLORS.get(state), bold=state == "failed")
            line = line[:start] + line[start:].replace(state, styled, 1)
        elif color:
            line = click.style(line, bold=True)
        yield line


def queue_line(load: QueueLoad) -> str:
    """One queue's load in words: running, waiting, its limits and recent starts."""
    parts = [f"queue {safe(load.name)}:"]
    if load.concurrency is not None:
        running = "?" if load.running is None or load.running < 0 else str(load.running)
        parts.append(f"{running} of {load.concurrency} running,")
    parts.append(f"{load.admitted} started and not ended, {load.waiting} waiting")
    if load.rate is not None:
        parts.append(
            f"· {load.recent_starts} starts in the last {load.rate[1]:g} s (limit {load.rate[0]})"
        )
    if load.concurrency_per_key is not None:
        parts.append(f"· at most {load.concurrency_per_key} per key")
    if load.damaged:
        parts.append(f"· {load.damaged} set aside as damaged (listed as unreadable)")
    return " ".join(parts)


def _now_column(described: WorkflowDescription, runner: Runner) -> str:
    if described.error is not None:
        kind, _, message = described.error.partition(": ")
        return f"{kind.rsplit('.', 1)[-1]}: {message}".splitlines()[0]
    parts = [described.current or ""]
    if described.state is WorkflowState.SLEEPING and described.wake_at is not None:
        parts = [f"sleeping until {when(described.wake_at, short=True)}"]  # (local time)
    if described.status is not None:  # (an ended workflow's is its last, not a current one)
        last = "last " if described.ended is not None else ""
        parts.append(f"{last}status {compact(described.status, 40)}")
    if described.unread_events:
        parts.append(f"{described.unread_events} unread")
    if described.skipped_messages:
        parts.append(f"{described.skipped_messages} skipped")
    if runner.stalled(described):  # (running, and no activity under way: nothing to name)
        stalled = "STALLED, no process holds it"
        parts[0] = f"{stalled}: {parts[0]}" if parts[0] else stalled
    return " · ".join(part for part in parts if part)


def history_view(
    history: History,
    described: WorkflowDescription,
    steps: list[Step],
    shown_from: int,
    runner: Runner,
) -> RenderableType:
    """A workflow's header (state, arguments, outcome) and a page of its timeline."""
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column(overflow="fold")
    _add_row(header, "workflow", f"{history.workflow_name}  ({history.workflow_id})")
    _add_row(header, "state", Text(str(described.state), style=STATE_STYLES[described.state]))
    if described.state is WorkflowState.SLEEPING and described.wake_at is not None:
        _add_row(header, "now", f"sleeping until {when(described.wake_at)}")
    elif described.current:
        _add_row(header, "now", described.current)
    if says := runner.says(described):
        _add_row(header, "runner", says)
    if described.status is not None:
        label = "last status" if described.ended is not None else "status"  # (not a current one)
        _add_row(header, label, compact(described.status, 200))
    _add_row(header, "arguments", compact(history.arguments, 200))
    started = "started" if not history.generation else f"generation {history.generation} began"
    if described.state is WorkflowState.QUEUED:
        started = "enqueued"  # (not started yet)
    _add_row(header, started, when(history.started))
    if history.ended is not None:
        _add_row(
            header,
            "ended",
            f"{when(history.ended)}  (took {duration(history.ended - history.started)})",
        )
    if history.generation:
        _add_row(
            header,
            "generation",
            f"{history.generation} (continued as new {history.generation} times; the steps "
            "below are this generation's)",
        )
    if history.parent:
        _add_row(header, "parent", history.parent)
    for link in history.links:
        _add_row(header, link.kind, link_text(link))
    if described.deadline is not None:
        _add_row(header, "deadline", f"{when(described.deadline)}  (its execution_timeout)")
    if described.skipped_messages:
        _add_row(
            header,
            "skipped",
            Text(
                safe(
                    f"{described.skipped_messages} message(s) could not be delivered, latest "
                    f"{described.last_skip} (see messages received)"
                ),
                style="yellow",
            ),
        )
    if history.outcome in ("completed", "continued as new"):
        _add_row(header, "result", compact(history.result, 200))
    if history.error is not None:
        _add_row(header, "error", Text(safe(_error_line(history.error)), style="red"))
    total = len(history.steps)
    if total and not steps:
        _add_row(header, "steps", f"none from step {shown_from}: it has {total} (0-{total - 1})")
    elif total and len(steps) < total:
        last = shown_from + len(steps) - 1
        _add_row(header, "steps", f"{shown_from}-{last} of {total} shown (--from N, --limit N)")
    parts: list[RenderableType] = [header, Text(""), timeline_table(history, steps)]
    if history.messages:
        parts += [Text(""), Text("messages received", style="bold"), messages_table(history)]
    return Group(*parts, *_traceback_parts(history, steps))


def _traceback_parts(history: History, steps: list[Step]) -> list[RenderableType]:
    """The workflow's error's traceback, else the shown steps' last activity error's."""
    tracebacks = [(step, attempt) for step in steps for attempt in step.attempts if attempt.error]
    if history.error is not None and history.error.get("tb"):
        return [
            Text(""),
            Text("workflow error", style="bold red"),
            Text(safe(history.error["tb"])),
        ]
    if tracebacks:
        step, attempt = tracebacks[-1]
        label = safe(f"last activity error: step {step.step} {step.name}, attempt {attempt.number}")
        return [
            Text(""),
            Text(label, style="bold red"),
            Text(safe((attempt.error or {}).get("tb", ""))),
        ]
    return []


def timeline_table(history: History, steps: list[Step]) -> Table:
    """Each step: what it was, when it began, how long it took, how it ended."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True)
    for column in ("KIND", "NAME", "STATE", "BEGAN"):
        table.add_column(column, no_wrap=True)
    table.add_column("TOOK", justify="right", no_wrap=True)
    table.add_column("DETAIL", overflow="fold", max_width=90)
    for step in steps:
        took = None
        if step.began is not None and step.ended is not None:
            took = step.ended - step.began
        _add_row(
            table,
            str(step.step),
            step.kind,
            step.name if step.kind != "status" else "",
            Text(step.state, style=STEP_STYLES.get(step.state, "")),
            when(step.began),
            duration(took),
            _step_detail(step),
        )
    return table


def code_view(steps: list[Step], excerpts: Excerpts) -> RenderableType:
    """Where the workflow's code asked for each step: file:line, function, and an excerpt."""
    parts: list[RenderableType] = [Text("code", style="bold")]
    if not any(step.site for step in steps):
        parts.append(
            Text("no call sites journaled (a journal written before durable recorded them)")
        )
    for step in steps:
        site = step.site
        if not site:
            continue
        where = f"{_short_path(site['file'])}:{site['line']} in {site['function']}"
        title = Text(safe(f"#{step.step} {step.kind} {step.name}".rstrip()), style="bold")
        parts.append(Text.assemble(title, "  ", Text(safe(where), style="cyan")))
        for number, line in excerpts.around(site["file"], site["line"]):
            marker = "→" if number == site["line"] else " "
            style = "" if number == site["line"] else "dim"
            parts.append(Text(safe(f" {marker}{number:>5} │ {line}"), style=style))
    return Group(*parts)


def _short_path(file: str) -> str:
    """A path relative to the working directory when it lies under it."""
    here = os.getcwd() + os.sep
    return file[len(here) :] if file.startswith(here) else file


def _step_detail(step: Step) -> str:
    details = []
    if step.kind == "timer" and step.fire_at is not None:
        details.append(f"until {when(step.fire_at)}")
    if step.timeout_at is not None and step.state in ("waiting", "timed out"):
        details.append(f"{'timed out' if step.ended else 'times out'} at {when(step.timeout_at)}")
    if step.child_id:
        details.append(f"child {step.child_id}" + (" (detached)" if step.detached else ""))
    if len(step.attempts) > 1 or any(attempt.error for attempt in step.attempts):
        details.append(" · ".join(_attempt_word(attempt) for attempt in step.attempts))
    if step.error is not None:
        details.append(_error_line(step.error))
    elif step.state in ("completed", "received", "published"):
        details.append(f"→ {compact(step.result)}")
    return "  ".join(details)


def _attempt_word(attempt: Attempt) -> str:
    if attempt.ended is None:
        return f"#{attempt.number} running"
    took = duration(attempt.ended - attempt.began) if attempt.began is not None else "?"
    if attempt.error is None:
        return f"#{attempt.number} ok {took}"
    kind = str(attempt.error.get("type", "error")).rsplit(".", 1)[-1]
    return f"#{attempt.number} {kind} {took}"


def _error_line(error: dict[str, Any]) -> str:
    return f"{error.get('type', 'error')}: {error.get('msg', '')}"


def messages_table(history: History) -> Table:
    """The events and cancellations the workflow received, in the order it received them.

    A message it could not deliver is a row of kind "skipped", its reason as the name.
    """
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("#", "KIND", "NAME", "RECEIVED", "PAYLOAD"):
        table.add_column(column, overflow="fold")
    for message in history.messages:
        _add_row(
            table,
            str(message.position),
            message.kind,
            message.name,
            when(message.at),
            compact(message.payload),
        )
    return table


def inbox_table(messages: list[InboxMessage]) -> Table:
    """What was sent to a workflow, oldest first, and whether its run has received each."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("#", "KIND", "NAME", "SENT", "RECEIVED", "ID", "PAYLOAD"):
        table.add_column(column, overflow="fold")
    for message in messages:
        _add_row(
            table,
            str(message.position),
            message.kind,
            message.name,
            when(message.sent),
            Text("yes", style="green") if message.received else Text("not yet", style="yellow"),
            message.message_id or "",
            compact(message.payload),
        )
    return table


def link_text(link: Link) -> str:
    """An operator's link in one line: the other run, the step, when, who and why."""
    parts = [safe(link.workflow_id)] if link.workflow_id is not None else []
    if link.step is not None:
        parts.append(f"step {link.step}")
    if link.override is not None:
        parts.append(f"step {link.override}'s result overridden")
    parts.append(when(link.at))
    if link.by:
        parts.append(f"by {safe(link.by)}")
    if link.reason:
        parts.append(f"({safe(link.reason)})")
    return "  ".join(parts)

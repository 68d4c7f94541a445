"""Where the workflow's code asked for each step: call sites, named once per journal.

A part of WorkflowRun (its `_sites`). A live step's records carry its call site's number
`w`: the step that first asked from there, in this journal; that first step's records also
name it (`wp` path, `wl` line, `wn` function). So a loop of 10,000 activities names its
line once and costs 3 bytes a step after; no record is added, and older readers ignore the
keys. Readers (`durable show --source`, the web UI) show file:line and an excerpt. A
resumed run takes the sites its journal names, and so the same numbers.

The cost of a step: the caller hands in its frame and instruction offset (one
`sys._getframe` in the public call, ~350 CPU instructions, and `f_lasti`, ~230: a field,
where `f_lineno` decodes the line table); an activity step from the same frame and place
as the last one takes its keys after two compares, without reading the frame's code (~270
more), another one a dict lookup keyed by the code's id. The line is found once per
place. While a run replays recorded outcomes an activity call reads no frame
(`WorkflowLoop.replaying`): its step's records name its site already. (A step asked for
then that the journal does not hold yet, a concurrent one a crash left unrecorded, is
journaled without its site.)
Timers come from asyncio (`call_at`), several frames below the code: their site is found by
walking the stack (`timer_site`), past asyncio and durable, never past the workflow loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
from types import CodeType, FrameType
from typing import Any

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_ASYNCIO = os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep

Site = dict[str, Any]  # a step's call site keys: {w} or {w, wp, wl, wn} (records.Site)


class CallSites:
    """This journal's call sites: (code, instruction offset) -> the keys a step's records carry."""

    def __init__(self, recorded: dict[tuple[str, int, str], int]) -> None:
        self._named = dict(recorded)  # (file, line, function) -> number, as journaled
        # (id(code), offset) -> (code, its keys): the code object kept, so an id is not reused
        self._known: dict[tuple[int, int], tuple[CodeType, Site]] = {}
        # The last place an activity was asked for from (its caller's frame object: the
        # same frame is the same code; holding it keeps it from being reused), and its
        # keys: a loop's steps skip the lookup and the frame's code
        self.last_frame: FrameType | None = None
        self.last_offset = -1
        self.last_keys: Site | None = None
        # durable.sleep's call site, for the timer its asyncio.sleep asks for next
        self.timer_hint: tuple[CodeType, int] | None = None

    def of(self, code: CodeType, offset: int, step: int, frame: FrameType | None = None) -> Site:
        """The keys of step `step`, asked for at instruction `offset` of `code`.

        A new site is numbered by this step, whose records name it (its keys say where);
        later steps from there carry the number alone. `frame` (an activity call's caller,
        running `code`): remembered with the site as the last place asked from.
        """
        known = self._known.get((id(code), offset))
        if known is not None and known[0] is code:
            self.last_frame, self.last_offset, self.last_keys = frame, offset, known[1]
            return known[1]
        name = (code.co_filename, line_at(code, offset), code.co_qualname)
        number = self._named.get(name)
        keys = {"w": step if number is None else number}
        self._known[(id(code), offset)] = (code, keys)
        self.last_frame, self.last_offset, self.last_keys = frame, offset, keys
        if number is None:
            self._named[name] = step
            return {"w": step, "wp": name[0], "wl": name[1], "wn": name[2]}
        return keys

    def unused(self, site: Site | None) -> None:
        """A step that named its site was dropped before any record of it was written.

        (A timer cancelled at once, say.) The next step from there names the site instead.
        """
        if site is None or "wp" not in site:
            return
        self._named.pop((site["wp"], site["wl"], site["wn"]), None)
        for key, (_, keys) in list(self._known.items()):
            if keys["w"] == site["w"]:
                del self._known[key]
        if self.last_keys is not None and self.last_keys["w"] == site["w"]:
            self.last_frame, self.last_offset, self.last_keys = None, -1, None


def line_at(code: CodeType, offset: int) -> int:
    """The source line of the instruction at byte `offset` of `code` (a frame's f_lasti)."""
    for start, end, line in code.co_lines():
        if start <= offset < end:
            return line if line is not None else code.co_firstlineno
    return code.co_firstlineno


def timer_site(stop: CodeType) -> tuple[CodeType, int] | None:
    """The workflow code that armed the timer being requested now (None: not found).

    The innermost frame outside asyncio and durable, below the workflow loop's `stop` frame
    (a timer that is the first await of a task has no caller of its own above the loop).
    """
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code is stop:
            return None
        filename = code.co_filename
        if not (filename.startswith(_PACKAGE) or filename.startswith(_ASYNCIO)):
            return code, frame.f_lasti
        frame = frame.f_back
    return None

"""patched()'s decisions for one run: what the journal says, else the old path or the new.

A part of WorkflowRun (its `_patches`). A journal that recorded a patch takes it; one whose
steps go on past the point of the first check without it was written by the old code, so
it does not; new work takes it, and the run journals that (a `patch` record). The first
check decides for the whole run: later checks, at any place, repeat it (as in Temporal),
so one change spread over places stays whole.
"""

from __future__ import annotations

from ._context import user_call_site


class Patches:
    """Which patches this run takes, decided once each."""

    def __init__(self, recorded: dict[str, int], last_recorded_step: int) -> None:
        self._recorded = recorded  # the journal's: patch id -> the step it was taken before
        self._last_recorded_step = last_recorded_step  # -1: the journal has no step
        self._decided: dict[str, tuple[bool, str]] = {}  # and where (for a debugger)

    def decide(self, patch_id: str, next_step: int) -> tuple[bool, bool]:
        """Whether the code takes `patch_id` here, before step `next_step`; whether that is new.

        A new decision is the caller's to journal (a `patch` record).
        """
        known = self._decided.get(patch_id)
        if known is not None:
            return known[0], False
        site = user_call_site()
        new = False
        if patch_id in self._recorded:
            decision = True
        elif self._last_recorded_step >= next_step:
            decision = False  # the journal's steps go on without it: the old code's path
        else:
            decision = new = True
        self._decided[patch_id] = (decision, site)
        return decision, new

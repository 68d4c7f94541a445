"""Patches: what patched() answers, decided once per run."""

from __future__ import annotations

from durable._engine._patches import Patches


def test_the_journal_decides_else_the_old_path_else_new_work_journaled() -> None:
    patches = Patches({"recorded": 2}, last_recorded_step=4)
    assert patches.decide("recorded", 0) == (True, False)  # the journal took it
    assert patches.decide("old", 3) == (False, False)  # its steps go on without it
    assert patches.decide("new", 5) == (True, True)  # new work: journal the decision
    assert patches.decide("new", 9) == (True, False)  # decided once: the same, not again
    assert patches.decide("old", 9) == (False, False)  # (even past the journal's end)

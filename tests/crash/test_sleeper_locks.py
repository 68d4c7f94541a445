"""Unloaded sleepers held by name locks alone: never two runners, taken over after a death.

A process starts a dozen workflows that sleep twice (each sleep unloads them: their journals'
descriptors closed, held by the name locks; each wake-up reopens and flocks the journal) while
other processes recover and follow the same ids; the test SIGKILLs or SIGSTOPs them at
moments hypothesis picks. Checked from the activities' ledger and the processes' output, as
in test_one_runner: never two processes with an attempt of one workflow in flight at once
(unless the first was killed), every surviving process prints every real result, and a last
process finds every workflow finished.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fault_plans import NO_SHRINKING, Plan, check_ledger, check_results, finish, plans, play

pytestmark = pytest.mark.slow

APP = "sleeper_lock_app"
IDS = 12
PLANS = plans(["start", "recover"], delay=0.6, fault_at=(0.2, 1.2), stopped_for=1.5)


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=NO_SHRINKING,
)
@given(
    holder=PLANS.filter(lambda plan: plan.mode == "start"),
    others=st.lists(PLANS, min_size=2, max_size=2),
)
def test_sleepers_held_by_name_locks_have_one_runner(
    tmp_path_factory: pytest.TempPathFactory, holder: Plan, others: list[Plan]
) -> None:
    where = tmp_path_factory.mktemp("sleeper-locks")
    directory, ledger = str(where / "journals"), where / "ledger"
    ids = [f"{uuid.uuid4().hex[:6]}-{n}" for n in range(IDS)]
    for output in play(APP, directory, ledger, [holder, *others], ids):
        check_results(output, may_be_absent=True)
    finish(APP, directory, ledger, "start", ids)
    check_ledger(ledger, ids, ["a", "b"], exclusive=True)

"""One runner per workflow, whatever several processes do to the same ids.

Three processes `run`, `start` and `recover` (then follow with `handle`) the same two
workflows at once, on a directory and on PostgreSQL, while the test SIGKILLs or SIGSTOPs
them at moments hypothesis picks. Each workflow runs an activity, sleeps long enough to be
unloaded, and runs another. Checked, from the ledger the activities write (the outside
world) and what every process prints:

- on a directory, never two processes with an attempt of one workflow in flight at once
  (unless the first was killed): an unloaded sleeper keeps its lock, a paused process keeps
  it too; on PostgreSQL, no step starts again once the workflow moved past it;
- every process that was not killed prints the workflow's real result for every id, never
  WorkflowAlreadyRunning: handles follow the run wherever it is, and take it over;
- a last process (`run`) finds every workflow finished with that result, or finishes it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fault_plans import NO_SHRINKING, Plan, check_ledger, check_results, finish, plans, play

pytestmark = pytest.mark.slow

APP = "one_runner_app"
PLANS = plans(["run", "start", "recover"], delay=0.4, fault_at=(0.3, 1.2), stopped_for=1.6)


def scenario(store: str, ledger: Path, chosen: list[Plan], *, exclusive: bool) -> None:
    ids = [f"{uuid.uuid4().hex[:8]}-{n}" for n in (1, 2)]  # (one database for the examples)
    for output in play(APP, store, ledger, chosen, ids):
        check_results(output, may_be_absent=True)  # (recover, before the others created it)
    finish(APP, store, ledger, "run", ids)  # (creates them if every process recovered)
    check_ledger(ledger, ids, ["a", "b"], exclusive=exclusive)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=NO_SHRINKING,
)
@given(chosen=st.lists(PLANS, min_size=3, max_size=3))
def test_one_runner_on_a_directory(
    tmp_path_factory: pytest.TempPathFactory, chosen: list[Plan]
) -> None:
    where = tmp_path_factory.mktemp("one-runner")
    scenario(str(where / "journals"), where / "ledger", chosen, exclusive=True)


@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=NO_SHRINKING,
)
@given(chosen=st.lists(PLANS, min_size=3, max_size=3))
def test_one_runner_on_postgres(
    tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str, chosen: list[Plan]
) -> None:
    where = tmp_path_factory.mktemp("one-runner-pg")
    scenario(postgres_dsn, where / "ledger", chosen, exclusive=False)

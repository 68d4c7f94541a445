"""durable.testing: prove your workflows survive crashes, and test a 2-hour flow in ms.

- TestRuntime: a Runtime with virtual time (sleeps and timeouts skip ahead while the test
  awaits an outcome; advance() for steps), activity mocks (mock_activity, failing) and
  counters (count_calls), and simulated crashes (crash=CrashPoint(n)).
- check_crash_points(scenario, dir): run a test body once per point where a SIGKILL could
  land, crashing there and resuming; crash_points() is the same for hypothesis's @given.
- replay / replay_directory: replay journals against the current code, a pre-deploy gate
  (also `durable verify DIR --workflow module:function`).
- fork_check_directory: re-run a sample of finished workflows from their recorded
  arguments through the current code, with recorded activity results; every divergence
  with its step and call site (`durable verify --fork-check`).
- A pytest plugin gives the fixtures `durable_dir` and `durable_runtime`.
"""

from .._errors import SimulatedCrash as SimulatedCrash
from ._activities import ActivityCall as ActivityCall
from ._activities import CallCounter as CallCounter
from ._activities import Failing as Failing
from ._activities import failing as failing
from ._crash_checks import CrashPointFailed as CrashPointFailed
from ._crash_checks import CrashReport as CrashReport
from ._crash_checks import Scenario as Scenario
from ._crash_checks import check_crash_point as check_crash_point
from ._crash_checks import check_crash_points as check_crash_points
from ._crashes import CrashPoint as CrashPoint
from ._crashes import crash_points as crash_points
from ._crashes import every_crash_point as every_crash_point
from ._fork_check import Divergence as Divergence
from ._fork_check import ForkCheckResult as ForkCheckResult
from ._fork_check import RecordedFailure as RecordedFailure
from ._fork_check import fork_check_directory as fork_check_directory
from ._replay_check import ReplayResult as ReplayResult
from ._replay_check import replay as replay
from ._replay_check import replay_directory as replay_directory
from ._test_runtime import TestRuntime as TestRuntime
from ._test_runtime import TestWorkflowHandle as TestWorkflowHandle
from ._virtual_time import VirtualClock as VirtualClock

__all__ = [
    "ActivityCall",
    "CallCounter",
    "CrashPoint",
    "CrashPointFailed",
    "CrashReport",
    "Divergence",
    "Failing",
    "ForkCheckResult",
    "RecordedFailure",
    "ReplayResult",
    "Scenario",
    "SimulatedCrash",
    "TestRuntime",
    "TestWorkflowHandle",
    "VirtualClock",
    "check_crash_point",
    "check_crash_points",
    "crash_points",
    "every_crash_point",
    "failing",
    "fork_check_directory",
    "replay",
    "replay_directory",
]

for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith("durable."):
        _value.__module__ = "durable.testing"
del _name, _value

"""durable: durable execution for Python, in-process.

Workflows are plain async functions; every activity result is appended to the workflow's own
journal and made durable before the workflow sees it, so a crashed run resumes where it was.
"""

from ._api import activity_info as activity_info
from ._api import continue_as_new as continue_as_new
from ._api import deprecate_patch as deprecate_patch
from ._api import now as now
from ._api import patched as patched
from ._api import random as random
from ._api import run_child as run_child
from ._api import set_status as set_status
from ._api import sleep as sleep
from ._api import uuid4 as uuid4
from ._api import wait_for_event as wait_for_event
from ._api import workflow_info as workflow_info
from ._bulk import BulkAction as BulkAction
from ._bulk import BulkRequest as BulkRequest
from ._bulk import BulkResult as BulkResult
from ._default_runtime import enqueue as enqueue
from ._default_runtime import run as run
from ._default_runtime import start as start
from ._definitions import Activity as Activity
from ._definitions import Workflow as Workflow
from ._definitions import activity as activity
from ._definitions import workflow as workflow
from ._engine._context import ActivityInfo as ActivityInfo
from ._engine._context import WorkflowInfo as WorkflowInfo
from ._engine._describe import WorkflowDescription as WorkflowDescription
from ._engine._describe import WorkflowState as WorkflowState
from ._engine._retry import RetryPolicy as RetryPolicy
from ._errors import ActionRefused as ActionRefused
from ._errors import ActivityError as ActivityError
from ._errors import ActivityTimeout as ActivityTimeout
from ._errors import AlreadyQueued as AlreadyQueued
from ._errors import ChildIdInUse as ChildIdInUse
from ._errors import CompensationFailed as CompensationFailed
from ._errors import DurableError as DurableError
from ._errors import EventTimeout as EventTimeout
from ._errors import ExtraNotInstalled as ExtraNotInstalled
from ._errors import ForkIncomplete as ForkIncomplete
from ._errors import InboxFull as InboxFull
from ._errors import InDoubtError as InDoubtError
from ._errors import InvalidBulkOptions as InvalidBulkOptions
from ._errors import InvalidDuration as InvalidDuration
from ._errors import InvalidFilter as InvalidFilter
from ._errors import InvalidForkStep as InvalidForkStep
from ._errors import InvalidJournalName as InvalidJournalName
from ._errors import InvalidOverride as InvalidOverride
from ._errors import InvalidQueue as InvalidQueue
from ._errors import InvalidSchedule as InvalidSchedule
from ._errors import InvalidStreamOffset as InvalidStreamOffset
from ._errors import InvalidWorkflowId as InvalidWorkflowId
from ._errors import JournalClosed as JournalClosed
from ._errors import JournalCorrupted as JournalCorrupted
from ._errors import JournalError as JournalError
from ._errors import JournalFenced as JournalFenced
from ._errors import JournalLocked as JournalLocked
from ._errors import JournalMisplaced as JournalMisplaced
from ._errors import JournalNotFound as JournalNotFound
from ._errors import JournalPermissionDenied as JournalPermissionDenied
from ._errors import JournalWriteError as JournalWriteError
from ._errors import MessageTooLarge as MessageTooLarge
from ._errors import NonDeterminismError as NonDeterminismError
from ._errors import OutsideWorkflowError as OutsideWorkflowError
from ._errors import QueueError as QueueError
from ._errors import QueueNotDeclared as QueueNotDeclared
from ._errors import RecordTooLarge as RecordTooLarge
from ._errors import ScheduleNotFound as ScheduleNotFound
from ._errors import SerializationError as SerializationError
from ._errors import StoreUnavailable as StoreUnavailable
from ._errors import StreamNotFound as StreamNotFound
from ._errors import TooManyOpenJournals as TooManyOpenJournals
from ._errors import UnknownBulkAction as UnknownBulkAction
from ._errors import UnknownWorkflow as UnknownWorkflow
from ._errors import UnsafeJournalDirectory as UnsafeJournalDirectory
from ._errors import UnsafeJournalFile as UnsafeJournalFile
from ._errors import UnsupportedJournalFormat as UnsupportedJournalFormat
from ._errors import WorkflowAlreadyRunning as WorkflowAlreadyRunning
from ._errors import WorkflowCancelled as WorkflowCancelled
from ._errors import WorkflowDefinitionError as WorkflowDefinitionError
from ._errors import WorkflowFailed as WorkflowFailed
from ._errors import WorkflowFinished as WorkflowFinished
from ._errors import WorkflowIdInUse as WorkflowIdInUse
from ._errors import WorkflowNotFound as WorkflowNotFound
from ._errors import WorkflowStopped as WorkflowStopped
from ._errors import WorkflowTimedOut as WorkflowTimedOut
from ._handles import WorkflowHandle as WorkflowHandle
from ._limits import Limit as Limit
from ._log_context import LogContext as LogContext
from ._log_context import WorkflowLogger as WorkflowLogger
from ._log_context import logger as logger
from ._query import WorkflowFilter as WorkflowFilter
from ._query import WorkflowPage as WorkflowPage
from ._queue_reading import QueueLoad as QueueLoad
from ._queues import Queue as Queue
from ._queues import Rate as Rate
from ._runtime import Runtime as Runtime
from ._saga import Saga as Saga
from ._schedule_spec import ScheduleSpec as ScheduleSpec
from ._schedules import FireResult as FireResult
from ._schedules import Schedule as Schedule
from ._schedules import ScheduleDescription as ScheduleDescription
from ._schedules import ScheduleHandle as ScheduleHandle
from ._storage._directory import JournalDirectory as JournalDirectory
from ._storage._frames import StoredRecord as StoredRecord
from ._storage._interface import Journal as Journal
from ._storage._interface import JournalStore as JournalStore
from ._storage._postgres import PostgresStore as PostgresStore
from ._streams import Stream as Stream
from ._streams import StreamItem as StreamItem
from ._telemetry import OpenTelemetry as OpenTelemetry
from ._version import __version__ as __version__

__all__ = [
    "ActionRefused",
    "Activity",
    "ActivityError",
    "ActivityInfo",
    "ActivityTimeout",
    "AlreadyQueued",
    "BulkAction",
    "BulkRequest",
    "BulkResult",
    "ChildIdInUse",
    "CompensationFailed",
    "DurableError",
    "EventTimeout",
    "ExtraNotInstalled",
    "FireResult",
    "ForkIncomplete",
    "InDoubtError",
    "InboxFull",
    "InvalidBulkOptions",
    "InvalidDuration",
    "InvalidFilter",
    "InvalidForkStep",
    "InvalidJournalName",
    "InvalidOverride",
    "InvalidQueue",
    "InvalidSchedule",
    "InvalidStreamOffset",
    "InvalidWorkflowId",
    "Journal",
    "JournalClosed",
    "JournalCorrupted",
    "JournalDirectory",
    "JournalError",
    "JournalFenced",
    "JournalLocked",
    "JournalMisplaced",
    "JournalNotFound",
    "JournalPermissionDenied",
    "JournalStore",
    "JournalWriteError",
    "Limit",
    "LogContext",
    "MessageTooLarge",
    "NonDeterminismError",
    "OpenTelemetry",
    "OutsideWorkflowError",
    "PostgresStore",
    "Queue",
    "QueueError",
    "QueueLoad",
    "QueueNotDeclared",
    "Rate",
    "RecordTooLarge",
    "RetryPolicy",
    "Runtime",
    "Saga",
    "Schedule",
    "ScheduleDescription",
    "ScheduleHandle",
    "ScheduleNotFound",
    "ScheduleSpec",
    "SerializationError",
    "StoreUnavailable",
    "StoredRecord",
    "Stream",
    "StreamItem",
    "StreamNotFound",
    "TooManyOpenJournals",
    "UnknownBulkAction",
    "UnknownWorkflow",
    "UnsafeJournalDirectory",
    "UnsafeJournalFile",
    "UnsupportedJournalFormat",
    "Workflow",
    "WorkflowAlreadyRunning",
    "WorkflowCancelled",
    "WorkflowDefinitionError",
    "WorkflowDescription",
    "WorkflowFailed",
    "WorkflowFilter",
    "WorkflowFinished",
    "WorkflowHandle",
    "WorkflowIdInUse",
    "WorkflowInfo",
    "WorkflowLogger",
    "WorkflowNotFound",
    "WorkflowPage",
    "WorkflowState",
    "WorkflowStopped",
    "WorkflowTimedOut",
    "activity",
    "activity_info",
    "continue_as_new",
    "deprecate_patch",
    "enqueue",
    "logger",
    "now",
    "patched",
    "random",
    "run",
    "run_child",
    "set_status",
    "sleep",
    "start",
    "uuid4",
    "wait_for_event",
    "workflow",
    "workflow_info",
]

for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith("durable."):
        _value.__module__ = "durable"
del _name, _value

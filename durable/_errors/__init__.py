"""Every exception durable raises on purpose, in one tree.

This package is a leaf: it imports nothing else from durable, so every layer can use it.
Its modules hold the families (_base, _journal, _workflow, _operating, _flow); import
the names from here.

    DurableError                      anything durable raises on purpose
      SerializationError (TypeError)  a value msgpack cannot carry
      JournalError                    storage trouble; .path names the journal
        InvalidJournalName (ValueError)
        JournalNotFound (LookupError)
        JournalLocked                 another writer holds the journal
        JournalCorrupted              bad bytes before valid data; .offset
        UnsupportedJournalFormat      written by a newer durable
        JournalMisplaced              the file holds another file's journal (.found_name)
        RecordTooLarge (ValueError)
        JournalWriteError             write or sync failed (ENOSPC, EIO); .errno
        TooManyOpenJournals           the process's open-file limit (EMFILE, ENFILE)
        JournalClosed                 the handle was closed
        JournalFenced                 another runner took the journal over (lease expired)
        ForkIncomplete                a fork's copy stopped half-way: run the fork again
        StoreUnavailable              the store cannot be reached or used (PostgreSQL)
        JournalPermissionDenied (PermissionError)  a file or directory lacks a permission
        UnsafeJournalFile             a link or special file where a journal file belongs
        UnsafeJournalDirectory        the directory is writable by other users
      WorkflowFailed                  run(): the recorded failure of the workflow
      WorkflowCancelled               run(): the workflow was cancelled (recorded, final)
        WorkflowTimedOut              cancelled because its execution_timeout passed
      WorkflowNotFound (LookupError)  no journal has this workflow id
      WorkflowFinished                sending to / cancelling a workflow that has ended
      MessageTooLarge (ValueError)    an event or cancellation its journal could never hold
      InboxFull                       too many messages wait that the runner has not taken
      EventTimeout (TimeoutError)     wait_for_event(): no event within the timeout
      CompensationFailed              Saga: compensations failed after the original error
      ActivityError                   in the workflow: an activity failed for good
      ActivityTimeout (TimeoutError)  an attempt ran past its timeout (retried like any failure)
      InDoubtError                    an at_most_once activity a crash left undecided
      NonDeterminismError             replayed code diverged from its journal
      WorkflowAlreadyRunning          another runner holds the workflow's journal
      WorkflowIdInUse (ValueError)    run()/start(): the id ran with other arguments
        ChildIdInUse                  run_child(): the id names a run that is not this call's
      WorkflowStopped                 its runtime closed before it finished (resumable)
      InvalidWorkflowId (ValueError)
      WorkflowDefinitionError (TypeError)  not a decorated workflow / activity
      UnknownWorkflow (LookupError)   recover(): a journal names an unregistered workflow
      ActionRefused                   resume/restart/fork: not in a state the action takes
      InvalidForkStep (ValueError)    fork(at_step=N) past the end of the source's journal
      InvalidOverride (ValueError)    fork(override=...): a value that does not encode or fit
      InvalidDuration (ValueError)
      QueueError                      a queue (or activity Limit) misdeclared or misused; .queue
        InvalidQueue (ValueError)     a negative limit, a priority out of range, a bad option
        QueueNotDeclared (LookupError)  a queued workflow, in a runtime not declaring its queue
        AlreadyQueued                 enqueue(on_duplicate="raise"): queued or running already
      InvalidSchedule (ValueError)    a schedule's cron, time zone, interval or policy is bad
      ScheduleNotFound (LookupError)  no schedule of this name on the store
      StreamNotFound (LookupError)    read_stream(): the workflow ended without this stream
      InvalidStreamOffset (ValueError)  read_stream(): negative, or past an ended stream's end
      OutsideWorkflowError (RuntimeError)  workflow_info() outside a workflow, ...
      InvalidFilter (ValueError)      a WorkflowFilter field, a page's cursor or size: bad
      UnknownBulkAction (LookupError) a bulk action's name that no action has
      InvalidBulkOptions (ValueError) a bulk action's options it does not take (fork's at_step)
      ExtraNotInstalled (ImportError)  asked for a feature whose optional extra is missing

Constructors take facts keyword-only, keep them as attributes and build a message that says
what happened and what to do about it.
"""

from ._base import DurableError as DurableError
from ._base import ExtraNotInstalled as ExtraNotInstalled
from ._base import InvalidDuration as InvalidDuration
from ._base import OutsideWorkflowError as OutsideWorkflowError
from ._base import SerializationError as SerializationError
from ._base import SimulatedCrash as SimulatedCrash
from ._flow import AlreadyQueued as AlreadyQueued
from ._flow import InvalidQueue as InvalidQueue
from ._flow import InvalidSchedule as InvalidSchedule
from ._flow import InvalidStreamOffset as InvalidStreamOffset
from ._flow import QueueError as QueueError
from ._flow import QueueNotDeclared as QueueNotDeclared
from ._flow import ScheduleNotFound as ScheduleNotFound
from ._flow import StreamNotFound as StreamNotFound
from ._journal import InvalidJournalName as InvalidJournalName
from ._journal import JournalClosed as JournalClosed
from ._journal import JournalCorrupted as JournalCorrupted
from ._journal import JournalError as JournalError
from ._journal import JournalFenced as JournalFenced
from ._journal import JournalLocked as JournalLocked
from ._journal import JournalMisplaced as JournalMisplaced
from ._journal import JournalNotFound as JournalNotFound
from ._journal import JournalPermissionDenied as JournalPermissionDenied
from ._journal import JournalWriteError as JournalWriteError
from ._journal import RecordTooLarge as RecordTooLarge
from ._journal import StoreUnavailable as StoreUnavailable
from ._journal import TooManyOpenJournals as TooManyOpenJournals
from ._journal import UnsafeJournalDirectory as UnsafeJournalDirectory
from ._journal import UnsafeJournalFile as UnsafeJournalFile
from ._journal import UnsupportedJournalFormat as UnsupportedJournalFormat
from ._journal import store_away as store_away
from ._operating import ActionRefused as ActionRefused
from ._operating import ForkIncomplete as ForkIncomplete
from ._operating import InvalidBulkOptions as InvalidBulkOptions
from ._operating import InvalidFilter as InvalidFilter
from ._operating import InvalidForkStep as InvalidForkStep
from ._operating import InvalidOverride as InvalidOverride
from ._operating import UnknownBulkAction as UnknownBulkAction
from ._workflow import ActivityError as ActivityError
from ._workflow import ActivityTimeout as ActivityTimeout
from ._workflow import ChildIdInUse as ChildIdInUse
from ._workflow import CompensationFailed as CompensationFailed
from ._workflow import EventTimeout as EventTimeout
from ._workflow import InboxFull as InboxFull
from ._workflow import InDoubtError as InDoubtError
from ._workflow import InvalidWorkflowId as InvalidWorkflowId
from ._workflow import MessageTooLarge as MessageTooLarge
from ._workflow import NonDeterminismError as NonDeterminismError
from ._workflow import UnknownWorkflow as UnknownWorkflow
from ._workflow import WorkflowAlreadyRunning as WorkflowAlreadyRunning
from ._workflow import WorkflowCancelled as WorkflowCancelled
from ._workflow import WorkflowDefinitionError as WorkflowDefinitionError
from ._workflow import WorkflowFailed as WorkflowFailed
from ._workflow import WorkflowFinished as WorkflowFinished
from ._workflow import WorkflowIdInUse as WorkflowIdInUse
from ._workflow import WorkflowNotFound as WorkflowNotFound
from ._workflow import WorkflowStopped as WorkflowStopped
from ._workflow import WorkflowTimedOut as WorkflowTimedOut

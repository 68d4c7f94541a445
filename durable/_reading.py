"""Reading one workflow from its store without taking it: its records, and describe().

No lock is taken and nothing is written, so it works while the workflow runs here or in
another process. The records come validated by the schema (`_engine._records.read_journal`:
JournalCorrupted names a malformed one). The Mailroom reads a workflow this way before a
send; Runtime.describe (and a handle's) describes it.
"""

from __future__ import annotations

from ._engine import _records as records
from ._engine._describe import WorkflowDescription, describe
from ._errors import JournalNotFound, WorkflowNotFound
from ._storage._interface import JournalStore


async def read_workflow(store: JournalStore, workflow_id: str) -> list[records.Record]:
    """The workflow's records, validated (WorkflowNotFound if it has none)."""
    where = store.location(workflow_id)
    try:
        stored = await store.read(workflow_id)
    except JournalNotFound:
        raise WorkflowNotFound(workflow_id=workflow_id, directory=where) from None
    if not stored:
        raise WorkflowNotFound(workflow_id=workflow_id, directory=where)
    return records.read_journal(stored, path=where)  # (validated: JournalCorrupted if not)


async def describe_workflow(store: JournalStore, workflow_id: str) -> WorkflowDescription:
    """What the workflow is doing, from its journal and its inbox (no workflow code runs)."""
    journal = await read_workflow(store, workflow_id)
    inbox = await store.inbox(workflow_id)
    return describe(workflow_id, journal, inbox_size=len(inbox))

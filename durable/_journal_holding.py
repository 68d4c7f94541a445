"""What a workflow's task does with the journal it holds when things go wrong or it sleeps.

A store that goes away (a database restart) stops the run without failing it: it is taken
again once the store answers; a sleeper's journal is read back at its wake-up (or taken
again if its lease was lost meanwhile); the store is told how the workflow stands (a
hint for serve(), never a reason to fail a run).
"""

from __future__ import annotations

from ._engine._log_fields import durable_logger
from ._errors import JournalFenced, JournalLocked, store_away
from ._storage._interface import Journal

logger = durable_logger()


def went_away(workflow_id: str, error: BaseException) -> bool:
    """Whether a run stopped because its store is away (said once, on the durable logger)."""
    if not isinstance(error, Exception) or not store_away(error):
        return False
    logger.warning(
        "workflow %s: the journal store is away (%s: %s); it resumes here once it answers",
        workflow_id,
        type(error).__name__,
        error,
    )
    return True


async def let_go(journal: Journal, *, away: bool) -> None:
    """Close a journal its run let go of.

    A store that is away cannot take its last records: they go with the run's lease, and
    the workflow resumes from what was committed when it is taken again.
    """
    try:
        await journal.close()
    except Exception as error:
        if not (away or store_away(error)):
            raise


async def resumed(journal: Journal, workflow_id: str) -> bool:
    """Read a sleeper's journal back at its wake-up; False: take the workflow again."""
    try:
        await journal.resume()
    except (JournalFenced, JournalLocked) as lost:
        # (a lapsed lease; or the flock of a process that does not take the name locks, an
        # older durable sharing the directory, which they must not: see docs/architecture.md)
        logger.info("workflow %s, unloaded while it slept: %s", workflow_id, lost)
        return False
    except Exception as error:
        if not store_away(error):
            raise
        logger.warning(
            "workflow %s: the journal store is away at its wake-up (%s); it resumes here "
            "once it answers",
            workflow_id,
            error,
        )
        return False
    return True


async def note(
    journal: Journal | None,
    *,
    finished: bool = False,
    wake_at: float | None = None,
    inbox_next: int | None = None,
) -> None:
    """Tell the store how the workflow stands (a hint for serve(); never fails the run)."""
    if journal is None:
        return
    try:
        await journal.note(finished=finished, wake_at=wake_at, inbox_next=inbox_next)
    except Exception:  # (a hint)
        logger.debug("could not note the state of a journal", exc_info=True)

"""durable: durable execution for Python, in-process.

Workflows are plain async functions; every activity result is appended to the workflow's own
journal and made durable before the workflow sees it, so a crashed run resumes where it was.
"""

from ._errors import DurableError as DurableError
from ._errors import InvalidJournalName as InvalidJournalName
from ._errors import JournalClosed as JournalClosed
from ._errors import JournalCorrupted as JournalCorrupted
from ._errors import JournalError as JournalError
from ._errors import JournalLocked as JournalLocked
from ._errors import JournalNotFound as JournalNotFound
from ._errors import JournalWriteError as JournalWriteError
from ._errors import RecordTooLarge as RecordTooLarge
from ._errors import SerializationError as SerializationError
from ._errors import UnsupportedJournalFormat as UnsupportedJournalFormat
from ._storage._directory import JournalDirectory as JournalDirectory
from ._storage._frames import StoredRecord as StoredRecord
from ._storage._interface import Journal as Journal
from ._storage._interface import JournalStore as JournalStore

__all__ = [
    "DurableError",
    "InvalidJournalName",
    "Journal",
    "JournalClosed",
    "JournalCorrupted",
    "JournalDirectory",
    "JournalError",
    "JournalLocked",
    "JournalNotFound",
    "JournalStore",
    "JournalWriteError",
    "RecordTooLarge",
    "SerializationError",
    "StoredRecord",
    "UnsupportedJournalFormat",
]

for _name in __all__:
    _value = globals()[_name]
    if getattr(_value, "__module__", "").startswith("durable."):
        _value.__module__ = "durable"
del _name, _value

"""Checkpoint stores: in memory, SQLite, a directory of files, and PostgreSQL.

Each implements ``workflow._checkpoint.CheckpointStore``; ``store_from_url`` picks one.
"""

from ._file import FileCheckpointStore
from ._memory import InMemoryCheckpointStore
from ._postgres import PostgresCheckpointStore
from ._sqlite import SQLiteCheckpointStore
from ._url import store_from_url

__all__ = (
    "FileCheckpointStore",
    "InMemoryCheckpointStore",
    "PostgresCheckpointStore",
    "SQLiteCheckpointStore",
    "store_from_url",
)

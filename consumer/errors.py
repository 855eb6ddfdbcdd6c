"""The consumer's own errors, below the shared tree in ``auditstream.errors``.

::

    ArchiveError (retriable)
    ├── ArchiveSchemaError      audit_data (or another table) is missing or lacks a column:
    │                           an operator runs ``consumer setup``; retrying cannot help
    └── Fenced                  another member moved this partition's stored offset on: this
                                member lost the partition and must drop what it read from it
"""

from __future__ import annotations

from auditstream.errors import ArchiveError


class ArchiveSchemaError(ArchiveError):
    """A table or column the consumer writes is missing (dropped, or setup never ran)."""

    retriable = False
    exit_code = 4


class Fenced(ArchiveError):
    """The stored offset is not the one this member read from: someone else owns the partition.

    Args:
        message: what happened.
        stored: ``{(topic, partition): next offset stored in the archive}`` of the fenced ones.
    """

    retriable = True

    def __init__(self, message: str, stored: dict[tuple[str, int], int | None]) -> None:
        super().__init__(message, partitions=sorted(stored))
        self.stored = stored

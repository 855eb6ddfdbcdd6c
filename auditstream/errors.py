"""The exception tree shared by every part of the pipeline.

::

    AuditStreamError                 root; carries ``context`` (server, bookmark, topic, ...)
    ├── ConfigError                  a setting is invalid (exit code 2, never retriable)
    ├── SourceError                  the audited server (``audit_log_read``) failed
    │   ├── SourceUnavailable        cannot connect / connection lost (retriable)
    │   ├── SourceConfigError        audit log not JSON, missing privilege, self-audit (fatal)
    │   └── PageError                a page is malformed: bad JSON, no ``null``, bad event (fatal)
    ├── BrokerError                  Kafka failed (retriable)
    │   ├── DeliveryError            the broker did not acknowledge a message
    │   └── BrokerAuthError          TLS or SASL refused: wrong password, untrusted cert (fatal)
    ├── ArchiveError                 the archive / bookmark database failed (retriable)
    │   └── ArchiveContentError      a row was rejected for its content (not retriable)
    ├── DecodeError                  a Kafka record cannot be decoded (poison; not retriable)
    └── ObjectStoreError             upload / verification failed (retriable)
        └── ChecksumMismatch         stored object differs from the manifest (not retriable)

Retry loops read ``if not err.retriable: raise``; ``main()`` maps ``exit_code`` to the process
exit status. Translate SDK errors at the boundary with ``raise ... from exc`` and add context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar


class AuditStreamError(Exception):
    """Root of every error the pipeline raises on purpose.

    Args:
        message: what went wrong, in words an operator understands.
        **context: where it went wrong (server_uuid, bookmark, topic, partition, offset, table,
            object, ...). Never put a secret here: context is logged.
    """

    retriable: ClassVar[bool] = False
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        if not self.context:
            return self.message
        where = ", ".join(f"{k}={v}" for k, v in self.context.items())
        return f"{self.message} [{where}]"


class ConfigError(AuditStreamError):
    """A setting is missing, malformed or contradicts another one."""

    exit_code = 2

    @staticmethod
    def checked(parse: Callable[[str], object]) -> Callable[[Any], Any]:
        """A settings validator of text fields: ``parse`` must accept the value (None passes).

        Its ``ConfigError`` becomes the ``ValueError`` pydantic reports with the flag's name
        (exit code 2 from ``auditstream.settings.load``), e.g.
        ``Annotated[str, AfterValidator(ConfigError.checked(TargetUrl.parse))]``.
        """

        def check(value: Any) -> Any:
            if value is not None:
                try:
                    parse(value)
                except ConfigError as exc:
                    raise ValueError(exc.message) from None
            return value

        return check


class SourceError(AuditStreamError):
    """The audited MySQL server failed in a way the producer must handle."""


class SourceUnavailable(SourceError):
    """The audited server cannot be reached or the session was lost."""

    retriable = True
    exit_code = 3


class SourceConfigError(SourceError):
    """The audited server is not set up for reading (format, privileges, filters)."""

    exit_code = 4


class PageError(SourceError):
    """A page from ``audit_log_read()`` is malformed; the bookmark must not move past it."""

    exit_code = 5


class BrokerError(AuditStreamError):
    """Kafka is unreachable or rejected a request."""

    retriable = True
    exit_code = 3


class DeliveryError(BrokerError):
    """At least one message was not acknowledged by the broker."""


class BrokerAuthError(BrokerError):
    """The broker refused the TLS handshake or the SASL login: retrying cannot help."""

    retriable = False


class ArchiveError(AuditStreamError):
    """The archive (or bookmark) database failed."""

    retriable = True
    exit_code = 3


class ArchiveContentError(ArchiveError):
    """The database rejected a row for its content; retrying the same row cannot help."""

    retriable = False
    exit_code = 5


class DecodeError(AuditStreamError):
    """A Kafka record's value is not a valid audit or control event."""

    exit_code = 5


class ObjectStoreError(AuditStreamError):
    """An upload to, or a read from, the object store failed."""

    retriable = True
    exit_code = 3


class ChecksumMismatch(ObjectStoreError):
    """A stored object does not match its manifest entry."""

    retriable = False
    exit_code = 5

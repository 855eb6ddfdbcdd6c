"""The session on the audited server: ``audit_log_read()`` pages and their warnings.

The read sequence belongs to the session: a positioned call (bookmark or ``start``) opens one,
calls without argument continue it until a page ends with ``null``. Traps:

- The bookmark read is INCLUSIVE: the first event of ``open(bookmark)`` is the bookmarked event,
  which was already sent. The loop drops it; this class does not.
- ``SHOW WARNINGS`` right after every call: events too large for the read buffer are skipped
  with only a warning to show for it (Oracle).
- The end of data is the trailing ``null``, never an error: error 3200 on a continuing call
  means the sequence was lost and is reported as retriable (the loop reopens from the bookmark).
- Percona refuses to re-position an open sequence: it is closed with ``'null'`` first.
- A server or network that stops answering mid-page: ``connection_timeout`` bounds only the
  connect with the C extension; reads are bounded by ``read_timeout`` (seconds without a byte,
  passed at connect: the C extension cannot change it later). A read that times out closes the
  session and raises ``SourceUnavailable`` (retriable): the loop reconnects and re-reads from
  the stored bookmark, so at most the unacknowledged batch is sent again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from auditstream import metrics
from auditstream.dsn import MySQLDsn
from auditstream.errors import SourceConfigError, SourceError, SourceUnavailable
from auditstream.mysql import Connection, Error, connect, is_connection_error
from auditstream.position import Position
from producer import flavor as flavors
from producer.page import Page, Prepare, split

log = logging.getLogger(__name__)

_READER_NOT_INITIALIZED = 3200
_LOST_DURING_QUERY = 2013  # CR_SERVER_LOST: also what a read timeout raises
_ACCESS_DENIED = {1044, 1045, 1123, 1142, 1227, 1370}


class Source(Protocol):
    """What the loop needs from an audit source (the server, or a fake in unit tests)."""

    server_uuid: str

    def connect(self) -> None:
        """(Re)connect and check the server; called at start and after a failure."""
        ...

    def open(self, bookmark: Position) -> Page:
        """Start a sequence WITH the bookmarked event (inclusive) and return its first page."""
        ...

    def open_at(self, start: str) -> Page:
        """Start a sequence at the first event at or after ``start`` (timestamp text)."""
        ...

    def next(self) -> Page:
        """The next page of the current sequence (only after a page without ``null``)."""
        ...

    def latest(self) -> Position | None:
        """``audit_log_read_bookmark()``: the newest event written, None for an empty log."""
        ...

    def close(self) -> None:
        """End the session (best effort)."""
        ...


class MySQLSource:
    """A ``Source`` on a real (or emulated) MySQL Enterprise / Percona server.

    Args:
        dsn: the archiver account (``AUDIT_ADMIN``, a ``log_nothing`` filter assigned).
        read_buffer_size: bytes per call, 32 KB to 4 MB.
        allow_self_audit: start even when our own statements are audited.
        read_timeout: seconds a read may wait for the server's next byte (see the trap above).
    """

    def __init__(
        self,
        dsn: MySQLDsn,
        *,
        read_buffer_size: int,
        allow_self_audit: bool,
        read_timeout: int = 60,
    ) -> None:
        self._dsn = dsn
        self._buffer = read_buffer_size
        self._allow = allow_self_audit
        self._read_timeout = read_timeout
        self._conn: Connection | None = None
        self._open = False
        self._last: Position | None = None
        #: Set by the loop: encodes each event as it is parsed (``producer.page.split``).
        self.prepare: Prepare | None = None
        self.server_uuid = ""
        self.flavor: flavors.Flavor | None = None

    def connect(self) -> None:
        """Connect, check the log is JSON, detect the flavor, set the buffer, guard self-audit.

        Raises:
            SourceUnavailable: the server cannot be reached (retriable).
            SourceConfigError: not JSON, no audit log, missing privilege, self-audit.
        """
        self.close()
        ctx = {"source": self._dsn.url()}
        try:
            conn = connect(self._dsn, read_timeout=self._read_timeout)
            self._conn = conn
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute("SELECT @@server_uuid")
            self.server_uuid = flavors.text_of(_first(cur.fetchall()))
            cur.close()
            ctx["server_uuid"] = self.server_uuid
            self.flavor = flavors.detect(flavors.variables(conn), **ctx)
            flavors.set_buffer(conn, self.flavor, self._buffer, **ctx)
            flavors.guard_self_audit(conn, allow=self._allow, **ctx)
        except Error as exc:
            self.close()
            raise self._translate(exc, "connect") from exc
        except SourceError:
            self.close()
            raise
        log.info(
            "source connected",
            extra={"ctx": {**ctx, "flavor": self.flavor.name, "buffer": self._buffer}},
        )

    def open(self, bookmark: Position) -> Page:
        """See ``Source.open``."""
        return self._positioned(orjson.dumps(bookmark.arg()).decode())

    def open_at(self, start: str) -> Page:
        """See ``Source.open_at``."""
        return self._positioned(orjson.dumps({"start": {"timestamp": start}}).decode())

    def next(self) -> Page:
        """See ``Source.next``."""
        return self._call(None)

    def latest(self) -> Position | None:
        """See ``Source.latest``."""
        text = self._scalar("SELECT audit_log_read_bookmark()", "bookmark")
        if not text:
            return None
        try:
            obj = orjson.loads(text)
            return Position(str(obj["timestamp"]), int(obj["id"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SourceError(
                "audit_log_read_bookmark() returned no bookmark", value=text[:80]
            ) from exc

    def close(self) -> None:
        """See ``Source.close``."""
        conn, self._conn = self._conn, None
        self._open = False
        if conn is not None:
            try:
                conn.close()
            except Error:
                log.debug("closing the source session failed", exc_info=True)

    def _positioned(self, arg: str) -> Page:
        if self._open and self.flavor is not None and self.flavor.percona:
            try:
                self._scalar("SELECT audit_log_read('null')", "close")
            except SourceUnavailable as exc:
                if exc.context.get("errno") != _READER_NOT_INITIALIZED:
                    raise
        self._last = None
        return self._call(arg)

    def _call(self, arg: str | None) -> Page:
        conn = self._session()
        ctx = {"server_uuid": self.server_uuid}
        started = time.monotonic()
        try:
            cur = conn.cursor(raw=True)
            if arg is None:
                cur.execute("SELECT audit_log_read()")
            else:
                cur.execute("SELECT audit_log_read(%s)", (arg,))
            rows = cur.fetchall()
            cur.execute("SHOW WARNINGS")
            warnings = [" ".join(flavors.text_of(v) for v in w) for w in cur.fetchall()]
            cur.close()
        except Error as exc:
            waited = time.monotonic() - started
            if getattr(exc, "errno", None) == _LOST_DURING_QUERY and waited >= self._read_timeout:
                self.close()
                metrics.SOURCE_READ_TIMEOUTS.inc()
                raise SourceUnavailable(
                    f"the source sent nothing for {self._read_timeout} s during audit_log_read"
                    " (read timeout); reconnecting",
                    server_uuid=self.server_uuid or None,
                    call="read",
                    waited=round(waited, 1),
                ) from exc
            raise self._translate(exc, "read") from exc
        data = _first(rows)
        if data is None:
            raise SourceError("audit_log_read() returned NULL", arg=arg, **ctx)
        # Bytes: split without decoding the page (and encoded as parsed, see ``prepare``).
        page = split(data, self._last, self.prepare, **ctx)
        page.warnings = warnings
        for event in reversed(page.events):
            if event.pos is not None:
                self._last = event.pos
                break
        # Percona: any read leaves a sequence to close before re-positioning (closing an
        # exhausted one is harmless); Oracle re-positions freely.
        self._open = True
        return page

    def _scalar(self, sql: str, what: str) -> str | None:
        conn = self._session()
        try:
            cur = conn.cursor()
            cur.execute(sql)
            rows = cur.fetchall()
            cur.close()
        except Error as exc:
            raise self._translate(exc, what) from exc
        self._open = False if what == "close" else self._open
        value = _first(rows)
        return None if value is None else flavors.text_of(value)

    def _session(self) -> Connection:
        if self._conn is None:
            self.connect()
        assert self._conn is not None  # noqa: S101 - connect() sets it or raises
        return self._conn

    def _translate(self, exc: Error, what: str) -> SourceError:
        ctx: dict[str, Any] = {
            "server_uuid": self.server_uuid or None,
            "errno": getattr(exc, "errno", None),
            "call": what,
        }
        errno = getattr(exc, "errno", None)
        if is_connection_error(exc):
            self.close()
            return SourceUnavailable(f"source connection failed: {exc}", **ctx)
        if errno == _READER_NOT_INITIALIZED:
            self._open = False
            return SourceUnavailable(f"the read sequence was lost: {exc}", **ctx)
        if errno in _ACCESS_DENIED:
            return SourceConfigError(
                f"the archiver account lacks a privilege (AUDIT_ADMIN?): {exc}", **ctx
            )
        return SourceError(f"audit_log_read failed: {exc}", **ctx)


def _first(rows: Sequence[Any]) -> Any:
    """The first column of the first row, or None."""
    return rows[0][0] if rows else None

"""Retention rules: uploads can require their bucket to keep objects for a minimum time.

Audit regimes ask that evidence cannot be deleted or changed; on OCI Object Storage that is a
time-bound retention rule on the bucket. Before the first upload to a bucket (dumps and
checkpoints alike) ``RetentionGuard`` lists its rules through the real SDK and looks for one
with a duration of at least ``min_days``:

1. Found: log (and keep in ``status``) which rule, its duration, and whether it is locked and
   from when. A rule protects younger objects from delete and overwrite whether locked or not;
   the lock (which OCI applies only after a delay) is what keeps an administrator from
   removing or shortening the rule itself.
2. Not found: ``refuse`` (default) raises ``RetentionMissing`` and nothing is uploaded;
   ``warn`` logs a warning once and uploads.

Traps: a rule without a duration (indefinite, a legal hold) protects too, but is not
time-bound: it does not satisfy the check. A ``file://`` target has no rules: with a
requirement it is refused (or warned about) like a bucket without one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from auditstream.errors import ConfigError, ObjectStoreError
from consumer.dumpformat import DumpObject
from consumer.targets import ObjectInfo, ObjectStore

log = logging.getLogger(__name__)

Policy = Literal["refuse", "warn"]
_DAYS = {"DAYS": 1, "YEARS": 365}


class RetentionMissing(ConfigError):
    """The bucket has no time-bound retention rule long enough (an operator must add one)."""


@dataclass(frozen=True)
class RetentionStatus:
    """The rule that satisfies the requirement."""

    bucket: str
    rule: str
    days: int
    locked: bool
    locked_from: datetime | None

    def __str__(self) -> str:
        if self.locked_from is None:
            lock = "not locked (no lock time set)"
        elif self.locked:
            lock = f"locked since {self.locked_from:%Y-%m-%d %H:%M:%S} UTC"
        else:
            lock = f"not locked yet (locks at {self.locked_from:%Y-%m-%d %H:%M:%S} UTC)"
        return f"bucket {self.bucket}: retention rule {self.rule!r}, {self.days} days, {lock}"


def find_rule(
    client: Any, namespace: str, bucket: str, min_days: float, now: datetime | None = None
) -> RetentionStatus | None:
    """The longest time-bound rule of at least ``min_days`` on ``bucket``, or None.

    Raises:
        ObjectStoreError: the rules cannot be listed.
    """
    from oci.exceptions import ServiceError

    now = now or datetime.now(UTC)
    try:
        rules = list(_rules(client, namespace, bucket))
    except ServiceError as exc:
        raise ObjectStoreError(
            f"cannot list the retention rules: {exc.status} {exc.code}: {exc.message}",
            bucket=bucket,
        ) from exc
    best: RetentionStatus | None = None
    for rule in rules:
        if rule.duration is None:
            continue  # indefinite: protects, but is not time-bound
        days = int(rule.duration.time_amount) * _DAYS.get(str(rule.duration.time_unit), 0)
        if days < min_days or (best is not None and days <= best.days):
            continue
        locked_from = rule.time_rule_locked
        locked = locked_from is not None and locked_from <= now
        best = RetentionStatus(bucket, str(rule.display_name), days, locked, locked_from)
    return best


def _rules(client: Any, namespace: str, bucket: str) -> Iterator[Any]:
    page = None
    while True:
        kwargs: dict[str, Any] = {"page": page} if page else {}
        resp = client.list_retention_rules(namespace, bucket, **kwargs)
        yield from resp.data.items
        page = resp.headers.get("opc-next-page")
        if not page:
            return


class RetentionGuard:
    """An ``ObjectStore`` that checks the bucket's retention rule before its first upload.

    Args:
        store: the store (an ``OciStore``; anything else has no rules).
        min_days: the shortest acceptable rule.
        policy: ``refuse`` or ``warn`` when no rule is long enough.
    """

    def __init__(self, store: ObjectStore, min_days: float, policy: Policy = "refuse") -> None:
        self.store = store
        self.min_days = min_days
        self.policy = policy
        self.status: RetentionStatus | None = None
        self._checked = False

    def check(self) -> RetentionStatus | None:
        """Steps 1-2 (once); the rule found, or None after a warning.

        Raises:
            RetentionMissing: no rule long enough and the policy is ``refuse``.
            ObjectStoreError: the rules cannot be listed (retriable).
        """
        if self._checked:
            return self.status
        client = getattr(self.store, "client", None)
        target = getattr(self.store, "target", None)
        where = f"oci://{target.bucket}" if target is not None else "a file target"
        if client is not None and target is not None:
            namespace = self.store.namespace  # type: ignore[attr-defined]
            self.status = find_rule(client, namespace, target.bucket, self.min_days)
        if self.status is None:
            message = f"{where} has no time-bound retention rule of at least {self.min_days:g} days"
            if self.policy == "refuse":
                raise RetentionMissing(
                    message + ": refusing to upload (add one, or --retention-policy warn)"
                )
            log.warning("%s; uploading anyway (--retention-policy warn)", message)
        else:
            log.info("%s", self.status)
        self._checked = True
        return self.status

    def put_file(self, name: str, path: Path, obj: DumpObject) -> bool:
        """``check()``, then the store's create-only upload."""
        self.check()
        return self.store.put_file(name, path, obj)

    def stat(self, name: str) -> ObjectInfo | None:
        """The store's ``stat``."""
        return self.store.stat(name)

    def read(self, name: str) -> Iterator[bytes]:
        """The store's ``read``."""
        return self.store.read(name)

    def list(self, prefix: str) -> list[str]:
        """The store's ``list``."""
        return self.store.list(prefix)

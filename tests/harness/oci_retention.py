"""Retention rules for the OCI test server (``oci_server``): create, list, get, delete.

The shapes are the SDK's (``oci.object_storage.models``): ``CreateRetentionRuleDetails``
``{displayName, duration: {timeAmount, timeUnit: DAYS|YEARS}, timeRuleLocked}`` in,
``RetentionRule`` / ``RetentionRuleCollection {items}`` out. Like the service:

- a rule with a duration protects each object younger than it (by last modification); a rule
  without one (indefinite) protects every object;
- a protected object cannot be deleted or overwritten: 409 ``Conflict`` (an ``if-none-match``
  write is refused first with 412, as for any existing object);
- a rule is locked once ``timeRuleLocked`` has passed; a locked rule cannot be deleted (409).

Deviations: rules take effect at once (the service: within ~30 s) and the lock time is not
required to lie far enough in the future (tests set past times to act as if it had passed).
The 409 ``Conflict`` answer is this server's reading of the service (OCI's documentation was
not at hand when it was written): the uploader relies on the status only, never on the code.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_UNIT = {"DAYS": timedelta(days=1), "YEARS": timedelta(days=365)}


def iso(moment: datetime) -> str:
    """The service's timestamp format."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Rule:
    id: str
    display_name: str
    duration: dict[str, Any] | None
    time_rule_locked: datetime | None
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    etag: str = field(default_factory=lambda: uuid.uuid4().hex)

    def locked(self, now: datetime) -> bool:
        return self.time_rule_locked is not None and self.time_rule_locked <= now

    def protects(self, modified: float, now: datetime) -> bool:
        if self.duration is None:
            return True
        span = _UNIT[self.duration["timeUnit"]] * int(self.duration["timeAmount"])
        return datetime.fromtimestamp(modified, UTC) + span > now

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "duration": self.duration,
            "etag": self.etag,
            "timeRuleLocked": iso(self.time_rule_locked) if self.time_rule_locked else None,
            "timeCreated": iso(self.created),
            "timeModified": iso(self.created),
        }


class Rules:
    """The rules of every bucket (guarded by the server's lock)."""

    def __init__(self) -> None:
        self.by_bucket: dict[str, dict[str, Rule]] = {}

    def clear(self) -> None:
        self.by_bucket.clear()

    def create(self, bucket: str, details: dict[str, Any]) -> Rule:
        duration = details.get("duration")
        if duration is not None and duration.get("timeUnit") not in _UNIT:
            raise ValueError("duration.timeUnit must be DAYS or YEARS")
        rule = Rule(
            id=f"ocid1.retentionrule.{uuid.uuid4().hex}",
            display_name=details.get("displayName") or "rule",
            duration=duration,
            time_rule_locked=_parse(details.get("timeRuleLocked")),
        )
        self.by_bucket.setdefault(bucket, {})[rule.id] = rule
        return rule

    def blocking(self, bucket: str, modified: float) -> Rule | None:
        """The rule that protects an object last modified at ``modified`` (epoch s), if any."""
        now = datetime.now(UTC)
        for rule in self.by_bucket.get(bucket, {}).values():
            if rule.protects(modified, now):
                return rule
        return None
